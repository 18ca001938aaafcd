//! Credential sources that speak for the webhook's own identity, per
//! registry host: AWS ECR, Google Artifact Registry/GCR, Azure ACR, and the
//! kubelet's credential provider plugins.
//!
//! They come after pull secrets and the Docker config. Each [`Keychain`]
//! serves only the registries its patterns match, and the credential it
//! returns is bound to the exact host it was asked for
//! (`RegistryCredential::new` with that host), so a token fetched for one registry is
//! never offered to another. Tokens are cached until shortly before they
//! expire ([`TokenCache`]); a source that fails is left alone for
//! `registry.credentials.retryInterval`, logged and counted once per interval,
//! and the lookup goes on without it (anonymous when nothing else matches).
//!
//! The cloud endpoints (metadata servers, STS, token endpoints) are named by
//! the operator's environment or configuration, never by an image, and are
//! reached with [`http::CredentialHttp::direct`]; an endpoint derived from an
//! image's host (ACR's `/oauth2/exchange`) goes through the same connection
//! guard as the registry itself.

pub mod aws;
pub mod azure;
pub mod cache;
pub mod ecr;
pub mod env;
pub mod google;
pub mod http;
pub mod matcher;
pub mod plugin;

use std::sync::Arc;

use futures::future::BoxFuture;

pub use cache::{Clock, ManualClock, SystemClock, TokenCache};
pub use env::Environment;
pub use matcher::ImageMatcher;

use super::docker_config::RegistryCredential;
use crate::config::{HostPattern, RegistryConfig, Toggle};
use crate::image::reference::Reference;

/// Why a source could not give a credential, worded for the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl SourceError {
    /// An error with context: `what: why`.
    pub fn new(what: impl std::fmt::Display, why: impl std::fmt::Display) -> Self {
        SourceError(format!("{what}: {why}"))
    }
}

/// A configuration of the credential sources that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    /// The kubelet plugin configuration is unusable.
    #[error("registry.credentials.kubeletPlugins: {0}")]
    Plugins(String),
    /// An HTTP client could not be built.
    #[error("registry.credentials: {0}")]
    Http(String),
}

/// One credential source for the registries it serves.
pub trait Keychain: Send + Sync {
    /// The source's name in logs and metrics (`ecr`, `google`, `azure`, `plugin/NAME`).
    fn name(&self) -> &str;

    /// Whether the source serves `reference` (cheap, no I/O).
    fn serves(&self, reference: &Reference) -> bool;

    /// Credentials for `reference`, bound to its registry host; `Ok(vec![])`
    /// when the source has none for it.
    fn credentials<'a>(
        &'a self,
        reference: &'a Reference,
    ) -> BoxFuture<'a, Result<Vec<RegistryCredential>, SourceError>>;
}

/// A cloud source: one username and token per registry host.
pub trait HostToken: Send + Sync {
    /// The source's name in logs and metrics.
    const NAME: &'static str;

    /// The username and token for `registry`.
    fn token<'a>(&'a self, registry: &'a str) -> BoxFuture<'a, Result<(String, String), SourceError>>;
}

/// A [`HostToken`] source serving the registries its patterns match; its
/// credential is bound to the exact registry host it was fetched for.
pub struct CloudKeychain<T> {
    matcher: ImageMatcher,
    source: T,
}

impl<T: HostToken> CloudKeychain<T> {
    /// `source` for the registries `patterns` match (checked when read).
    pub fn new(patterns: &[HostPattern], source: T) -> Self {
        let patterns: Vec<&str> = patterns.iter().map(|p| p.0.as_str()).collect();
        CloudKeychain {
            matcher: ImageMatcher::new(&patterns).expect("patterns were checked when read"),
            source,
        }
    }
}

impl<T: HostToken> Keychain for CloudKeychain<T> {
    fn name(&self) -> &str {
        T::NAME
    }

    fn serves(&self, reference: &Reference) -> bool {
        self.matcher.matches_reference(reference)
    }

    fn credentials<'a>(
        &'a self,
        reference: &'a Reference,
    ) -> BoxFuture<'a, Result<Vec<RegistryCredential>, SourceError>> {
        Box::pin(async move {
            let registry = reference.registry();
            let (user, token) = self.source.token(registry).await?;
            Ok(vec![RegistryCredential::new(registry, &user, &token, T::NAME)])
        })
    }
}

