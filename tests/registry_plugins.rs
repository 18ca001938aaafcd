//! Kubelet credential provider plugins, run as the kubelet runs them: test
//! plugin scripts (one per `cacheKeyType`, one that hangs, one that prints
//! garbage) give the credentials of a real htpasswd registry; exact run
//! counts show the caching, the timeout and the failure interval.

#[path = "support/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use entrypoint_guard::config::{RegistryConfig, Span, Toggle};
use entrypoint_guard::image::{Entrypoint, ImageFacts};
use entrypoint_guard::registry::keychain::{SourceLabel, failure_metric};
use entrypoint_guard::registry::{Environment, ManualClock, NoCredentials, RegistryResolver};
use registry::{Auth, Registry, World};

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::new)
}

fn protected(name: &str) -> &'static Registry {
    static REGS: OnceLock<std::sync::Mutex<std::collections::HashMap<String, &'static Registry>>> = OnceLock::new();
    let regs = REGS.get_or_init(Default::default);
    let mut regs = regs.lock().unwrap();
    regs.entry(name.to_string()).or_insert_with(|| {
        Box::leak(Box::new(world().registry(
            name,
            Auth::TlsHtpasswd {
                users: vec![("plugin-user".into(), "plugin-pass".into())],
            },
        )))
    })
}

/// The test plugin: checks its argument, counts its runs in `$COUNT`
/// (request lines), answers `$KEY_TYPE`/`$DURATION` with credentials for `$AUTH_KEY`.
const PLUGIN: &str = r#"#!/bin/sh
[ "$1" = "--from-args" ] || { echo "missing --from-args" >&2; exit 3; }
request=$(cat)
echo "$request" >> "$COUNT"
printf '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"%s","cacheDuration":"%s","auth":{"%s":{"username":"plugin-user","password":"plugin-pass"}}}' "$KEY_TYPE" "$DURATION" "$AUTH_KEY"
"#;

const HANGING: &str = "#!/bin/sh\ncat > /dev/null\necho run >> \"$COUNT\"\nexec sleep 60\n";
const GARBAGE: &str =
    "#!/bin/sh\ncat > /dev/null\necho run >> \"$COUNT\"\necho 'this is not a CredentialProviderResponse'\n";

struct Setup {
    dir: tempfile::TempDir,
    config: RegistryConfig,
}

