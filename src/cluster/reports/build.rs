//! Building PolicyReports from an audit's findings: pure, no I/O. The
//! writer ([`super::writer`]) adds the Namespace's uid and applies them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::cluster::report::{AuditReport, AuditedObject, ObjectRef};
use crate::engine::{Change, Finding, Outcome, Severity};

/// The name of every report written, the `source` of every result, the
/// `policy` of every result and the field manager of every apply.
pub const NAME: &str = "entrypoint-guard";

/// The label that marks the reports written here (to find stale ones).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", NAME);

/// One of the two report APIs, as served by its CRDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportApi {
    /// The API group.
    pub group: &'static str,
    /// The version written.
    pub version: &'static str,
    /// The namespaced kind and its resource.
    pub kind: (&'static str, &'static str),
    /// The cluster-scoped kind and its resource.
    pub cluster_kind: (&'static str, &'static str),
    /// Whether the report itself has a `source` field (openreports does;
    /// wgpolicyk8s has it on results only, and its schema would prune it).
    pub report_source: bool,
}

/// `openreports.io/v1alpha1` Report and ClusterReport, preferred.
pub const OPEN_REPORTS: ReportApi = ReportApi {
    group: "openreports.io",
    version: "v1alpha1",
    kind: ("Report", "reports"),
    cluster_kind: ("ClusterReport", "clusterreports"),
    report_source: true,
};

/// `wgpolicyk8s.io/v1alpha2` PolicyReport and ClusterPolicyReport.
pub const WG_POLICY: ReportApi = ReportApi {
    group: "wgpolicyk8s.io",
    version: "v1alpha2",
    kind: ("PolicyReport", "policyreports"),
    cluster_kind: ("ClusterPolicyReport", "clusterpolicyreports"),
    report_source: false,
};

impl ReportApi {
    /// `group/version`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// The collection path of the reports of `namespace` (`""`: cluster reports).
    pub fn collection(&self, namespace: &str) -> String {
        if namespace.is_empty() {
            format!("/apis/{}/{}/{}", self.group, self.version, self.cluster_kind.1)
        } else {
            format!(
                "/apis/{}/{}/namespaces/{namespace}/{}",
                self.group, self.version, self.kind.1
            )
        }
    }

    /// The path of every namespaced report, in all namespaces.
    pub fn all_namespaces(&self) -> String {
        format!("/apis/{}/{}/{}", self.group, self.version, self.kind.1)
    }
}

/// The results of an audit, per namespace (`""` for cluster-scoped
/// objects), in the audit's order: every finding, then (with `passes`) a
/// `pass` per audited object without findings.
pub fn results_by_namespace(audit: &AuditReport, passes: bool, now: i64) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for object in &audit.objects {
        let results = out.entry(object.namespace.clone()).or_default();
        results.extend(object.findings.iter().map(|f| finding_result(object, f, now)));
    }
    if passes {
        for reference in &audit.passed {
            out.entry(reference.namespace.clone())
                .or_default()
                .push(pass_result(reference, now));
        }
    }
    out
}

/// The report of `namespace` holding `results`, owned by the Namespace
/// whose uid is `namespace_uid` (so that deleting it deletes the report).
pub fn report(api: &ReportApi, namespace: &str, namespace_uid: Option<&str>, results: Vec<Value>) -> Value {
    let mut summary = Map::new();
    for name in ["pass", "fail", "warn", "error", "skip"] {
        let n = results.iter().filter(|r| r["result"] == name).count();
        summary.insert(name.into(), json!(n));
    }
    let mut metadata = json!({"name": NAME, "labels": {MANAGED_BY.0: MANAGED_BY.1}});
    let kind = if namespace.is_empty() {
        api.cluster_kind.0
    } else {
        metadata["namespace"] = json!(namespace);
        api.kind.0
    };
    if let Some(uid) = namespace_uid {
        metadata["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Namespace", "name": namespace, "uid": uid}]);
    }
    let mut out = json!({"apiVersion": api.api_version(), "kind": kind, "metadata": metadata});
    if api.report_source {
        out["source"] = json!(NAME);
    }
    out["summary"] = Value::Object(summary);
    out["results"] = Value::Array(results);
    out
}

/// PolicyReport severities, from the engine's.
fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "high",
        Severity::Warning => "medium",
        Severity::Note => "info",
    }
}

fn resource(reference: &ObjectRef) -> Value {
    let mut out = json!({"apiVersion": reference.api_version, "kind": reference.kind, "name": reference.name});
    if !reference.namespace.is_empty() {
        out["namespace"] = json!(reference.namespace);
    }
    if !reference.uid.is_empty() {
        out["uid"] = json!(reference.uid);
    }
    out
}

