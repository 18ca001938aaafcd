//! The decision: object + image facts + policy in, findings + patch out.

use std::collections::BTreeMap;

use json_patch::PatchOperation;
use serde_json::Value;

use super::finding::{Change, ContainerRef, Finding, field_path};
use super::fix::{decide, keep_pin, may_bypass, pin};
use super::owner::{self, Held};
use super::patch;
use super::pointer;
use super::policy::{Mode, Policy};
use super::rule::Rule;
use super::update::{self, Previous};
use super::workload::{self, PodSpecAt};
use crate::image::{Facts, ImageFacts};

/// Annotation the kubelet puts on mirror pods of static pods; those must not change.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Container lists the engine inspects. Ephemeral containers are never
/// touched: they are added through their own subresource to debug a Pod.
const CONTAINER_LISTS: [(&str, bool); 2] = [("initContainers", true), ("containers", false)];

/// The engine's answer for one object.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    /// Everything found, in document order (an object's
    /// [`Rule::ControllerOwned`] or [`Rule::OutOfScope`] note first).
    pub findings: Vec<Finding>,
    /// The operations to apply: the fixes of objects whose mode is `fix`,
    /// plus the trace annotation for pinned images.
    pub patch: Vec<PatchOperation>,
    /// The operations that would fix every finding, whatever the mode
    /// (what `audit` output proposes). Controller-owned objects propose
    /// nothing: their fix belongs in their owner.
    pub proposed: Vec<PatchOperation>,
    /// Objects in mode `fix` with fixes that were withheld: owned by a
    /// controller, or not a Pod under `scope: pods`.
    pub held: Vec<Held>,
    /// The mode the object was inspected in: its mode annotation (or its
    /// pod template's), else the policy's, capped by the ceiling; `off` for
    /// a mirror pod. For a `List`, the most intrusive of its objects'. An
    /// object holding no pod spec has the policy's mode, capped.
    pub mode: Mode,
}

/// An inspection that found nothing and looked at nothing (mode `off`).
impl Default for Inspection {
    fn default() -> Self {
        Inspection {
            findings: Vec::new(),
            patch: Vec::new(),
            proposed: Vec::new(),
            held: Vec::new(),
            mode: Mode::Off,
        }
    }
}

impl Inspection {
    /// Whether the answer changes the object.
    pub fn changes(&self) -> bool {
        !self.patch.is_empty()
    }
}

/// The container lists of `specs` (one object's pod specs), in document
/// order: the pointer of each list, whether it holds init containers, and
/// its containers. A list's pointer is made once, not once per container.
pub(super) fn container_lists<'a>(doc: &'a Value, specs: &[PodSpecAt]) -> Vec<(String, bool, &'a [Value])> {
    let mut lists = Vec::with_capacity(specs.len() * CONTAINER_LISTS.len());
    for at in specs {
        for (list, init) in CONTAINER_LISTS {
            let mut list_at = String::with_capacity(at.spec.len() + list.len() + 1);
            list_at.push_str(&at.spec);
            list_at.push('/');
            list_at.push_str(list);
            let items = pointer::get(doc, &list_at)
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            lists.push((list_at, init, items));
        }
    }
    lists
}

/// `list_at/i`: the pointer of item `i` of the list at `list_at`.
fn item_pointer(list_at: &str, i: usize) -> String {
    let mut pointer = String::with_capacity(list_at.len() + 4);
    pointer.push_str(list_at);
    pointer.push('/');
    match u8::try_from(i) {
        Ok(digit @ 0..=9) => pointer.push(char::from(b'0' + digit)),
        _ => pointer.push_str(&i.to_string()),
    }
    pointer
}

/// Inspects `object` (a Pod, pod-template kind or `List`) with the image
/// `facts` under `policy`. `ceiling` caps the mode (the `/audit` route passes
/// [`Mode::Audit`]; everything else [`Mode::Fix`]).
pub fn inspect(object: &Value, facts: &Facts, policy: &Policy, ceiling: Mode) -> Inspection {
    inspect_with(object, None, facts, policy, ceiling, true)
}

/// [`inspect`] for an UPDATE that replaces `old`: containers whose image,
/// command and args are those of `old` are reported, never changed, and a
/// pin this engine made earlier is kept (see `super::update`).
pub fn inspect_update(object: &Value, old: &Value, facts: &Facts, policy: &Policy, ceiling: Mode) -> Inspection {
    inspect_with(object, Some(old), facts, policy, ceiling, true)
}

/// [`inspect`] (or, with `old`, [`inspect_update`]) for an admission answer,
/// which never shows [`Inspection::proposed`]: left empty, so its copy of
/// every fix's operations is not made. Everything else is the same.
pub(crate) fn inspect_to_answer(
    object: &Value,
    old: Option<&Value>,
    facts: &Facts,
    policy: &Policy,
    ceiling: Mode,
) -> Inspection {
    inspect_with(object, old, facts, policy, ceiling, false)
}

