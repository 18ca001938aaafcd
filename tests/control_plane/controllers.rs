//! Deployment → ReplicaSet → Pods and CronJob → Job → Pod with the real
//! controllers, including the ways a Deployment gets admitted unfixed.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Suite, run_tool};
use crate::control_plane::wait_for;
use crate::manifests::{assert_fixed, assert_unfixed, kind, object_path, pod_spec_of, workload};
use crate::namespaces;
use crate::rollout::{Rollout, Settled, owned_by};

/// A Deployment of the fixture containers with `replicas`.
pub fn deployment(name: &str, replicas: i64) -> Value {
    let mut deployment = workload(kind("Deployment"), name);
    deployment["spec"]["replicas"] = json!(replicas);
    deployment
}

/// Panics unless the ReplicaSet's template is the Deployment's: what the
/// Deployment controller compares, and what the webhook must not break.
pub fn assert_template_matches(settled: &Settled) {
    assert_eq!(
        pod_spec_of(&settled.replica_set),
        pod_spec_of(&settled.deployment),
        "the ReplicaSet's template differs from its Deployment's"
    );
}

/// Panics unless every Pod of `settled` is fixed, except those already there
/// in `earlier` (made while the namespace was in `audit` or the webhook was
/// down), which must be as written.
pub fn assert_pods(settled: &Settled, earlier: Option<&Settled>) {
    let uid = |p: &Value| p["metadata"]["uid"].clone();
    let before: Vec<Value> = earlier.map(|e| e.pods.iter().map(uid).collect()).unwrap_or_default();
    for pod in &settled.pods {
        let name = pod["metadata"]["name"].as_str().unwrap_or("?");
        if before.contains(&uid(pod)) {
            assert_unfixed(pod, &format!("Pod {name}, made before"));
        } else {
            assert_fixed(pod, &format!("Pod {name}"));
        }
    }
}

/// Panics unless every Pod of `settled` is as written.
pub fn assert_pods_unfixed(settled: &Settled) {
    for pod in &settled.pods {
        assert_unfixed(pod, "a Pod made while the webhook did not fix");
    }
}

/// Panics unless `update` left the Deployment's pod template as it was
/// before: an UPDATE that touches no container must not change one (that
/// would be a rollout nobody asked for).
pub fn assert_template_kept(before: &Settled, after: &Settled, update: &Value) {
    assert_eq!(
        pod_spec_of(&after.deployment),
        pod_spec_of(&before.deployment),
        "{update} changed the Deployment's pod template"
    );
    assert_eq!(
        after.replica_set["metadata"]["uid"], before.replica_set["metadata"]["uid"],
        "{update} replaced the ReplicaSet"
    );
}

/// The UPDATEs that change no container: one more replica, a new label.
fn quiet_patches(settled: &Settled) -> [Value; 2] {
    let replicas = settled.deployment["spec"]["replicas"].as_i64().unwrap() + 1;
    [
        json!({"spec": {"replicas": replicas}}),
        json!({"metadata": {"labels": {"team": "payments"}}}),
    ]
}

/// Created in a `fix` namespace: the Deployment is fixed, the controllers
/// make one ReplicaSet from the fixed template, and its Pods are fixed.
pub async fn deployment_chain(s: &Suite) {
    let ns = "chain";
    namespaces::create(s, ns, Some("fix")).await;
    let (mut rollout, reply) = Rollout::create(s, ns, deployment("web", 2)).await;
    assert_fixed(&reply.body, "the created Deployment");
    let settled = rollout.settle(1).await;
    assert_template_matches(&settled);
    assert_fixed(&settled.replica_set, "its ReplicaSet");
    assert_pods(&settled, None);
}

/// The storm case: a Deployment admitted unfixed (its namespace was in
/// `audit`), the namespace moved to `fix`, then its ReplicaSet deleted. The
/// controller re-creates the ReplicaSet from the unfixed template; the
/// webhook must leave it as the controller wrote it (and fix the Pods), or
/// the controller no longer recognises it and creates another, and another.
pub async fn storm(s: &Suite) {
    let ns = "storm";
    namespaces::create(s, ns, Some("audit")).await;
    let (mut rollout, reply) = Rollout::create(s, ns, deployment("web", 1)).await;
    assert_unfixed(&reply.body, "the Deployment admitted in audit");
    let first = rollout.settle(1).await;
    assert_pods_unfixed(&first);

    namespaces::set_mode(s, ns, "fix").await;
    let name = first.replica_set["metadata"]["name"].as_str().unwrap();
    s.api
        .delete(&object_path(kind("ReplicaSet"), ns, name))
        .await
        .ok("delete the ReplicaSet");
    let settled = rollout.settle(2).await;
    assert_template_matches(&settled);
    assert_pods(&settled, None);
}

/// Created fixed: changing `spec.replicas`, then a label, makes no new
/// ReplicaSet (the UPDATEs go through the webhook, which has nothing to fix).
pub async fn quiet_updates(s: &Suite) {
    quiet_updates_in(s, "quiet", "fix").await;
}

/// Admitted unfixed (namespace in `audit`), the namespace moved to `fix`:
/// scaling it or labelling it is an UPDATE the user made without touching a
/// container, so the template stays as it is — no rollout, no new
/// ReplicaSet — and only the Pods made from then on are fixed.
pub async fn quiet_updates_after_audit(s: &Suite) {
    quiet_updates_in(s, "quiet-after-audit", "audit").await;
}

