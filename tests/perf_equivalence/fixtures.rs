//! The captured fixtures: the same answer from both decodes and from the
//! memo (on and off), bodies the skipped parts make invalid refused alike.

use entrypoint_guard::admission::{self, Memo, Schema, decode, decode_lean};
use entrypoint_guard::config::server::OnError;
use entrypoint_guard::engine::{Kinds, Mode, Policy};

use super::support::*;

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
