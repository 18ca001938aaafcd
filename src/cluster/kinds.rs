//! The kinds the audit lists, from the policy's table
//! ([`crate::engine::Kinds`]): every built-in kind, and each configured
//! custom kind in the version the API server serves (discovery), when it
//! serves it at all.

use serde_json::Value;

use super::list;
use super::report::{AuditError, AuditReport};
use crate::engine::{Kind, Kinds};

/// The kinds to list: the built-in ones, and each custom kind in the
/// version the API server serves (none when its CRD is not installed; a
/// discovery that fails is reported in `report` like a list that fails).
pub(crate) async fn listable(client: &kube::Client, kinds: &Kinds, report: &mut AuditReport) -> Vec<Kind> {
    let mut out: Vec<Kind> = kinds.iter().filter(|k| !k.custom).cloned().collect();
    for custom in kinds.custom() {
        match discover(client, custom).await {
            Ok(Some(version)) => out.push(custom.in_version(&version)),
            Ok(None) => tracing::debug!(kind = %custom.resource(), "not served by the API server: not listed"),
            Err(e) => {
                let failure = list::classify(&e);
                report.errors.push(AuditError {
                    kind: custom.kind.clone(),
                    resource: custom.resource(),
                    namespace: None,
                    reason: failure.reason,
                    message: format!("discovery: {}", failure.message),
                    items_read: 0,
                });
            }
        }
    }
    out
}

/// Which version of `kind` (a custom kind) the API server serves, from its
/// discovery documents: the group's (`/apis/GROUP`, its preferred version
/// first) and the version's resource list (`/apis/GROUP/VERSION`, which
/// must hold the kind's resource). `Ok(None)` when it serves none of the
/// kind's versions: its CRD is not installed.
async fn discover(client: &kube::Client, kind: &Kind) -> Result<Option<String>, kube::Error> {
    let Some(group) = get(client, &format!("/apis/{}", kind.group)).await? else {
        return Ok(None);
    };
    let served: Vec<&str> = group["versions"]
        .as_array()
        .map(|vs| vs.iter().filter_map(|v| v["version"].as_str()).collect())
        .unwrap_or_default();
    let preferred = group.pointer("/preferredVersion/version").and_then(Value::as_str);
    let mut candidates: Vec<&str> = Vec::new();
    for version in preferred.into_iter().chain(served) {
        if kind.versions.iter().any(|k| k == version) && !candidates.contains(&version) {
            candidates.push(version);
        }
    }
    for version in candidates {
        let Some(resources) = get(client, &format!("/apis/{}/{version}", kind.group)).await? else {
            continue;
        };
        let holds = resources["resources"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| r["name"] == kind.plural.as_str()));
        if holds {
            return Ok(Some(version.to_string()));
        }
    }
    Ok(None)
}

/// A discovery document, or `None` when the API server has none there (404).
pub(crate) async fn get(client: &kube::Client, path: &str) -> Result<Option<Value>, kube::Error> {
    let request = axum::http::Request::get(path)
        .body(Vec::new())
        .map_err(kube::Error::HttpError)?;
    match client.request::<Value>(request).await {
        Ok(document) => Ok(Some(document)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}
