//! AdmissionReview v1 responses, shaped exactly as the Go API server accepts them.
//!
//! The API server rejects a response whose `apiVersion`/`kind` differ from
//! the request's, whose `uid` differs, that has a `patch` without
//! `patchType: JSONPatch` or a `patchType` without a `patch`, and drops
//! audit annotations whose key (prefixed with the webhook name) is not a
//! qualified name. Warnings and audit annotations are kept within the API
//! server's own limits (below), so it never cuts or drops what we send.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::request::{API_VERSION, KIND};
pub(crate) use crate::engine::json::write_str;
/// The one JSON string writer of the answer (the findings' JSON uses it too).
use crate::engine::json::{write_array, write_string_map};

// The API server's warning limits, k8s.io/apiserver/pkg/endpoints/filters/warning.go:
// `truncateAtTotalRunes = 4 * 1024`, `truncateItemRunes = 256`. Once the warning
// texts of one request (ours and every other webhook's) pass 4096 runes, the
// recorder starts over and cuts each warning to 256 runes. Counted in
// characters (runes), as it counts them.

/// Longest single warning sent: the API server's `truncateItemRunes`, so a
/// warning of ours is never cut even when the request's warnings overflow.
pub const MAX_WARNING_CHARS: usize = 256;
/// Most characters of warnings sent in all: the API server's
/// `truncateAtTotalRunes`, so ours alone never make it truncate.
pub const MAX_WARNINGS_TOTAL: usize = 4096;
/// Longest audit annotation key.
pub const MAX_AUDIT_KEY: usize = 63;
/// Longest audit annotation value, in bytes: the API server's own cap on the
/// audit annotation values it writes for admission policies
/// (`maxAuditAnnotationValueLength = 10 * 1024`,
/// k8s.io/apiserver/pkg/admission/plugin/policy/validating). Webhook values
/// are not cut by the API server, so we hold ours to the same bound.
pub const MAX_AUDIT_VALUE_BYTES: usize = 10 * 1024;
/// Most bytes of audit annotations (keys and values) in all. An audit event
/// over the audit backends' `--audit-log-truncate-max-event-size` /
/// `--audit-webhook-truncate-max-event-size` (default 102400 bytes) loses its
/// request and response objects and, if still too large, is dropped whole;
/// annotations are never removed, so ours take at most 64 KiB of it, which
/// leaves room for the event's own fields and other webhooks' annotations.
pub const MAX_AUDIT_TOTAL_BYTES: usize = 64 * 1024;

/// The audit annotation counting, per rule id, the findings left out of
/// the annotations for lack of room (`{"command-bypasses-wrapper": 12}`).
pub const OMITTED_FINDINGS_KEY: &str = "findings-omitted";

/// What was cut from an answer to keep it within the API server's limits
/// (not sent; the server counts it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clipped {
    /// A warning was shortened, or left out for lack of room.
    pub warnings: bool,
    /// A finding was left out of the audit annotations for lack of room.
    pub audit_annotations: bool,
}

/// Why an answer is a denial.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// An HTTP-like status code for the API server's error.
    pub code: u16,
    /// The message the API server shows the client.
    pub message: String,
}

/// One admission answer, before it is wrapped in an AdmissionReview.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdmissionResponse {
    /// The request's uid.
    pub uid: String,
    /// Whether the object is admitted.
    pub allowed: bool,
    /// The JSON Patch document (already encoded as JSON), if the object changes.
    pub patch: Option<Vec<u8>>,
    /// Warnings shown to the client.
    pub warnings: Vec<String>,
    /// Annotations added to the API server's audit event.
    pub audit_annotations: BTreeMap<String, String>,
    /// Set when `allowed` is false.
    pub status: Option<Status>,
    /// What was cut to fit the API server's limits (not part of the answer).
    pub clipped: Clipped,
}

impl AdmissionResponse {
    /// Allows the request unchanged.
    pub fn allow(uid: impl Into<String>) -> Self {
        AdmissionResponse {
            uid: uid.into(),
            allowed: true,
            ..Default::default()
        }
    }

    /// Denies the request with `message`.
    pub fn deny(uid: impl Into<String>, code: u16, message: impl Into<String>) -> Self {
        AdmissionResponse {
            uid: uid.into(),
            allowed: false,
            status: Some(Status {
                code,
                message: message.into(),
            }),
            ..Default::default()
        }
    }

