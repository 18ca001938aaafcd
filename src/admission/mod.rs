//! Admission: an AdmissionReview in, an AdmissionReview out.
//!
//! Pure and I/O-free like the engine it wraps: the server decodes with
//! [`decode_lean`] (only the parts the engine reads; [`decode`] keeps the
//! whole object, for tests and tools), takes the object with
//! [`AdmissionRequest::take_object`], resolves image facts, and answers with
//! [`review`] (or [`untouched`] / [`failed`]). Every mode answers `allowed: true` unless the configuration
//! says to deny on internal errors.
//!
//! Every finding becomes a warning (its one-line summary) and, grouped by
//! rule, an audit annotation holding the findings as JSON — in `fix` mode as
//! in `audit` mode, so the audit log explains a patch as well as a report.

mod memo;
mod prepared;
mod prune;
mod recall;
mod request;
mod response;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::{self, Finding, Held, Mode, Policy};
use crate::image::Facts;
pub use memo::{Answer, Memo, Subject};
pub use prepared::{Intake, Prepared, Read, Target};
pub use prune::{Pruned, Schema};
pub use recall::{
    MAX_BODY_BYTES as RECALL_MAX_BODY_BYTES, MAX_PER_LENGTH as RECALL_MAX_PER_LENGTH,
    MAX_TOTAL_BYTES as RECALL_MAX_TOTAL_BYTES, Recall,
};
pub use request::{
    API_VERSION, AdmissionRequest, DecodeError, GroupVersionKind, KIND, Operation, Skip, Spans, decode, decode_lean,
    decode_lean_spanned,
};
pub use response::{
    AdmissionResponse, Clipped, MAX_AUDIT_KEY, MAX_AUDIT_TOTAL_BYTES, MAX_AUDIT_VALUE_BYTES, MAX_WARNING_CHARS,
    MAX_WARNINGS_TOTAL, OMITTED_FINDINGS_KEY, Status, valid_audit_key,
};

/// What the webhook answers when it cannot do its work (internal error or
/// blown deadline): configuration `server.onError`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Allow the object unchanged, with a warning saying why.
    #[default]
    Allow,
    /// Deny the object.
    Deny,
}

/// How an admission ended, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The answer carries a patch.
    Patched,
    /// Nothing found (or nothing to look at).
    Clean,
    /// Findings reported, nothing changed.
    Audited,
    /// The work could not be done; answered per `server.onError`.
    Error,
}

impl Outcome {
    /// Every outcome, in a fixed order (metric tables index by it).
    pub const ALL: [Outcome; 4] = [Outcome::Patched, Outcome::Clean, Outcome::Audited, Outcome::Error];

    /// The lowercase label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Patched => "patched",
            Outcome::Clean => "clean",
            Outcome::Audited => "audited",
            Outcome::Error => "error",
        }
    }
}

/// The answer to one admission, with what the server counts and logs.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// What goes back to the API server.
    pub response: AdmissionResponse,
    /// How it ended.
    pub outcome: Outcome,
    /// What the engine found.
    pub findings: Vec<Finding>,
    /// Objects in mode fix left unpatched because a controller owns them or
    /// the scope is pods (see [`engine::Inspection::held`]).
    pub held: Vec<Held>,
    /// The mode the engine inspected the object in ([`engine::Inspection::mode`]);
    /// `None` when it did not inspect it.
    pub mode: Option<Mode>,
}

/// Allows the request unchanged, having nothing to look at.
pub fn untouched(uid: &str) -> Verdict {
    Verdict {
        response: AdmissionResponse::allow(uid),
        outcome: Outcome::Clean,
        findings: Vec::new(),
        held: Vec::new(),
        mode: None,
    }
}

/// The answer when the work could not be done (`why`, one short line):
/// allowed with a warning, or denied, as `on_error` says.
pub fn failed(uid: &str, why: &str, on_error: OnError) -> Verdict {
    let response = match on_error {
        OnError::Allow => {
            let mut r = AdmissionResponse::allow(uid);
            r.warn(&format!("entrypoint-guard: not checked: {why}"));
            r
        }
        OnError::Deny => {
            AdmissionResponse::deny(uid, 500, format!("entrypoint-guard could not check this object: {why}"))
        }
    };
    Verdict {
        response,
        outcome: Outcome::Error,
        findings: Vec::new(),
        held: Vec::new(),
        mode: None,
    }
}

