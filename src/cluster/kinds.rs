//! Where each kind the engine inspects ([`KINDS`], the one table) is listed
//! in the API.

pub use crate::engine::workload::KINDS;
use crate::engine::workload::Kind;

/// The collection's path: all namespaces when `namespace` is `None`.
pub fn list_path(kind: &Kind, namespace: Option<&str>) -> String {
    let base = if kind.group.is_empty() {
        format!("/api/{}", kind.version)
    } else {
        format!("/apis/{}/{}", kind.group, kind.version)
    };
    match namespace {
        // Namespace names are DNS labels, but a typo must not build a different path.
        Some(ns) => format!("{base}/namespaces/{}/{}", percent_encode(ns), kind.plural),
        None => format!("{base}/{}", kind.plural),
    }
}

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

    #[test]
    fn paths_follow_the_api_layout() {
        let deploy = find("apps", "Deployment").unwrap();
        assert_eq!(list_path(deploy, None), "/apis/apps/v1/deployments");
        assert_eq!(
            list_path(deploy, Some("demo")),
            "/apis/apps/v1/namespaces/demo/deployments"
        );
        let pods = find("", "Pod").unwrap();
        assert_eq!(list_path(pods, Some("a/b")), "/api/v1/namespaces/a%2Fb/pods");
        assert_eq!(pods.resource(), "pods");
        assert_eq!(deploy.resource(), "deployments.apps");
    }
}
