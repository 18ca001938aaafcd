//! Where pod specs live in each supported kind.

use serde_json::Value;

/// A pod spec inside an object, addressed by JSON pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSpecAt {
    /// JSON pointer to the pod spec, e.g. `/spec/template/spec`.
    pub spec: String,
    /// JSON pointer to the object that owns the pod spec's metadata: the
    /// pod template (`/spec/template`), or the Pod itself (`""`).
    pub template: String,
    /// JSON pointer to the top-level object (an item of a `List`, or `""`).
    pub object: String,
}

/// The JSON pointer, relative to the object, of the pod template of `kind`
/// (the thing holding `metadata` and `spec`), or `None` if the kind holds no pod spec.
pub fn template_pointer(api_version: Option<&str>, kind: &str) -> Option<&'static str> {
    let group = api_version.map(|v| v.rsplit_once('/').map_or("", |(g, _)| g));
    let group_is = |expected: &[&str]| group.is_none_or(|g| expected.contains(&g));
    match kind {
        "Pod" if group_is(&[""]) => Some(""),
        "PodTemplate" if group_is(&[""]) => Some("/template"),
        "ReplicationController" if group_is(&[""]) => Some("/spec/template"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" if group_is(&["apps", "extensions"]) => {
            Some("/spec/template")
        }
        "Job" if group_is(&["batch"]) => Some("/spec/template"),
        "CronJob" if group_is(&["batch"]) => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// Every pod spec in `object`, including those of `kind: List` items
/// (and lists nested in lists), in document order.
pub fn pod_specs(object: &Value) -> Vec<PodSpecAt> {
    let mut out = Vec::new();
    collect(object, String::new(), &mut out);
    out
}

fn collect(object: &Value, at: String, out: &mut Vec<PodSpecAt>) {
    let Some(kind) = object.get("kind").and_then(Value::as_str) else {
        return;
    };
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    if kind == "List" || (kind.ends_with("List") && object.get("items").is_some_and(Value::is_array)) {
        if let Some(items) = object.get("items").and_then(Value::as_array) {
            for (i, item) in items.iter().enumerate() {
                collect(item, format!("{at}/items/{i}"), out);
            }
        }
        return;
    }
    let Some(template) = template_pointer(api_version, kind) else {
        return;
    };
    let spec = format!("{template}/spec");
    if object.pointer(&spec).is_some_and(Value::is_object) {
        out.push(PodSpecAt {
            spec: format!("{at}{spec}"),
            template: format!("{at}{template}"),
            object: at,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_specs_in_every_kind() {
        let cases = [
            ("v1", "Pod", json!({"spec": {}}), "/spec"),
            ("v1", "PodTemplate", json!({"template": {"spec": {}}}), "/template/spec"),
            (
                "v1",
                "ReplicationController",
                json!({"spec": {"template": {"spec": {}}}}),
                "/spec/template/spec",
            ),
            (
                "apps/v1",
                "Deployment",
                json!({"spec": {"template": {"spec": {}}}}),
                "/spec/template/spec",
            ),
            (
                "apps/v1",
                "StatefulSet",
                json!({"spec": {"template": {"spec": {}}}}),
                "/spec/template/spec",
            ),
            (
                "apps/v1",
                "DaemonSet",
                json!({"spec": {"template": {"spec": {}}}}),
                "/spec/template/spec",
            ),
            (
                "apps/v1",
                "ReplicaSet",
                json!({"spec": {"template": {"spec": {}}}}),
                "/spec/template/spec",
            ),
            (
                "batch/v1",
                "Job",
                json!({"spec": {"template": {"spec": {}}}}),
                "/spec/template/spec",
            ),
            (
                "batch/v1",
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {}}}}}}),
                "/spec/jobTemplate/spec/template/spec",
            ),
        ];
        for (api_version, kind, mut body, expected) in cases {
            body["apiVersion"] = json!(api_version);
            body["kind"] = json!(kind);
            let specs = pod_specs(&body);
            assert_eq!(specs.len(), 1, "{kind}");
            assert_eq!(specs[0].spec, expected, "{kind}");
        }
    }

    #[test]
    fn walks_list_items_and_ignores_other_kinds() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "data": {}},
            {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": []}},
            {"apiVersion": "example.com/v1", "kind": "Deployment", "spec": {"template": {"spec": {}}}},
        ]});
        let specs = pod_specs(&list);
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].spec, "/items/1/spec");
        assert_eq!(specs[0].object, "/items/1");
        assert_eq!(specs[0].template, "/items/1");
    }
}
