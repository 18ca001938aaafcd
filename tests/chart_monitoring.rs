//! The chart's Grafana dashboard and PrometheusRule: opt-in, labelled for
//! the Grafana sidecar and the operator's selectors, rules that pass
//! `promtool check rules` (and fire on the data they are meant for), and —
//! the point — every metric and label they query exists on the real
//! `/metrics` of a running server that has answered the captured
//! admissions, looked images up in a real registry and run a background
//! audit against the stand-in API server.

#[path = "support/audit.rs"]
mod audit_support;
#[path = "support/chart.rs"]
mod chart;
#[path = "support/promql.rs"]
mod promql;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/review.rs"]
mod review_support;
#[path = "support/serve.rs"]
mod serve;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use audit_support::{ApiServer, Behaviour};
use chart::{FULLNAME, NAMESPACE, Rendered, render, render_error, validate};
use entrypoint_guard::server::background::BackgroundAudit;
use entrypoint_guard::server::{Server, selfsigned};
use serde_json::{Value, json};

const ON: [&str; 6] = [
    "--set",
    "monitoring.dashboard.enabled=true",
    "--set",
    "monitoring.prometheusRule.enabled=true",
    "--set",
    "backgroundAudit.enabled=true",
];

/// Labels Prometheus adds to every scraped series.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

fn rendered(extra: &[&str]) -> Rendered {
    let args: Vec<&str> = ON.iter().chain(extra).copied().collect();
    render(&args)
}

fn dashboard(r: &Rendered) -> Value {
    let cm = r.get("ConfigMap", &format!("{FULLNAME}-dashboard"));
    let text = cm["data"]["entrypoint-guard.json"]
        .as_str()
        .expect("the dashboard JSON");
    serde_json::from_str(text).unwrap_or_else(|e| panic!("the dashboard is not JSON: {e}"))
}

fn alerts(r: &Rendered) -> Vec<Value> {
    let rule = r.get("PrometheusRule", FULLNAME);
    rule["spec"]["groups"][0]["rules"].as_array().expect("rules").clone()
}

