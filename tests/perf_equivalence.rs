//! `admission::decode_lean` (the pruned decode `serve` uses) answers exactly
//! like `admission::decode` (the whole object): the same bodies accepted and
//! rejected with the same errors, the same images to resolve, the same
//! lookup context, the same inspection (findings, patch, proposed, held) and
//! the same response bytes — over every captured fixture and generated
//! objects with every shape the engine treats differently, on CREATE and on
//! UPDATE (with the `oldObject` decoded the same way); and, with custom
//! kinds configured (`decode_lean` along their schema), over generated objects
//! of those kinds: pod specs under a `*` over tasks and over a map of replica
//! types, a pod spec that is the object's own spec, an escaped key.

use std::sync::Arc;

use entrypoint_guard::admission::{self, AdmissionRequest, AdmissionResponse, Memo, Schema, decode, decode_lean};
use entrypoint_guard::config::server::OnError;
use entrypoint_guard::engine::{
    self, ImageFilter, Kinds, Mode, Policy, Scope, Strategy as FixStrategy, UnknownImages, workload,
};
use entrypoint_guard::image::{Entrypoint, Facts, ImageFacts, PlatformEntrypoint};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/admission-reviews");

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Every kind of facts the engine decides differently on.
fn facts_variant(i: usize) -> ImageFacts {
    let digest = Some(format!("sha256:{}", format!("{:x}", i % 16).repeat(64)));
    match i % 7 {
        0 => ImageFacts::known(strings(&["/chalk", "exec", "--"]), digest),
        1 => ImageFacts::known(
            strings(&["/chalk", "exec", "--exec-command-name", "/docker-entrypoint.sh", "--"]),
            digest,
        ),
        2 => ImageFacts::known(strings(&["/usr/bin/python"]), digest),
        3 => ImageFacts::known(Vec::new(), None),
        4 => ImageFacts::unknown("registry unreachable"),
        5 => ImageFacts {
            digest,
            entrypoint: Entrypoint::PlatformsDisagree {
                platforms: vec![
                    PlatformEntrypoint {
                        platform: "linux/amd64".into(),
                        entrypoint: strings(&["/chalk", "exec", "--"]),
                    },
                    PlatformEntrypoint {
                        platform: "linux/arm64".into(),
                        entrypoint: strings(&["/app"]),
                    },
                ],
            },
            source: None,
        },
        _ => ImageFacts::known(strings(&["/chalk", "exec", "--"]), None),
    }
}

/// Facts for `images`, the variant of each shifted by `seed`.
fn facts_for(images: &[String], seed: usize) -> Facts {
    images
        .iter()
        .enumerate()
        .map(|(i, image)| (image.clone(), facts_variant(i + seed)))
        .collect()
}

fn policies(kinds: &Kinds) -> Vec<Policy> {
    let default = Policy {
        kinds: kinds.clone(),
        ..Policy::default()
    };
    vec![
        default.clone(),
        Policy {
            strategy: FixStrategy::Prepend,
            unknown_images: UnknownImages::Args,
            keep_tag: false,
            ..default.clone()
        },
        Policy {
            strategy: FixStrategy::Args,
            unknown_images: UnknownImages::Prepend,
            ..default.clone()
        },
        Policy {
            scope: Scope::Pods,
            ..default.clone()
        },
        Policy {
            mode: Mode::Audit,
            pin_digests: false,
            unknown_images: UnknownImages::Ignore,
            images: ImageFilter::new(&[], &["docker.io/library/*".into()]).unwrap(),
            ..default
        },
    ]
}

/// The request without its object, for comparing everything else.
fn head(request: &AdmissionRequest) -> AdmissionRequest {
    AdmissionRequest {
        object: None,
        old_object: None,
        ..request.clone()
    }
}

/// The images the webhook looks up: on UPDATE, against the old object.
fn images(object: &Value, old: Option<&Value>, policy: &Policy) -> Vec<String> {
    engine::lookups(object, old, None, policy).images
}

/// The engine's answer: on UPDATE, against the old object.
fn inspect(object: &Value, old: Option<&Value>, facts: &Facts, policy: &Policy, ceiling: Mode) -> engine::Inspection {
    match old {
        Some(old) => engine::inspect_update(object, old, facts, policy, ceiling),
        None => engine::inspect(object, facts, policy, ceiling),
    }
}

