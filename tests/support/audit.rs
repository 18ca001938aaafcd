//! A stand-in kube-apiserver for `audit` tests: real HTTPS (rustls, ring) on
//! loopback with a CA made by rcgen, serving the list responses captured from
//! kube-apiserver v1.32 (tests/fixtures/api-lists) at their API paths, for all
//! namespaces and per namespace, paged with `limit`/`continue` the way the API
//! server pages. A kubeconfig written to a temp dir points the real binary,
//! and so the real kube client (TLS, auth, paging, decoding), at it.

#![allow(dead_code)]

#[path = "audit_server.rs"]
mod server;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use entrypoint_guard::config;
use entrypoint_guard::engine::{self, Inspection, Mode, Policy};
use entrypoint_guard::image::Facts;
use serde_json::{Value, json};

#[allow(unused_imports)]
pub use server::{ApiServer, Applied, Behaviour, Crd, GeneratedPods, Seen, allows, shipped_cluster_role};

/// The bearer token the kubeconfig carries and the server demands.
pub const TOKEN: &str = "audit-test-token";

/// The image facts of the fixtures' images: `app` has the bare wrapper (args
/// fix), `init` a wrapper naming its program (prepend fix), `sidecar` is not
/// wrapped (only pinned, to its digest).
pub const IMAGES_YAML: &str = r#"registry.example/app:1.0:
  entrypoint: ["/chalk", "exec", "--"]
registry.example/init:1.0:
  entrypoint: ["/chalk", "exec", "--exec-command-name", "setup", "--"]
registry.example/sidecar:1.0:
  entrypoint: ["/usr/bin/sidecar"]
  digest: "sha256:5c3b1e3e1e0d1d5b7c1d2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d"
"#;

/// The path of a fixture under tests/fixtures/api-lists.
pub fn fixture_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/api-lists")
        .join(file)
}

/// A captured list response.
pub fn fixture(file: &str) -> Value {
    let path = fixture_path(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every kind the audit lists: (fixture file, apiVersion, kind, collection path).
pub const COLLECTIONS: [(&str, &str, &str, &str); 9] = [
    ("api_v1_pods.json", "v1", "Pod", "/api/v1/pods"),
    ("api_v1_podtemplates.json", "v1", "PodTemplate", "/api/v1/podtemplates"),
    (
        "api_v1_replicationcontrollers.json",
        "v1",
        "ReplicationController",
        "/api/v1/replicationcontrollers",
    ),
    (
        "apis_apps_v1_deployments.json",
        "apps/v1",
        "Deployment",
        "/apis/apps/v1/deployments",
    ),
    (
        "apis_apps_v1_statefulsets.json",
        "apps/v1",
        "StatefulSet",
        "/apis/apps/v1/statefulsets",
    ),
    (
        "apis_apps_v1_daemonsets.json",
        "apps/v1",
        "DaemonSet",
        "/apis/apps/v1/daemonsets",
    ),
    (
        "apis_apps_v1_replicasets.json",
        "apps/v1",
        "ReplicaSet",
        "/apis/apps/v1/replicasets",
    ),
    ("apis_batch_v1_jobs.json", "batch/v1", "Job", "/apis/batch/v1/jobs"),
    (
        "apis_batch_v1_cronjobs.json",
        "batch/v1",
        "CronJob",
        "/apis/batch/v1/cronjobs",
    ),
];

/// Writes [`IMAGES_YAML`] into `dir`.
pub fn images_file(dir: &Path) -> PathBuf {
    let path = dir.join("images.yaml");
    std::fs::write(&path, IMAGES_YAML).expect("write images file");
    path
}

/// The facts `--images` gives the binary, read the same way.
pub fn images_facts(dir: &Path) -> Facts {
    let entries = config::load_image_facts(&images_file(dir)).expect("images file parses");
    config::facts_from(&entries)
}

/// What `review` and the webhook decide for `item` (a list item of `kind`):
/// `engine::inspect` with the default policy, in fix mode.
pub fn expected(item: &Value, api_version: &str, kind: &str, facts: &Facts) -> (Value, Inspection) {
    let mut object = json!({"apiVersion": api_version, "kind": kind});
    for (k, v) in item.as_object().expect("items are objects") {
        object[k] = v.clone();
    }
    let inspection = engine::inspect(&object, facts, &Policy::default(), Mode::Fix);
    (object, inspection)
}

/// Runs the built binary's `audit` against `kubeconfig` (through
/// `KUBECONFIG`, as a user would), with `args` after `audit`.
pub fn run_audit(kubeconfig: &Path, args: &[&str]) -> Output {
    let home = kubeconfig.parent().expect("kubeconfig has a parent");
    Command::new(env!("CARGO_BIN_EXE_entrypoint-guard"))
        .arg("audit")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        // Keep the user's ~/.kube and environment out of the test.
        .env("HOME", home)
        .env_remove("ENTRYPOINT_GUARD_CONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run entrypoint-guard")
}

/// The JSON report of an audit run.
pub fn json_report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Validates Kubernetes YAML with `kubernetes-validate --strict` against the
/// 1.33 schemas (offline); panics with its report when something is invalid.
pub fn kubernetes_validate(yaml: &str) {
    use std::io::Write as _;
    let mut child = match Command::new("kubernetes-validate")
        .args(["--strict", "-k", "1.33.0", "--quiet", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "kubernetes-validate is needed by this test and could not run ({e}); \
             install it with scripts/testenv/install.sh"
        ),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write to kubernetes-validate");
    let output = child.wait_with_output().expect("kubernetes-validate runs");
    assert!(
        output.status.success(),
        "kubernetes-validate rejected the YAML:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The objects of the fixtures (plus `extra`) that have findings, keyed
/// `namespace/Kind/name`, with what `engine::inspect` says about them.
pub fn expected_findings(dir: &Path, extra: &HashMap<String, Vec<Value>>) -> HashMap<String, Value> {
    let facts = images_facts(dir);
    let mut out = HashMap::new();
    for (file, api_version, kind, path) in COLLECTIONS {
        let list = fixture(file);
        let items = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .chain(extra.get(path).into_iter().flatten());
        for item in items {
            let (_, inspection) = expected(item, api_version, kind, &facts);
            if inspection.findings.is_empty() {
                continue;
            }
            let key = format!(
                "{}/{kind}/{}",
                item["metadata"]["namespace"].as_str().unwrap(),
                item["metadata"]["name"].as_str().unwrap()
            );
            let proposed = serde_json::to_value(&inspection.proposed).unwrap();
            out.insert(key, json!({"findings": inspection.findings, "proposed": proposed}));
        }
    }
    out
}

/// The report's objects keyed `namespace/Kind/name`, with findings and proposed patch.
pub fn reported(report: &Value) -> HashMap<String, Value> {
    report["objects"]
        .as_array()
        .expect("objects array")
        .iter()
        .map(|o| {
            let key = format!(
                "{}/{}/{}",
                o["namespace"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            );
            (key, json!({"findings": o["findings"], "proposed": o["proposed"]}))
        })
        .collect()
}

/// The child's stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