impl Setup {
    fn count(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("count"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("count"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn write_plugin(bin: &Path, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = bin.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A plugin `name` matching `match_images`, answering for `auth_key`.
fn setup(
    name: &str,
    script: &str,
    match_images: &[&str],
    key_type: &str,
    duration: &str,
    auth_key: &str,
    regs: &[&Registry],
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    write_plugin(&bin, name, script);
    let count = dir.path().join("count");
    let config_file = dir.path().join("credential-providers.yaml");
    let yaml = format!(
        "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: {name}\n    matchImages: {}\n    defaultCacheDuration: 10m\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n    args: [--from-args]\n    env:\n      - {{name: COUNT, value: {}}}\n      - {{name: KEY_TYPE, value: {key_type}}}\n      - {{name: DURATION, value: '{duration}'}}\n      - {{name: AUTH_KEY, value: '{auth_key}'}}\n",
        serde_json::to_string(match_images).unwrap(),
        count.display()
    );
    std::fs::write(&config_file, yaml).unwrap();
    let mut config = RegistryConfig::default();
    for reg in regs {
        config.allow_private.push(reg.addr.clone());
        config.ca_files.insert(reg.addr.clone(), reg.ca_file.clone().unwrap());
    }
    config.credentials.ecr.enabled = Toggle::Off;
    config.credentials.google.enabled = Toggle::Off;
    config.credentials.azure.enabled = Toggle::Off;
    config.credentials.kubelet_plugins.config = Some(config_file);
    config.credentials.kubelet_plugins.bin_dir = bin;
    config.credentials.kubelet_plugins.timeout = Span(Duration::from_millis(500));
    Setup { dir, config }
}

fn resolver(s: &Setup, clock: &ManualClock) -> RegistryResolver {
    let env = Environment::from_vars([("PATH", std::env::var("PATH").unwrap_or_default())]);
    RegistryResolver::with_environment(&s.config, Arc::new(NoCredentials), &env, Arc::new(clock.clone())).unwrap()
}

fn resolved(facts: &ImageFacts, repo_tag: &str) {
    assert!(
        matches!(facts.entrypoint, Entrypoint::Known { .. }),
        "{repo_tag}: {facts:?}"
    );
    assert_eq!(facts.digest.as_deref(), Some(world().images.digest(repo_tag)));
}

fn unauthorized(facts: &ImageFacts) {
    match &facts.entrypoint {
        Entrypoint::Unknown { reason } => assert!(reason.contains("unauthorized"), "{reason}"),
        other => panic!("expected the registry to refuse, got {other:?}"),
    }
}

#[tokio::test]
async fn image_key_answers_are_cached_per_image_for_their_duration() {
    let reg = protected("plugins-image");
    let s = setup("image-plugin", PLUGIN, &[&reg.addr], "Image", "10m", &reg.addr, &[reg]);
    let clock = ManualClock::new();
    let r = resolver(&s, &clock);
    assert_eq!(r.credential_sources(), ["plugin/image-plugin"]);
    resolved(
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await,
        "chalk/bare:1.0",
    );
    resolved(
        &registry::resolve_image(&r, &format!("{}/chalk/one:1.0", reg.addr)).await,
        "chalk/one:1.0",
    );
    resolved(
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await,
        "chalk/bare:1.0",
    );
    assert_eq!(s.count(), 2, "one run per image name");
    let requests = s.requests();
    assert_eq!(
        requests[0],
        serde_json::json!({"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "kind": "CredentialProviderRequest",
            "image": format!("{}/chalk/bare", reg.addr)})
    );
    clock.advance(Duration::from_secs(601));
    resolved(
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await,
        "chalk/bare:1.0",
    );
    assert_eq!(s.count(), 3, "run again after cacheDuration");
}

#[tokio::test]
async fn registry_and_global_keys_serve_every_image_they_cover_and_zero_caches_nothing() {
    let reg = protected("plugins-registry");
    let s = setup(
        "registry-plugin",
        PLUGIN,
        &[&reg.addr],
        "Registry",
        "1h",
        &reg.addr,
        &[reg],
    );
    let r = resolver(&s, &ManualClock::new());
    resolved(
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await,
        "chalk/bare:1.0",
    );
    resolved(
        &registry::resolve_image(&r, &format!("{}/chalk/one:1.0", reg.addr)).await,
        "chalk/one:1.0",
    );
    assert_eq!(s.count(), 1, "one run for the registry");

    // Global: one run for every image the plugin matches; only the auth
    // entries matching an image give it credentials.
    let other = protected("plugins-other");
    let s = setup(
        "global-plugin",
        PLUGIN,
        &[&reg.addr, &other.addr],
        "Global",
        "1h",
        &reg.addr,
        &[reg, other],
    );
    let r = resolver(&s, &ManualClock::new());
    resolved(
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await,
        "chalk/bare:1.0",
    );
    resolved(
        &registry::resolve_image(&r, &format!("{}/chalk/flags:1.0", reg.addr)).await,
        "chalk/flags:1.0",
    );
    unauthorized(&registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", other.addr)).await);
    assert_eq!(s.count(), 1, "one run in all");

    let s = setup(
        "no-cache-plugin",
        PLUGIN,
        &[&reg.addr],
        "Image",
        "0s",
        &reg.addr,
        &[reg],
    );
    let r = resolver(&s, &ManualClock::new());
    resolved(
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await,
        "chalk/bare:1.0",
    );
    resolved(
        &registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await,
        "chalk/bare:1.0",
    );
    assert_eq!(s.count(), 2, "cacheDuration 0: asked every time");

    // An image the plugin does not match never runs it.
    let s = setup(
        "elsewhere-plugin",
        PLUGIN,
        &["*.azurecr.io"],
        "Global",
        "1h",
        &reg.addr,
        &[reg],
    );
    let r = resolver(&s, &ManualClock::new());
    unauthorized(&registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await);
    assert_eq!(s.count(), 0);
}

#[tokio::test]
async fn a_hanging_plugin_is_killed_at_its_timeout_and_garbage_is_refused() {
    let reg = protected("plugins-bad");
    let failures = |source: &str| {
        failure_metric()
            .get_or_create(&SourceLabel { source: source.into() })
            .get()
    };

    let s = setup("hanging", HANGING, &[&reg.addr], "Image", "1h", &reg.addr, &[reg]);
    let clock = ManualClock::new();
    let r = resolver(&s, &clock);
    let started = Instant::now();
    unauthorized(&registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the plugin's timeout stopped it"
    );
    unauthorized(&registry::resolve_image(&r, &format!("{}/chalk/one:1.0", reg.addr)).await);
    assert_eq!(s.count(), 2, "each image ran once");
    unauthorized(&registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await);
    assert_eq!(s.count(), 2, "a failure is kept for the retry interval");
    assert_eq!(failures("plugin/hanging"), 2);
    clock.advance(Duration::from_secs(61));
    unauthorized(&registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await);
    assert_eq!(s.count(), 3);

    let s = setup("garbage", GARBAGE, &[&reg.addr], "Image", "1h", &reg.addr, &[reg]);
    let r = resolver(&s, &ManualClock::new());
    unauthorized(&registry::resolve_image(&r, &format!("{}/chalk/bare:1.0", reg.addr)).await);
    assert_eq!((s.count(), failures("plugin/garbage")), (1, 1));
}

#[tokio::test]
async fn bad_plugin_configuration_names_the_file_line_and_field() {
    let reg = protected("plugins-config");
    let s = setup("ok-plugin", PLUGIN, &[&reg.addr], "Image", "1h", &reg.addr, &[reg]);
    let file: PathBuf = s.config.credentials.kubelet_plugins.config.clone().unwrap();
    let original = std::fs::read_to_string(&file).unwrap();
    let cases = [
        (
            original.replace("name: ok-plugin", "name: missing-plugin"),
            "providers[0].name",
            "missing-plugin",
        ),
        (
            original.replace(
                "credentialprovider.kubelet.k8s.io/v1",
                "credentialprovider.kubelet.k8s.io/v9",
            ),
            "providers[0].apiVersion",
            ":7:",
        ),
        (
            original.replace("defaultCacheDuration: 10m", "defaultCacheDuration: soon"),
            "defaultCacheDuration",
            ":6:",
        ),
        (
            original.replace("matchImages: [", "matchImages: [\"[bad\", "),
            "providers[0].matchImages",
            "[bad",
        ),
        (
            original.replace("    args:", "    bogus: 1\n    args:"),
            "bogus",
            "unknown field",
        ),
    ];
    for (text, field, detail) in cases {
        std::fs::write(&file, &text).unwrap();
        let e = RegistryResolver::with_environment(
            &s.config,
            Arc::new(NoCredentials),
            &Environment::default(),
            Arc::new(ManualClock::new()),
        )
        .err()
        .expect("a bad plugin configuration is refused")
        .to_string();
        assert!(
            e.contains(&file.display().to_string()) && e.contains(field) && e.contains(detail),
            "{e}"
        );
    }
}
