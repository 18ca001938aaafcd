//! The bounds outside the transport, as metrics: registry credential
//! sources that failed, fan-out limits that bit (issue 11), answers cut to
//! the API server's limits and log lines dropped rather than blocking.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::Metrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartLabels {
    part: &'static str,
}

/// `log_lines_dropped_total`, read from the log writer at scrape time.
#[derive(Debug)]
struct DroppedLines;

impl prometheus_client::encoding::EncodeMetric for DroppedLines {
    fn encode(&self, encoder: prometheus_client::encoding::MetricEncoder) -> Result<(), std::fmt::Error> {
        prometheus_client::metrics::counter::ConstCounter::new(crate::logging::dropped_lines()).encode(encoder)
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Counter
    }
}

/// The limit metrics this module counts itself (the others are read from
/// their owners: `crate::registry`, `crate::logging`).
#[derive(Debug)]
pub(super) struct LimitMetrics {
    clipped: Family<PartLabels, Counter>,
}

impl LimitMetrics {
    /// Registers the credential-failure, fan-out, clipping and dropped-line metrics.
    pub(super) fn register(registry: &mut Registry) -> Self {
        registry.register(
            "registry_credential_failures",
            "Failures of a registry credential source (ecr, google, azure, plugin/NAME), counted once per retry interval",
            crate::registry::keychain::failure_metric().clone(),
        );
        registry.register(
            "registry_limited",
            "Times a fan-out bound bit, by limit: lookup-waited (every registry lookup slot taken), lookup-refused \
             (no slot before the deadline), images, pull-secrets and service-accounts (more per admission than allowed; \
             the rest not read)",
            crate::registry::limit_metric().clone(),
        );
        let clipped = Family::<PartLabels, Counter>::default();
        registry.register(
            "answers_clipped",
            "Admission answers cut to the API server's limits, by part: warnings or audit-annotations",
            clipped.clone(),
        );
        for part in ["warnings", "audit-annotations"] {
            let _ = clipped.get_or_create(&PartLabels { part });
        }
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because the log writer's queue was full (logging never blocks a request)",
            DroppedLines,
        );
        LimitMetrics { clipped }
    }
}

impl Metrics {
    /// Counts what an answer lost to the API server's limits.
    pub fn clipped(&self, clipped: crate::admission::Clipped) {
        for (part, cut) in [
            ("warnings", clipped.warnings),
            ("audit-annotations", clipped.audit_annotations),
        ] {
            if cut {
                self.limits.clipped.get_or_create(&PartLabels { part }).inc();
            }
        }
    }
}
