//! The objects the suite creates and what "fixed" means for them.
//!
//! Every pod template carries the fixture containers: `init-setup`
//! (`registry.example/init:1.0`, a wrapper naming its own program and a chalk
//! flag: the prepend fix), `app` (`registry.example/app:1.0`, the bare
//! wrapper: the args fix) and `sidecar` (no command: only pinned). The facts
//! are tests/fixtures/fixture-images.yaml, which the webhook also reads.

use std::sync::LazyLock;

use entrypoint_guard::engine::{Kind, Kinds};
use serde_json::{Value, json};

/// The image facts file the webhook and `audit` are given.
pub const FACTS_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fixture-images.yaml");

/// The engine's built-in kinds: the suite creates one object of each.
pub fn kinds() -> &'static Kinds {
    static KINDS: LazyLock<Kinds> = LazyLock::new(Kinds::builtin);
    &KINDS
}

/// The kind named `kind` in the list of every built-in kind the engine handles.
pub fn kind(kind: &str) -> &'static Kind {
    kinds()
        .iter()
        .find(|k| k.kind == kind)
        .unwrap_or_else(|| panic!("no kind {kind}"))
}

/// The path of object `name` of `kind` in `namespace`.
pub fn object_path(kind: &Kind, namespace: &str, name: &str) -> String {
    format!("{}/{name}", kind.list_path(Some(namespace)))
}

/// The unfixed pod spec (`restartPolicy` as the kind needs).
pub fn pod_spec(restart_policy: &str) -> Value {
    json!({
        "restartPolicy": restart_policy,
        "initContainers": [{"name": "init-setup", "image": "registry.example/init:1.0",
                            "command": ["sh", "-c"], "args": ["echo init"]}],
        "containers": [
            {"name": "app", "image": "registry.example/app:1.0", "command": ["sh", "-c"], "args": ["echo hello"]},
            {"name": "sidecar", "image": "registry.example/sidecar:1.0"}
        ]
    })
}

/// An object of `kind` named `name` whose pod template has the fixture
/// containers; labels `app: NAME` select its Pods.
pub fn workload(kind: &Kind, name: &str) -> Value {
    let labels = json!({"app": name});
    let template = |restart: &str| json!({"metadata": {"labels": labels}, "spec": pod_spec(restart)});
    let selector = json!({"matchLabels": labels});
    let spec = match kind.kind.as_str() {
        "Pod" => {
            return json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": pod_spec("Always")});
        }
        "PodTemplate" => {
            return json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template("Always")});
        }
        "ReplicationController" => json!({"replicas": 1, "selector": labels, "template": template("Always")}),
        "Deployment" | "ReplicaSet" => json!({"replicas": 1, "selector": selector, "template": template("Always")}),
        "StatefulSet" => {
            json!({"replicas": 1, "serviceName": name, "selector": selector, "template": template("Always")})
        }
        "DaemonSet" => json!({"selector": selector, "template": template("Always")}),
        "Job" => json!({"backoffLimit": 0, "template": template("Never")}),
        // Never scheduled within the suite: its Jobs are made by hand.
        "CronJob" => {
            json!({"schedule": "0 0 1 1 *", "jobTemplate": {"spec": {"backoffLimit": 0, "template": template("Never")}}})
        }
        other => panic!("the suite has no manifest for {other}: add one"),
    };
    json!({"apiVersion": kind.api_version(), "kind": kind.kind, "metadata": {"name": name, "labels": labels}, "spec": spec})
}

/// The pod spec inside `object` (a Pod or any pod-template kind).
pub fn pod_spec_of(object: &Value) -> &Value {
    let pointer = match object["kind"].as_str() {
        Some("Pod") => "/spec",
        Some("PodTemplate") => "/template/spec",
        Some("CronJob") => "/spec/jobTemplate/spec/template/spec",
        _ => "/spec/template/spec",
    };
    object
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no pod spec at {pointer} in {object}"))
}

/// `sha256:…` of `image` in the facts file.
pub fn digest(image: &str) -> String {
    let text = std::fs::read_to_string(FACTS_FILE).expect("read the facts");
    let facts: Value = serde_saphyr::from_str(&text).expect("the facts are YAML");
    facts[image]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no digest for {image}"))
        .to_string()
}

/// (name, image, command, args) of every container, init containers first.
fn containers(spec: &Value) -> Vec<(String, String, Value, Value)> {
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            out.push((
                c["name"].as_str().unwrap_or("?").to_string(),
                c["image"].as_str().unwrap_or("?").to_string(),
                c.get("command").cloned().unwrap_or(Value::Null),
                c.get("args").cloned().unwrap_or(Value::Null),
            ));
        }
    }
    out
}

/// The containers as the webhook fixes them: prepend fix for `init-setup`
/// (keeping chalk's `--heartbeat`), args fix for `app`, every image pinned.
pub fn fixed_containers() -> Vec<(String, String, Value, Value)> {
    let pinned = |image: &str| format!("{image}@{}", digest(image));
    vec![
        (
            "init-setup".into(),
            pinned("registry.example/init:1.0"),
            json!(["/chalk", "exec", "--heartbeat", "--exec-command-name", "sh", "--", "-c"]),
            json!(["echo init"]),
        ),
        (
            "app".into(),
            pinned("registry.example/app:1.0"),
            Value::Null,
            json!(["sh", "-c", "echo hello"]),
        ),
        (
            "sidecar".into(),
            pinned("registry.example/sidecar:1.0"),
            Value::Null,
            Value::Null,
        ),
    ]
}

/// The containers as written.
pub fn unfixed_containers() -> Vec<(String, String, Value, Value)> {
    containers(&pod_spec("Always"))
}

/// Panics unless `object`'s pod spec is the fixed one.
pub fn assert_fixed(object: &Value, what: &str) {
    assert_eq!(
        containers(pod_spec_of(object)),
        fixed_containers(),
        "{what} is not fixed: {object}"
    );
}

/// Panics unless `object`'s pod spec is exactly as written.
pub fn assert_unfixed(object: &Value, what: &str) {
    assert_eq!(
        containers(pod_spec_of(object)),
        unfixed_containers(),
        "{what} was changed: {object}"
    );
}

/// Whether `object`'s pod spec is the fixed one.
pub fn is_fixed(object: &Value) -> bool {
    containers(pod_spec_of(object)) == fixed_containers()
}
