//! Mirrors (`registry.mirrors`) against real registries on loopback: an
//! image whose registry is down resolves through its mirror and is pinned as
//! written, with the mirror recorded in the trace annotation; a mirror that
//! is down falls back to the registry (unless `mirrorFallback` is off); a
//! mirror uses its own path prefix, TLS and credentials.

#[path = "support/registry.rs"]
mod registry;

use std::sync::{Arc, OnceLock};

use entrypoint_guard::config::{Mirror, RegistryConfig, RegistryHost};
use entrypoint_guard::engine::{Mode, Policy, inspect};
use entrypoint_guard::image::{Entrypoint, ImageFacts};
use entrypoint_guard::registry::{CredentialSource, DockerConfigCredentials, NoCredentials, RegistryResolver};
use registry::{Auth, World};
use serde_json::json;

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::new)
}

/// A loopback address nothing listens on: a registry that is down.
fn down() -> String {
    format!("127.0.0.1:{}", registry::free_port())
}

fn config(hosts: &[&str], mirrors: &[(&str, &[&str])]) -> RegistryConfig {
    RegistryConfig {
        allow_private: hosts.iter().map(|h| h.to_string()).collect(),
        insecure: hosts.iter().map(|h| h.to_string()).collect(),
        mirrors: mirrors
            .iter()
            .map(|(upstream, list)| {
                (
                    RegistryHost(upstream.to_string()),
                    list.iter().map(|m| Mirror::parse(m).unwrap()).collect(),
                )
            })
            .collect(),
        ..Default::default()
    }
}

async fn resolve_with(config: &RegistryConfig, credentials: Arc<dyn CredentialSource>, image: &str) -> ImageFacts {
    registry::resolve_image(&RegistryResolver::new(config, credentials).unwrap(), image).await
}

async fn resolve(config: &RegistryConfig, image: &str) -> ImageFacts {
    resolve_with(config, Arc::new(NoCredentials), image).await
}

fn known(facts: &ImageFacts) -> bool {
    matches!(facts.entrypoint, Entrypoint::Known { .. })
}

#[tokio::test]
async fn registry_down_resolves_through_the_mirror_and_pins_the_image_as_written() {
    let w = world();
    let upstream = down();
    let plain = w.plain.addr.as_str();
    let config = config(&[&upstream, plain], &[(&upstream, &[plain])]);
    let image = format!("{upstream}/chalk/bare:1.0");
    let facts = resolve(&config, &image).await;
    let digest = w.images.digest("chalk/bare:1.0");
    assert!(known(&facts), "{facts:?}");
    assert_eq!(facts.digest.as_deref(), Some(digest));
    assert_eq!(
        facts.source.as_deref(),
        Some(plain),
        "the facts name the mirror that answered"
    );

    // The engine pins the image as written and records which host answered.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "demo"},
        "spec": {"containers": [{"name": "app", "image": image}]}});
    let facts_map = [(image.clone(), facts)].into_iter().collect();
    let out = inspect(&pod, &facts_map, &Policy::default(), Mode::Fix);
    let patch = serde_json::to_value(&out.patch).unwrap();
    let ops = patch.as_array().unwrap();
    assert!(
        ops.iter()
            .any(|op| op["path"] == "/spec/containers/0/image" && op["value"] == format!("{image}@{digest}")),
        "{patch:#}"
    );
    let trace = ops
        .iter()
        .find_map(|op| {
            let v = &op["value"];
            v.get("entrypoint-guard.io/resolved-images")
                .or(Some(v).filter(|_| op["path"].as_str().is_some_and(|p| p.ends_with("resolved-images"))))
                .and_then(|v| v.as_str())
        })
        .unwrap_or_else(|| panic!("no trace annotation in {patch:#}"));
    let trace: serde_json::Value = serde_json::from_str(trace).unwrap();
    assert_eq!(trace[&image], format!("{digest} from {plain}"));
    assert!(
        out.findings
            .iter()
            .any(|f| f.message.contains(&format!("by mirror {plain}")))
    );
}

#[tokio::test]
async fn mirror_down_falls_back_to_the_registry_unless_fallback_is_off() {
    let w = world();
    let mirror = down();
    let plain = w.plain.addr.as_str();
    let mut config = config(&[&mirror, plain], &[(plain, &[&mirror])]);
    let image = format!("{plain}/chalk/one:1.0");
    let facts = resolve(&config, &image).await;
    assert!(known(&facts), "{facts:?}");
    assert_eq!(facts.digest.as_deref(), Some(w.images.digest("chalk/one:1.0")));
    assert_eq!(facts.source, None, "the registry itself answered");

    config.mirror_fallback = false;
    let facts = resolve(&config, &image).await;
    let Entrypoint::Unknown { reason } = &facts.entrypoint else {
        panic!("mirrors only, and the mirror is down: {facts:?}");
    };
    assert!(reason.contains(&mirror), "{reason}");
}

#[tokio::test]
async fn a_mirror_has_its_own_path_prefix_tls_and_credentials() {
    let w = world();
    let upstream = down();
    // The mirror keeps the images under a project, as a Harbor proxy cache does.
    let plain = w.plain.addr.as_str();
    let config_prefix = config(&[&upstream, plain], &[(&upstream, &[&format!("{plain}/chalk")])]);
    let facts = resolve(&config_prefix, &format!("{upstream}/flags:1.0")).await;
    assert_eq!(
        facts.digest.as_deref(),
        Some(w.images.digest("chalk/flags:1.0")),
        "{facts:?}"
    );

    // A TLS mirror with basic auth: its CA file and its own credentials.
    let tls = w.registry(
        "mirror-tls",
        Auth::TlsHtpasswd {
            users: vec![("mirror-user".into(), "mirror-pass".into())],
        },
    );
    let mut config = config(&[&upstream], &[(&upstream, &[&tls.addr])]);
    config.allow_private.push(tls.addr.clone());
    config.ca_files.insert(tls.addr.clone(), tls.ca_file.clone().unwrap());
    let image = format!("{upstream}/chalk/bare:1.0");
    let facts = resolve(&config, &image).await;
    assert!(!known(&facts), "no credentials for the mirror: {facts:?}");
    let dir = tempfile::tempdir().unwrap();
    let docker = registry::docker_config(dir.path(), "config.json", &[(&tls.addr, "mirror-user", "mirror-pass")]);
    let creds = Arc::new(DockerConfigCredentials::from_path(&docker).unwrap());
    let facts = resolve_with(&config, creds, &image).await;
    assert_eq!(
        facts.digest.as_deref(),
        Some(w.images.digest("chalk/bare:1.0")),
        "{facts:?}"
    );
    assert_eq!(facts.source.as_deref(), Some(tls.addr.as_str()));
}
