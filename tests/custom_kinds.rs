//! Custom kinds (`customKinds`): a Rollout, a Knative Service, a CloneSet,
//! an Advanced StatefulSet and DaemonSet, a ScaledJob, a Volcano Job and a
//! PyTorchJob that override `command` are fixed like a Deployment — by the
//! engine, by the webhook over real HTTPS (fixture-shaped AdmissionReviews)
//! and by `review` — while a Revision its Configuration owns is only
//! reported, `scope: pods` holds them, and an UPDATE that leaves a container
//! as it was changes nothing. Objects: tests/fixtures/custom-kinds/.

#[path = "support/serve.rs"]
mod support;

use entrypoint_guard::config::Config;
use entrypoint_guard::engine::{self, Mode, Policy, Rule, workload};
use serde_json::{Value, json};
use support::*;

const WORKLOADS: &str = include_str!("fixtures/custom-kinds/workloads.yaml");
const PRESETS: &str = "customKinds: [argo-rollouts, knative-serving, openkruise, keda, volcano, kubeflow]\n";

fn workloads() -> Vec<Value> {
    serde_saphyr::from_multiple(WORKLOADS).unwrap()
}

fn config(extra: &str) -> Config {
    let mut config = Config::from_yaml(&format!("{PRESETS}{extra}"), "custom-kinds.yaml").unwrap();
    config.image_facts = entrypoint_guard::config::parse_yaml(IMAGE_FACTS, "facts").unwrap();
    config
}

fn label(object: &Value) -> String {
    format!(
        "{} {}",
        object["apiVersion"].as_str().unwrap(),
        object["kind"].as_str().unwrap()
    )
}

/// The engine's fixed object under `policy` (and its inspection).
fn fixed(object: &Value, policy: &Policy, facts: &entrypoint_guard::image::Facts) -> (Value, engine::Inspection) {
    let inspection = engine::inspect(object, facts, policy, Mode::Fix);
    let mut out = object.clone();
    json_patch::patch(&mut out, &inspection.patch).unwrap();
    (out, inspection)
}

