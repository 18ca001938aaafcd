//! The registry resolver against a real `docker-registry` on loopback:
//! manifest formats, indexes, the chalk wrap shapes through the engine,
//! failures, deadlines, the SSRF guard and request coalescing.

#[path = "support/registry.rs"]
mod registry;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use entrypoint_guard::config::{RegistryConfig, Span};
use entrypoint_guard::engine::{self, Mode, Policy};
use entrypoint_guard::image::{Entrypoint, Facts, ImageFacts, LookupContext, PlatformEntrypoint, Resolver};
use entrypoint_guard::registry::{NoCredentials, RegistryResolver};
use registry::World;
use serde_json::{Value, json};

const BARE: &[&str] = &["/chalk", "exec", "--"];

/// One world (plain registry + images) per test binary.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::new)
}

/// A configuration allowing the plain test registry (loopback, plain HTTP).
fn config(registries: &[&str]) -> RegistryConfig {
    RegistryConfig {
        insecure: registries.iter().map(|r| r.to_string()).collect(),
        allow_private: registries.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    }
}

fn resolver(config: &RegistryConfig) -> RegistryResolver {
    RegistryResolver::new(config, Arc::new(NoCredentials)).unwrap()
}

async fn resolve_one(resolver: &RegistryResolver, image: &str, budget: Duration) -> ImageFacts {
    let images = vec![image.to_string()];
    let facts = resolver
        .resolve(&images, &LookupContext::default(), Instant::now() + budget)
        .await;
    facts.get(image).cloned().expect("every image gets facts")
}

fn known(entrypoint: &[&str]) -> Entrypoint {
    Entrypoint::Known {
        entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
    }
}

fn unknown_reason(facts: &ImageFacts) -> &str {
    match &facts.entrypoint {
        Entrypoint::Unknown { reason } => reason,
        other => panic!("expected unknown facts, got {other:?}"),
    }
}

#[tokio::test]
async fn single_arch_oci_and_docker_v2s2_images() {
    let w = world();
    let r = resolver(&config(&[&w.plain.addr]));
    for repo_tag in ["chalk/bare:1.0", "chalk/bare-v2s2:1.0"] {
        let image = format!("{}/{repo_tag}", w.plain.addr);
        let facts = resolve_one(&r, &image, Duration::from_secs(10)).await;
        assert_eq!(facts.digest.as_deref(), Some(w.images.digest(repo_tag)), "{repo_tag}");
        assert_eq!(facts.entrypoint, known(BARE), "{repo_tag}");
    }
    // No Entrypoint at all, and Entrypoint [""], read as they are.
    let none = resolve_one(&r, &format!("{}/plain/none:1.0", w.plain.addr), Duration::from_secs(10)).await;
    assert_eq!(none.entrypoint, known(&[]));
    let empty = resolve_one(
        &r,
        &format!("{}/plain/empty:1.0", w.plain.addr),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(empty.entrypoint, known(&[""]));
}

#[tokio::test]
async fn multi_arch_index_digest_and_every_platform_read() {
    let w = world();
    let r = resolver(&config(&[&w.plain.addr]));
    for repo_tag in ["chalk/multi:1.0", "chalk/multi-v2s2:1.0", "chalk/multi-attest:1.0"] {
        let image = format!("{}/{repo_tag}", w.plain.addr);
        let facts = resolve_one(&r, &image, Duration::from_secs(10)).await;
        assert_eq!(
            facts.digest.as_deref(),
            Some(w.images.digest(repo_tag)),
            "{repo_tag}: index digest"
        );
        assert_eq!(facts.entrypoint, known(BARE), "{repo_tag}");
    }
    // Both platforms' manifests were fetched by digest; the attestation was not.
    let log = std::fs::read_to_string(&w.plain.access_log).unwrap();
    let by_digest = |repo: &str| {
        let needle = format!("\"GET /v2/{repo}/manifests/sha256:");
        let mut digests: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("entrypoint-guard/") && l.contains(&needle))
            .filter_map(|l| l.split(&needle).nth(1)?.split(' ').next())
            .collect();
        digests.sort();
        digests.dedup();
        digests.len()
    };
    assert_eq!(by_digest("chalk/multi"), 3, "index + amd64 + arm64");
    assert_eq!(
        by_digest("chalk/multi-attest"),
        3,
        "index + amd64 + arm64, not the attestation"
    );
}

