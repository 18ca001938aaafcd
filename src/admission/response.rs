//! AdmissionReview v1 responses, shaped exactly as the Go API server accepts them.
//!
//! The API server rejects a response whose `apiVersion`/`kind` differ from
//! the request's, whose `uid` differs, that has a `patch` without
//! `patchType: JSONPatch` or a `patchType` without a `patch`. It keeps at
//! most 4096 characters of warnings and drops audit annotations whose key
//! (prefixed with the webhook name) is not a qualified name.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;

use super::request::{API_VERSION, KIND};

/// Longest single warning sent (the API server cuts longer ones).
pub const MAX_WARNING_CHARS: usize = 119;
/// Most characters of warnings sent in all.
pub const MAX_WARNINGS_TOTAL: usize = 4096;
/// Longest audit annotation key.
pub const MAX_AUDIT_KEY: usize = 63;

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
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a Status>,
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
    /// within [`MAX_WARNINGS_TOTAL`]; returns whether it was added.
    pub fn warn(&mut self, warning: &str) -> bool {
        let warning = clean_warning(warning);
        let used: usize = self.warnings.iter().map(|w| w.chars().count()).sum();
        if used + warning.chars().count() > MAX_WARNINGS_TOTAL {
            return false;
        }
        self.warnings.push(warning);
        true
    }

    /// The AdmissionReview v1 response body.
    pub fn to_json(&self) -> Vec<u8> {
        let patch = self
            .patch
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(|p| base64::engine::general_purpose::STANDARD.encode(p));
        let review = ReviewOut {
            api_version: API_VERSION,
            kind: KIND,
            response: ResponseOut {
                uid: &self.uid,
                allowed: self.allowed,
                patch_type: patch.as_ref().map(|_| "JSONPatch"),
                patch,
                warnings: &self.warnings,
                audit_annotations: &self.audit_annotations,
                status: self.status.as_ref(),
            },
        };
        serde_json::to_vec(&review).expect("strings, booleans and string maps serialize")
    }
}

/// A warning as the API server wants it: one line of printable characters,
/// no `Warning:` prefix (clients add their own), under 120 characters.
fn clean_warning(warning: &str) -> String {
    let trimmed = warning.trim();
    let trimmed = trimmed
        .strip_prefix("Warning:")
        .or_else(|| trimmed.strip_prefix("warning:"))
        .unwrap_or(trimmed)
        .trim_start();
    let printable: String = trimmed.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    crate::engine::finding::clip(&printable, MAX_WARNING_CHARS)
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
        let long = "x".repeat(500);
        while r.warn(&long) {}
        assert!(r.warnings.iter().all(|w| w.chars().count() <= MAX_WARNING_CHARS));
        let total: usize = r.warnings.iter().map(|w| w.chars().count()).sum();
        assert!(total <= MAX_WARNINGS_TOTAL && total > MAX_WARNINGS_TOTAL - MAX_WARNING_CHARS);
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
