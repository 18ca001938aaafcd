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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

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
    Query::<HashMap<String, String>>::try_from_uri(&uri).map(|q| q.0).unwrap_or_default()
}

fn bad(status: StatusCode, why: &str) -> Response {
    (status, why.to_string()).into_response()
}

// ---------------------------------------------------------------- AWS

/// One identity the AWS stand-in hands out.
#[derive(Clone)]
pub struct AwsKeys {
    /// Access key id.
    pub id: String,
    /// Secret key.
    pub secret: String,
    /// Session token.
    pub token: String,
}

/// What the AWS stand-in expects and issues.
pub struct AwsSpec {
    /// The web identity token IRSA must present.
    pub web_identity_token: String,
    /// The role ARN it must name.
    pub role_arn: String,
    /// The Pod Identity agent's authorization token.
    pub pod_identity_token: String,
    /// The ECR password (`AWS:<password>`) a signed GetAuthorizationToken returns.
    pub ecr_password: String,
    /// Lifetime of STS/Pod Identity/IMDS credentials, seconds.
    pub credentials_lifetime: u64,
    /// Lifetime of ECR tokens, seconds.
    pub ecr_lifetime: u64,
    /// The region ECR requests must be signed for.
    pub region: String,
}

/// STS + ECR on `/`, the Pod Identity agent on `/v1/credentials`, IMDSv2 on `/latest/…`.
pub struct FakeAws {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Request counts: `sts`, `ecr`, `pod-identity`, `imds-token`, `imds-role`, `imds-credentials`.
    pub counts: Counts,
    /// The access key ids that signed ECR calls, in order.
    pub ecr_signers: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

struct AwsState {
    spec: AwsSpec,
    counts: Counts,
    signers: Arc<Mutex<Vec<String>>>,
    issued: Mutex<HashMap<String, AwsKeys>>,
    serial: AtomicUsize,
}

impl AwsState {
    fn issue(&self, kind: &str) -> AwsKeys {
        let n = self.serial.fetch_add(1, Ordering::SeqCst);
        let keys = AwsKeys {
            id: format!("ASIA{}{n:04}", kind.to_uppercase()),
            secret: format!("secret-{kind}-{n}"),
            token: format!("session-{kind}-{n}"),
        };
        self.issued.lock().unwrap().insert(keys.id.clone(), keys.clone());
        keys
    }
}

impl FakeAws {
    /// Starts the stand-in on the current runtime.
    pub async fn start(spec: AwsSpec) -> FakeAws {
        let counts = Counts::default();
        let signers = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(AwsState {
            spec,
            counts: counts.clone(),
            signers: signers.clone(),
            issued: Mutex::new(HashMap::new()),
            serial: AtomicUsize::new(0),
        });
        let app = axum::Router::new().fallback(aws_handler).with_state(state);
        let (addr, task) = serve(app).await;
        FakeAws {
            url: format!("http://{addr}"),
            counts,
            ecr_signers: signers,
            _task: task,
        }
    }
}

async fn aws_handler(State(s): State<Arc<AwsState>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path();
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    match (method.as_str(), path) {
        ("POST", "/") if header("x-amz-target").is_empty() => sts(&s, &headers, &body),
        ("POST", "/") => ecr(&s, &headers, &body),
        ("GET", "/v1/credentials") => {
            s.counts.hit("pod-identity");
            if header("authorization") != s.spec.pod_identity_token {
                return bad(StatusCode::UNAUTHORIZED, "bad pod identity token");
            }
            json_credentials(&s.issue("pod"), now_secs() + s.spec.credentials_lifetime, false)
        }
        ("PUT", "/latest/api/token") => {
            s.counts.hit("imds-token");
            if header("x-aws-ec2-metadata-token-ttl-seconds").parse::<u32>().is_err() {
                return bad(StatusCode::BAD_REQUEST, "missing TTL");
            }
            "imds-session-token".into_response()
        }
        ("GET", p) if p.starts_with("/latest/meta-data/iam/security-credentials/") => {
            if header("x-aws-ec2-metadata-token") != "imds-session-token" {
                return bad(StatusCode::UNAUTHORIZED, "IMDSv2 token required");
            }
            let role = &p["/latest/meta-data/iam/security-credentials/".len()..];
            if role.is_empty() {
                s.counts.hit("imds-role");
                "eg-node-role\n".into_response()
            } else if role == "eg-node-role" {
                s.counts.hit("imds-credentials");
                json_credentials(&s.issue("imds"), now_secs() + s.spec.credentials_lifetime, true)
            } else {
                bad(StatusCode::NOT_FOUND, "no such role")
            }
        }
        _ => bad(StatusCode::NOT_FOUND, "unknown AWS endpoint"),
    }
}

fn json_credentials(keys: &AwsKeys, expires: u64, with_code: bool) -> Response {
    let mut v = serde_json::json!({
        "AccessKeyId": keys.id, "SecretAccessKey": keys.secret, "Token": keys.token,
        "Expiration": rfc3339(expires),
    });
    if with_code {
        v["Code"] = "Success".into();
        v["Type"] = "AWS-HMAC".into();
        v["LastUpdated"] = rfc3339(now_secs()).into();
    }
    axum::Json(v).into_response()
}

fn sts(s: &AwsState, headers: &HeaderMap, body: &[u8]) -> Response {
    s.counts.hit("sts");
    let f = form(body);
    let ok = headers.get("content-type").and_then(|v| v.to_str().ok()) == Some("application/x-www-form-urlencoded")
        && f.get("Action").map(String::as_str) == Some("AssumeRoleWithWebIdentity")
        && f.get("Version").map(String::as_str) == Some("2011-06-15")
        && f.get("RoleSessionName").is_some_and(|n| !n.is_empty());
    if !ok {
        return bad(StatusCode::BAD_REQUEST, "malformed AssumeRoleWithWebIdentity");
    }
    if f.get("WebIdentityToken") != Some(&s.spec.web_identity_token) || f.get("RoleArn") != Some(&s.spec.role_arn) {
        let xml = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;
        return (StatusCode::FORBIDDEN, [("content-type", "text/xml")], xml).into_response();
    }
    let keys = s.issue("sts");
    let xml = format!(
        r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser><AssumedRoleId>AROA:s</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser>
    <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks</Provider>
    <Credentials>
      <AccessKeyId>{}</AccessKeyId>
      <SecretAccessKey>{}</SecretAccessKey>
      <SessionToken>{}</SessionToken>
      <Expiration>{}</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>system:serviceaccount:eg:entrypoint-guard</SubjectFromWebIdentityToken>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#,
        s.spec.role_arn,
        keys.id,
        keys.secret,
        keys.token,
        rfc3339(now_secs() + s.spec.credentials_lifetime)
    );
    (StatusCode::OK, [("content-type", "text/xml")], xml).into_response()
}

fn ecr(s: &AwsState, headers: &HeaderMap, body: &[u8]) -> Response {
    s.counts.hit("ecr");
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if h("x-amz-target") != "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
        || h("content-type") != "application/x-amz-json-1.1"
        || serde_json::from_slice::<serde_json::Value>(body).is_err()
    {
        return bad(StatusCode::BAD_REQUEST, "malformed GetAuthorizationToken");
    }
    let issued = s.issued.lock().unwrap().clone();
    match verify_sigv4(headers, body, &s.spec.region, "ecr", |id| issued.get(id).cloned()) {
        Ok(id) => s.signers.lock().unwrap().push(id),
        Err(why) => {
            let v = serde_json::json!({"__type": "UnrecognizedClientException", "message": why});
            return (StatusCode::BAD_REQUEST, axum::Json(v)).into_response();
        }
    }
    let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{}", s.spec.ecr_password));
    let v = serde_json::json!({"authorizationData": [{
        "authorizationToken": token,
        "expiresAt": (now_secs() + s.spec.ecr_lifetime) as f64 + 0.25,
        "proxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
    }]});
    (StatusCode::OK, [("content-type", "application/x-amz-json-1.1")], v.to_string()).into_response()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a SigV4 `Authorization` header of a POST to `/` (no query): the
/// credential scope, the signed headers (host, x-amz-date, the security
/// token, the target) and the signature computed from the secret of the
/// key id. Returns the key id.
pub fn verify_sigv4(
    headers: &HeaderMap,
    body: &[u8],
    region: &str,
    service: &str,
    keys: impl Fn(&str) -> Option<AwsKeys>,
) -> Result<String, String> {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    let auth = h("authorization").ok_or("no Authorization header")?;
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or("not AWS4-HMAC-SHA256")?;
    let mut parts = HashMap::new();
    for part in rest.split(", ") {
        let (k, v) = part.split_once('=').ok_or("malformed Authorization")?;
        parts.insert(k, v);
    }
    let credential = parts.get("Credential").ok_or("no Credential")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [id, date, scope_region, scope_service, "aws4_request"] = scope.as_slice() else {
        return Err(format!("bad credential scope {credential}"));
    };
    if *scope_region != region || *scope_service != service {
        return Err(format!("signed for {scope_region}/{scope_service}, expected {region}/{service}"));
    }
    let keys = keys(id).ok_or_else(|| format!("unknown access key {id}"))?;
    if h("x-amz-security-token") != Some(keys.token.as_str()) {
        return Err("missing or wrong x-amz-security-token".into());
    }
    let signed: Vec<&str> = parts.get("SignedHeaders").ok_or("no SignedHeaders")?.split(';').collect();
    for needed in ["host", "x-amz-date", "x-amz-security-token", "x-amz-target", "content-type"] {
        if !signed.contains(&needed) {
            return Err(format!("{needed} is not signed"));
        }
    }
    let amz_date = h("x-amz-date").ok_or("no x-amz-date")?;
    if !amz_date.starts_with(date) {
        return Err("x-amz-date does not match the scope date".into());
    }
    let canonical_headers: String = signed
        .iter()
        .map(|name| format!("{name}:{}\n", h(name).unwrap_or_default()))
        .collect();
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{}\n{}",
        signed.join(";"),
        hex(&Sha256::digest(body))
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{}", keys.secret).as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    let expected = hex(&hmac(&k, to_sign.as_bytes()));
    if parts.get("Signature") != Some(&expected.as_str()) {
        return Err("signature mismatch".into());
    }
    Ok(id.to_string())
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
    if key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature).is_err() {
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
        let out = std::process::Command::new("openssl").args(args).output().expect("openssl must be installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key.to_str().unwrap()]);
    run(&["rsa", "-in", key.to_str().unwrap(), "-RSAPublicKey_out", "-outform", "DER", "-out", public.to_str().unwrap()]);
    (std::fs::read_to_string(&key).unwrap(), std::fs::read(&public).unwrap())
}

// ---------------------------------------------------------------- Azure

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

async fn azure_imds(State(s): State<Arc<EntraState>>, Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Response {
    s.counts.hit("imds");
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true")
        || q.get("api-version").is_none()
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

async fn front(State(s): State<Arc<FrontState>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
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
                    base64::engine::general_purpose::STANDARD.encode(format!("00000000-0000-0000-0000-000000000000:{refresh}"))
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
                    path.trim_start_matches("/v2/").split("/manifests/").next().unwrap_or_default().split("/blobs/").next().unwrap_or_default()
                );
                return (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)], r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#)
                    .into_response();
            }
            _ => {}
        }
    }
    if !path.starts_with("/v2") {
        return bad(StatusCode::NOT_FOUND, "not a registry path");
    }
    s.counts.hit("v2");
    let url = format!("http://{}{}", s.upstream, uri.path_and_query().map_or("/", |p| p.as_str()));
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
    for name in ["content-type", "docker-content-digest", "content-length", "docker-distribution-api-version"] {
        if let Some(v) = answer.headers().get(name) {
            out.insert(name, v.clone());
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    (status, out, bytes).into_response()
}

/// Writes `content` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}
