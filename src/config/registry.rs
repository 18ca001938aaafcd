//! Settings of the registry resolver.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::credentials::{CredentialsConfig, Mirror, RegistryHost};
use super::values::{Pattern, Span, count_within, span_within};

/// The `registry` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RegistryConfig {
    /// Resolve images from registries when serving (off: offline facts only).
    pub enabled: bool,
    /// Time budget for all lookups of one admission request. At most
    /// `server.requestTimeout`'s own maximum: a budget is never longer than
    /// the request it serves.
    #[serde(deserialize_with = "span_within::<100, 300_000, _>")]
    pub budget: Span,
    /// Kept free of the API server's `?timeout=` for answering. Zero would
    /// answer at the very deadline; 30 s is the API server's longest webhook
    /// timeout, so a larger margin would leave no lookup any time at all.
    #[serde(deserialize_with = "span_within::<10, 30_000, _>")]
    pub safety_margin: Span,
    /// How long a tag → digest lookup is cached. A day at most: tags move,
    /// and a longer-lived answer would pin yesterday's image.
    #[serde(deserialize_with = "span_within::<1_000, 86_400_000, _>")]
    pub cache_ttl: Span,
    /// How long a failed lookup is cached.
    #[serde(deserialize_with = "span_within::<100, 86_400_000, _>")]
    pub negative_ttl: Span,
    /// Most entries kept in the cache. An entry holds about 5 KiB
    /// (charts/entrypoint-guard/values.yaml), so a million is already 5 GiB.
    #[serde(deserialize_with = "count_within::<1, 1_000_000, _, _>")]
    pub cache_capacity: u64,
    /// The most one registry lookup may take. A caller stops waiting at its
    /// own deadline, but the lookup goes on (up to this long) so that the next
    /// request finds the answer cached.
    #[serde(deserialize_with = "span_within::<100, 300_000, _>")]
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
    /// ServiceAccount's), and ServiceAccounts read for one admission: one API
    /// server GET each; the others are not read.
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

#[cfg(test)]
mod tests {
    use crate::config::Config;

    /// Every duration of `registry` (and its credential sources) not checked
    /// elsewhere: where it is written, a value in range, and its range.
    const SPANS: [(&str, &str, &str); 8] = [
        ("registry:\n  budget", "3s", "100ms and 5m"),
        ("registry:\n  safetyMargin", "1s", "10ms and 30s"),
        ("registry:\n  cacheTtl", "5m", "1s and 1440m"),
        ("registry:\n  negativeTtl", "30s", "100ms and 1440m"),
        ("registry:\n  lookupTimeout", "10s", "100ms and 5m"),
        ("registry:\n  credentials:\n    retryInterval", "1m", "1s and 1440m"),
        (
            "registry:\n  credentials:\n    kubeletPlugins:\n      timeout",
            "10s",
            "100ms and 5m",
        ),
        ("registry:\n  negativeTtl", "1h", "100ms and 1440m"),
    ];
    /// Every size or count, likewise.
    const COUNTS: [(&str, &str, &str); 4] = [
        ("registry:\n  cacheCapacity", "10000", "1 and 1000000"),
        ("registry:\n  maxConcurrentLookups", "16", "1 and 1024"),
        ("registry:\n  maxImagesPerAdmission", "64", "1 and 10000"),
        ("registry:\n  maxPullSecretsPerAdmission", "32", "1 and 1000"),
    ];

    /// The error for `value` at `path`, which starts on line 2; and the
    /// field path and line it must name.
    fn error(path: &str, value: &str) -> (String, String, String) {
        let yaml = format!("mode: fix\n{path}: {value}\n");
        let line = yaml.lines().count();
        let field = path.split(':').map(str::trim).collect::<Vec<_>>().join(".");
        let e = match Config::from_yaml(&yaml, "c.yaml") {
            Ok(_) => panic!("{field}: {value} was accepted"),
            Err(e) => e.to_string(),
        };
        (e, format!("c.yaml:{line}:"), format!("{field}: "))
    }

    #[test]
    fn every_duration_rejects_zero_negative_and_absurd_values_at_its_line() {
        for (path, good, range) in SPANS {
            Config::from_yaml(&format!("{path}: {good}\n"), "c.yaml").unwrap_or_else(|e| panic!("{path}: {good}: {e}"));
            for bad in ["0s", "0ms", "-1s", "1000h", "99999999999999999999h"] {
                let (e, at, field) = error(path, bad);
                assert!(e.starts_with(&at) && e.contains(&field), "{field}{bad}: {e}");
            }
            let (e, _, field) = error(path, "0s");
            assert!(
                e.contains(&format!("{field}0s is out of range: must be between {range}")),
                "{e}"
            );
            let (e, _, field) = error(path, "1000h");
            assert!(
                e.contains(&format!("{field}60000m is out of range: must be between {range}")),
                "{e}"
            );
        }
    }

    #[test]
    fn every_size_and_count_rejects_zero_negative_and_absurd_values_at_its_line() {
        for (path, good, range) in COUNTS {
            Config::from_yaml(&format!("{path}: {good}\n"), "c.yaml").unwrap_or_else(|e| panic!("{path}: {good}: {e}"));
            for bad in ["0", "-1", "1099511627776", "1.5", "lots"] {
                let (e, at, field) = error(path, bad);
                assert!(e.starts_with(&at) && e.contains(&field), "{field}{bad}: {e}");
            }
            let (e, _, field) = error(path, "0");
            assert!(
                e.contains(&format!("{field}0 is out of range: must be between {range}")),
                "{e}"
            );
        }
    }
}
