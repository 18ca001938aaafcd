//! The Azure stand-ins: Entra's token endpoint, instance metadata, and registry fronts (ACR).
#![allow(dead_code, unused_imports)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::{Counts, bad, form, now_secs, rfc3339, serve};

/// Entra's token endpoint (`/{tenant}/oauth2/v2.0/token`) and Azure instance
/// metadata (`/metadata/identity/oauth2/token`).
pub struct FakeEntra {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Counts: `entra`, `imds`.
    pub counts: Counts,
    _task: tokio::task::JoinHandle<()>,
}

struct EntraState {
    counts: Counts,
    tenant: String,
    client_id: String,
    assertion: String,
    access_token: String,
}

impl FakeEntra {
    /// Issues `access_token` for `client_id` in `tenant` presenting `assertion`, and from instance metadata.
    pub async fn start(tenant: &str, client_id: &str, assertion: &str, access_token: &str) -> FakeEntra {
        let counts = Counts::default();
        let state = Arc::new(EntraState {
            counts: counts.clone(),
            tenant: tenant.into(),
            client_id: client_id.into(),
            assertion: assertion.into(),
            access_token: access_token.into(),
        });
        let app = axum::Router::new()
            .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(entra_token))
            .route("/metadata/identity/oauth2/token", axum::routing::get(azure_imds))
            .with_state(state);
        let (addr, task) = serve(app).await;
        FakeEntra {
            url: format!("http://{addr}"),
            counts,
            _task: task,
        }
    }
}

async fn entra_token(
    State(s): State<Arc<EntraState>>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
    body: Bytes,
) -> Response {
    s.counts.hit("entra");
    let f = form(&body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let ok = tenant == s.tenant
        && get("client_id") == s.client_id
        && get("grant_type") == "client_credentials"
        && get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        && get("client_assertion") == s.assertion
        && get("scope") == "https://management.azure.com/.default";
    if !ok {
        let v = serde_json::json!({"error": "invalid_client", "error_description": "AADSTS700016"});
        return (StatusCode::BAD_REQUEST, axum::Json(v)).into_response();
    }
    axum::Json(serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": s.access_token}))
        .into_response()
}

async fn azure_imds(
    State(s): State<Arc<EntraState>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    s.counts.hit("imds");
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true")
        || !q.contains_key("api-version")
        || q.get("resource").map(String::as_str) != Some("https://management.azure.com")
    {
        return bad(StatusCode::BAD_REQUEST, "bad instance metadata request");
    }
    let now = now_secs();
    axum::Json(serde_json::json!({"access_token": s.access_token, "expires_in": "86399", "expires_on": (now + 86399).to_string(),
        "resource": "https://management.azure.com/", "token_type": "Bearer"}))
    .into_response()
}

/// A registry front on loopback (plain HTTP): records the `Authorization` of
/// every request and forwards `/v2/` to a real docker-registry. As ACR, it
/// also answers `/oauth2/exchange` and `/oauth2/token` and requires the
/// Bearer token they lead to.
pub struct Front {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Counts: `exchange`, `token`, `v2`.
    pub counts: Counts,
    /// Every `Authorization` header received (empty string when none).
    pub authorizations: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

struct FrontState {
    addr: String,
    upstream: String,
    /// ACR: (Entra access token expected, refresh token, access token).
    acr: Option<(String, String, String)>,
    counts: Counts,
    authorizations: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
}

impl Front {
    /// A recording front for `upstream` (`127.0.0.1:PORT`, plain HTTP); with
    /// `acr_expects = Some(entra token)`, an ACR front that exchanges it.
    pub async fn start(upstream: &str, acr_expects: Option<&str>) -> Front {
        // reqwest needs a process-wide crypto provider: ring, as everywhere here.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let counts = Counts::default();
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let refresh = format!(
            "{}.{}.sig",
            b64.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            b64.encode(serde_json::json!({"exp": now_secs() + 3 * 3600, "grant_type": "refresh_token"}).to_string())
        );
        let state = Arc::new(FrontState {
            addr: addr.clone(),
            upstream: upstream.to_string(),
            acr: acr_expects.map(|t| (t.to_string(), refresh, "acr-access-token".to_string())),
            counts: counts.clone(),
            authorizations: authorizations.clone(),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
        });
        let app = axum::Router::new().fallback(front).with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Front {
            addr,
            counts,
            authorizations,
            _task: task,
        }
    }
}

async fn front(
    State(s): State<Arc<FrontState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    s.authorizations.lock().unwrap().push(auth.clone());
    let path = uri.path();
    if let Some((entra, refresh, access)) = &s.acr {
        match (method.as_str(), path) {
            ("POST", "/oauth2/exchange") => {
                s.counts.hit("exchange");
                let f = form(&body);
                let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
                if get("grant_type") != "access_token" || get("service") != s.addr || get("access_token") != entra {
                    return bad(StatusCode::UNAUTHORIZED, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#);
                }
                return axum::Json(serde_json::json!({"refresh_token": refresh})).into_response();
            }
            ("GET", "/oauth2/token") => {
                s.counts.hit("token");
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("00000000-0000-0000-0000-000000000000:{refresh}"))
                );
                if auth != expected {
                    return bad(StatusCode::UNAUTHORIZED, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#);
                }
                return axum::Json(serde_json::json!({"access_token": access})).into_response();
            }
            _ if path.starts_with("/v2/") && auth != format!("Bearer {access}") => {
                let challenge = format!(
                    r#"Bearer realm="http://{}/oauth2/token",service="{}",scope="repository:{}:pull""#,
                    s.addr,
                    s.addr,
                    path.trim_start_matches("/v2/")
                        .split("/manifests/")
                        .next()
                        .unwrap_or_default()
                        .split("/blobs/")
                        .next()
                        .unwrap_or_default()
                );
                return (
                    StatusCode::UNAUTHORIZED,
                    [("www-authenticate", challenge)],
                    r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
                )
                    .into_response();
            }
            _ => {}
        }
    }
    if !path.starts_with("/v2") {
        return bad(StatusCode::NOT_FOUND, "not a registry path");
    }
    s.counts.hit("v2");
    let url = format!(
        "http://{}{}",
        s.upstream,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut request = s.client.request(method, url).body(body);
    for name in ["accept", "content-type"] {
        for v in headers.get_all(name) {
            request = request.header(name, v);
        }
    }
    let answer = match request.send().await {
        Ok(a) => a,
        Err(e) => return bad(StatusCode::BAD_GATEWAY, &e.to_string()),
    };
    let status = answer.status();
    let mut out = HeaderMap::new();
    for name in [
        "content-type",
        "docker-content-digest",
        "content-length",
        "docker-distribution-api-version",
    ] {
        if let Some(v) = answer.headers().get(name) {
            out.insert(name, v.clone());
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    (status, out, bytes).into_response()
}
