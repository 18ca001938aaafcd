//! The cluster audit: find existing workloads in a live cluster that bypass
//! their chalk wrapper, with the same engine the webhook and `review` use.
//!
//! ```text
//! list (Pods + pod-template kinds, paged) ─► skip what a listed owner reports
//!   ─► engine::lookups ─► resolver ─► engine::inspect ─► report (text|json|yaml|sarif)
//! ```
//!
//! Read-only: it lists, it never writes. A kind or namespace that cannot be
//! listed (403, timeout) is reported and the rest is still audited.
//! [`run`] is the core the `audit` command and
//! `serve --background-audit` (which exports
//! [`AuditReport::counts_by_namespace_and_rule`]) share.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;

use super::kinds::listable;
use super::list;
use super::ownership;
use super::progress::{Progress, Silent};
use super::report::{AuditError, AuditReport, AuditedObject};
use crate::engine::{self, Kind, Kinds, Mode, Policy};
use crate::image::Resolver;

/// What to audit and how hard to push the API server.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// Namespaces to audit; empty audits all namespaces (one cluster-wide
    /// list per kind, which needs a ClusterRole).
    pub namespaces: Vec<String>,
    /// Also report objects a listed owner already reports (Pods of a
    /// ReplicaSet, ReplicaSets of a Deployment, Jobs of a CronJob).
    pub include_owned: bool,
    /// Objects per list page (`limit`).
    pub page_size: u32,
    /// Deadline for each list page.
    pub request_timeout: Duration,
    /// Time budget for resolving the images of one object.
    pub resolve_timeout: Duration,
    /// List requests and image resolutions in flight at once.
    pub concurrency: usize,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            namespaces: Vec::new(),
            include_owned: false,
            page_size: 500,
            request_timeout: Duration::from_secs(30),
            resolve_timeout: Duration::from_secs(10),
            concurrency: 4,
        }
    }
}

/// Audits the cluster behind `client`: lists every kind of `policy.kinds`
/// (the built-in kinds, and the custom kinds the API server serves) in the
/// requested namespaces, resolves images with `resolver` and runs
/// [`engine::inspect`] under `policy`. Never fails as a whole: what could not
/// be listed is in [`AuditReport::errors`].
pub async fn run(
    client: &kube::Client,
    options: &AuditOptions,
    resolver: Arc<dyn Resolver>,
    policy: &Policy,
) -> AuditReport {
    run_with_progress(client, options, resolver, policy, &Silent).await
}

