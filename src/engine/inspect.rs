//! The decision: object + image facts + policy in, findings + patch out.

use std::collections::BTreeMap;

use json_patch::PatchOperation;
use serde_json::Value;

use super::finding::{Change, ContainerRef, Finding, Rule, field_path};
use super::fix::{decide, pin};
use super::patch;
use super::policy::{Mode, Policy};
use super::workload::{self, PodSpecAt};
use crate::image::{Facts, ImageFacts};

/// Annotation the kubelet puts on mirror pods of static pods; those must not change.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Container lists the engine inspects. Ephemeral containers are never
/// touched: they are added through their own subresource to debug a Pod.
const CONTAINER_LISTS: [(&str, bool); 2] = [("initContainers", true), ("containers", false)];

/// The engine's answer for one object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inspection {
    /// Everything found, in document order.
    pub findings: Vec<Finding>,
    /// The operations to apply: the fixes of objects whose mode is `fix`,
    /// plus the trace annotation for pinned images.
    pub patch: Vec<PatchOperation>,
    /// The operations that would fix every finding, whatever the mode
    /// (what `audit` output proposes).
    pub proposed: Vec<PatchOperation>,
}

impl Inspection {
    /// Whether the answer changes the object.
    pub fn changes(&self) -> bool {
        !self.patch.is_empty()
    }
}

/// Every image (as written) that `inspect` would ask facts for, without
/// duplicates, in document order: what a resolver should look up.
pub fn images(object: &Value, policy: &Policy) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for at in workload::pod_specs(object) {
        for (list, _) in CONTAINER_LISTS {
            let Some(containers) = object.pointer(&format!("{}/{list}", at.spec)).and_then(Value::as_array) else {
                continue;
            };
            for image in containers.iter().filter_map(|c| c.get("image").and_then(Value::as_str)) {
                if policy.images.applies_to(image) && !out.iter().any(|seen| seen == image) {
                    out.push(image.to_string());
                }
            }
        }
    }
    out
}

/// Inspects `object` (a Pod, pod-template kind or `List`) with the image
/// `facts` under `policy`. `ceiling` caps the mode (the `/audit` route passes
/// [`Mode::Audit`]; everything else [`Mode::Fix`]).
pub fn inspect(object: &Value, facts: &Facts, policy: &Policy, ceiling: Mode) -> Inspection {
    let mut out = Inspection::default();
    let specs = workload::pod_specs(object);
    // Pod specs of one top-level object are adjacent (a List holds one per item).
    let mut start = 0;
    while start < specs.len() {
        let end = start
            + specs[start..]
                .iter()
                .take_while(|s| s.object == specs[start].object)
                .count();
        inspect_object(object, &specs[start..end], facts, policy, ceiling, &mut out);
        start = end;
    }
    out
}

fn annotation<'a>(object: &'a Value, metadata_of: &str, key: &str) -> Option<&'a Value> {
    object.pointer(&format!("{metadata_of}/metadata/annotations"))?.get(key)
}

fn inspect_object(
    doc: &Value,
    specs: &[PodSpecAt],
    facts: &Facts,
    policy: &Policy,
    ceiling: Mode,
    out: &mut Inspection,
) {
    let object_at = &specs[0].object;
    if annotation(doc, object_at, MIRROR_POD_ANNOTATION).is_some() {
        return;
    }
    let mut findings = Vec::new();
    let mode = object_mode(doc, specs, policy, &mut findings).min(ceiling);
    if mode == Mode::Off {
        return;
    }
    for at in specs {
        for (list, init) in CONTAINER_LISTS {
            let list_at = format!("{}/{list}", at.spec);
            let Some(containers) = doc.pointer(&list_at).and_then(Value::as_array) else {
                continue;
            };
            for (i, container) in containers.iter().enumerate() {
                let pointer = format!("{list_at}/{i}");
                inspect_container(doc, container, pointer, init, object_at, facts, policy, &mut findings);
            }
        }
    }
    let applied = mode == Mode::Fix;
    let mut pinned = BTreeMap::new();
    for finding in &mut findings {
        finding.applied = applied && !finding.ops.is_empty();
        out.proposed.extend(finding.ops.iter().cloned());
        if let (Rule::ImagePinned, Some(Change::Image { before, after })) = (finding.rule, &finding.change) {
            let digest = after.rsplit_once('@').map_or(after.as_str(), |(_, d)| d);
            pinned.insert(before.clone(), digest.to_string());
        }
        if finding.applied {
            out.patch.extend(finding.ops.iter().cloned());
        }
    }
    if !pinned.is_empty() {
        let op = trace_annotation(doc, object_at, policy, pinned);
        out.proposed.push(op.clone());
        if applied {
            out.patch.push(op);
        }
    }
    out.findings.extend(findings);
}