/// Every container of every pod spec of `object` is fixed and pinned.
fn assert_fixed(object: &Value, policy: &Policy) {
    let what = label(object);
    let specs = workload::pod_specs(object, &policy.kinds);
    assert!(!specs.is_empty(), "{what}: its pod specs are found");
    for at in specs {
        let spec = object.pointer(&at.spec).unwrap();
        for app in spec["containers"].as_array().unwrap() {
            assert!(app.get("command").is_none(), "{what} {}: command moved out", at.spec);
            assert_eq!(app["args"][0], "sh", "{what}: command + args, in order");
            assert_eq!(app["image"], format!("registry.example/app:1.0@{APP_DIGEST}"), "{what}");
        }
        for init in spec["initContainers"].as_array().into_iter().flatten() {
            assert_eq!(
                init["command"],
                json!(["/chalk", "exec", "--heartbeat", "--exec-command-name", "sh", "--", "-c"]),
                "{what}: the wrapper prepended"
            );
            assert_eq!(
                init["image"],
                format!("registry.example/init:1.0@{INIT_DIGEST}"),
                "{what}"
            );
        }
    }
    let trace = object["metadata"]["annotations"]["entrypoint-guard.io/resolved-images"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: the trace annotation"));
    assert!(trace.contains(APP_DIGEST), "{what}: {trace}");
}

#[test]
fn the_engine_fixes_every_preset_kind_like_a_deployment() {
    let config = config("");
    let (policy, facts) = (config.policy(), config.facts());
    for object in workloads() {
        let what = label(&object);
        let (out, inspection) = fixed(&object, &policy, &facts);
        if object["kind"] == "Revision" {
            // Its Configuration owns it: reported, never patched.
            assert!(inspection.patch.is_empty(), "{what}");
            assert_eq!(inspection.findings[0].rule, Rule::ControllerOwned, "{what}");
            assert!(inspection.findings[0].message.contains("owned by Configuration hello"));
            assert!(inspection.proposed.is_empty(), "{what}: the fix belongs in the Service");
            continue;
        }
        assert_fixed(&out, &policy);
        // Without the presets the engine does not know the kind: nothing happens.
        let unknown = engine::inspect(&object, &facts, &Policy::default(), Mode::Fix);
        assert!(unknown.findings.is_empty(), "{what}");
    }
}

#[test]
fn a_star_walks_every_task_and_every_replica_type() {
    let config = config("");
    let (policy, facts) = (config.policy(), config.facts());
    for (kind, expected) in [
        (
            "Job",
            vec!["/spec/tasks/0/template/spec", "/spec/tasks/1/template/spec"],
        ),
        (
            "PyTorchJob",
            vec![
                "/spec/pytorchReplicaSpecs/Master/template/spec",
                "/spec/pytorchReplicaSpecs/Worker/template/spec",
            ],
        ),
    ] {
        let object = workloads()
            .into_iter()
            .find(|o| o["kind"] == kind && o["apiVersion"] != "batch/v1")
            .unwrap();
        let specs: Vec<String> = workload::pod_specs(&object, &policy.kinds)
            .into_iter()
            .map(|s| s.spec)
            .collect();
        assert_eq!(specs, expected);
        let (_, inspection) = fixed(&object, &policy, &facts);
        let fixes = inspection
            .findings
            .iter()
            .filter(|f| f.rule == Rule::CommandBypassesWrapper && f.applied)
            .count();
        assert_eq!(
            fixes,
            specs.len() + usize::from(kind == "Job"),
            "{kind}: every task's app (and the ps init)"
        );
    }
}

#[test]
fn escaped_keys_in_a_path_are_walked_and_patched() {
    let text = "customKinds:\n  - {group: example.com, kind: Widget, plural: widgets, versions: [v1], \
                podSpecPaths: ['/spec/pod~1templates/*/spec']}\n";
    let mut config = Config::from_yaml(text, "widget.yaml").unwrap();
    config.image_facts = entrypoint_guard::config::parse_yaml(IMAGE_FACTS, "facts").unwrap();
    let (policy, facts) = (config.policy(), config.facts());
    let app = json!({"name": "app", "image": "registry.example/app:1.0", "command": ["sh", "-c"], "args": ["x"]});
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"pod/templates": [{"spec": {"containers": [app.clone()]}}, {"note": "no spec"},
            {"spec": {"containers": [app]}}]}});
    let (out, inspection) = fixed(&widget, &policy, &facts);
    let paths: Vec<String> = inspection
        .patch
        .iter()
        .map(|op| serde_json::to_value(op).unwrap()["path"].as_str().unwrap().to_string())
        .collect();
    for template in [0, 2] {
        let container = format!("/spec/pod~1templates/{template}/spec/containers/0");
        assert!(
            paths.iter().any(|p| p.starts_with(&container)),
            "{container} in {paths:?}"
        );
        assert!(out.pointer(&format!("{container}/command")).is_none(), "{container}");
        assert_eq!(out.pointer(&format!("{container}/args/0")), Some(&json!("sh")));
    }
    assert_eq!(out["spec"]["pod/templates"][1], json!({"note": "no spec"}));
    let fields: Vec<&str> = inspection
        .findings
        .iter()
        .filter_map(|f| f.container.as_ref().map(|c| c.field.as_str()))
        .collect();
    assert!(
        fields.contains(&"spec.pod/templates[2].spec.containers[0]"),
        "{fields:?}"
    );
}