/// Checks that both decodes lead to the same answer for `body`; returns how
/// many inspections were compared.
fn same_answer(body: &[u8], seed: usize) -> usize {
    same_answer_for(body, seed, &Kinds::builtin())
}

/// [`same_answer`] with the kinds of `kinds` (the lean decode along their schema).
fn same_answer_for(body: &[u8], seed: usize, kinds: &Kinds) -> usize {
    let (full, lean) = (decode(body), decode_lean(body, &Arc::new(Schema::of(kinds))));
    let (mut full, mut lean) = match (full, lean) {
        (Ok(full), Ok(lean)) => (full, lean),
        (Err(full), Err(lean)) => {
            assert_eq!(full, lean, "both decodes refuse the body, with the same error");
            return 0;
        }
        (full, lean) => panic!("one decode accepts the body, the other not: {full:?} / {lean:?}"),
    };
    assert_eq!(head(&full), head(&lean));
    let namespace = full.namespace.clone();
    let (full_old, lean_old) = (full.take_old_object(), lean.take_old_object());
    assert_eq!(
        full_old.is_some(),
        lean_old.is_some(),
        "both decodes keep the oldObject"
    );
    let (full_old, lean_old) = (full_old.as_ref(), lean_old.as_ref());
    let (full, lean) = match (full.take_object(kinds), lean.take_object(kinds)) {
        (Ok(full), Ok(lean)) => (full, lean),
        (full, lean) => {
            assert_eq!(full.map(|_| ()), lean.map(|_| ()), "the same reason not to inspect");
            return 0;
        }
    };
    let mut compared = 0;
    for policy in policies(kinds) {
        // Small, so that it also starts over while the cases run.
        let memo = Memo::new(3);
        let wanted = engine::lookups(&full, full_old, namespace.as_deref(), &policy);
        assert_eq!(wanted, engine::lookups(&lean, lean_old, namespace.as_deref(), &policy));
        let wanted = wanted.images;
        for shift in [seed, seed + 3] {
            let facts = facts_for(&wanted, shift);
            for ceiling in [Mode::Fix, Mode::Audit] {
                let a = inspect(&full, full_old, &facts, &policy, ceiling);
                let b = inspect(&lean, lean_old, &facts, &policy, ceiling);
                assert_eq!(a, b, "the same inspection");
                let answer = |o: &Value, old: Option<&Value>| {
                    admission::review("u", o, old, &facts, &policy, ceiling, OnError::Allow)
                        .response
                        .to_json()
                };
                let fresh = answer(&lean, lean_old);
                assert_eq!(answer(&full, full_old), fresh, "the same response bytes");
                same_as_remembered(&memo, &lean, lean_old, &facts, &policy, ceiling);
                compared += 1;
            }
        }
    }
    compared
}

/// `memo` answers like `admission::review` — asked first (remembered, or
/// not yet) and again for another uid (remembered now) — and the answer's
/// bytes are serde_json's encoding of its fields.
fn same_as_remembered(memo: &Memo, object: &Value, old: Option<&Value>, facts: &Facts, policy: &Policy, ceiling: Mode) {
    for uid in ["u-first", "u \"quoted\" é"] {
        let fresh = admission::review(uid, object, old, facts, policy, ceiling, OnError::Allow);
        assert_eq!(fresh.response.to_json(), serde_json_encoding(&fresh.response));
        let answer = memo.review(uid, object, old, facts, policy, ceiling, OnError::Allow);
        assert_eq!(answer.body, fresh.response.to_json(), "the remembered answer's bytes");
        let remembered = &answer.verdict;
        assert_eq!(
            (
                &remembered.findings,
                &remembered.held,
                remembered.outcome,
                remembered.mode
            ),
            (&fresh.findings, &fresh.held, fresh.outcome, fresh.mode)
        );
    }
}

