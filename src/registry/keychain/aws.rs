//! The webhook's AWS identity, found the way the AWS SDKs' default chain
//! finds it: environment keys, IRSA (web identity token file + role ARN →
//! STS `AssumeRoleWithWebIdentity`), the container credentials endpoint
//! (EKS Pod Identity, ECS), then EC2 instance metadata (IMDSv2).
//!
//! Endpoint overrides are the SDKs' own variables: `AWS_ENDPOINT_URL_STS`
//! (or `AWS_ENDPOINT_URL`), `AWS_EC2_METADATA_SERVICE_ENDPOINT`,
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::SourceError;
use super::cache::{Clock, Fresh, TokenCache, refresh_before};
use super::env::Environment;
use super::http::{self, CredentialHttp};

/// Temporary (or long-term) AWS credentials.
#[derive(Clone)]
pub struct AwsCredentials {
    /// `AKIA…`/`ASIA…`.
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
    /// When they expire (`None`: long-term keys).
    pub expires: Option<SystemTime>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Whether the environment shows an AWS identity (for `enabled: auto`).
pub fn identity_present(env: &Environment) -> bool {
    (env.var("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() && env.var("AWS_ROLE_ARN").is_some())
        || env.var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
        || env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || env.var("AWS_ACCESS_KEY_ID").is_some()
        || env.dmi("sys_vendor").as_deref() == Some("Amazon EC2")
}

/// The webhook's AWS identity, cached until shortly before it expires.
pub struct AwsIdentity {
    env: Environment,
    http: CredentialHttp,
    cache: TokenCache<AwsCredentials>,
}

/// How long long-term keys from the environment are used before the
/// environment is read again (it does not change; this keeps one code path).
const STATIC_KEYS_REFRESH: Duration = Duration::from_secs(3600);

impl AwsIdentity {
    /// The identity of `env` (failures are kept and reported by the caller's cache).
    pub fn new(env: &Environment, http: CredentialHttp, clock: Arc<dyn Clock>) -> Self {
        AwsIdentity {
            env: env.clone(),
            http,
            cache: TokenCache::inner(clock),
        }
    }

    /// The credentials; `region` picks the regional STS endpoint.
    pub async fn credentials(&self, region: &str) -> Result<AwsCredentials, SourceError> {
        self.cache
            .get("aws-identity", || async {
                let now = self.cache.clock().now();
                let creds = self.fetch(region).await?;
                let refresh_at = match creds.expires {
                    Some(expires) => refresh_before(expires, now),
                    None => now + STATIC_KEYS_REFRESH,
                };
                Ok(Fresh {
                    value: creds,
                    refresh_at: Some(refresh_at),
                })
            })
            .await
    }

    async fn fetch(&self, region: &str) -> Result<AwsCredentials, SourceError> {
        let env = &self.env;
        if let (Some(id), Some(secret)) = (env.var("AWS_ACCESS_KEY_ID"), env.var("AWS_SECRET_ACCESS_KEY")) {
            return Ok(AwsCredentials {
                access_key_id: id.to_string(),
                secret_access_key: secret.to_string(),
                session_token: env.var("AWS_SESSION_TOKEN").map(str::to_string),
                expires: None,
            });
        }
        if let (Some(file), Some(role)) = (env.var("AWS_WEB_IDENTITY_TOKEN_FILE"), env.var("AWS_ROLE_ARN")) {
            return self.web_identity(file, role, region).await;
        }
        if env.var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
            || env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        {
            return self.container().await;
        }
        if env
            .var("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(SourceError(
                "no AWS credentials: no IRSA, Pod Identity or environment keys, and AWS_EC2_METADATA_DISABLED is set"
                    .into(),
            ));
        }
        self.imds().await
    }

    /// IRSA: STS `AssumeRoleWithWebIdentity` (an unsigned query API call).
    async fn web_identity(
        &self,
        token_file: &str,
        role_arn: &str,
        region: &str,
    ) -> Result<AwsCredentials, SourceError> {
        let token = http::read_token_file(token_file, "AWS_WEB_IDENTITY_TOKEN_FILE")?;
        let session = self
            .env
            .var("AWS_ROLE_SESSION_NAME")
            .map_or_else(|| "entrypoint-guard".to_string(), str::to_string);
        let region = self
            .env
            .var("AWS_REGION")
            .or_else(|| self.env.var("AWS_DEFAULT_REGION"))
            .unwrap_or(region);
        let endpoint = endpoint_override(&self.env, "STS")
            .unwrap_or_else(|| format!("https://sts.{region}.{}", aws_domain(region)));
        let form = [
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn),
            ("RoleSessionName", session.as_str()),
            ("WebIdentityToken", token.as_str()),
        ];
        let what = format!("STS AssumeRoleWithWebIdentity at {endpoint} for {role_arn}");
        let body = http::text(self.http.direct().post(&endpoint).form(&form), &what).await?;
        parse_sts_credentials(&body).map_err(|e| SourceError::new(&what, e))
    }

