//! The fan-out bounds end to end: a Pod listing 500 pull secrets and 200
//! distinct images, admitted by the webhook with a real loopback
//! `docker-registry` and the stand-in API server serving (and counting) the
//! Secret GETs. The answer comes within the deadline; the registry sees
//! lookups for no more than `registry.maxImagesPerAdmission` images, the API
//! server no more than `registry.maxPullSecretsPerAdmission` Secret GETs
//! (and as many ServiceAccount GETs, for an object naming hundreds), and
//! the answer and `/metrics` say what was left out.

#[path = "support/audit.rs"]
mod audit;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/resolve.rs"]
mod resolve;
#[path = "support/serve.rs"]
mod support;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use audit::{ApiServer, Behaviour};
use base64::Engine as _;
use entrypoint_guard::config::Config;
use entrypoint_guard::image::{LayeredResolver, OfflineResolver, Resolver};
use entrypoint_guard::registry::{KubeCredentials, RegistryResolver};
use registry::{Auth, World};
use resolve::{SHAPES, shape_container};
use serde_json::{Value, json};
use support::{TestServer, decode_like_api_server, fixture, with_object};

const SECRETS: usize = 500;
const IMAGES: usize = 200;

fn use_registry(config: &mut Config, registry: &str) {
    config.registry.enabled = true;
    config.registry.pull_secrets = true;
    config.registry.insecure = vec![registry.to_string()];
    config.registry.allow_private = vec![registry.to_string()];
    config.image_facts.clear();
}

/// The Pod: the shapes' real images first, then missing ones, and 500
/// pull-secret names of which only `regcred-0` exists. Every image is looked
/// up (to pin it), but only a container overriding `command` gets a finding
/// when its image is unknown: the first missing one within the image cap
/// and every one past it, so that the findings kept in the size-capped audit
/// annotation show both reasons.
fn pod_review(reg: &str, max_images: usize) -> Value {
    let review = fixture("pod-create");
    let mut pod = review["request"]["object"].clone();
    let mut containers: Vec<Value> = SHAPES.iter().map(|s| shape_container(s, reg)).collect();
    let first_missing = containers.len();
    for i in first_missing..IMAGES {
        let mut container = json!({"name": format!("missing-{i}"), "image": format!("{reg}/fanout/missing-{i}:1.0")});
        if i == first_missing || i >= max_images {
            container["command"] = json!(["run"]);
        }
        containers.push(container);
    }
    pod["spec"]["containers"] = json!(containers);
    pod["spec"]["initContainers"] = json!([]);
    pod["spec"]["imagePullSecrets"] = json!(
        (0..SECRETS)
            .map(|i| json!({"name": format!("regcred-{i}")}))
            .collect::<Vec<_>>()
    );
    pod["metadata"]["namespace"] = json!("demo");
    let mut review = with_object(&review, "3f1c0b8e-0000-4000-8000-00000000fa00", pod);
    review["request"]["namespace"] = json!("demo");
    review
}

/// `/v2/<repo>/...` repositories requested in `registry`'s access log, and
/// the number of requests.
fn registry_requests(registry: &registry::Registry) -> (BTreeSet<String>, usize) {
    let log = std::fs::read_to_string(&registry.access_log).unwrap_or_default();
    let mut repos = BTreeSet::new();
    let mut requests = 0;
    for line in log.lines().filter(|l| l.contains("\"GET ") || l.contains("\"HEAD ")) {
        requests += 1;
        if let Some(path) = line.split(' ').find(|w| w.starts_with("/v2/"))
            && let Some((repo, _)) = path["/v2/".len()..]
                .split_once("/manifests/")
                .or_else(|| path["/v2/".len()..].split_once("/blobs/"))
        {
            repos.insert(repo.to_string());
        }
    }
    (repos, requests)
}