/// An answer encoded by serde_json (what `AdmissionResponse::to_json`
/// writes by hand): the fields in order, empty ones left out.
fn serde_json_encoding(r: &AdmissionResponse) -> Vec<u8> {
    use base64::Engine as _;
    let mut response = Map::new();
    response.insert("uid".into(), json!(r.uid));
    response.insert("allowed".into(), json!(r.allowed));
    if let Some(patch) = r.patch.as_ref().filter(|p| !p.is_empty()) {
        response.insert("patchType".into(), json!("JSONPatch"));
        let patch = base64::engine::general_purpose::STANDARD.encode(patch);
        response.insert("patch".into(), json!(patch));
    }
    if !r.warnings.is_empty() {
        response.insert("warnings".into(), json!(r.warnings));
    }
    if !r.audit_annotations.is_empty() {
        response.insert("auditAnnotations".into(), json!(r.audit_annotations));
    }
    if let Some(status) = &r.status {
        response.insert("status".into(), json!({"code": status.code, "message": status.message}));
    }
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}))
        .unwrap()
}

#[test]
fn one_memo_answers_every_fixture_like_a_fresh_review() {
    // One memo per policy for all fixtures and facts: alike keys must not mix.
    let kinds = Kinds::builtin();
    let memos: Vec<(Policy, Memo)> = policies(&kinds).into_iter().map(|p| (p, Memo::new(64))).collect();
    let mut answered = 0;
    for round in 0..2 {
        for (_, body) in fixtures() {
            let mut request = decode_lean(&body, &Schema::builtin()).unwrap();
            let Ok(object) = request.take_object(&kinds) else {
                continue;
            };
            let old = request.take_old_object();
            for (policy, memo) in &memos {
                let wanted = images(&object, old.as_ref(), policy);
                for seed in 0..7 {
                    let facts = facts_for(&wanted, seed);
                    for ceiling in [Mode::Fix, Mode::Audit] {
                        same_as_remembered(memo, &object, old.as_ref(), &facts, policy, ceiling);
                        answered += 1;
                    }
                }
            }
        }
        assert!(memos.iter().all(|(_, memo)| !memo.is_empty()), "round {round}");
    }
    assert!(answered > 500, "{answered}");
    // The answers of the error path encode like serde_json's too.
    for on_error in [OnError::Deny, OnError::Allow] {
        let failed = admission::failed("u", "deadline", on_error).response;
        assert_eq!(failed.to_json(), serde_json_encoding(&failed));
    }
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(out.len() >= 9, "fixtures missing from {FIXTURES}");
    out
}

#[test]
fn every_fixture_gets_the_same_answer_and_the_same_patch() {
    let mut patched = 0;
    for (name, body) in fixtures() {
        for seed in 0..7 {
            same_answer(&body, seed);
        }
        // The fixture's own images, all wrapped and with digests: a real patch.
        let mut request = decode_lean(&body, &Schema::builtin()).unwrap();
        if let Ok(object) = request.take_object(&Kinds::builtin()) {
            let old = request.take_old_object();
            let images = images(&object, old.as_ref(), &Policy::default());
            let facts = images.iter().map(|i| (i.clone(), facts_variant(0))).collect();
            let verdict = admission::review(
                "u",
                &object,
                old.as_ref(),
                &facts,
                &Policy::default(),
                Mode::Fix,
                OnError::Allow,
            );
            if verdict.response.patch.is_some() {
                patched += 1;
            }
        }
        eprintln!("{name}: same answer");
    }
    assert!(patched >= 6, "only {patched} fixtures were patched");
}

/// The pod-create fixture with `insert` (members, each ending in a comma)
/// added first in `request.object.status`.
fn with_status_member(insert: &str) -> Vec<u8> {
    let body = std::fs::read_to_string(format!("{FIXTURES}/pod-create.json")).unwrap();
    let at = body.find("\"status\": {").expect("the fixture has a status") + "\"status\": {".len();
    let rest = &body[at..];
    // `insert` ends with a comma: close it with a member of our own.
    let end = if rest.trim_start().starts_with('}') {
        "\"end\": 0"
    } else {
        "\"end\": 0,"
    };
    [&body[..at], insert, end, rest].concat().into_bytes()
}

