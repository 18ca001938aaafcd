//! Real registries on loopback for the resolver tests: Debian's
//! `docker-registry` (distribution v2) with a temp config — plain, TLS with
//! htpasswd basic auth, or token auth with a small token server written here —
//! and the standard test images built with umoci and pushed with skopeo by
//! `scripts/testenv/make-images.sh`.
//!
//! Every registry of one test binary serves the same storage directory, so
//! the images are pushed once (to the plain registry) and read everywhere.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// Tools the registry tests run.
pub const TOOLS: &[&str] = &["docker-registry", "umoci", "skopeo", "jq", "htpasswd", "sha256sum"];

/// Panics, naming the tool and the installer, when a tool is missing.
pub fn require_tools(tools: &[&str]) {
    for tool in tools {
        let found = std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
        assert!(
            found,
            "required test tool `{tool}` is not installed: run scripts/testenv/install.sh (as root) first"
        );
    }
}

/// The project root (for scripts/testenv).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How a registry authenticates.
pub enum Auth {
    /// Anyone may pull and push.
    None,
    /// TLS with a custom CA, and htpasswd (bcrypt) basic auth for `users`.
    TlsHtpasswd {
        /// `(user, password)` pairs.
        users: Vec<(String, String)>,
    },
    /// distribution's `auth: token`, with tokens from `server`.
    Token {
        /// The token server the registry trusts.
        server: Arc<TokenServer>,
        /// The realm host as the registry advertises it (`127.0.0.1` or `localhost`).
        realm_host: String,
    },
}

/// A running `docker-registry serve`; killed when dropped.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The registry's own directory (config, logs, certs).
    pub dir: PathBuf,
    /// Apache-style access log: one line per request.
    pub access_log: PathBuf,
    /// The CA that signed the registry's certificate (TLS registries).
    pub ca_file: Option<PathBuf>,
    child: Child,
}

impl Drop for Registry {
    fn drop(&mut self) {
        // TERM lets the watchdog stop the registry (KILL would orphan it).
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// Runs `docker-registry serve $1` until TERM, the registry's exit, or the
/// exit of the test process (`$PPID`).
const WATCHDOG: &str = r#"docker-registry serve "$1" & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid; exit 0' TERM INT
while kill -0 "$PPID" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
kill $pid 2>/dev/null; wait $pid"#;

/// A free loopback port (bound then released; the registry binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Registry {
    /// Starts a registry serving `storage`, in `dir` (created), with `auth`.
    pub fn start(dir: &Path, storage: &Path, auth: Auth) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        let mut extra = String::new();
        let mut ca_file = None;
        match &auth {
            Auth::None => {}
            Auth::TlsHtpasswd { users } => {
                let (ca, cert, key) = tls_files(dir);
                extra.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                ));
                let htpasswd = dir.join("htpasswd");
                let mut lines = String::new();
                for (user, password) in users {
                    let out = Command::new("htpasswd")
                        .args(["-Bbn", user, password])
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "htpasswd failed: {out:?}");
                    lines.push_str(String::from_utf8(out.stdout).unwrap().trim());
                    lines.push('\n');
                }
                std::fs::write(&htpasswd, lines).unwrap();
                extra.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: eg-test\n    path: {}\n",
                    htpasswd.display()
                ));
                ca_file = Some(ca);
            }
            Auth::Token { server, realm_host } => {
                extra.push_str(&format!(
                    "auth:\n  token:\n    realm: http://{realm_host}:{}/token\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    server.addr.port(),
                    TOKEN_SERVICE,
                    TOKEN_ISSUER,
                    server.cert_file.display()
                ));
            }
        }
        for _attempt in 0..5 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let config = format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {addr}\n  secret: eg-test-secret\n{extra}",
                storage.display()
            );
            let config_file = dir.join("config.yml");
            std::fs::write(&config_file, config).unwrap();
            let access_log = dir.join("access.log");
            // Through a watchdog shell: the registry goes when the test process
            // goes, even if it never drops the `Registry` (a static world).
            let mut child = Command::new("sh")
                .args(["-c", WATCHDOG, "registry-watchdog"])
                .arg(&config_file)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&access_log).unwrap())
                .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
                .spawn()
                .expect("sh must be available to start docker-registry");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if child.try_wait().unwrap().is_some() {
                    break; // port taken meanwhile: try another
                }
                if TcpStream::connect(&addr).is_ok() {
                    return Registry {
                        addr,
                        dir: dir.to_path_buf(),
                        access_log,
                        ca_file,
                        child,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
        panic!("docker-registry did not start; registry.log:\n{log}");
    }

    /// Requests for `/v2/<repo>/manifests/<reference>` (GET and HEAD) so far,
    /// exactly. No waiting is needed: docker-registry writes a request's
    /// access-log line (gorilla's logging handler, after the registry's
    /// handler returns) before Go's server flushes the buffered answer, so a
    /// client that has its (small, manifest) answer has its line logged.
    pub fn manifest_requests(&self, repo: &str, reference: &str) -> usize {
        let needle = format!("/v2/{repo}/manifests/{reference} HTTP");
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| (l.contains("\"GET ") || l.contains("\"HEAD ")) && l.contains(&needle))
            .count()
    }
}