#[tokio::test]
async fn disagreeing_index_is_reported_per_platform() {
    let w = world();
    let r = resolver(&config(&[&w.plain.addr]));
    let image = format!("{}/chalk/multi-disagree:1.0", w.plain.addr);
    let facts = resolve_one(&r, &image, Duration::from_secs(10)).await;
    assert_eq!(
        facts.digest.as_deref(),
        Some(w.images.digest("chalk/multi-disagree:1.0"))
    );
    let Entrypoint::PlatformsDisagree { mut platforms } = facts.entrypoint else {
        panic!("expected disagreeing platforms, got {:?}", facts.entrypoint);
    };
    platforms.sort_by(|a, b| a.platform.cmp(&b.platform));
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        platforms,
        vec![
            PlatformEntrypoint {
                platform: "linux/amd64".into(),
                entrypoint: strings(BARE)
            },
            PlatformEntrypoint {
                platform: "linux/arm64".into(),
                entrypoint: strings(&["/chalk", "exec", "--exec-command-name", "echo", "--"])
            },
        ]
    );
}

fn pod(containers: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "demo"},
        "spec": {"containers": containers}})
}

fn command_of(pod: &Value, i: usize) -> (Option<Value>, Option<Value>) {
    let c = &pod["spec"]["containers"][i];
    (c.get("command").cloned(), c.get("args").cloned())
}

#[tokio::test]
async fn wrap_shapes_resolved_and_fixed_through_the_engine() {
    let w = world();
    let r = resolver(&config(&[&w.plain.addr]));
    let reg = &w.plain.addr;
    let names = ["bare", "one", "two", "shell", "flags", "app"];
    let containers = names
        .iter()
        .map(|n| {
            let repo = if *n == "app" { "plain" } else { "chalk" };
            json!({"name": n, "image": format!("{reg}/{repo}/{n}:1.0"), "command": ["python", "main.py"], "args": ["-v"]})
        })
        .collect();
    let mut object = pod(containers);
    let policy = Policy::default();
    let needed = engine::lookups(&object, None, None, &policy);
    assert_eq!(needed.images.len(), names.len());
    let facts: Facts = r
        .resolve(
            &needed.images,
            &needed.context,
            Instant::now() + Duration::from_secs(10),
        )
        .await;
    let inspection = engine::inspect(&object, &facts, &policy, Mode::Fix);
    json_patch::patch(&mut object, &inspection.patch).unwrap();

    let s = |v: &[&str]| json!(v);
    // bare wrapper: the args fix (command moved into args).
    assert_eq!(command_of(&object, 0), (None, Some(s(&["python", "main.py", "-v"]))));
    // other wrappers: prepend, keeping chalk's flags, naming the command.
    let prepend = |flags: &[&str]| {
        let mut c = vec!["/chalk", "exec"];
        c.extend_from_slice(flags);
        c.extend_from_slice(&["--exec-command-name", "python", "--", "main.py"]);
        (Some(s(&c)), Some(s(&["-v"])))
    };
    assert_eq!(command_of(&object, 1), prepend(&[]), "one");
    assert_eq!(command_of(&object, 2), prepend(&[]), "two");
    assert_eq!(command_of(&object, 3), prepend(&[]), "shell");
    assert_eq!(command_of(&object, 4), prepend(&["--heartbeat"]), "flags");
    // not wrapped: command left alone.
    assert_eq!(
        command_of(&object, 5),
        (Some(s(&["python", "main.py"])), Some(s(&["-v"]))),
        "plain image"
    );
    // every image pinned to the digest the registry serves.
    for (i, n) in names.iter().enumerate() {
        let repo = if *n == "app" { "plain" } else { "chalk" };
        let image = object["spec"]["containers"][i]["image"].as_str().unwrap();
        let digest = w.images.digest(&format!("{repo}/{n}:1.0"));
        assert_eq!(image, format!("{reg}/{repo}/{n}:1.0@{digest}"));
    }
}