fn inspect_with(
    object: &Value,
    old: Option<&Value>,
    facts: &Facts,
    policy: &Policy,
    ceiling: Mode,
    propose: bool,
) -> Inspection {
    let mut out = Inspection::default();
    let specs = workload::pod_specs(object, &policy.kinds);
    if specs.is_empty() {
        out.mode = policy.mode.min(ceiling);
    } // else raised by each object inspected
    // Pod specs of one top-level object are adjacent (a List holds one per item).
    for specs in specs.chunk_by(|a, b| a.object == b.object) {
        let object = Object {
            doc: object,
            at: &specs[0].object,
            facts,
            policy,
            previous: old.map(|old| Previous::new(old, &specs[0].object, policy)),
            propose,
        };
        object.inspect(specs, ceiling, &mut out);
    }
    out
}

fn annotation<'a>(object: &'a Value, metadata_of: &str, key: &str) -> Option<&'a Value> {
    pointer::get(object, metadata_of)?
        .get("metadata")?
        .get("annotations")?
        .get(key)
}

/// One top-level object being inspected, and what its containers are judged with.
struct Object<'a> {
    /// The whole document.
    doc: &'a Value,
    /// Pointer to the object in `doc`.
    at: &'a str,
    facts: &'a Facts,
    policy: &'a Policy,
    /// On UPDATE, the object it replaces.
    previous: Option<Previous<'a>>,
    /// Whether to fill [`Inspection::proposed`].
    propose: bool,
}

impl Object<'_> {
    fn inspect(&self, specs: &[PodSpecAt], ceiling: Mode, out: &mut Inspection) {
        let (doc, object_at, policy) = (self.doc, self.at, self.policy);
        if annotation(doc, object_at, MIRROR_POD_ANNOTATION).is_some() {
            return;
        }
        let mut findings = Vec::new();
        let mode = object_mode(doc, specs, policy, &mut findings).min(ceiling);
        out.mode = out.mode.max(mode);
        if mode == Mode::Off {
            return;
        }
        for (list_at, init, items) in container_lists(doc, specs) {
            for (i, container) in items.iter().enumerate() {
                self.inspect_container(container, &list_at, i, init, &mut findings);
            }
        }
        let object = pointer::get(doc, object_at).expect("pod specs point into the document");
        let held = owner::hold(object, specs[0].pod, policy);
        let owned = held.as_ref().is_some_and(|h| h.owner.is_some());
        // Proposing nothing is what an owned object and an answer share.
        let propose = self.propose && !owned;
        let applied = mode == Mode::Fix && held.is_none();
        let mut pinned = BTreeMap::new();
        for finding in &mut findings {
            finding.applied = applied && !finding.ops.is_empty();
            if propose {
                out.proposed.extend(finding.ops.iter().cloned());
            }
            if let (Rule::ImagePinned, Some(Change::Image { before, after })) = (finding.rule, &finding.change) {
                let digest = after.rsplit_once('@').map_or(after.as_str(), |(_, d)| d);
                // A mirror's answer names the mirror: `sha256:… from mirror.corp:5000`.
                let mirror = self
                    .facts
                    .get(before)
                    .filter(|f| f.digest.as_deref() == Some(digest))
                    .and_then(|f| f.source.as_deref());
                let record = match mirror {
                    Some(host) => format!("{digest} from {host}"),
                    None => digest.to_string(),
                };
                pinned.insert(before.clone(), record);
            }
            if finding.applied {
                out.patch.extend(finding.ops.iter().cloned());
            }
        }
        if !pinned.is_empty() {
            let op = trace_annotation(doc, object_at, policy, pinned);
            if propose {
                out.proposed.push(op.clone());
            }
            if applied {
                out.patch.push(op);
            }
        }
        if let Some(held) = held
            && !findings.is_empty()
        {
            if mode == Mode::Fix && findings.iter().any(|f| !f.ops.is_empty()) {
                out.held.push(held.clone());
            }
            findings.insert(0, owner::note(held, object_at));
        }
        out.findings.extend(findings);
    }

    fn inspect_container(
        &self,
        container: &Value,
        list_at: &str,
        index: usize,
        init: bool,
        findings: &mut Vec<Finding>,
    ) {
        let (object_at, policy) = (self.at, self.policy);
        let name = container.get("name").and_then(Value::as_str).unwrap_or("");
        let image = match container.get("image") {
            Some(Value::String(image)) => image.as_str(),
            None | Some(Value::Null) => "",
            Some(_) => {
                let pointer = item_pointer(list_at, index);
                let at = ContainerRef {
                    field: field_path(&pointer),
                    pointer,
                    name: name.to_string(),
                    image: String::new(),
                    init,
                };
                findings.push(invalid(object_at, at, "image must be a string".into()));
                return;
            }
        };
        if !image.is_empty() && !policy.images.applies_to(image) {
            return;
        }
        // On UPDATE: the container it replaces, a pin of ours to keep, and
        // whether the user left it as it was.
        let old = self
            .previous
            .as_ref()
            .and_then(|p| p.container(list_at, Some(name)).map(|c| (p, c)));
        let kept = old.and_then(|(previous, old)| previous.kept_pin(image, old, policy));
        let effective = kept.as_deref().unwrap_or(image);
        let unchanged = old.is_some_and(|(_, old)| update::unchanged(container, effective, old));

        let pointer = item_pointer(list_at, index);
        let at = ContainerRef {
            field: field_path(&pointer),
            pointer,
            name: name.to_string(),
            image: image.to_string(),
            init,
        };
        let unresolved;
        let image_facts = match self.facts.get(effective) {
            Some(f) => f,
            None => {
                unresolved = ImageFacts::unknown("image facts were not resolved");
                &unresolved
            }
        };
        let first = findings.len();
        match (strings(container, "command"), strings(container, "args")) {
            (Ok(command), Ok(args)) => {
                if let Some(command) = command.filter(|c| may_bypass(c, policy))
                    && let Some(finding) = decide(self.doc, &at, object_at, command, args, image_facts, policy)
                {
                    findings.push(finding);
                }
            }
            (Err(e), _) | (_, Err(e)) => findings.push(invalid(object_at, at.clone(), e.to_string())),
        }
        if unchanged {
            for finding in &mut findings[first..] {
                finding.unchanged = true;
                finding.ops.clear();
                finding.message.push_str("; unchanged by this update, so left as it is");
            }
        }
        if findings[first..].iter().any(|f| f.rule == Rule::InvalidContainer) {
            return;
        }
        match kept {
            Some(kept) => findings.push(keep_pin(at, object_at, kept)),
            None if policy.pin_digests && !image.is_empty() && !unchanged => {
                findings.extend(pin(at, object_at, image_facts, policy));
            }
            None => {}
        }
    }
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
            None => findings.push(Finding::report(
                Rule::InvalidModeAnnotation,
                object_at,
                None,
                format!(
                    "annotation {key} at {} is {value}, not off, audit or fix; using the configured mode {}",
                    field_path(&format!("{place}/metadata/annotations")),
                    policy.mode.as_str()
                ),
            )),
        }
    }
    policy.mode
}

