//! Where pod specs live in an object, by the policy's table of kinds
//! ([`super::kinds`]).

use serde_json::Value;

use super::kinds::Kinds;

/// A pod spec inside an object, addressed by JSON pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSpecAt {
    /// JSON pointer to the pod spec, e.g. `/spec/template/spec`.
    pub spec: String,
    /// JSON pointer to the object that owns the pod spec's metadata: the
    /// pod template (`/spec/template`), or the object itself (a Pod, a
    /// Knative Revision).
    pub template: String,
    /// JSON pointer to the top-level object (an item of a `List`, or `""`).
    pub object: String,
    /// Whether the object is a Pod (a leaf: nothing compares it to a template).
    pub pod: bool,
}

/// Every pod spec in `object` of the kinds in `kinds` (the policy's),
/// including those of `kind: List` items (and lists nested in lists), in
/// document order.
pub fn pod_specs(object: &Value, kinds: &Kinds) -> Vec<PodSpecAt> {
    let mut out = Vec::new();
    collect(object, String::new(), kinds, &mut out);
    out
}

fn collect(object: &Value, at: String, kinds: &Kinds, out: &mut Vec<PodSpecAt>) {
    let Some(kind) = object.get("kind").and_then(Value::as_str) else {
        return;
    };
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    if kind == "List" || (kind.ends_with("List") && object.get("items").is_some_and(Value::is_array)) {
        if let Some(items) = object.get("items").and_then(Value::as_array) {
            for (i, item) in items.iter().enumerate() {
                collect(item, format!("{at}/items/{i}"), kinds, out);
            }
        }
        return;
    }
    let Some(kind) = kinds.find(api_version, kind) else {
        return;
    };
    for pattern in &kind.pod_specs {
        for spec in pattern.find(object) {
            out.push(PodSpecAt {
                template: format!("{at}{}", pattern.template_of(&spec)),
                spec: format!("{at}{spec}"),
                object: at.clone(),
                pod: kind.is_pod(),
            });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::kinds::{Kind, Token};
    use serde_json::json;

    /// An object of `kind` holding a pod spec at each of its patterns (a `*`
    /// stands for two list elements), and the pointers of those specs.
    pub(crate) fn object_of(kind: &Kind) -> (Value, Vec<String>) {
        let mut object = json!({"apiVersion": kind.api_version(), "kind": kind.kind});
        let mut specs = Vec::new();
        for pattern in &kind.pod_specs {
            let mut at: Vec<(&mut Value, String)> = vec![(&mut object, String::new())];
            for token in pattern.tokens() {
                at = at
                    .into_iter()
                    .flat_map(|(value, pointer)| match token {
                        Token::Key(key) => {
                            let pointer = format!("{pointer}/{}", crate::engine::kinds::pattern::escape(key));
                            vec![(&mut value[key.as_str()], pointer)]
                        }
                        Token::Any => {
                            *value = json!([{}, {}]);
                            let items = value.as_array_mut().unwrap().iter_mut();
                            items.enumerate().map(|(i, v)| (v, format!("{pointer}/{i}"))).collect()
                        }
                    })
                    .collect();
            }
            for (value, pointer) in at {
                *value = json!({"containers": [{"name": "c", "image": "i"}]});
                specs.push(pointer);
            }
        }
        (object, specs)
    }

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
            let specs = pod_specs(&body, &Kinds::builtin());
            assert_eq!(specs.len(), 1, "{kind}");
            assert_eq!(specs[0].spec, expected, "{kind}");
        }
    }

    #[test]
    fn every_kind_of_the_table_is_found_where_its_patterns_are() {
        let kinds = Kinds::with_every_preset();
        for kind in kinds.iter() {
            let (object, expected) = object_of(kind);
            let found: Vec<String> = pod_specs(&object, &kinds).into_iter().map(|at| at.spec).collect();
            assert_eq!(found, expected, "{}", kind.resource());
            assert_eq!(kinds.find(Some(&kind.api_version()), &kind.kind), Some(kind));
            assert_eq!(kinds.find(Some("example.com/v1"), &kind.kind), None);
            // Without its row in the table, a custom kind holds nothing.
            let builtin = pod_specs(&object, &Kinds::builtin());
            assert_eq!(builtin.is_empty(), kind.custom, "{}", kind.resource());
        }
        assert_eq!(
            kinds
                .find(Some("extensions/v1beta1"), "Deployment")
                .map(Kind::resource)
                .as_deref(),
            Some("deployments.apps")
        );
        assert_eq!(kinds.find(Some("v1"), "ConfigMap"), None);
    }

    #[test]
    fn walks_list_items_and_ignores_other_kinds() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "data": {}},
            {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": []}},
            {"apiVersion": "example.com/v1", "kind": "Deployment", "spec": {"template": {"spec": {}}}},
        ]});
        let specs = pod_specs(&list, &Kinds::builtin());
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].spec, "/items/1/spec");
        assert_eq!(specs[0].object, "/items/1");
        assert_eq!(specs[0].template, "/items/1");
    }

    #[test]
    fn custom_kinds_are_walked_like_built_in_ones() {
        let kinds = Kinds::with_every_preset();
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "batch.volcano.sh/v1alpha1", "kind": "Job", "spec": {"tasks": [
                {"name": "ps", "template": {"spec": {"containers": []}}},
                {"name": "worker", "template": {"spec": {"containers": []}}}]}},
            {"apiVersion": "serving.knative.dev/v1", "kind": "Revision", "spec": {"containers": []}},
            {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": []}},
        ]});
        let specs = pod_specs(&list, &kinds);
        let got: Vec<(&str, &str, &str, bool)> = specs
            .iter()
            .map(|s| (s.spec.as_str(), s.template.as_str(), s.object.as_str(), s.pod))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/items/0/spec/tasks/0/template/spec",
                    "/items/0/spec/tasks/0/template",
                    "/items/0",
                    false
                ),
                (
                    "/items/0/spec/tasks/1/template/spec",
                    "/items/0/spec/tasks/1/template",
                    "/items/0",
                    false
                ),
                ("/items/1/spec", "/items/1", "/items/1", false),
                ("/items/2/spec", "/items/2", "/items/2", true),
            ]
        );
        assert_eq!(
            pod_specs(&list, &Kinds::builtin()).len(),
            1,
            "without the presets only the Pod is known"
        );
    }
}
