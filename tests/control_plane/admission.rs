//! What the API server stores and returns for objects the webhook sees (or,
//! by the chart's selectors and matchConditions, must not see).

use std::time::Duration;

use entrypoint_guard::engine::Kind;
use serde_json::{Value, json};

use super::Suite;
use crate::control_plane::wait_for;
use crate::guard_process::events_of;
use crate::manifests::{assert_fixed, assert_unfixed, kind, kinds, object_path, workload};
use crate::namespaces::{self, warning_counts};

/// The annotation the webhook records its pins in.
const RESOLVED: &str = "entrypoint-guard.io/resolved-images";

/// Creates a namespace in `mode` and one object of every kind in it (as a
/// server dry run with `dry_run`), checking each answer carries one warning
/// per finding in `mode`'s wording; returns (kind, name, answer body).
async fn every_kind(s: &Suite, ns: &str, mode: &str, dry_run: bool) -> Vec<(&'static Kind, String, Value)> {
    namespaces::create(s, ns, Some(mode)).await;
    let mut out = Vec::new();
    for kind in kinds().iter() {
        let name = kind.kind.to_lowercase();
        let what = format!("{} {ns}/{name}", kind.kind);
        let reply = s
            .api
            .create(&kind.list_path(Some(ns)), &workload(kind, &name), dry_run)
            .await
            .ok(&format!("create {what}"));
        assert_eq!(
            warning_counts(&reply.warnings, mode),
            (2, 3),
            "{what}: {:?}",
            reply.warnings
        );
        out.push((kind, name, reply.body));
    }
    out
}

/// Every kind, created in a `fix` namespace: the answer and the stored
/// object are fixed, with one warning per change.
pub async fn fix_namespace(s: &Suite) {
    let ns = "kinds-fix";
    for (kind, name, created) in every_kind(s, ns, "fix", false).await {
        let what = format!("{} {ns}/{name}", kind.kind);
        assert_fixed(&created, &format!("the created {what}"));
        let stored = s.api.get(&object_path(kind, ns, &name)).await.ok(&what).body;
        assert_fixed(&stored, &format!("the stored {what}"));
        let resolved = stored["metadata"]["annotations"][RESOLVED].as_str().unwrap_or_default();
        assert!(
            resolved.contains("registry.example/app:1.0"),
            "{what}: {RESOLVED} = {resolved:?}"
        );
    }
}

/// Every kind, created in an `audit` namespace: stored exactly as sent, the
/// findings returned as warnings.
pub async fn audit_namespace(s: &Suite) {
    let ns = "kinds-audit";
    for (kind, name, created) in every_kind(s, ns, "audit", false).await {
        let what = format!("{} {ns}/{name}", kind.kind);
        assert_unfixed(&created, &format!("the created {what}"));
        let stored = s.api.get(&object_path(kind, ns, &name)).await.ok(&what).body;
        assert_unfixed(&stored, &format!("the stored {what}"));
        assert_eq!(stored["metadata"]["annotations"].get(RESOLVED), None, "{what}");
    }
}

/// `--dry-run=server` in a `fix` namespace: the answer is the fixed object,
/// and nothing is stored.
pub async fn dry_run(s: &Suite) {
    let ns = "kinds-dry-run";
    for (kind, name, answered) in every_kind(s, ns, "fix", true).await {
        let what = format!("{} {ns}/{name}", kind.kind);
        assert_fixed(&answered, &format!("the dry-run answer for {what}"));
        let stored = s.api.get(&object_path(kind, ns, &name)).await;
        assert_eq!(stored.status, 404, "a dry run stored {what}: {}", stored.body);
    }
}

/// The webhook's audit annotations (the findings by rule, as JSON) are in
/// the API server's audit event of the request, under the webhook's name.
pub async fn audit_annotations(s: &Suite) {
    for (ns, mode) in [("audit-log-fix", "fix"), ("audit-log-audit", "audit")] {
        namespaces::create(s, ns, Some(mode)).await;
        let pod = kind("Pod");
        s.api
            .create(&pod.list_path(Some(ns)), &workload(pod, "logged"), false)
            .await
            .ok("create the Pod");
        let event = wait_for(
            &format!("the audit event of creating pods/{ns}/logged"),
            Duration::from_secs(30),
            || async {
                Ok(events_of(&s.audit_log).into_iter().find(|e| {
                    e["stage"] == "ResponseComplete"
                        && e["verb"] == "create"
                        && e["objectRef"]["resource"] == "pods"
                        && e["objectRef"]["namespace"] == ns
                        && e["objectRef"]["name"] == "logged"
                }))
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let annotations = &event["annotations"];
        let findings = |rule: &str| -> Vec<Value> {
            let key = format!("{mode}.entrypoint-guard.io/{rule}");
            let text = annotations[&key]
                .as_str()
                .unwrap_or_else(|| panic!("no audit annotation {key} in {event}"));
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{key} is not JSON ({e}): {text}"))
        };
        let bypasses = findings("command-bypasses-wrapper");
        let pins = findings("image-pinned");
        assert_eq!((bypasses.len(), pins.len()), (2, 3), "{ns}: {annotations}");
        let applied = mode == "fix";
        for finding in bypasses.iter().chain(&pins) {
            assert_eq!(finding["applied"], json!(applied), "{ns}: {finding}");
        }
        let text = annotations.to_string();
        for container in ["init-setup", "app", "sidecar"] {
            assert!(text.contains(container), "{ns}: {container} not named in {annotations}");
        }
        // The API server's own record of calling the webhook (the index is
        // the webhook's place in the configuration) and whether it mutated.
        let webhook = format!("{mode}.entrypoint-guard.io");
        let round = annotations
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, _)| key.starts_with("mutation.webhook.admission.k8s.io/round_0_index_"))
            .filter_map(|(_, value)| serde_json::from_str::<Value>(value.as_str()?).ok())
            .find(|record| record["webhook"] == webhook.as_str())
            .unwrap_or_else(|| panic!("no mutation record of {webhook} in {annotations}"));
        assert_eq!(round["configuration"], crate::chart::FULLNAME, "{round}");
        assert_eq!(round["mutated"], json!(applied), "{round}");
    }
}