#[test]
fn skipped_parts_are_checked_like_a_full_decode() {
    let deep = format!("\"deep\": {}1{},", "[".repeat(200), "]".repeat(200));
    let refused = [
        "\"lone\": \"\\ud800\",",
        "\"huge\": 1e999,",
        "\"control\": \"a\u{1}b\",",
        "\"escape\": \"\\q\",",
        "\"trailing\": [1,],",
        "\"key\\q\": 1,",
        deep.as_str(),
    ];
    for insert in refused {
        let body = with_status_member(insert);
        let (full, lean) = (decode(&body), decode_lean(&body, &Schema::builtin()));
        assert!(full.is_err(), "{insert}: the full decode refuses it");
        assert_eq!(full, lean, "{insert}");
    }
    let mut invalid_utf8 = with_status_member("\"bytes\": \"a\u{e9}b\",");
    let at = invalid_utf8.iter().position(|&b| b == 0xc3).unwrap();
    invalid_utf8[at] = 0xff;
    assert!(decode(&invalid_utf8).is_err());
    assert_eq!(decode(&invalid_utf8), decode_lean(&invalid_utf8, &Schema::builtin()));

    let accepted = [
        "\"pair\": \"\\ud83d\\ude00 \\u00e9\",",
        "\"big\": 1e300, \"neg\": -12, \"frac\": 0.5, \"u\": 18446744073709551615,",
        "\"nested\": [{\"a\": [null, true, false, {}]}],",
    ];
    for insert in accepted {
        let body = with_status_member(insert);
        assert!(
            decode(&body).is_ok() && decode_lean(&body, &Schema::builtin()).is_ok(),
            "{insert}"
        );
        same_answer(&body, 0);
    }
}

#[test]
fn duplicate_keys_keep_the_last_like_a_full_decode() {
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",
      "kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{
      "kind":"Pod","apiVersion":"v1","metadata":{"annotations":{"a":"1"},"annotations":null},
      "spec":{"containers":[{"name":"x","image":"registry.example/app:1.0","command":["a"],"command":null,
      "args":["b"]}],"spec":"nope","containers":[{"name":"y","image":"registry.example/app:1.0","command":["c"]}]}}}}"#;
    assert!(same_answer(body, 0) > 0);
}

// ---- generated objects ----

const IMAGES: [&str; 5] = [
    "registry.example/app:1.0",
    "nginx",
    "registry.example/init:1.0",
    "registry.example/pinned@sha256:4444444444444444444444444444444444444444444444444444444444444444",
    "Not A Reference",
];

/// Anything at all, for fields the engine does not read and wrong-typed fields it does.
fn noise() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z/~ é\"\\\\]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn string_list() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::collection::vec(prop_oneof![Just("/chalk"), Just("exec"), Just("run"), Just("--flag")], 0..4)
            .prop_map(|v| json!(v)),
        1 => noise(),
    ]
}

/// `Some(value)` for a member that may be absent.
fn maybe<T: Strategy<Value = Value>>(s: T) -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(0.7, s)
}

fn map_of(members: Vec<(&'static str, Option<Value>)>, extra: Value) -> Value {
    let mut map: Map<String, Value> = members
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect();
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            map.entry(k).or_insert(v);
        }
    }
    Value::Object(map)
}

fn container() -> impl Strategy<Value = Value> {
    let image = prop_oneof![4 => prop::sample::select(IMAGES.to_vec()).prop_map(Value::from), 1 => noise()];
    let object = (
        maybe("[a-z]{1,6}".prop_map(Value::from)),
        maybe(image),
        maybe(string_list()),
        maybe(string_list()),
        noise(),
    )
        .prop_map(|(name, image, command, args, extra)| {
            map_of(
                vec![("name", name), ("image", image), ("command", command), ("args", args)],
                extra,
            )
        });
    prop_oneof![9 => object, 1 => noise()]
}

fn containers() -> impl Strategy<Value = Value> {
    prop_oneof![9 => prop::collection::vec(container(), 0..4).prop_map(Value::from), 1 => noise()]
}