/// One finding as a result: the rule's outcome, severity and category
/// (the engine's rule table), the object, and the fix in `properties`
/// (string values only, as the schemas demand: lists are JSON arrays).
fn finding_result(object: &AuditedObject, finding: &Finding, now: i64) -> Value {
    let outcome = finding.rule.outcome();
    let mut properties = Map::new();
    let mut put = |key: &str, value: String| {
        properties.insert(key.into(), Value::String(value));
    };
    if let Some(container) = &finding.container {
        put("container", container.name.clone());
        put("field", container.field.clone());
        put("image", container.image.clone());
    }
    if let Some(fix) = finding.fix {
        put("fix", fix.as_str().into());
        // Whether the webhook applies it at the object's next admission (mode fix).
        put("applied", finding.applied.to_string());
    }
    match &finding.change {
        // Absent after the fix: left out (the image's Entrypoint or Cmd runs).
        Some(Change::Command { after, .. }) => {
            for (key, list) in [("proposedCommand", &after.command), ("proposedArgs", &after.args)] {
                if let Some(list) = list {
                    put(key, serde_json::to_string(list).unwrap_or_default());
                }
            }
        }
        Some(Change::Image { after, .. }) => put("proposedImage", after.clone()),
        None => {}
    }
    if let Some(held) = &finding.held
        && let Some(owner) = &held.owner
    {
        put("owner", format!("{}/{}", owner.kind, owner.name));
    }
    let reference = ObjectRef {
        namespace: object.namespace.clone(),
        api_version: object.api_version.clone(),
        kind: object.kind.clone(),
        name: object.name.clone(),
        uid: object.uid.clone(),
    };
    json!({
        "source": NAME,
        "policy": NAME,
        "rule": finding.rule.id(),
        "result": outcome.as_str(),
        "scored": outcome != Outcome::Warn,
        "severity": severity(finding.rule.severity()),
        "category": finding.rule.category(),
        "message": finding.message,
        "resources": [resource(&reference)],
        "properties": properties,
        "timestamp": {"seconds": now, "nanos": 0},
    })
}

/// An audited object without findings.
fn pass_result(reference: &ObjectRef, now: i64) -> Value {
    json!({
        "source": NAME,
        "policy": NAME,
        "result": "pass",
        "scored": true,
        "message": "No container bypasses its chalk wrapper.",
        "resources": [resource(reference)],
        "timestamp": {"seconds": now, "nanos": 0},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Rule;

    fn audited(namespace: &str, rules: &[Rule]) -> AuditedObject {
        AuditedObject {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: namespace.into(),
            name: "d".into(),
            uid: "u".into(),
            findings: rules
                .iter()
                .map(|r| Finding::report(*r, "", None, String::new()))
                .collect(),
            proposed: Vec::new(),
            object: Value::Null,
        }
    }

    #[test]
    fn results_follow_the_rule_table_and_the_summary_counts_them() {
        let audit = AuditReport {
            objects: vec![
                audited("a", &[Rule::CommandBypassesWrapper, Rule::ImageConfigUnknown]),
                audited("b", &[Rule::PlatformsDisagree]),
            ],
            passed: vec![ObjectRef {
                namespace: "a".into(),
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: "p".into(),
                uid: String::new(),
            }],
            ..AuditReport::default()
        };
        let without = results_by_namespace(&audit, false, 7);
        assert_eq!(without["a"].len(), 2);
        let with = results_by_namespace(&audit, true, 7);
        let a = &with["a"];
        assert_eq!(a.len(), 3);
        assert_eq!(a[0]["result"], "fail");
        assert_eq!(a[0]["severity"], "high");
        assert_eq!(a[1]["result"], "warn");
        assert_eq!(a[1]["scored"], false);
        assert_eq!(a[2]["result"], "pass");
        assert_eq!(
            a[2]["resources"][0],
            json!({"apiVersion": "v1", "kind": "Pod", "name": "p", "namespace": "a"})
        );
        let report = report(&WG_POLICY, "a", Some("ns-uid"), a.clone());
        assert_eq!(
            report["summary"],
            json!({"pass": 1, "fail": 1, "warn": 1, "error": 0, "skip": 0})
        );
        assert!(report.get("source").is_none());
        assert_eq!(report["metadata"]["ownerReferences"][0]["uid"], "ns-uid");
    }

    #[test]
    fn cluster_scoped_objects_go_to_the_cluster_report() {
        let report = report(&OPEN_REPORTS, "", None, Vec::new());
        assert_eq!(report["kind"], "ClusterReport");
        assert!(report["metadata"].get("namespace").is_none());
        assert!(report["metadata"].get("ownerReferences").is_none());
        assert_eq!(report["source"], NAME);
        assert_eq!(
            OPEN_REPORTS.collection(""),
            "/apis/openreports.io/v1alpha1/clusterreports"
        );
        assert_eq!(
            WG_POLICY.collection("x"),
            "/apis/wgpolicyk8s.io/v1alpha2/namespaces/x/policyreports"
        );
    }
}
