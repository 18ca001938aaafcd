//! deploy/ (plain manifests) stays what scripts/render-deploy.sh makes from
//! the chart, and the Dockerfile keeps the invariants the chart relies on.

#[path = "support/chart.rs"]
mod chart;

use std::collections::BTreeMap;
use std::path::Path;

use chart::{describe, parse_docs, root, run, validate};

/// File name → content of every file directly in `dir`. Subdirectories
/// (`deploy/audit/`, applied on their own) are not the chart's output.
fn files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            (path.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect()
}

#[test]
fn deploy_matches_the_chart() {
    let out = tempfile::tempdir().expect("temp dir");
    let script = root().join("scripts/render-deploy.sh");
    let result = run("bash", &[script.to_str().unwrap(), out.path().to_str().unwrap()], None);
    assert!(
        result.status.success(),
        "render-deploy.sh failed:\n{}",
        describe(&result)
    );
    let fresh = files(out.path());
    let mut committed = files(&root().join("deploy"));
    // Hand-written instructions live beside the generated manifests.
    assert!(
        committed.remove("README.md").is_some(),
        "deploy/README.md explains deploy/"
    );
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        fresh.keys().collect::<Vec<_>>(),
        "deploy/ files differ from the script's: run scripts/render-deploy.sh"
    );
    for (name, text) in &fresh {
        let (want, have) = (sorted_docs(text), sorted_docs(&committed[name]));
        assert_eq!(want.len(), have.len(), "deploy/{name}: document count drifted: {FIX}");
        for (w, h) in want.iter().zip(&have) {
            assert!(
                w == h,
                "deploy/{name}: {} {} drifted: {FIX}",
                w["kind"],
                w["metadata"]["name"]
            );
        }
    }
}

const FIX: &str = "run scripts/render-deploy.sh and commit the result";

/// The documents of a manifest file in a fixed order. Helm 3 and Helm 4 order
/// custom kinds (cert-manager's) differently, so order alone is not drift.
fn sorted_docs(text: &str) -> Vec<serde_json::Value> {
    let mut docs = parse_docs(text);
    docs.sort_by_key(|d| {
        (
            d["kind"].to_string(),
            d["metadata"]["namespace"].to_string(),
            d["metadata"]["name"].to_string(),
        )
    });
    docs
}

#[test]
fn deploy_manifests_are_valid_and_self_contained() {
    let dir = root().join("deploy");
    let mut all = String::new();
    for (name, text) in files(&dir) {
        if name.ends_with(".yaml") {
            all.push_str(&text);
            all.push_str("\n---\n");
        }
    }
    validate(&all);
    let docs = parse_docs(&all);
    let kinds: Vec<_> = docs.iter().map(|d| d["kind"].as_str().unwrap_or_default()).collect();
    for kind in [
        "Namespace",
        "Deployment",
        "Service",
        "ConfigMap",
        "MutatingWebhookConfiguration",
        "Certificate",
    ] {
        assert!(kinds.contains(&kind), "deploy/ lacks a {kind}: {kinds:?}");
    }
    for d in &docs {
        let labels = &d["metadata"]["labels"];
        assert!(
            labels.get("helm.sh/chart").is_none(),
            "{}: Helm label left in deploy/",
            d["kind"]
        );
        if let Some(ann) = d["metadata"]["annotations"].as_object() {
            assert!(
                !ann.contains_key("helm.sh/hook"),
                "{}: a Helm hook in deploy/",
                d["kind"]
            );
        }
        if d["metadata"].get("namespace").is_some() {
            assert_eq!(d["metadata"]["namespace"], "entrypoint-guard");
        }
    }
    // No helm test probe facts in a plain install.
    let cm = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let config = cm["data"]["config.yaml"].as_str().unwrap();
    entrypoint_guard::config::Config::from_yaml(config, "deploy/entrypoint-guard.yaml")
        .unwrap_or_else(|e| panic!("deploy/'s config does not load: {e}"));
    assert!(!config.contains("helm-test"), "{config}");
}

