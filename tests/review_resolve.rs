//! `entrypoint-guard review --resolve` end to end: the built binary resolves
//! real images in loopback `docker-registry` instances (pushed with umoci and
//! skopeo) and writes the fixed manifests.

#[path = "support/registry.rs"]
mod registry;
#[path = "support/resolve.rs"]
mod resolve;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use registry::{Auth, World};
use resolve::{SHAPES, assert_fixed, config_file, container, docker_config, shape_container, yaml_documents};
use serde_json::{Value, json};

/// One world (plain registry + the standard images) per test binary.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::new)
}

/// Runs `entrypoint-guard --config CONFIG review --resolve ARGS` with a
/// `$DOCKER_CONFIG` of its own (`home/.docker`, usually empty), so the user's
/// credentials never leak into a test.
fn review(home: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_entrypoint-guard"))
        .arg("--config")
        .arg(config)
        .args(["review", "--resolve"])
        .args(args)
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env_remove("ENTRYPOINT_GUARD_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run entrypoint-guard")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A Deployment with one container per shape, images in `registry`.
fn shapes_manifest(dir: &Path, registry: &str) -> std::path::PathBuf {
    let containers: Vec<Value> = SHAPES.iter().map(|s| shape_container(s, registry)).collect();
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "shapes", "namespace": "demo"},
        "spec": {"selector": {"matchLabels": {"app": "shapes"}},
            "template": {"metadata": {"labels": {"app": "shapes"}}, "spec": {"containers": containers}}}});
    let path = dir.join("shapes.yaml");
    std::fs::write(&path, serde_saphyr::to_string(&deployment).unwrap()).unwrap();
    path
}

#[test]
fn every_wrap_shape_is_fixed_and_pinned_to_the_registry_digest() {
    let w = world();
    let reg = w.plain.addr.as_str();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &[reg], &[], "");
    let manifest = shapes_manifest(dir.path(), reg);
    let out = review(dir.path(), &config, &["-f", manifest.to_str().unwrap(), "-o", "yaml"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings exit 1; stderr:\n{}",
        text(&out.stderr)
    );
    let docs = yaml_documents(&text(&out.stdout));
    assert_eq!(docs.len(), 1);
    for shape in SHAPES {
        assert_fixed(
            container(&docs[0], shape.name),
            shape,
            reg,
            w.images.digest(shape.repo_tag),
        );
    }
    // The trace annotation names every resolved digest.
    let annotation = docs[0]["metadata"]["annotations"]["entrypoint-guard.io/resolved-images"]
        .as_str()
        .expect("resolved-images annotation");
    let resolved: Value = serde_json::from_str(annotation).unwrap();
    for shape in SHAPES {
        let image = format!("{reg}/{}", shape.repo_tag);
        assert_eq!(resolved[&image], json!(w.images.digest(shape.repo_tag)), "{image}");
    }
}