/// The names the API server was asked for under `prefix`, in order.
fn gets_under(api: &ApiServer, prefix: &str) -> Vec<String> {
    api.seen()
        .into_iter()
        .filter_map(|s| s.path.strip_prefix(prefix).map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_with_500_pull_secrets_and_200_images_is_answered_with_bounded_calls() {
    let world = World::new();
    // A registry of its own over the standard images: its access log counts this test only.
    let reg_server = world.registry("fanout", Auth::None);
    let reg = reg_server.addr.clone();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let dockerconfig = json!({"auths": {&reg: {"auth": b64("puller:pw")}}}).to_string();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred-0", "namespace": "demo"}, "data": {".dockerconfigjson": b64(&dockerconfig)}});
    let api = ApiServer::start(Behaviour {
        objects: HashMap::from([
            ("/api/v1/namespaces/demo/secrets/regcred-0".to_string(), secret),
            (
                "/api/v1/namespaces/demo/serviceaccounts/default".to_string(),
                audit::fixture("api_v1_namespaces_demo_serviceaccounts_default.json"),
            ),
        ]),
        ..Behaviour::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(api.kubeconfig(dir.path())).unwrap();
    let kube_config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(kube_config).unwrap();

    let mut config = Config::default();
    use_registry(&mut config, &reg);
    let max_images = config.registry.max_images_per_admission;
    let max_secrets = config.registry.max_pull_secrets_per_admission;
    // What `serve` builds: pull secrets from the API server, then the registries.
    let credentials = Arc::new(KubeCredentials::new(client, max_secrets));
    let registry = RegistryResolver::new(&config.registry, credentials).expect("resolver builds");
    let resolver: Arc<dyn Resolver> = Arc::new(LayeredResolver::new(OfflineResolver::default(), Arc::new(registry)));
    let server = TestServer::start_with(|c| use_registry(c, &reg), move |_| resolver).await;

    let review = pod_review(&reg, max_images);
    let started = Instant::now();
    let answer = server.post("/mutate", &review).await;
    let took = started.elapsed();
    let decoded = decode_like_api_server(&review, &answer);
    assert!(decoded.allowed);
    // Answered by the engine, not by the deadline's error path.
    assert!(
        !decoded.warnings.iter().any(|w| w.contains("not checked")),
        "{:?}",
        decoded.warnings
    );
    assert!(decoded.patch.is_some(), "the real images are fixed");

    // The registry: lookups for the first maxImagesPerAdmission images only.
    let (repos, requests) = registry_requests(&reg_server);
    let looked_up: BTreeSet<String> = review["request"]["object"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .take(max_images)
        .map(|c| {
            let image = c["image"].as_str().unwrap();
            let path = &image[reg.len() + 1..];
            path.rsplit_once([':', '@']).map_or(path, |(repo, _)| repo).to_string()
        })
        .collect();
    assert!(
        repos.is_subset(&looked_up),
        "asked beyond the cap: {:?}",
        repos.difference(&looked_up)
    );
    assert!(repos.contains("chalk/bare"), "{repos:?}");
    assert!(!repos.iter().any(|r| r == "fanout/missing-64"), "{repos:?}");
    // Each lookup is a handful of requests (the /v2/ ping, HEAD, the manifest
    // or index, per-platform manifests and configs of the multi-arch shapes).
    assert!(requests <= max_images * 8, "{requests} registry requests");

    // The API server: at most maxPullSecretsPerAdmission Secret GETs, the Pod's first names.
    let secret_gets = gets_under(&api, "/api/v1/namespaces/demo/secrets/");
    let expected: BTreeSet<String> = (0..max_secrets).map(|i| format!("regcred-{i}")).collect();
    assert_eq!(secret_gets.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(secret_gets.len(), max_secrets);

    // Warnings and audit annotations within the API server's limits.
    let runes: Vec<usize> = decoded.warnings.iter().map(|w| w.chars().count()).collect();
    assert!(
        runes.iter().sum::<usize>() <= 4096 && runes.iter().all(|&n| n <= 256),
        "{runes:?}"
    );
    let annotations = &answer.body["response"]["auditAnnotations"];
    let sizes: Vec<usize> = annotations
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| k.len() + v.as_str().unwrap().len())
        .collect();
    assert!(
        sizes.iter().sum::<usize>() <= 64 * 1024 && sizes.iter().all(|&n| n <= 10 * 1024 + 64),
        "{sizes:?}"
    );
    assert!(annotations["findings-omitted"].is_string(), "{annotations:#}");

    // The answer says why the others are unknown, through the engine's finding.
    let unknown: Vec<Value> = serde_json::from_str(annotations["image-config-unknown"].as_str().unwrap()).unwrap();
    let message = |name: &str| {
        unknown
            .iter()
            .find(|f| f["container"]["name"] == name)
            .map(|f| f["message"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no image-config-unknown finding for {name}"))
    };
    let over = message(&format!("missing-{max_images}"));
    assert!(
        over.contains("the object names 200 distinct images, more than registry.maxImagesPerAdmission (64)"),
        "{over}"
    );
    let missing = message(&format!("missing-{}", SHAPES.len()));
    assert!(
        missing.contains("only 32 of the 500 pull secrets were read: registry.maxPullSecretsPerAdmission"),
        "{missing}"
    );

    // And /metrics counts both bounds biting.
    let metrics = server.metrics().await;
    for line in [
        "entrypoint_guard_registry_limited_total{limit=\"images\"} 1\n",
        "entrypoint_guard_registry_limited_total{limit=\"pull-secrets\"} 1\n",
        "entrypoint_guard_answers_clipped_total{part=\"warnings\"} 1\n",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(
        metrics.contains("entrypoint_guard_log_lines_dropped_total "),
        "{metrics}"
    );
    eprintln!(
        "500 pull secrets, {IMAGES} images: answered in {} ms; registry: {requests} requests for {} repositories; \
         API server: {} Secret GETs",
        took.as_millis(),
        repos.len(),
        secret_gets.len()
    );
}

/// A custom kind may hold any number of pod specs, each naming its own
/// ServiceAccount: at most `registry.maxPullSecretsPerAdmission` of them are
/// read (the first ones, together), and `/metrics` says the bound bit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_pull_secrets_service_accounts_are_read_for_one_admission() {
    use entrypoint_guard::image::LookupContext;
    use entrypoint_guard::registry::CredentialSource;

    let api = ApiServer::start(Behaviour::default());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(api.kubeconfig(dir.path())).unwrap();
    let kube_config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let max = Config::default().registry.max_pull_secrets_per_admission;
    let credentials = KubeCredentials::new(kube::Client::try_from(kube_config).unwrap(), max);
    // 300 pod specs, 200 distinct accounts (the first 100 named twice).
    let ctx = LookupContext {
        namespace: Some("demo".into()),
        pull_secrets: Vec::new(),
        service_accounts: (0..300).map(|i| format!("account-{}", i % 200)).collect(),
    };
    // None exists: the kubelet would find no pull secrets through them either.
    assert!(credentials.credentials(&ctx).await.is_empty());
    let read: BTreeSet<String> = gets_under(&api, "/api/v1/namespaces/demo/serviceaccounts/")
        .into_iter()
        .collect();
    let expected: BTreeSet<String> = (0..max).map(|i| format!("account-{i}")).collect();
    assert_eq!(read, expected);
    let limited = entrypoint_guard::registry::limit_metric()
        .get_or_create(&entrypoint_guard::registry::LimitLabel {
            limit: "service-accounts",
        })
        .get();
    assert_eq!(limited, 1);
}
