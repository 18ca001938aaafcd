//! Registry lookup metrics, read from the resolver at scrape time:
//! `registry_lookups_total{result}`, `registry_cache_hits_total` and
//! `registry_cache_entries`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::metrics::ResultLabels;
use crate::image::Resolver;

/// Reads a resolver's lookup counts at scrape time.
/// The collector exporting `resolver`'s registry lookup counts (when it
/// has any): `registry_lookups_total{result}`, `registry_cache_hits_total`,
/// `registry_cache_entries`.
pub(super) fn registry_collector(resolver: Arc<dyn Resolver>) -> Box<dyn Collector> {
    Box::new(RegistryCollector(resolver))
}

struct RegistryCollector(Arc<dyn Resolver>);

impl std::fmt::Debug for RegistryCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegistryCollector")
    }
}

impl Collector for RegistryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = self.0.lookup_stats() else {
            return Ok(()); // offline facts only: no registry series
        };
        let lookups = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "registry_lookups",
            "Image lookups sent to registries (cache misses), by result",
            None,
            lookups.metric_type(),
        )?;
        for (result, n) in [("resolved", stats.resolved), ("failed", stats.failed)] {
            ConstCounter::new(n).encode(family.encode_family(&ResultLabels { result })?)?;
        }
        let hits = ConstCounter::new(stats.cache_hits);
        hits.encode(encoder.encode_descriptor(
            "registry_cache_hits",
            "Images answered from the lookup cache",
            None,
            hits.metric_type(),
        )?)?;
        let entries = ConstGauge::new(i64::try_from(stats.cached).unwrap_or(i64::MAX));
        entries.encode(encoder.encode_descriptor(
            "registry_cache_entries",
            "Lookup outcomes in the cache (approximate)",
            None,
            entries.metric_type(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::metrics::Metrics;

    /// A resolver that only reports counts.
    struct Counting(Option<crate::image::LookupStats>);

    impl Resolver for Counting {
        fn resolve<'a>(
            &'a self,
            _: &'a [String],
            _: &'a crate::image::LookupContext,
            _: std::time::Instant,
        ) -> futures::future::BoxFuture<'a, crate::image::Facts> {
            Box::pin(std::future::ready(crate::image::Facts::new()))
        }

        fn lookup_stats(&self) -> Option<crate::image::LookupStats> {
            self.0
        }
    }

    #[test]
    fn registry_counts_are_read_at_scrape_time() {
        let mut m = Metrics::default();
        m.add_collector(registry_collector(Arc::new(Counting(Some(
            crate::image::LookupStats {
                cache_hits: 7,
                resolved: 3,
                failed: 1,
                cached: 4,
            },
        )))));
        let text = m.encode();
        for line in [
            "entrypoint_guard_registry_lookups_total{result=\"resolved\"} 3\n",
            "entrypoint_guard_registry_lookups_total{result=\"failed\"} 1\n",
            "entrypoint_guard_registry_cache_hits_total 7\n",
            "entrypoint_guard_registry_cache_entries 4\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        let mut offline = Metrics::default();
        offline.add_collector(registry_collector(Arc::new(Counting(None))));
        assert!(
            !offline.encode().contains("registry_"),
            "no registry, no registry series"
        );
    }
}
