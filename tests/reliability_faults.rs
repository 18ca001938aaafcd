//! Registry faults, one of each kind, against the webhook with the resolver
//! `serve` builds: a stand-in in front of a real `docker-registry` stalls,
//! answers 500, answers garbage, answers 401 or drops the connection. Each
//! admission answers inside the API server's timeout, allowed, unpatched,
//! with a warning; once the registry recovers, pinning resumes (a tag never
//! asked for, and the failed tag after the negative TTL).
//! The same faults under load: `scripts/reliability/faults.sh`.

#[path = "support/faults.rs"]
mod faults;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/resolve.rs"]
mod resolve;
#[path = "support/serve.rs"]
mod support;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use entrypoint_guard::config::{Config, Span};
use faults::{Fault, FaultRegistry};
use registry::World;
use resolve::{SHAPES, Shape, assert_fixed, container, shape_container};
use serde_json::{Value, json};
use support::{TestServer, decode_like_api_server, fixture, patched, post, with_object};

/// The timeout the API server states in these tests (`?timeout=4s`).
const API_TIMEOUT: Duration = Duration::from_secs(4);

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::new)
}

fn shape(repo_tag: &str) -> &'static Shape {
    SHAPES.iter().find(|s| s.repo_tag == repo_tag).unwrap()
}

fn use_registry(config: &mut Config, registry: &str) {
    config.registry.enabled = true;
    config.registry.pull_secrets = false;
    config.registry.insecure = vec![registry.to_string()];
    config.registry.allow_private = vec![registry.to_string()];
    config.registry.budget = Span(Duration::from_secs(1));
    config.registry.lookup_timeout = Span(Duration::from_secs(2));
    config.registry.negative_ttl = Span(Duration::from_millis(200));
    config.image_facts.clear();
}

async fn start(registry: &str) -> TestServer {
    let registry = registry.to_string();
    let mut config = Config::default();
    use_registry(&mut config, &registry);
    let resolver = entrypoint_guard::server::resolver(&config, &[])
        .await
        .expect("resolver builds");
    TestServer::start_with(move |c| use_registry(c, &registry), move |_| resolver).await
}

fn review(registry: &str, shape: &Shape, uid: &str) -> Value {
    let review = fixture("pod-create");
    let mut pod = review["request"]["object"].clone();
    pod["spec"]["containers"] = json!([shape_container(shape, registry)]);
    pod["spec"]["initContainers"] = json!([]);
    with_object(&review, uid, pod)
}

/// Posts as the API server does with `?timeout=4s`; returns the answer and how long it took.
async fn admit(server: &TestServer, review: &Value) -> (support::Answer, Duration) {
    let url = server.url(&format!("/mutate?timeout={}s", API_TIMEOUT.as_secs()));
    let started = Instant::now();
    let answer = post(&server.client, &url, review).await;
    (answer, started.elapsed())
}

