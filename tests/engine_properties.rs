//! Property tests of the engine's patch: idempotent, confined to the fields
//! it owns, and standard RFC 6902 (checked with an independent implementation,
//! Python's `jsonpatch`).

use entrypoint_guard::engine::Kinds;
use std::io::Write;
use std::process::{Command, Stdio};

#[path = "support/generate.rs"]
mod generate;

use entrypoint_guard::engine::{Inspection, Mode, Policy, inspect, workload};
use entrypoint_guard::image::Facts;
use generate::{IMAGES, facts, fix_strategy, unknown_images, with_pinned};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("sh".to_string()),
        Just("-c".to_string()),
        Just("/chalk".to_string()),
        Just("exec".to_string()),
        Just("--".to_string()),
        "[a-z~/ .-]{0,8}",
    ]
}

fn string_list() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        Just(Some(json!([]))),
        Just(Some(json!(["/chalk", "exec", "--", "sh"]))),
        proptest::collection::vec(word(), 1..4).prop_map(|w| Some(json!(w))),
    ]
}

fn container() -> impl Strategy<Value = Value> {
    (0..IMAGES.len(), string_list(), string_list(), "[a-z]{1,6}").prop_map(|(image, command, args, name)| {
        let mut c = json!({"name": name, "image": IMAGES[image], "resources": {}, "x-unknown-field": [1, 2]});
        if let Some(command) = command {
            c["command"] = command;
        }
        if let Some(args) = args {
            c["args"] = args;
        }
        c
    })
}

fn metadata() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"name": "x"})),
        Just(json!({"name": "x", "annotations": null})),
        Just(json!({"name": "x", "annotations": {"team": "a/b~c"}})),
        Just(json!({"name": "x", "annotations": {"entrypoint-guard.io/resolved-images": "{\"old:1\":\"sha256:aa\"}"}})),
        Just(json!({"name": "x", "annotations": {"entrypoint-guard.io/mode": "audit"}})),
    ]
}

fn object() -> impl Strategy<Value = Value> {
    let kinds = prop_oneof![
        Just(("v1", "Pod")),
        Just(("apps/v1", "Deployment")),
        Just(("apps/v1", "StatefulSet")),
        Just(("batch/v1", "Job")),
        Just(("batch/v1", "CronJob")),
        Just(("v1", "PodTemplate")),
    ];
    let containers = proptest::collection::vec(container(), 0..4);
    let init = proptest::collection::vec(container(), 0..2);
    (kinds, containers, init, metadata(), metadata()).prop_map(|((api, kind), containers, init, meta, tmeta)| {
        let spec = json!({"containers": containers, "initContainers": init,
                          "ephemeralContainers": [{"name": "debug", "image": "busybox", "command": ["sh"]}]});
        let template = json!({"metadata": tmeta, "spec": spec});
        let mut o = json!({"apiVersion": api, "kind": kind, "metadata": meta});
        match kind {
            "Pod" => o["spec"] = spec,
            "PodTemplate" => o["template"] = template,
            "CronJob" => o["spec"] = json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}),
            _ => o["spec"] = json!({"replicas": 1, "template": template}),
        }
        o
    })
}

fn policy() -> impl Strategy<Value = Policy> {
    (fix_strategy(), unknown_images(), any::<bool>(), any::<bool>()).prop_map(
        |(strategy, unknown_images, pin, keep)| Policy {
            strategy,
            unknown_images,
            pin_digests: pin,
            keep_tag: keep,
            ..Policy::default()
        },
    )
}

/// `object` without what the engine may change: command, args and image of
/// (init) containers, the trace annotation, and an annotations map or
/// metadata the patch had to create.
fn outside_owned_fields(object: &Value, policy: &Policy) -> Value {
    let mut o = object.clone();
    for at in workload::pod_specs(object, &Kinds::builtin()) {
        for list in ["containers", "initContainers"] {
            if let Some(Value::Array(cs)) = o.pointer_mut(&format!("{}/{list}", at.spec)) {
                for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                    c.remove("command");
                    c.remove("args");
                    c.remove("image");
                }
            }
        }
    }
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(Value::Object(a)) = meta.get_mut("annotations") {
            a.remove(&policy.resolved_annotation());
        }
        if meta
            .get("annotations")
            .is_some_and(|a| a.is_null() || a.as_object().is_some_and(|m| m.is_empty()))
        {
            meta.remove("annotations");
        }
    }
    o
}

