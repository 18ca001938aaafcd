//! SARIF 2.1.0, for code-scanning dashboards.
//!
//! Cluster objects have no file, so results carry logical locations
//! (`namespace/Kind/name/field`) and the object in `properties`; what could
//! not be listed becomes tool execution notifications.

use serde_json::{Value, json};

use super::{container_label, proposed_fix};
use crate::audit::report::AuditReport;
use crate::engine::{Finding, Rule};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Renders the report as one SARIF run.
pub fn render(report: &AuditReport) -> String {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id(),
                "shortDescription": {"text": rule.description()},
                "defaultConfiguration": {"level": level(*rule)},
            })
        })
        .collect();
    let mut results = Vec::new();
    for object in &report.objects {
        for finding in &object.findings {
            let mut place = format!("{}/{}/{}", object.namespace, object.kind, object.name);
            if let Some(c) = &finding.container {
                place = format!("{place}/{}", c.field);
            }
            results.push(json!({
                "ruleId": finding.rule.id(),
                "ruleIndex": Rule::ALL.iter().position(|r| *r == finding.rule).unwrap_or(0),
                "level": level(finding.rule),
                "message": {"text": message(finding)},
                "locations": [{
                    "logicalLocations": [{
                        "name": object.name,
                        "fullyQualifiedName": place,
                        "kind": "object",
                    }],
                }],
                "properties": {
                    "apiVersion": object.api_version,
                    "kind": object.kind,
                    "namespace": object.namespace,
                    "name": object.name,
                    "container": finding.container.as_ref().map(|c| c.name.clone()),
                    "init": finding.container.as_ref().map(|c| c.init),
                    "image": finding.container.as_ref().map(|c| c.image.clone()),
                    "fix": finding.fix.map(|f| f.as_str()),
                },
            }));
        }
    }
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| {
            json!({
                "level": "error",
                "message": {"text": format!("cannot list {} in {}: {}: {}", e.resource, e.scope(), e.reason.as_str(), e.message)},
            })
        })
        .collect();
    let sarif = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "entrypoint-guard",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": report.errors.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    });
    let mut out = serde_json::to_string_pretty(&sarif).expect("a JSON value serializes");
    out.push('\n');
    out
}

/// How loud a rule is: bypassing chalk is the point, unknowns are notes.
fn level(rule: Rule) -> &'static str {
    match rule {
        Rule::CommandBypassesWrapper
        | Rule::PreferredFixWrong
        | Rule::PlatformsDisagree
        | Rule::HelmCommandOverride => "warning",
        Rule::ImageConfigUnknown | Rule::ImagePinned | Rule::ControllerOwned | Rule::OutOfScope => "note",
        Rule::InvalidImageReference | Rule::InvalidContainer | Rule::InvalidModeAnnotation => "error",
    }
}

fn message(finding: &Finding) -> String {
    format!(
        "{}: {} Proposed fix: {}.",
        container_label(finding),
        finding.message,
        proposed_fix(finding)
    )
}
