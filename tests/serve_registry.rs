//! The webhook end to end with a real registry: every chalk wrap shape,
//! pushed to a loopback `docker-registry` with umoci and skopeo, is resolved
//! by the resolver `serve` builds and fixed in the admission answer.

#[path = "support/registry.rs"]
mod registry;
#[path = "support/resolve.rs"]
mod resolve;
#[path = "support/serve.rs"]
mod support;

use std::sync::OnceLock;

use entrypoint_guard::config::Config;
use registry::World;
use resolve::{SHAPES, assert_fixed, container, shape_container};
use serde_json::{Value, json};
use support::{TestServer, decode_like_api_server, fixture, patched, with_object};

/// One registry with the standard images per test binary.
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::new)
}

/// The registry settings a cluster would have for a private loopback registry.
fn use_registry(config: &mut Config, registry: &str) {
    config.registry.enabled = true;
    config.registry.pull_secrets = false;
    config.registry.insecure = vec![registry.to_string()];
    config.registry.allow_private = vec![registry.to_string()];
    config.image_facts.clear();
}

async fn start(registry: &str) -> TestServer {
    let registry = registry.to_string();
    let config = {
        let mut c = Config::default();
        use_registry(&mut c, &registry);
        c
    };
    // The resolver the binary builds, from the same configuration.
    let resolver = entrypoint_guard::server::resolver::build(&config)
        .await
        .expect("resolver builds");
    TestServer::start_with(move |c| use_registry(c, &registry), move |_| resolver).await
}

/// A Pod CREATE review (the captured one) whose object runs every shape.
fn shapes_review(registry: &str) -> Value {
    let review = fixture("pod-create");
    let mut pod = review["request"]["object"].clone();
    pod["spec"]["containers"] = json!(SHAPES.iter().map(|s| shape_container(s, registry)).collect::<Vec<_>>());
    pod["spec"]["initContainers"] = json!([]);
    with_object(&review, "3f1c0b8e-0000-4000-8000-000000000001", pod)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wrap_shape_is_fixed_from_the_registry_config() {
    let w = world();
    let reg = w.plain.addr.as_str();
    let server = start(reg).await;
    let review = shapes_review(reg);
    let answer = server.post("/mutate", &review).await;
    let decoded = decode_like_api_server(&review, &answer);
    assert!(decoded.allowed);
    let fixed = patched(&review, decoded.patch.as_deref().expect("a patch"));
    for shape in SHAPES {
        assert_fixed(
            container(&fixed, shape.name),
            shape,
            reg,
            w.images.digest(shape.repo_tag),
        );
    }
    // Reinvoked on its own output (reinvocationPolicy: IfNeeded), nothing more changes.
    let again = with_object(&review, "3f1c0b8e-0000-4000-8000-000000000002", fixed);
    let decoded = decode_like_api_server(&again, &server.post("/mutate", &again).await);
    assert!(decoded.patch.is_none(), "second pass patched: {:?}", decoded.patch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_allows_unchanged_with_a_warning() {
    let down = format!("127.0.0.1:{}", registry::free_port());
    let server = start(&down).await;
    let review = shapes_review(&down);
    let started = std::time::Instant::now();
    let decoded = decode_like_api_server(&review, &server.post("/mutate", &review).await);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(9),
        "answered inside the API server's timeout"
    );
    assert!(decoded.allowed);
    assert!(decoded.patch.is_none(), "unknown images are reported, not changed");
    assert!(
        decoded.warnings.iter().any(|w| w.contains("image config is unknown")),
        "{:?}",
        decoded.warnings
    );
}
