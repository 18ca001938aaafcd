//! Decoding `request.object` into only the parts the webhook reads.
//!
//! Building a `serde_json::Value` for a whole Pod (managed fields, status,
//! volumes, resources, env ...) is most of an admission's cost, yet the
//! engine, the image list and the lookup context read a handful of paths.
//! [`Pruned`] decodes the object along a fixed schema of those paths and
//! *validates* everything else without building it:
//!
//! - every level on the way to a pod spec (the object, its `spec`, a
//!   `template`: each key of a pod-spec path of a kind in the table,
//!   [`Schema::of`]) keeps those keys, `kind`, `apiVersion`, `metadata` (its
//!   `annotations`, `namespace`, `name`, `generateName` and
//!   `ownerReferences`: the engine never patches a controller-owned object
//!   and names it and its owner), and `items` (a `List`'s objects, walked the
//!   same way); under a key a path follows with `*` (`tasks/*`), every element
//!   (or member) is such a level;
//! - and, as it may be the pod spec, `containers` and `initContainers`
//!   (each container's `name`, `image`, `command` and `args`),
//!   `imagePullSecrets` and `serviceAccountName`.
//!
//! The schema is a union over every kind of the table (the built-in kinds
//! and the configured custom ones), derived from it, so it needs no `kind`
//! up front (which may come after `spec`). What is
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

use std::cell::RefCell;
use std::sync::{Arc, LazyLock};

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::engine::kinds::{Kinds, Token};

/// An object decoded along the engine's schema (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Pruned(pub Value);

impl From<Pruned> for Value {
    fn from(pruned: Pruned) -> Value {
        pruned.0
    }
}

/// Which keys lead to pod specs in some kind of a table: the decode schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// Keys on the way from an object to a pod spec: `spec`, `template`, `jobTemplate`, ...
    path: Vec<String>,
    /// Keys a path follows with `*`: every element or member under them is on the way.
    wild: Vec<String>,
}

static BUILTIN: LazyLock<Arc<Schema>> = LazyLock::new(|| Arc::new(Schema::of(&Kinds::builtin())));

thread_local! {
    /// The schema [`Pruned`] decodes with on this thread, when not the built-in one.
    static CURRENT: RefCell<Option<Arc<Schema>>> = const { RefCell::new(None) };
    /// Where the strings the decode skipped sit (address, length), while
    /// [`skipped_strings`] collects them.
    static SKIPPED: RefCell<Option<Vec<(usize, usize)>>> = const { RefCell::new(None) };
}

/// Runs `f` (which decodes [`Pruned`] values from one body) and also returns
/// the address and length of every string it only validated — read without
/// escapes straight from the body, inside a skipped value, so its content
/// decides nothing — for [`super::Recall`].
pub(super) fn skipped_strings<R>(f: impl FnOnce() -> R) -> (R, Vec<(usize, usize)>) {
    struct Stop;
    impl Drop for Stop {
        fn drop(&mut self) {
            SKIPPED.with(|s| s.borrow_mut().take());
        }
    }
    SKIPPED.with(|s| *s.borrow_mut() = Some(Vec::new()));
    let stop = Stop;
    let out = f();
    let spans = SKIPPED.with(|s| s.borrow_mut().take()).unwrap_or_default();
    drop(stop);
    (out, spans)
}

impl Schema {
    /// The schema of the kinds in `kinds`.
    pub fn of(kinds: &Kinds) -> Schema {
        let mut schema = Schema {
            path: Vec::new(),
            wild: Vec::new(),
        };
        let add = |list: &mut Vec<String>, key: &str| {
            if !list.iter().any(|k| k == key) {
                list.push(key.to_string());
            }
        };
        for pattern in kinds.iter().flat_map(|k| &k.pod_specs) {
            let tokens = pattern.tokens();
            for (i, token) in tokens.iter().enumerate() {
                if let Token::Key(key) = token {
                    add(&mut schema.path, key);
                    if tokens.get(i + 1) == Some(&Token::Any) {
                        add(&mut schema.wild, key);
                    }
                }
            }
        }
        schema
    }

    /// The schema of the built-in kinds.
    pub fn builtin() -> Arc<Schema> {
        BUILTIN.clone()
    }

    /// Runs `f` (which decodes [`Pruned`] values) with this schema.
    pub(crate) fn decode_with<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Arc<Schema>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = previous);
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(Some(Arc::clone(self)))));
        f()
    }
}

/// `Pruned` is decoded through `Deserialize` (inside a derived request
/// type), which takes no seed: the schema comes from [`Schema::decode_with`]
/// on this thread, else it is the built-in one.
impl<'de> Deserialize<'de> for Pruned {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let schema = CURRENT.with(|c| c.borrow().clone()).unwrap_or_else(Schema::builtin);
        At {
            node: Node::Path,
            schema: &schema,
        }
        .deserialize(deserializer)
        .map(Pruned)
    }
}