#[test]
fn a_stream_of_documents_on_stdin_is_resolved_document_by_document() {
    let w = world();
    let reg = w.plain.addr.as_str();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &[reg], &[], "");
    // One Pod per shape, in one stream, after a document with no images.
    let mut stream = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n");
    for shape in SHAPES {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": shape.name},
            "spec": {"containers": [shape_container(shape, reg)]}});
        stream.push_str("---\n");
        stream.push_str(&serde_saphyr::to_string(&pod).unwrap());
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_entrypoint-guard"))
        .arg("--config")
        .arg(&config)
        .args(["review", "--resolve", "-f", "-", "-o", "yaml"])
        .env("DOCKER_CONFIG", dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(stream.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let docs = yaml_documents(&text(&out.stdout));
    assert_eq!(docs.len(), SHAPES.len() + 1);
    assert_eq!(docs[0]["kind"], "ConfigMap");
    for (shape, doc) in SHAPES.iter().zip(&docs[1..]) {
        assert_eq!(doc["metadata"]["name"], shape.name);
        assert_fixed(container(doc, shape.name), shape, reg, w.images.digest(shape.repo_tag));
    }
}

#[test]
fn the_krm_function_resolves_with_resolve_too() {
    let w = world();
    let reg = w.plain.addr.as_str();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &[reg], &[], "");
    let items: Vec<Value> = SHAPES
        .iter()
        .map(|shape| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": shape.name},
                "spec": {"containers": [shape_container(shape, reg)]}})
        })
        .collect();
    let list = json!({"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": items});
    let mut child = Command::new(env!("CARGO_BIN_EXE_entrypoint-guard"))
        .arg("--config")
        .arg(&config)
        .args(["krm", "--resolve"])
        .env("DOCKER_CONFIG", dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_saphyr::to_string(&list).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", text(&out.stderr));
    let fixed: Value = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    for (shape, item) in SHAPES.iter().zip(fixed["items"].as_array().unwrap()) {
        assert_fixed(container(item, shape.name), shape, reg, w.images.digest(shape.repo_tag));
    }
    let applied = fixed["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["tags"]["rule"] == "image-pinned" && r["tags"]["applied"] == "true")
        .count();
    assert_eq!(applied, SHAPES.len(), "every image pinned from the registry");
}

#[test]
fn json_report_names_the_rule_for_each_shape() {
    let w = world();
    let reg = w.plain.addr.as_str();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &[reg], &[], "");
    let manifest = shapes_manifest(dir.path(), reg);
    let out = review(dir.path(), &config, &["-f", manifest.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let findings: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no findings in {report:#}"))
        .iter()
        .collect();
    let rules = |name: &str| -> Vec<String> {
        let mut rules: Vec<String> = findings
            .iter()
            .filter(|f| f["container"]["name"] == name)
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect();
        rules.sort();
        rules
    };
    for name in ["bare", "one", "two", "shell", "flags", "multi"] {
        assert_eq!(rules(name), ["command-bypasses-wrapper", "image-pinned"], "{name}");
    }
    assert_eq!(rules("plain"), ["image-pinned"]);
    assert_eq!(rules("disagree"), ["image-pinned", "platforms-disagree"]);
}

#[test]
fn offline_facts_win_over_the_registry_for_the_images_they_name() {
    let w = world();
    let reg = w.plain.addr.as_str();
    let dir = tempfile::tempdir().unwrap();
    // The configuration says chalk/bare is not wrapped (and gives no digest);
    // an --images file says chalk/one is bare-wrapped, with its own digest.
    let fake = format!("sha256:{}", "ab".repeat(32));
    let config = config_file(
        dir.path(),
        &[reg],
        &[],
        &format!("imageFacts:\n  {reg}/chalk/bare:1.0:\n    entrypoint: [\"python\"]\n"),
    );
    let images = dir.path().join("images.yaml");
    std::fs::write(
        &images,
        format!("{reg}/chalk/one:1.0:\n  entrypoint: [\"/chalk\", \"exec\", \"--\"]\n  digest: \"{fake}\"\n"),
    )
    .unwrap();
    let manifest = shapes_manifest(dir.path(), reg);
    let out = review(
        dir.path(),
        &config,
        &[
            "-f",
            manifest.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
            "-o",
            "yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let docs = yaml_documents(&text(&out.stdout));
    let bare = container(&docs[0], "bare");
    assert_eq!(
        bare["command"],
        json!(["sh", "-c", "echo hi"]),
        "not wrapped, as configured"
    );
    assert_eq!(
        bare["image"],
        json!(format!("{reg}/chalk/bare:1.0")),
        "no digest configured: not pinned"
    );
    let one = container(&docs[0], "one");
    assert_eq!(
        one["command"],
        Value::Null,
        "the --images file's bare wrapper: args fix"
    );
    assert_eq!(one["args"], json!(["sh", "-c", "echo one"]));
    assert_eq!(one["image"], json!(format!("{reg}/chalk/one:1.0@{fake}")));
    // The rest still comes from the registry.
    let two = SHAPES.iter().find(|s| s.name == "two").unwrap();
    assert_fixed(container(&docs[0], "two"), two, reg, w.images.digest("chalk/two:1.0"));
}

#[test]
fn credentials_for_a_tls_registry_come_from_the_docker_config() {
    let w = world();
    let users = vec![("alice".to_string(), "s3cret".to_string())];
    let tls = w.registry("review-tls", Auth::TlsHtpasswd { users });
    let reg = tls.addr.as_str();
    let dir = tempfile::tempdir().unwrap();
    let ca = tls.ca_file.as_deref().unwrap();
    let config = config_file(dir.path(), &[], &[(reg, ca)], "");
    let manifest = shapes_manifest(dir.path(), reg);
    let manifest = manifest.to_str().unwrap();

    // The default location ($DOCKER_CONFIG/config.json) is read.
    docker_config(&dir.path().join(".docker"), reg, "alice", "s3cret");
    let out = review(dir.path(), &config, &["-f", manifest, "-o", "yaml"]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let docs = yaml_documents(&text(&out.stdout));
    for shape in SHAPES {
        assert_fixed(
            container(&docs[0], shape.name),
            shape,
            reg,
            w.images.digest(shape.repo_tag),
        );
    }

    // --docker-config names another file: wrong password, nothing resolved.
    let wrong = docker_config(&dir.path().join("wrong"), reg, "alice", "nope");
    let out = review(
        dir.path(),
        &config,
        &["-f", manifest, "-o", "json", "--docker-config", wrong.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), SHAPES.len(), "{report:#}");
    assert!(
        findings.iter().all(|f| f["rule"] == "image-config-unknown"),
        "{report:#}"
    );
    assert_eq!(report["changes"], json!([]), "nothing changed: {report:#}");
}

#[test]
fn without_credentials_the_tls_registry_is_unresolved_and_nothing_changes() {
    let w = world();
    let users = vec![("bob".to_string(), "pw".to_string())];
    let tls = w.registry("review-anon", Auth::TlsHtpasswd { users });
    let reg = tls.addr.as_str();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &[], &[(reg, tls.ca_file.as_deref().unwrap())], "");
    let manifest = shapes_manifest(dir.path(), reg);
    // No $DOCKER_CONFIG/config.json: anonymous, and the registry says 401.
    let out = review(dir.path(), &config, &["-f", manifest.to_str().unwrap(), "-o", "text"]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert_eq!(report.matches("image-config-unknown").count(), SHAPES.len(), "{report}");
    assert!(!report.contains("@sha256:"), "nothing pinned:\n{report}");
}

#[test]
fn a_named_docker_config_that_does_not_exist_is_a_usage_error() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &[&w.plain.addr], &[], "");
    let manifest = shapes_manifest(dir.path(), &w.plain.addr);
    let missing = dir.path().join("no/config.json");
    let out = review(
        dir.path(),
        &config,
        &[
            "-f",
            manifest.to_str().unwrap(),
            "--docker-config",
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(out.stdout.is_empty(), "no report: {}", text(&out.stdout));
}

#[test]
fn a_registry_that_is_down_leaves_images_unknown_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let down = format!("127.0.0.1:{}", registry::free_port());
    let config = config_file(dir.path(), &[&down], &[], "");
    let manifest = shapes_manifest(dir.path(), &down);
    let started = std::time::Instant::now();
    let out = review(
        dir.path(),
        &config,
        &[
            "-f",
            manifest.to_str().unwrap(),
            "-o",
            "json",
            "--resolve-timeout",
            "5s",
        ],
    );
    println!("review against a closed port took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["rule"] == "image-config-unknown"),
        "{report:#}"
    );
    assert_eq!(findings.len(), SHAPES.len());
}

#[test]
fn without_resolve_the_registry_is_never_contacted() {
    let w = world();
    let reg = w.plain.addr.as_str();
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &[reg], &[], "");
    let manifest = shapes_manifest(dir.path(), reg);
    let before = w.plain.manifest_requests("chalk/two", "1.0");
    let out = Command::new(env!("CARGO_BIN_EXE_entrypoint-guard"))
        .arg("--config")
        .arg(&config)
        .args(["review", "-f", manifest.to_str().unwrap(), "-o", "json"])
        .env("DOCKER_CONFIG", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["rule"] == "image-config-unknown"),
        "{report:#}"
    );
    assert_eq!(w.plain.manifest_requests("chalk/two", "1.0"), before);
}
