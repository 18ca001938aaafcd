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

/// A kind the engine inspects: a Pod or a kind holding a pod template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kind {
    /// The kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// The API group it is listed under; empty for the core group.
    pub group: &'static str,
    /// Older groups that served the same kind with the same layout
    /// (`extensions` Deployments): still recognised in manifests.
    pub legacy_groups: &'static [&'static str],
    /// The group version it is listed under, e.g. `v1`.
    pub version: &'static str,
    /// The resource (lowercase plural), e.g. `deployments`.
    pub plural: &'static str,
    /// JSON pointer, relative to the object, to its pod template (the thing
    /// holding `metadata` and `spec`): `""` for a Pod, which is its own.
    pub template: &'static str,
}

impl Kind {
    const fn new(
        kind: &'static str,
        group: &'static str,
        version: &'static str,
        plural: &'static str,
        template: &'static str,
    ) -> Kind {
        Kind {
            kind,
            group,
            legacy_groups: &[],
            version,
            plural,
            template,
        }
    }

    /// `v1` or `apps/v1`: the `apiVersion` it is listed under.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The collection's API path: all namespaces when `namespace` is `None`.
    pub fn list_path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            // Namespace names are DNS labels, but a typo must not build a different path.
            Some(ns) => format!("{base}/namespaces/{}/{}", percent_encode(ns), self.plural),
            None => format!("{base}/{}", self.plural),
        }
    }

    /// `deployments.apps` (or `pods`): the resource as RBAC and kubectl name it.
    pub fn resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether an object of `api_version` (any version; `None`: unknown)
    /// is of this kind's group.
    fn in_group(&self, api_version: Option<&str>) -> bool {
        let Some(api_version) = api_version else {
            return true;
        };
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        group == self.group || self.legacy_groups.contains(&group)
    }
}

/// Every kind the engine inspects, in the order reports show them. The one
/// table of supported kinds: the pod-spec walk ([`kind_of`], [`pod_specs`]),
/// which admission requests are inspected, the audit's listing, the metric
/// labels and the lean decode schema all derive from it (each has a test
/// that fails if it does not). Issue 16's custom kinds extend a copy of it
/// at runtime: every consumer goes through [`KINDS`] or [`kind_of`].
pub const KINDS: [Kind; 9] = [
    Kind::new("Pod", "", "v1", "pods", ""),
    Kind::new("PodTemplate", "", "v1", "podtemplates", "/template"),
    Kind::new(
        "ReplicationController",
        "",
        "v1",
        "replicationcontrollers",
        "/spec/template",
    ),
    Kind {
        legacy_groups: &["extensions"],
        ..Kind::new("Deployment", "apps", "v1", "deployments", "/spec/template")
    },
    Kind::new("StatefulSet", "apps", "v1", "statefulsets", "/spec/template"),
    Kind {
        legacy_groups: &["extensions"],
        ..Kind::new("DaemonSet", "apps", "v1", "daemonsets", "/spec/template")
    },
    Kind {
        legacy_groups: &["extensions"],
        ..Kind::new("ReplicaSet", "apps", "v1", "replicasets", "/spec/template")
    },
    Kind::new("Job", "batch", "v1", "jobs", "/spec/template"),
    Kind::new("CronJob", "batch", "v1", "cronjobs", "/spec/jobTemplate/spec/template"),
];

/// Escapes everything but unreserved characters, so a path segment stays one segment.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The supported kind named `kind` in `api_version` (`None`: any group), or
/// `None` if the engine does not inspect it.
pub fn kind_of(api_version: Option<&str>, kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.kind == kind && k.in_group(api_version))
}

/// The JSON pointer, relative to the object, of the pod template of `kind`
/// (the thing holding `metadata` and `spec`), or `None` if the kind holds no pod spec.
pub fn template_pointer(api_version: Option<&str>, kind: &str) -> Option<&'static str> {
    kind_of(api_version, kind).map(|k| k.template)
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
    fn every_kind_of_the_table_is_found_where_its_template_is() {
        for kind in &KINDS {
            let mut object = json!({"apiVersion": kind.api_version(), "kind": kind.kind});
            let spec = format!("{}/spec", kind.template);
            let mut at = &mut object;
            for token in spec.split('/').skip(1) {
                at = &mut at[token];
            }
            *at = json!({"containers": []});
            let specs = pod_specs(&object);
            assert_eq!(specs.len(), 1, "{}", kind.kind);
            assert_eq!(specs[0].spec, spec);
            assert_eq!(kind_of(Some(&kind.api_version()), kind.kind), Some(kind));
            assert_eq!(kind_of(Some("example.com/v1"), kind.kind), None);
        }
        assert_eq!(
            template_pointer(Some("extensions/v1beta1"), "Deployment"),
            Some("/spec/template")
        );
        assert_eq!(template_pointer(Some("v1"), "ConfigMap"), None);
        let deploy = kind_of(Some("apps/v1"), "Deployment").unwrap();
        assert_eq!(deploy.list_path(None), "/apis/apps/v1/deployments");
        assert_eq!(
            deploy.list_path(Some("demo")),
            "/apis/apps/v1/namespaces/demo/deployments"
        );
        let pods = kind_of(Some("v1"), "Pod").unwrap();
        assert_eq!(pods.list_path(Some("a/b")), "/api/v1/namespaces/a%2Fb/pods");
        assert_eq!(pods.resource(), "pods");
        assert_eq!(deploy.resource(), "deployments.apps");
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
