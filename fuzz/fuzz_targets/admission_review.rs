//! AdmissionReview decoding and handling on arbitrary bodies: never panics,
//! every decoded request gets an answer that is valid JSON echoing its uid,
//! and the lean decode (what the server uses) accepts what the whole one does.
#![no_main]

use entrypoint_guard::admission::{self, Schema, decode, decode_lean};
use entrypoint_guard::config::server::OnError;
use entrypoint_guard::engine::{Mode, Policy};
use entrypoint_guard::image::{Facts, ImageFacts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let lean = decode_lean(body, &Schema::builtin());
    assert_eq!(lean.is_ok(), decode(body).is_ok(), "the lean and whole decodes disagree");
    let Ok(mut request) = lean else { return };
    let uid = request.uid.clone();
    let policy = Policy::default();
    let Ok(object) = request.take_object(&policy.kinds) else { return };
    let old = request.take_old_object();
    let mut facts = Facts::new();
    let bare = vec!["/chalk".to_string(), "exec".to_string(), "--".to_string()];
    facts.insert("registry.example/app:1.0", ImageFacts::known(bare, None));
    for ceiling in [Mode::Fix, Mode::Audit] {
        let verdict = admission::review(&uid, &object, old.as_ref(), &facts, &policy, ceiling, OnError::Allow);
        let json: serde_json::Value = serde_json::from_slice(&verdict.response.to_json()).expect("answers are JSON");
        assert_eq!(json["response"]["uid"], serde_json::Value::String(uid.clone()));
        for w in json["response"]["warnings"].as_array().into_iter().flatten() {
            assert!(w.as_str().unwrap().chars().count() < 120);
        }
    }
});