    /// Adds `warning`, cut to [`MAX_WARNING_CHARS`], if the total stays
    /// within [`MAX_WARNINGS_TOTAL`]; returns whether it was added. Either
    /// cut marks the answer [`Clipped::warnings`].
    pub fn warn(&mut self, warning: &str) -> bool {
        let used: usize = self.warnings.iter().map(|w| w.chars().count()).sum();
        self.warn_after(Cow::Borrowed(warning), used).is_some()
    }

    /// [`AdmissionResponse::warn`] when the characters of the warnings so
    /// far (`used`) are known: returns the characters the warning added.
    /// An owned warning that is clean already is kept, not copied.
    pub(crate) fn warn_after(&mut self, warning: Cow<'_, str>, used: usize) -> Option<usize> {
        let (clean, cut, chars) = clean_warning(&warning);
        if used + chars > MAX_WARNINGS_TOTAL {
            self.clipped.warnings = true;
            return None;
        }
        let whole = matches!(&clean, Cow::Borrowed(c) if c.len() == warning.len());
        let clean = if whole {
            drop(clean);
            warning.into_owned()
        } else {
            clean.into_owned()
        };
        self.clipped.warnings |= cut;
        self.warnings.push(clean);
        Some(chars)
    }

    /// The AdmissionReview v1 response body.
    ///
    /// Written straight into one buffer, byte for byte what serde_json makes
    /// of the same fields (`tests/perf_equivalence.rs` proves it): the base64
    /// patch is copied in unescaped (its alphabet needs no escaping), and
    /// strings are escaped by [`write_str`], which skips clean runs eight
    /// bytes at a time. The audit annotations (JSON, so full of quotes) made
    /// serde_json's byte-at-a-time escaping the largest item of the answer.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_hint());
        out.extend_from_slice(b"{\"apiVersion\":");
        write_str(&mut out, API_VERSION);
        out.extend_from_slice(b",\"kind\":");
        write_str(&mut out, KIND);
        out.extend_from_slice(b",\"response\":{\"uid\":");
        write_str(&mut out, &self.uid);
        out.extend_from_slice(if self.allowed {
            b",\"allowed\":true"
        } else {
            b",\"allowed\":false"
        });
        if let Some(patch) = self.patch.as_ref().filter(|p| !p.is_empty()) {
            out.extend_from_slice(b",\"patchType\":\"JSONPatch\",\"patch\":\"");
            let at = out.len();
            out.resize(
                at + base64::encoded_len(patch.len(), true).expect("a patch fits in memory"),
                0,
            );
            let written = STANDARD
                .encode_slice(patch, &mut out[at..])
                .expect("the buffer holds the encoded length");
            out.truncate(at + written);
            out.push(b'"');
        }
        if !self.warnings.is_empty() {
            out.extend_from_slice(b",\"warnings\":");
            write_array(&mut out, &self.warnings, |out, warning| write_str(out, warning));
        }
        if !self.audit_annotations.is_empty() {
            out.extend_from_slice(b",\"auditAnnotations\":");
            write_string_map(&mut out, &self.audit_annotations);
        }
        if let Some(status) = &self.status {
            out.extend_from_slice(b",\"status\":{\"code\":");
            out.extend_from_slice(status.code.to_string().as_bytes());
            out.extend_from_slice(b",\"message\":");
            write_str(&mut out, &status.message);
            out.push(b'}');
        }
        out.extend_from_slice(b"}}");
        out
    }

    /// About the encoded length, so the buffer is allocated once.
    fn size_hint(&self) -> usize {
        let strings =
            |items: &mut dyn Iterator<Item = &String>| items.map(|s| s.len() + s.len() / 8 + 3).sum::<usize>();
        160 + self.uid.len()
            + self.patch.as_ref().map_or(0, |p| p.len() / 3 * 4 + 64)
            + strings(&mut self.warnings.iter())
            + strings(&mut self.audit_annotations.iter().flat_map(|(k, v)| [k, v]))
            + self.status.as_ref().map_or(0, |s| s.message.len() + 64)
    }
}

