//! [`RegistryResolver`]: image facts from registries, behind the [`Resolver`] trait.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use oci_client::secrets::RegistryAuth;

use super::cache::{CacheKey, FactsCache, Outcome};
use super::clients::{ANONYMOUS, ClientPool};
use super::credentials::CredentialSource;
use super::docker_config::RegistryCredential;
use super::fetch::{self, LookupError};
use super::guard::{AccessPolicy, split_host_port};
use super::keychain::{Clock, Environment, KeychainError, Keychains, SystemClock};
use super::limits::{self, LookupSlots};
use super::lookup::{Endpoint, Lookup, oci_reference};
use super::mirrors::Mirrors;
use super::proxy::GuardedProxy;
use crate::config::RegistryConfig;
use crate::image::facts::{Entrypoint, Facts, ImageFacts};
use crate::image::reference::Reference;
use crate::image::resolver::{LookupContext, LookupStats, Resolver};

/// Why a [`RegistryResolver`] cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A glob in `registry.allow`/`registry.deny` does not compile.
    #[error("registry.allow/deny: {0}")]
    Pattern(#[from] globset::Error),
    /// A `registry.caFiles` entry cannot be read or used.
    #[error("registry.caFiles[{registry:?}]: {reason}")]
    CaFile {
        /// The registry it is for.
        registry: String,
        /// Why.
        reason: String,
    },
    /// The guarded proxy could not start (no Tokio runtime, no loopback).
    #[error("cannot start the registry connection guard: {0}")]
    Proxy(#[from] std::io::Error),
    /// A credential source is configured wrongly.
    #[error(transparent)]
    Credentials(#[from] KeychainError),
}

/// Resolves images against their registries, with caching, request
/// coalescing, per-credential isolation, a deadline and the SSRF guard.
///
/// Cheap to clone (shared state); build one per process.
#[derive(Clone)]
pub struct RegistryResolver {
    inner: Arc<Inner>,
}

struct Inner {
    policy: Arc<AccessPolicy>,
    clients: ClientPool,
    cache: FactsCache,
    credentials: Arc<dyn CredentialSource>,
    keychains: Keychains,
    mirrors: Mirrors,
    lookup_timeout: Duration,
    counts: Counts,
    /// `registry.maxConcurrentLookups`, shared by every admission.
    slots: LookupSlots,
    /// `registry.maxImagesPerAdmission`.
    max_images: usize,
    /// `registry.maxPullSecretsPerAdmission` (the credential source applies it;
    /// the resolver names it in the reasons of images it could not resolve).
    max_pull_secrets: usize,
    // Last: stops the proxy when the resolver goes away.
    _proxy: GuardedProxy,
}

impl RegistryResolver {
    /// Builds a resolver from the `registry` configuration, taking credentials
    /// from `credentials` (e.g. [`super::KubeCredentials`] when serving,
    /// [`super::DockerConfigCredentials::from_default_location`] for the CLI).
    ///
    /// The cloud credential sources (`registry.credentials`) read the process
    /// environment. Must be called inside a Tokio runtime (it starts the
    /// connection guard). `serve`, `review --resolve` and `audit --resolve`
    /// all build their resolver here, so they share one credential chain.
    pub fn new(config: &RegistryConfig, credentials: Arc<dyn CredentialSource>) -> Result<Self, RegistryError> {
        Self::with_environment(config, credentials, &Environment::process(), Arc::new(SystemClock))
    }

    /// [`RegistryResolver::new`] with the environment the credential sources
    /// read and the clock their token caches follow given explicitly.
    pub fn with_environment(
        config: &RegistryConfig,
        credentials: Arc<dyn CredentialSource>,
        env: &Environment,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RegistryError> {
        // reqwest (inside oci-client) uses the process default provider: ring, never aws-lc.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let policy = Arc::new(AccessPolicy::from_config(config)?);
        let lookup_timeout = config.lookup_timeout.get();
        let proxy = GuardedProxy::start(policy.clone(), lookup_timeout)?;
        let mut ca_pems = BTreeMap::new();
        for (registry, path) in &config.ca_files {
            let pem = std::fs::read(path).map_err(|e| RegistryError::CaFile {
                registry: registry.clone(),
                reason: format!("{}: {e}", path.display()),
            })?;
            ca_pems.insert(registry.clone(), pem);
        }
        let clients = ClientPool::new(policy.clone(), proxy.url().to_string(), ca_pems, lookup_timeout);
        // Build the custom-CA clients now, so a bad PEM fails at startup, not per lookup.
        for registry in config.ca_files.keys() {
            clients.build(registry).map_err(|e| RegistryError::CaFile {
                registry: registry.clone(),
                reason: e.to_string(),
            })?;
        }
        let keychains = Keychains::from_config(config, env, clock, proxy.url())?;
        Ok(RegistryResolver {
            inner: Arc::new(Inner {
                policy,
                clients,
                cache: FactsCache::new(config.cache_capacity, config.cache_ttl.get(), config.negative_ttl.get()),
                credentials,
                keychains,
                mirrors: Mirrors::from_config(config),
                lookup_timeout,
                counts: Counts::default(),
                slots: LookupSlots::new(config.max_concurrent_lookups),
                max_images: config.max_images_per_admission,
                max_pull_secrets: config.max_pull_secrets_per_admission,
                _proxy: proxy,
            }),
        })
    }

    /// How many lookup outcomes are cached (after the pending evictions and
    /// expirations have run).
    pub async fn cached_entries(&self) -> u64 {
        self.inner.cache.entry_count().await
    }

    /// The credential sources in use besides pull secrets and the Docker
    /// config (`ecr`, `google`, `azure`, `plugin/NAME`), in order.
    pub fn credential_sources(&self) -> Vec<String> {
        self.inner.keychains.names()
    }
}

impl Resolver for RegistryResolver {
    fn resolve<'a>(&'a self, images: &'a [String], ctx: &'a LookupContext, deadline: Instant) -> BoxFuture<'a, Facts> {
        Box::pin(self.inner.clone().resolve(images, ctx, deadline))
    }

    fn lookup_stats(&self) -> Option<LookupStats> {
        let counts = &self.inner.counts;
        Some(LookupStats {
            cache_hits: counts.cache_hits.load(Ordering::Relaxed),
            resolved: counts.resolved.load(Ordering::Relaxed),
            failed: counts.failed.load(Ordering::Relaxed),
            cached: self.inner.cache.approximate_entry_count(),
        })
    }
}

/// Lookup counts behind [`Resolver::lookup_stats`].
#[derive(Default)]
struct Counts {
    cache_hits: AtomicU64,
    resolved: AtomicU64,
    failed: AtomicU64,
}

impl Inner {
    async fn resolve(self: Arc<Self>, images: &[String], ctx: &LookupContext, deadline: Instant) -> Facts {
        let deadline = tokio::time::Instant::from_std(deadline);
        let mut facts = Facts::new();
        let mut seen = HashSet::new();
        let mut images: Vec<&String> = images.iter().filter(|i| seen.insert(i.as_str())).collect();
        if images.is_empty() {
            return facts;
        }
        if images.len() > self.max_images {
            let reason = limits::too_many_images(images.len(), self.max_images, ctx);
            for image in images.split_off(self.max_images) {
                facts.insert(image.clone(), ImageFacts::unknown(reason.clone()));
            }
        }
        let pull_secret_note = limits::pull_secret_note(ctx, self.max_pull_secrets);
        let credentials = match tokio::time::timeout_at(deadline, self.credentials.credentials(ctx)).await {
            Ok(credentials) => credentials,
            Err(_) => {
                for image in images {
                    facts.insert(
                        image.clone(),
                        ImageFacts::unknown("reading pull secrets did not finish in time"),
                    );
                }
                return facts;
            }
        };
        let mut pending = Vec::new();
        for image in images {
            let reference = match Reference::parse(image) {
                Ok(r) => r,
                Err(e) => {
                    facts.insert(
                        image.clone(),
                        ImageFacts::unknown(format!("invalid image reference: {e}")),
                    );
                    continue;
                }
            };
            let lookup = match tokio::time::timeout_at(deadline, self.plan(reference, &credentials)).await {
                Ok(lookup) => lookup,
                Err(_) => {
                    facts.insert(
                        image.clone(),
                        ImageFacts::unknown("registry credential sources did not answer in time"),
                    );
                    continue;
                }
            };
            // A cache hit needs no task.
            if let Some(outcome) = self.cache.get(&lookup.key).await {
                self.counts.cache_hits.fetch_add(1, Ordering::Relaxed);
                facts.insert(image.clone(), with_note(into_facts(&outcome), &pull_secret_note));
                continue;
            }
            // A slot first, waiting no longer than this request may: the
            // lookup tasks in flight never outnumber the slots, whatever the
            // admissions ask for at once.
            let slot = match self.slots.acquire(deadline).await {
                Ok(slot) => slot,
                Err(e) => {
                    facts.insert(image.clone(), ImageFacts::unknown(e.to_string()));
                    continue;
                }
            };
            // The lookup runs in its own task, holding its slot: when this
            // caller's deadline passes it stops waiting, but the lookup
            // finishes (bounded by lookupTimeout) and fills the cache for the
            // next request.
            let task = tokio::spawn(self.clone().lookup(lookup, slot));
            let note = &pull_secret_note;
            pending.push(async move {
                let facts = match tokio::time::timeout_at(deadline, task).await {
                    Ok(Ok(outcome)) => into_facts(&outcome),
                    Ok(Err(e)) => ImageFacts::unknown(format!("registry lookup failed: {e}")),
                    Err(_) => ImageFacts::unknown("registry lookup did not finish within the request's deadline"),
                };
                (image.clone(), with_note(facts, note))
            });
        }
        for (image, image_facts) in futures::future::join_all(pending).await {
            facts.insert(image, image_facts);
        }
        facts
    }

    async fn lookup(self: Arc<Self>, lookup: Lookup, _slot: tokio::sync::OwnedSemaphorePermit) -> Outcome {
        let key = lookup.key.clone();
        let this = self.clone();
        self.cache
            .get_with(key, async move {
                let started = Instant::now();
                let outcome = match tokio::time::timeout(this.lookup_timeout, this.fetch(&lookup)).await {
                    Ok(result) => result,
                    Err(_) => Err(LookupError(format!(
                        "{}: the registry did not answer within {:?} (registry.lookupTimeout)",
                        lookup.reference.canonical(),
                        this.lookup_timeout
                    ))),
                };
                let counter = if outcome.is_ok() {
                    &this.counts.resolved
                } else {
                    &this.counts.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
                match &outcome {
                    Ok(facts) => tracing::debug!(image = %lookup.reference.canonical(), digest = ?facts.digest,
                        elapsed_ms = started.elapsed().as_millis() as u64, "resolved"),
                    Err(e) => tracing::info!(image = %lookup.reference.canonical(), reason = %e, "not resolved"),
                }
                Arc::new(outcome)
            })
            .await
    }

    /// Where and with what to ask for `reference`: each mirror, then (with
    /// `mirrorFallback`) the registry; on each, the matching pull-secret and
    /// Docker-config credentials, then those of the credential sources.
    async fn plan(&self, reference: Reference, static_credentials: &[RegistryCredential]) -> Lookup {
        let mut endpoints = Vec::new();
        for (endpoint, mirror) in self.mirrors.endpoints(&reference) {
            let mut credentials: Vec<RegistryCredential> = Vec::new();
            let dynamic = self.keychains.credentials(&endpoint).await;
            for c in static_credentials
                .iter()
                .filter(|c| c.matches(&endpoint))
                .chain(&dynamic)
            {
                if !credentials.iter().any(|k| k.identity() == c.identity()) {
                    credentials.push(c.clone());
                }
            }
            endpoints.push(Endpoint {
                reference: endpoint,
                credentials,
                mirror,
            });
        }
        Lookup::new(reference, endpoints)
    }

    /// Asks each endpoint in turn; the first answer wins.
    async fn fetch(&self, lookup: &Lookup) -> Result<ImageFacts, LookupError> {
        let mut errors = Vec::new();
        for endpoint in &lookup.endpoints {
            match self.fetch_from(lookup, endpoint).await {
                Ok(mut facts) => {
                    if endpoint.mirror {
                        facts.source = Some(endpoint.reference.registry().to_string());
                    }
                    return Ok(facts);
                }
                Err(e) if lookup.endpoints.len() == 1 => return Err(e),
                Err(e) => errors.push(format!("{}: {e}", endpoint.reference.registry())),
            }
        }
        Err(LookupError(errors.join("; ")))
    }

    /// Tries each usable credential in turn on one endpoint (anonymous when there is none).
    async fn fetch_from(&self, lookup: &Lookup, endpoint: &Endpoint) -> Result<ImageFacts, LookupError> {
        let reference = &endpoint.reference;
        self.policy
            .check_registry(reference.registry())
            .map_err(|e| LookupError(e.to_string()))?;
        let oci_ref = oci_reference(reference);
        // A clear refusal up front; the proxy enforces the same for every connection.
        let default_port = if self.policy.is_insecure(reference.registry()) {
            80
        } else {
            443
        };
        let (host, port) = split_host_port(oci_ref.resolve_registry(), default_port);
        self.policy
            .resolve(&host, port)
            .await
            .map_err(|e| LookupError(e.to_string()))?;

        let attempts: Vec<(&str, RegistryAuth)> = if endpoint.credentials.is_empty() {
            vec![(ANONYMOUS, RegistryAuth::Anonymous)]
        } else {
            endpoint
                .credentials
                .iter()
                .map(|c| {
                    (
                        c.identity(),
                        RegistryAuth::Basic(c.username().into(), c.password().into()),
                    )
                })
                .collect()
        };
        let mut last_error = None;
        for (identity, auth) in &attempts {
            let client = self
                .clients
                .client(reference.registry(), identity)
                .await
                .map_err(|e| LookupError(e.to_string()))?;
            match self.fetch_with(&client, auth, lookup, reference, &oci_ref).await {
                Ok(facts) => return Ok(facts),
                Err(e) => last_error = Some(e),
            }
        }
        let error = last_error.unwrap_or_else(|| LookupError("no attempt made".into()));
        if attempts.len() > 1 {
            Err(LookupError(format!("{error} (tried {} credentials)", attempts.len())))
        } else {
            Err(error)
        }
    }

    async fn fetch_with(
        &self,
        client: &oci_client::Client,
        auth: &RegistryAuth,
        lookup: &Lookup,
        reference: &Reference,
        oci_ref: &oci_client::Reference,
    ) -> Result<ImageFacts, LookupError> {
        let digest = match reference.digest() {
            Some(d) => d.to_string(),
            None => fetch::manifest_digest(client, auth, oci_ref).await?,
        };
        // A tag whose TTL ran out usually still names the same content: after
        // the HEAD, the facts of that digest may already be known.
        let digest_key = CacheKey {
            credentials: lookup.key.credentials.clone(),
            reference: format!("{}/{}@{digest}", reference.registry(), reference.repository()),
            by_digest: true,
        };
        if !lookup.key.by_digest
            && let Some(outcome) = self.cache.get(&digest_key).await
            && let Ok(facts) = outcome.as_ref()
        {
            return Ok(facts.clone());
        }
        let by_digest = oci_client::Reference::with_digest(
            oci_ref.registry().to_string(),
            oci_ref.repository().to_string(),
            digest.clone(),
        );
        let entrypoint = fetch::entrypoint_of(client, auth, &by_digest).await?;
        let facts = ImageFacts {
            digest: Some(digest),
            entrypoint,
            source: None,
        };
        if !lookup.key.by_digest {
            self.cache.insert(digest_key, Arc::new(Ok(facts.clone()))).await;
        }
        Ok(facts)
    }
}

/// `facts` with `note` added to the reason when its config is unknown.
fn with_note(mut facts: ImageFacts, note: &str) -> ImageFacts {
    if let Entrypoint::Unknown { reason } = &mut facts.entrypoint {
        reason.push_str(note);
    }
    facts
}

fn into_facts(outcome: &Outcome) -> ImageFacts {
    match outcome.as_ref() {
        Ok(facts) => facts.clone(),
        Err(e) => ImageFacts::unknown(e.to_string()),
    }
}