fn pod_spec() -> impl Strategy<Value = Value> {
    let secrets = prop_oneof![
        prop::collection::vec("[a-z]{1,4}".prop_map(|n| json!({"name": n})), 0..3).prop_map(Value::from),
        noise(),
    ];
    let account = prop_oneof![Just(json!("")), Just(json!("builder")), noise()];
    (
        maybe(containers()),
        maybe(containers()),
        maybe(containers()),
        maybe(secrets),
        maybe(account),
        noise(),
    )
        .prop_map(|(c, init, eph, secrets, account, extra)| {
            map_of(
                vec![
                    ("containers", c),
                    ("initContainers", init),
                    ("ephemeralContainers", eph),
                    ("imagePullSecrets", secrets),
                    ("serviceAccountName", account),
                ],
                extra,
            )
        })
}

fn metadata() -> impl Strategy<Value = Value> {
    let record = json!({"registry.example/old:1": "sha256:00"}).to_string();
    let annotation_value = prop_oneof![
        Just(json!("fix")),
        Just(json!("audit")),
        Just(json!("off")),
        Just(json!("bogus")),
        noise()
    ];
    let annotations = (
        maybe(annotation_value),
        maybe(prop_oneof![Just(Value::from(record)), noise()]),
        maybe(Just(json!("true"))),
        noise(),
    )
        .prop_map(|(mode, resolved, mirror, extra)| {
            map_of(
                vec![
                    ("entrypoint-guard.io/mode", mode),
                    ("entrypoint-guard.io/resolved-images", resolved),
                    ("kubernetes.io/config.mirror", mirror),
                ],
                extra,
            )
        });
    let owner = prop_oneof![
        Just(json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u-1", "controller": true})),
        Just(json!({"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "controller": false})),
        noise(),
    ];
    let owners = prop_oneof![4 => prop::collection::vec(owner, 0..3).prop_map(Value::from), 1 => noise()];
    let name = prop_oneof!["[a-z]{1,5}".prop_map(Value::from), noise()];
    let meta = (
        maybe(prop_oneof![4 => annotations, 1 => noise()]),
        maybe("[a-z]{1,5}".prop_map(Value::from)),
        (maybe(name.clone()), maybe(name), maybe(owners)),
        noise(),
    )
        .prop_map(|(annotations, namespace, (name, generate_name, owners), extra)| {
            map_of(
                vec![
                    ("annotations", annotations),
                    ("namespace", namespace),
                    ("name", name),
                    ("generateName", generate_name),
                    ("ownerReferences", owners),
                ],
                extra,
            )
        });
    prop_oneof![9 => meta, 1 => noise()]
}

/// A template (`metadata` + pod `spec`), sometimes the wrong shape.
fn template() -> impl Strategy<Value = Value> {
    let t = (maybe(metadata()), maybe(pod_spec()), noise())
        .prop_map(|(metadata, spec, extra)| map_of(vec![("metadata", metadata), ("spec", spec)], extra));
    prop_oneof![9 => t, 1 => noise()]
}

/// The kinds generated: `(apiVersion, kind, template pointer)` of every
/// kind of the engine's table (so a kind added there is proven to decode
/// the same), and one kind it does not inspect.
fn kinds() -> Vec<(String, String, String)> {
    Kinds::builtin()
        .iter()
        .map(|k| {
            let spec = k.pod_specs[0].to_string();
            (k.api_version(), k.kind.clone(), k.pod_specs[0].template_of(&spec))
        })
        .chain([("v1".to_string(), "ConfigMap".to_string(), "/spec/template".to_string())])
        .collect()
}

/// One object of a kind from [`kinds`], its pod spec where that kind keeps it.
fn object() -> impl Strategy<Value = Value> {
    (
        0..kinds().len(),
        any::<bool>(),
        metadata(),
        pod_spec(),
        template(),
        noise(),
    )
        .prop_map(|(k, kind_last, metadata, spec, template, extra)| {
            let (api_version, kind, template_at) = kinds().swap_remove(k);
            let body = if template_at.is_empty() {
                json!({"metadata": metadata, "spec": spec, "status": extra})
            } else {
                // Noise on every level on the way to the template (and
                // metadata below the object's own), then the template.
                let mut body = json!({"metadata": metadata});
                let mut at = &mut body;
                for (depth, key) in template_at.split('/').skip(1).enumerate() {
                    at["extra"] = extra.clone();
                    if depth > 0 {
                        at["metadata"] = extra.clone();
                    }
                    at = &mut at[key];
                }
                *at = template;
                body
            };
            let mut map = Map::new();
            let head = [("apiVersion", json!(api_version)), ("kind", json!(kind))];
            if !kind_last {
                map.extend(head.clone().map(|(k, v)| (k.to_string(), v)));
            }
            map.extend(body.as_object().unwrap().clone());
            if kind_last {
                map.extend(head.map(|(k, v)| (k.to_string(), v)));
            }
            Value::Object(map)
        })
}

/// An object, or a `List` of objects (pod specs at `/items/N/...`).
fn any_object() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => object(),
        1 => prop::collection::vec(object(), 0..3).prop_map(|items| json!({"apiVersion": "v1", "kind": "List", "items": items})),
    ]
}

/// The object as this engine would have pinned it at an earlier admission
/// (every image without a digest pinned, and recorded), to be an UPDATE's
/// `oldObject`: the path that keeps an earlier pin.
fn pinned_copy(object: &Value) -> Value {
    const DIGEST: &str = "sha256:5555555555555555555555555555555555555555555555555555555555555555";
    let mut old = object.clone();
    for at in workload::pod_specs(object, &custom_kinds()) {
        let mut record = Map::new();
        for list in ["initContainers", "containers"] {
            let Some(Value::Array(containers)) = old.pointer_mut(&format!("{}/{list}", at.spec)) else {
                continue;
            };
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(Value::String(image)) = container.get_mut("image")
                    && !image.contains('@')
                {
                    record.insert(image.clone(), json!(DIGEST));
                    image.push('@');
                    image.push_str(DIGEST);
                }
            }
        }
        if let Some(Value::Object(metadata)) = old.pointer_mut(&format!("{}/metadata", at.object)) {
            let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
            if let Some(annotations) = annotations.as_object_mut() {
                annotations.insert(
                    "entrypoint-guard.io/resolved-images".into(),
                    Value::from(Value::Object(record).to_string()),
                );
            }
        }
    }
    old
}

/// An UPDATE's `oldObject`: none, the object itself, another object, or
/// the object as pinned earlier.
fn old_object(object: &Value) -> impl Strategy<Value = Option<Value>> + use<> {
    let same = object.clone();
    let pinned = pinned_copy(object);
    prop_oneof![
        1 => Just(None),
        2 => Just(Some(same)),
        2 => any_object().prop_map(Some),
        3 => Just(Some(pinned)),
    ]
}

fn review() -> impl Strategy<Value = Vec<u8>> {
    (
        any_object(),
        0..kinds().len(),
        any::<bool>(),
        prop::sample::select(vec!["CREATE", "UPDATE"]),
    )
        .prop_flat_map(|(object, k, strip_kind, operation)| {
            let old = if operation == "UPDATE" {
                old_object(&object).boxed()
            } else {
                Just(None).boxed()
            };
            (Just(object), Just(k), Just(strip_kind), Just(operation), old)
        })
        .prop_map(|(object, k, strip_kind, operation, old)| {
            let (api_version, kind, _) = kinds().swap_remove(k);
            let mut object = object;
            if strip_kind && let Some(map) = object.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            admission_review(&api_version, &kind, operation, object, old)
        })
}

/// The AdmissionReview of `object` (of `kind` in `api_version`), with `old`
/// as its `oldObject` on UPDATE.
fn admission_review(api_version: &str, kind: &str, operation: &str, object: Value, old: Option<Value>) -> Vec<u8> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let mut review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "kind": {"group": group, "version": version, "kind": kind},
        "operation": operation, "namespace": "demo", "object": object}});
    if let Some(old) = old {
        review["request"]["oldObject"] = old;
    }
    serde_json::to_vec(&review).unwrap()
}

