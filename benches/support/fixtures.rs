//! What both criterion benchmarks share: the captured admission reviews and
//! offline facts for their images (the facts `scripts/load.sh` serves with).

use std::path::Path;

use entrypoint_guard::image::{Facts, ImageFacts};

/// Every review fixture: (file stem, body).
pub fn reviews() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission-reviews");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("the fixtures directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, std::fs::read(&p).expect("a fixture"))
        })
        .collect();
    out.sort();
    out
}

/// Wrapped images with digests, so every fixture is patched.
pub fn facts() -> Facts {
    let bare = || vec!["/chalk".to_string(), "exec".to_string(), "--".to_string()];
    let digest = |d: char| Some(format!("sha256:{}", d.to_string().repeat(64)));
    let named: Vec<String> = [
        "/chalk",
        "exec",
        "--heartbeat",
        "--exec-command-name",
        "/docker-entrypoint.sh",
        "--",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut facts = Facts::new();
    facts.insert("registry.example/app:1.0", ImageFacts::known(bare(), digest('1')));
    facts.insert("registry.example/init:1.0", ImageFacts::known(named, digest('2')));
    facts.insert("registry.example/sidecar:1.0", ImageFacts::known(bare(), digest('3')));
    facts.insert("registry.example/tool:2.3", ImageFacts::known(bare(), digest('4')));
    facts
}
