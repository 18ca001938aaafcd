//! Registry authentication against real registries on loopback: TLS with a
//! custom CA and htpasswd (bcrypt) basic auth, distribution's token auth with
//! a token server, credentials from dockerconfigjson, and isolation of
//! credentials sharing one registry.

#[path = "support/registry.rs"]
mod registry;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use entrypoint_guard::config::RegistryConfig;
use entrypoint_guard::image::{Entrypoint, ImageFacts, LookupContext, Resolver};
use entrypoint_guard::registry::{
    CredentialSource, DockerConfigCredentials, NoCredentials, RegistryCredential, RegistryResolver,
};
use futures::future::BoxFuture;
use registry::{Auth, Registry, TokenServer, World};

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::new)
}

/// Credentials per namespace, as pull secrets give them in a cluster.
struct ByNamespace(HashMap<String, Vec<RegistryCredential>>);

impl CredentialSource for ByNamespace {
    fn credentials<'a>(&'a self, ctx: &'a LookupContext) -> BoxFuture<'a, Vec<RegistryCredential>> {
        let creds = ctx
            .namespace
            .as_ref()
            .and_then(|ns| self.0.get(ns))
            .cloned()
            .unwrap_or_default();
        Box::pin(std::future::ready(creds))
    }
}

/// Reads each namespace's credentials from its own dockerconfigjson file.
fn by_namespace(dir: &std::path::Path, server: &str, users: &[(&str, &str, &str)]) -> ByNamespace {
    ByNamespace(
        users
            .iter()
            .map(|(ns, user, password)| {
                let path = registry::docker_config(dir, &format!("{ns}.json"), &[(server, user, password)]);
                let creds = DockerConfigCredentials::from_path(&path).unwrap();
                (ns.to_string(), creds.credentials().to_vec())
            })
            .collect(),
    )
}

fn ctx(namespace: &str) -> LookupContext {
    LookupContext {
        namespace: Some(namespace.to_string()),
        ..Default::default()
    }
}

async fn resolve_in(resolver: &RegistryResolver, namespace: &str, image: &str) -> ImageFacts {
    let images = vec![image.to_string()];
    let facts = resolver
        .resolve(&images, &ctx(namespace), Instant::now() + Duration::from_secs(10))
        .await;
    facts.get(image).cloned().unwrap()
}

fn is_known(facts: &ImageFacts) -> bool {
    matches!(facts.entrypoint, Entrypoint::Known { .. })
}

