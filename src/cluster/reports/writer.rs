//! Writing the reports: which report API the API server serves
//! (discovery), the Namespace uids for owner references, server-side apply
//! of each namespace's whole report, and deletion of the reports of
//! namespaces that have no results any more.

use std::collections::BTreeSet;

use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::Value;

use super::ReportsError;
use super::build::{self, MANAGED_BY, NAME, OPEN_REPORTS, ReportApi, WG_POLICY};
use crate::cluster::kinds::get;
use crate::cluster::report::AuditReport;

/// What one write did.
#[derive(Debug, Default)]
pub struct Written {
    /// Reports applied (created or replaced).
    pub applied: usize,
    /// Reports deleted (their namespace has no results any more).
    pub deleted: usize,
    /// Reports that could not be applied (e.g. one too large for etcd's
    /// 1.5 MiB object limit), each why; the other namespaces' are written.
    pub failed: Vec<ReportsError>,
}

/// The report API to write: `openreports.io/v1alpha1` when served, else
/// `wgpolicyk8s.io/v1alpha2`, else `None`.
pub async fn discover(client: &kube::Client) -> Result<Option<ReportApi>, ReportsError> {
    for api in [OPEN_REPORTS, WG_POLICY] {
        if serves(client, &api).await.map_err(ReportsError::Discovery)? {
            return Ok(Some(api));
        }
    }
    Ok(None)
}

/// Whether the API server serves `api`'s version with its namespaced resource.
async fn serves(client: &kube::Client, api: &ReportApi) -> Result<bool, kube::Error> {
    let Some(group) = get(client, &format!("/apis/{}", api.group)).await? else {
        return Ok(false);
    };
    let listed = group["versions"]
        .as_array()
        .is_some_and(|vs| vs.iter().any(|v| v["version"] == api.version));
    if !listed {
        return Ok(false);
    }
    let Some(resources) = get(client, &format!("/apis/{}", api.api_version())).await? else {
        return Ok(false);
    };
    Ok(resources["resources"]
        .as_array()
        .is_some_and(|rs| rs.iter().any(|r| r["name"] == api.kind.1)))
}

/// Writes the reports of `audit` with `api`: one per namespace with
/// results, applied whole (server-side apply, field manager
/// `entrypoint-guard`, forced), so results that went away are dropped; and
/// deletes the reports of the namespaces in `scope` (all namespaces when
/// empty) that have no results now. `now` is the results' timestamp (Unix
/// seconds).
pub async fn write(
    client: &kube::Client,
    api: &ReportApi,
    audit: &AuditReport,
    scope: &[String],
    passes: bool,
    now: i64,
) -> Result<Written, ReportsError> {
    if !audit.errors.is_empty() {
        // A report applied whole would drop the results of what could not be listed.
        return Err(ReportsError::Incomplete(audit.errors.len()));
    }
    let mut written = Written::default();
    let results = build::results_by_namespace(audit, passes, now);
    for (namespace, results) in results {
        let uid = if namespace.is_empty() {
            None
        } else {
            match namespace_uid(client, &namespace).await? {
                Some(uid) => Some(uid),
                // Deleted since it was listed: its reports go with it.
                None => continue,
            }
        };
        let report = build::report(api, &namespace, uid.as_deref(), results);
        let request = kube::core::Request::new(api.collection(&namespace))
            .patch(NAME, &PatchParams::apply(NAME).force(), &Patch::Apply(&report))
            .map_err(|e| ReportsError::Build(e.to_string()))?;
        match client.request::<Value>(request).await {
            Ok(_) => written.applied += 1,
            Err(source) => written.failed.push(ReportsError::Apply { namespace, source }),
        }
    }
    let with_results: BTreeSet<&str> = audit
        .objects
        .iter()
        .map(|o| o.namespace.as_str())
        .chain(audit.passed.iter().filter(|_| passes).map(|p| p.namespace.as_str()))
        .collect();
    for namespace in existing(client, api, scope).await? {
        if with_results.contains(namespace.as_str()) {
            continue;
        }
        let request = kube::core::Request::new(api.collection(&namespace))
            .delete(NAME, &DeleteParams::default())
            .map_err(|e| ReportsError::Build(e.to_string()))?;
        match client.request::<Value>(request).await {
            Ok(_) => written.deleted += 1,
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => return Err(ReportsError::Delete { namespace, source }),
        }
    }
    Ok(written)
}

/// The namespaces of `scope` that may hold a report written here: every
/// namespace holding one (a labelled list) when `scope` is empty, else the
/// namespaces named (a delete that finds nothing is fine).
async fn existing(client: &kube::Client, api: &ReportApi, scope: &[String]) -> Result<Vec<String>, ReportsError> {
    if !scope.is_empty() {
        return Ok(scope.to_vec());
    }
    let params = ListParams::default().labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1));
    let request = kube::core::Request::new(api.all_namespaces())
        .list(&params)
        .map_err(|e| ReportsError::Build(e.to_string()))?;
    let list: Value = client.request(request).await.map_err(ReportsError::List)?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item.pointer("/metadata/name").and_then(Value::as_str) == Some(NAME))
        .filter_map(|item| item.pointer("/metadata/namespace").and_then(Value::as_str))
        .map(str::to_string)
        .collect())
}

/// The uid of `namespace`, `None` when it is gone.
async fn namespace_uid(client: &kube::Client, namespace: &str) -> Result<Option<String>, ReportsError> {
    let found = get(client, &format!("/api/v1/namespaces/{namespace}"))
        .await
        .map_err(|source| ReportsError::Namespace {
            namespace: namespace.to_string(),
            source,
        })?;
    Ok(found.and_then(|ns| ns.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_string)))
}