/// Where in the schema a value sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    /// A level on the way to a pod spec (an object, a workload spec, a
    /// template, a pod spec): may hold metadata, the next level, a pod
    /// spec's fields, items.
    Path,
    /// Under a key a path follows with `*`: every element or member is a [`Node::Path`].
    Wild,
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

/// A node of the schema, with the schema.
#[derive(Clone, Copy)]
struct At<'s> {
    node: Node,
    schema: &'s Schema,
}

impl<'s> At<'s> {
    fn at(self, node: Node) -> At<'s> {
        At { node, ..self }
    }

    /// What a member `key` of a map at this node is, or `None` to skip it.
    fn member(self, key: &str) -> Option<At<'s>> {
        let has = |list: &[String]| list.iter().any(|k| k == key);
        let node = match (self.node, key) {
            (Node::Wild, _) => Node::Path,
            (Node::Path, "kind" | "apiVersion" | "imagePullSecrets" | "serviceAccountName") => Node::Keep,
            (Node::Path, "metadata") => Node::Metadata,
            (Node::Path, "items") => Node::Items,
            (Node::Path, "containers" | "initContainers") => Node::Containers,
            (Node::Path, _) if has(&self.schema.wild) => Node::Wild,
            (Node::Path, _) if has(&self.schema.path) => Node::Path,
            (Node::Metadata, "annotations" | "namespace" | "name" | "generateName" | "ownerReferences") => Node::Keep,
            (Node::Container, "name" | "image" | "command" | "args") => Node::Keep,
            _ => return None,
        };
        Some(self.at(node))
    }

    /// What each element of an array at this node is, if the node is an array.
    fn element(self) -> Option<At<'s>> {
        match self.node {
            Node::Containers => Some(self.at(Node::Container)),
            Node::Items | Node::Wild => Some(self.at(Node::Path)),
            _ => None,
        }
    }

    /// Whether this node expects an array (a map given to it is kept whole).
    fn expects_array(self) -> bool {
        matches!(self.node, Node::Containers | Node::Items)
    }
}

impl<'de> DeserializeSeed<'de> for At<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.node == Node::Keep {
            return Value::deserialize(deserializer);
        }
        deserializer.deserialize_any(self)
    }
}

/// Scalars become what `Value` makes of them; maps and arrays follow the
/// schema, or are kept whole where the schema expects the other shape.
impl<'de> Visitor<'de> for At<'_> {
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
        let element = self.element().unwrap_or(self.at(Node::Keep));
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(value) = seq.next_element_seed(element)? {
            out.push(value);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // An array node given a map keeps it whole, like any unexpected shape.
        let whole = self.expects_array();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let node = if whole {
                Some(self.at(Node::Keep))
            } else {
                self.member(&key)
            };
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

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        if !v.is_empty() {
            SKIPPED.with(|s| {
                if let Some(spans) = s.borrow_mut().as_mut() {
                    spans.push((v.as_ptr() as usize, v.len()));
                }
            });
        }
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
    use crate::engine::workload::{self, tests::object_of};
    use serde_json::json;

    #[test]
    fn the_pod_specs_of_every_kind_of_the_table_are_kept() {
        let kinds = Kinds::with_every_preset();
        let schema = Arc::new(Schema::of(&kinds));
        let pod_spec = json!({"containers": [{"name": "c", "image": "i", "command": ["run"], "env": []}],
            "serviceAccountName": "sa", "volumes": []});
        let kept = json!({"containers": [{"name": "c", "image": "i", "command": ["run"]}], "serviceAccountName": "sa"});
        for kind in kinds.iter() {
            let (mut object, specs) = object_of(kind);
            object["status"] = json!({"x": 1});
            for spec in &specs {
                // Something to drop on every level on the way to the pod spec.
                let mut at = String::new();
                for token in spec.split('/').skip(1) {
                    at = format!("{at}/{token}");
                    if let Some(Value::Object(level)) = object.pointer_mut(&at) {
                        level.insert("noise".into(), json!([1, 2]));
                    }
                }
                *object.pointer_mut(spec).unwrap() = pod_spec.clone();
            }
            let decode = |schema: &Arc<Schema>| -> Value {
                let pruned: Pruned = schema.decode_with(|| serde_json::from_value(object.clone())).unwrap();
                pruned.0
            };
            let pruned = decode(&schema);
            let found: Vec<String> = workload::pod_specs(&pruned, &kinds)
                .into_iter()
                .map(|at| at.spec)
                .collect();
            assert_eq!(found, specs, "{}: {pruned}", kind.resource());
            for spec in &specs {
                assert_eq!(pruned.pointer(spec), Some(&kept), "{}", kind.resource());
            }
            assert!(pruned.get("status").is_none());
            // The built-in schema keeps the built-in kinds' pod specs, and is
            // what a decode without a schema of its own uses.
            if !kind.custom {
                assert_eq!(decode(&Schema::builtin()), pruned, "{}", kind.kind);
                let plain: Pruned = serde_json::from_value(object.clone()).unwrap();
                assert_eq!(plain.0, pruned, "{}", kind.kind);
            }
        }
    }
}
