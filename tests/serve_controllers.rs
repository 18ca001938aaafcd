//! The webhook next to the controllers that read what it writes, over real
//! TLS with the captured requests: a controller-owned ReplicaSet or Job is
//! never patched (its warning names the owner to fix), the Pods the
//! controllers create are fixed exactly as their workload would have been,
//! a chain built from an already fixed template gets no patch at all, an
//! UPDATE changes only what the user changed, and `scope: pods` patches only
//! Pods.

#[path = "support/serve.rs"]
mod support;

use entrypoint_guard::engine::Kinds;
use entrypoint_guard::engine::{Scope, workload};
use serde_json::{Value, json};
use support::*;

fn pod_spec(object: &Value) -> &Value {
    let specs = workload::pod_specs(object, &Kinds::builtin());
    assert_eq!(specs.len(), 1, "one pod spec in {}", object["kind"]);
    object.pointer(&specs[0].spec).unwrap()
}

fn pod_spec_mut(object: &mut Value) -> &mut Value {
    let at = workload::pod_specs(object, &Kinds::builtin())[0].spec.clone();
    object.pointer_mut(&at).unwrap()
}

/// `name → (image, command, args)` of every container and init container.
fn command_lines(object: &Value) -> Vec<(String, Value, Value, Value)> {
    let spec = pod_spec(object);
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap().to_string();
            out.push((name, c["image"].clone(), c["command"].clone(), c["args"].clone()));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `object` (a Pod the API server sent) with each container's image,
/// command and args taken from the same-named container of `template_of`:
/// what the controller makes from that template (the admission plugins'
/// additions, like the service-account mount, stay).
fn with_command_lines_of(object: &Value, template_of: &Value) -> Value {
    let mut object = object.clone();
    let source = pod_spec(template_of).clone();
    let spec = pod_spec_mut(&mut object);
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array_mut().into_iter().flatten() {
            let from = source[list]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == c["name"])
                .expect("same containers");
            for field in ["image", "command", "args"] {
                match from.get(field) {
                    Some(v) if !v.is_null() => c[field] = v.clone(),
                    _ => {
                        c.as_object_mut().unwrap().remove(field);
                    }
                }
            }
        }
    }
    object
}

#[tokio::test]
async fn controller_owned_replicaset_and_job_get_no_patch_but_a_warning_naming_the_owner() {
    let server = TestServer::start(|_| {}).await;
    for (stem, owner_note) in [
        (
            "replicaset-create-owned-by-deployment",
            "entrypoint-guard: ReplicaSet app-deploy-7455cfb69d is owned by Deployment app-deploy: fix the Deployment",
        ),
        (
            "job-create-owned-by-cronjob",
            "entrypoint-guard: Job manual-run is owned by CronJob app-cron: fix the CronJob; its Pods are fixed when created",
        ),
    ] {
        let review = fixture(stem);
        assert!(controller_owned_workload(&review), "{stem}");
        let (decoded, _) = admit(&server, &review).await;
        assert!(
            decoded.patch.is_none(),
            "{stem}: a controller-owned object is never patched"
        );
        assert_eq!(decoded.warnings[0], owner_note, "{stem}");
        assert_eq!(
            decoded.warnings[1..],
            PROPOSED_WARNINGS,
            "{stem}: the findings, none applied"
        );
        let owned: Value =
            serde_json::from_str(decoded.audit_annotations["controller-owned"].as_str().unwrap()).unwrap();
        let owner = &review["request"]["object"]["metadata"]["ownerReferences"][0];
        assert_eq!(owned[0]["held"]["owner"]["kind"], owner["kind"], "{stem}");
        assert_eq!(owned[0]["held"]["owner"]["name"], owner["name"], "{stem}");
        // The audit annotations still carry every finding, none applied.
        let bypass: Value =
            serde_json::from_str(decoded.audit_annotations["command-bypasses-wrapper"].as_str().unwrap()).unwrap();
        assert!(bypass.as_array().unwrap().iter().all(|f| f["applied"] == false));

        // Whatever the object's own mode annotation asks.
        let mut object = review["request"]["object"].clone();
        object["metadata"]["annotations"]["entrypoint-guard.io/mode"] = json!("fix");
        let asks_fix = with_object(&review, "asks-fix", object);
        assert!(admit(&server, &asks_fix).await.0.patch.is_none(), "{stem}");
    }
    // Counted by kind, only where a patch was withheld (the /audit route withholds nothing).
    let review = fixture("replicaset-create-owned-by-deployment");
    decode_like_api_server(&review, &server.post("/audit", &review).await);
    let metrics = server.running.metrics().encode();
    for line in [
        "entrypoint_guard_objects_left_unpatched_total{kind=\"ReplicaSet\",reason=\"owned\"} 2",
        "entrypoint_guard_objects_left_unpatched_total{kind=\"Job\",reason=\"owned\"} 2",
    ] {
        assert!(metrics.contains(&format!("{line}\n")), "missing {line} in\n{metrics}");
    }
}

