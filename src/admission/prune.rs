//! Decoding `request.object` into only the parts the webhook reads.
//!
//! Building a `serde_json::Value` for a whole Pod (managed fields, status,
//! volumes, resources, env ...) is most of an admission's cost, yet the
//! engine, the image list and the lookup context read a handful of paths.
//! [`Pruned`] decodes the object along a fixed schema of those paths and
//! *validates* everything else without building it:
//!
//! - every level on the way to a pod spec (the object, its `spec`, a
//!   `template` or `jobTemplate`: each key of a template path in the
//!   engine's table of kinds, [`workload::KINDS`]) keeps those keys, `kind`,
//!   `apiVersion`, `metadata` (its `annotations`, `namespace`, `name`,
//!   `generateName` and `ownerReferences`: the engine never patches a
//!   controller-owned object and names it and its owner), and `items` (a
//!   `List`'s objects, walked the same way);
//! - and, as it may be the pod spec, `containers` and `initContainers`
//!   (each container's `name`, `image`, `command` and `args`),
//!   `imagePullSecrets` and `serviceAccountName`.
//!
//! The schema is a union over every kind of the table, derived from it, so
//! it needs no `kind` up front (which may come after `spec`), and a kind
//! added to the table is kept without a change here. What is
//! kept is kept whole and in place: arrays keep every element (pointers into
//! them do not move), a kept key of the wrong type (a `spec` that is a
//! string, say) is kept as it is, and a map stays a map even when nothing in
//! it is kept, so "does this member exist" answers the same for every path
//! the engine patches. Duplicate keys behave as in `Value` (the last wins).
//!
//! Skipped parts are not ignored but checked exactly as a `Value` decode
//! checks them (UTF-8, escapes, surrogates, number ranges, nesting depth),
//! so a body is accepted if and only if the full decode accepts it.
//! `request.oldObject` is decoded along the same schema: an UPDATE compares
//! each container's `image`, `command` and `args` with the old ones and
//! reads the old `resolved-images` annotation.
//! `tests/perf_equivalence.rs` proves the answers equal over every fixture
//! and generated objects.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::engine::workload;

/// An object decoded along the engine's schema (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Pruned(pub Value);

impl From<Pruned> for Value {
    fn from(pruned: Pruned) -> Value {
        pruned.0
    }
}

impl<'de> Deserialize<'de> for Pruned {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Node::Path.deserialize(deserializer).map(Pruned)
    }
}

/// Where in the schema a value sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    /// A level on a template path (an object, a workload spec, a template,
    /// a pod spec): may hold metadata, the next level, a pod spec's fields, items.
    Path,
    /// `metadata`.
    Metadata,
    /// `containers` / `initContainers`: an array of containers.
    Containers,
    /// One container.
    Container,
    /// A `List`'s `items`: an array of objects.
    Items,
    /// Kept whole.
    Keep,
}

impl Node {
    /// What a member `key` of a map at this node is, or `None` to skip it.
    fn member(self, key: &str) -> Option<Node> {
        match (self, key) {
            (Node::Path, "kind" | "apiVersion" | "imagePullSecrets" | "serviceAccountName") => Some(Node::Keep),
            (Node::Path, "metadata") => Some(Node::Metadata),
            (Node::Path, "items") => Some(Node::Items),
            (Node::Path, "containers" | "initContainers") => Some(Node::Containers),
            (Node::Path, key) if template_path_keys().contains(&key) => Some(Node::Path),
            (Node::Metadata, "annotations" | "namespace" | "name" | "generateName" | "ownerReferences") => {
                Some(Node::Keep)
            }
            (Node::Container, "name" | "image" | "command" | "args") => Some(Node::Keep),
            _ => None,
        }
    }

    /// What each element of an array at this node is, if the node is an array.
    fn element(self) -> Option<Node> {
        match self {
            Node::Containers => Some(Node::Container),
            Node::Items => Some(Node::Path),
            _ => None,
        }
    }
}

/// Every key on the way from an object to its pod spec, in any kind of
/// [`workload::KINDS`]: `spec`, `template`, `jobTemplate`.
fn template_path_keys() -> &'static [&'static str] {
    static KEYS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
        let mut keys: Vec<&'static str> = Vec::new();
        for kind in &workload::KINDS {
            for key in kind.template.split('/').skip(1).chain(["spec"]) {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        keys
    });
    &KEYS
}

impl<'de> DeserializeSeed<'de> for Node {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self == Node::Keep {
            return Value::deserialize(deserializer);
        }
        deserializer.deserialize_any(self)
    }
}

/// Scalars become what `Value` makes of them; maps and arrays follow the
/// schema, or are kept whole where the schema expects the other shape.
impl<'de> Visitor<'de> for Node {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let element = self.element().unwrap_or(Node::Keep);
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(value) = seq.next_element_seed(element)? {
            out.push(value);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // An array node given a map keeps it whole, like any unexpected shape.
        let whole = self.element().is_some();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let node = if whole { Some(Node::Keep) } else { self.member(&key) };
            match node {
                Some(node) => {
                    let value = map.next_value_seed(node)?;
                    out.insert(key.into_owned(), value);
                }
                None => map.next_value_seed(Validate)?,
            }
        }
        Ok(Value::Object(out))
    }
}

/// A map key, borrowed from the body when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A value read and checked exactly as `Value` would read it, then dropped
/// without being built (no allocation unless a string has escapes).
#[derive(Clone, Copy)]
struct Validate;

impl<'de> DeserializeSeed<'de> for Validate {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Validate {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(ValidKey)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// A map key checked as `Value` checks it (a string) and dropped.
struct ValidKey;

impl<'de> DeserializeSeed<'de> for ValidKey {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(Validate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_pod_spec_of_every_kind_of_the_table_is_kept() {
        for kind in &workload::KINDS {
            let mut object = json!({"apiVersion": kind.api_version(), "kind": kind.kind, "status": {"x": 1}});
            let mut at = &mut object;
            for key in format!("{}/spec", kind.template).split('/').skip(1) {
                at = &mut at[key];
                at["noise"] = json!([1, 2]);
            }
            *at = json!({"containers": [{"name": "c", "image": "i", "command": ["run"], "env": []}],
                "serviceAccountName": "sa", "volumes": []});
            let pruned: Pruned = serde_json::from_value(object.clone()).unwrap();
            let specs = workload::pod_specs(&pruned.0);
            assert_eq!(specs.len(), 1, "{}: {}", kind.kind, pruned.0);
            let spec = &pruned.0.pointer(&specs[0].spec).unwrap();
            assert_eq!(
                **spec,
                json!({"containers": [{"name": "c", "image": "i", "command": ["run"]}], "serviceAccountName": "sa"}),
                "{}",
                kind.kind
            );
            assert!(pruned.0.get("status").is_none());
        }
    }
}
