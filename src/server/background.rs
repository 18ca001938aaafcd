//! `serve --background-audit`: the cluster audit, run periodically, its
//! counts exported as gauges so a dashboard shows namespaces moving from
//! audit to fix.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::metrics::Metrics;
use crate::cluster::{self, AuditOptions};
use crate::engine::Policy;
use crate::image::Resolver;

/// A periodic audit of the cluster behind `client`.
#[derive(Clone)]
pub struct BackgroundAudit {
    /// The API client (in-cluster service account, or kubeconfig).
    pub client: kube::Client,
    /// Time between the end of one audit and the start of the next.
    pub interval: Duration,
}

impl BackgroundAudit {
    /// Starts [`BackgroundAudit::run`] on a thread of the runtime's blocking
    /// pool. The audit's future borrows across awaits in ways the compiler
    /// cannot prove `Send` for every lifetime, so it is driven there with
    /// `block_on` rather than moved between workers by `tokio::spawn`.
    pub fn spawn(
        self,
        resolver: Arc<dyn Resolver>,
        policy: Policy,
        metrics: Arc<Metrics>,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || runtime.block_on(self.run(resolver, policy, metrics, stop)))
    }

    /// Audits now and then every `interval` until `stop` turns true, each time
    /// replacing the audit gauges in `metrics`. Findings use the webhook's own
    /// `policy` and `resolver` (so its cache serves both).
    pub async fn run(
        self,
        resolver: Arc<dyn Resolver>,
        policy: Policy,
        metrics: Arc<Metrics>,
        mut stop: watch::Receiver<bool>,
    ) {
        let options = AuditOptions::default();
        loop {
            let started = std::time::Instant::now();
            // Shutdown does not wait for an audit in progress.
            let report = tokio::select! {
                report = cluster::run(&self.client, &options, resolver.clone(), &policy) => report,
                _ = stop.wait_for(|stopped| *stopped) => return,
            };
            for error in &report.errors {
                tracing::warn!(error = ?error, "background audit could not list");
            }
            let counts = report.counts_by_namespace_and_rule();
            metrics.background_audit(&counts, report.summary.audited, report.errors.len());
            tracing::info!(
                objects = report.summary.audited,
                findings = report.summary.findings,
                errors = report.errors.len(),
                took = ?started.elapsed(),
                "background audit finished"
            );
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }
}
