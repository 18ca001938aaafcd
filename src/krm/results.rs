//! The ResourceList's `results`: one per finding, one per failure.
//!
//! Each result names the resource (`resourceRef`), the field (`field.path`
//! as kubectl writes it, with the value before and after the fix), the file
//! and position in it the resource came from (`file`, from the
//! `internal.config.kubernetes.io/path` and `…/index` annotations kustomize
//! and kpt set, or their older `config.kubernetes.io/` names), and the rule
//! as a tag.
//!
//! Severity `error` is kept for failures, which also make the function exit
//! 1 (the KRM SDKs tie the two together); a finding is never one. A fix the
//! function applied is `info` (nothing is left to do); a finding it could
//! not or would not fix (`mode: audit`, an unknown image config, …) is a
//! `warning`, or `info` where the rule is only a note (a pin not applied, a
//! controller-owned object).

use serde_json::{Map, Value, json};

use super::Failure;
use crate::engine::{Change, Finding, Severity};

/// Annotations naming the file a resource was read from, newest first.
const PATH_ANNOTATIONS: [&str; 2] = ["internal.config.kubernetes.io/path", "config.kubernetes.io/path"];
/// Annotations giving the resource's position among the file's documents, newest first.
const INDEX_ANNOTATIONS: [&str; 2] = ["internal.config.kubernetes.io/index", "config.kubernetes.io/index"];

/// The result for `finding`, found in `item`.
pub(crate) fn of_finding(item: &Value, finding: &Finding) -> Value {
    let mut result = Map::new();
    result.insert("message".into(), finding.message.clone().into());
    result.insert("severity".into(), severity(finding).into());
    if let Some(reference) = item.pointer(&finding.object).and_then(resource_ref) {
        result.insert("resourceRef".into(), reference);
    }
    if let Some(field) = field(finding) {
        result.insert("field".into(), field);
    }
    if let Some(file) = file(item) {
        result.insert("file".into(), file);
    }
    let mut tags = Map::new();
    tags.insert("rule".into(), finding.rule.id().into());
    if let Some(fix) = finding.fix {
        tags.insert("fix".into(), fix.as_str().into());
    }
    tags.insert("applied".into(), finding.applied.to_string().into());
    result.insert("tags".into(), Value::Object(tags));
    Value::Object(result)
}

/// The result for `failure`: severity `error`, about its item when it has one.
pub(crate) fn of_failure(items: &[Value], failure: &Failure) -> Value {
    let mut result = Map::new();
    result.insert("message".into(), failure.message.clone().into());
    result.insert("severity".into(), "error".into());
    let item = failure.item.and_then(|i| items.get(i));
    if let Some(reference) = item.and_then(resource_ref) {
        result.insert("resourceRef".into(), reference);
    }
    if let Some(path) = &failure.field {
        result.insert("field".into(), json!({"path": path}));
    }
    if let Some(file) = item.and_then(file) {
        result.insert("file".into(), file);
    }
    Value::Object(result)
}

/// `info` for an applied fix, else the rule's level with errors lowered to
/// warnings (see the module docs).
fn severity(finding: &Finding) -> &'static str {
    if finding.applied {
        return "info";
    }
    match finding.rule.severity() {
        Severity::Note => "info",
        Severity::Error | Severity::Warning => "warning",
    }
}

/// `apiVersion`, `kind`, `name` and `namespace` of `object`, when it has a kind.
fn resource_ref(object: &Value) -> Option<Value> {
    let mut reference = Map::new();
    for (key, pointer) in [
        ("apiVersion", "/apiVersion"),
        ("kind", "/kind"),
        ("name", "/metadata/name"),
        ("namespace", "/metadata/namespace"),
    ] {
        if let Some(text) = object.pointer(pointer).and_then(Value::as_str) {
            reference.insert(key.into(), text.into());
        }
    }
    reference.contains_key("kind").then_some(Value::Object(reference))
}

/// The field a finding is about: the container (with its command line
/// before and after), or its image (before and after pinning).
fn field(finding: &Finding) -> Option<Value> {
    let container = finding.container.as_ref()?;
    Some(match &finding.change {
        Some(Change::Command { before, after }) => json!({
            "path": container.field,
            "currentValue": before,
            "proposedValue": after,
        }),
        Some(Change::Image { before, after }) => json!({
            "path": format!("{}.image", container.field),
            "currentValue": before,
            "proposedValue": after,
        }),
        None => json!({"path": container.field}),
    })
}

/// `{path, index}` of the file `item` was read from, from its annotations.
fn file(item: &Value) -> Option<Value> {
    let annotations = item.pointer("/metadata/annotations")?;
    let first = |keys: &[&str]| keys.iter().find_map(|k| annotations.get(*k).and_then(Value::as_str));
    let path = first(&PATH_ANNOTATIONS)?;
    let mut file = Map::new();
    file.insert("path".into(), path.into());
    if let Some(index) = first(&INDEX_ANNOTATIONS).and_then(|i| i.parse::<u64>().ok()) {
        file.insert("index".into(), index.into());
    }
    Some(Value::Object(file))
}

/// A result as one line for standard error, the way the KRM SDKs print one:
/// `[warning] apps/v1/Deployment/shop/web spec.template.spec.containers[0]: message`.
pub(crate) fn line(result: &Value) -> String {
    let text = |pointer: &str| result.pointer(pointer).and_then(Value::as_str);
    let mut out = format!("[{}]", text("/severity").unwrap_or("info"));
    let reference: Vec<&str> = ["apiVersion", "kind", "namespace", "name"]
        .iter()
        .filter_map(|key| text(&format!("/resourceRef/{key}")))
        .collect();
    if !reference.is_empty() {
        out.push(' ');
        out.push_str(&reference.join("/"));
    }
    if let Some(path) = text("/field/path") {
        out.push(' ');
        out.push_str(path);
    }
    out.push_str(": ");
    out.push_str(text("/message").unwrap_or_default());
    out
}
