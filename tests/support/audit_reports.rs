//! The report APIs of the stand-in API server (see `audit_server.rs`): the
//! discovery documents of `openreports.io` and `wgpolicyk8s.io` when
//! served, and their reports: server-side apply (recorded, stored whole, as
//! an apply by the only manager replaces its fields), list by label,
//! delete.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Applied, Behaviour, REPORT_APIS, Shared, status};

/// The discovery document at `/apis/GROUP[/VERSION]` of a served report API.
pub(super) fn discovery(behaviour: &Behaviour, parts: &[&str]) -> Option<Value> {
    let (group, version, namespaced, cluster) = *REPORT_APIS
        .iter()
        .find(|api| api.0 == parts[1] && behaviour.report_groups.iter().any(|g| g == api.0))?;
    let group_version = format!("{group}/{version}");
    match parts.get(2) {
        None => Some(json!({"kind": "APIGroup", "apiVersion": "v1", "name": group,
            "versions": [{"groupVersion": group_version, "version": version}],
            "preferredVersion": {"groupVersion": group_version, "version": version}})),
        Some(v) if *v == version => {
            let resource = |name: &str, is_namespaced: bool, kind: &str| {
                json!({"name": name, "singularName": kind.to_lowercase(), "namespaced": is_namespaced, "kind": kind,
                    "verbs": ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]})
            };
            let (kind, cluster_kind) = if group == "openreports.io" {
                ("Report", "ClusterReport")
            } else {
                ("PolicyReport", "ClusterPolicyReport")
            };
            Some(
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                "resources": [resource(namespaced, true, kind), resource(cluster, false, cluster_kind)]}),
            )
        }
        Some(_) => None,
    }
}

/// Answers a request on a served report API's objects, `None` for any other path.
pub(super) fn serve(
    shared: &Shared,
    method: &Method,
    parts: &[&str],
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response> {
    if parts.first() != Some(&"apis") || parts.len() < 4 {
        return None;
    }
    let (_, version, namespaced, _) = REPORT_APIS
        .iter()
        .find(|api| api.0 == parts[1] && shared.behaviour.report_groups.iter().any(|g| g == api.0))?;
    if parts[2] != *version {
        return None;
    }
    let path = format!("/{}", parts.join("/"));
    let ok = |v: &Value| ([("content-type", "application/json")], v.to_string()).into_response();
    match (method.as_str(), &parts[3..]) {
        // All namespaces, by label, as `kubectl get -A -l` would.
        ("GET", [resource]) if resource == namespaced => {
            let selector = query.get("labelSelector").cloned().unwrap_or_default();
            let (key, value) = selector.split_once('=').unwrap_or(("", ""));
            let items: Vec<Value> = shared
                .reports
                .lock()
                .unwrap()
                .values()
                .filter(|r| key.is_empty() || r["metadata"]["labels"][key] == value)
                .cloned()
                .collect();
            Some(ok(
                &json!({"kind": "List", "apiVersion": format!("{}/{version}", parts[1]),
                "metadata": {"resourceVersion": "1"}, "items": items}),
            ))
        }
        ("PATCH", ["namespaces", namespace, resource, name]) if resource == namespaced => {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
                return Some(status(400, "BadRequest", "the body is not JSON".into()));
            };
            shared.applied.lock().unwrap().push(Applied {
                path: path.clone(),
                query: query.clone(),
                content_type: content_type.clone(),
                body: parsed.clone(),
            });
            if shared.behaviour.refused_reports.contains(*namespace) {
                return Some(status(
                    422,
                    "Invalid",
                    format!("{resource}.{} \"{name}\" is invalid: too large", parts[1]),
                ));
            }
            if content_type != "application/apply-patch+yaml" {
                return Some(status(
                    415,
                    "UnsupportedMediaType",
                    format!("not an apply patch: {content_type}"),
                ));
            }
            if parsed["metadata"]["name"] != *name || parsed["metadata"]["namespace"] != *namespace {
                return Some(status(
                    400,
                    "BadRequest",
                    "name or namespace differ from the path".into(),
                ));
            }
            shared.reports.lock().unwrap().insert(path, parsed.clone());
            Some(ok(&parsed))
        }
        ("DELETE", ["namespaces", _, resource, name]) if resource == namespaced => {
            match shared.reports.lock().unwrap().remove(&path) {
                Some(_) => Some(ok(&json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}))),
                None => Some(status(404, "NotFound", format!("{resource} \"{name}\" not found"))),
            }
        }
        _ => None,
    }
}
