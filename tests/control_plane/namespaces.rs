//! Namespaces in a mode: created (or relabelled) and then probed until the
//! API server routes them to the webhook the chart's selectors say.

use std::time::Duration;

use serde_json::json;

use super::Suite;
use crate::control_plane::wait_for;
use crate::manifests::{is_fixed, kind, workload};

/// Creates namespace `name` with the chart's mode label set to `mode` (no
/// label when `None`), waits for its `default` ServiceAccount (Pods need
/// it) and, for `fix` and `audit`, until the webhook answers for it.
pub async fn create(s: &Suite, name: &str, mode: Option<&str>) {
    let mut namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    if let Some(mode) = mode {
        namespace["metadata"]["labels"] = json!({ s.mode_label.as_str(): mode });
    }
    s.api
        .create("/api/v1/namespaces", &namespace, false)
        .await
        .ok(&format!("create namespace {name}"));
    wait_for_service_account(s, name).await;
    if let Some(mode) = mode {
        routed(s, name, mode).await;
    }
}

/// Waits for the `default` ServiceAccount the controller manager creates.
pub async fn wait_for_service_account(s: &Suite, namespace: &str) {
    let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts/default");
    wait_for(&format!("{path} exists"), Duration::from_secs(30), || async {
        Ok((s.api.get(&path).await.status == 200).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Moves namespace `name` to `mode` (the label) and waits until the API
/// server's routing follows: it reads namespace labels from a cache.
pub async fn set_mode(s: &Suite, name: &str, mode: &str) {
    let patch = json!({"metadata": {"labels": { s.mode_label.as_str(): mode }}});
    s.api
        .merge_patch(&format!("/api/v1/namespaces/{name}"), &patch)
        .await
        .ok(&format!("label namespace {name} {mode}"));
    routed(s, name, mode).await;
}

/// Waits until a server dry-run of a PodTemplate in `namespace` shows the
/// webhook in `mode`: `fix` patches it; `audit` leaves it as written and
/// warns. (A dry run stores nothing, so probing leaves no trace.)
pub async fn routed(s: &Suite, namespace: &str, mode: &str) {
    let path = kind("PodTemplate").list_path(Some(namespace));
    let probe = workload(kind("PodTemplate"), "routing-probe");
    wait_for(
        &format!("the webhook answers for namespace {namespace} in mode {mode}"),
        Duration::from_secs(30),
        || async {
            let reply = s.api.create(&path, &probe, true).await.ok("routing probe");
            let seen = match mode {
                "fix" => is_fixed(&reply.body),
                "audit" => !reply.warnings.is_empty() && !is_fixed(&reply.body),
                other => panic!("no probe for mode {other}"),
            };
            Ok(seen.then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// (bypass, pin) counts of the webhook's warnings, checking each is one of
/// the two kinds the fixture containers produce, in the wording of `mode`.
pub fn warning_counts(warnings: &[String], mode: &str) -> (usize, usize) {
    let (bypass, pin) = match mode {
        "fix" => (
            ["moved command into args", "prepended the chalk wrapper"],
            "image pinned to",
        ),
        _ => (
            ["command bypasses chalk: move it", "command bypasses chalk: prepend"],
            "image would pin to",
        ),
    };
    let mut counts = (0, 0);
    for warning in warnings {
        if bypass.iter().any(|b| warning.contains(b)) {
            counts.0 += 1;
        } else if warning.contains(pin) {
            counts.1 += 1;
        } else {
            panic!("unexpected {mode} warning {warning:?} in {warnings:?}");
        }
    }
    counts
}
