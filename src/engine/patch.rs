//! RFC 6902 operations on the raw object.

use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation, jsonptr::PointerBuf};
use serde_json::Value;

/// Escapes one JSON-pointer reference token (`~` → `~0`, `/` → `~1`).
pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn pointer(path: String) -> PointerBuf {
    PointerBuf::parse(path).expect("the engine builds only valid pointers")
}

/// `base` followed by `tail`, allocated once (patch paths are built per fix).
pub(crate) fn join(base: &str, tail: &str) -> String {
    let mut path = String::with_capacity(base.len() + tail.len());
    path.push_str(base);
    path.push_str(tail);
    path
}

/// `add` at `path` (creates a member, or replaces it if it exists).
pub(crate) fn add(path: String, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: pointer(path),
        value,
    })
}

/// `replace` at `path` (the member must exist).
pub(crate) fn replace(path: String, value: Value) -> PatchOperation {
    PatchOperation::Replace(ReplaceOperation {
        path: pointer(path),
        value,
    })
}

/// `remove` at `path`.
pub(crate) fn remove(path: String) -> PatchOperation {
    PatchOperation::Remove(RemoveOperation { path: pointer(path) })
}

/// Sets a whole string array at `path`: `replace` if the member exists,
/// `add` if it does not (arrays are never edited element by element, so
/// nothing is reordered).
pub(crate) fn set_strings(object: &Value, path: String, items: &[String]) -> PatchOperation {
    let value = Value::from(items.to_vec());
    if super::pointer::get(object, &path).is_some() {
        replace(path, value)
    } else {
        add(path, value)
    }
}

/// Sets annotation `key` to `value` on the object whose metadata is at
/// `metadata` (a pointer), adding the annotations map or the metadata
/// itself when missing.
pub(crate) fn set_annotation(object: &Value, metadata: &str, key: &str, value: String) -> PatchOperation {
    match super::pointer::get(object, metadata) {
        Some(Value::Object(meta)) => match meta.get("annotations") {
            Some(Value::Object(_)) => add(format!("{metadata}/annotations/{}", escape(key)), Value::String(value)),
            // Missing or `null`: write the whole map.
            _ => add(format!("{metadata}/annotations"), serde_json::json!({ key: value })),
        },
        _ => add(
            metadata.to_string(),
            serde_json::json!({ "annotations": { key: value } }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_pointer_tokens() {
        assert_eq!(escape("entrypoint-guard.io/mode"), "entrypoint-guard.io~1mode");
        assert_eq!(escape("a~b/c"), "a~0b~1c");
    }

    #[test]
    fn annotation_ops_create_what_is_missing() {
        let mut doc = json!({"metadata": {"name": "x"}});
        let op = set_annotation(&doc, "/metadata", "a.io/k", "v".into());
        json_patch::patch(&mut doc, &[op]).unwrap();
        let op = set_annotation(&doc, "/metadata", "a.io/j", "w".into());
        json_patch::patch(&mut doc, &[op]).unwrap();
        assert_eq!(doc["metadata"]["annotations"], json!({"a.io/k": "v", "a.io/j": "w"}));

        let mut bare = json!({"kind": "Pod"});
        let op = set_annotation(&bare, "/metadata", "k", "v".into());
        json_patch::patch(&mut bare, &[op]).unwrap();
        assert_eq!(bare["metadata"]["annotations"]["k"], "v");
    }
}
