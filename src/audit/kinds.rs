//! The kinds the audit lists: Pods and every pod-template kind the engine handles.

/// One listable kind: where its collection lives in the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind {
    /// The kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// The API group; empty for the core group.
    pub group: &'static str,
    /// The group version, e.g. `v1`.
    pub version: &'static str,
    /// The resource (lowercase plural), e.g. `deployments`.
    pub plural: &'static str,
}

impl Kind {
    const fn new(kind: &'static str, group: &'static str, version: &'static str, plural: &'static str) -> Kind {
        Kind {
            kind,
            group,
            version,
            plural,
        }
    }

    /// `v1` or `apps/v1`: what list items need in `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The collection's path: all namespaces when `namespace` is `None`.
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
}

/// Every kind the audit lists, in the order reports show them within a
/// namespace. Kept in step with [`crate::engine::workload::template_pointer`]
/// (a test checks it).
pub const KINDS: [Kind; 9] = [
    Kind::new("Pod", "", "v1", "pods"),
    Kind::new("PodTemplate", "", "v1", "podtemplates"),
    Kind::new("ReplicationController", "", "v1", "replicationcontrollers"),
    Kind::new("Deployment", "apps", "v1", "deployments"),
    Kind::new("StatefulSet", "apps", "v1", "statefulsets"),
    Kind::new("DaemonSet", "apps", "v1", "daemonsets"),
    Kind::new("ReplicaSet", "apps", "v1", "replicasets"),
    Kind::new("Job", "batch", "v1", "jobs"),
    Kind::new("CronJob", "batch", "v1", "cronjobs"),
];

/// The listed kind named `kind` in group `group`, if the audit lists it.
pub fn find(group: &str, kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.kind == kind && k.group == group)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::workload::template_pointer;

    #[test]
    fn every_kind_holds_a_pod_spec_the_engine_knows() {
        for k in KINDS {
            assert!(
                template_pointer(Some(&k.api_version()), k.kind).is_some(),
                "{} {}",
                k.api_version(),
                k.kind
            );
        }
    }

    #[test]
    fn paths_follow_the_api_layout() {
        let deploy = find("apps", "Deployment").unwrap();
        assert_eq!(deploy.list_path(None), "/apis/apps/v1/deployments");
        assert_eq!(
            deploy.list_path(Some("demo")),
            "/apis/apps/v1/namespaces/demo/deployments"
        );
        let pods = find("", "Pod").unwrap();
        assert_eq!(pods.list_path(Some("a/b")), "/api/v1/namespaces/a%2Fb/pods");
        assert_eq!(pods.resource(), "pods");
        assert_eq!(deploy.resource(), "deployments.apps");
    }
}
