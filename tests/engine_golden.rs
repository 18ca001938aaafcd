//! Golden tests: the engine over the objects inside AdmissionReview requests
//! captured from a real kube-apiserver, one per kind and one per object the
//! controllers create. An UPDATE is inspected against its `oldObject`, as
//! the webhook does.

use entrypoint_guard::config;
use entrypoint_guard::engine::Kinds;
use entrypoint_guard::engine::{Inspection, Mode, Policy, inspect, inspect_update};
use entrypoint_guard::image::Facts;
use serde_json::{Value, json};

/// The fixtures' images, with the facts the serve tests and `scripts/load.sh`
/// use (`tests/fixtures/fixture-images.yaml`): `app` has the bare wrapper,
/// `init` a wrapper that names its program and carries a chalk flag,
/// `sidecar` the bare wrapper but no command; all three have a digest.
fn fixture_facts() -> Facts {
    let text = include_str!("fixtures/fixture-images.yaml");
    let entries = config::parse_yaml(text, "tests/fixtures/fixture-images.yaml").expect("the facts parse");
    config::facts_from(&entries)
}

fn request(fixture: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/admission-reviews/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let review: Value = serde_json::from_str(&text).unwrap();
    review["request"].clone()
}

fn request_object(fixture: &str) -> Value {
    request(fixture)["object"].clone()
}

/// The engine as the webhook runs it: against `old` on UPDATE.
fn run(object: &Value, old: Option<&Value>) -> Inspection {
    match old {
        Some(old) => inspect_update(object, old, &fixture_facts(), &Policy::default(), Mode::Fix),
        None => inspect(object, &fixture_facts(), &Policy::default(), Mode::Fix),
    }
}

/// Findings, patch, held objects and the containers after the patch, as one snapshot.
fn golden(fixture: &str) -> Value {
    let request = request(fixture);
    let object = request["object"].clone();
    let old = request.get("oldObject").filter(|o| o.is_object());
    let inspection = run(&object, old);
    let mut fixed = object.clone();
    json_patch::patch(&mut fixed, &inspection.patch).expect("patch applies");
    let specs = entrypoint_guard::engine::workload::pod_specs(&fixed, &Kinds::builtin());
    assert_eq!(specs.len(), 1, "{fixture}: one pod spec");
    let spec = fixed.pointer(&specs[0].spec).unwrap();
    let again = run(&fixed, old);
    assert!(
        again.patch.is_empty(),
        "{fixture}: engine is idempotent on its own output"
    );
    json!({
        "findings": inspection.findings,
        "patch": inspection.patch,
        "held": inspection.held,
        "initContainers": spec["initContainers"],
        "containers": spec["containers"],
        "annotations": fixed["metadata"]["annotations"],
    })
}

macro_rules! golden_tests {
    ($($name:ident => $fixture:literal),* $(,)?) => {$(
        #[test]
        fn $name() {
            insta::assert_json_snapshot!(golden($fixture));
        }
    )*};
}

golden_tests! {
    pod_create => "pod-create.json",
    pod_create_dryrun => "pod-create-dryrun.json",
    pod_update => "pod-update.json",
    deployment_create => "deployment-create.json",
    deployment_update => "deployment-update.json",
    statefulset_create => "statefulset-create.json",
    daemonset_create => "daemonset-create.json",
    job_create => "job-create.json",
    cronjob_create => "cronjob-create.json",
    replicaset_create_owned_by_deployment => "replicaset-create-owned-by-deployment.json",
    pod_create_owned_by_replicaset => "pod-create-owned-by-replicaset.json",
    job_create_owned_by_cronjob => "job-create-owned-by-cronjob.json",
    pod_create_owned_by_job => "pod-create-owned-by-job.json",
}

#[test]
fn every_fixture_has_a_golden_test() {
    let dir = format!("{}/tests/fixtures/admission-reviews", env!("CARGO_MANIFEST_DIR"));
    let count = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(count, 13, "a new fixture needs a golden test here");
}

#[test]
fn mirror_pods_and_mode_annotations() {
    let mut object = request_object("pod-create.json");
    object["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
    assert_eq!(
        inspect(&object, &fixture_facts(), &Policy::default(), Mode::Fix),
        Inspection::default()
    );

    object["metadata"]["annotations"] = json!({"entrypoint-guard.io/mode": "audit"});
    let i = inspect(&object, &fixture_facts(), &Policy::default(), Mode::Fix);
    assert!(i.patch.is_empty() && !i.findings.is_empty());

    object["metadata"]["annotations"] = json!({"entrypoint-guard.io/mode": "off"});
    assert!(
        inspect(&object, &fixture_facts(), &Policy::default(), Mode::Fix)
            .findings
            .is_empty()
    );

    // An object can opt in to fix where the configuration says audit, but
    // never past the route's ceiling.
    object["metadata"]["annotations"] = json!({"entrypoint-guard.io/mode": "fix"});
    let audit = Policy {
        mode: Mode::Audit,
        ..Policy::default()
    };
    assert!(inspect(&object, &fixture_facts(), &audit, Mode::Fix).changes());
    assert!(!inspect(&object, &fixture_facts(), &audit, Mode::Audit).changes());

    object["metadata"]["annotations"] = json!({"entrypoint-guard.io/mode": "sometimes"});
    let i = inspect(&object, &fixture_facts(), &Policy::default(), Mode::Fix);
    assert_eq!(i.findings[0].rule.id(), "invalid-mode-annotation");
    assert!(i.changes(), "an invalid annotation falls back to the configured mode");
}

#[test]
fn template_annotation_sets_the_mode_of_a_workload() {
    let mut object = request_object("deployment-create.json");
    object["spec"]["template"]["metadata"]["annotations"] = json!({"entrypoint-guard.io/mode": "off"});
    assert!(
        inspect(&object, &fixture_facts(), &Policy::default(), Mode::Fix)
            .findings
            .is_empty()
    );
}

#[test]
fn list_items_are_inspected_and_patched_in_place() {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        request_object("job-create.json"),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
        request_object("cronjob-create.json"),
    ]});
    let i = inspect(&list, &fixture_facts(), &Policy::default(), Mode::Fix);
    let mut fixed = list.clone();
    json_patch::patch(&mut fixed, &i.patch).unwrap();
    assert!(
        fixed
            .pointer("/items/0/spec/template/spec/containers/0/command")
            .is_none()
    );
    assert!(
        fixed
            .pointer("/items/2/spec/jobTemplate/spec/template/spec/containers/0/command")
            .is_none()
    );
    assert!(
        fixed
            .pointer("/items/0/metadata/annotations/entrypoint-guard.io~1resolved-images")
            .is_some()
    );
    assert_eq!(fixed["items"][1], list["items"][1]);
    assert!(
        inspect(&fixed, &fixture_facts(), &Policy::default(), Mode::Fix)
            .patch
            .is_empty()
    );
}