fn reason(facts: &ImageFacts) -> String {
    match &facts.entrypoint {
        Entrypoint::Unknown { reason } => reason.clone(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn tls_registry(w: &World, name: &str) -> Registry {
    w.registry(
        name,
        Auth::TlsHtpasswd {
            users: vec![("user".into(), "pass".into()), ("other".into(), "other-pass".into())],
        },
    )
}

fn tls_config(reg: &Registry, with_ca: bool) -> RegistryConfig {
    let mut ca_files = BTreeMap::new();
    if with_ca {
        ca_files.insert(reg.addr.clone(), reg.ca_file.clone().unwrap());
    }
    RegistryConfig {
        allow_private: vec![reg.addr.clone()],
        ca_files,
        ..Default::default()
    }
}

#[tokio::test]
async fn tls_htpasswd_registry_with_docker_config_credentials() {
    let w = world();
    let reg = tls_registry(w, "tls-basic");
    let image = format!("{}/chalk/bare:1.0", reg.addr);
    let dir = tempfile::tempdir().unwrap();

    let config = registry::docker_config(dir.path(), "config.json", &[(&reg.addr, "user", "pass")]);
    let creds = Arc::new(DockerConfigCredentials::from_path(&config).unwrap());
    let r = RegistryResolver::new(&tls_config(&reg, true), creds).unwrap();
    let facts = resolve_in(&r, "any", &image).await;
    assert_eq!(facts.digest.as_deref(), Some(w.images.digest("chalk/bare:1.0")));
    assert!(is_known(&facts), "{facts:?}");

    // Anonymous: refused by the registry.
    let anon = RegistryResolver::new(&tls_config(&reg, true), Arc::new(NoCredentials)).unwrap();
    assert!(reason(&resolve_in(&anon, "any", &image).await).contains("unauthorized"));

    // Wrong password: refused.
    let config = registry::docker_config(dir.path(), "wrong.json", &[(&reg.addr, "user", "wrong")]);
    let wrong = RegistryResolver::new(
        &tls_config(&reg, true),
        Arc::new(DockerConfigCredentials::from_path(&config).unwrap()),
    )
    .unwrap();
    assert!(reason(&resolve_in(&wrong, "any", &image).await).contains("unauthorized"));

    // Without the CA in registry.caFiles the certificate is not trusted.
    let config = registry::docker_config(dir.path(), "noca.json", &[(&reg.addr, "user", "pass")]);
    let no_ca = RegistryResolver::new(
        &tls_config(&reg, false),
        Arc::new(DockerConfigCredentials::from_path(&config).unwrap()),
    )
    .unwrap();
    let why = reason(&resolve_in(&no_ca, "any", &image).await);
    assert!(why.to_lowercase().contains("certificate"), "{why}");
}

#[tokio::test]
async fn credentials_sharing_a_registry_are_never_confused() {
    let w = world();
    let reg = tls_registry(w, "tls-isolation");
    let image = format!("{}/chalk/one:1.0", reg.addr);
    let dir = tempfile::tempdir().unwrap();
    let source = by_namespace(
        dir.path(),
        &reg.addr,
        &[
            ("good", "user", "pass"),
            ("bad", "user", "wrong"),
            ("second", "other", "other-pass"),
        ],
    );
    let r = RegistryResolver::new(&tls_config(&reg, true), Arc::new(source)).unwrap();

    // good first: cached and its client authenticated; bad must still fail.
    assert!(is_known(&resolve_in(&r, "good", &image).await));
    assert!(reason(&resolve_in(&r, "bad", &image).await).contains("unauthorized"));
    // the second valid credential set works on its own.
    assert!(is_known(&resolve_in(&r, "second", &image).await));
    // bad first on a fresh tag: its failure must not be served to good.
    let fresh = format!("{}/chalk/two:1.0", reg.addr);
    assert!(reason(&resolve_in(&r, "bad", &fresh).await).contains("unauthorized"));
    assert!(is_known(&resolve_in(&r, "good", &fresh).await));
    // a namespace without credentials is anonymous, and refused.
    assert!(reason(&resolve_in(&r, "none", &image).await).contains("unauthorized"));
}

fn token_config(reg: &Registry, token: &TokenServer, realm_listed: bool) -> RegistryConfig {
    let mut allow_private = vec![reg.addr.clone()];
    if realm_listed {
        allow_private.push(format!("127.0.0.1:{}", token.addr.port()));
    }
    RegistryConfig {
        insecure: vec![reg.addr.clone()],
        allow_private,
        ..Default::default()
    }
}

#[tokio::test]
async fn token_auth_registry_grants_per_user_access() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let token = TokenServer::start(
        &dir.path().join("token"),
        &[("alice", "alice-pw", &["chalk/"]), ("bob", "bob-pw", &["plain/"])],
    )
    .await;
    let reg = w.registry(
        "token",
        Auth::Token {
            server: token.clone(),
            realm_host: "127.0.0.1".into(),
        },
    );
    let source = by_namespace(
        dir.path(),
        &reg.addr,
        &[
            ("alice", "alice", "alice-pw"),
            ("bob", "bob", "bob-pw"),
            ("mallory", "alice", "guess"),
        ],
    );
    let r = RegistryResolver::new(&token_config(&reg, &token, true), Arc::new(source)).unwrap();
    let chalk = format!("{}/chalk/flags:1.0", reg.addr);
    let plain = format!("{}/plain/app:1.0", reg.addr);

    let facts = resolve_in(&r, "alice", &chalk).await;
    assert_eq!(
        facts.digest.as_deref(),
        Some(w.images.digest("chalk/flags:1.0")),
        "{facts:?}"
    );
    assert!(
        token.requests.load(Ordering::SeqCst) > 0,
        "the token server issued the token"
    );
    // bob's token does not cover chalk/: alice's client or cache entry must not answer for him.
    assert!(reason(&resolve_in(&r, "bob", &chalk).await).contains("unauthorized"));
    assert!(is_known(&resolve_in(&r, "bob", &plain).await));
    assert!(reason(&resolve_in(&r, "alice", &plain).await).contains("unauthorized"));
    assert!(reason(&resolve_in(&r, "mallory", &chalk).await).contains("unauthorized"));
    assert!(reason(&resolve_in(&r, "nobody", &chalk).await).contains("unauthorized"));
}

#[tokio::test]
async fn token_realm_on_a_refused_address_is_not_contacted() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let token = TokenServer::start(&dir.path().join("token"), &[("alice", "alice-pw", &["chalk/"])]).await;
    // The registry names its realm as localhost:PORT, which is not listed.
    let reg = w.registry(
        "token-ssrf",
        Auth::Token {
            server: token.clone(),
            realm_host: "localhost".into(),
        },
    );
    let source = by_namespace(dir.path(), &reg.addr, &[("alice", "alice", "alice-pw")]);
    let r = RegistryResolver::new(&token_config(&reg, &token, false), Arc::new(source)).unwrap();
    let facts = resolve_in(&r, "alice", &format!("{}/chalk/bare:1.0", reg.addr)).await;
    assert!(!is_known(&facts), "{facts:?}");
    assert_eq!(
        token.requests.load(Ordering::SeqCst),
        0,
        "the guard kept the realm (a loopback address not in allowPrivate) from being contacted"
    );
}