/// Runs the engine on `object` (replacing `old` on UPDATE) and answers: the
/// patch (if the mode allows one), a warning per finding, and the findings as
/// audit annotations.
///
/// A panic inside the engine is caught and answered like any internal error.
pub fn review(
    uid: &str,
    object: &Value,
    old: Option<&Value>,
    facts: &Facts,
    policy: &Policy,
    ceiling: Mode,
    on_error: OnError,
) -> Verdict {
    let run = || engine::inspect_to_answer(object, old, facts, policy, ceiling);
    let inspection = match catch_unwind(AssertUnwindSafe(run)) {
        Ok(inspection) => inspection,
        Err(_) => return failed(uid, "internal error in the engine", on_error),
    };
    let mut response = AdmissionResponse::allow(uid);
    if inspection.changes() {
        let mut patch = Vec::with_capacity(1024);
        engine::patch::write_patch(&mut patch, &inspection.patch);
        response.patch = Some(patch);
    }
    add_warnings(&mut response, &inspection.findings);
    let (annotations, cut) = audit_annotations(&inspection.findings);
    response.audit_annotations = annotations;
    response.clipped.audit_annotations = cut;
    let outcome = match (inspection.changes(), inspection.findings.is_empty()) {
        (true, _) => Outcome::Patched,
        (false, true) => Outcome::Clean,
        (false, false) => Outcome::Audited,
    };
    Verdict {
        response,
        outcome,
        findings: inspection.findings,
        held: inspection.held,
        mode: Some(inspection.mode),
    }
}

/// One warning per finding; when they do not all fit in the API server's
/// 4096 characters, the last one says how many were left out.
fn add_warnings(response: &mut AdmissionResponse, findings: &[Finding]) {
    // The characters of each warning sent, counted once: the total decides
    // whether the next one fits.
    let mut sizes = Vec::with_capacity(findings.len());
    let mut used = 0;
    for finding in findings {
        let Some(chars) = response.warn_after(Cow::Owned(finding.summary()), used) else {
            break;
        };
        used += chars;
        sizes.push(chars);
    }
    let mut shown = sizes.len();
    if shown == findings.len() {
        return;
    }
    loop {
        let note = format!(
            "entrypoint-guard: {} more findings not shown (see audit annotations)",
            findings.len() - shown
        );
        if response.warn_after(Cow::Owned(note), used).is_some() {
            return;
        }
        response.warnings.pop();
        used -= sizes.pop().expect("a warning for each shown finding");
        shown -= 1;
    }
}

