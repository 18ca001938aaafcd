//! Shared by the chart's monitoring tests: the chart rendered with the
//! dashboard and alerts on, and what they query.
#![allow(dead_code)]

use serde_json::Value;

use super::chart::{FULLNAME, Rendered, render};

/// `helm template` arguments that turn the dashboard, the alerts and the background audit on.
pub const ON: [&str; 6] = [
    "--set",
    "monitoring.dashboard.enabled=true",
    "--set",
    "monitoring.prometheusRule.enabled=true",
    "--set",
    "backgroundAudit.enabled=true",
];

/// Labels Prometheus adds to every scraped series.
pub const TARGET_LABELS: [&str; 2] = ["job", "instance"];

/// The chart with [`ON`] and `extra`.
pub fn rendered(extra: &[&str]) -> Rendered {
    let args: Vec<&str> = ON.iter().chain(extra).copied().collect();
    render(&args)
}

/// The dashboard JSON of the rendered ConfigMap.
pub fn dashboard(r: &Rendered) -> Value {
    let cm = r.get("ConfigMap", &format!("{FULLNAME}-dashboard"));
    let text = cm["data"]["entrypoint-guard.json"]
        .as_str()
        .expect("the dashboard JSON");
    serde_json::from_str(text).unwrap_or_else(|e| panic!("the dashboard is not JSON: {e}"))
}

/// The rendered PrometheusRule's rules.
pub fn alerts(r: &Rendered) -> Vec<Value> {
    let rule = r.get("PrometheusRule", FULLNAME);
    rule["spec"]["groups"][0]["rules"].as_array().expect("rules").clone()
}

/// Every PromQL expression of a dashboard: panel targets and variable queries.
pub fn dashboard_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    ("query", Value::String(s)) if s.contains('(') => out.push(s.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}