/// A CA and a server certificate for 127.0.0.1/localhost, written under `dir`.
fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "entrypoint-guard test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = params
        .signed_by(&key, &Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    let (ca, crt, k) = (dir.join("ca.crt"), dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (ca, crt, k)
}

/// The pushed standard images: `repo:tag` → digest the registry serves.
pub struct Images {
    /// Where the plain registry that received them listens.
    pub registry: String,
    /// `chalk/bare:1.0` → `sha256:…`.
    pub digests: BTreeMap<String, String>,
}

impl Images {
    /// The digest of `repo_tag` (panics naming it if it was not pushed).
    pub fn digest(&self, repo_tag: &str) -> &str {
        self.digests
            .get(repo_tag)
            .unwrap_or_else(|| panic!("make-images.sh did not push {repo_tag}"))
    }
}

/// Runs `scripts/testenv/make-images.sh` against a plain registry.
pub fn push_standard_images(registry: &Registry) -> Images {
    require_tools(TOOLS);
    let script = project_root().join("scripts/testenv/make-images.sh");
    let out = Command::new(&script).arg(&registry.addr).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let digests = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(r, d)| (r.to_string(), d.to_string()))
        .collect();
    Images {
        registry: registry.addr.clone(),
        digests,
    }
}

/// A plain registry with the standard images, plus its storage for more registries.
pub struct World {
    /// Temp directory holding storage and every registry's files.
    pub dir: tempfile::TempDir,
    /// The plain registry the images were pushed to.
    pub plain: Registry,
    /// The pushed images.
    pub images: Images,
}

impl World {
    /// Starts the plain registry and pushes the standard images (~2 s).
    pub fn new() -> World {
        require_tools(TOOLS);
        let dir = tempfile::tempdir().unwrap();
        let plain = Registry::start(&dir.path().join("plain"), &dir.path().join("storage"), Auth::None);
        let images = push_standard_images(&plain);
        World { dir, plain, images }
    }

    /// Another registry over the same storage.
    pub fn registry(&self, name: &str, auth: Auth) -> Registry {
        Registry::start(&self.dir.path().join(name), &self.dir.path().join("storage"), auth)
    }
}

/// `service` the test registries name in token requests.
pub const TOKEN_SERVICE: &str = "eg-test-registry";
/// `iss` of the issued tokens.
pub const TOKEN_ISSUER: &str = "eg-test-issuer";

