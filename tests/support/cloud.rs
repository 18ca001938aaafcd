//! Protocol-exact stand-ins for the cloud credential endpoints, on loopback:
//! AWS STS (`AssumeRoleWithWebIdentity`, query API, XML), ECR's JSON 1.1
//! `GetAuthorizationToken` (SigV4 checked here, independently of the
//! signer), the EKS Pod Identity agent, IMDSv2, the GCE metadata server,
//! Google's OAuth token endpoint (RS256 JWT bearer grant, signature checked),
//! Entra's token endpoint (client assertion) with Azure instance metadata,
//! and an ACR front (`/oauth2/exchange`, `/oauth2/token`, Bearer-protected
//! `/v2/` forwarded to a real docker-registry). Every endpoint counts its
//! requests so tests can assert exact numbers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

#[path = "cloud_aws.rs"]
mod aws;
#[path = "cloud_azure.rs"]
mod azure;
#[allow(unused_imports)]
pub use aws::{AwsKeys, AwsSpec, FakeAws, verify_sigv4};
#[allow(unused_imports)]
pub use azure::{FakeEntra, Front};

/// Request counts per endpoint name.
#[derive(Clone, Default)]
pub struct Counts(Arc<Mutex<HashMap<String, usize>>>);

impl Counts {
    fn hit(&self, name: &str) {
        *self.0.lock().unwrap().entry(name.to_string()).or_default() += 1;
    }

    /// Requests `name` received.
    pub fn get(&self, name: &str) -> usize {
        self.0.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

async fn serve(app: axum::Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn rfc3339(secs: u64) -> String {
    aws_smithy_types::DateTime::from_secs(secs as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap()
}

fn form(body: &[u8]) -> HashMap<String, String> {
    let uri: Uri = format!("/?{}", String::from_utf8_lossy(body)).parse().unwrap();
    Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

fn bad(status: StatusCode, why: &str) -> Response {
    (status, why.to_string()).into_response()
}

// ---------------------------------------------------------------- Google

/// The GCE metadata server and Google's OAuth token endpoint.
pub struct FakeGoogle {
    /// `127.0.0.1:PORT` (for `GCE_METADATA_HOST`).
    pub host: String,
    /// Counts: `metadata`, `oauth`.
    pub counts: Counts,
    _task: tokio::task::JoinHandle<()>,
}

struct GoogleState {
    counts: Counts,
    access_token: String,
    /// (client email, PKCS#1 DER public key) for the JWT grant.
    service_account: Option<(String, Vec<u8>)>,
    lifetime: u64,
}

impl FakeGoogle {
    /// Issues `access_token` from the metadata server and, for a signed JWT
    /// of `service_account` (email, PKCS#1 public key DER), from `/token`.
    pub async fn start(access_token: &str, service_account: Option<(String, Vec<u8>)>, lifetime: u64) -> FakeGoogle {
        let counts = Counts::default();
        let state = Arc::new(GoogleState {
            counts: counts.clone(),
            access_token: access_token.to_string(),
            service_account,
            lifetime,
        });
        let app = axum::Router::new()
            .route(
                "/computeMetadata/v1/instance/service-accounts/default/token",
                axum::routing::get(gce_token),
            )
            .route("/token", axum::routing::post(oauth_token))
            .with_state(state);
        let (addr, task) = serve(app).await;
        FakeGoogle {
            host: addr.to_string(),
            counts,
            _task: task,
        }
    }
}

async fn gce_token(State(s): State<Arc<GoogleState>>, headers: HeaderMap) -> Response {
    s.counts.hit("metadata");
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return bad(StatusCode::FORBIDDEN, "Missing Metadata-Flavor:Google header");
    }
    let v = serde_json::json!({"access_token": s.access_token, "expires_in": s.lifetime, "token_type": "Bearer"});
    ([("metadata-flavor", "Google")], axum::Json(v)).into_response()
}

async fn oauth_token(State(s): State<Arc<GoogleState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    s.counts.hit("oauth");
    let f = form(&body);
    let Some((email, public_key)) = &s.service_account else {
        return bad(StatusCode::NOT_FOUND, "no service account");
    };
    if f.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return bad(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let Some(jwt) = f.get("assertion") else {
        return bad(StatusCode::BAD_REQUEST, "no assertion");
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return bad(StatusCode::BAD_REQUEST, "assertion is not a JWT");
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signature = b64.decode(parts[2]).unwrap_or_default();
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public_key);
    if key
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .is_err()
    {
        return bad(StatusCode::BAD_REQUEST, "invalid_grant: bad signature");
    }
    let header: serde_json::Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let audience = format!("http://{host}{}", uri.path());
    let now = now_secs();
    let ok = header["alg"] == "RS256"
        && claims["iss"] == email.as_str()
        && claims["aud"] == audience.as_str()
        && claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
        && claims["iat"].as_u64().is_some_and(|t| t.abs_diff(now) < 300)
        && claims["exp"].as_u64().is_some_and(|e| e > now && e <= now + 3700);
    if !ok {
        return bad(StatusCode::BAD_REQUEST, &format!("invalid_grant: claims {claims}"));
    }
    let v = serde_json::json!({"access_token": s.access_token, "expires_in": s.lifetime, "token_type": "Bearer"});
    axum::Json(v).into_response()
}

/// A 2048-bit RSA key made by openssl: (PKCS#8 PEM, PKCS#1 public DER).
pub fn rsa_key(dir: &Path) -> (String, Vec<u8>) {
    let key = dir.join("sa-key.pem");
    let public = dir.join("sa-pub.der");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl must be installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        key.to_str().unwrap(),
    ]);
    run(&[
        "rsa",
        "-in",
        key.to_str().unwrap(),
        "-RSAPublicKey_out",
        "-outform",
        "DER",
        "-out",
        public.to_str().unwrap(),
    ]);
    (std::fs::read_to_string(&key).unwrap(), std::fs::read(&public).unwrap())
}

/// Writes `content` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}
