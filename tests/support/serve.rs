//! Shared helpers of the `serve_*` tests: the real server on an ephemeral
//! loopback port with a freshly generated CA, a verifying HTTPS client, the
//! captured fixtures, and decoding answers exactly as the API server does.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use entrypoint_guard::config::{Config, Span};
use entrypoint_guard::image::{OfflineResolver, Resolver};
use entrypoint_guard::server::{Running, Server, selfsigned};
use json_patch::PatchOperation;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};

/// Digests the offline facts give the fixture images.
pub const APP_DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
pub const INIT_DIGEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
pub const SIDECAR_DIGEST: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

/// Offline image facts for the fixture images (`tests/fixtures/fixture-images.yaml`,
/// shared with `scripts/load.sh`): `app` gets the args fix, `init` the prepend
/// fix, all three a digest. `tool:2.3` (the args-only container) is unknown.
pub const IMAGE_FACTS: &str = include_str!("../fixtures/fixture-images.yaml");

/// The warnings for the fixtures' three containers when nothing is applied
/// (the `/audit` route, or an object that is only reported).
pub const PROPOSED_WARNINGS: [&str; 5] = [
    "entrypoint-guard: container \"init-setup\": command bypasses chalk: prepend the wrapper",
    "entrypoint-guard: container \"init-setup\": image would pin to sha256:222222222...",
    "entrypoint-guard: container \"app\": command bypasses chalk: move it into args",
    "entrypoint-guard: container \"app\": image would pin to sha256:111111111...",
    "entrypoint-guard: container \"sidecar\": image would pin to sha256:333333333...",
];

/// Every captured AdmissionReview fixture, by file stem.
pub fn fixtures() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission-reviews");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, fixture_at(&p))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        out.len(),
        13,
        "expected the thirteen captured admission reviews in {}",
        dir.display()
    );
    out
}

/// Whether the review's object is not a Pod and has a controller (an owner
/// reference with `controller: true`): the ReplicaSet a Deployment made, the
/// Job a CronJob made. Read from the fixture itself, not through the engine.
pub fn controller_owned_workload(review: &Value) -> bool {
    let object = &review["request"]["object"];
    object["kind"] != "Pod"
        && object["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|owners| owners.iter().any(|o| o["controller"] == true))
}

fn fixture_at(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One fixture by file stem, e.g. `pod-create`.
pub fn fixture(stem: &str) -> Value {
    fixture_at(&Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/admission-reviews/{stem}.json")))
}

/// A configuration for tests: loopback ephemeral ports, the fixture facts,
/// certificates from `tls`, a fast reload poll.
pub fn test_config(tls: &selfsigned::SelfSigned) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.health_listen = Some("127.0.0.1:0".parse().unwrap());
    config.server.tls_cert = tls.cert.clone();
    config.server.tls_key = tls.key.clone();
    config.server.cert_reload_interval = Span(Duration::from_millis(100));
    config.server.shutdown_grace = Span(Duration::from_secs(5));
    config.image_facts = entrypoint_guard::config::parse_yaml(IMAGE_FACTS, "facts").unwrap();
    config
}

/// A started server and what a test needs to talk to it.
pub struct TestServer {
    pub running: Running,
    pub ca: PathBuf,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts the server with `configure` applied to [`test_config`] and the
    /// offline resolver over the configuration's facts.
    pub async fn start(configure: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_with(configure, |config| Arc::new(OfflineResolver::new(config.facts()))).await
    }

    /// Like [`TestServer::start`] with a resolver made from the configuration.
    pub async fn start_with(
        configure: impl FnOnce(&mut Config),
        resolver: impl FnOnce(&Config) -> Arc<dyn Resolver>,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let tls = selfsigned::write(&dir.path().join("tls")).unwrap();
        let mut config = test_config(&tls);
        configure(&mut config);
        let resolver = resolver(&config);
        let running = Server::new(config, resolver).start().await.expect("server starts");
        let client = client(&[&tls.ca], false);
        TestServer {
            running,
            ca: tls.ca,
            client,
            dir,
        }
    }

    /// `https://localhost:PORT{path}`: the name the certificate is for.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.running.addr().port())
    }

    /// `http://ADDR{path}` on the health listener.
    pub fn health_url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.running.health_addr().expect("health listener on")
        )
    }

    /// The `/metrics` text of the health listener.
    pub async fn metrics(&self) -> String {
        let metrics = self.client.get(self.health_url("/metrics")).send().await.unwrap();
        metrics.text().await.unwrap()
    }

    /// POSTs `review` as the API server does (JSON, `?timeout=10s`) to `route`.
    pub async fn post(&self, route: &str, review: &Value) -> Answer {
        post(&self.client, &self.url(&format!("{route}?timeout=10s")), review).await
    }
}

/// An HTTPS client that verifies the server against the CAs in `ca_files`
/// (ring provider). `fresh_connections` turns connection reuse off, so every
/// request does a TLS handshake.
pub fn client(ca_files: &[&Path], fresh_connections: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(ca_files, &[b"http/1.1"]))
        .timeout(Duration::from_secs(20));
    if fresh_connections {
        builder = builder.pool_max_idle_per_host(0);
    }
    builder.build().unwrap()
}

/// A TLS client configuration (ring provider) that trusts the CAs in
/// `ca_files` and offers the ALPN protocols `alpn` (none when empty).
pub fn tls_config(ca_files: &[&Path], alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for ca in ca_files {
        for cert in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tls
}

/// Fails the test if `what` does not happen within a minute (a hang, not a slow machine).
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing happened within 60 s"))
}