/// [`run`], telling `progress` how far it got.
pub async fn run_with_progress(
    client: &kube::Client,
    options: &AuditOptions,
    resolver: Arc<dyn Resolver>,
    policy: &Policy,
    progress: &dyn Progress,
) -> AuditReport {
    let mut report = AuditReport::default();
    let objects = list_everything(client, options, &policy.kinds, progress, &mut report).await;
    report.summary.listed = objects.len();

    let listed = ownership::uids(&objects);
    let mut to_inspect = Vec::with_capacity(objects.len());
    for object in objects {
        match ownership::listed_owner(&object, &listed) {
            Some(owner) if !options.include_owned => {
                tracing::debug!(object = %describe(&object), %owner, "reported through its owner");
                report.summary.skipped_owned += 1;
            }
            _ => to_inspect.push(object),
        }
    }
    report.summary.audited = to_inspect.len();

    let total = to_inspect.len();
    let done = AtomicUsize::new(0);
    let concurrency = options.concurrency.max(1);
    let inspected: Vec<Option<AuditedObject>> = futures::stream::iter(to_inspect)
        .map(|object| {
            let resolver = Arc::clone(&resolver);
            let done = &done;
            async move {
                let audited = inspect_one(object, resolver.as_ref(), policy, options.resolve_timeout).await;
                progress.inspected(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                audited
            }
        })
        .buffered(concurrency)
        .collect()
        .await;
    report.objects = inspected.into_iter().flatten().collect();
    let rank = |kind: &str| policy.kinds.rank(kind);
    report
        .objects
        .sort_by(|a, b| (&a.namespace, rank(&a.kind), &a.name).cmp(&(&b.namespace, rank(&b.kind), &b.name)));
    report.summary.with_findings = report.objects.len();
    report.summary.findings = report.objects.iter().map(|o| o.findings.len()).sum();
    report.summary.errors = report.errors.len();
    progress.finish();
    report
}

/// Lists every kind in every requested scope; failures go into `report`.
async fn list_everything(
    client: &kube::Client,
    options: &AuditOptions,
    kinds: &Kinds,
    progress: &dyn Progress,
    report: &mut AuditReport,
) -> Vec<Value> {
    let mut scopes: Vec<Option<String>> = Vec::new();
    if options.namespaces.is_empty() {
        scopes.push(None);
    }
    for ns in &options.namespaces {
        if !scopes.iter().any(|s| s.as_deref() == Some(ns)) {
            scopes.push(Some(ns.clone()));
        }
    }
    let kinds = listable(client, kinds, report).await;
    let jobs: Vec<(Option<String>, &Kind)> = scopes
        .iter()
        .flat_map(|scope| kinds.iter().map(move |kind| (scope.clone(), kind)))
        .collect();
    let total = jobs.len();
    let done = AtomicUsize::new(0);
    let paging = list::Paging {
        page_size: options.page_size,
        timeout: options.request_timeout,
    };
    let listings: Vec<_> = futures::stream::iter(jobs)
        .map(|(scope, kind)| {
            let done = &done;
            async move {
                let started = Instant::now();
                let listing = list::list(client, kind, scope.as_deref(), paging).await;
                tracing::debug!(
                    kind = %kind.kind,
                    namespace = scope.as_deref().unwrap_or("*"),
                    items = listing.items.len(),
                    pages = listing.pages,
                    ms = started.elapsed().as_millis() as u64,
                    "listed"
                );
                progress.listed(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                (scope, kind, listing)
            }
        })
        .buffered(options.concurrency.max(1))
        .collect()
        .await;

    let mut objects = Vec::new();
    for (scope, kind, listing) in listings {
        if let Some(failure) = listing.failure {
            let error = AuditError {
                kind: kind.kind.clone(),
                resource: kind.resource(),
                namespace: scope,
                reason: failure.reason,
                message: failure.message,
                items_read: listing.items.len(),
            };
            tracing::warn!(
                reason = error.reason.as_str(),
                "cannot list {} in {}: {}",
                error.resource,
                error.scope(),
                error.message
            );
            report.errors.push(error);
        }
        objects.extend(listing.items);
    }
    objects
}

/// Resolves and inspects one object; `None` when it has no findings.
async fn inspect_one(
    object: Value,
    resolver: &dyn Resolver,
    policy: &Policy,
    resolve_timeout: Duration,
) -> Option<AuditedObject> {
    let needed = engine::lookups(&object, None, None, policy);
    let facts = resolver
        .resolve(&needed.images, &needed.context, Instant::now() + resolve_timeout)
        .await;
    // Mode::Fix as the ceiling: `proposed` is the same whatever the mode,
    // and `applied` then tells what the webhook would do with this object.
    let inspection = engine::inspect(&object, &facts, policy, Mode::Fix);
    if inspection.findings.is_empty() {
        return None;
    }
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Some(AuditedObject {
        api_version: text("/apiVersion"),
        kind: text("/kind"),
        namespace: text("/metadata/namespace"),
        name: text("/metadata/name"),
        findings: inspection.findings,
        proposed: inspection.proposed,
        object,
    })
}

fn describe(object: &Value) -> String {
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str).unwrap_or("?");
    format!(
        "{}/{}/{}",
        text("/metadata/namespace"),
        text("/kind"),
        text("/metadata/name")
    )
}
