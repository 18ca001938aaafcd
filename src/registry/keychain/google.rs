//! Google Artifact Registry and GCR: an OAuth access token for the
//! webhook's Google identity, used as the password of `oauth2accesstoken`.
//!
//! The token comes from `GOOGLE_APPLICATION_CREDENTIALS` when it is set — a
//! service-account key (JWT bearer grant, RS256) or a workload identity
//! federation file (`external_account`: STS token exchange of a file-sourced
//! subject token, then optional service-account impersonation) — else from
//! the metadata server (GKE Workload Identity; `GCE_METADATA_HOST` overrides
//! its address). IAM: Artifact Registry Reader on the repositories.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use futures::future::BoxFuture;
use serde::Deserialize;

use super::cache::{Clock, Fresh, TokenCache, refresh_before};
use super::env::Environment;
use super::http::{self, CredentialHttp};
use super::{HostToken, SourceError};

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The username registries take with an access token.
pub const USERNAME: &str = "oauth2accesstoken";

/// Whether the environment shows a Google identity (for `enabled: auto`).
pub fn identity_present(env: &Environment) -> bool {
    env.var("GOOGLE_APPLICATION_CREDENTIALS").is_some()
        || env.var("GCE_METADATA_HOST").is_some()
        || env
            .dmi("product_name")
            .is_some_and(|p| p == "Google Compute Engine" || p == "Google")
}

/// The Google credential source.
pub struct Google {
    env: Environment,
    http: CredentialHttp,
    tokens: TokenCache<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ImpersonationAnswer {
    #[serde(rename = "accessToken")]
    access_token: String,
    #[serde(rename = "expireTime")]
    expire_time: String,
}

/// A `GOOGLE_APPLICATION_CREDENTIALS` file.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum CredentialsFile {
    ServiceAccount {
        client_email: String,
        private_key: String,
        #[serde(default)]
        private_key_id: Option<String>,
        #[serde(default = "default_token_uri")]
        token_uri: String,
    },
    ExternalAccount {
        audience: String,
        subject_token_type: String,
        #[serde(default = "default_sts_uri")]
        token_url: String,
        credential_source: CredentialSource,
        #[serde(default)]
        service_account_impersonation_url: Option<String>,
    },
}

#[derive(Deserialize)]
struct CredentialSource {
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    format: Option<SourceFormat>,
}

#[derive(Deserialize)]
struct SourceFormat {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    subject_token_field_name: Option<String>,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

fn default_sts_uri() -> String {
    "https://sts.googleapis.com/v1/token".into()
}

impl Google {
    /// The source in `env`.
    pub fn new(env: &Environment, http: CredentialHttp, clock: Arc<dyn Clock>, retry: Duration) -> Self {
        Google {
            env: env.clone(),
            http,
            tokens: TokenCache::new("google", clock, retry),
        }
    }

    async fn token(&self) -> Result<String, SourceError> {
        self.tokens
            .get("google-identity", || async {
                let now = self.tokens.clock().now();
                let (token, expires) = match self.env.var("GOOGLE_APPLICATION_CREDENTIALS") {
                    Some(path) => self.credentials_file_token(path, now).await?,
                    None => self.metadata_token(now).await?,
                };
                Ok(Fresh {
                    value: token,
                    refresh_at: Some(refresh_before(expires, now)),
                })
            })
            .await
    }

    async fn metadata_token(&self, now: SystemTime) -> Result<(String, SystemTime), SourceError> {
        let host = self.env.var("GCE_METADATA_HOST").unwrap_or("169.254.169.254");
        let url = format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/token");
        let what = format!("GCE metadata server at {host}");
        let (headers, body) =
            http::send(self.http.direct().get(&url).header("Metadata-Flavor", "Google"), &what).await?;
        if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
            return Err(SourceError::new(&what, "the answer lacks Metadata-Flavor: Google"));
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| SourceError::new(&what, format!("unexpected answer: {e}")))?;
        Ok((
            answer.access_token,
            now + Duration::from_secs(answer.expires_in.unwrap_or(3600)),
        ))
    }

