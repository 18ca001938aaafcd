//! The webhook answers every captured API-server request over real TLS: fix
//! mode patches, audit mode reports, dry runs answer like real requests, and
//! the answers are what the API server accepts. What the controllers create
//! (owned ReplicaSets and Jobs) and UPDATEs are `serve_controllers.rs`'s.

#[path = "support/serve.rs"]
mod support;

use entrypoint_guard::admission::Schema;
use entrypoint_guard::engine::Kinds;
use entrypoint_guard::engine::{Mode, workload};
use serde_json::{Value, json};
use support::*;

const RESOLVED: &str = "entrypoint-guard.io/resolved-images";

fn pod_spec(object: &Value) -> &Value {
    let specs = workload::pod_specs(object, &Kinds::builtin());
    assert_eq!(specs.len(), 1, "one pod spec in {}", object["kind"]);
    object.pointer(&specs[0].spec).unwrap()
}

fn container<'a>(spec: &'a Value, list: &str, name: &str) -> &'a Value {
    spec[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {list} {name}"))
}

/// Checks a fixed object against the original: exactly the expected
/// command/args/image changes and the trace annotation, nothing else.
fn assert_fixed(stem: &str, original: &Value, fixed: &Value) {
    let before = pod_spec(original);
    let after = pod_spec(fixed);

    let init = container(after, "initContainers", "init-setup");
    assert_eq!(
        init["command"],
        json!(["/chalk", "exec", "--heartbeat", "--exec-command-name", "sh", "--", "-c"]),
        "{stem}: init keeps its chalk flags and names its program"
    );
    assert_eq!(
        init["args"],
        container(before, "initContainers", "init-setup")["args"],
        "{stem}"
    );
    assert_eq!(
        init["image"],
        format!("registry.example/init:1.0@{INIT_DIGEST}"),
        "{stem}"
    );

    let app = container(after, "containers", "app");
    let old_app = container(before, "containers", "app");
    assert!(app.get("command").is_none(), "{stem}: app command moved out");
    let mut moved = old_app["command"].as_array().unwrap().clone();
    moved.extend(old_app["args"].as_array().unwrap().iter().cloned());
    assert_eq!(app["args"], Value::Array(moved), "{stem}: command + args, in order");
    assert_eq!(app["image"], format!("registry.example/app:1.0@{APP_DIGEST}"), "{stem}");

    let sidecar = container(after, "containers", "sidecar");
    assert_eq!(
        sidecar["image"],
        format!("registry.example/sidecar:1.0@{SIDECAR_DIGEST}")
    );
    assert!(sidecar.get("command").is_none() && sidecar.get("args").is_none());

    let record: Value = serde_json::from_str(fixed["metadata"]["annotations"][RESOLVED].as_str().unwrap()).unwrap();
    assert_eq!(
        record,
        json!({"registry.example/app:1.0": APP_DIGEST, "registry.example/init:1.0": INIT_DIGEST,
               "registry.example/sidecar:1.0": SIDECAR_DIGEST}),
        "{stem}"
    );

    // Undo the expected changes: what is left must be the original, byte for byte.
    let mut undone = fixed.clone();
    let spec_at = workload::pod_specs(&undone, &Kinds::builtin())[0].spec.clone();
    let spec = undone.pointer_mut(&spec_at).unwrap();
    for (list, containers) in [
        ("initContainers", &before["initContainers"]),
        ("containers", &before["containers"]),
    ] {
        for (i, original) in containers.as_array().unwrap().iter().enumerate() {
            let c = &mut spec[list][i];
            for field in ["command", "args", "image"] {
                match original.get(field) {
                    Some(v) => c[field] = v.clone(),
                    None => {
                        c.as_object_mut().unwrap().remove(field);
                    }
                }
            }
        }
    }
    let annotations = undone["metadata"]["annotations"].as_object_mut().unwrap();
    annotations.remove(RESOLVED);
    if annotations.is_empty() && original["metadata"].get("annotations").is_none() {
        undone["metadata"].as_object_mut().unwrap().remove("annotations");
    }
    assert_eq!(&undone, original, "{stem}: nothing else changes");
}

/// Fixtures whose answers `serve_controllers.rs` checks: the objects
/// controllers own (never patched) and the Deployment UPDATE (only what
/// changed is fixed).
fn checked_elsewhere(stem: &str, review: &Value) -> bool {
    stem == "deployment-update" || controller_owned_workload(review)
}