/// The sources enabled by configuration and environment, asked in order.
#[derive(Clone, Default)]
pub struct Keychains {
    sources: Vec<Arc<dyn Keychain>>,
}

impl Keychains {
    /// The given sources, asked in this order.
    pub fn new(sources: Vec<Arc<dyn Keychain>>) -> Self {
        Keychains { sources }
    }

    /// Builds the sources `config.credentials` enables in `env`; `proxy_url`
    /// is the connection guard for endpoints on registry hosts.
    pub fn from_config(
        config: &RegistryConfig,
        env: &Environment,
        clock: Arc<dyn Clock>,
        proxy_url: &str,
    ) -> Result<Self, KeychainError> {
        let creds = &config.credentials;
        let retry = creds.retry_interval.get();
        let ecr = enabled(creds.ecr.enabled, || aws::identity_present(env));
        let google = enabled(creds.google.enabled, || google::identity_present(env));
        let azure = enabled(creds.azure.enabled, || azure::identity_present(env));
        let mut sources: Vec<Arc<dyn Keychain>> = Vec::new();
        // The HTTP clients only when a cloud source needs them (they load the system roots).
        if ecr || google || azure {
            let http = http::CredentialHttp::new(config, proxy_url, config.lookup_timeout.get())?;
            if ecr {
                let source = ecr::Ecr::new(&creds.ecr, env, http.clone(), clock.clone(), retry);
                sources.push(Arc::new(CloudKeychain::new(&creds.ecr.registries, source)));
            }
            if google {
                let source = google::Google::new(env, http.clone(), clock.clone(), retry);
                sources.push(Arc::new(CloudKeychain::new(&creds.google.registries, source)));
            }
            if azure {
                let source = azure::Azure::new(&creds.azure, env, http.clone(), clock.clone(), retry);
                sources.push(Arc::new(CloudKeychain::new(&creds.azure.registries, source)));
            }
        }
        if let Some(path) = &creds.kubelet_plugins.config {
            for plugin in plugin::load(path, &creds.kubelet_plugins, env, clock.clone(), retry)? {
                sources.push(Arc::new(plugin));
            }
        }
        for source in &sources {
            tracing::info!(source = source.name(), "registry credential source enabled");
        }
        Ok(Keychains { sources })
    }

    /// Every credential the sources serving `reference` give, in source
    /// order. A failing source is skipped (it reports itself).
    pub async fn credentials(&self, reference: &Reference) -> Vec<RegistryCredential> {
        let mut out = Vec::new();
        for source in self.sources.iter().filter(|s| s.serves(reference)) {
            match source.credentials(reference).await {
                Ok(creds) => out.extend(creds),
                Err(e) => {
                    tracing::debug!(source = source.name(), image = %reference.canonical(), reason = %e, "credential source skipped")
                }
            }
        }
        out
    }

    /// The names of the sources, in order.
    pub fn names(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.name().to_string()).collect()
    }
}

fn enabled(toggle: Toggle, present: impl FnOnce() -> bool) -> bool {
    match toggle {
        Toggle::On => true,
        Toggle::Off => false,
        Toggle::Auto => present(),
    }
}

/// Failures counted per source, for the `/metrics` endpoint
/// (`entrypoint_guard_registry_credential_failures_total{source}`).
pub fn failure_metric()
-> &'static prometheus_client::metrics::family::Family<SourceLabel, prometheus_client::metrics::counter::Counter> {
    static FAILURES: std::sync::LazyLock<
        prometheus_client::metrics::family::Family<SourceLabel, prometheus_client::metrics::counter::Counter>,
    > = std::sync::LazyLock::new(Default::default);
    &FAILURES
}

/// The label of [`failure_metric`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct SourceLabel {
    /// The source's name.
    pub source: String,
}

/// Records a new failure of `source`: one log line and one count (the
/// caller calls it once per retry interval).
pub(crate) fn report_failure(source: &str, key: &str, error: &SourceError, retry: std::time::Duration) {
    tracing::warn!(source, registry = key, reason = %error, retry_in_s = retry.as_secs(),
        "registry credential source failed; lookups go on without it");
    failure_metric()
        .get_or_create(&SourceLabel {
            source: source.to_string(),
        })
        .inc();
}