/// Every PromQL expression of a dashboard: panel targets and variable queries.
fn dashboard_exprs(value: &Value, out: &mut Vec<String>) {
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

// ---- every metric and label exists on a real /metrics -----------------------

/// A review of the captured Pod CREATE whose containers run `images`.
fn pod_review(uid: &str, images: &[String]) -> Value {
    let review = serve::fixture("pod-create");
    let mut pod = review["request"]["object"].clone();
    pod["spec"]["initContainers"] = json!([]);
    pod["spec"]["containers"] = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image, "command": ["/app/run"]}))
        .collect();
    serve::with_object(&review, uid, pod)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_and_label_the_dashboard_and_alerts_use_exists() {
    // A real registry with the standard images, the stand-in API server for the audit.
    let world = registry::World::new();
    let reg = world.plain.addr.clone();
    let dir = tempfile::tempdir().unwrap();
    let api = ApiServer::start(Behaviour::default());
    let kubeconfig = api.kubeconfig(dir.path());
    let client = entrypoint_guard::cluster::connect(Some(&kubeconfig), Some("stand-in"))
        .await
        .unwrap();
    let tls = selfsigned::write(&dir.path().join("tls")).unwrap();
    let mut config = serve::test_config(&tls);
    config.registry.enabled = true;
    config.registry.pull_secrets = false;
    config.registry.insecure = vec![reg.clone()];
    config.registry.allow_private = vec![reg.clone()];
    // The fixture images keep their offline facts; images in the registry are looked up.
    let resolver = entrypoint_guard::server::resolver(&config, &[])
        .await
        .expect("resolver builds");
    let running = Server::new(config, resolver)
        .with_background_audit(BackgroundAudit {
            client,
            interval: Duration::from_millis(500),
        })
        .start()
        .await
        .expect("server starts");
    let https = serve::client(&[&tls.ca], false);
    let url = |path: &str| format!("https://localhost:{}{path}", running.addr().port());

    // Every captured admission through both routes.
    for (name, review) in serve::fixtures() {
        for route in ["/mutate", "/audit"] {
            let answer = serve::post(&https, &url(&format!("{route}?timeout=10s")), &review).await;
            assert_eq!(answer.status, 200, "{name} {route}: {}", answer.text);
        }
    }
    // Registry lookups: resolved, failed, then answered from the cache.
    let images = vec![format!("{reg}/chalk/bare:1.0"), format!("{reg}/missing/image:1.0")];
    for uid in [
        "7c1f0000-0000-4000-8000-000000000001",
        "7c1f0000-0000-4000-8000-000000000002",
    ] {
        let answer = serve::post(&https, &url("/mutate?timeout=10s"), &pod_review(uid, &images)).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    // A request refused before any AdmissionReview.
    let refused = serve::post_raw(&https, &url("/mutate?timeout=10s"), "text/plain", b"hello".to_vec()).await;
    assert_eq!(refused.status, 415);

    // The background audit has run once the runs counter moves.
    let metrics_url = format!("http://{}/metrics", running.health_addr().unwrap());
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = http.get(&metrics_url).send().await.unwrap().text().await.unwrap();
        let scraped = promql::scrape(&text);
        if scraped.contains_key("entrypoint_guard_audit_runs_total")
            && scraped["entrypoint_guard_audit_runs_total"].len() == 1
            && !text.contains("entrypoint_guard_audit_runs_total 0\n")
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no background audit ran within 60 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let scraped = promql::scrape(&text);

    // The expressions of the dashboard and of every alert.
    let r = rendered(&[]);
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard(&r), &mut exprs);
    let panel_exprs = exprs.len();
    assert!(panel_exprs >= 20, "{panel_exprs} dashboard expressions");
    exprs.extend(alerts(&r).iter().map(|a| a["expr"].as_str().unwrap().to_string()));

    let mut checked = BTreeMap::<String, BTreeSet<String>>::new();
    for expr in &exprs {
        let reads = promql::reads(expr);
        assert!(!reads.selectors.is_empty(), "{expr} reads no metric");
        let mut labels_here: BTreeSet<String> = TARGET_LABELS.iter().map(|l| l.to_string()).collect();
        for selector in &reads.selectors {
            let metric = &selector.metric;
            assert!(
                metric.starts_with("entrypoint_guard_"),
                "{metric} is not ours, in {expr}"
            );
            let series = scraped
                .get(metric)
                .unwrap_or_else(|| panic!("{metric} (in {expr}) is not on /metrics:\n{text}"));
            let present: BTreeSet<&String> = series.iter().flat_map(|s| s.keys()).collect();
            labels_here.extend(present.iter().map(|l| l.to_string()));
            for m in &selector.matchers {
                if TARGET_LABELS.contains(&m.label.as_str()) {
                    continue;
                }
                assert!(
                    present.contains(&m.label),
                    "{metric} has no label {} (in {expr})",
                    m.label
                );
                let values: BTreeSet<&str> = series
                    .iter()
                    .filter_map(|s| s.get(&m.label))
                    .map(String::as_str)
                    .collect();
                let literal = !m.value.contains('$');
                if literal && m.op == "=" {
                    assert!(
                        values.contains(m.value.as_str()),
                        "no {metric}{{{}=\"{}\"}} series (values seen: {values:?}) for {expr}",
                        m.label,
                        m.value
                    );
                }
                checked.entry(metric.clone()).or_default().insert(m.label.clone());
            }
            checked.entry(metric.clone()).or_default();
        }
        for label in &reads.grouping {
            assert!(
                labels_here.contains(label),
                "{expr} groups by {label}, which its metrics lack"
            );
        }
    }
    // What the check covered, for the reader of a failure.
    for must in [
        "entrypoint_guard_admission_requests_total",
        "entrypoint_guard_admission_duration_seconds_bucket",
        "entrypoint_guard_admission_duration_seconds_count",
        "entrypoint_guard_findings_total",
        "entrypoint_guard_objects_left_unpatched_total",
        "entrypoint_guard_admission_errors_total",
        "entrypoint_guard_rejected_requests_total",
        "entrypoint_guard_registry_lookups_total",
        "entrypoint_guard_registry_cache_hits_total",
        "entrypoint_guard_registry_cache_entries",
        "entrypoint_guard_tls_certificate_expiry_timestamp_seconds",
        "entrypoint_guard_audit_findings",
        "entrypoint_guard_audit_objects",
        "entrypoint_guard_audit_errors",
        "entrypoint_guard_audit_runs_total",
        "entrypoint_guard_audit_last_run_timestamp_seconds",
    ] {
        assert!(
            checked.contains_key(must),
            "the dashboard or the alerts do not show {must}: {checked:?}"
        );
    }
    // The registry series are real counts, the certificate gauge the served notAfter.
    let value = |line_start: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line_start))
            .unwrap_or_else(|| panic!("{line_start} in\n{text}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert!(value("entrypoint_guard_registry_lookups_total{result=\"resolved\"} ") >= 1.0);
    assert!(value("entrypoint_guard_registry_lookups_total{result=\"failed\"} ") >= 1.0);
    assert!(value("entrypoint_guard_registry_cache_hits_total ") >= 1.0);
    let served = std::fs::read(&tls.cert).unwrap();
    let files = entrypoint_guard::server::tls::TlsFiles {
        cert: tls.cert.clone(),
        key: tls.key.clone(),
    };
    assert_eq!(
        value("entrypoint_guard_tls_certificate_expiry_timestamp_seconds "),
        files.not_after(&served).unwrap() as f64
    );
    running.shutdown();
    drop(api);
}