/// `kube-system` and the release namespace (`eg`, unlabelled, so the default
/// mode `fix` would apply) are excluded by the chart's namespaceSelector: the
/// webhook never sees a request from them.
pub async fn excluded_namespaces(s: &Suite) {
    namespaces::create(s, crate::chart::NAMESPACE, None).await;
    let pod = kind("Pod");
    let template = kind("PodTemplate");
    for ns in ["kube-system", crate::chart::NAMESPACE] {
        namespaces::wait_for_service_account(s, ns).await;
        for kind in [pod, template] {
            let reply = s
                .api
                .create(&kind.list_path(Some(ns)), &workload(kind, "not-sent"), false)
                .await
                .ok(&format!("create {} in {ns}", kind.kind));
            assert_unfixed(&reply.body, &format!("{} in {ns}", kind.kind));
            assert!(reply.warnings.is_empty(), "{ns}: {:?}", reply.warnings);
        }
    }
    // A request the webhook does see, sent after those: once its log line is
    // there, any line for the excluded requests would be there too (one
    // ordered log writer).
    let ns = "excluded-sentinel";
    namespaces::create(s, ns, Some("fix")).await;
    s.api
        .create(&template.list_path(Some(ns)), &workload(template, "sentinel"), false)
        .await
        .ok("create the sentinel");
    let lines = answered_lines(s, ns, "sentinel").await;
    for line in lines {
        let namespace = line["namespace"].as_str().unwrap_or_default();
        assert!(
            namespace != "kube-system" && namespace != crate::chart::NAMESPACE,
            "the webhook was sent a request from {namespace}: {line}"
        );
    }
}

/// A mirror Pod (the kubelet's copy of a static Pod) is not sent: the
/// chart's `skip-mirror-pods` matchCondition, evaluated by the API server.
pub async fn mirror_pods(s: &Suite) {
    let ns = "mirror";
    namespaces::create(s, ns, Some("fix")).await;
    let pod = kind("Pod");
    let mut mirror = workload(pod, "static-web");
    mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "static-web"});
    // The API server wants a node for a mirror Pod; none exists, none is needed.
    mirror["spec"]["nodeName"] = json!("node-1");
    let reply = s
        .api
        .create(&pod.list_path(Some(ns)), &mirror, false)
        .await
        .ok("create the mirror Pod");
    assert_unfixed(&reply.body, "the mirror Pod");
    assert!(reply.warnings.is_empty(), "{:?}", reply.warnings);
}

/// The API server's connection to the webhook is HTTP/2 (it offers h2 in
/// ALPN and the webhook accepts): every answer's log line says so.
pub async fn http2(s: &Suite) {
    let ns = "http2";
    namespaces::create(s, ns, Some("fix")).await;
    let template = kind("PodTemplate");
    s.api
        .create(&template.list_path(Some(ns)), &workload(template, "h2"), false)
        .await
        .ok("create a PodTemplate");
    let lines = answered_lines(s, ns, "h2").await;
    let ours = lines
        .iter()
        .find(|l| l["namespace"] == ns && l["name"] == "h2")
        .unwrap();
    assert_eq!(ours["http_version"], "HTTP/2.0", "{ours}");
    for line in &lines {
        assert_eq!(
            line["http_version"], "HTTP/2.0",
            "an answer over another protocol: {line}"
        );
    }
}

/// Every `admission answered` log line so far, once the one for the CREATE
/// of `name` in `namespace` is among them.
async fn answered_lines(s: &Suite, namespace: &str, name: &str) -> Vec<Value> {
    wait_for(
        &format!("the webhook's log line for {namespace}/{name}"),
        Duration::from_secs(30),
        || async {
            let lines: Vec<Value> = events_of(&s.webhook_log)
                .into_iter()
                .filter(|e| e["message"] == "admission answered")
                .collect();
            let found = lines
                .iter()
                .any(|l| l["namespace"] == namespace && l["name"] == name && l["operation"] == "CREATE");
            Ok(found.then_some(lines))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}
