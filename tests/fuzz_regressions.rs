//! Inputs the fuzzers found (fuzz/, `cargo +nightly fuzz`), kept as tests of
//! the normal suite: each must now pass the fuzz target's checks.

use std::path::PathBuf;

use entrypoint_guard::engine::{Change, Mode, Policy, Strategy, inspect};
use entrypoint_guard::image::{Facts, ImageFacts};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs in {}", dir.display());
    out
}

/// The facts of fuzz/fuzz_targets/engine_inspect.rs.
fn engine_facts() -> Facts {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let digest = Some("sha256:1111111111111111111111111111111111111111111111111111111111111111".to_string());
    let mut f = Facts::new();
    f.insert(
        "registry.example/app:1.0",
        ImageFacts::known(v(&["/chalk", "exec", "--"]), digest.clone()),
    );
    f.insert(
        "registry.example/init:1.0",
        ImageFacts::known(v(&["/chalk", "exec", "--exec-command-name", "x", "--"]), None),
    );
    f.insert("a", ImageFacts::known(v(&["/chalk", "exec"]), digest));
    f
}

#[test]
fn engine_inspect_regressions() {
    for (path, data) in inputs("engine_inspect") {
        let (&selector, json) = data.split_first().expect("a selector byte");
        let object: serde_json::Value = serde_json::from_slice(json).expect("the input is JSON");
        let strategy = [Strategy::Auto, Strategy::Args, Strategy::Prepend][selector as usize % 3];
        let policy = Policy {
            strategy,
            keep_tag: selector & 4 == 0,
            ..Policy::default()
        };
        let facts = engine_facts();
        let first = inspect(&object, &facts, &policy, Mode::Fix);
        let mut fixed = object.clone();
        json_patch::patch(&mut fixed, &first.patch).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for finding in &first.findings {
            let s = finding.summary();
            assert!(
                s.chars().count() < 120,
                "{}: warning of {} chars: {s}",
                path.display(),
                s.chars().count()
            );
        }
        let mut after = facts.clone();
        for finding in &first.findings {
            if let Some(Change::Image { before, after: pinned }) = &finding.change
                && let Some(f) = facts.get(before)
            {
                after.insert(pinned.clone(), f.clone());
            }
        }
        assert!(
            inspect(&fixed, &after, &policy, Mode::Fix).patch.is_empty(),
            "{}",
            path.display()
        );
    }
}