#[tokio::test]
async fn fix_mode_patches_every_fixture_as_the_api_server_would_apply_it() {
    let server = TestServer::start(|_| {}).await;
    let mut fixed_count = 0;
    for (stem, review) in fixtures() {
        let answer = server.post("/mutate", &review).await;
        let decoded = decode_like_api_server(&review, &answer);
        assert!(decoded.allowed, "{stem}");
        if stem == "pod-update" {
            assert!(decoded.patch.is_none(), "Pod UPDATE is never patched");
            assert!(
                decoded.warnings.is_empty() && decoded.audit_annotations.is_empty(),
                "{stem}"
            );
            continue;
        }
        if checked_elsewhere(&stem, &review) {
            continue;
        }
        fixed_count += 1;
        let patch = decoded.patch.unwrap_or_else(|| panic!("{stem}: no patch"));
        let fixed = patched(&review, &patch);
        assert_fixed(&stem, &review["request"]["object"], &fixed);
        assert_eq!(
            decoded.warnings,
            [
                "entrypoint-guard: container \"init-setup\": prepended the chalk wrapper to command",
                "entrypoint-guard: container \"init-setup\": image pinned to sha256:222222222...",
                "entrypoint-guard: container \"app\": moved command into args so chalk runs it",
                "entrypoint-guard: container \"app\": image pinned to sha256:111111111...",
                "entrypoint-guard: container \"sidecar\": image pinned to sha256:333333333...",
            ],
            "{stem}"
        );
        let keys: Vec<&String> = decoded.audit_annotations.keys().collect();
        assert_eq!(keys, ["command-bypasses-wrapper", "image-pinned"], "{stem}");

        // Reinvocation (reinvocationPolicy: IfNeeded) on the webhook's own output changes nothing.
        let again = with_object(&review, "reinvoked", fixed);
        let decoded = decode_like_api_server(&again, &server.post("/mutate", &again).await);
        assert!(
            decoded.patch.is_none(),
            "{stem}: second pass patched {:?}",
            decoded.patch
        );
        assert!(decoded.warnings.is_empty(), "{stem}: {:?}", decoded.warnings);
    }
    // Every CREATE but the two controller-owned workloads, owned Pods included.
    assert_eq!(fixed_count, 9);
}

#[tokio::test]
async fn audit_route_reports_the_same_findings_without_patching() {
    let server = TestServer::start(|_| {}).await;
    for (stem, review) in fixtures() {
        let decoded = decode_like_api_server(&review, &server.post("/audit", &review).await);
        assert!(decoded.allowed && decoded.patch.is_none(), "{stem}");
        if stem == "pod-update" {
            assert!(decoded.warnings.is_empty(), "{stem}");
            continue;
        }
        if checked_elsewhere(&stem, &review) {
            continue;
        }
        assert_eq!(decoded.warnings, PROPOSED_WARNINGS, "{stem}");
        let bypass: Value =
            serde_json::from_str(decoded.audit_annotations["command-bypasses-wrapper"].as_str().unwrap()).unwrap();
        let fixes: Vec<(&str, &str, bool)> = bypass
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["container"]["name"].as_str().unwrap(),
                    f["fix"].as_str().unwrap(),
                    f["applied"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            fixes,
            [("init-setup", "prepend", false), ("app", "args", false)],
            "{stem}"
        );
        let pinned: Value = serde_json::from_str(decoded.audit_annotations["image-pinned"].as_str().unwrap()).unwrap();
        assert_eq!(pinned.as_array().unwrap().len(), 3, "{stem}");
    }
}

#[tokio::test]
async fn dry_run_gets_the_same_answer_as_a_real_request() {
    let server = TestServer::start(|_| {}).await;
    let real = fixture("pod-create");
    let dry = fixture("pod-create-dryrun");
    assert_eq!(dry["request"]["dryRun"], true);
    let real = decode_like_api_server(&real, &server.post("/mutate", &real).await);
    let dry_answer = decode_like_api_server(&dry, &server.post("/mutate", &dry).await);
    assert!(real.patch.is_some());
    assert_eq!(dry_answer.patch, real.patch);
    assert_eq!(dry_answer.warnings, real.warnings);
    assert_eq!(dry_answer.audit_annotations, real.audit_annotations);
}

