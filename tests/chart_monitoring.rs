//! The chart's Grafana dashboard and PrometheusRule: opt-in, labelled for
//! the Grafana sidecar and the operator's selectors, and rules that pass
//! `promtool check rules` and fire on the data they are meant for.
//! tests/chart_monitoring_metrics.rs checks every metric they query against
//! a real `/metrics`.

#[path = "support/chart.rs"]
mod chart;
#[path = "support/monitoring.rs"]
mod monitoring;
#[path = "support/review.rs"]
mod review_support;

use std::collections::BTreeSet;

use chart::{FULLNAME, NAMESPACE, Rendered, render, render_error, validate};
use monitoring::{ON, alerts, dashboard, rendered};
use serde_json::json;

#[test]
fn monitoring_is_opt_in() {
    let off = render(&[]);
    assert!(off.find("ConfigMap", &format!("{FULLNAME}-dashboard")).is_none());
    assert!(off.all("PrometheusRule").is_empty());

    chart::lint(&chart::chart_dir(), &ON);
    let on = rendered(&[]);
    validate(&on.text);
    let cm = on.get("ConfigMap", &format!("{FULLNAME}-dashboard"));
    assert_eq!(
        cm["metadata"]["labels"]["grafana_dashboard"], "1",
        "the sidecar's default label"
    );
    assert_eq!(cm["metadata"]["namespace"], NAMESPACE);
    let dash = dashboard(&on);
    assert_eq!(dash["uid"], "entrypoint-guard");
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 15, "{} panels", panels.len());
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{}", panel["title"]);
        assert!(
            panel["description"].is_string(),
            "{} says what it shows",
            panel["title"]
        );
    }
    let ids: BTreeSet<_> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
}

#[test]
fn dashboard_label_namespace_and_annotations_are_configurable() {
    let r = rendered(&[
        "--set",
        "monitoring.dashboard.label=dashboards.example.com/load",
        "--set-string",
        "monitoring.dashboard.labelValue=true",
        "--set",
        "monitoring.dashboard.namespace=monitoring",
        "--set",
        "monitoring.dashboard.annotations.grafana_folder=Security",
    ]);
    validate(&r.text);
    let cm = r.get("ConfigMap", &format!("{FULLNAME}-dashboard"));
    let labels = &cm["metadata"]["labels"];
    assert_eq!(labels["dashboards.example.com/load"], "true");
    assert!(labels.get("grafana_dashboard").is_none());
    assert_eq!(cm["metadata"]["namespace"], "monitoring");
    assert_eq!(cm["metadata"]["annotations"]["grafana_folder"], "Security");
}