/// The mode for one object: its own `<prefix>/mode` annotation, else its pod
/// template's, else the policy's.
fn object_mode(doc: &Value, specs: &[PodSpecAt], policy: &Policy, findings: &mut Vec<Finding>) -> Mode {
    let key = policy.mode_annotation();
    let object_at = &specs[0].object;
    let places = std::iter::once(object_at).chain(specs.iter().map(|s| &s.template).filter(|t| *t != object_at));
    for place in places {
        let Some(value) = annotation(doc, place, &key) else {
            continue;
        };
        match value.as_str().and_then(Mode::parse) {
            Some(mode) => return mode,
            None => findings.push(Finding {
                rule: Rule::InvalidModeAnnotation,
                object: object_at.clone(),
                container: None,
                message: format!(
                    "annotation {key} at {} is {value}, not off, audit or fix; using the configured mode {}",
                    field_path(&format!("{place}/metadata/annotations")),
                    policy.mode.as_str()
                ),
                fix: None,
                applied: false,
                change: None,
                ops: Vec::new(),
            }),
        }
    }
    policy.mode
}

fn trace_annotation(doc: &Value, object_at: &str, policy: &Policy, pinned: BTreeMap<String, String>) -> PatchOperation {
    let key = policy.resolved_annotation();
    // Keep what earlier admissions recorded (an UPDATE pins what CREATE could not).
    let mut record: BTreeMap<String, String> = annotation(doc, object_at, &key)
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    record.extend(pinned);
    let value = serde_json::to_string(&record).expect("a string map serializes");
    patch::set_annotation(doc, &format!("{object_at}/metadata"), &key, value)
}

/// A string array field: absent (or `null`) is `Ok(None)`; anything but an
/// array of strings is an error naming the field.
fn strings(container: &Value, field: &str) -> Result<Option<Vec<String>>, String> {
    match container.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| format!("{field} must be a list of strings")),
        Some(_) => Err(format!("{field} must be a list of strings")),
    }
}

#[allow(clippy::too_many_arguments)]
fn inspect_container(
    doc: &Value,
    container: &Value,
    pointer: String,
    init: bool,
    object_at: &str,
    facts: &Facts,
    policy: &Policy,
    findings: &mut Vec<Finding>,
) {
    let name = container.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    let image = match container.get("image") {
        Some(Value::String(image)) => image.clone(),
        None | Some(Value::Null) => String::new(),
        Some(_) => {
            let at = ContainerRef {
                field: field_path(&pointer),
                pointer,
                name,
                image: String::new(),
                init,
            };
            findings.push(invalid(object_at, at, "image must be a string".into()));
            return;
        }
    };
    if !image.is_empty() && !policy.images.applies_to(&image) {
        return;
    }
    let at = ContainerRef {
        field: field_path(&pointer),
        pointer,
        name,
        image: image.clone(),
        init,
    };
    let unresolved;
    let image_facts = match facts.get(&image) {
        Some(f) => f,
        None => {
            unresolved = ImageFacts::unknown("image facts were not resolved");
            &unresolved
        }
    };

    let (command, args) = match (strings(container, "command"), strings(container, "args")) {
        (Ok(c), Ok(a)) => (c, a),
        (Err(e), _) | (_, Err(e)) => {
            findings.push(invalid(object_at, at, e));
            return;
        }
    };
    // An empty command, or one that already starts with the wrapper, is left alone.
    if let Some(command) = command.filter(|c| !c.is_empty() && !c.starts_with(&policy.wrapper))
        && let Some(finding) = decide(doc, &at, object_at, command, args, image_facts, policy)
    {
        findings.push(finding);
    }
    if policy.pin_digests
        && !image.is_empty()
        && let Some(finding) = pin(&at, object_at, image_facts, policy)
    {
        findings.push(finding);
    }
}

fn invalid(object_at: &str, at: ContainerRef, why: String) -> Finding {
    Finding {
        rule: Rule::InvalidContainer,
        object: object_at.to_string(),
        message: format!("container {:?} at {}: {why}; left unchanged", at.name, at.field),
        container: Some(at),
        fix: None,
        applied: false,
        change: None,
        ops: Vec::new(),
    }
}
