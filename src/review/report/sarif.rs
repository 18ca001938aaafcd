//! `--output sarif`: SARIF 2.1.0 for code-scanning UIs.

use serde_json::{Value, json};

use crate::engine::Change;
use crate::review::model::{Item, Review};
use crate::review::source::STDIN_NAME;
use crate::sarif::{self, SarifResult};

/// The review as a SARIF log (`crate::sarif`): one result per finding
/// located at its container's line, and the problems as tool execution
/// notifications.
pub fn render(review: &Review) -> String {
    let results = review.findings().map(result).collect();
    let notifications = review
        .problems
        .iter()
        .map(|p| {
            let location = json!({"physicalLocation": physical(&p.file, p.line, p.column)});
            sarif::notification(p.to_string(), vec![location])
        })
        .collect();
    sarif::log(results, notifications)
}

fn result(item: &Item) -> SarifResult<'_> {
    let f = &item.finding;
    let mut message = f.message.clone();
    match &f.change {
        Some(Change::Command { after, .. }) => {
            let after = serde_json::to_string(after).unwrap_or_default();
            message.push_str(&format!(" Fixed: {after}."));
        }
        Some(Change::Image { after, .. }) => message.push_str(&format!(" Pinned: {after}.")),
        None => {}
    }
    let mut location = json!({"physicalLocation": physical(&item.file, Some(item.line), Some(item.column))});
    if item.document.is_some() {
        let mut name = item.object_label();
        if let Some(c) = &f.container {
            name.push_str(&format!(" {}", c.field));
        }
        location["logicalLocations"] = json!([{"fullyQualifiedName": name, "kind": "object"}]);
    }
    let mut properties = json!({"applied": f.applied});
    if let Some(document) = item.document {
        properties["document"] = json!(document);
    }
    if let Some(fix) = f.fix {
        properties["fix"] = json!(fix.as_str());
    }
    if let Some(c) = &f.container {
        properties["container"] = json!(c.name);
        properties["image"] = json!(c.image);
    }
    SarifResult {
        finding: f,
        message,
        locations: vec![location],
        properties,
    }
}

fn physical(file: &str, line: Option<usize>, column: Option<usize>) -> Value {
    let mut location = json!({"artifactLocation": {"uri": uri(file)}});
    if let Some(line) = line {
        location["region"] = json!({"startLine": line});
        if let Some(column) = column {
            location["region"]["startColumn"] = json!(column);
        }
    }
    location
}

/// A file name as a URI reference: relative paths stay relative, absolute
/// ones become `file://` URIs; reserved characters are percent-encoded.
pub fn uri(file: &str) -> String {
    if file == STDIN_NAME {
        return "stdin".to_string();
    }
    let file = file.replace('\\', "/");
    let file = file.strip_prefix("./").unwrap_or(&file);
    let mut out = String::from(if file.starts_with('/') { "file://" } else { "" });
    for byte in file.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~:@!$&'()*+,;=".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_relative_references() {
        assert_eq!(uri("./examples/my app.yaml"), "examples/my%20app.yaml");
        assert_eq!(uri(STDIN_NAME), "stdin");
        assert_eq!(uri("a#b?.yaml"), "a%23b%3F.yaml");
        assert_eq!(uri("/tmp/x.yaml"), "file:///tmp/x.yaml");
    }
}
