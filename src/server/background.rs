//! `serve --background-audit`: the cluster audit, run periodically, its
//! counts exported as gauges so a dashboard shows namespaces moving from
//! audit to fix, and (with `--policy-reports`) its findings written as
//! PolicyReports.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::metrics::Metrics;
use crate::cluster::{self, AuditOptions, AuditReport, reports};
use crate::engine::Policy;
use crate::image::Resolver;

/// A periodic audit of the cluster behind `client`.
#[derive(Clone)]
pub struct BackgroundAudit {
    /// The API client (in-cluster service account, or kubeconfig).
    pub client: kube::Client,
    /// Time between the end of one audit and the start of the next.
    pub interval: Duration,
    /// Write PolicyReports after each audit; `None`: metrics only.
    pub reports: Option<ReportOptions>,
}

/// What goes into the PolicyReports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportOptions {
    /// A `pass` result per audited object without findings (reports then
    /// grow with the namespace, not with its findings).
    pub passes: bool,
}

impl BackgroundAudit {
    /// Starts [`BackgroundAudit::run`] as a task of the runtime: it sleeps
    /// between audits and awaits the API server and registries while
    /// auditing, holding no thread of its own.
    pub fn spawn(
        self,
        resolver: Arc<dyn Resolver>,
        policy: Policy,
        metrics: Arc<Metrics>,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(self.run(resolver, policy, metrics, stop))
    }

    /// Audits now and then every `interval` until `stop` turns true, each time
    /// replacing the audit gauges in `metrics` (and the reports). Findings use
    /// the webhook's own `policy` and `resolver` (so its cache serves both).
    pub async fn run(
        self,
        resolver: Arc<dyn Resolver>,
        policy: Policy,
        metrics: Arc<Metrics>,
        mut stop: watch::Receiver<bool>,
    ) {
        let options = AuditOptions {
            keep_passed: self.reports.is_some_and(|r| r.passes),
            // Counts and reports need no more than references.
            keep_objects: false,
            ..AuditOptions::default()
        };
        let mut said_no_api = false;
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
            if let Some(options) = self.reports {
                tokio::select! {
                    _ = self.write_reports(&report, options, &mut said_no_api) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
            }
            drop(report);
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }

    /// Writes the reports with the API discovery finds now; says once when
    /// neither report API is served.
    async fn write_reports(&self, report: &AuditReport, options: ReportOptions, said_no_api: &mut bool) {
        let api = match reports::discover(&self.client).await {
            Ok(Some(api)) => api,
            Ok(None) => {
                if !*said_no_api {
                    tracing::info!(
                        "neither openreports.io/v1alpha1 nor wgpolicyk8s.io/v1alpha2 is served: no PolicyReports, metrics only"
                    );
                    *said_no_api = true;
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "no PolicyReports this time");
                return;
            }
        };
        *said_no_api = false;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        match reports::write(&self.client, &api, report, &[], options.passes, now).await {
            Ok(written) => {
                for failure in &written.failed {
                    tracing::warn!(error = %failure, "PolicyReport not written");
                }
                tracing::info!(
                    api = %api.api_version(),
                    applied = written.applied,
                    deleted = written.deleted,
                    failed = written.failed.len(),
                    "PolicyReports written"
                );
            }
            Err(e) => tracing::warn!(error = %e, "PolicyReports not written"),
        }
    }
}