async fn fault_then_recovery(fault: Fault) {
    let w = world();
    let upstream = w.plain.addr.parse().unwrap();
    let stand_in = FaultRegistry::start("127.0.0.1:0".parse().unwrap(), upstream)
        .await
        .unwrap();
    let reg = stand_in.addr.to_string();
    let server = start(&reg).await;
    let bare = shape("chalk/bare:1.0");

    stand_in.set(fault);
    let during = review(&reg, bare, "7e1f0000-0000-4000-8000-000000000001");
    let (answer, took) = admit(&server, &during).await;
    let decoded = decode_like_api_server(&during, &answer);
    assert!(took < API_TIMEOUT, "{}: answered after {took:?}", fault.name());
    assert!(decoded.allowed, "{}: must allow", fault.name());
    assert!(decoded.patch.is_none(), "{}: patched {:?}", fault.name(), decoded.patch);
    assert!(
        decoded
            .warnings
            .iter()
            .any(|w| w.contains("image config is unknown") && w.contains("\"bare\"")),
        "{}: {:?}",
        fault.name(),
        decoded.warnings
    );
    assert!(stand_in.seen(fault) >= 1, "{}: the fault was never hit", fault.name());

    // Recovery: a tag never asked for is pinned at once...
    stand_in.set(Fault::Pass);
    let one = shape("chalk/one:1.0");
    let fresh = review(&reg, one, "7e1f0000-0000-4000-8000-000000000002");
    let (answer, _) = admit(&server, &fresh).await;
    let decoded = decode_like_api_server(&fresh, &answer);
    let fixed = patched(&fresh, decoded.patch.as_deref().expect("pinned after recovery"));
    assert_fixed(container(&fixed, one.name), one, &reg, w.images.digest(one.repo_tag));

    // ...and the failed tag once its negative TTL (200 ms) has run out:
    // asked again until it is pinned (a poll with a generous deadline).
    let again = review(&reg, bare, "7e1f0000-0000-4000-8000-000000000003");
    let started = Instant::now();
    loop {
        let (answer, _) = admit(&server, &again).await;
        let decoded = decode_like_api_server(&again, &answer);
        if let Some(patch) = decoded.patch {
            let fixed = patched(&again, &patch);
            assert_fixed(container(&fixed, bare.name), bare, &reg, w.images.digest(bare.repo_tag));
            break;
        }
        // A stalled lookup may still hold the key until registry.lookupTimeout (2 s).
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}: pinning never resumed: {:?}",
            fault.name(),
            decoded.warnings
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(stand_in.seen(Fault::Pass) >= 2, "recovery went to the registry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_registry_is_answered_in_time_and_pinning_resumes() {
    fault_then_recovery(Fault::Stall).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_answering_500_is_answered_in_time_and_pinning_resumes() {
    fault_then_recovery(Fault::ServerError).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_answering_garbage_is_answered_in_time_and_pinning_resumes() {
    fault_then_recovery(Fault::Garbage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_answering_401_is_answered_in_time_and_pinning_resumes() {
    fault_then_recovery(Fault::Unauthorized).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_dropping_connections_is_answered_in_time_and_pinning_resumes() {
    fault_then_recovery(Fault::Drop).await;
}

/// Many distinct images (each a failed lookup, cached for the negative TTL)
/// leave at most `registry.cacheCapacity` outcomes in the cache.
/// The 100,000-lookup run with RSS figures: `scripts/reliability/memory.sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_stays_within_its_capacity() {
    use entrypoint_guard::config::RegistryConfig;
    use entrypoint_guard::image::{LookupContext, Resolver};
    use entrypoint_guard::registry::{NoCredentials, RegistryResolver};

    let stand_in = FaultRegistry::start("127.0.0.1:0".parse().unwrap(), "127.0.0.1:9".parse().unwrap())
        .await
        .unwrap();
    stand_in.set(Fault::ServerError);
    let reg = stand_in.addr.to_string();
    let config = RegistryConfig {
        pull_secrets: false,
        insecure: vec![reg.clone()],
        allow_private: vec![reg.clone()],
        cache_capacity: 50,
        negative_ttl: Span(Duration::from_secs(3600)),
        ..Default::default()
    };
    let resolver = RegistryResolver::new(&config, std::sync::Arc::new(NoCredentials)).unwrap();
    let ctx = LookupContext {
        namespace: Some("default".into()),
        ..LookupContext::default()
    };
    for batch in 0..6 {
        let images: Vec<String> = (0..50).map(|i| format!("{reg}/fill/app:b{batch}-{i}")).collect();
        let facts = resolver
            .resolve(&images, &ctx, Instant::now() + Duration::from_secs(20))
            .await;
        assert_eq!(facts.len(), images.len());
    }
    assert!(
        stand_in.seen(Fault::ServerError) >= 300,
        "every image went to the registry"
    );
    // Evictions are applied lazily; cached_entries runs them first.
    let cached = resolver.cached_entries().await;
    assert!(cached <= 50, "{cached} entries cached with cacheCapacity 50");
    assert!(cached > 0, "nothing cached at all");
}
