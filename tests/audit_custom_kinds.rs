//! `audit` with `customKinds`: a custom kind is listed in the version the API
//! server's discovery says it serves, and only when it serves it; its
//! objects are judged by the same engine as the built-in kinds.

#[path = "support/audit.rs"]
mod support;

use serde_json::{Value, json};
use support::{ApiServer, Behaviour, Crd, images_file, json_report, run_audit, stderr};

fn rollout() -> Value {
    json!({"metadata": {"name": "rollouts-demo", "namespace": "demo", "uid": "7c0e9d3a-rollout-0001"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "demo"}},
            "strategy": {"canary": {"steps": [{"setWeight": 20}]}},
            "template": {"metadata": {"labels": {"app": "demo"}}, "spec": {"containers": [
                {"name": "app", "image": "registry.example/app:1.0", "command": ["sh", "-c"], "args": ["echo hello"]}]}}}})
}

#[test]
fn custom_kinds_are_listed_where_the_api_server_serves_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = ApiServer::start(Behaviour {
        crds: vec![Crd {
            group: "argoproj.io".into(),
            versions: vec!["v1alpha1".into()],
            kind: "Rollout".into(),
            plural: "rollouts".into(),
            items: vec![rollout()],
        }],
        ..Behaviour::default()
    });
    let kubeconfig = server.kubeconfig(dir.path());
    let config = dir.path().join("config.yaml");
    // keda is configured but not installed: it is skipped, not an error.
    std::fs::write(&config, "customKinds: [argo-rollouts, keda]\n").unwrap();
    let images = images_file(dir.path());
    let output = run_audit(
        &kubeconfig,
        &["-o", "json", "--images", images.to_str().unwrap(), "-n", "demo"],
    );
    // Without the configuration the Rollout is not even asked for.
    let report = json_report(&output);
    assert!(
        report["objects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["kind"] != "Rollout"),
        "{report}"
    );
    assert!(server.seen().iter().all(|s| !s.path.contains("argoproj.io")));

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_entrypoint-guard"))
        .arg("--config")
        .arg(&config)
        .args(["audit", "-o", "json", "-n", "demo", "--images"])
        .arg(&images)
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", dir.path())
        .env_remove("ENTRYPOINT_GUARD_CONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "findings exit 1: {}", stderr(&output));
    let report = json_report(&output);
    assert_eq!(report["errors"], json!([]), "an absent CRD is no error: {report}");
    let rollout = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Rollout")
        .unwrap_or_else(|| panic!("the Rollout is audited: {report}"));
    assert_eq!(rollout["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(rollout["name"], "rollouts-demo");
    let rules: Vec<&str> = rollout["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["command-bypasses-wrapper"], "{rollout}");

    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    for asked in [
        "/apis/argoproj.io",
        "/apis/argoproj.io/v1alpha1",
        "/apis/argoproj.io/v1alpha1/namespaces/demo/rollouts",
        "/apis/keda.sh",
    ] {
        assert!(paths.iter().any(|p| p == asked), "{asked} in {paths:?}");
    }
    assert!(
        paths.iter().all(|p| !p.contains("scaledjobs")),
        "keda is not served, so not listed: {paths:?}"
    );
}