/// A Deployment created in namespace `ns` in mode `admitted`, which is then
/// (if not already) moved to `fix`; then the [`quiet_patches`].
async fn quiet_updates_in(s: &Suite, ns: &str, admitted: &str) {
    namespaces::create(s, ns, Some(admitted)).await;
    let (mut rollout, _) = Rollout::create(s, ns, deployment("web", 1)).await;
    let first = rollout.settle(1).await;
    let unfixed = admitted != "fix";
    if unfixed {
        assert_pods_unfixed(&first);
        namespaces::set_mode(s, ns, "fix").await;
    }
    let mut before = first.clone();
    for patch in quiet_patches(&before) {
        s.api.merge_patch(&rollout.path(), &patch).await.ok(&format!("{patch}"));
        let after = rollout.settle(1).await;
        assert_template_kept(&before, &after, &patch);
        assert_template_matches(&after);
        before = after;
    }
    assert_pods(&before, unfixed.then_some(&first));
}

/// A fixed CronJob; a Job created from it as `kubectl create job --from`
/// does; the Job controller's Pod is fixed.
pub async fn cronjob_chain(s: &Suite) {
    let ns = "cron";
    namespaces::create(s, ns, Some("fix")).await;
    let reply = s
        .api
        .create(
            &kind("CronJob").list_path(Some(ns)),
            &workload(kind("CronJob"), "nightly"),
            false,
        )
        .await
        .ok("create the CronJob");
    assert_fixed(&reply.body, "the created CronJob");
    let cronjob_uid = reply.body["metadata"]["uid"].clone();
    let (job, pod) = job_from_cronjob(s, ns, "nightly", "manual-1").await;
    assert!(owned_by(&job, &cronjob_uid), "the Job is owned by its CronJob: {job}");
    assert_fixed(&job, "the Job made from the fixed CronJob");
    assert_fixed(&pod, "the Job's Pod");
}

/// A CronJob admitted unfixed (namespace in `audit`), the namespace moved to
/// `fix`: a Job made from it is admitted, and its Pod is fixed.
pub async fn cronjob_admitted_unfixed(s: &Suite) {
    let ns = "cron-after-audit";
    namespaces::create(s, ns, Some("audit")).await;
    s.api
        .create(
            &kind("CronJob").list_path(Some(ns)),
            &workload(kind("CronJob"), "nightly"),
            false,
        )
        .await
        .ok("create the CronJob");
    namespaces::set_mode(s, ns, "fix").await;
    let (_, pod) = job_from_cronjob(s, ns, "nightly", "manual-1").await;
    assert_fixed(&pod, "the Pod of a Job made from an unfixed CronJob");
}

/// `kubectl create job JOB --from=cronjob/CRONJOB`, then the Job and the Pod
/// its controller creates.
async fn job_from_cronjob(s: &Suite, ns: &str, cronjob: &str, job: &str) -> (Value, Value) {
    let from = format!("--from=cronjob/{cronjob}");
    let kubeconfig = s.kubeconfig.to_string_lossy().into_owned();
    let out = run_tool(
        "kubectl",
        &["--kubeconfig", &kubeconfig, "-n", ns, "create", "job", job, &from],
        None,
    )
    .await;
    assert!(
        out.status.success(),
        "kubectl create job: {}",
        crate::chart::describe(&out)
    );
    let job = s
        .api
        .get(&object_path(kind("Job"), ns, job))
        .await
        .ok("get the Job")
        .body;
    let job_uid = job["metadata"]["uid"].clone();
    let pods_path = kind("Pod").list_path(Some(ns));
    let pod = wait_for("the Job's Pod", Duration::from_secs(60), || async {
        let (pods, _) = s.api.list(&pods_path).await;
        Ok(pods.into_iter().find(|p| owned_by(p, &job_uid)))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    (job, pod)
}

/// The Pods a ReplicaSet creates reach the webhook alike but for their uid,
/// their projected token volume's random name and their managed fields'
/// timestamps, as the real API server writes them: all but the first
/// (and any sent at the same moment as it) are recalled rather than
/// decoded, answered from memory, and fixed like the first.
pub async fn sibling_pods_are_recalled(s: &Suite) {
    let ns = "siblings";
    let replicas = 4;
    namespaces::create(s, ns, Some("fix")).await;
    Rollout::create(s, ns, deployment("web", replicas)).await;
    let pods_path = kind("Pod").list_path(Some(ns));
    let pods = wait_for("the Deployment's Pods", Duration::from_secs(60), || async {
        let (pods, _) = s.api.list(&pods_path).await;
        Ok((pods.len() == replicas as usize).then_some(pods))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for pod in &pods {
        assert_fixed(pod, "a sibling Pod");
    }
    let lines = wait_for("the webhook's lines for the Pods", Duration::from_secs(30), || async {
        let lines: Vec<Value> = crate::guard_process::events_of(&s.webhook_log)
            .into_iter()
            .filter(|e| {
                e["message"] == "admission answered"
                    && e["namespace"] == ns
                    && e["kind"] == "Pod"
                    && e["operation"] == "CREATE"
            })
            .collect();
        Ok((lines.len() >= replicas as usize).then_some(lines))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let recalled: Vec<&Value> = lines.iter().filter(|l| l["recalled"] == true).collect();
    assert!(!recalled.is_empty(), "no sibling Pod was recalled: {lines:#?}");
    for line in &recalled {
        assert_eq!(line["from_memory"], true, "a recalled Pod answered from memory: {line}");
    }
    eprintln!("{} of {} sibling Pod CREATEs recalled", recalled.len(), lines.len());
}
