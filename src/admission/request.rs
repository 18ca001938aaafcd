//! AdmissionReview v1 requests: decoding, and what the webhook does with each.
//!
//! The review is decoded into minimal structs that keep `request.object` as
//! the raw JSON the API server sent (`serde_json::Value`). kube's
//! `AdmissionReview<DynamicObject>` is not used on purpose: `DynamicObject`
//! re-reads `metadata` through the typed `ObjectMeta`, which drops what the
//! typed struct cannot hold (a `creationTimestamp: null`, for one), so the
//! engine would see — and patch against — a different object than the API
//! server holds. Every field not named here is skipped, so newer API servers
//! can add fields freely.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde_json::Value;

use std::sync::Arc;

use super::prune::{Pruned, Schema, skipped_strings};
use crate::engine::Kinds;

/// The only AdmissionReview version served (and answered).
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The `kind` of a review, in and out.
pub const KIND: &str = "AdmissionReview";

/// A group/version/kind, as in `request.kind`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct GroupVersionKind {
    /// API group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// API version within the group.
    #[serde(default)]
    pub version: String,
    /// The kind, e.g. `Pod`.
    #[serde(default)]
    pub kind: String,
}

impl GroupVersionKind {
    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// The operation being admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// An object is created.
    Create,
    /// An object is replaced or patched.
    Update,
    /// An object is deleted.
    Delete,
    /// A connect subresource (exec, attach, port-forward, proxy).
    Connect,
    /// Anything else a future API server may send.
    Other,
}

impl Operation {
    fn parse(s: &str) -> Operation {
        match s {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "CONNECT" => Operation::Connect,
            _ => Operation::Other,
        }
    }

    /// The name the API server uses (`CREATE`, ...); `other` for unknown ones.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
            Operation::Other => "other",
        }
    }
}

/// What the webhook needs from one AdmissionReview request.
#[derive(Clone, Debug, PartialEq)]
pub struct AdmissionRequest {
    /// Echoed in the response.
    pub uid: String,
    /// The kind of the object (`request.kind`).
    pub kind: GroupVersionKind,
    /// The operation.
    pub operation: Operation,
    /// The object's name (absent on CREATE with `generateName`).
    pub name: Option<String>,
    /// The namespace, for namespaced objects.
    pub namespace: Option<String>,
    /// The subresource (`status`, `ephemeralcontainers`, ...), if any.
    pub sub_resource: Option<String>,
    /// Whether this is a dry run. It changes nothing: the webhook has no side effects.
    pub dry_run: bool,
    /// The object as the API server sent it (`None` for DELETE and some
    /// CONNECTs); from [`decode_lean`], only the parts the webhook reads.
    pub object: Option<Value>,
    /// On UPDATE, the object being replaced (`request.oldObject`), decoded
    /// like `object`.
    pub old_object: Option<Value>,
}

