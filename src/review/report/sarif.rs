//! `--output sarif`: SARIF 2.1.0 for code-scanning UIs.

use serde_json::{Value, json};

use crate::engine::{Change, Rule};
use crate::review::model::{Item, Problem, Review};
use crate::review::source::STDIN_NAME;

/// The SARIF 2.1.0 schema the log declares.
pub const SCHEMA: &str = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// How serious a rule is, as a SARIF level. Bypassing chalk is an error;
/// what cannot be decided is a warning; pinning is a note.
pub fn level(rule: Rule) -> &'static str {
    match rule {
        Rule::CommandBypassesWrapper | Rule::PreferredFixWrong => "error",
        Rule::ImagePinned | Rule::ControllerOwned | Rule::OutOfScope => "note",
        Rule::ImageConfigUnknown
        | Rule::PlatformsDisagree
        | Rule::InvalidImageReference
        | Rule::InvalidContainer
        | Rule::InvalidModeAnnotation
        | Rule::HelmCommandOverride => "warning",
    }
}

/// The review as a SARIF log with one run: every rule in `tool.driver.rules`,
/// one result per finding located at its container's line, and the
/// problems as tool execution notifications.
pub fn render(review: &Review) -> String {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id(),
                "name": rule_name(*rule),
                "shortDescription": {"text": rule.description()},
                "fullDescription": {"text": rule.description()},
                "defaultConfiguration": {"level": level(*rule)},
            })
        })
        .collect();
    let results: Vec<Value> = review.findings().map(result).collect();
    let notifications: Vec<Value> = review.problems.iter().map(notification).collect();
    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": env!("CARGO_PKG_NAME"),
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/crashappsec/chalk",
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": review.problems.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log).unwrap_or_default() + "\n"
}

fn result(item: &Item) -> Value {
    let f = &item.finding;
    let index = Rule::ALL.iter().position(|r| *r == f.rule).unwrap_or_default();
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
    json!({
        "ruleId": f.rule.id(),
        "ruleIndex": index,
        "level": level(f.rule),
        "message": {"text": message},
        "locations": [location],
        "properties": properties,
    })
}

fn notification(problem: &Problem) -> Value {
    json!({
        "level": "error",
        "message": {"text": problem.to_string()},
        "locations": [{"physicalLocation": physical(&problem.file, problem.line, problem.column)}],
    })
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

/// The rule's id in PascalCase, SARIF's convention for `name`.
fn rule_name(rule: Rule) -> String {
    rule.id()
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
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
        assert_eq!(rule_name(Rule::CommandBypassesWrapper), "CommandBypassesWrapper");
    }
}
