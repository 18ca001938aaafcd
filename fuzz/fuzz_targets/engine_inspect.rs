//! The engine on arbitrary JSON objects: never panics, its patch applies,
//! and running it on its own output changes nothing more.
#![no_main]

use entrypoint_guard::engine::{Mode, Policy, Strategy, inspect};
use entrypoint_guard::image::{Facts, ImageFacts};
use libfuzzer_sys::fuzz_target;

fn facts() -> Facts {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let digest = Some("sha256:1111111111111111111111111111111111111111111111111111111111111111".to_string());
    let mut f = Facts::new();
    f.insert("registry.example/app:1.0", ImageFacts::known(v(&["/chalk", "exec", "--"]), digest.clone()));
    f.insert("registry.example/init:1.0", ImageFacts::known(v(&["/chalk", "exec", "--exec-command-name", "x", "--"]), None));
    f.insert("a", ImageFacts::known(v(&["/chalk", "exec"]), digest));
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, json)) = data.split_first() else { return };
    let Ok(object) = serde_json::from_slice::<serde_json::Value>(json) else { return };
    let strategy = [Strategy::Auto, Strategy::Args, Strategy::Prepend][selector as usize % 3];
    let policy = Policy { strategy, keep_tag: selector & 4 == 0, ..Policy::default() };
    let facts = facts();
    let first = inspect(&object, &facts, &policy, Mode::Fix);
    let mut fixed = object.clone();
    json_patch::patch(&mut fixed, &first.patch).expect("the engine's patch applies to its input");
    for finding in &first.findings {
        assert!(finding.summary().chars().count() < 120, "warning too long: {}", finding.summary());
    }
    // Pinned images keep the facts of the tag they were resolved from.
    let mut facts_after = facts.clone();
    for finding in &first.findings {
        if let Some(entrypoint_guard::engine::Change::Image { before, after }) = &finding.change {
            if let Some(f) = facts.get(before) {
                facts_after.insert(after.clone(), f.clone());
            }
        }
    }
    let second = inspect(&fixed, &facts_after, &policy, Mode::Fix);
    assert!(second.patch.is_empty(), "not idempotent: {:?}", second.patch);
});