#[test]
fn generated_objects_get_the_same_answer() {
    generated_get_the_same_answer(review, 512, Kinds::builtin());
}

/// `cases` reviews from the strategy `reviews` makes get the same answer
/// from both decodes under `kinds`; most of them reach the engine (the rest
/// are refused or skipped alike).
fn generated_get_the_same_answer<S: Strategy<Value = Vec<u8>> + 'static>(reviews: fn() -> S, cases: u32, kinds: Kinds) {
    // The nested generators need more stack than a test thread has in debug builds.
    let run = move || {
        let reviews = reviews();
        let inspected = std::cell::Cell::new(0);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases,
            ..ProptestConfig::default()
        });
        runner
            .run(&(reviews, 0usize..7), |(body, seed)| {
                if same_answer_for(&body, seed, &kinds) > 0 {
                    inspected.set(inspected.get() + 1);
                }
                Ok(())
            })
            .unwrap();
        assert!(
            inspected.get() > cases / 2,
            "only {} of {cases} reviews were inspected",
            inspected.get()
        );
    };
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}

/// The custom kinds of the generated objects below: presets, and a kind of
/// our own whose path has an escaped key and a `*` over a list.
fn custom_kinds() -> Kinds {
    let config = entrypoint_guard::config::Config::from_yaml(
        "customKinds:\n  - argo-rollouts\n  - knative-serving\n  - volcano\n  - kubeflow\n  - keda\n\
         \x20 - {group: example.com, kind: Widget, plural: widgets, versions: [v1], podSpecPaths: ['/spec/pod~1templates/*/spec']}\n",
        "custom-kinds",
    )
    .unwrap();
    config.policy().kinds
}

