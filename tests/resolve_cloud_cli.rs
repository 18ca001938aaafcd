//! `review --resolve` and `audit --resolve` use the webhook's credential
//! chain: the built binary, given only a Google identity (the GCE metadata
//! stand-in, through `GCE_METADATA_HOST` in its environment) and a kubelet
//! credential plugin in its configuration, resolves images in two protected
//! registries that nothing else could open.

#[path = "support/cloud.rs"]
mod cloud;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/resolve.rs"]
mod resolve;
#[path = "support/audit.rs"]
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cloud::{FakeGoogle, write};
use registry::{Auth, Registry, World};
use resolve::{SHAPES, Shape, assert_fixed, container, shape_container, yaml_documents};
use serde_json::{Value, json};
use support::{ApiServer, Behaviour, json_report, stderr};

const PLUGIN: &str = r#"#!/bin/sh
cat > /dev/null
echo run >> "$COUNT"
printf '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Registry","auth":{"%s":{"username":"plugin-user","password":"plugin-pass"}}}' "$AUTH_KEY"
"#;

fn shape(name: &str) -> &'static Shape {
    SHAPES.iter().find(|s| s.name == name).unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    google: Registry,
    plugged: Registry,
}

/// Two protected registries: one opened by the Google identity, one by the plugin.
fn setup(w: &World) -> Setup {
    let google = w.registry(
        "cli-google",
        Auth::TlsHtpasswd {
            users: vec![("oauth2accesstoken".into(), "ya29.cli-identity".into())],
        },
    );
    let plugged = w.registry(
        "cli-plugin",
        Auth::TlsHtpasswd {
            users: vec![("plugin-user".into(), "plugin-pass".into())],
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("plugins");
    std::fs::create_dir(&bin).unwrap();
    let plugin = write(&bin, "test-plugin", PLUGIN);
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let providers = json!({"apiVersion": "kubelet.config.k8s.io/v1", "kind": "CredentialProviderConfig",
        "providers": [{"name": "test-plugin", "matchImages": [plugged.addr], "defaultCacheDuration": "1h",
            "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
            "env": [{"name": "COUNT", "value": dir.path().join("plugin-runs").display().to_string()},
                    {"name": "AUTH_KEY", "value": plugged.addr}]}]});
    let providers_file = write(dir.path(), "providers.json", &providers.to_string());
    let regs = [&google, &plugged];
    let registry = json!({
        "allowPrivate": regs.iter().map(|r| r.addr.clone()).collect::<Vec<_>>(),
        "caFiles": regs.iter().map(|r| (r.addr.clone(), json!(r.ca_file.as_ref().unwrap()))).collect::<serde_json::Map<_, _>>(),
        "pullSecrets": false,
        "credentials": {
            "google": {"registries": [google.addr]},
            "kubeletPlugins": {"config": providers_file, "binDir": bin},
        },
    });
    let config = write(dir.path(), "config.yaml", &format!("registry: {registry}\n"));
    Setup {
        dir,
        config,
        google,
        plugged,
    }
}

fn containers(s: &Setup) -> Vec<Value> {
    vec![
        shape_container(shape("bare"), &s.google.addr),
        shape_container(shape("one"), &s.plugged.addr),
    ]
}

/// The binary with a clean environment plus the metadata stand-in's address.
fn binary(home: &Path, metadata_host: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_entrypoint-guard"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("GCE_METADATA_HOST", metadata_host)
        .env("RUST_LOG", "warn");
    c
}

async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("run entrypoint-guard"))
        .await
        .unwrap()
}

fn plugin_runs(s: &Setup) -> usize {
    std::fs::read_to_string(s.dir.path().join("plugin-runs"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_and_audit_resolve_with_the_cloud_identity_and_the_kubelet_plugin() {
    let w = World::new();
    let s = setup(&w);
    let google = FakeGoogle::start("ya29.cli-identity", None, 3599).await;

    // review --resolve
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cloud", "namespace": "demo"},
        "spec": {"selector": {"matchLabels": {"app": "cloud"}},
            "template": {"metadata": {"labels": {"app": "cloud"}}, "spec": {"containers": containers(&s)}}}});
    let manifest = write(s.dir.path(), "cloud.yaml", &deployment.to_string());
    let mut review = binary(s.dir.path(), &google.host);
    review
        .arg("--config")
        .arg(&s.config)
        .args(["review", "--resolve", "-o", "yaml", "-f"])
        .arg(&manifest);
    let out = output(review).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings exit 1; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = yaml_documents(&String::from_utf8_lossy(&out.stdout));
    assert_fixed(
        container(&docs[0], "bare"),
        shape("bare"),
        &s.google.addr,
        w.images.digest("chalk/bare:1.0"),
    );
    assert_fixed(
        container(&docs[0], "one"),
        shape("one"),
        &s.plugged.addr,
        w.images.digest("chalk/one:1.0"),
    );
    assert_eq!((google.counts.get("metadata"), plugin_runs(&s)), (1, 1));

    // audit --resolve, against a stand-in API server listing the same Deployment.
    let item = {
        let mut d = deployment.clone();
        d.as_object_mut().unwrap().remove("apiVersion");
        d.as_object_mut().unwrap().remove("kind");
        d["metadata"]["uid"] = json!("uid-cloud");
        d
    };
    let fixtures: HashMap<String, String> = [
        "registry.example/app:1.0",
        "registry.example/init:1.0",
        "registry.example/sidecar:1.0",
        "registry.example/tool:2.3",
    ]
    .into_iter()
    .map(|i| (i.to_string(), format!("{}/plain/app:1.0", s.plugged.addr)))
    .collect();
    let server = ApiServer::start(Behaviour {
        images: fixtures,
        extra: HashMap::from([("/apis/apps/v1/deployments".to_string(), vec![item])]),
        ..Behaviour::default()
    });
    let kubeconfig = server.kubeconfig(s.dir.path());
    let mut audit = binary(s.dir.path(), &google.host);
    audit
        .env("KUBECONFIG", &kubeconfig)
        .arg("audit")
        .arg("--config")
        .arg(&s.config)
        .args(["--resolve", "-o", "json", "-n", "demo"]);
    let out = output(audit).await;
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let report = json_report(&out);
    let object = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["name"] == "cloud")
        .unwrap_or_else(|| panic!("no Deployment/cloud in {report:#}"));
    let pins: Vec<String> = object["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "image-pinned")
        .map(|f| f["change"]["after"].as_str().unwrap().to_string())
        .collect();
    for (reg, repo_tag) in [(&s.google.addr, "chalk/bare:1.0"), (&s.plugged.addr, "chalk/one:1.0")] {
        let expected = format!("{reg}/{repo_tag}@{}", w.images.digest(repo_tag));
        assert!(pins.contains(&expected), "{expected} not in {pins:?}");
    }
    assert_eq!(
        google.counts.get("metadata"),
        2,
        "the audit process asked the metadata server once"
    );
    assert_eq!(plugin_runs(&s), 2, "and ran the plugin once for the registry");
}