/// Why a request body is not an AdmissionReview this webhook can answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON, or a field has the wrong type.
    Json {
        /// The field path where decoding stopped (`.` for the document).
        path: String,
        /// What serde_json said, with line and column.
        message: String,
    },
    /// `apiVersion` is not `admission.k8s.io/v1`.
    ApiVersion(Option<String>),
    /// `kind` is not `AdmissionReview`.
    Kind(Option<String>),
    /// No `request`.
    MissingRequest,
    /// A required field of `request` is missing or empty.
    MissingField(&'static str),
    /// `request.object` is present but not a JSON object.
    ObjectNotAnObject,
    /// `request.oldObject` is present but not a JSON object.
    OldObjectNotAnObject,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<String>| v.as_ref().map_or_else(|| "missing".to_string(), |s| format!("{s:?}"));
        match self {
            DecodeError::Json { path, message } => write!(f, "not a valid AdmissionReview: at {path}: {message}"),
            DecodeError::ApiVersion(v) => write!(f, "apiVersion is {}; only {API_VERSION} is served", shown(v)),
            DecodeError::Kind(v) => write!(f, "kind is {}; expected {KIND}", shown(v)),
            DecodeError::MissingRequest => write!(f, "the AdmissionReview has no request"),
            DecodeError::MissingField(field) => write!(f, "request.{field} is missing or empty"),
            DecodeError::ObjectNotAnObject => write!(f, "request.object is not a JSON object"),
            DecodeError::OldObjectNotAnObject => write!(f, "request.oldObject is not a JSON object"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The review as read; `O` is how `request.object` is read (a whole
/// `Value`, or [`Pruned`] to the parts the webhook reads).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound = "O: Deserialize<'de>")]
struct ReviewIn<'a, O> {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(borrow)]
    request: Option<RequestIn<'a, O>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound = "O: Deserialize<'de>")]
struct RequestIn<'a, O> {
    #[serde(borrow)]
    uid: Option<Uid<'a>>,
    kind: Option<GroupVersionKind>,
    operation: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    sub_resource: Option<String>,
    dry_run: Option<bool>,
    object: Option<O>,
    old_object: Option<O>,
}

/// Where the bytes of a body sit that decide nothing but the uid: the
/// content of `request.uid`'s string, and of every string the lean decode
/// only validated (inside a skipped value: a managed field's timestamp, a
/// volume's name), each read straight from the body, without escapes. Only
/// decoding makes one: it is a fact about the body it came from, which
/// [`super::Recall`] relies on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spans {
    uid: Range<usize>,
    skipped: Vec<Range<usize>>,
}

impl Spans {
    /// The byte range of the uid in its body.
    pub fn uid(&self) -> Range<usize> {
        self.uid.clone()
    }

    /// The byte ranges of the skipped strings, in order.
    pub fn skipped(&self) -> &[Range<usize>] {
        &self.skipped
    }
}

/// The range of the `len` bytes at `address` within `body`, when they are a
/// part of it.
fn within(body: &[u8], address: usize, len: usize) -> Option<Range<usize>> {
    let start = address.checked_sub(body.as_ptr() as usize)?;
    let end = start.checked_add(len)?;
    (start < end && end <= body.len()).then_some(start..end)
}

/// `request.uid`, borrowed from the body when written without escapes
/// (serde's `Option<Cow<str>>` never borrows): where it sits is what
/// [`Spans`] records.
struct Uid<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Uid<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Uid<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Uid<'a>, E> {
                Ok(Uid(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Uid<'a>, E> {
                Ok(Uid(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(Visit(std::marker::PhantomData))
    }
}

/// Decodes an AdmissionReview v1 request body, keeping `request.object` whole.
pub fn decode(body: &[u8]) -> Result<AdmissionRequest, DecodeError> {
    decode_as::<Value>(body).map(|(request, _)| request)
}

/// Decodes an AdmissionReview v1 request body like [`decode`], keeping of
/// `request.object` (and `request.oldObject`) only what the engine
/// ([`crate::engine::lookups`], [`crate::engine::inspect`]) reads along
/// `schema`, the schema of the policy's kinds ([`Schema::of`], see
/// [`Pruned`]): the same bodies are accepted and rejected, with the same
/// errors, and the answer is the same, for a fraction of the decoding work.
pub fn decode_lean(body: &[u8], schema: &Arc<Schema>) -> Result<AdmissionRequest, DecodeError> {
    schema
        .decode_with(|| decode_as::<Pruned>(body))
        .map(|(request, _)| request)
}

/// [`decode_lean`], also saying where the bytes that decide nothing but the
/// uid sit in `body` ([`Spans`]), when the uid is written without escapes
/// (as API servers write it).
pub fn decode_lean_spanned(
    body: &[u8],
    schema: &Arc<Schema>,
) -> Result<(AdmissionRequest, Option<Spans>), DecodeError> {
    let (decoded, skipped) = schema.decode_with(|| skipped_strings(|| decode_as::<Pruned>(body)));
    let (request, uid) = decoded?;
    let spans = uid.map(|uid| Spans {
        uid,
        skipped: skipped
            .into_iter()
            .filter_map(|(address, len)| within(body, address, len))
            .collect(),
    });
    Ok((request, spans))
}

/// Decodes `body`, with `request.object` read as `O`; also returns where
/// the uid sits, when it is borrowed from the body.
fn decode_as<'a, O: Deserialize<'a> + Into<Value>>(
    body: &'a [u8],
) -> Result<(AdmissionRequest, Option<Range<usize>>), DecodeError> {
    let review: ReviewIn<'a, O> = match serde_json::from_slice(body) {
        Ok(review) => review,
        Err(_) => return Err(explain(body)),
    };
    if review.api_version.as_deref() != Some(API_VERSION) {
        return Err(DecodeError::ApiVersion(review.api_version));
    }
    if review.kind.as_deref() != Some(KIND) {
        return Err(DecodeError::Kind(review.kind));
    }
    let request = review.request.ok_or(DecodeError::MissingRequest)?;
    let uid = request
        .uid
        .map(|u| u.0)
        .filter(|u| !u.is_empty())
        .ok_or(DecodeError::MissingField("uid"))?;
    let span = match &uid {
        // A borrowed uid is a slice of `body`: its address says where it sits.
        Cow::Borrowed(slice) => within(body, slice.as_ptr() as usize, slice.len()),
        Cow::Owned(_) => None,
    };
    let uid = uid.into_owned();
    let kind = request
        .kind
        .filter(|k| !k.kind.is_empty())
        .ok_or(DecodeError::MissingField("kind"))?;
    let operation = request
        .operation
        .filter(|o| !o.is_empty())
        .ok_or(DecodeError::MissingField("operation"))?;
    let object = request.object.map(Into::into);
    if object.as_ref().is_some_and(|o: &Value| !o.is_object()) {
        return Err(DecodeError::ObjectNotAnObject);
    }
    let old_object = request.old_object.map(Into::into);
    if old_object.as_ref().is_some_and(|o: &Value| !o.is_object()) {
        return Err(DecodeError::OldObjectNotAnObject);
    }
    let request = AdmissionRequest {
        uid,
        kind,
        operation: Operation::parse(&operation),
        name: request.name.filter(|n| !n.is_empty()),
        namespace: request.namespace.filter(|n| !n.is_empty()),
        sub_resource: request.sub_resource.filter(|s| !s.is_empty()),
        dry_run: request.dry_run.unwrap_or(false),
        object,
        old_object,
    };
    Ok((request, span))
}

/// Decodes again, slowly, to say where the body went wrong. Only bad
/// requests pay for tracking the field path.
fn explain(body: &[u8]) -> DecodeError {
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, ReviewIn<'_, Value>>(&mut de) {
        Ok(_) => match de.end() {
            Err(e) => DecodeError::Json {
                path: ".".into(),
                message: e.to_string(),
            },
            // Unreachable in practice: the fast decode failed on the same bytes.
            Ok(()) => DecodeError::Json {
                path: ".".into(),
                message: "undecodable".into(),
            },
        },
        Err(e) => DecodeError::Json {
            path: e.path().to_string(),
            message: e.into_inner().to_string(),
        },
    }
}

/// Why a request is allowed without looking at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// DELETE, CONNECT and unknown operations change no pod spec.
    Operation,
    /// A Pod's command, args and image cannot be fixed on UPDATE: they are
    /// immutable (image aside), and the CREATE already reported.
    PodUpdate,
    /// A kind holding no pod spec.
    Kind,
    /// A subresource (`status`, `ephemeralcontainers`, ...): never the pod spec's containers.
    SubResource,
    /// No object to look at.
    NoObject,
}

impl Skip {
    /// A short reason, for debug logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Operation => "operation",
            Skip::PodUpdate => "pod-update",
            Skip::Kind => "kind",
            Skip::SubResource => "subresource",
            Skip::NoObject => "no-object",
        }
    }
}