const CUSTOM_KINDS: [(&str, &str); 7] = [
    ("argoproj.io/v1alpha1", "Rollout"),
    ("serving.knative.dev/v1", "Revision"),
    ("batch.volcano.sh/v1alpha1", "Job"),
    ("kubeflow.org/v1", "TFJob"),
    ("keda.sh/v1alpha1", "ScaledJob"),
    ("example.com/v1", "Widget"),
    ("batch/v1", "Job"),
];

/// One object of a custom kind, its pod specs where that kind keeps them.
fn custom_object() -> impl Strategy<Value = Value> {
    (
        0..CUSTOM_KINDS.len(),
        metadata(),
        pod_spec(),
        template(),
        template(),
        noise(),
    )
        .prop_map(|(k, metadata, spec, template, other, extra)| {
            let (api_version, kind) = CUSTOM_KINDS[k];
            let spec = match (api_version, kind) {
                (_, "Revision") => spec,
                (_, "Job") if api_version.starts_with("batch.volcano") => {
                    json!({"tasks": [{"name": "ps", "template": template}, extra, {"name": "w", "template": other}]})
                }
                (_, "TFJob") => json!({"tfReplicaSpecs": {"PS": {"template": template}, "Worker": {"replicas": 2, "template": other}, "Chief": extra}}),
                (_, "ScaledJob") => json!({"jobTargetRef": {"template": template}, "triggers": extra}),
                (_, "Widget") => json!({"pod/templates": [{"metadata": metadata.clone(), "spec": spec}, extra]}),
                _ => json!({"replicas": 1, "template": template, "strategy": extra}),
            };
            json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec})
        })
}

fn custom_review() -> impl Strategy<Value = Vec<u8>> {
    let object = prop_oneof![
        4 => custom_object(),
        1 => prop::collection::vec(custom_object(), 0..3).prop_map(|items| json!({"apiVersion": "v1", "kind": "List", "items": items})),
    ];
    (object, prop::sample::select(vec!["CREATE", "UPDATE"]))
        .prop_flat_map(|(object, operation)| {
            let old = if operation == "UPDATE" {
                prop_oneof![1 => Just(Some(object.clone())), 2 => Just(Some(pinned_copy(&object))), 1 => custom_object().prop_map(Some)].boxed()
            } else {
                Just(None).boxed()
            };
            (Just(object), Just(operation), old)
        })
        .prop_map(|(object, operation, old)| {
            let api_version = object["apiVersion"].as_str().unwrap_or("v1").to_string();
            let kind = object["kind"].as_str().unwrap_or("List").to_string();
            admission_review(&api_version, &kind, operation, object, old)
        })
}

#[test]
fn generated_objects_of_custom_kinds_get_the_same_answer() {
    generated_get_the_same_answer(custom_review, 256, custom_kinds());
}
