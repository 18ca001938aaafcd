//! `entrypoint-guard audit` against the live control plane.

use std::collections::BTreeSet;
use std::time::Duration;

use json_patch::PatchOperation;
use serde_json::{Value, json};

use super::{Suite, run_tool};
use crate::control_plane::wait_for;
use crate::manifests::{FACTS_FILE, assert_fixed, kind, kinds, object_path, workload};
use crate::namespaces;

const BINARY: &str = env!("CARGO_BIN_EXE_entrypoint-guard");

/// Every kind in an `audit` namespace (so stored unfixed), with what the
/// controllers make of them. `audit` reports each object once (owned ones
/// through their owner), and its fix of each equals the webhook's fix of the
/// same object (a server dry-run in a `fix` namespace). `audit -o yaml` is
/// accepted by `kubectl apply --dry-run=server` (client- and server-side);
/// the Pod and the Job it leaves out really are refused by the API server.
pub async fn case(s: &Suite) {
    let ns = "audit-cli";
    let fix_ns = "audit-cli-fix";
    namespaces::create(s, ns, Some("audit")).await;
    namespaces::create(s, fix_ns, Some("fix")).await;
    for kind in kinds().iter() {
        let name = kind.kind.to_lowercase();
        s.api
            .create(&kind.list_path(Some(ns)), &workload(kind, &name), false)
            .await
            .ok(&format!("create {} {name}", kind.kind));
    }
    // What the running controllers make: the Deployment's ReplicaSet, and a
    // Pod each for it, the bare ReplicaSet and the Job.
    let pods = kind("Pod").list_path(Some(ns));
    wait_for("the controllers' Pods", Duration::from_secs(60), || async {
        let (pods, _) = s.api.list(&pods).await;
        let owned = pods
            .iter()
            .filter(|p| p["metadata"]["ownerReferences"].is_array())
            .count();
        Ok((owned == 3).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    let report: Value = {
        let out = audit(s, ns, "json", &[]).await;
        assert_eq!(out.status.code(), Some(1), "findings: {}", crate::chart::describe(&out));
        serde_json::from_slice(&out.stdout).expect("the JSON report")
    };
    let objects = report["objects"].as_array().expect("objects");
    let reported: BTreeSet<String> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_string())
        .collect();
    let every: BTreeSet<String> = kinds().iter().map(|k| k.kind.clone()).collect();
    assert_eq!(reported, every, "one report per object created: {report}");
    assert_eq!(
        report["summary"]["skippedOwned"], 4,
        "ReplicaSet + 3 Pods via their owners: {}",
        report["summary"]
    );

    for object in objects {
        let kind = kind(object["kind"].as_str().unwrap());
        let name = object["name"].as_str().unwrap();
        let stored = s.api.get(&object_path(kind, ns, name)).await.ok(name).body;
        let fixed = with_fix(&stored, object);
        assert_fixed(&fixed, &format!("audit's fix of {} {name}", kind.kind));
        let mut again = stored.clone();
        strip_server_fields(&mut again);
        again["metadata"]["namespace"] = json!(fix_ns);
        let webhook = s
            .api
            .create(&kind.list_path(Some(fix_ns)), &again, true)
            .await
            .ok(&format!("dry-run {} {name} in {fix_ns}", kind.kind));
        assert_fixed(&webhook.body, &format!("the webhook's fix of {} {name}", kind.kind));
        let resolved = |o: &Value| o["metadata"]["annotations"]["entrypoint-guard.io/resolved-images"].clone();
        assert_eq!(resolved(&fixed), resolved(&webhook.body), "{} {name}", kind.kind);
    }

    let out = audit(s, ns, "yaml", &[]).await;
    let yaml = String::from_utf8(out.stdout.clone()).expect("UTF-8");
    for left_out in ["# Pod audit-cli/pod: left out", "# Job audit-cli/job: left out"] {
        assert!(yaml.contains(left_out), "{left_out}:\n{yaml}");
    }
    let documents: Vec<Value> = serde_saphyr::from_multiple(&yaml).expect("YAML");
    assert_eq!(documents.len(), kinds().len() - 2, "{yaml}");
    let kubeconfig = s.kubeconfig.to_string_lossy().into_owned();
    // As docs/AUDIT.md says: a plain apply, or a server-side one that takes
    // the fixed fields over from the manager that wrote them.
    for extra in [&[][..], &["--server-side", "--force-conflicts"]] {
        let mut args = vec!["--kubeconfig", &kubeconfig, "apply", "--dry-run=server", "-f", "-"];
        args.extend_from_slice(extra);
        let applied = run_tool("kubectl", &args, Some(&yaml)).await;
        let what = format!("kubectl {}", args.join(" "));
        assert!(
            applied.status.success(),
            "{what} refused audit -o yaml: {}\n{yaml}",
            crate::chart::describe(&applied)
        );
        let lines = String::from_utf8_lossy(&applied.stdout).lines().count();
        assert_eq!(lines, documents.len(), "{what}: {}", crate::chart::describe(&applied));
    }

    // What is left out would be refused: a Pod's command and a Job's template cannot change.
    for (kind_name, refusal) in [("Pod", "may not change fields"), ("Job", "field is immutable")] {
        let object = objects.iter().find(|o| o["kind"] == kind_name).unwrap();
        let path = object_path(kind(kind_name), ns, object["name"].as_str().unwrap());
        let stored = s.api.get(&path).await.ok(kind_name).body;
        let reply = s.api.replace(&path, &with_fix(&stored, object), true).await;
        assert_eq!(reply.status, 422, "{kind_name}: {}", reply.body);
        let message = reply.body["message"].as_str().unwrap_or_default();
        assert!(message.contains(refusal), "{kind_name}: {message}");
    }
}

/// `entrypoint-guard audit -n NS -o FORMAT EXTRA...` with the admin kubeconfig and the facts.
pub(super) async fn audit(s: &Suite, ns: &str, format: &str, extra: &[&str]) -> std::process::Output {
    let kubeconfig = s.kubeconfig.to_string_lossy().into_owned();
    let mut args = vec![
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "-n",
        ns,
        "-o",
        format,
        "--images",
        FACTS_FILE,
    ];
    args.extend_from_slice(extra);
    run_tool(BINARY, &args, None).await
}

/// `stored` with the report entry's `proposed` patch applied.
fn with_fix(stored: &Value, reported: &Value) -> Value {
    let proposed: Vec<PatchOperation> = serde_json::from_value(reported["proposed"].clone()).expect("a JSON patch");
    let mut fixed = stored.clone();
    json_patch::patch(&mut fixed, &proposed).expect("audit's patch applies to the stored object");
    fixed
}

/// Drops what the API server and the Job controller's defaults set, so the
/// object can be created again.
fn strip_server_fields(object: &mut Value) {
    object.as_object_mut().unwrap().remove("status");
    let metadata = object["metadata"].as_object_mut().unwrap();
    for field in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "generation",
        "ownerReferences",
    ] {
        metadata.remove(field);
    }
    if object["kind"] == "Job" {
        // Generated from the Job's uid, and refused on a new Job.
        object["spec"].as_object_mut().unwrap().remove("selector");
        let labels = object["spec"]["template"]["metadata"]["labels"]
            .as_object_mut()
            .unwrap();
        labels.remove("controller-uid");
        labels.remove("batch.kubernetes.io/controller-uid");
    }
}