    async fn credentials_file_token(&self, path: &str, now: SystemTime) -> Result<(String, SystemTime), SourceError> {
        let what = format!("GOOGLE_APPLICATION_CREDENTIALS {path}");
        let text = std::fs::read(path).map_err(|e| SourceError::new(&what, e))?;
        let file: CredentialsFile = serde_json::from_slice(&text)
            .map_err(|e| SourceError::new(&what, format!("not a service_account or external_account file: {e}")))?;
        match file {
            CredentialsFile::ServiceAccount {
                client_email,
                private_key,
                private_key_id,
                token_uri,
            } => {
                let assertion = jwt_assertion(&client_email, &private_key, private_key_id.as_deref(), &token_uri, now)
                    .map_err(|e| SourceError::new(&what, e))?;
                let form = [
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.as_str()),
                ];
                let what = format!("Google token endpoint {token_uri} for {client_email}");
                let answer: TokenAnswer = http::json(self.http.direct().post(&token_uri).form(&form), &what).await?;
                Ok((
                    answer.access_token,
                    now + Duration::from_secs(answer.expires_in.unwrap_or(3600)),
                ))
            }
            CredentialsFile::ExternalAccount {
                audience,
                subject_token_type,
                token_url,
                credential_source,
                service_account_impersonation_url,
            } => {
                let subject = subject_token(&credential_source).map_err(|e| SourceError::new(&what, e))?;
                let form = [
                    ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                    ("audience", audience.as_str()),
                    ("scope", SCOPE),
                    ("requested_token_type", "urn:ietf:params:oauth:token-type:access_token"),
                    ("subject_token", subject.as_str()),
                    ("subject_token_type", subject_token_type.as_str()),
                ];
                let sts_what = format!("Google STS {token_url}");
                let federated: TokenAnswer =
                    http::json(self.http.direct().post(&token_url).form(&form), &sts_what).await?;
                let Some(impersonate) = service_account_impersonation_url else {
                    return Ok((
                        federated.access_token,
                        now + Duration::from_secs(federated.expires_in.unwrap_or(3600)),
                    ));
                };
                let what = format!("service account impersonation {impersonate}");
                let answer: ImpersonationAnswer = http::json(
                    self.http
                        .direct()
                        .post(&impersonate)
                        .bearer_auth(&federated.access_token)
                        .json(&serde_json::json!({"scope": [SCOPE], "lifetime": "3600s"})),
                    &what,
                )
                .await?;
                let expires = super::aws::parse_time(&answer.expire_time).map_err(|e| SourceError::new(&what, e))?;
                Ok((answer.access_token, expires))
            }
        }
    }
}

/// Why a credential file gives no subject token or no signed assertion.
#[derive(Debug, thiserror::Error)]
enum GoogleFileError {
    /// The `credential_source` is not a file.
    #[error("credential_source: only file-sourced subject tokens are supported (credential_source.file)")]
    NotAFile,
    /// The token file cannot be read.
    #[error("credential_source.file {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// A JSON token file names no field.
    #[error("credential_source.format.subject_token_field_name is required for json")]
    NoFieldName,
    /// The JSON token file is no JSON.
    #[error("credential_source.file {file}: {source}")]
    Json {
        /// The file.
        file: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The JSON token file lacks the field.
    #[error("credential_source.file {file} has no string field {field:?}")]
    NoField {
        /// The file.
        file: String,
        /// The field.
        field: String,
    },
    /// The service account's private key cannot be read.
    #[error("private_key: {0}")]
    PrivateKey(String),
    /// Signing failed.
    #[error("cannot sign with private_key")]
    Sign,
}

/// The subject token of a file-sourced `credential_source` (text, or a JSON field).
fn subject_token(source: &CredentialSource) -> Result<String, GoogleFileError> {
    let file = source.file.as_deref().ok_or(GoogleFileError::NotAFile)?;
    let text = std::fs::read_to_string(file).map_err(|source| GoogleFileError::Read {
        file: file.to_string(),
        source,
    })?;
    match &source.format {
        Some(f) if f.kind == "json" => {
            let field = f
                .subject_token_field_name
                .as_deref()
                .ok_or(GoogleFileError::NoFieldName)?;
            let value: serde_json::Value = serde_json::from_str(&text).map_err(|source| GoogleFileError::Json {
                file: file.to_string(),
                source,
            })?;
            value
                .get(field)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| GoogleFileError::NoField {
                    file: file.to_string(),
                    field: field.to_string(),
                })
        }
        _ => Ok(text.trim().to_string()),
    }
}

/// The signed JWT of the service-account grant (RFC 7523), RS256.
fn jwt_assertion(
    email: &str,
    pem: &str,
    key_id: Option<&str>,
    audience: &str,
    now: SystemTime,
) -> Result<String, GoogleFileError> {
    use rustls_pki_types::PrivatePkcs8KeyDer;
    use rustls_pki_types::pem::PemObject as _;
    let der =
        PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| GoogleFileError::PrivateKey(e.to_string()))?;
    let key = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|e| GoogleFileError::PrivateKey(e.to_string()))?;
    let iat = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = key_id {
        header["kid"] = kid.into();
    }
    let claims = serde_json::json!({"iss": email, "scope": SCOPE, "aud": audience, "iat": iat, "exp": iat + 3600});
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!("{}.{}", b64.encode(header.to_string()), b64.encode(claims.to_string()));
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| GoogleFileError::Sign)?;
    Ok(format!("{input}.{}", b64.encode(signature)))
}

impl HostToken for Google {
    const NAME: &'static str = "google";

    fn token<'a>(&'a self, _registry: &'a str) -> BoxFuture<'a, Result<(String, String), SourceError>> {
        Box::pin(async move { Ok((USERNAME.to_string(), self.token().await?)) })
    }
}