/// A warning as the API server wants it: one line without control
/// characters (it drops a warning holding one), no `Warning:` prefix
/// (clients add their own), at most [`MAX_WARNING_CHARS`]; whether it had
/// to be cut; and its length in characters.
fn clean_warning(warning: &str) -> (Cow<'_, str>, bool, usize) {
    let trimmed = warning.trim();
    let trimmed = trimmed
        .strip_prefix("Warning:")
        .or_else(|| trimmed.strip_prefix("warning:"))
        .unwrap_or(trimmed)
        .trim_start();
    // Most warnings (the engine's summaries) are clean already: borrowed.
    let printable = if trimmed.chars().any(char::is_control) {
        Cow::Owned(trimmed.chars().map(|c| if c.is_control() { ' ' } else { c }).collect())
    } else {
        Cow::Borrowed(trimmed)
    };
    let chars = printable.chars().count();
    if chars <= MAX_WARNING_CHARS {
        return (printable, false, chars);
    }
    let clipped = crate::engine::finding::clip(&printable, MAX_WARNING_CHARS);
    let chars = clipped.chars().count();
    (Cow::Owned(clipped), true, chars)
}

/// Whether `key` is a valid audit annotation key: 1–63 characters of
/// `[A-Za-z0-9_.-]`, starting and ending with a letter or digit (the API
/// server checks `<webhook name>/<key>` as a qualified name).
pub fn valid_audit_key(key: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    (1..=MAX_AUDIT_KEY).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && alnum(key.chars().next())
        && alnum(key.chars().last())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn patch_type_only_with_a_patch() {
        let plain: Value = serde_json::from_slice(&AdmissionResponse::allow("u").to_json()).unwrap();
        assert_eq!(
            plain,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "response": {"uid": "u", "allowed": true}})
        );
        let empty = AdmissionResponse {
            patch: Some(Vec::new()),
            ..AdmissionResponse::allow("u")
        };
        assert_eq!(empty.to_json(), AdmissionResponse::allow("u").to_json());
        let patched = AdmissionResponse {
            patch: Some(br#"[{"op":"remove","path":"/a"}]"#.to_vec()),
            ..AdmissionResponse::allow("u")
        };
        let v: Value = serde_json::from_slice(&patched.to_json()).unwrap();
        assert_eq!(v["response"]["patchType"], "JSONPatch");
        assert_eq!(v["response"]["patch"], "W3sib3AiOiJyZW1vdmUiLCJwYXRoIjoiL2EifV0=");
    }

    #[test]
    fn warnings_respect_the_api_server_limits() {
        let mut r = AdmissionResponse::allow("u");
        assert!(r.warn("Warning: a\nb"));
        assert_eq!(r.warnings, ["a b"]);
        assert_eq!(r.clipped, Clipped::default());
        // Exactly the API server's item limit passes whole.
        assert!(r.warn(&"é".repeat(256)));
        assert_eq!(r.warnings[1].chars().count(), 256);
        assert!(!r.clipped.warnings);
        // One more character is cut to 256, ending in an ASCII ellipsis.
        assert!(r.warn(&"y".repeat(257)));
        assert_eq!(r.warnings[2], format!("{}...", "y".repeat(253)));
        assert!(r.clipped.warnings);
        let mut r = AdmissionResponse::allow("u");
        // 16 warnings of 256 characters are exactly 4096: all fit.
        for i in 0..16 {
            assert!(r.warn(&format!("{i:03}{}", "x".repeat(253))), "{i}");
        }
        let total: usize = r.warnings.iter().map(|w| w.chars().count()).sum();
        assert_eq!(total, MAX_WARNINGS_TOTAL);
        assert!(!r.clipped.warnings);
        // Not one more character.
        assert!(!r.warn("z"));
        assert!(r.clipped.warnings);
        assert_eq!(r.warnings.len(), 16);
    }

    #[test]
    fn audit_keys_follow_qualified_name_rules() {
        assert!(valid_audit_key("command-bypasses-wrapper"));
        assert!(valid_audit_key("a.b_c-1"));
        assert!(!valid_audit_key(""));
        assert!(!valid_audit_key("-a"));
        assert!(!valid_audit_key("a/b"));
        assert!(!valid_audit_key(&"a".repeat(64)));
        for rule in crate::engine::Rule::ALL {
            assert!(valid_audit_key(rule.id()), "{}", rule.id());
        }
    }
}
