//! Property tests of the engine next to the controllers, over generated
//! Deployments (any containers, commands, images, facts and policy):
//!
//! - the Pod the controllers make from a fixed template is a fixed point;
//! - the Pod made from an unfixed template gets the fix its Deployment would have had;
//! - no controller can be made to loop: a ReplicaSet the Deployment owns is
//!   never patched, and an UPDATE that changes no container (a scale, a
//!   label, the controller's own update) is never patched, whatever state
//!   the Deployment was admitted in;
//! - an UPDATE patches only the containers it changed.

#[path = "support/generate.rs"]
mod generate;

use entrypoint_guard::engine::{Inspection, Mode, Policy, Rule, Scope, inspect, inspect_update, lookups};
use entrypoint_guard::image::{Facts, ImageFacts};
use generate::{IMAGES, facts, fix_strategy, strings, unknown_images, with_pinned};
use json_patch::PatchOperation;
use proptest::prelude::*;
use proptest::test_runner::Config as RunnerConfig;
use serde_json::{Value, json};

fn words() -> impl Strategy<Value = Option<Value>> {
    let word = prop_oneof![
        Just("sh"),
        Just("-c"),
        Just("run"),
        Just("/chalk"),
        Just("exec"),
        Just("--")
    ];
    prop_oneof![
        Just(None),
        Just(Some(json!([]))),
        proptest::collection::vec(word, 1..4).prop_map(|w| Some(json!(w))),
    ]
}

fn containers(prefix: &'static str, max: usize) -> impl Strategy<Value = Vec<Value>> {
    proptest::collection::vec((0..IMAGES.len(), words(), words()), 0..max).prop_map(move |cs| {
        cs.into_iter()
            .enumerate()
            .map(|(i, (image, command, args))| {
                let mut c = json!({"name": format!("{prefix}{i}"), "image": IMAGES[image], "resources": {}});
                if let Some(command) = command {
                    c["command"] = command;
                }
                if let Some(args) = args {
                    c["args"] = args;
                }
                c
            })
            .collect()
    })
}

/// A Deployment as the API server sends it, in any state: never fixed, or
/// partly fixed by hand. Its template may carry a mode annotation; the
/// Deployment itself carries none (see `the_pod_gets_the_fix_…`).
fn deployment() -> impl Strategy<Value = Value> {
    let template_mode = prop_oneof![
        4 => Just(None),
        1 => Just(Some("audit")),
        1 => Just(Some("off")),
    ];
    (containers("c", 4), containers("i", 2), template_mode).prop_map(|(containers, init, mode)| {
        let mut template = json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": containers, "initContainers": init, "restartPolicy": "Always"}});
        if let Some(mode) = mode {
            template["metadata"]["annotations"] = json!({"entrypoint-guard.io/mode": mode});
        }
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "demo", "generation": 1},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template}})
    })
}

fn policy(scopes: &'static [Scope]) -> impl Strategy<Value = Policy> {
    let mode = prop_oneof![Just(Mode::Fix), Just(Mode::Audit)];
    let scope = prop::sample::select(scopes);
    (
        fix_strategy(),
        unknown_images(),
        any::<bool>(),
        any::<bool>(),
        mode,
        scope,
    )
        .prop_map(
            |(strategy, unknown_images, pin_digests, keep_tag, mode, scope)| Policy {
                mode,
                scope,
                strategy,
                unknown_images,
                pin_digests,
                keep_tag,
                ..Policy::default()
            },
        )
}

fn apply(object: &Value, inspection: &Inspection) -> Value {
    let mut out = object.clone();
    json_patch::patch(&mut out, &inspection.patch).expect("the engine's patch applies");
    out
}

/// The ReplicaSet the Deployment controller makes: the template copied,
/// the hash label added, and the Deployment as its controller.
fn replicaset(deployment: &Value) -> Value {
    let mut template = deployment["spec"]["template"].clone();
    template["metadata"]["labels"]["pod-template-hash"] = json!("5d8f7c9b6");
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web-5d8f7c9b6", "namespace": "demo",
            "labels": template["metadata"]["labels"].clone(),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                "uid": "d-uid", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f7c9b6"}},
            "template": template}})
}

