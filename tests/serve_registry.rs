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
use support::{TestServer, admit, decode_like_api_server, fixture, patched, with_object};

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
    let resolver = entrypoint_guard::server::resolver(&config, &[])
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

/// `skopeo copy` of `from` to `to` in `registry`: pushes a tag, or moves it.
fn copy_tag(registry: &str, from: &str, to: &str) {
    let out = std::process::Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("docker://{registry}/{from}"))
        .arg(format!("docker://{registry}/{to}"))
        .output()
        .expect("skopeo runs");
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A captured review with its `registry.example/` images served from `registry`/`repo`/.
fn on_registry(stem: &str, registry: &str, repo: &str) -> Value {
    let text = fixture(stem)
        .to_string()
        .replace("registry.example/", &format!("{registry}/{repo}/"));
    serde_json::from_str(&text).unwrap()
}

/// An UPDATE review replacing `old` with `object`.
fn update(review: &Value, uid: &str, old: &Value, object: Value) -> Value {
    let mut review = with_object(review, uid, object);
    review["request"]["operation"] = json!("UPDATE");
    review["request"]["oldObject"] = old.clone();
    review
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_keep_what_the_user_did_not_change_when_tags_move_upstream() {
    let w = world();
    let reg = w.plain.addr.as_str();
    let repo = "moving";
    copy_tag(reg, "chalk/flags:1.0", &format!("{repo}/init:1.0"));
    copy_tag(reg, "chalk/bare:1.0", &format!("{repo}/app:1.0"));
    copy_tag(reg, "plain/app:1.0", &format!("{repo}/sidecar:1.0"));
    let image = |name: &str| format!("{reg}/{repo}/{name}:1.0");

    // Admitted while the tags named the first images: fixed and pinned.
    let create = on_registry("deployment-create", reg, repo);
    let first = start(reg).await;
    let (_, fixed) = admit(&first, &create).await;
    let app = container(&fixed, "app");
    assert_eq!(
        app["image"],
        format!("{}@{}", image("app"), w.images.digest("chalk/bare:1.0"))
    );
    let init = container(&fixed, "init-setup");
    assert_eq!(init["command"][2], "--heartbeat", "chalk/flags' wrapper flags");
    drop(first);

    // Upstream, every tag moves to another image; a new server (empty cache) sees it.
    copy_tag(reg, "chalk/bare-v2s2:1.0", &format!("{repo}/app:1.0"));
    copy_tag(reg, "chalk/one:1.0", &format!("{repo}/init:1.0"));
    copy_tag(reg, "plain/none:1.0", &format!("{repo}/sidecar:1.0"));
    let server = start(reg).await;
    let (_, fresh) = admit(
        &server,
        &with_object(&create, "fresh", create["request"]["object"].clone()),
    )
    .await;
    let moved_app = w.images.digest("chalk/bare-v2s2:1.0");
    assert_eq!(
        container(&fresh, "app")["image"],
        format!("{}@{moved_app}", image("app"))
    );
    assert!(
        container(&fresh, "init-setup")["command"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a != "--heartbeat"),
        "a new object gets the moved tag's wrapper"
    );

    // A scale (or a controller's own update) of the fixed Deployment: no patch at all.
    let mut scaled = fixed.clone();
    scaled["spec"]["replicas"] = json!(7);
    let (decoded, _) = admit(&server, &update(&create, "scale", &fixed, scaled)).await;
    assert!(decoded.patch.is_none(), "{:?}", decoded.patch);
    assert!(decoded.warnings.is_empty(), "{:?}", decoded.warnings);

    // A GitOps tool re-applies the manifest from git (unpinned tags, the
    // command as written) over the fixed object: the earlier pins are kept,
    // so the pod template comes out exactly as it was: no rollout.
    let git = create["request"]["object"].clone();
    let (decoded, reapplied) = admit(&server, &update(&create, "reapply", &fixed, git)).await;
    assert!(decoded.patch.is_some());
    assert_eq!(
        reapplied["spec"]["template"], fixed["spec"]["template"],
        "the template is unchanged"
    );
    let resolved = "entrypoint-guard.io/resolved-images";
    assert_eq!(
        reapplied["metadata"]["annotations"][resolved], fixed["metadata"]["annotations"][resolved],
        "the record of the pins is kept"
    );

    // The captured UPDATE (app's args changed, on a Deployment admitted before
    // the webhook was installed): only app is fixed, with the tag's new digest;
    // init-setup and sidecar are not even pinned.
    let review = on_registry("deployment-update", reg, repo);
    let old = &review["request"]["oldObject"];
    let (decoded, updated) = admit(&server, &review).await;
    assert_eq!(container(&updated, "init-setup"), container(old, "init-setup"));
    assert_eq!(container(&updated, "sidecar"), container(old, "sidecar"));
    let app = container(&updated, "app");
    assert_eq!(app["image"], format!("{}@{moved_app}", image("app")));
    assert_eq!(app["args"], json!(["sh", "-c", "echo updated"]));
    assert!(app.get("command").is_none());
    assert!(
        decoded.warnings[0].ends_with("command bypasses chalk: prepend the wrapper (unchanged by this update)"),
        "{:?}",
        decoded.warnings
    );
}
