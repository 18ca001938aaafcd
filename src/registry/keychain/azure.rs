//! Azure Container Registry: an Entra token for the webhook's identity —
//! AKS Workload Identity (the federated token file as client assertion) or,
//! as fallback, the managed identity from instance metadata — exchanged at
//! `https://<registry>/oauth2/exchange` for an ACR refresh token, used as the
//! password of the all-zero user. IAM: the `AcrPull` role on the registry.
//!
//! Overrides: `AZURE_AUTHORITY_HOST` (Entra), `AZURE_POD_IDENTITY_AUTHORITY_HOST`
//! (instance metadata), as the Azure SDKs read them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use futures::future::BoxFuture;
use serde::Deserialize;

use super::cache::{Clock, Fresh, TokenCache, refresh_before};
use super::env::Environment;
use super::http::{self, CredentialHttp};
use super::{HostToken, SourceError};
use crate::config::credentials::AzureConfig;

/// The username ACR takes with a refresh token.
pub const USERNAME: &str = "00000000-0000-0000-0000-000000000000";
/// Azure's DMI chassis asset tag.
const AZURE_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";

/// Whether the environment shows an Azure identity (for `enabled: auto`).
pub fn identity_present(env: &Environment) -> bool {
    workload_identity(env).is_some() || env.dmi("chassis_asset_tag").as_deref() == Some(AZURE_ASSET_TAG)
}

/// AKS Workload Identity's variables: (client id, tenant id, token file).
fn workload_identity(env: &Environment) -> Option<(&str, &str, &str)> {
    Some((
        env.var("AZURE_CLIENT_ID")?,
        env.var("AZURE_TENANT_ID")?,
        env.var("AZURE_FEDERATED_TOKEN_FILE")?,
    ))
}

/// The ACR credential source.
pub struct Azure {
    scope: String,
    env: Environment,
    http: CredentialHttp,
    entra: TokenCache<(String, SystemTime)>,
    refresh_tokens: TokenCache<String>,
}

#[derive(Deserialize)]
struct EntraAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ExchangeAnswer {
    refresh_token: String,
}

impl Azure {
    /// The source for `config` in `env`.
    pub fn new(
        config: &AzureConfig,
        env: &Environment,
        http: CredentialHttp,
        clock: Arc<dyn Clock>,
        retry: Duration,
    ) -> Self {
        Azure {
            scope: config.scope.clone(),
            env: env.clone(),
            http,
            entra: TokenCache::inner(clock.clone()),
            refresh_tokens: TokenCache::new("azure", clock, retry),
        }
    }

    /// The Entra access token and when it expires.
    async fn entra_token(&self) -> Result<(String, SystemTime), SourceError> {
        let now = self.entra.clock().now();
        self.entra
            .get("entra", || async {
                let (token, expires) = match workload_identity(&self.env) {
                    Some((client, tenant, file)) => self.federated(client, tenant, file, now).await?,
                    None => self.managed_identity(now).await?,
                };
                Ok(Fresh {
                    value: (token, expires),
                    refresh_at: Some(refresh_before(expires, now)),
                })
            })
            .await
    }

    async fn federated(
        &self,
        client: &str,
        tenant: &str,
        file: &str,
        now: SystemTime,
    ) -> Result<(String, SystemTime), SourceError> {
        let assertion = http::read_token_file(file, "AZURE_FEDERATED_TOKEN_FILE")?;
        let authority = self
            .env
            .var("AZURE_AUTHORITY_HOST")
            .unwrap_or("https://login.microsoftonline.com/")
            .trim_end_matches('/');
        let url = format!("{authority}/{tenant}/oauth2/v2.0/token");
        let form = [
            ("client_id", client),
            ("scope", self.scope.as_str()),
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ];
        let what = format!("Entra token endpoint {url} for client {client}");
        let answer: EntraAnswer = http::json(self.http.direct().post(&url).form(&form), &what).await?;
        Ok((answer.access_token, now + expires_in(answer.expires_in.as_ref())))
    }

    async fn managed_identity(&self, now: SystemTime) -> Result<(String, SystemTime), SourceError> {
        let base = self
            .env
            .var("AZURE_POD_IDENTITY_AUTHORITY_HOST")
            .unwrap_or("http://169.254.169.254")
            .trim_end_matches('/');
        let resource = self.scope.trim_end_matches("/.default");
        let mut query = vec![("api-version", "2018-02-01"), ("resource", resource)];
        if let Some(client) = self.env.var("AZURE_CLIENT_ID") {
            query.push(("client_id", client));
        }
        let what = format!("Azure instance metadata at {base}");
        let answer: EntraAnswer = http::json(
            self.http
                .direct()
                .get(format!("{base}/metadata/identity/oauth2/token"))
                .query(&query)
                .header("Metadata", "true"),
            &what,
        )
        .await?;
        Ok((answer.access_token, now + expires_in(answer.expires_in.as_ref())))
    }

    async fn refresh_token(&self, registry: &str) -> Result<String, SourceError> {
        self.refresh_tokens
            .get(registry, || async {
                let now = self.refresh_tokens.clock().now();
                let (access_token, entra_expires) = self.entra_token().await?;
                let url = self.http.registry_url(registry, "/oauth2/exchange");
                let mut form = vec![
                    ("grant_type", "access_token"),
                    ("service", registry),
                    ("access_token", access_token.as_str()),
                ];
                if let Some(tenant) = self.env.var("AZURE_TENANT_ID") {
                    form.push(("tenant", tenant));
                }
                let what = format!("ACR token exchange at {url}");
                // The registry's own host: through the connection guard.
                let answer: ExchangeAnswer = http::json(self.http.guarded().post(&url).form(&form), &what).await?;
                let expires = jwt_expiry(&answer.refresh_token).unwrap_or(entra_expires);
                Ok(Fresh {
                    value: answer.refresh_token,
                    refresh_at: Some(refresh_before(expires, now)),
                })
            })
            .await
    }
}

/// `expires_in` as a number or a string of digits (instance metadata); 1 hour when absent.
fn expires_in(value: Option<&serde_json::Value>) -> Duration {
    let secs = match value {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    Duration::from_secs(secs.unwrap_or(3600))
}

/// The `exp` claim of a JWT (read, not verified: the registry verifies it).
fn jwt_expiry(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(claims.get("exp")?.as_u64()?))
}

impl HostToken for Azure {
    const NAME: &'static str = "azure";

    fn token<'a>(&'a self, registry: &'a str) -> BoxFuture<'a, Result<(String, String), SourceError>> {
        Box::pin(async move { Ok((USERNAME.to_string(), self.refresh_token(registry).await?)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_expiries() {
        assert_eq!(
            expires_in(Some(&serde_json::json!("86399"))),
            Duration::from_secs(86399)
        );
        assert_eq!(expires_in(Some(&serde_json::json!(3599))), Duration::from_secs(3599));
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!("{}.{}.sig", b64.encode("{}"), b64.encode(r#"{"exp":2000000000}"#));
        assert_eq!(
            jwt_expiry(&token),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        assert_eq!(jwt_expiry("opaque"), None);
    }
}
