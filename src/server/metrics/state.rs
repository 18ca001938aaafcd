//! The server's long-running tasks as metrics: the serving certificate
//! (reloads, expiry) and the last background audit's counts.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{Metrics, ResultLabels};
use crate::engine::Rule;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuditLabels {
    namespace: String,
    rule: &'static str,
}

/// Certificate and background-audit metrics.
#[derive(Debug)]
pub(super) struct StateMetrics {
    tls_reloads: Family<ResultLabels, Counter>,
    tls_expiry: Gauge<f64, AtomicU64>,
    audit: AuditGauges,
}

/// What the last background audit found (`serve --background-audit`).
#[derive(Debug, Default)]
struct AuditGauges {
    findings: Family<AuditLabels, Gauge>,
    objects: Gauge,
    errors: Gauge,
    runs: Counter,
    last_run: Gauge<f64, AtomicU64>,
}

impl StateMetrics {
    /// Registers the certificate and background-audit metrics.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let tls_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "tls_reloads",
            "Serving certificate reloads after the files changed, by result",
            tls_reloads.clone(),
        );
        let tls_expiry = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "tls_certificate_expiry_timestamp_seconds",
            "When the serving certificate in use stops being valid (its notAfter, Unix time)",
            tls_expiry.clone(),
        );
        let audit = AuditGauges::default();
        registry.register(
            "audit_findings",
            "Findings in existing workloads at the last background audit, by namespace and rule",
            audit.findings.clone(),
        );
        registry.register(
            "audit_objects",
            "Objects inspected by the last background audit",
            audit.objects.clone(),
        );
        registry.register(
            "audit_errors",
            "Kinds or namespaces the last background audit could not list",
            audit.errors.clone(),
        );
        registry.register("audit_runs", "Background audits completed", audit.runs.clone());
        registry.register(
            "audit_last_run_timestamp_seconds",
            "When the last background audit finished (Unix time)",
            audit.last_run.clone(),
        );
        StateMetrics {
            tls_reloads,
            tls_expiry,
            audit,
        }
    }
}

impl Metrics {
    /// Counts a certificate reload attempt.
    pub fn tls_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.state.tls_reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// Records the notAfter (Unix seconds) of the certificate now served.
    pub fn tls_certificate(&self, not_after: i64) {
        self.state.tls_expiry.set(not_after as f64);
    }

    /// Replaces the background-audit gauges with one audit's results, so a
    /// namespace that has been fixed drops out instead of keeping old counts.
    pub fn background_audit(&self, counts: &BTreeMap<(String, Rule), u64>, objects: usize, errors: usize) {
        let audit = &self.state.audit;
        audit.findings.clear();
        for ((namespace, rule), n) in counts {
            let labels = AuditLabels {
                namespace: namespace.clone(),
                rule: rule.id(),
            };
            audit
                .findings
                .get_or_create(&labels)
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        audit.objects.set(i64::try_from(objects).unwrap_or(i64::MAX));
        audit.errors.set(i64::try_from(errors).unwrap_or(i64::MAX));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        audit.last_run.set(now.as_secs_f64());
        audit.runs.inc();
    }
}
