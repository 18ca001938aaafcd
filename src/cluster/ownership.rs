//! Which objects are reported through their owner.
//!
//! A Deployment's ReplicaSets and their Pods carry the Deployment's pod
//! template, so they repeat its findings; fixing the Deployment fixes them.
//! An object is skipped when its controller ([`owner::controller_of`], the
//! engine's definition, so the audit and the webhook agree on who owns what)
//! was itself listed by this audit. A controller the audit could not list
//! (403, timeout, a kind it does not know) skips nothing, so no finding is lost.

use std::collections::HashSet;

use serde_json::Value;

use crate::engine::owner;

/// The uids of `objects`.
pub(crate) fn uids(objects: &[Value]) -> HashSet<String> {
    objects
        .iter()
        .filter_map(|o| o.pointer("/metadata/uid").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// The controller of `object`, as `Kind/name`, when it is among `listed` (by uid).
pub(crate) fn listed_owner(object: &Value, listed: &HashSet<String>) -> Option<String> {
    let owner = owner::controller_of(object)?;
    listed
        .contains(&owner.uid)
        .then(|| format!("{}/{}", owner.kind, owner.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn skips_only_what_a_listed_object_owns() {
        let deploy = json!({"kind": "Deployment", "metadata": {"name": "d", "uid": "u-d"}});
        let rs = json!({"kind": "ReplicaSet", "metadata": {"name": "d-1", "uid": "u-rs",
            "ownerReferences": [{"kind": "Deployment", "name": "d", "uid": "u-d", "controller": true}]}});
        let orphan = json!({"kind": "Pod", "metadata": {"name": "p", "uid": "u-p",
            "ownerReferences": [{"kind": "Rollout", "name": "r", "uid": "u-r"}]}});
        // Listed, but not its controller: the Pod's template is its own.
        let not_controlled = json!({"kind": "Pod", "metadata": {"name": "q", "uid": "u-q",
            "ownerReferences": [{"kind": "Deployment", "name": "d", "uid": "u-d"}]}});
        let listed = uids(&[deploy.clone(), rs.clone(), orphan.clone()]);
        assert_eq!(listed_owner(&rs, &listed).as_deref(), Some("Deployment/d"));
        assert_eq!(listed_owner(&deploy, &listed), None);
        assert_eq!(listed_owner(&orphan, &listed), None);
        assert_eq!(listed_owner(&not_controlled, &listed), None);
    }
}
