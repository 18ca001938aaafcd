//! SARIF 2.1.0, for code-scanning dashboards.
//!
//! Cluster objects have no file, so results carry logical locations
//! (`namespace/Kind/name/field`) and the object in `properties`; what could
//! not be listed becomes tool execution notifications.

use serde_json::json;

use super::{container_label, proposed_fix};
use crate::cluster::report::AuditReport;
use crate::engine::Finding;
use crate::sarif::{self, SarifResult};

/// Renders the report as a SARIF log ([`crate::sarif`]).
pub(super) fn render(report: &AuditReport) -> String {
    let mut results = Vec::new();
    for object in &report.objects {
        for finding in &object.findings {
            let mut place = format!("{}/{}/{}", object.namespace, object.kind, object.name);
            if let Some(c) = &finding.container {
                place = format!("{place}/{}", c.field);
            }
            results.push(SarifResult {
                finding,
                message: message(finding),
                locations: vec![json!({
                    "logicalLocations": [{
                        "name": object.name,
                        "fullyQualifiedName": place,
                        "kind": "object",
                    }],
                })],
                properties: json!({
                    "apiVersion": object.api_version,
                    "kind": object.kind,
                    "namespace": object.namespace,
                    "name": object.name,
                    "container": finding.container.as_ref().map(|c| c.name.clone()),
                    "init": finding.container.as_ref().map(|c| c.init),
                    "image": finding.container.as_ref().map(|c| c.image.clone()),
                    "fix": finding.fix.map(|f| f.as_str()),
                    "applied": finding.applied,
                }),
            });
        }
    }
    let notifications = report
        .errors
        .iter()
        .map(|e| {
            let text = format!(
                "cannot list {} in {}: {}: {}",
                e.resource,
                e.scope(),
                e.reason.as_str(),
                e.message
            );
            sarif::notification(text, Vec::new())
        })
        .collect();
    sarif::log(results, notifications)
}

fn message(finding: &Finding) -> String {
    format!(
        "{}: {} Proposed fix: {}.",
        container_label(finding),
        finding.message,
        proposed_fix(finding)
    )
}