fn trace_annotation(doc: &Value, object_at: &str, policy: &Policy, pinned: BTreeMap<String, String>) -> PatchOperation {
    let key = policy.resolved_annotation();
    // Keep what earlier admissions recorded (an UPDATE pins what CREATE could not).
    let mut record = update::record(doc, object_at, policy);
    record.extend(pinned);
    let value = super::json::string_map(&record);
    patch::set_annotation(doc, &format!("{object_at}/metadata"), &key, value)
}

/// A container field that is not a list of strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} must be a list of strings")]
pub(super) struct NotStrings(&'static str);

/// A string array field: absent (or `null`) is `Ok(None)`; anything but an
/// array of strings is an error naming the field.
pub(super) fn strings(container: &Value, field: &'static str) -> Result<Option<Vec<String>>, NotStrings> {
    match container.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or(NotStrings(field)),
        Some(_) => Err(NotStrings(field)),
    }
}

fn invalid(object_at: &str, at: ContainerRef, why: String) -> Finding {
    let message = format!("container {:?} at {}: {why}; left unchanged", at.name, at.field);
    Finding::report(Rule::InvalidContainer, object_at, Some(at), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageFacts;
    use serde_json::json;

    fn pod(annotations: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"annotations": annotations},
            "spec": {"containers": [{"name": "c", "image": "r.io/a:1", "command": ["run"]}]}})
    }

    #[test]
    fn the_inspection_says_which_mode_it_ran_in() {
        let mut facts = Facts::new();
        facts.insert(
            "r.io/a:1",
            ImageFacts::known(vec!["/chalk".into(), "exec".into(), "--".into()], None),
        );
        let policy = Policy::default();
        let mode_of = |object: &Value, ceiling| inspect(object, &facts, &policy, ceiling).mode;
        assert_eq!(mode_of(&pod(json!({})), Mode::Fix), Mode::Fix);
        assert_eq!(mode_of(&pod(json!({})), Mode::Audit), Mode::Audit);
        let audit = pod(json!({"entrypoint-guard.io/mode": "audit"}));
        let answer = inspect(&audit, &facts, &policy, Mode::Fix);
        assert_eq!((answer.mode, answer.changes()), (Mode::Audit, false));
        let fix = pod(json!({"entrypoint-guard.io/mode": "fix"}));
        let audit_policy = Policy {
            mode: Mode::Audit,
            ..Policy::default()
        };
        let answer = inspect(&fix, &facts, &audit_policy, Mode::Fix);
        assert_eq!((answer.mode, answer.changes()), (Mode::Fix, true));
        assert_eq!(inspect(&fix, &facts, &audit_policy, Mode::Audit).mode, Mode::Audit);
        let mirror = pod(json!({MIRROR_POD_ANNOTATION: "x"}));
        assert_eq!(mode_of(&mirror, Mode::Fix), Mode::Off);
        let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert_eq!(inspect(&config_map, &facts, &audit_policy, Mode::Fix).mode, Mode::Audit);
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            pod(json!({"entrypoint-guard.io/mode": "off"})), audit]});
        assert_eq!(mode_of(&list, Mode::Fix), Mode::Audit, "the most intrusive item's");
    }
}
