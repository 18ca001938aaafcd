//! The AWS stand-ins: STS, ECR (SigV4 checked), the EKS Pod Identity agent, IMDSv2.
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

async fn aws_handler(
    State(s): State<Arc<AwsState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
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
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        v.to_string(),
    )
        .into_response()
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
        return Err(format!(
            "signed for {scope_region}/{scope_service}, expected {region}/{service}"
        ));
    }
    let keys = keys(id).ok_or_else(|| format!("unknown access key {id}"))?;
    if h("x-amz-security-token") != Some(keys.token.as_str()) {
        return Err("missing or wrong x-amz-security-token".into());
    }
    let signed: Vec<&str> = parts
        .get("SignedHeaders")
        .ok_or("no SignedHeaders")?
        .split(';')
        .collect();
    for needed in [
        "host",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-target",
        "content-type",
    ] {
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