fn fix(object: &Value, facts: &Facts, policy: &Policy) -> (Value, Inspection) {
    let inspection = inspect(object, facts, policy, Mode::Fix);
    let mut fixed = object.clone();
    json_patch::patch(&mut fixed, &inspection.patch).expect("the engine's patch applies to its input");
    (fixed, inspection)
}

proptest! {
    #![proptest_config(RunnerConfig { cases: 512, ..RunnerConfig::default() })]

    #[test]
    fn fixing_twice_changes_nothing_more(object in object(), facts in facts(), policy in policy()) {
        let (fixed, first) = fix(&object, &facts, &policy);
        let facts = with_pinned(&facts, &first);
        let again = inspect(&fixed, &facts, &policy, Mode::Fix);
        prop_assert!(again.patch.is_empty(), "second patch: {:?}", again.patch);
    }

    #[test]
    fn the_patch_touches_only_command_args_image_and_the_trace(
        object in object(), facts in facts(), policy in policy()
    ) {
        let (fixed, inspection) = fix(&object, &facts, &policy);
        prop_assert_eq!(outside_owned_fields(&fixed, &policy), outside_owned_fields(&object, &policy));
        // Ephemeral containers are never touched.
        let specs = workload::pod_specs(&object, &Kinds::builtin());
        for at in specs {
            let p = format!("{}/ephemeralContainers", at.spec);
            prop_assert_eq!(fixed.pointer(&p), object.pointer(&p));
        }
        // Audit mode proposes the same operations and applies none.
        let audit = inspect(&object, &facts, &policy, Mode::Audit);
        prop_assert!(audit.patch.is_empty());
        prop_assert_eq!(&audit.proposed, &inspection.proposed);
        let annotated = std::iter::once(String::new())
            .chain(workload::pod_specs(&object, &Kinds::builtin()).into_iter().map(|at| at.template))
            .any(|at| object.pointer(&format!("{at}/metadata/annotations/entrypoint-guard.io~1mode")).is_some());
        if !annotated {
            prop_assert_eq!(&inspection.patch, &inspection.proposed);
        }
    }
}

/// Applies the engine's patches with Python's `jsonpatch` (an independent
/// RFC 6902 implementation) and compares with the `json-patch` crate.
#[test]
fn patches_apply_identically_with_python_jsonpatch() {
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 300,
        ..RunnerConfig::default()
    });
    let strategy = (object(), facts(), policy());
    let mut cases = Vec::new();
    while cases.len() < 300 {
        let (object, facts, policy) = strategy.new_tree(&mut runner).unwrap().current();
        let (fixed, inspection) = fix(&object, &facts, &policy);
        if !inspection.patch.is_empty() {
            cases.push(json!({"doc": object, "patch": inspection.patch, "expected": fixed}));
        }
    }
    let script = r#"
import json, sys
try:
    import jsonpatch
except ImportError:
    sys.exit("python3 module jsonpatch is missing: run scripts/testenv/install.sh")
bad = 0
for n, line in enumerate(sys.stdin):
    case = json.loads(line)
    got = jsonpatch.apply_patch(case["doc"], case["patch"])
    if got != case["expected"]:
        bad += 1
        print(f"case {n}: python jsonpatch gives a different result", file=sys.stderr)
print(f"{n + 1} cases, {bad} differ")
sys.exit(1 if bad else 0)
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for this test (scripts/testenv/install.sh installs jsonpatch)");
    {
        let mut stdin = child.stdin.take().unwrap();
        for case in &cases {
            writeln!(stdin, "{case}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python jsonpatch check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("300 cases, 0 differ"), "{stdout}");
}
