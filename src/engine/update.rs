//! UPDATE: what the user did not change is left alone.
//!
//! A scale, a label, `kubectl rollout restart` or a controller's own update
//! resends every container as it was. Fixing or re-pinning one of them
//! would change the pod template, and so start a rollout nobody asked for
//! (a tag that moved upstream would roll a Deployment nobody touched). So a
//! container whose `image`, `command` and `args` equal those of the
//! container with the same name, in the same list of the same pod spec of
//! `oldObject`, is reported, never changed.
//!
//! One case looks like a change and is not: a GitOps tool re-applying
//! `repo:tag` from git over the `repo:tag@sha256:X` this engine pinned
//! earlier. The old object's `resolved-images` record proves the digest was
//! ours, so the earlier pin is kept rather than the tag resolved again.

use std::collections::BTreeMap;

use serde_json::Value;

use super::policy::Policy;
use crate::image::Reference;

/// The object an UPDATE replaces, as far as one object's containers need it.
pub(super) struct Previous<'a> {
    /// The old document (`oldObject`).
    doc: &'a Value,
    /// Its `resolved-images` record: image as written → the digest pinned.
    record: BTreeMap<String, String>,
}

impl<'a> Previous<'a> {
    /// The old document `doc`, for the object at `object_at`.
    pub(super) fn new(doc: &'a Value, object_at: &str, policy: &Policy) -> Self {
        Previous {
            doc,
            record: record(doc, object_at, policy),
        }
    }

    /// The container named `name` in the container list at `list_at` of the
    /// old object; `None` for a nameless container or one that is new.
    pub(super) fn container(&self, list_at: &str, name: Option<&str>) -> Option<&'a Value> {
        let name = name.filter(|n| !n.is_empty())?;
        super::pointer::get(self.doc, list_at)?
            .as_array()?
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
    }

    /// The old container's image when it is this engine's earlier pin of
    /// `image` (a tag without digest): the record names `image` with the
    /// digest the old image carries. `None` when pinning is off, `image`
    /// has a digest, or the pin was not ours (a digest written by hand and
    /// now removed is the user's change).
    pub(super) fn kept_pin(&self, image: &str, old: &Value, policy: &Policy) -> Option<String> {
        if !policy.pin_digests {
            return None;
        }
        let digest = self.record.get(image)?;
        let reference = Reference::parse(image).ok().filter(|r| r.digest().is_none())?;
        let old_image = old.get("image")?.as_str()?;
        [true, false]
            .into_iter()
            .any(|keep_tag| reference.pinned(digest, keep_tag) == old_image)
            .then(|| old_image.to_string())
    }
}

/// Whether `container`, running `image` (its image, or the pin kept for it),
/// has the image, command and args of `old`. An absent field equals `null`.
pub(super) fn unchanged(container: &Value, image: &str, old: &Value) -> bool {
    let field = |c: &Value, name: &str| c.get(name).filter(|v| !v.is_null()).cloned();
    old.get("image").and_then(Value::as_str) == Some(image)
        && field(container, "command") == field(old, "command")
        && field(container, "args") == field(old, "args")
}

/// The `resolved-images` record on the object at `object_at` of `doc`:
/// what earlier admissions pinned. Missing or unreadable is empty.
pub(super) fn record(doc: &Value, object_at: &str, policy: &Policy) -> BTreeMap<String, String> {
    super::pointer::get(doc, object_at)
        .and_then(|o| o.get("metadata"))
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(policy.resolved_annotation()))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const X: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn old_deployment(image: &str, record: Option<&str>) -> Value {
        let mut d = json!({"metadata": {}, "spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": image, "command": ["run"]}]}}}});
        if let Some(r) = record {
            d["metadata"]["annotations"] = json!({"entrypoint-guard.io/resolved-images": r});
        }
        d
    }

    #[test]
    fn keeps_only_our_own_pin() {
        let policy = Policy::default();
        let list = "/spec/template/spec/containers";
        let recorded = json!({"repo.example/app:1": X}).to_string();
        for (old_image, record, kept) in [
            (format!("repo.example/app:1@{X}"), Some(recorded.as_str()), true),
            (format!("repo.example/app@{X}"), Some(recorded.as_str()), true),
            (format!("repo.example/app:1@{X}"), None, false),
            (format!("repo.example/app:2@{X}"), Some(recorded.as_str()), false),
        ] {
            let doc = old_deployment(&old_image, record);
            let previous = Previous::new(&doc, "", &policy);
            let old = previous.container(list, Some("app")).unwrap();
            let got = previous.kept_pin("repo.example/app:1", old, &policy);
            assert_eq!(got.is_some(), kept, "{old_image} {record:?}");
        }
        let doc = old_deployment(&format!("repo.example/app:1@{X}"), Some(&recorded));
        let previous = Previous::new(&doc, "", &policy);
        assert!(previous.container(list, Some("other")).is_none());
        assert!(previous.container(list, None).is_none());
        let off = Policy {
            pin_digests: false,
            ..Policy::default()
        };
        let old = previous.container(list, Some("app")).unwrap();
        assert_eq!(previous.kept_pin("repo.example/app:1", old, &off), None);
    }

    #[test]
    fn absent_and_null_are_the_same() {
        let old = json!({"name": "a", "image": "i", "command": null});
        assert!(unchanged(&json!({"name": "a", "image": "i"}), "i", &old));
        assert!(!unchanged(&json!({"name": "a", "image": "i", "args": []}), "i", &old));
        assert!(!unchanged(&json!({"name": "a", "image": "j"}), "j", &old));
    }
}
