//! The cluster audit: find existing workloads in a live cluster that bypass
//! their chalk wrapper, with the same engine the webhook and `review` use.
//!
//! ```text
//! list a page (pod-template kinds, then Pods) ─► skip what a listed owner reports
//!   ─► engine::lookups ─► resolver ─► engine::inspect ─► keep findings ─► next page
//!   ─► report (text|json|yaml|sarif, PolicyReports)
//! ```
//!
//! Read-only: it lists, it never writes (PolicyReports are written by
//! [`super::reports`], from the finished report). A kind or namespace that cannot be
//! listed (403, timeout) is reported and the rest is still audited.
//! [`run`] is the core the `audit` command and
//! `serve --background-audit` (which exports
//! [`AuditReport::counts_by_namespace_and_rule`]) share.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;

use super::kinds::listable;
use super::list;
use super::progress::{Progress, Silent};
use super::report::{AuditError, AuditReport, AuditedObject, ObjectRef};
use crate::engine::{self, Kind, Mode, Policy, owner};
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
    /// Image resolutions in flight at once.
    pub concurrency: usize,
    /// Also keep a reference to each audited object without findings
    /// ([`AuditReport::passed`]), for `pass` results in PolicyReports.
    pub keep_passed: bool,
    /// Keep each object with findings whole ([`AuditedObject::object`],
    /// which `-o yaml` fixes); else `null`, which is what memory is
    /// mostly spent on when findings are many.
    pub keep_objects: bool,
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
            keep_passed: false,
            keep_objects: true,
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
///
/// Memory is bounded by a page, not by the cluster: each page is inspected
/// as it arrives and only objects with findings are kept (and, for the
/// owner rule, the uids of listed controllers and a count of owned objects
/// per controller uid; with [`AuditOptions::keep_passed`], a reference to
/// each object without findings).
pub async fn run_with_progress(
    client: &kube::Client,
    options: &AuditOptions,
    resolver: Arc<dyn Resolver>,
    policy: &Policy,
    progress: &dyn Progress,
) -> AuditReport {
    let mut report = AuditReport::default();
    let kinds = listable(client, &policy.kinds, &mut report).await;
    let mut scopes: Vec<Option<String>> = Vec::new();
    if options.namespaces.is_empty() {
        scopes.push(None);
    }
    for ns in &options.namespaces {
        if !scopes.iter().any(|s| s.as_deref() == Some(ns)) {
            scopes.push(Some(ns.clone()));
        }
    }
    // Pods last: by then the controllers of most Pods have been listed, so
    // owned Pods are skipped before their images are resolved.
    let mut jobs: Vec<(Option<String>, &Kind)> = scopes
        .iter()
        .flat_map(|scope| kinds.iter().map(move |kind| (scope.clone(), kind)))
        .collect();
    jobs.sort_by_key(|(_, kind)| is_pod(kind));
    let paging = list::Paging {
        page_size: options.page_size,
        timeout: options.request_timeout,
    };
    let policy = Arc::new(policy.clone());
    let mut found = Found::default();
    let total = jobs.len();
    for (done, (scope, kind)) in jobs.into_iter().enumerate() {
        let started = Instant::now();
        let mut pager = list::Pager::new(client, kind, scope.as_deref(), paging);
        let mut items_read = 0;
        while let Some(page) = pager.next().await {
            let objects = match page {
                Ok(objects) => objects,
                Err(failure) => {
                    let error = AuditError {
                        kind: kind.kind.clone(),
                        resource: kind.resource(),
                        namespace: scope.clone(),
                        reason: failure.reason,
                        message: failure.message,
                        items_read,
                    };
                    tracing::warn!(
                        reason = error.reason.as_str(),
                        "cannot list {} in {}: {}",
                        error.resource,
                        error.scope(),
                        error.message
                    );
                    report.errors.push(error);
                    break;
                }
            };
            items_read += objects.len();
            found
                .page(objects, is_pod(kind), options, &resolver, &policy, progress)
                .await;
        }
        tracing::debug!(
            kind = %kind.kind,
            namespace = scope.as_deref().unwrap_or("*"),
            items = items_read,
            pages = pager.pages,
            ms = started.elapsed().as_millis() as u64,
            "listed and inspected"
        );
        progress.listed(done + 1, total);
    }
    found.finish(options, &mut report);
    let rank = |kind: &str| policy.kinds.rank(kind);
    report
        .objects
        .sort_by(|a, b| (&a.namespace, rank(&a.kind), &a.name).cmp(&(&b.namespace, rank(&b.kind), &b.name)));
    report.passed.sort();
    report.summary.with_findings = report.objects.len();
    report.summary.findings = report.objects.iter().map(|o| o.findings.len()).sum();
    report.summary.errors = report.errors.len();
    progress.finish();
    report
}

/// Pods own no audited object, so their uids are never needed as owners.
fn is_pod(kind: &Kind) -> bool {
    kind.kind == "Pod" && kind.group.is_empty()
}

