//! Every metric and label the chart's dashboard and alerts query exists on
//! the real `/metrics` of a running server that has answered the captured
//! admissions, looked images up in a real registry and run a background
//! audit against the stand-in API server. PromQL is read by a small lexer
//! (tests/support/promql.rs), so functions, keywords, ranges and Grafana
//! variables are never taken for metric names.

#[path = "support/audit.rs"]
mod audit_support;
#[path = "support/chart.rs"]
mod chart;
#[path = "support/monitoring.rs"]
mod monitoring;
#[path = "support/promql.rs"]
mod promql;
#[path = "support/registry.rs"]
mod registry;
#[path = "support/serve.rs"]
mod serve;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use audit_support::{ApiServer, Behaviour};
use entrypoint_guard::server::background::BackgroundAudit;
use entrypoint_guard::server::{Server, selfsigned};
use monitoring::{TARGET_LABELS, alerts, dashboard, dashboard_exprs, rendered};
use serde_json::{Value, json};

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
            reports: None,
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