impl AdmissionRequest {
    /// Takes the object out if the engine should look at it, else says why not.
    ///
    /// The returned object always carries `kind` and `apiVersion` (from
    /// `request.kind` when the object lacks them), which the engine needs to
    /// find its pod specs; both are only read, never patched. Only the kinds
    /// in `kinds` (the policy's: built-in and custom) are looked at.
    pub fn take_object(&mut self, kinds: &Kinds) -> Result<Value, Skip> {
        let api_version = self.kind.api_version();
        let kind = self.kind.kind.as_str();
        if !matches!(self.operation, Operation::Create | Operation::Update) {
            return Err(Skip::Operation);
        }
        if self.sub_resource.is_some() {
            return Err(Skip::SubResource);
        }
        let Some(found) = kinds.find(Some(&api_version), kind) else {
            return Err(Skip::Kind);
        };
        if found.is_pod() && self.operation == Operation::Update {
            return Err(Skip::PodUpdate);
        }
        let mut object = self.object.take().ok_or(Skip::NoObject)?;
        if let Some(map) = object.as_object_mut() {
            if !map.contains_key("kind") {
                map.insert("kind".into(), Value::String(kind.to_string()));
            }
            if !map.contains_key("apiVersion") {
                map.insert("apiVersion".into(), Value::String(api_version));
            }
        }
        Ok(object)
    }

