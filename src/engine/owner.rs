//! Objects the engine reports but never patches: those a controller owns,
//! and, under `scope: pods`, every kind but Pod.
//!
//! A controller finds the objects it made by comparing their pod template
//! with its owner's: the Deployment controller compares each ReplicaSet's
//! template with the Deployment's (ignoring `pod-template-hash`). Patch a
//! controller-owned ReplicaSet and its template no longer matches, so the
//! controller makes another one, which would be patched again: the
//! "ReplicaSet storm". So the fix goes to the owner (the top-level workload)
//! and to the Pods, which are leaves: nothing compares a Pod back to a template.

use serde_json::Value;

use super::finding::Finding;
pub use super::finding::{Held, Owner};
use super::policy::{Policy, Scope};
use super::rule::Rule;

/// The controller of `object` (a Kubernetes object with `metadata`): the
/// first owner reference with `controller: true` (the API server allows one).
/// This is the one definition of "controller owner" that the engine and
/// `audit` share.
pub(crate) fn controller_of(object: &Value) -> Option<Owner> {
    let text = |r: &Value, field: &str| r.get(field).and_then(Value::as_str).unwrap_or("").to_string();
    object
        .get("metadata")?
        .get("ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| Owner {
            kind: text(r, "kind"),
            name: text(r, "name"),
            uid: text(r, "uid"),
        })
}

/// Whether `object` must not be patched, and why. `is_pod` says whether
/// the object is a Pod (Pods are leaves: always fixable).
pub(super) fn hold(object: &Value, is_pod: bool, policy: &Policy) -> Option<Held> {
    if is_pod {
        return None;
    }
    let owner = controller_of(object);
    if owner.is_none() && policy.scope == Scope::Workloads {
        return None;
    }
    let text = |pointer: &str| super::pointer::get(object, pointer).and_then(Value::as_str);
    let name = match (text("/metadata/name"), text("/metadata/generateName")) {
        (Some(name), _) if !name.is_empty() => name.to_string(),
        (_, Some(prefix)) if !prefix.is_empty() => format!("{prefix}*"),
        _ => "(unnamed)".to_string(),
    };
    Some(Held {
        kind: text("/kind").unwrap_or("object").to_string(),
        name,
        owner,
    })
}

/// The object-level finding that says why the object's findings are not
/// applied and what to fix instead.
pub(super) fn note(held: Held, object_at: &str) -> Finding {
    let (rule, message) = match &held.owner {
        Some(owner) => (
            Rule::ControllerOwned,
            format!(
                "{} {} is owned by {} {}: fix the {}; its Pods are fixed when they are created. \
                 A controller-owned object is never patched: its controller compares its pod template \
                 with the owner's and would replace a changed one, again and again",
                held.kind, held.name, owner.kind, owner.name, owner.kind
            ),
        ),
        None => (
            Rule::OutOfScope,
            format!(
                "{} {} is not patched: scope is pods, so only Pods are fixed (when they are created); \
                 fix the manifest at its source to change the {} itself",
                held.kind, held.name, held.kind
            ),
        ),
    };
    Finding {
        held: Some(held),
        ..Finding::report(rule, object_at, None, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_controller_reference_counts() {
        let rs = json!({"kind": "ReplicaSet", "metadata": {"name": "web-5d8f", "ownerReferences": [
            {"kind": "Rollout", "name": "r", "uid": "u-r"},
            {"kind": "Deployment", "name": "web", "uid": "u-d", "controller": true}]}});
        let owner = controller_of(&rs).unwrap();
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Deployment", "web", "u-d")
        );
        let not_controller =
            json!({"metadata": {"ownerReferences": [{"kind": "X", "name": "x", "controller": false}]}});
        assert_eq!(controller_of(&not_controller), None);
        assert_eq!(controller_of(&json!({"metadata": {"ownerReferences": "bogus"}})), None);
    }

    #[test]
    fn pods_are_never_held_and_scope_holds_the_rest() {
        let owned_pod = json!({"kind": "Pod", "metadata": {"generateName": "web-5d8f-",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d8f", "controller": true}]}});
        let pods_only = Policy {
            scope: Scope::Pods,
            ..Policy::default()
        };
        assert_eq!(hold(&owned_pod, true, &pods_only), None);
        let deployment = json!({"kind": "Deployment", "metadata": {"name": "web"}});
        assert_eq!(hold(&deployment, false, &Policy::default()), None);
        let held = hold(&deployment, false, &pods_only).unwrap();
        assert_eq!((held.reason(), held.name.as_str()), ("scope", "web"));
        let job = json!({"kind": "Job", "metadata": {"generateName": "nightly-",
            "ownerReferences": [{"kind": "CronJob", "name": "nightly", "controller": true}]}});
        let held = hold(&job, false, &Policy::default()).unwrap();
        assert_eq!((held.reason(), held.name.as_str()), ("owned", "nightly-*"));
    }
}