/// A fixture-shaped AdmissionReview (the captured Deployment CREATE's
/// request, with this object's kind, resource, name and namespace).
fn review_of(object: &Value, policy: &Policy, operation: &str, old: Option<&Value>) -> Value {
    let mut review = fixture("deployment-create");
    let api_version = object["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap();
    let plural = &policy.kinds.find(Some(api_version), kind).unwrap().plural;
    let request = &mut review["request"];
    request["uid"] = json!(format!("uid-{}", kind.to_lowercase()));
    for field in ["kind", "requestKind"] {
        request[field] = json!({"group": group, "version": version, "kind": kind});
    }
    for field in ["resource", "requestResource"] {
        request[field] = json!({"group": group, "version": version, "resource": plural});
    }
    request["name"] = object["metadata"]["name"].clone();
    request["namespace"] = object["metadata"]["namespace"].clone();
    request["operation"] = json!(operation);
    request["object"] = object.clone();
    if let Some(old) = old {
        request["oldObject"] = old.clone();
    }
    review
}

#[tokio::test]
async fn the_webhook_fixes_them_and_audits_them_over_https() {
    let config = config("");
    let policy = config.policy();
    let facts = config.facts();
    let server = TestServer::start(|c| c.custom_kinds = config.custom_kinds.clone()).await;
    for object in workloads() {
        let what = label(&object);
        let review = review_of(&object, &policy, "CREATE", None);
        let (decoded, admitted) = admit(&server, &review).await;
        let (expected, inspection) = fixed(&object, &policy, &facts);
        assert_eq!(admitted, expected, "{what}: the webhook applies the engine's fix");
        if object["kind"] == "Revision" {
            assert!(decoded.patch.is_none(), "{what}");
            assert!(
                decoded
                    .warnings
                    .iter()
                    .any(|w| w.contains("owned by Configuration hello")),
                "{what}: {:?}",
                decoded.warnings
            );
        } else {
            assert_fixed(&admitted, &policy);
            assert_eq!(decoded.warnings.len(), inspection.findings.len(), "{what}");
        }
        // The /audit route reports the same findings and changes nothing.
        let audited = decode_like_api_server(&review, &server.post("/audit", &review).await);
        assert!(audited.patch.is_none(), "{what}");
        assert_eq!(audited.warnings.len(), decoded.warnings.len(), "{what}");
    }
}

#[tokio::test]
async fn scope_and_the_update_rule_hold_for_custom_kinds() {
    let config = config("");
    let policy = config.policy();
    let rollout = workloads().into_iter().find(|o| o["kind"] == "Rollout").unwrap();

    // scope: pods reports the Rollout, patches nothing.
    let pods_only = TestServer::start(|c| {
        c.custom_kinds = config.custom_kinds.clone();
        c.scope = engine::Scope::Pods;
    })
    .await;
    let (decoded, _) = admit(&pods_only, &review_of(&rollout, &policy, "CREATE", None)).await;
    assert!(decoded.patch.is_none());
    assert!(
        decoded.warnings[0].contains("Rollout rollouts-demo is not patched (scope: pods)"),
        "{:?}",
        decoded.warnings
    );

    // An UPDATE that only relabels the Rollout leaves its containers as they were.
    let server = TestServer::start(|c| c.custom_kinds = config.custom_kinds.clone()).await;
    let mut relabelled = rollout.clone();
    relabelled["metadata"]["labels"] = json!({"team": "shop"});
    let (decoded, admitted) = admit(&server, &review_of(&relabelled, &policy, "UPDATE", Some(&rollout))).await;
    assert!(decoded.patch.is_none(), "{:?}", decoded.patch);
    assert_eq!(admitted, relabelled);
    assert!(
        decoded.warnings.iter().all(|w| w.contains("unchanged by this update")),
        "{:?}",
        decoded.warnings
    );
}

#[test]
fn review_sees_them() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, PRESETS).unwrap();
    let manifests = dir.path().join("workloads.yaml");
    std::fs::write(&manifests, WORKLOADS).unwrap();
    let facts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fixture-images.yaml");
    let run = |config: Option<&std::path::Path>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_entrypoint-guard"));
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        command
            .args(["review", "-o", "yaml", "-f"])
            .arg(&manifests)
            .arg("--images")
            .arg(&facts)
            .env_remove("ENTRYPOINT_GUARD_CONFIG")
            .output()
            .unwrap()
    };
    let out = run(Some(&config_path));
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policy = Config::from_yaml(PRESETS, "c").unwrap().policy();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(docs.len(), workloads().len());
    for doc in &docs {
        if doc["kind"] != "Revision" {
            assert_fixed(doc, &policy);
        }
    }
    // Without customKinds, review knows none of them.
    let plain = run(None);
    assert_eq!(
        plain.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plain.stdout)
    );
}