    /// EKS Pod Identity / ECS: the container credentials endpoint.
    async fn container(&self) -> Result<AwsCredentials, SourceError> {
        let env = &self.env;
        let uri = match (
            env.var("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        ) {
            (_, Some(relative)) => format!("http://169.254.170.2{relative}"),
            (Some(full), None) => full.to_string(),
            (None, None) => unreachable!("checked by the caller"),
        };
        check_container_uri(&uri)?;
        let mut request = self.http.direct().get(&uri);
        let token = match env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(file) => Some(http::read_token_file(file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")?),
            None => env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(str::to_string),
        };
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        let what = format!("container credentials at {uri}");
        let creds: JsonCredentials = http::json(request, &what).await?;
        creds.into_credentials(&what)
    }

    /// IMDSv2: a session token by PUT, then the role's credentials.
    async fn imds(&self) -> Result<AwsCredentials, SourceError> {
        let base = self
            .env
            .var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or("http://169.254.169.254")
            .trim_end_matches('/')
            .to_string();
        let what = format!("EC2 instance metadata at {base}");
        let client = self.http.direct();
        let token = http::text(
            client
                .put(format!("{base}/latest/api/token"))
                .header("X-aws-ec2-metadata-token-ttl-seconds", "21600"),
            &what,
        )
        .await?;
        let roles = http::text(
            client
                .get(format!("{base}/latest/meta-data/iam/security-credentials/"))
                .header("X-aws-ec2-metadata-token", &token),
            &what,
        )
        .await?;
        let role = roles
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .ok_or_else(|| SourceError::new(&what, "the instance has no IAM role"))?;
        let creds: JsonCredentials = http::json(
            client
                .get(format!("{base}/latest/meta-data/iam/security-credentials/{role}"))
                .header("X-aws-ec2-metadata-token", &token),
            &what,
        )
        .await?;
        creds.into_credentials(&what)
    }
}

/// `AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL`, as the SDKs read them.
pub fn endpoint_override(env: &Environment, service: &str) -> Option<String> {
    env.var(&format!("AWS_ENDPOINT_URL_{service}"))
        .or_else(|| env.var("AWS_ENDPOINT_URL"))
        .map(|u| u.trim_end_matches('/').to_string())
}

/// `amazonaws.com`, or `amazonaws.com.cn` in the China regions.
pub fn aws_domain(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

/// The SDKs' rule for a plain-HTTP container credentials URI: only loopback
/// and the ECS and EKS Pod Identity agent addresses.
fn check_container_uri(uri: &str) -> Result<(), SourceError> {
    let url = reqwest::Url::parse(uri).map_err(|e| SourceError::new(format!("container credentials URI {uri}"), e))?;
    if url.scheme() == "https" {
        return Ok(());
    }
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let allowed = host == "localhost"
        || host.parse::<IpAddr>().is_ok_and(|ip| {
            ip.is_loopback()
                || ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"]
                    .iter()
                    .any(|a| a.parse::<IpAddr>().ok() == Some(ip))
        });
    if url.scheme() == "http" && allowed {
        Ok(())
    } else {
        Err(SourceError(format!(
            "container credentials URI {uri}: plain HTTP is allowed only to loopback, 169.254.170.2, 169.254.170.23 or fd00:ec2::23"
        )))
    }
}

/// The JSON of the container endpoint and of IMDS.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonCredentials {
    #[serde(default)]
    code: Option<String>,
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
}

impl JsonCredentials {
    fn into_credentials(self, what: &str) -> Result<AwsCredentials, SourceError> {
        if let Some(code) = self.code.as_deref().filter(|c| *c != "Success") {
            return Err(SourceError::new(what, format!("Code {code}")));
        }
        let expires = self
            .expiration
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(|e| SourceError::new(what, e))?;
        Ok(AwsCredentials {
            access_key_id: self.access_key_id,
            secret_access_key: self.secret_access_key,
            session_token: self.token,
            expires,
        })
    }
}

/// A time in a credential answer that is not RFC 3339 or out of range.
#[derive(Debug, thiserror::Error)]
#[error("bad time {value:?}: {reason}")]
pub struct TimeError {
    /// What the answer said.
    pub value: String,
    /// Why it is no time.
    pub reason: String,
}

/// An RFC 3339 time (`2026-01-02T03:04:05Z`).
pub fn parse_time(s: &str) -> Result<SystemTime, TimeError> {
    let bad = |reason: String| TimeError {
        value: s.to_string(),
        reason,
    };
    let t = aws_smithy_types::DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime)
        .map_err(|e| bad(e.to_string()))?;
    SystemTime::try_from(t).map_err(|e| bad(e.to_string()))
}

/// Why an STS answer holds no credentials.
#[derive(Debug, thiserror::Error)]
enum StsError {
    /// Not XML at all.
    #[error("not XML: {0}")]
    NotXml(String),
    /// XML, but not an AssumeRoleWithWebIdentityResponse (an STS error, say).
    #[error("unexpected answer <{0}>")]
    Unexpected(String),
    /// A field could not be read.
    #[error("bad XML: {0}")]
    BadXml(String),
    /// The response holds no access key and secret.
    #[error("the answer holds no Credentials")]
    NoCredentials,
    /// The expiration is no time.
    #[error(transparent)]
    Time(#[from] TimeError),
}

/// The `Credentials` of an `AssumeRoleWithWebIdentityResponse`, or why not.
fn parse_sts_credentials(xml: &str) -> Result<AwsCredentials, StsError> {
    use aws_smithy_xml::decode::{Document, try_data};
    let mut doc = Document::new(xml);
    let mut root = doc.root_element().map_err(|e| StsError::NotXml(e.to_string()))?;
    if !root.start_el().matches("AssumeRoleWithWebIdentityResponse") {
        return Err(StsError::Unexpected(root.start_el().local().to_string()));
    }
    let (mut id, mut secret, mut token, mut expiration) = (None, None, None, None);
    while let Some(mut result) = root.next_tag() {
        if !result.start_el().matches("AssumeRoleWithWebIdentityResult") {
            continue;
        }
        while let Some(mut creds) = result.next_tag() {
            if !creds.start_el().matches("Credentials") {
                continue;
            }
            while let Some(mut field) = creds.next_tag() {
                let name = field.start_el().local().to_string();
                let value = try_data(&mut field)
                    .map_err(|e| StsError::BadXml(e.to_string()))?
                    .to_string();
                match name.as_str() {
                    "AccessKeyId" => id = Some(value),
                    "SecretAccessKey" => secret = Some(value),
                    "SessionToken" => token = Some(value),
                    "Expiration" => expiration = Some(value),
                    _ => {}
                }
            }
        }
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(AwsCredentials {
            access_key_id,
            secret_access_key,
            session_token: token,
            expires: expiration.as_deref().map(parse_time).transpose()?,
        }),
        _ => Err(StsError::NoCredentials),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sts_answers() {
        let xml = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:eg:entrypoint-guard</SubjectFromWebIdentityToken>
    <Credentials>
      <SessionToken>FwoG&amp;token</SessionToken>
      <SecretAccessKey>secret</SecretAccessKey>
      <Expiration>2030-01-02T03:04:05Z</Expiration>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;
        let c = parse_sts_credentials(xml).unwrap();
        assert_eq!(c.access_key_id, "ASIAEXAMPLE");
        assert_eq!(c.session_token.as_deref(), Some("FwoG&token"));
        assert!(c.expires.is_some());
        assert!(
            parse_sts_credentials("<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>").is_err()
        );
    }

    #[test]
    fn container_uris_follow_the_sdk_rule() {
        assert!(check_container_uri("http://169.254.170.23/v1/credentials").is_ok());
        assert!(check_container_uri("http://127.0.0.1:9000/creds").is_ok());
        assert!(check_container_uri("https://creds.example.com/x").is_ok());
        assert!(check_container_uri("http://10.0.0.1/creds").is_err());
    }
}
