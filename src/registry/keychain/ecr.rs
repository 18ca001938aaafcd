//! AWS ECR: `GetAuthorizationToken` (JSON 1.1 API, SigV4-signed) with the
//! webhook's AWS identity; the token (`AWS:password`, valid 12 hours) is
//! cached per regional endpoint until shortly before it expires.
//!
//! IAM: `ecr:GetAuthorizationToken`, `ecr:BatchGetImage`, `ecr:GetDownloadUrlForLayer`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use futures::future::BoxFuture;
use serde::Deserialize;

use super::aws::{AwsCredentials, AwsIdentity, aws_domain, endpoint_override};
use super::cache::{Clock, Fresh, TokenCache, refresh_before};
use super::env::Environment;
use super::http::{self, CredentialHttp};
use super::{HostToken, SourceError};
use crate::config::credentials::EcrConfig;

const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";

/// The ECR credential source.
pub struct Ecr {
    region: Option<String>,
    env: Environment,
    http: CredentialHttp,
    identity: AwsIdentity,
    tokens: TokenCache<(String, String)>,
}

impl Ecr {
    /// The source for `config` in `env`.
    pub fn new(
        config: &EcrConfig,
        env: &Environment,
        http: CredentialHttp,
        clock: Arc<dyn Clock>,
        retry: Duration,
    ) -> Self {
        Ecr {
            region: config.region.as_ref().map(|r| r.0.clone()).or_else(|| {
                env.var("AWS_REGION")
                    .or_else(|| env.var("AWS_DEFAULT_REGION"))
                    .map(str::to_string)
            }),
            env: env.clone(),
            identity: AwsIdentity::new(env, http.clone(), clock.clone()),
            http,
            tokens: TokenCache::new("ecr", clock, retry),
        }
    }

    /// The ECR API endpoint and region for `registry`.
    fn endpoint(&self, registry: &str) -> Result<(String, String), SourceError> {
        let host = ecr_host(registry);
        let region = host
            .as_ref()
            .map(|h| h.region.clone())
            .or_else(|| self.region.clone())
            .ok_or_else(|| {
                SourceError(format!(
                    "{registry} names no AWS region: set registry.credentials.ecr.region or AWS_REGION"
                ))
            })?;
        let endpoint = endpoint_override(&self.env, "ECR").unwrap_or_else(|| match host {
            Some(h) if h.fips => format!("https://ecr-fips.{region}.{}", aws_domain(&region)),
            _ => format!("https://api.ecr.{region}.{}", aws_domain(&region)),
        });
        Ok((endpoint, region))
    }

    async fn token(&self, registry: &str) -> Result<(String, String), SourceError> {
        let (endpoint, region) = self.endpoint(registry)?;
        self.tokens
            .get(&endpoint, || async {
                let creds = self.identity.credentials(&region).await?;
                let now = self.tokens.clock().now();
                let (user, password, expires) = self.get_authorization_token(&endpoint, &region, &creds).await?;
                Ok(Fresh {
                    value: (user, password),
                    refresh_at: Some(refresh_before(expires, now)),
                })
            })
            .await
    }

    async fn get_authorization_token(
        &self,
        endpoint: &str,
        region: &str,
        creds: &AwsCredentials,
    ) -> Result<(String, String, SystemTime), SourceError> {
        let what = format!("ECR GetAuthorizationToken at {endpoint}");
        let url = format!("{endpoint}/");
        let body = b"{}".to_vec();
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", TARGET)];
        let signed = sign(&url, &headers, &body, region, creds, self.tokens.clock().now())
            .map_err(|e| SourceError::new(&what, e))?;
        let mut request = self.http.direct().post(&url).body(body);
        for (name, value) in headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .chain(signed)
        {
            request = request.header(name, value);
        }
        let answer: TokenAnswer = http::json(request, &what).await?;
        let data = answer
            .authorization_data
            .into_iter()
            .next()
            .ok_or_else(|| SourceError::new(&what, "no authorizationData"))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(data.authorization_token.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| SourceError::new(&what, "authorizationToken is not base64 text"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| SourceError::new(&what, "authorizationToken is not user:password"))?;
        let expires = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(data.expires_at.max(0.0));
        Ok((user.to_string(), password.to_string(), expires))
    }
}

impl HostToken for Ecr {
    const NAME: &'static str = "ecr";

    fn token<'a>(&'a self, registry: &'a str) -> BoxFuture<'a, Result<(String, String), SourceError>> {
        Box::pin(self.token(registry))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenAnswer {
    authorization_data: Vec<AuthorizationData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorizationData {
    authorization_token: String,
    expires_at: f64,
}

/// What an ECR registry host says: `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`
/// or the dual-stack `<account>.dkr-ecr[-fips].<region>.on.aws`.
#[derive(Debug, PartialEq, Eq)]
pub struct EcrHost {
    /// The 12-digit account.
    pub account: String,
    /// The region.
    pub region: String,
    /// A FIPS endpoint.
    pub fips: bool,
}

/// Parses an ECR registry host; `None` for any other host.
pub fn ecr_host(registry: &str) -> Option<EcrHost> {
    let labels: Vec<&str> = registry.split('.').collect();
    let account = labels
        .first()
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))?;
    let (fips, region) = match labels.as_slice() {
        [
            _,
            "dkr",
            kind @ ("ecr" | "ecr-fips"),
            region,
            "amazonaws",
            "com",
            rest @ ..,
        ] if rest.is_empty() || rest == ["cn"] => (*kind == "ecr-fips", *region),
        [_, kind @ ("dkr-ecr" | "dkr-ecr-fips"), region, "on", "aws"] => (*kind == "dkr-ecr-fips", *region),
        _ => return None,
    };
    crate::config::Region::parse(region).ok()?;
    Some(EcrHost {
        account: account.to_string(),
        region: region.to_string(),
        fips,
    })
}

/// The SigV4 headers (`authorization`, `x-amz-date`, `x-amz-security-token`)
/// for a POST of `body` to `url` with `headers`.
fn sign(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    region: &str,
    creds: &AwsCredentials,
    now: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity = aws_credential_types::Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.clone(),
        creds.session_token.clone(),
        creds.expires,
        "entrypoint-guard",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("ecr")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new("POST", url, headers.iter().copied(), SignableBody::Bytes(body))
        .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params).map_err(|e| e.to_string())?.into_parts();
    Ok(instructions
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ecr_hosts() {
        assert_eq!(
            ecr_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some(EcrHost {
                account: "123456789012".into(),
                region: "eu-west-1".into(),
                fips: false
            })
        );
        assert!(
            ecr_host("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com")
                .unwrap()
                .fips
        );
        assert_eq!(
            ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn")
                .unwrap()
                .region,
            "cn-north-1"
        );
        assert_eq!(
            ecr_host("123456789012.dkr-ecr.us-west-2.on.aws").unwrap().region,
            "us-west-2"
        );
        assert_eq!(ecr_host("12345.dkr.ecr.eu-west-1.amazonaws.com"), None);
        assert_eq!(ecr_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.io"), None);
        assert_eq!(ecr_host("ghcr.io"), None);
    }
}