#[test]
fn alert_rules_follow_their_values() {
    let names = |r: &Rendered| -> Vec<String> {
        alerts(r)
            .iter()
            .map(|a| a["alert"].as_str().unwrap().to_string())
            .collect()
    };
    let all = rendered(&[]);
    assert_eq!(
        names(&all),
        [
            "EntrypointGuardAdmissionErrors",
            "EntrypointGuardRegistryFailures",
            "EntrypointGuardCertificateExpiring",
            "EntrypointGuardNoRequests",
            "EntrypointGuardBypassesAdmitted",
            "EntrypointGuardUnfixedBypasses"
        ]
    );
    let r = rendered(&[
        "--set",
        "backgroundAudit.enabled=false",
        "--set",
        "monitoring.prometheusRule.disabled.EntrypointGuardNoRequests=true",
        "--set",
        "monitoring.prometheusRule.labels.release=kube-prometheus-stack",
        "--set",
        "monitoring.prometheusRule.alertLabels.team=platform",
        "--set",
        "monitoring.prometheusRule.certificateExpiryDays=7",
        "--set",
        "monitoring.prometheusRule.idleFor=2h",
    ]);
    validate(&r.text);
    let got = names(&r);
    assert!(
        !got.iter().any(|n| n == "EntrypointGuardNoRequests"),
        "disabled: {got:?}"
    );
    assert!(
        !got.iter().any(|n| n == "EntrypointGuardUnfixedBypasses"),
        "needs the background audit: {got:?}"
    );
    assert_eq!(
        r.get("PrometheusRule", FULLNAME)["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    for alert in alerts(&r) {
        assert_eq!(alert["labels"]["team"], "platform", "{}", alert["alert"]);
        assert!(alert["labels"]["severity"].is_string());
        assert!(alert["annotations"]["summary"].is_string() && alert["annotations"]["description"].is_string());
    }
    let cert = alerts(&r)
        .into_iter()
        .find(|a| a["alert"] == "EntrypointGuardCertificateExpiring")
        .unwrap();
    assert!(cert["expr"].as_str().unwrap().contains("< 604800"), "{}", cert["expr"]);

    for (args, field) in [
        (
            &["--set", "monitoring.prometheusRule.certificateExpiryDays=0"][..],
            "certificateExpiryDays",
        ),
        (&["--set", "monitoring.prometheusRule.idleFor=thirty"][..], "idleFor"),
        (&["--set", "monitoring.prometheusRule.errorRatio=2"][..], "errorRatio"),
        (
            &["--set", "monitoring.prometheusRule.disabled.Typo=true"][..],
            "disabled",
        ),
        (&["--set", "monitoring.dashboard.label=bad label"][..], "label"),
    ] {
        let err = render_error(args);
        assert!(err.contains(field), "{args:?}: {err}");
    }
}

/// The rules as a Prometheus rule file (the PrometheusRule's spec).
fn rule_file(dir: &std::path::Path) -> std::path::PathBuf {
    let r = rendered(&[]);
    let spec = &r.get("PrometheusRule", FULLNAME)["spec"];
    let path = dir.join("rules.yaml");
    std::fs::write(&path, serde_json::to_string_pretty(spec).unwrap()).unwrap();
    path
}

fn promtool(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(review_support::require_tool("promtool"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn rules_pass_promtool_and_fire_on_what_they_watch() {
    let dir = tempfile::tempdir().unwrap();
    rule_file(dir.path());
    let checked = promtool(dir.path(), &["check", "rules", "rules.yaml"]);
    assert!(checked.contains("SUCCESS: 6 rules found"), "{checked}");

    // Each alert's expression on series made for it: fires for `bad`, not for `good`.
    let series = json!([
        {"series": "entrypoint_guard_admission_errors_total{job=\"bad\",route=\"mutate\",reason=\"deadline\"}", "values": "0+1x60"},
        {"series": "entrypoint_guard_admission_errors_total{job=\"good\",route=\"mutate\",reason=\"deadline\"}", "values": "0x60"},
        {"series": "entrypoint_guard_registry_lookups_total{job=\"bad\",result=\"failed\"}", "values": "0+1x60"},
        {"series": "entrypoint_guard_registry_lookups_total{job=\"bad\",result=\"resolved\"}", "values": "0+1x60"},
        {"series": "entrypoint_guard_registry_lookups_total{job=\"good\",result=\"failed\"}", "values": "0x60"},
        {"series": "entrypoint_guard_registry_lookups_total{job=\"good\",result=\"resolved\"}", "values": "0+1x60"},
        {"series": "entrypoint_guard_tls_certificate_expiry_timestamp_seconds{job=\"bad\",instance=\"a\"}", "values": "864000x60"},
        {"series": "entrypoint_guard_tls_certificate_expiry_timestamp_seconds{job=\"good\",instance=\"b\"}", "values": "8640000x60"},
        {"series": "entrypoint_guard_admission_duration_seconds_count{job=\"bad\",route=\"mutate\"}", "values": "0+5x20 100x40"},
        {"series": "entrypoint_guard_admission_duration_seconds_count{job=\"good\",route=\"mutate\"}", "values": "0+10x60"},
        {"series": "entrypoint_guard_findings_total{job=\"bad\",rule=\"command-bypasses-wrapper\",applied=\"false\"}", "values": "0+1x60"},
        {"series": "entrypoint_guard_findings_total{job=\"good\",rule=\"command-bypasses-wrapper\",applied=\"true\"}", "values": "0+1x60"},
        {"series": "entrypoint_guard_audit_findings{job=\"bad\",namespace=\"shop\",rule=\"command-bypasses-wrapper\"}", "values": "3x60"},
        {"series": "entrypoint_guard_audit_findings{job=\"good\",namespace=\"fixed\",rule=\"command-bypasses-wrapper\"}", "values": "0x60"},
    ]);
    // (alert_rule_test would compare the rendered annotations word for word;
    // the expressions are what decides, so they are tested.)
    let rules = alerts(&rendered(&[]));
    let mut expr_tests = Vec::new();
    for rule in &rules {
        let expr = rule["expr"].as_str().unwrap();
        // `> threshold` / `< threshold` / `== 0` filters: the series that pass are the ones that fire.
        let fires = format!("count by (job) ({expr})");
        expr_tests.push(json!({
            "expr": fires,
            "eval_time": "50m",
            "exp_samples": [{"labels": "{job=\"bad\"}", "value": 1}],
        }));
    }
    let tests = json!({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": expr_tests}],
    });
    std::fs::write(
        dir.path().join("tests.yaml"),
        serde_json::to_string_pretty(&tests).unwrap(),
    )
    .unwrap();
    let tested = promtool(dir.path(), &["test", "rules", "tests.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}