#[tokio::test]
async fn configured_and_annotated_modes() {
    let review = fixture("deployment-create");

    let off = TestServer::start(|c| c.mode = Mode::Off).await;
    let decoded = decode_like_api_server(&review, &off.post("/mutate", &review).await);
    assert!(decoded.allowed && decoded.patch.is_none() && decoded.warnings.is_empty());

    let audit = TestServer::start(|c| c.mode = Mode::Audit).await;
    let decoded = decode_like_api_server(&review, &audit.post("/mutate", &review).await);
    assert!(decoded.patch.is_none() && decoded.warnings.len() == 5);

    // Per-object override: the annotation narrows the configured fix mode.
    let fix = TestServer::start(|_| {}).await;
    for (mode, patched, warnings) in [("audit", false, 5), ("off", false, 0), ("fix", true, 5)] {
        let mut object = review["request"]["object"].clone();
        object["metadata"]["annotations"] = json!({"entrypoint-guard.io/mode": mode});
        let review = with_object(&review, mode, object);
        let decoded = decode_like_api_server(&review, &fix.post("/mutate", &review).await);
        assert_eq!(decoded.patch.is_some(), patched, "{mode}");
        assert_eq!(decoded.warnings.len(), warnings, "{mode}");
    }
    // ... but never beyond the route's ceiling.
    let mut object = review["request"]["object"].clone();
    object["metadata"]["annotations"] = json!({"entrypoint-guard.io/mode": "fix"});
    let review = with_object(&review, "ceiling", object);
    let decoded = decode_like_api_server(&review, &fix.post("/audit", &review).await);
    assert!(decoded.patch.is_none() && decoded.warnings.len() == 5);
}

#[tokio::test]
async fn an_object_without_kind_is_still_inspected() {
    let server = TestServer::start(|_| {}).await;
    let review = fixture("job-create");
    let mut object = review["request"]["object"].clone();
    let map = object.as_object_mut().unwrap();
    map.remove("kind");
    map.remove("apiVersion");
    let review = with_object(&review, "kindless", object);
    let decoded = decode_like_api_server(&review, &server.post("/mutate", &review).await);
    let fixed = patched(&review, decoded.patch.as_ref().expect("patched"));
    assert!(fixed.get("kind").is_none(), "kind is only read, never patched in");
    assert!(
        container(pod_spec(&with_kind(&fixed)), "containers", "app")
            .get("command")
            .is_none()
    );
}

fn with_kind(object: &Value) -> Value {
    let mut object = object.clone();
    object["kind"] = json!("Job");
    object["apiVersion"] = json!("batch/v1");
    object
}

/// Whether `part` is `whole` with members left out: every member `part`
/// keeps equals `whole`'s at the same place, and arrays keep every element
/// (so no pointer into them moves).
fn is_pruned_copy(part: &Value, whole: &Value) -> bool {
    match (part, whole) {
        (Value::Object(p), Value::Object(w)) => p.iter().all(|(k, v)| w.get(k).is_some_and(|wv| is_pruned_copy(v, wv))),
        (Value::Array(p), Value::Array(w)) => p.len() == w.len() && p.iter().zip(w).all(|(a, b)| is_pruned_copy(a, b)),
        _ => part == whole,
    }
}

#[test]
fn the_engine_sees_the_object_exactly_as_the_api_server_sent_it() {
    for (stem, review) in fixtures() {
        let raw = serde_json::to_vec(&review).unwrap();
        let sent = review["request"].get("object").filter(|o| !o.is_null());
        // What the server uses: only the parts the engine reads, each as sent.
        let mut lean = entrypoint_guard::admission::decode_lean(&raw, &Schema::builtin()).unwrap();
        let Some(object) = lean.object.as_ref() else {
            assert_eq!(sent, None, "{stem}");
            continue;
        };
        let sent = sent.unwrap_or_else(|| panic!("{stem}: an object from nothing"));
        assert!(is_pruned_copy(object, sent), "{stem}: {object:#}");
        for (i, spec) in workload::pod_specs(sent, &Kinds::builtin()).iter().enumerate() {
            let at = &workload::pod_specs(object, &Kinds::builtin())[i];
            assert_eq!(at, spec, "{stem}: the pod specs are where they were");
            for list in ["initContainers", "containers"] {
                let kept = object.pointer(&format!("{}/{list}", at.spec));
                let containers = sent.pointer(&format!("{}/{list}", spec.spec));
                for (c, full) in containers.and_then(Value::as_array).into_iter().flatten().enumerate() {
                    for field in ["name", "image", "command", "args"] {
                        assert_eq!(
                            kept.and_then(|k| k.get(c)).and_then(|k| k.get(field)),
                            full.get(field),
                            "{stem}: {list}[{c}].{field}"
                        );
                    }
                }
            }
        }
        for field in ["annotations", "name", "namespace", "generateName", "ownerReferences"] {
            assert_eq!(
                object["metadata"].get(field),
                sent["metadata"].get(field),
                "{stem}: {field}"
            );
        }
        if let Ok(object) = lean.take_object(&Kinds::builtin()) {
            assert_eq!(object["kind"], review["request"]["kind"]["kind"], "{stem}");
        }
        // The whole decode (tests, tools) hands the object over unchanged.
        let mut whole = entrypoint_guard::admission::decode(&raw).unwrap();
        if let Ok(object) = whole.take_object(&Kinds::builtin()) {
            assert_eq!(&object, sent, "{stem}: handed to the engine unchanged");
        }
    }
}