/// The built `entrypoint-guard serve` on a free loopback port, with a
/// self-signed certificate (`dir/certs`, its CA `dir/certs/ca.crt`) and the
/// fixture images' facts (`dir/facts.yaml`), JSON logs at `log_level` on a
/// piped stderr, the health listener at `health_listen` (`off` or an
/// address), and `extra` flags after `serve`'s.
pub fn spawn_serve(
    dir: &Path,
    log_level: &str,
    health_listen: &str,
    extra: &[&std::ffi::OsStr],
) -> std::process::Child {
    let facts = dir.join("facts.yaml");
    std::fs::write(&facts, IMAGE_FACTS).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_entrypoint-guard"))
        .args(["--log-format", "json", "--log-level", log_level, "serve"])
        .args(["--listen", "127.0.0.1:0", "--health-listen", health_listen])
        .arg("--self-signed")
        .arg(dir.join("certs"))
        .arg("--images")
        .arg(&facts)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads a `serve --log-format json` log until its "serving admission
/// requests" event, and returns that event (`addr`, `health`).
pub fn serving_event(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> Value {
    loop {
        let line = lines.next().expect("server exited before listening").unwrap();
        if let Ok(event) = serde_json::from_str::<Value>(&line)
            && event["message"] == "serving admission requests"
        {
            return event;
        }
    }
}

/// An HTTP answer: status and body (parsed as JSON when it is JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

/// POSTs `review` as JSON to `url`.
pub async fn post(client: &reqwest::Client, url: &str, review: &Value) -> Answer {
    let body = serde_json::to_vec(review).unwrap();
    post_raw(client, url, "application/json", body).await
}

/// POSTs raw bytes with a content type.
pub async fn post_raw(client: &reqwest::Client, url: &str, content_type: &str, body: Vec<u8>) -> Answer {
    let response = client
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e:?}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, body, text }
}

/// The response part of an answer, checked the way the API server checks
/// it (k8s.io/apiserver webhook/request.VerifyAdmissionResponse and the
/// mutating dispatcher): same apiVersion/kind and uid, patchType exactly when
/// there is a patch, the patch a base64 JSON Patch; plus this project's
/// limits on warnings and audit annotation keys.
#[derive(Debug)]
pub struct Decoded {
    pub allowed: bool,
    pub patch: Option<Vec<PatchOperation>>,
    pub warnings: Vec<String>,
    pub audit_annotations: serde_json::Map<String, Value>,
    pub response: Value,
}

pub fn decode_like_api_server(review: &Value, answer: &Answer) -> Decoded {
    assert_eq!(answer.status, 200, "HTTP status; body: {}", answer.text);
    let body = &answer.body;
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1", "{body}");
    assert_eq!(body["kind"], "AdmissionReview", "{body}");
    let response = &body["response"];
    assert!(response.is_object(), "no response: {body}");
    assert_eq!(response["uid"], review["request"]["uid"], "uid must be echoed");
    let allowed = response["allowed"].as_bool().expect("allowed is a boolean");
    let patch = match (response.get("patchType"), response.get("patch")) {
        (None, None) => None,
        (Some(t), Some(p)) => {
            assert_eq!(t, "JSONPatch");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(p.as_str().expect("patch is a string"))
                .expect("patch is standard base64");
            let ops: Vec<PatchOperation> = serde_json::from_slice(&bytes).expect("patch is a JSON Patch");
            assert!(!ops.is_empty(), "an empty patch must not be sent");
            Some(ops)
        }
        (t, p) => panic!("patchType {t:?} and patch {p:?} must come together"),
    };
    let warnings: Vec<String> = response
        .get("warnings")
        .map(|w| serde_json::from_value(w.clone()).expect("warnings are strings"))
        .unwrap_or_default();
    let mut total = 0;
    for w in &warnings {
        let n = w.chars().count();
        assert!(n < 120, "warning of {n} characters: {w}");
        assert!(!w.starts_with("Warning:"), "{w}");
        assert!(!w.chars().any(char::is_control), "{w:?}");
        total += n;
    }
    assert!(total <= 4096, "{total} characters of warnings");
    let audit_annotations = response
        .get("auditAnnotations")
        .map(|a| a.as_object().expect("auditAnnotations is a map").clone())
        .unwrap_or_default();
    for (key, value) in &audit_annotations {
        let ok = key.len() <= 63
            && key.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && key.starts_with(|c: char| c.is_ascii_alphanumeric())
            && key.ends_with(|c: char| c.is_ascii_alphanumeric());
        assert!(ok, "invalid audit annotation key {key:?}");
        assert!(value.is_string(), "audit annotation {key} is not a string");
    }
    Decoded {
        allowed,
        patch,
        warnings,
        audit_annotations,
        response: response.clone(),
    }
}

/// The request's object with `patch` applied, as the API server would.
pub fn patched(review: &Value, patch: &[PatchOperation]) -> Value {
    let mut object = review["request"]["object"].clone();
    json_patch::patch(&mut object, patch).expect("the patch applies to the request object");
    object
}

/// A copy of `review` with a new uid and `object`, as for a reinvocation.
pub fn with_object(review: &Value, uid: &str, object: Value) -> Value {
    let mut review = review.clone();
    review["request"]["uid"] = json!(uid);
    review["request"]["object"] = object;
    review
}

/// Posts `review` to `/mutate` of `server` and returns the answer, decoded
/// as the API server does, and the object it leads to.
pub async fn admit(server: &TestServer, review: &Value) -> (Decoded, Value) {
    let decoded = decode_like_api_server(review, &server.post("/mutate", review).await);
    assert!(decoded.allowed);
    let object = match &decoded.patch {
        Some(patch) => patched(review, patch),
        None => review["request"]["object"].clone(),
    };
    (decoded, object)
}