    /// Takes out the object an UPDATE replaces (`None` on CREATE), for
    /// [`crate::engine::inspect_update`].
    pub fn take_old_object(&mut self) -> Option<Value> {
        if self.operation == Operation::Update {
            self.old_object.take()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn review(request: Value) -> Vec<u8> {
        body(json!({"apiVersion": API_VERSION, "kind": KIND, "request": request}))
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = decode(b"{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\": ").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("not a valid AdmissionReview: at kind: EOF while parsing"),
            "{e}"
        );
        let e = decode(&review(json!({"uid": 5}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "not a valid AdmissionReview: at request.uid: invalid type: integer `5`, expected a string at line 1 column 79"
        );
        let e = decode(&body(json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": KIND}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "apiVersion is \"admission.k8s.io/v1beta1\"; only admission.k8s.io/v1 is served"
        );
        let e = decode(&body(json!({"apiVersion": API_VERSION}))).unwrap_err();
        assert_eq!(e, DecodeError::Kind(None));
        let e = decode(&review(json!({"kind": {"kind": "Pod"}, "operation": "CREATE"}))).unwrap_err();
        assert_eq!(e.to_string(), "request.uid is missing or empty");
        let e = decode(&review(
            json!({"uid": "u", "kind": {"kind": "Pod"}, "operation": "CREATE", "object": []}),
        ));
        assert_eq!(e.unwrap_err(), DecodeError::ObjectNotAnObject);
        let e = decode(&review(
            json!({"uid": "u", "kind": {"kind": "Pod"}, "operation": "UPDATE", "object": {}, "oldObject": 1}),
        ));
        assert_eq!(e.unwrap_err().to_string(), "request.oldObject is not a JSON object");
    }

    #[test]
    fn only_pod_specs_on_create_and_update_are_inspected() {
        let pod = json!({"spec": {"containers": []}});
        let req = |kind: Value, operation: &str, object: Option<Value>| {
            let mut r = json!({"uid": "u", "kind": kind, "operation": operation});
            if let Some(o) = object {
                r["object"] = o;
            }
            decode(&review(r)).unwrap().take_object(&Kinds::builtin())
        };
        let pod_kind = json!({"group": "", "version": "v1", "kind": "Pod"});
        let object = req(pod_kind.clone(), "CREATE", Some(pod.clone())).unwrap();
        assert_eq!(object["kind"], "Pod");
        assert_eq!(object["apiVersion"], "v1");
        assert_eq!(req(pod_kind.clone(), "UPDATE", Some(pod.clone())), Err(Skip::PodUpdate));
        assert_eq!(req(pod_kind.clone(), "DELETE", None), Err(Skip::Operation));
        assert_eq!(req(pod_kind.clone(), "CONNECT", None), Err(Skip::Operation));
        assert_eq!(req(pod_kind.clone(), "CREATE", None), Err(Skip::NoObject));
        let deployment = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
        assert!(req(deployment.clone(), "UPDATE", Some(json!({"spec": {}}))).is_ok());
        let config_map = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
        assert_eq!(req(config_map, "CREATE", Some(json!({}))), Err(Skip::Kind));
        let not_apps = json!({"group": "example.com", "version": "v1", "kind": "Deployment"});
        assert_eq!(req(not_apps, "CREATE", Some(json!({}))), Err(Skip::Kind));
        // A custom kind is looked at only when the table holds it.
        let rollout = json!({"group": "argoproj.io", "version": "v1alpha1", "kind": "Rollout"});
        let request = json!({"uid": "u", "kind": rollout, "operation": "UPDATE", "object": {"spec": {}}});
        assert_eq!(
            decode(&review(request.clone())).unwrap().take_object(&Kinds::builtin()),
            Err(Skip::Kind)
        );
        let preset = crate::engine::kinds::presets::preset("argo-rollouts").unwrap();
        let kinds = Kinds::with_custom(
            preset
                .kinds
                .iter()
                .map(|k| crate::engine::Kind::from_row(k, true))
                .collect(),
        )
        .unwrap();
        let object = decode(&review(request)).unwrap().take_object(&kinds).unwrap();
        assert_eq!(object["apiVersion"], "argoproj.io/v1alpha1");
    }
}