/// The findings grouped by rule: key = rule id, value = JSON array of the
/// findings, each value within [`MAX_AUDIT_VALUE_BYTES`] and all within
/// [`MAX_AUDIT_TOTAL_BYTES`]. Findings that do not fit are left out whole
/// (a value is always a JSON array of whole findings) and counted under
/// [`OMITTED_FINDINGS_KEY`], `{rule id: count}`; the bool says whether any was.
fn audit_annotations(findings: &[Finding]) -> (BTreeMap<String, String>, bool) {
    // Room kept for the omitted-findings annotation itself: one short key
    // and a count per rule.
    const OMITTED_ROOM: usize = 1024;
    let mut by_rule: BTreeMap<&'static str, Vec<&Finding>> = BTreeMap::new();
    for finding in findings {
        by_rule.entry(finding.rule.id()).or_default().push(finding);
    }
    let mut room = MAX_AUDIT_TOTAL_BYTES - OMITTED_ROOM;
    let mut annotations = BTreeMap::new();
    let mut omitted: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (id, group) in by_rule {
        // Each finding is written in place and taken back out if it does not fit.
        let mut value = Vec::with_capacity(1024);
        value.push(b'[');
        let mut left_out = 0;
        for finding in group {
            let before = value.len();
            if before > 1 {
                value.push(b',');
            }
            finding.write_json(&mut value);
            let grown = value.len() + 1;
            if grown > MAX_AUDIT_VALUE_BYTES || id.len() + grown > room {
                value.truncate(before);
                left_out += 1;
            }
        }
        value.push(b']');
        if left_out > 0 {
            omitted.insert(id, left_out);
        }
        if value.len() > 2 {
            room -= id.len() + value.len();
            let value = String::from_utf8(value).expect("JSON written from strings is UTF-8");
            annotations.insert(id.to_string(), value);
        }
    }
    let cut = !omitted.is_empty();
    if cut {
        let counts = serde_json::to_string(&omitted).expect("counts serialize");
        annotations.insert(OMITTED_FINDINGS_KEY.to_string(), counts);
    }
    (annotations, cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Rule;
    use crate::image::ImageFacts;
    use serde_json::json;

    fn pod(containers: usize) -> Value {
        let containers: Vec<Value> = (0..containers)
            .map(|i| json!({"name": format!("c{i}"), "image": "registry.example/app:1.0", "command": ["run"]}))
            .collect();
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    fn facts() -> Facts {
        let mut f = Facts::new();
        f.insert(
            "registry.example/app:1.0",
            ImageFacts::known(vec!["/chalk".into(), "exec".into(), "--".into()], None),
        );
        f
    }

    #[test]
    fn fix_patches_and_audit_reports() {
        let policy = Policy::default();
        let fixed = review("u", &pod(1), None, &facts(), &policy, Mode::Fix, OnError::Allow);
        assert_eq!(fixed.outcome, Outcome::Patched);
        assert!(fixed.response.patch.is_some());
        assert_eq!(fixed.response.warnings.len(), 1);
        let audited = review("u", &pod(1), None, &facts(), &policy, Mode::Audit, OnError::Allow);
        assert_eq!(audited.outcome, Outcome::Audited);
        assert_eq!(audited.response.patch, None);
        let value: Value =
            serde_json::from_str(&audited.response.audit_annotations[Rule::CommandBypassesWrapper.id()]).unwrap();
        assert_eq!(value[0]["fix"], "args");
        assert_eq!(value[0]["applied"], false);
    }

    #[test]
    fn too_many_warnings_end_with_a_count() {
        let verdict = review(
            "u",
            &pod(80),
            None,
            &facts(),
            &Policy::default(),
            Mode::Fix,
            OnError::Allow,
        );
        let warnings = &verdict.response.warnings;
        let total: usize = warnings.iter().map(|w| w.chars().count()).sum();
        assert!(total <= MAX_WARNINGS_TOTAL);
        let last = warnings.last().unwrap();
        let shown = warnings.len() - 1;
        assert_eq!(
            last,
            &format!(
                "entrypoint-guard: {} more findings not shown (see audit annotations)",
                80 - shown
            )
        );
    }

    #[test]
    fn audit_annotations_stay_within_the_api_server_limits() {
        let small = review(
            "u",
            &pod(3),
            None,
            &facts(),
            &Policy::default(),
            Mode::Fix,
            OnError::Allow,
        );
        assert_eq!(small.response.clipped, Clipped::default());
        assert!(!small.response.audit_annotations.contains_key(OMITTED_FINDINGS_KEY));
        let n = 2000;
        let big = review(
            "u",
            &pod(n),
            None,
            &facts(),
            &Policy::default(),
            Mode::Fix,
            OnError::Allow,
        );
        let annotations = &big.response.audit_annotations;
        assert!(big.response.clipped.audit_annotations && big.response.clipped.warnings);
        let mut total = 0;
        let mut kept = 0;
        for (key, value) in annotations {
            assert!(valid_audit_key(key), "{key}");
            assert!(value.len() <= MAX_AUDIT_VALUE_BYTES, "{key}: {} bytes", value.len());
            total += key.len() + value.len();
            if key != OMITTED_FINDINGS_KEY {
                let findings: Vec<Value> = serde_json::from_str(value).unwrap();
                kept += findings.len();
            }
        }
        assert!(total <= MAX_AUDIT_TOTAL_BYTES, "{total} bytes");
        let omitted: BTreeMap<String, usize> = serde_json::from_str(&annotations[OMITTED_FINDINGS_KEY]).unwrap();
        assert_eq!(kept + omitted.values().sum::<usize>(), big.findings.len());
        assert_eq!(big.findings.len(), n);
        // Filled up: the first finding left out (names only grow, so the
        // kept ones come first) would have taken the value over the limit.
        let value = &annotations[Rule::CommandBypassesWrapper.id()];
        let next = serde_json::to_string(&big.findings[kept]).unwrap().len();
        assert!(
            value.len() + 1 + next > MAX_AUDIT_VALUE_BYTES,
            "{} + {next}",
            value.len()
        );
    }

    #[test]
    fn failure_follows_on_error() {
        let allowed = failed("u", "deadline exceeded", OnError::Allow);
        assert!(allowed.response.allowed);
        assert_eq!(
            allowed.response.warnings,
            ["entrypoint-guard: not checked: deadline exceeded"]
        );
        let denied = failed("u", "deadline exceeded", OnError::Deny);
        assert!(!denied.response.allowed);
        assert_eq!(denied.response.status.as_ref().unwrap().code, 500);
    }
}