/// The instructions (one per line) of a Dockerfile, continuation lines joined.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

#[test]
fn dockerfile_keeps_its_invariants() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let ins = instructions(&text);
    let with = |word: &str| ins.iter().filter(|i| i.starts_with(word)).cloned().collect::<Vec<_>>();
    let froms = with("FROM ");
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    let builder = &froms[0];
    assert!(builder.contains("rust:") && builder.contains("bookworm"), "{builder}");
    // The builder's toolchain is at least the crate's rust-version.
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let wanted = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("rust-version")
        .trim_matches('"');
    let minor = |v: &str| v.split('.').nth(1).and_then(|m| m.parse::<u32>().ok());
    let tag = builder.split("rust:").nth(1).unwrap().split('-').next().unwrap();
    assert!(
        minor(tag) >= minor(wanted),
        "builder rust {tag} < rust-version {wanted}"
    );
    let build = with("RUN ")
        .into_iter()
        .find(|r| r.contains("cargo build"))
        .expect("a cargo build step");
    assert!(build.contains("--release") && build.contains("--locked"), "{build}");
    // The final stage: small, non-root, the ports the chart uses, `serve`.
    let last = froms.last().unwrap();
    assert!(
        last.contains("distroless/cc") || last.contains("-slim"),
        "small final image: {last}"
    );
    let final_stage: Vec<_> = ins.iter().skip_while(|i| *i != last).collect();
    let user = final_stage
        .iter()
        .rev()
        .find(|i| i.starts_with("USER "))
        .expect("USER in the final stage");
    let uid = user["USER ".len()..].split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "numeric non-root USER: {user}"
    );
    let expose = final_stage.iter().find(|i| i.starts_with("EXPOSE ")).expect("EXPOSE");
    let ports: Vec<_> = expose.split_whitespace().skip(1).collect();
    assert!(ports.contains(&"8443") && ports.contains(&"8080"), "{expose}");
    let entrypoint = final_stage
        .iter()
        .find(|i| i.starts_with("ENTRYPOINT "))
        .expect("ENTRYPOINT");
    let argv: Vec<String> = serde_json::from_str(&entrypoint["ENTRYPOINT ".len()..]).expect("exec-form ENTRYPOINT");
    assert!(argv[0].ends_with("/entrypoint-guard") && argv[1] == "serve", "{argv:?}");
    // The KRM function's stage: the same binary, non-root, running `krm`.
    let krm = froms.iter().find(|f| f.ends_with(" AS krm")).expect("a krm stage");
    let krm_stage: Vec<_> = ins
        .iter()
        .skip_while(|i| *i != krm)
        .skip(1)
        .take_while(|i| !i.starts_with("FROM "))
        .collect();
    let krm_entrypoint = krm_stage
        .iter()
        .find(|i| i.starts_with("ENTRYPOINT "))
        .expect("krm ENTRYPOINT");
    let krm_argv: Vec<String> = serde_json::from_str(&krm_entrypoint["ENTRYPOINT ".len()..]).expect("exec form");
    assert!(
        krm_argv[0].ends_with("/entrypoint-guard") && krm_argv[1] == "krm",
        "{krm_argv:?}"
    );
    assert!(krm_stage.contains(user), "the krm stage runs as {user}");
    // The chart runs the image as that user and never overrides the entrypoint.
    let values = std::fs::read_to_string(chart::chart_dir().join("values.yaml")).expect("values.yaml");
    assert!(
        values.contains(&format!("runAsUser: {uid}")),
        "chart runAsUser matches the image USER {uid}"
    );

    // What the build needs is not excluded from the context.
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).expect(".dockerignore");
    for needed in ["src/", "Cargo.toml", "Cargo.lock"] {
        assert!(
            !ignore
                .lines()
                .any(|l| needed.starts_with(l.trim().trim_end_matches('/')) && !l.trim().is_empty()),
            ".dockerignore excludes {needed}"
        );
    }
    assert!(
        ignore.lines().any(|l| l.trim() == "target/"),
        ".dockerignore keeps target/ out"
    );
}
