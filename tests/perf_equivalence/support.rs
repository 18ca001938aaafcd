//! What every equivalence test shares: the facts and policies the answers
//! are compared under, and the comparisons themselves.

use std::sync::Arc;

use entrypoint_guard::admission::{self, AdmissionRequest, AdmissionResponse, Memo, Schema, decode, decode_lean};
use entrypoint_guard::config::server::OnError;
use entrypoint_guard::engine::{self, ImageFilter, Kinds, Mode, Policy, Scope, Strategy as FixStrategy, UnknownImages};
use entrypoint_guard::image::{Entrypoint, Facts, ImageFacts, PlatformEntrypoint};
use serde_json::{Map, Value, json};

pub(crate) const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/admission-reviews");

pub(crate) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Every kind of facts the engine decides differently on.
pub(crate) fn facts_variant(i: usize) -> ImageFacts {
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
pub(crate) fn facts_for(images: &[String], seed: usize) -> Facts {
    images
        .iter()
        .enumerate()
        .map(|(i, image)| (image.clone(), facts_variant(i + seed)))
        .collect()
}

pub(crate) fn policies(kinds: &Kinds) -> Vec<Policy> {
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
pub(crate) fn head(request: &AdmissionRequest) -> AdmissionRequest {
    AdmissionRequest {
        object: None,
        old_object: None,
        ..request.clone()
    }
}

/// The images the webhook looks up: on UPDATE, against the old object.
pub(crate) fn images(object: &Value, old: Option<&Value>, policy: &Policy) -> Vec<String> {
    engine::lookups(object, old, None, policy).images
}

/// The engine's answer: on UPDATE, against the old object.
pub(crate) fn inspect(
    object: &Value,
    old: Option<&Value>,
    facts: &Facts,
    policy: &Policy,
    ceiling: Mode,
) -> engine::Inspection {
    match old {
        Some(old) => engine::inspect_update(object, old, facts, policy, ceiling),
        None => engine::inspect(object, facts, policy, ceiling),
    }
}

/// Checks that both decodes lead to the same answer for `body`; returns how
/// many inspections were compared.
pub(crate) fn same_answer(body: &[u8], seed: usize) -> usize {
    same_answer_for(body, seed, &Kinds::builtin())
}

/// [`same_answer`] with the kinds of `kinds` (the lean decode along their schema).
pub(crate) fn same_answer_for(body: &[u8], seed: usize, kinds: &Kinds) -> usize {
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
        // `server.memoAnswers: 0`: nothing remembered, the same answers.
        let off = Memo::new(0);
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
                same_as_remembered(&off, &lean, lean_old, &facts, &policy, ceiling);
                assert!(off.is_empty(), "a memo of 0 answers remembers nothing");
                compared += 1;
            }
        }
    }
    compared
}

/// `memo` answers like `admission::review` — asked first (remembered, or
/// not yet) and again for another uid (remembered now) — and the answer's
/// bytes are serde_json's encoding of its fields.
pub(crate) fn same_as_remembered(
    memo: &Memo,
    object: &Value,
    old: Option<&Value>,
    facts: &Facts,
    policy: &Policy,
    ceiling: Mode,
) {
    for uid in ["u-first", "u \"quoted\" é"] {
        let fresh = admission::review(uid, object, old, facts, policy, ceiling, OnError::Allow);
        assert_eq!(fresh.response.to_json(), serde_json_encoding(&fresh.response));
        let subject = memo.subject(object.clone(), old.cloned());
        let answer = memo.review(uid, &subject, facts, policy, ceiling, OnError::Allow);
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
pub(crate) fn serde_json_encoding(r: &AdmissionResponse) -> Vec<u8> {
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

pub(crate) fn fixtures() -> Vec<(String, Vec<u8>)> {
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