#[tokio::test]
async fn unknown_tag_and_registry_down_are_unresolved_with_reasons() {
    let w = world();
    let down = format!("127.0.0.1:{}", registry::free_port());
    let r = resolver(&config(&[&w.plain.addr, &down]));
    let missing = resolve_one(
        &r,
        &format!("{}/chalk/bare:nope", w.plain.addr),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(missing.digest, None);
    assert!(
        unknown_reason(&missing).contains("MANIFEST_UNKNOWN") || unknown_reason(&missing).contains("ManifestUnknown"),
        "{}",
        unknown_reason(&missing)
    );
    let started = Instant::now();
    let facts = resolve_one(&r, &format!("{down}/chalk/bare:1.0"), Duration::from_secs(10)).await;
    let reason = unknown_reason(&facts);
    assert!(reason.to_lowercase().contains("connect"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a refused connection fails at once"
    );
}

#[tokio::test]
async fn stalled_registry_is_cut_off_at_the_deadline() {
    let w = world();
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stalled = listener.local_addr().unwrap().to_string();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let r = resolver(&config(&[&w.plain.addr, &stalled]));
    let images = vec![
        format!("{stalled}/chalk/bare:1.0"),
        format!("{}/chalk/bare:1.0", w.plain.addr),
    ];
    let budget = Duration::from_millis(700);
    let started = Instant::now();
    let facts = r.resolve(&images, &LookupContext::default(), started + budget).await;
    let elapsed = started.elapsed();
    // Answer in time: the deadline plus scheduling slack, far below lookupTimeout (10 s).
    assert!(
        elapsed < budget + Duration::from_millis(500),
        "answered after {elapsed:?}"
    );
    let reason = unknown_reason(facts.get(&images[0]).unwrap());
    assert!(reason.contains("deadline"), "{reason}");
    // The healthy registry's image is still resolved within the same budget.
    assert_eq!(facts.get(&images[1]).unwrap().entrypoint, known(BARE));
    hold.abort();
}

#[tokio::test]
async fn ssrf_guard_refuses_loopback_not_listed() {
    let w = world();
    let port = w.plain.addr.rsplit_once(':').unwrap().1;
    // The registry is reachable as 127.0.0.1:PORT (listed) and localhost:PORT (not listed).
    let unlisted = format!("localhost:{port}");
    let mut cfg = config(&[&w.plain.addr]);
    cfg.insecure.push(unlisted.clone());
    let r = resolver(&cfg);
    let facts = resolve_one(&r, &format!("{unlisted}/chalk/bare:1.0"), Duration::from_secs(10)).await;
    let reason = unknown_reason(&facts);
    assert!(
        reason.contains("loopback") && reason.contains("registry.allowPrivate"),
        "{reason}"
    );
    // Cloud metadata address, literal.
    let facts = resolve_one(&r, "169.254.169.254/x/y:1", Duration::from_secs(10)).await;
    assert!(
        unknown_reason(&facts).contains("link-local"),
        "{}",
        unknown_reason(&facts)
    );
    // Default configuration: even the test registry is refused.
    let strict = resolver(&RegistryConfig::default());
    let facts = resolve_one(
        &strict,
        &format!("{}/chalk/bare:1.0", w.plain.addr),
        Duration::from_secs(10),
    )
    .await;
    assert!(
        unknown_reason(&facts).contains("loopback"),
        "{}",
        unknown_reason(&facts)
    );
    // Listed: resolved.
    let ok = resolve_one(&r, &format!("{}/chalk/bare:1.0", w.plain.addr), Duration::from_secs(10)).await;
    assert_eq!(ok.entrypoint, known(BARE));
}

#[tokio::test]
async fn deny_list_and_invalid_references() {
    let w = world();
    let mut cfg = config(&[&w.plain.addr]);
    cfg.deny = vec![entrypoint_guard::config::Pattern("127.0.0.*".into())];
    let r = resolver(&cfg);
    let facts = resolve_one(&r, &format!("{}/chalk/bare:1.0", w.plain.addr), Duration::from_secs(10)).await;
    assert!(
        unknown_reason(&facts).contains("registry.deny"),
        "{}",
        unknown_reason(&facts)
    );
    let facts = resolve_one(&r, "UPPER/case:1", Duration::from_secs(1)).await;
    assert!(
        unknown_reason(&facts).starts_with("invalid image reference"),
        "{}",
        unknown_reason(&facts)
    );
}

/// Copies `repo:1.0` to `repo:tag` in the plain registry and names it: a
/// tag no other test or earlier push has touched, so its request count is
/// the calling test's alone.
fn fresh_tag(w: &World, repo: &str, tag: &str) -> String {
    let out = std::process::Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("docker://{}/{repo}:1.0", w.plain.addr))
        .arg(format!("docker://{}/{repo}:{tag}", w.plain.addr))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{}/{repo}:{tag}", w.plain.addr)
}

#[tokio::test]
async fn fifty_concurrent_lookups_of_a_new_tag_make_one_manifest_request() {
    let w = world();
    let tag = "coalesce";
    let image = fresh_tag(w, "chalk/one", tag);
    let before = w.plain.manifest_requests("chalk/one", tag);

    let r = Arc::new(resolver(&config(&[&w.plain.addr])));
    let admissions = (0..50).map(|_| {
        let r = r.clone();
        let images = vec![image.clone()];
        tokio::spawn(async move {
            r.resolve(
                &images,
                &LookupContext::default(),
                Instant::now() + Duration::from_secs(10),
            )
            .await
        })
    });
    for facts in futures::future::join_all(admissions).await {
        let facts = facts.unwrap();
        assert_eq!(
            facts.get(&image).unwrap().digest.as_deref(),
            Some(w.images.digest("chalk/one:1.0"))
        );
    }
    let after = w.plain.manifest_requests("chalk/one", tag);
    assert_eq!(
        after - before,
        1,
        "50 concurrent lookups of one tag → one manifest request (the HEAD)"
    );
}

/// The TTLs without waiting for a clock: a cache whose TTLs outlast the
/// test answers repeats without a registry request, and one whose TTLs are
/// zero asks the registry every time. Request counts are exact.
#[tokio::test]
async fn cache_ttl_and_negative_ttl() {
    let w = world();
    let (repo, tag, missing) = ("chalk/two", "ttl", "never-pushed");
    let image = fresh_tag(w, repo, tag);
    let absent = format!("{}/{repo}:{missing}", w.plain.addr);
    let requests = |reference| w.plain.manifest_requests(repo, reference);
    assert_eq!((requests(tag), requests(missing)), (0, 0));

    let mut cfg = config(&[&w.plain.addr]);
    cfg.cache_ttl = Span(Duration::from_secs(3600));
    cfg.negative_ttl = Span(Duration::from_secs(3600));
    let kept = resolver(&cfg);
    let facts = resolve_one(&kept, &image, Duration::from_secs(10)).await;
    assert_eq!(facts.digest.as_deref(), Some(w.images.digest("chalk/two:1.0")));
    let one = requests(tag);
    assert!(one >= 1, "the first lookup asks the registry");
    resolve_one(&kept, &image, Duration::from_secs(10)).await;
    assert_eq!(requests(tag), one, "a tag is cached for its TTL");
    let failed = resolve_one(&kept, &absent, Duration::from_secs(10)).await;
    assert!(failed.digest.is_none());
    let first = requests(missing);
    assert!(first >= 1, "the failed lookup asked the registry");
    resolve_one(&kept, &absent, Duration::from_secs(10)).await;
    assert_eq!(requests(missing), first, "a failure is cached for the negative TTL");

    cfg.cache_ttl = Span(Duration::ZERO);
    cfg.negative_ttl = Span(Duration::ZERO);
    let expired = resolver(&cfg);
    resolve_one(&expired, &image, Duration::from_secs(10)).await;
    resolve_one(&expired, &image, Duration::from_secs(10)).await;
    assert_eq!(requests(tag), 3 * one, "past its TTL a tag is looked up again");
    resolve_one(&expired, &absent, Duration::from_secs(10)).await;
    resolve_one(&expired, &absent, Duration::from_secs(10)).await;
    assert_eq!(
        requests(missing),
        3 * first,
        "past the negative TTL a failure is retried"
    );
}
