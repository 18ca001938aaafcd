//! The HTTP clients of the credential sources.
//!
//! [`CredentialHttp::direct`] reaches the endpoints the operator's
//! environment or configuration names (metadata servers on link-local
//! addresses, STS, token endpoints): no proxy, no redirects. Images cannot
//! name these endpoints, so the registry guard stays closed for them.
//! [`CredentialHttp::guarded`] reaches endpoints on a registry's own host
//! (ACR's `/oauth2/exchange`) through the same connection guard as the
//! registry lookups, with the configured CA files.

use std::collections::HashSet;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{KeychainError, SourceError};
use crate::config::RegistryConfig;

/// The two clients and the plain-HTTP registry list.
#[derive(Clone)]
pub struct CredentialHttp {
    direct: reqwest::Client,
    guarded: reqwest::Client,
    insecure: HashSet<String>,
}

impl CredentialHttp {
    /// Clients with `timeout` per request; `proxy_url` is the connection guard.
    pub fn new(config: &RegistryConfig, proxy_url: &str, timeout: Duration) -> Result<Self, KeychainError> {
        let user_agent = concat!("entrypoint-guard/", env!("CARGO_PKG_VERSION"));
        let base = || {
            reqwest::Client::builder()
                .user_agent(user_agent)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .connect_timeout(timeout)
        };
        let direct = base()
            .no_proxy()
            .build()
            .map_err(|e| KeychainError::Http(format!("cannot build the credential client: {e}")))?;
        let proxy = reqwest::Proxy::all(proxy_url).map_err(|e| KeychainError::Http(e.to_string()))?;
        let mut guarded = base().proxy(proxy);
        for (registry, path) in &config.ca_files {
            let pem = std::fs::read(path)
                .map_err(|e| KeychainError::Http(format!("caFiles[{registry:?}]: {}: {e}", path.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| KeychainError::Http(format!("caFiles[{registry:?}]: {e}")))?;
            guarded = guarded.add_root_certificate(cert);
        }
        let guarded = guarded
            .build()
            .map_err(|e| KeychainError::Http(format!("cannot build the guarded credential client: {e}")))?;
        Ok(CredentialHttp {
            direct,
            guarded,
            insecure: config.insecure.iter().map(|h| h.to_ascii_lowercase()).collect(),
        })
    }

    /// For endpoints named by the operator's environment or configuration.
    pub fn direct(&self) -> &reqwest::Client {
        &self.direct
    }

    /// For endpoints on a registry's host, through the connection guard.
    pub fn guarded(&self) -> &reqwest::Client {
        &self.guarded
    }

    /// `https://registry/path`, or `http://` for a `registry.insecure` host.
    pub fn registry_url(&self, registry: &str, path: &str) -> String {
        let scheme = if self.insecure.contains(&registry.to_ascii_lowercase()) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{registry}{path}")
    }
}

/// Sends `request` and returns the body of a 2xx answer; `what` names the
/// call in errors, which quote the start of an error body.
pub async fn send(
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<(reqwest::header::HeaderMap, Vec<u8>), SourceError> {
    let response = request
        .send()
        .await
        .map_err(|e| SourceError::new(what, crate::error::chain(&e)))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| SourceError::new(what, crate::error::chain(&e)))?;
    if !status.is_success() {
        let text: String = String::from_utf8_lossy(&body).trim().chars().take(200).collect();
        return Err(SourceError::new(what, format!("HTTP {status} {text}")));
    }
    Ok((headers, body.to_vec()))
}

/// [`send`], then the body as JSON of type `T`.
pub async fn json<T: DeserializeOwned>(request: reqwest::RequestBuilder, what: &str) -> Result<T, SourceError> {
    let (_, body) = send(request, what).await?;
    serde_json::from_slice(&body).map_err(|e| SourceError::new(what, format!("unexpected answer: {e}")))
}

/// [`send`], then the body as text.
pub async fn text(request: reqwest::RequestBuilder, what: &str) -> Result<String, SourceError> {
    let (_, body) = send(request, what).await?;
    String::from_utf8(body).map_err(|_| SourceError::new(what, "the answer is not UTF-8"))
}

/// Reads a token file (service account token, federated token), trimmed.
pub fn read_token_file(path: &str, what: &str) -> Result<String, SourceError> {
    let token = std::fs::read_to_string(path).map_err(|e| SourceError::new(format!("{what} {path}"), e))?;
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(SourceError::new(format!("{what} {path}"), "empty"));
    }
    Ok(token)
}
