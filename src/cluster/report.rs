//! What an audit found: objects with findings, listing errors, a summary.

use std::collections::BTreeMap;

use json_patch::PatchOperation;
use serde::Serialize;
use serde_json::Value;

use super::list::FailureReason;
use crate::engine::{Finding, Rule};

/// One object with findings.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditedObject {
    /// `apps/v1`, ...
    pub api_version: String,
    /// `Deployment`, ...
    pub kind: String,
    /// The namespace (every audited kind is namespaced).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid` (PolicyReport `resources`).
    #[serde(skip)]
    pub uid: String,
    /// What the engine found, exactly as `engine::inspect` reports it.
    /// `applied` says whether the object's mode is `fix` (the webhook would
    /// apply the fix on the object's next admission); the audit applies nothing.
    pub findings: Vec<Finding>,
    /// The JSON patch that would fix every finding.
    pub proposed: Vec<PatchOperation>,
    /// The object as listed (with `apiVersion` and `kind`); `null` unless
    /// [`super::AuditOptions::keep_objects`].
    #[serde(skip)]
    pub object: Value,
}

impl AuditedObject {
    /// `Deployment/app`.
    pub fn kind_name(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// An audited object, by reference (PolicyReport `resources`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// The namespace (first, so that references sort by namespace).
    pub namespace: String,
    /// `apps/v1`, ...
    pub api_version: String,
    /// `Deployment`, ...
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid` (empty when the object has none).
    pub uid: String,
}

impl ObjectRef {
    /// The reference to a listed object (with `apiVersion` and `kind`).
    pub fn of(object: &Value) -> ObjectRef {
        let text = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        ObjectRef {
            namespace: text("/metadata/namespace"),
            api_version: text("/apiVersion"),
            kind: text("/kind"),
            name: text("/metadata/name"),
            uid: text("/metadata/uid"),
        }
    }
}

/// A kind that could not be (fully) listed in a scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditError {
    /// `Deployment`, ...
    pub kind: String,
    /// `deployments.apps`: what the ClusterRole must allow.
    pub resource: String,
    /// The namespace listed, or `None` for all namespaces.
    pub namespace: Option<String>,
    /// The class of failure.
    pub reason: FailureReason,
    /// What happened.
    pub message: String,
    /// Objects read before the failure (still audited).
    pub items_read: usize,
}

impl AuditError {
    /// `namespace demo` or `all namespaces`.
    pub fn scope(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("namespace {ns}"),
            None => "all namespaces".to_string(),
        }
    }
}

/// Counts over the whole audit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Objects read from the API server.
    pub listed: usize,
    /// Objects inspected (listed minus those reported through their owner).
    pub audited: usize,
    /// Objects skipped because a listed owner reports them (see `--pods`).
    pub skipped_owned: usize,
    /// Objects with at least one finding.
    pub with_findings: usize,
    /// Findings in all.
    pub findings: usize,
    /// Kinds or namespaces that could not be listed.
    pub errors: usize,
}

/// The result of one audit.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    /// Counts.
    pub summary: Summary,
    /// Objects with findings, by namespace, kind (in the order of the policy's table of kinds) and name.
    pub objects: Vec<AuditedObject>,
    /// What could not be listed.
    pub errors: Vec<AuditError>,
    /// Audited objects without findings, with [`super::AuditOptions::keep_passed`] only.
    #[serde(skip)]
    pub passed: Vec<ObjectRef>,
}

impl AuditReport {
    /// Findings per `(namespace, rule)`, for the `serve` gauges. Only pairs
    /// with findings appear: a periodic exporter clears its gauge family
    /// before setting these, so a namespace that was fixed drops to nothing.
    pub fn counts_by_namespace_and_rule(&self) -> BTreeMap<(String, Rule), u64> {
        let mut out = BTreeMap::new();
        for object in &self.objects {
            for finding in &object.findings {
                *out.entry((object.namespace.clone(), finding.rule)).or_insert(0) += 1;
            }
        }
        out
    }

    /// Whether anything was found.
    pub fn has_findings(&self) -> bool {
        self.summary.findings > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: Rule) -> Finding {
        Finding::report(rule, "", None, String::new())
    }

    fn object(namespace: &str, rules: &[Rule]) -> AuditedObject {
        AuditedObject {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: namespace.into(),
            name: "d".into(),
            uid: String::new(),
            findings: rules.iter().map(|r| finding(*r)).collect(),
            proposed: Vec::new(),
            object: Value::Null,
        }
    }

    #[test]
    fn counts_add_up_by_namespace_and_rule() {
        let report = AuditReport {
            objects: vec![
                object("a", &[Rule::CommandBypassesWrapper, Rule::ImagePinned]),
                object("a", &[Rule::CommandBypassesWrapper]),
                object("b", &[Rule::ImageConfigUnknown]),
            ],
            ..AuditReport::default()
        };
        let counts = report.counts_by_namespace_and_rule();
        assert_eq!(counts.len(), 3);
        assert_eq!(counts[&("a".to_string(), Rule::CommandBypassesWrapper)], 2);
        assert_eq!(counts[&("a".to_string(), Rule::ImagePinned)], 1);
        assert_eq!(counts[&("b".to_string(), Rule::ImageConfigUnknown)], 1);
    }
}