#[tokio::test]
async fn the_pods_controllers_create_get_the_fix_their_workload_would_have_had() {
    let server = TestServer::start(|_| {}).await;
    for (workload, pod) in [
        ("deployment-create", "pod-create-owned-by-replicaset"),
        ("cronjob-create", "pod-create-owned-by-job"),
    ] {
        let (_, fixed_workload) = admit(&server, &fixture(workload)).await;
        let (decoded, fixed_pod) = admit(&server, &fixture(pod)).await;
        assert!(decoded.patch.is_some(), "{pod}: Pods are leaves, always fixed");
        assert_eq!(
            command_lines(&fixed_pod),
            command_lines(&fixed_workload),
            "{pod}: the same fix as {workload}'s template"
        );
    }
}

#[tokio::test]
async fn a_chain_built_from_a_fixed_template_gets_no_patch() {
    let server = TestServer::start(|_| {}).await;

    // Deployment → ReplicaSet → Pod.
    let (_, deployment) = admit(&server, &fixture("deployment-create")).await;
    let rs_review = fixture("replicaset-create-owned-by-deployment");
    let captured_rs = &rs_review["request"]["object"];
    let hash = captured_rs["metadata"]["labels"]["pod-template-hash"].clone();
    // The controller copies the template and adds the hash label: so did the captured one.
    let mut template = fixture("deployment-create")["request"]["object"]["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = hash.clone();
    assert_eq!(
        captured_rs["spec"]["template"], template,
        "how the controller builds a ReplicaSet"
    );
    let mut template = deployment["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = hash;
    let mut rs = captured_rs.clone();
    rs["spec"]["template"] = template;
    let (decoded, rs) = admit(&server, &with_object(&rs_review, "rs-from-fixed", rs)).await;
    assert!(
        decoded.patch.is_none() && decoded.warnings.is_empty(),
        "{:?}",
        decoded.warnings
    );
    let pod_review = fixture("pod-create-owned-by-replicaset");
    let pod = with_command_lines_of(&pod_review["request"]["object"], &rs);
    let (decoded, _) = admit(&server, &with_object(&pod_review, "pod-from-fixed-rs", pod)).await;
    assert!(
        decoded.patch.is_none() && decoded.warnings.is_empty(),
        "{:?}",
        decoded.warnings
    );

    // CronJob → Job → Pod.
    let (_, cronjob) = admit(&server, &fixture("cronjob-create")).await;
    let job_review = fixture("job-create-owned-by-cronjob");
    let mut job = job_review["request"]["object"].clone();
    assert_eq!(
        job["spec"]["template"],
        fixture("cronjob-create")["request"]["object"]["spec"]["jobTemplate"]["spec"]["template"],
        "how the controller builds a Job"
    );
    job["spec"]["template"] = cronjob["spec"]["jobTemplate"]["spec"]["template"].clone();
    let (decoded, job) = admit(&server, &with_object(&job_review, "job-from-fixed", job)).await;
    assert!(
        decoded.patch.is_none() && decoded.warnings.is_empty(),
        "{:?}",
        decoded.warnings
    );
    let pod_review = fixture("pod-create-owned-by-job");
    let pod = with_command_lines_of(&pod_review["request"]["object"], &job);
    let (decoded, _) = admit(&server, &with_object(&pod_review, "pod-from-fixed-job", pod)).await;
    assert!(
        decoded.patch.is_none() && decoded.warnings.is_empty(),
        "{:?}",
        decoded.warnings
    );
}

#[tokio::test]
async fn a_deployment_update_fixes_only_the_container_the_user_changed() {
    let server = TestServer::start(|_| {}).await;
    let review = fixture("deployment-update");
    let old = &review["request"]["oldObject"];
    let (decoded, updated) = admit(&server, &review).await;
    // The user changed app's args: app is fixed and pinned; init-setup
    // (bypassing chalk since before the update) and sidecar are left as they were.
    assert_eq!(
        decoded.warnings,
        [
            "entrypoint-guard: container \"init-setup\": command bypasses chalk: prepend the wrapper (unchanged by this update)",
            "entrypoint-guard: container \"app\": moved command into args so chalk runs it",
            "entrypoint-guard: container \"app\": image pinned to sha256:111111111...",
        ]
    );
    let lines = command_lines(&updated);
    let old_lines = command_lines(old);
    assert_eq!(lines[1], old_lines[1], "init-setup untouched");
    assert_eq!(lines[2], old_lines[2], "sidecar untouched: not even pinned");
    assert_eq!(
        lines[0],
        (
            "app".to_string(),
            json!(format!("registry.example/app:1.0@{APP_DIGEST}")),
            Value::Null,
            json!(["sh", "-c", "echo updated"])
        )
    );
    let bypass: Value =
        serde_json::from_str(decoded.audit_annotations["command-bypasses-wrapper"].as_str().unwrap()).unwrap();
    assert_eq!(bypass[0]["container"]["name"], "init-setup");
    assert_eq!(
        (bypass[0]["unchanged"].clone(), bypass[0]["applied"].clone()),
        (json!(true), json!(false))
    );
    assert!(
        bypass[0]["message"]
            .as_str()
            .unwrap()
            .ends_with("unchanged by this update, so left as it is")
    );

    // A scale and a label (or the Deployment controller's own update) change no container: no patch.
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    scaled["metadata"]["labels"]["team"] = json!("a");
    let mut scale = with_object(&review, "scale", scaled);
    scale["request"]["oldObject"] = old.clone();
    let (decoded, _) = admit(&server, &scale).await;
    assert!(decoded.patch.is_none(), "{:?}", decoded.patch);
    assert_eq!(
        decoded.warnings.len(),
        2,
        "the bypasses are still reported: {:?}",
        decoded.warnings
    );
    assert!(
        decoded
            .warnings
            .iter()
            .all(|w| w.ends_with("(unchanged by this update)"))
    );

    // Reinvoked on its own output, against the same oldObject: nothing more changes.
    let mut again = with_object(&review, "reinvoked", updated);
    again["request"]["oldObject"] = old.clone();
    assert!(admit(&server, &again).await.0.patch.is_none());
}

#[tokio::test]
async fn scope_pods_patches_only_pods_over_every_fixture() {
    let pods_only = TestServer::start(|c| c.scope = Scope::Pods).await;
    let workloads = TestServer::start(|_| {}).await;
    let mut pods_patched = 0;
    for (stem, review) in fixtures() {
        let (decoded, _) = admit(&pods_only, &review).await;
        let request = &review["request"];
        let kind = request["kind"]["kind"].as_str().unwrap();
        if kind == "Pod" && request["operation"] == "CREATE" {
            // Exactly the patch the default scope gives.
            let (default, _) = admit(&workloads, &review).await;
            assert!(decoded.patch.is_some(), "{stem}: Pods are fixed");
            assert_eq!(decoded.patch, default.patch, "{stem}");
            assert_eq!(decoded.warnings, default.warnings, "{stem}");
            pods_patched += 1;
            continue;
        }
        assert!(decoded.patch.is_none(), "{stem}: only Pods are patched");
        if kind == "Pod" {
            continue; // a Pod UPDATE is never looked at
        }
        let note = &decoded.warnings[0];
        let name = request["object"]["metadata"]["name"].as_str().unwrap();
        let expected = if controller_owned_workload(&review) {
            format!("entrypoint-guard: {kind} {name} is owned by ")
        } else {
            format!("entrypoint-guard: {kind} {name} is not patched (scope: pods)")
        };
        assert!(note.starts_with(&expected), "{stem}: {note}");
        assert!(decoded.warnings.len() > 1, "{stem}: the findings are still reported");
    }
    assert_eq!(pods_patched, 4, "pod-create, its dry run and the two owned Pods");
    let metrics = pods_only.running.metrics().encode();
    for kind in ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"] {
        let line = format!("entrypoint_guard_objects_left_unpatched_total{{kind=\"{kind}\",reason=\"scope\"}}");
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    }
}