/// The Pod the ReplicaSet controller makes from `replicaset`'s template.
fn pod(replicaset: &Value) -> Value {
    let template = &replicaset["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    metadata["generateName"] = json!("web-5d8f7c9b6-");
    metadata["namespace"] = json!("demo");
    metadata["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": "web-5d8f7c9b6", "uid": "rs-uid", "controller": true, "blockOwnerDeletion": true}]);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"].clone()})
}

/// Every patch path, for messages and prefix checks.
fn paths(patch: &[PatchOperation]) -> Vec<String> {
    patch.iter().map(|op| op.path().to_string()).collect()
}

proptest! {
    #![proptest_config(RunnerConfig { cases: 512, ..RunnerConfig::default() })]

    #[test]
    fn the_pod_made_from_a_fixed_template_is_a_fixed_point(
        d in deployment(), facts in facts(), policy in policy(&[Scope::Workloads])
    ) {
        let first = inspect(&d, &facts, &policy, Mode::Fix);
        let fixed = apply(&d, &first);
        let facts = with_pinned(&facts, &first);
        let rs = replicaset(&fixed);
        let pod = pod(&rs);
        let answer = inspect(&pod, &facts, &policy, Mode::Fix);
        prop_assert!(answer.patch.is_empty(), "the Pod was patched: {:?}", paths(&answer.patch));
    }

    #[test]
    fn the_pod_gets_the_fix_its_deployment_would_have_had(
        d in deployment(), facts in facts(), policy in policy(&[Scope::Workloads])
    ) {
        let fixed = apply(&d, &inspect(&d, &facts, &policy, Mode::Fix));
        // The ReplicaSet is never patched, so its Pods come from the template as admitted.
        let pod = pod(&replicaset(&d));
        let fixed_pod = apply(&pod, &inspect(&pod, &facts, &policy, Mode::Fix));
        prop_assert_eq!(&fixed_pod["spec"], &fixed["spec"]["template"]["spec"]);
    }

    #[test]
    fn no_controller_can_be_made_to_loop(
        d in deployment(), facts in facts(), policy in policy(&[Scope::Workloads, Scope::Pods]),
        admitted_fixed in any::<bool>(),
    ) {
        // However the Deployment was admitted: as written (webhook down,
        // audit mode, before the install) or fixed.
        let d = if admitted_fixed { apply(&d, &inspect(&d, &facts, &Policy::default(), Mode::Fix)) } else { d };
        let rs = replicaset(&d);
        for ceiling in [Mode::Fix, Mode::Audit] {
            // The controller creates its ReplicaSet: never patched.
            let created = inspect(&rs, &facts, &policy, ceiling);
            prop_assert!(created.patch.is_empty(), "ReplicaSet patched: {:?}", paths(&created.patch));
            // ... and scales it: never patched.
            let mut scaled = rs.clone();
            scaled["spec"]["replicas"] = json!(0);
            let scale = inspect_update(&scaled, &rs, &facts, &policy, ceiling);
            prop_assert!(scale.patch.is_empty(), "ReplicaSet scale patched: {:?}", paths(&scale.patch));
            // The controller (or a user's scale or label) updates the Deployment: never patched.
            let mut updated = d.clone();
            updated["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "2"});
            updated["metadata"]["labels"] = json!({"team": "a"});
            updated["spec"]["replicas"] = json!(5);
            let update = inspect_update(&updated, &d, &facts, &policy, ceiling);
            prop_assert!(update.patch.is_empty(), "Deployment update patched: {:?}", paths(&update.patch));
        }
    }

    #[test]
    fn an_update_patches_only_the_container_it_changed(
        d in deployment(), facts in facts(), policy in policy(&[Scope::Workloads]),
        which in any::<prop::sample::Index>(), args in words(),
    ) {
        let containers = d["spec"]["template"]["spec"]["containers"].as_array().unwrap().len();
        prop_assume!(containers > 0);
        let i = which.index(containers);
        let mut updated = d.clone();
        let changed = &mut updated["spec"]["template"]["spec"]["containers"][i];
        changed["args"] = args.unwrap_or(json!(["--changed"]));
        if changed["args"] == d["spec"]["template"]["spec"]["containers"][i]["args"] {
            changed["args"] = json!(["--changed"]);
        }
        let answer = inspect_update(&updated, &d, &facts, &policy, Mode::Fix);
        let allowed = format!("/spec/template/spec/containers/{i}/");
        for path in paths(&answer.patch) {
            prop_assert!(
                path.starts_with(&allowed) || path.starts_with("/metadata/annotations"),
                "{path} is outside the changed container {allowed}"
            );
        }
        // What the same container gets on CREATE, it gets on this UPDATE.
        let created = inspect(&updated, &facts, &policy, Mode::Fix);
        let own: Vec<_> = created.patch.iter().filter(|op| op.path().to_string().starts_with(&allowed)).collect();
        let got: Vec<_> = answer.patch.iter().filter(|op| op.path().to_string().starts_with(&allowed)).collect();
        prop_assert_eq!(own, got);
    }
}

fn captured(stem: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/admission-reviews/{stem}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn an_update_looks_up_only_what_it_may_change_or_must_report() {
    let review = captured("deployment-update");
    let (object, old) = (&review["request"]["object"], &review["request"]["oldObject"]);
    let policy = Policy::default();
    assert_eq!(
        lookups(object, None, None, &policy).images,
        [
            "registry.example/init:1.0",
            "registry.example/app:1.0",
            "registry.example/sidecar:1.0"
        ]
    );
    // sidecar is unchanged and has no command: nothing to pin, nothing to report.
    assert_eq!(
        lookups(object, Some(old), None, &policy).images,
        ["registry.example/init:1.0", "registry.example/app:1.0"]
    );
    // A scale changes nothing: only the bypass reports need facts.
    assert_eq!(
        lookups(old, Some(old), None, &policy).images,
        ["registry.example/init:1.0", "registry.example/app:1.0"]
    );
}

#[test]
fn a_reapplied_tag_keeps_the_pin_made_earlier_with_or_without_the_tag() {
    const OLD: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const MOVED: &str = "sha256:9999999999999999999999999999999999999999999999999999999999999999";
    let deployment = |image: &str, record: Option<&str>| {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image, "args": ["serve"]}]}}}});
        if let Some(record) = record {
            d["metadata"]["annotations"] = json!({"entrypoint-guard.io/resolved-images": record});
        }
        d
    };
    let git = deployment("registry.example/app:1.0", None);
    let mut facts = Facts::new();
    facts.insert(
        "registry.example/app:1.0",
        ImageFacts::known(strings(&["/chalk", "exec", "--"]), Some(MOVED.into())),
    );
    let record = json!({"registry.example/app:1.0": OLD}).to_string();
    for keep_tag in [true, false] {
        let policy = Policy {
            keep_tag,
            ..Policy::default()
        };
        let pinned = if keep_tag {
            format!("registry.example/app:1.0@{OLD}")
        } else {
            format!("registry.example/app@{OLD}")
        };
        let live = deployment(&pinned, Some(&record));
        // Putting the pin back needs no registry lookup at all.
        assert!(lookups(&git, Some(&live), None, &policy).images.is_empty());
        let answer = inspect_update(&git, &live, &facts, &policy, Mode::Fix);
        let after = apply(&git, &answer);
        assert_eq!(
            after["spec"], live["spec"],
            "keep_tag {keep_tag}: the earlier pin, not {MOVED}"
        );
        assert_eq!(after["metadata"]["annotations"], live["metadata"]["annotations"]);
        assert_eq!(answer.findings[0].rule, Rule::ImagePinned);
        assert!(
            answer.findings[0]
                .message
                .contains("an update does not resolve the tag again")
        );

        // A digest written by hand (no record of ours) and removed in git is
        // the user's change: the tag is resolved and pinned as on CREATE.
        let by_hand = deployment(&pinned, None);
        let answer = inspect_update(&git, &by_hand, &facts, &policy, Mode::Fix);
        assert!(
            apply(&git, &answer)["spec"].to_string().contains(MOVED),
            "keep_tag {keep_tag}"
        );
    }
}
