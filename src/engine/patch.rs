//! RFC 6902 operations on the raw object.

use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation, jsonptr::PointerBuf};
use serde_json::Value;

use super::json;

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

/// Appends the JSON Patch document `ops`: `serde_json::to_writer(out, ops)`,
/// without serde_json's byte-at-a-time escaping of the paths and strings.
pub(crate) fn write_patch(out: &mut Vec<u8>, ops: &[PatchOperation]) {
    out.push(b'[');
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let (name, from, path, value) = match op {
            PatchOperation::Add(op) => ("add", None, &op.path, Some(&op.value)),
            PatchOperation::Remove(op) => ("remove", None, &op.path, None),
            PatchOperation::Replace(op) => ("replace", None, &op.path, Some(&op.value)),
            PatchOperation::Move(op) => ("move", Some(&op.from), &op.path, None),
            PatchOperation::Copy(op) => ("copy", Some(&op.from), &op.path, None),
            PatchOperation::Test(op) => ("test", None, &op.path, Some(&op.value)),
        };
        out.extend_from_slice(b"{\"op\":\"");
        out.extend_from_slice(name.as_bytes());
        out.push(b'"');
        if let Some(from) = from {
            out.extend_from_slice(b",\"from\":");
            json::write_str(out, from.as_str());
        }
        out.extend_from_slice(b",\"path\":");
        json::write_str(out, path.as_str());
        if let Some(value) = value {
            out.extend_from_slice(b",\"value\":");
            write_value(out, value);
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// Appends `value` as serde_json writes it: strings and lists (what fixes
/// hold) here, anything else by serde_json itself.
fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => json::write_str(out, s),
        Value::Array(items) => json::write_array(out, items, write_value),
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, value)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::write_str(out, key);
                out.push(b':');
                write_value(out, value);
            }
            out.push(b'}');
        }
        other => serde_json::to_writer(&mut *out, other).expect("a Value serializes"),
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

    #[test]
    fn patches_are_written_like_serde_json() {
        use json_patch::jsonptr::PointerBuf;
        use json_patch::{
            AddOperation, CopyOperation, MoveOperation, RemoveOperation, ReplaceOperation, TestOperation,
        };
        let path = |p: &str| PointerBuf::parse(p).unwrap();
        let values = [
            Value::String("a \"b\"\n".into()),
            serde_json::json!(["x", "y\\", ""]),
            serde_json::json!([]),
            serde_json::json!({"k/\"": "v", "a": {"b": [1, 2.5, null, true]}}),
            Value::Null,
            serde_json::json!(-3),
        ];
        let mut ops = vec![
            PatchOperation::Remove(RemoveOperation { path: path("/a~1b/0") }),
            PatchOperation::Move(MoveOperation {
                from: path("/x"),
                path: path("/y"),
            }),
            PatchOperation::Copy(CopyOperation {
                from: path("/x\"q"),
                path: path(""),
            }),
        ];
        for value in values {
            ops.push(PatchOperation::Add(AddOperation {
                path: path("/p"),
                value: value.clone(),
            }));
            ops.push(PatchOperation::Replace(ReplaceOperation {
                path: path("/metadata/annotations/a~1b"),
                value: value.clone(),
            }));
            ops.push(PatchOperation::Test(TestOperation {
                path: path("/t"),
                value,
            }));
        }
        for n in 0..=ops.len() {
            let mut out = Vec::new();
            write_patch(&mut out, &ops[..n]);
            assert_eq!(out, serde_json::to_vec(&ops[..n]).unwrap());
        }
    }
}
