//! YAML of the fixed objects, ready for `kubectl apply`.
//!
//! Each object with a proposed fix is patched and stripped of what the server
//! owns (status, and the metadata it sets), so applying it changes only what
//! the fix changes plus fields the applier then co-owns.
//!
//! Objects the API server would not let an apply fix are left out, each with a
//! comment in its place saying what to do instead:
//! - an object with a controller (a Deployment's ReplicaSet, a ReplicaSet's
//!   Pod, a CronJob's Job) is rebuilt from its owner's template: changing it
//!   would fight the controller, so the owner is the thing to fix;
//! - a bare Pod cannot be updated (`pod updates may not change fields other
//!   than ...`) and a Job's pod template is immutable: both must be re-created.

use serde_json::Value;

use super::OutputError;
use crate::cluster::report::{AuditReport, AuditedObject};
use crate::engine::owner;

/// Metadata fields set by the API server, never by an applier.
const SERVER_METADATA: [&str; 6] = [
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
];

/// Renders every fixed object that can be applied as one YAML document
/// (`---` separated), and a comment for each one that cannot.
pub(super) fn render(report: &AuditReport) -> Result<String, OutputError> {
    let mut out = String::new();
    for object in report.objects.iter().filter(|o| !o.proposed.is_empty()) {
        if let Some(why) = left_out(object) {
            out.push_str(&format!(
                "# {} {}/{}: left out, {why}\n",
                object.kind, object.namespace, object.name
            ));
            continue;
        }
        let fixed = fixed_object(object)?;
        let text = serde_saphyr::to_string(&fixed).map_err(|source| OutputError::Yaml {
            object: format!("{} {}", object.namespace, object.kind_name()),
            source,
        })?;
        out.push_str("---\n");
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// Why `object` cannot be fixed by applying it, if it cannot.
fn left_out(object: &AuditedObject) -> Option<String> {
    if let Some(owner) = owner::controller_of(&object.object) {
        return Some(format!(
            "it is made by {}/{} from its template: fix the {} (or what owns it) instead",
            owner.kind, owner.name, owner.kind
        ));
    }
    match object.kind.as_str() {
        "Pod" => Some(
            "a Pod cannot be updated in place: delete it and create it again with the fix \
             (or fix what creates it)"
                .to_string(),
        ),
        "Job" => Some("a Job's pod template cannot change: delete it and create it again with the fix".to_string()),
        _ => None,
    }
}

/// The object with its proposed patch applied and server-owned fields removed.
pub(super) fn fixed_object(object: &AuditedObject) -> Result<Value, OutputError> {
    let mut fixed = object.object.clone();
    json_patch::patch(&mut fixed, &object.proposed).map_err(|source| OutputError::Patch {
        object: format!("{} {}", object.namespace, object.kind_name()),
        source,
    })?;
    strip_server_fields(&mut fixed);
    Ok(fixed)
}

/// Removes `status` and the server-set metadata.
pub(super) fn strip_server_fields(object: &mut Value) {
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SERVER_METADATA {
            metadata.remove(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An audited object whose fix sets `/spec/fixed`.
    fn audited(kind: &str, name: &str, metadata: Value) -> AuditedObject {
        let mut object = json!({"apiVersion": "v1", "kind": kind, "metadata": metadata, "spec": {}});
        object["metadata"]["name"] = json!(name);
        object["metadata"]["namespace"] = json!("demo");
        AuditedObject {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: "demo".into(),
            name: name.into(),
            uid: String::new(),
            findings: Vec::new(),
            proposed: serde_json::from_value(json!([{"op": "add", "path": "/spec/fixed", "value": true}])).unwrap(),
            object,
        }
    }

    #[test]
    fn bare_pods_jobs_and_owned_objects_are_comments_not_documents() {
        let owned = json!({"ownerReferences": [{"kind": "Deployment", "name": "web", "uid": "u", "controller": true}]});
        let report = AuditReport {
            objects: vec![
                audited("Pod", "bare", json!({})),
                audited(
                    "Pod",
                    "web-1-x",
                    json!({"ownerReferences": [
                    {"kind": "ReplicaSet", "name": "web-1", "uid": "u", "controller": true}]}),
                ),
                audited("ReplicaSet", "web-1", owned),
                audited("Job", "once", json!({})),
                audited("Deployment", "web", json!({"uid": "u", "resourceVersion": "7"})),
                // Adopted without being its controller: still applied as it is.
                audited(
                    "PodTemplate",
                    "t",
                    json!({"ownerReferences": [{"kind": "X", "name": "x", "uid": "v"}]}),
                ),
            ],
            ..AuditReport::default()
        };
        let text = render(&report).unwrap();
        let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        let kinds: Vec<&str> = documents.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["Deployment", "PodTemplate"], "{text}");
        assert_eq!(documents[0]["spec"]["fixed"], true);
        assert_eq!(documents[0]["metadata"].get("uid"), None, "server fields are stripped");
        let comments: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(
            comments,
            [
                "# Pod demo/bare: left out, a Pod cannot be updated in place: delete it and create it again with the fix (or fix what creates it)",
                "# Pod demo/web-1-x: left out, it is made by ReplicaSet/web-1 from its template: fix the ReplicaSet (or what owns it) instead",
                "# ReplicaSet demo/web-1: left out, it is made by Deployment/web from its template: fix the Deployment (or what owns it) instead",
                "# Job demo/once: left out, a Job's pod template cannot change: delete it and create it again with the fix",
            ],
            "{text}"
        );
    }
}
