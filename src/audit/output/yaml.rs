//! YAML of the fixed objects, ready for `kubectl apply --server-side`.
//!
//! Each object with a proposed fix is patched and stripped of what the server
//! owns (status, and the metadata it sets), so applying it changes only what
//! the fix changes plus fields the applier then co-owns.

use serde_json::Value;

use crate::audit::report::{AuditReport, AuditedObject};

/// Metadata fields set by the API server, never by an applier.
const SERVER_METADATA: [&str; 6] = [
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
];

/// Renders every fixed object as one YAML document (`---` separated).
pub fn render(report: &AuditReport) -> Result<String, String> {
    let mut out = String::new();
    for object in report.objects.iter().filter(|o| !o.proposed.is_empty()) {
        let fixed = fixed_object(object)?;
        let text = serde_saphyr::to_string(&fixed)
            .map_err(|e| format!("cannot write {} {} as YAML: {e}", object.namespace, object.kind_name()))?;
        out.push_str("---\n");
        let changes_command = object
            .findings
            .iter()
            .any(|f| matches!(f.change, Some(crate::engine::Change::Command { .. })));
        if object.kind == "Pod" && changes_command {
            // A Pod's `image` may change in place, its `command` and `args` may
            // not: say so instead of letting the apply fail obscurely.
            out.push_str(&format!(
                "# Pod {}/{}: command and args cannot change in place; \
                 delete and re-create the Pod (or fix what creates it).\n",
                object.namespace, object.name
            ));
        }
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// The object with its proposed patch applied and server-owned fields removed.
pub fn fixed_object(object: &AuditedObject) -> Result<Value, String> {
    let mut fixed = object.object.clone();
    json_patch::patch(&mut fixed, &object.proposed).map_err(|e| {
        format!(
            "the fix of {} {} does not apply: {e}",
            object.namespace,
            object.kind_name()
        )
    })?;
    strip_server_fields(&mut fixed);
    Ok(fixed)
}

/// Removes `status` and the server-set metadata.
pub fn strip_server_fields(object: &mut Value) {
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SERVER_METADATA {
            metadata.remove(field);
        }
    }
}
