//! Report formats: text for people, YAML for `kubectl apply`, JSON for
//! programs, SARIF for code-scanning UIs.

pub mod json;
pub mod sarif;
pub mod text;
pub mod yaml;

use serde_json::Value;

/// A document as YAML, the way the fixed documents are written. Multi-line
/// strings become literal blocks; long single-line ones (pinned images) stay
/// on their line rather than being folded, so they read as written.
pub fn to_yaml(value: &Value) -> String {
    let options = serde_saphyr::ser_options! { folded_wrap_chars: usize::MAX };
    // Serialising a `Value` cannot fail: every key is a string and every
    // number finite. Fall back to JSON (valid YAML) rather than panic.
    serde_saphyr::to_string_with_options(value, options).unwrap_or_else(|_| value.to_string() + "\n")
}

/// The comment and blank lines a document's text starts with (such as
/// helm's `# Source:` line), kept when the document is rewritten.
pub fn leading_comments(text: &str) -> &str {
    let mut end = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.is_empty() || (trimmed.starts_with('#') && !trimmed.starts_with("#!")) {
            end += line.len();
        } else {
            break;
        }
    }
    &text[..end]
}