/// A docker distribution token server: checks basic credentials and grants
/// `pull` on the repositories each user may read, as a JWT signed with a
/// key whose certificate the registry trusts (`x5c` header).
pub struct TokenServer {
    /// Where it listens (loopback).
    pub addr: SocketAddr,
    /// PEM of the signing certificate (the registry's `rootcertbundle`).
    pub cert_file: PathBuf,
    /// Token requests received.
    pub requests: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

struct TokenState {
    /// user → (password, repository prefixes it may pull).
    users: HashMap<String, (String, Vec<String>)>,
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
    requests: Arc<AtomicUsize>,
}

impl TokenServer {
    /// Starts a token server on the current runtime; `users` are
    /// `(user, password, [repository prefixes])`.
    pub async fn start(dir: &Path, users: &[(&str, &str, &[&str])]) -> Arc<TokenServer> {
        use rcgen::{CertificateParams, DnType, KeyPair};
        std::fs::create_dir_all(dir).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "eg-test token signer");
        let cert = params.self_signed(&key).unwrap();
        let cert_file = dir.join("token-signer.crt");
        std::fs::write(&cert_file, cert.pem()).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let signing = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &rng,
        )
        .unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(TokenState {
            users: users
                .iter()
                .map(|(u, p, repos)| {
                    (
                        u.to_string(),
                        (p.to_string(), repos.iter().map(|r| r.to_string()).collect()),
                    )
                })
                .collect(),
            key: signing,
            cert_der: cert.der().to_vec(),
            requests: requests.clone(),
        });
        let app = axum::Router::new()
            .route("/token", axum::routing::get(issue_token))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Arc::new(TokenServer {
            addr,
            cert_file,
            requests,
            _task: task,
        })
    }
}

async fn issue_token(
    axum::extract::State(state): axum::extract::State<Arc<TokenState>>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    state.requests.fetch_add(1, Ordering::SeqCst);
    let b64 = base64::engine::general_purpose::STANDARD;
    let user = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| b64.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.split_once(':').map(|(u, p)| (u.to_string(), p.to_string())));
    let Some((user, password)) = user else {
        return (axum::http::StatusCode::UNAUTHORIZED, "credentials required").into_response();
    };
    let Some((expected, prefixes)) = state.users.get(&user) else {
        return (axum::http::StatusCode::UNAUTHORIZED, "unknown user").into_response();
    };
    if expected != &password {
        return (axum::http::StatusCode::UNAUTHORIZED, "wrong password").into_response();
    }
    // scope = repository:<name>:<actions>; grant pull on permitted names only.
    let access: Vec<serde_json::Value> = query
        .get("scope")
        .into_iter()
        .flat_map(|s| s.split(' '))
        .filter_map(|scope| {
            let mut parts = scope.splitn(3, ':');
            let (kind, name) = (parts.next()?, parts.next()?);
            let allowed = prefixes.iter().any(|p| name.starts_with(p.as_str()));
            (kind == "repository" && allowed)
                .then(|| serde_json::json!({"type": "repository", "name": name, "actions": ["pull"]}))
        })
        .collect();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [b64.encode(&state.cert_der)]});
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": user, "aud": query.get("service").cloned().unwrap_or_default(),
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", state.requests.load(Ordering::SeqCst)),
        "access": access,
    });
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!("{}.{}", url.encode(header.to_string()), url.encode(claims.to_string()));
    let rng = ring::rand::SystemRandom::new();
    let signature = state.key.sign(&rng, signing_input.as_bytes()).unwrap();
    let token = format!("{signing_input}.{}", url.encode(signature.as_ref()));
    axum::Json(serde_json::json!({"token": token, "access_token": token, "expires_in": 300})).into_response()
}

/// Writes a dockerconfigjson with `auths` for `(server, user, password)` and returns its path.
pub fn docker_config(dir: &Path, name: &str, entries: &[(&str, &str, &str)]) -> PathBuf {
    let b64 = base64::engine::general_purpose::STANDARD;
    let auths: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(server, user, password)| {
            (
                server.to_string(),
                serde_json::json!({"auth": b64.encode(format!("{user}:{password}"))}),
            )
        })
        .collect();
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    write!(f, "{}", serde_json::json!({"auths": auths})).unwrap();
    path
}

/// The facts `resolver` finds for `image` (20 s deadline).
pub async fn resolve_image(
    resolver: &dyn entrypoint_guard::image::Resolver,
    image: &str,
) -> entrypoint_guard::image::ImageFacts {
    let images = vec![image.to_string()];
    let deadline = Instant::now() + Duration::from_secs(20);
    let facts = resolver
        .resolve(&images, &entrypoint_guard::image::LookupContext::default(), deadline)
        .await;
    facts.get(image).cloned().expect("the resolver answers for every image")
}