/// What the audit keeps while it pages: findings, and what the owner rule
/// needs to decide at the end for objects whose controller came later.
#[derive(Default)]
struct Found {
    listed: usize,
    inspected: usize,
    /// Uids of every listed object that can own another (all but Pods).
    owners: HashSet<String>,
    /// Objects with findings, with their controller's uid.
    objects: Vec<(AuditedObject, Option<String>)>,
    /// Objects without findings, with their controller's uid.
    passed: Vec<(ObjectRef, Option<String>)>,
    /// Objects inspected without findings (not kept), by controller uid.
    clean_owned: HashMap<String, usize>,
    skipped_owned: usize,
}

impl Found {
    /// Inspects one page: objects whose controller is already listed are
    /// skipped (unless `include_owned`), the rest resolved and inspected,
    /// `concurrency` at a time.
    async fn page(
        &mut self,
        objects: Vec<Value>,
        pods: bool,
        options: &AuditOptions,
        resolver: &Arc<dyn Resolver>,
        policy: &Arc<Policy>,
        progress: &dyn Progress,
    ) {
        self.listed += objects.len();
        let mut to_inspect = Vec::with_capacity(objects.len());
        for object in objects {
            if !pods && let Some(uid) = object.pointer("/metadata/uid").and_then(Value::as_str) {
                self.owners.insert(uid.to_string());
            }
            let controller = owner::controller_of(&object).map(|o| o.uid).filter(|u| !u.is_empty());
            match &controller {
                Some(uid) if !options.include_owned && self.owners.contains(uid) => {
                    tracing::debug!(object = %describe(&object), "reported through its owner");
                    self.skipped_owned += 1;
                }
                _ => to_inspect.push((object, controller)),
            }
        }
        let timeout = options.resolve_timeout;
        let mut inspected = futures::stream::iter(to_inspect)
            .map(|(object, controller)| {
                let resolver = Arc::clone(resolver);
                let policy = Arc::clone(policy);
                let keep = options.keep_objects;
                async move {
                    (
                        inspect_one(object, resolver.as_ref(), &policy, timeout, keep).await,
                        controller,
                    )
                }
            })
            .buffer_unordered(options.concurrency.max(1));
        while let Some((inspection, controller)) = inspected.next().await {
            match inspection {
                Inspected::Findings(object) => self.objects.push((*object, controller)),
                Inspected::Clean(reference) => {
                    if options.keep_passed {
                        self.passed.push((reference, controller.clone()));
                    }
                    if let Some(uid) = controller {
                        *self.clean_owned.entry(uid).or_insert(0) += 1;
                    }
                }
            }
            self.inspected += 1;
            // The total grows page by page: what has been listed and not skipped so far.
            progress.inspected(self.inspected, self.listed - self.skipped_owned);
        }
    }

    /// Drops what a controller listed later reports, and fills `report`.
    fn finish(self, options: &AuditOptions, report: &mut AuditReport) {
        let owners = self.owners;
        let reported_by_owner = |controller: &Option<String>| {
            !options.include_owned && controller.as_ref().is_some_and(|u| owners.contains(u))
        };
        let mut skipped = self.skipped_owned;
        skipped += self
            .clean_owned
            .iter()
            .filter(|(uid, _)| !options.include_owned && owners.contains(*uid))
            .map(|(_, n)| n)
            .sum::<usize>();
        for (object, controller) in self.objects {
            if reported_by_owner(&controller) {
                skipped += 1;
            } else {
                report.objects.push(object);
            }
        }
        report.passed = self
            .passed
            .into_iter()
            .filter(|(_, controller)| !reported_by_owner(controller))
            .map(|(reference, _)| reference)
            .collect();
        report.summary.listed = self.listed;
        report.summary.skipped_owned = skipped;
        report.summary.audited = self.listed - skipped;
    }
}

/// What inspecting one object gave.
enum Inspected {
    /// Findings: the object is kept.
    Findings(Box<AuditedObject>),
    /// None: only a reference is kept.
    Clean(ObjectRef),
}

/// Resolves and inspects one object.
async fn inspect_one(
    object: Value,
    resolver: &dyn Resolver,
    policy: &Policy,
    resolve_timeout: Duration,
    keep_object: bool,
) -> Inspected {
    let needed = engine::lookups(&object, None, None, policy);
    let facts = resolver
        .resolve(&needed.images, &needed.context, Instant::now() + resolve_timeout)
        .await;
    // Mode::Fix as the ceiling: `proposed` is the same whatever the mode,
    // and `applied` then tells what the webhook would do with this object.
    let inspection = engine::inspect(&object, &facts, policy, Mode::Fix);
    if inspection.findings.is_empty() {
        return Inspected::Clean(ObjectRef::of(&object));
    }
    let reference = ObjectRef::of(&object);
    Inspected::Findings(Box::new(AuditedObject {
        api_version: reference.api_version,
        kind: reference.kind,
        namespace: reference.namespace,
        name: reference.name,
        uid: reference.uid,
        findings: inspection.findings,
        proposed: inspection.proposed,
        object: if keep_object { object } else { Value::Null },
    }))
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
