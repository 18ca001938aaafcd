//! Settings of the registry resolver.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::credentials::{CredentialsConfig, Mirror, RegistryHost};
use super::values::{Pattern, Span, count_within};

/// The `registry` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RegistryConfig {
    /// Resolve images from registries when serving (off: offline facts only).
    pub enabled: bool,
    /// Time budget for all lookups of one admission request.
    pub budget: Span,
    /// Kept free of the API server's `?timeout=` for answering.
    pub safety_margin: Span,
    /// How long a tag → digest lookup is cached.
    pub cache_ttl: Span,
    /// How long a failed lookup is cached.
    pub negative_ttl: Span,
    /// Most entries kept in the cache.
    pub cache_capacity: u64,
    /// The most one registry lookup may take. A caller stops waiting at its
    /// own deadline, but the lookup goes on (up to this long) so that the next
    /// request finds the answer cached.
    pub lookup_timeout: Span,
    /// Read `imagePullSecrets` (Pod and ServiceAccount) for registry credentials.
    pub pull_secrets: bool,
    /// Registry hosts that may be contacted (globs; empty: all).
    pub allow: Vec<Pattern>,
    /// Registry hosts that are never contacted (globs).
    pub deny: Vec<Pattern>,
    /// Registries reached over plain HTTP (`host:port`).
    pub insecure: Vec<String>,
    /// Registries allowed even though they resolve to loopback, link-local or
    /// unspecified addresses (`host:port`).
    pub allow_private: Vec<String>,
    /// Extra CA certificates (PEM file) per registry host.
    pub ca_files: BTreeMap<String, PathBuf>,
    /// Credential sources besides pull secrets and the Docker config.
    pub credentials: CredentialsConfig,
    /// Mirrors per registry, tried in order before the registry itself. Each
    /// mirror host has its own `insecure`, `caFiles`, `allowPrivate` and
    /// credential settings, like any registry.
    pub mirrors: BTreeMap<RegistryHost, Vec<Mirror>>,
    /// Ask the registry itself when no mirror has the image (false: mirrors only).
    pub mirror_fallback: bool,
    /// Registry lookups in flight at once, all admissions together. Over it a
    /// lookup waits for a slot within its request's deadline, then is given up
    /// (the image's config is unknown).
    #[serde(deserialize_with = "count_within::<1, 1024, _, _>")]
    pub max_concurrent_lookups: usize,
    /// Distinct images looked up for one admission; the others are not looked
    /// up (their config is unknown, and the finding says why).
    #[serde(deserialize_with = "count_within::<1, 10_000, _, _>")]
    pub max_images_per_admission: usize,
    /// Pull-secret names read for one admission (the Pod's, then its
    /// ServiceAccount's): one API server GET each; the others are not read.
    #[serde(deserialize_with = "count_within::<1, 1000, _, _>")]
    pub max_pull_secrets_per_admission: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            enabled: true,
            budget: Span(Duration::from_secs(3)),
            safety_margin: Span(Duration::from_secs(1)),
            cache_ttl: Span(Duration::from_secs(300)),
            negative_ttl: Span(Duration::from_secs(30)),
            cache_capacity: 10_000,
            lookup_timeout: Span(Duration::from_secs(10)),
            pull_secrets: true,
            allow: Vec::new(),
            deny: Vec::new(),
            insecure: Vec::new(),
            allow_private: Vec::new(),
            ca_files: BTreeMap::new(),
            credentials: CredentialsConfig::default(),
            mirrors: BTreeMap::new(),
            mirror_fallback: true,
            // A registry answers a lookup in 2-3 requests; 16 at once keep a
            // burst of new images quick without letting one admission (or a
            // flood of them) open hundreds of registry connections.
            max_concurrent_lookups: 16,
            // Far above real Pods (a few containers) and workloads.
            max_images_per_admission: 64,
            max_pull_secrets_per_admission: 32,
        }
    }
}
