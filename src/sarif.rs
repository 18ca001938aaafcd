//! SARIF 2.1.0, the one writer `review` and `audit` share: the rule table,
//! each result's rule, index and level, and the run around them all come
//! from here and from the engine's rule metadata; a front end only says
//! where a result is (a file and line, or a cluster object) and what extra
//! properties it carries.

use serde_json::{Value, json};

use crate::engine::{Finding, Rule};

/// The SARIF 2.1.0 schema the log declares.
pub(crate) const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// One result: the finding, its message, where it is and what else to say.
pub(crate) struct SarifResult<'a> {
    /// The engine's finding (rule, level).
    pub(crate) finding: &'a Finding,
    /// The message shown for it.
    pub(crate) message: String,
    /// SARIF `locations` entries (physical and/or logical).
    pub(crate) locations: Vec<Value>,
    /// SARIF `properties`.
    pub(crate) properties: Value,
}

/// A whole SARIF log with one run: every rule in `tool.driver.rules`, the
/// `results`, and `notifications` (what could not be read or listed) as
/// tool execution notifications; the run is successful when there are none.
pub(crate) fn log(results: Vec<SarifResult<'_>>, notifications: Vec<Value>) -> String {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id(),
                "name": rule.name(),
                "shortDescription": {"text": rule.description()},
                "fullDescription": {"text": rule.description()},
                "defaultConfiguration": {"level": rule.severity().as_str()},
            })
        })
        .collect();
    let results: Vec<Value> = results.into_iter().map(result).collect();
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
                "executionSuccessful": notifications.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log).expect("a JSON value serializes") + "\n"
}

fn result(r: SarifResult<'_>) -> Value {
    let rule = r.finding.rule;
    json!({
        "ruleId": rule.id(),
        "ruleIndex": Rule::ALL.iter().position(|x| *x == rule).expect("Rule::ALL lists every rule"),
        "level": rule.severity().as_str(),
        "message": {"text": r.message},
        "locations": r.locations,
        "properties": r.properties,
    })
}

/// An error notification: something that could not be reviewed or audited.
pub(crate) fn notification(message: String, locations: Vec<Value>) -> Value {
    let mut n = json!({"level": "error", "message": {"text": message}});
    if !locations.is_empty() {
        n["locations"] = Value::Array(locations);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_carry_the_rule_level_and_index_of_the_table() {
        for rule in Rule::ALL {
            let finding = Finding::report(rule, "", None, "m".into());
            let text = log(
                vec![SarifResult {
                    finding: &finding,
                    message: "m".into(),
                    locations: Vec::new(),
                    properties: json!({}),
                }],
                Vec::new(),
            );
            let log: Value = serde_json::from_str(&text).unwrap();
            let run = &log["runs"][0];
            let result = &run["results"][0];
            let index = result["ruleIndex"].as_u64().unwrap() as usize;
            let listed = &run["tool"]["driver"]["rules"][index];
            assert_eq!(listed["id"], rule.id());
            assert_eq!(result["level"], listed["defaultConfiguration"]["level"]);
            assert_eq!(result["level"], rule.severity().as_str());
        }
    }
}
