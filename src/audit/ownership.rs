//! Which objects are reported through their owner.
//!
//! A Deployment's ReplicaSets and their Pods carry the Deployment's pod
//! template, so they repeat its findings; fixing the Deployment fixes them.
//! An object is skipped when an owner it names (by uid) was itself listed by
//! this audit. An owner the audit could not list (403, timeout, a kind it does
//! not know) skips nothing, so no finding is lost.

use std::collections::HashSet;

use serde_json::Value;

/// The uids of `objects`.
pub fn uids(objects: &[Value]) -> HashSet<String> {
    objects
        .iter()
        .filter_map(|o| o.pointer("/metadata/uid").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// The first owner of `object` that is among `listed` (by uid), as `Kind/name`.
pub fn listed_owner(object: &Value, listed: &HashSet<String>) -> Option<String> {
    let owners = object.pointer("/metadata/ownerReferences")?.as_array()?;
    owners.iter().find_map(|owner| {
        let uid = owner.get("uid")?.as_str()?;
        listed.contains(uid).then(|| {
            let kind = owner.get("kind").and_then(Value::as_str).unwrap_or("?");
            let name = owner.get("name").and_then(Value::as_str).unwrap_or("?");
            format!("{kind}/{name}")
        })
    })
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
        let listed = uids(&[deploy.clone(), rs.clone(), orphan.clone()]);
        assert_eq!(listed_owner(&rs, &listed).as_deref(), Some("Deployment/d"));
        assert_eq!(listed_owner(&deploy, &listed), None);
        assert_eq!(listed_owner(&orphan, &listed), None);
    }
}
