//! `serve --background-audit`: the cluster audit runs periodically inside the
//! webhook and its counts are exported as gauges on `/metrics`, equal to what
//! `audit` reports for the same cluster.

#[path = "support/audit.rs"]
mod audit_support;
#[path = "support/serve.rs"]
mod serve_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use audit_support::{ApiServer, Behaviour, images_facts};
use entrypoint_guard::cluster::{self, AuditOptions};
use entrypoint_guard::engine::Policy;
use entrypoint_guard::image::{OfflineResolver, Resolver};
use entrypoint_guard::server::background::BackgroundAudit;
use entrypoint_guard::server::{Server, selfsigned};

/// `entrypoint_guard_audit_findings{namespace,rule}` series from an exposition.
fn audit_gauges(metrics: &str) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("entrypoint_guard_audit_findings{"))
    {
        let (labels, value) = line.rsplit_once(' ').expect("series and value");
        let label = |name: &str| {
            let start = labels.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
            labels[start..].split('"').next().unwrap().to_string()
        };
        out.insert((label("namespace"), label("rule")), value.parse().unwrap());
    }
    out
}

fn runs(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("entrypoint_guard_audit_runs_total "))
        .map_or(0, |v| v.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gauges_match_the_audit_and_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let api = ApiServer::start(Behaviour::default());
    let kubeconfig = api.kubeconfig(dir.path());
    let client = entrypoint_guard::cluster::connect(Some(&kubeconfig), Some("stand-in"))
        .await
        .unwrap();
    let resolver: Arc<dyn Resolver> = Arc::new(OfflineResolver::new(images_facts(dir.path())));

    // What `audit` reports for this cluster.
    let report = cluster::run(&client, &AuditOptions::default(), resolver.clone(), &Policy::default()).await;
    let want: BTreeMap<(String, String), u64> = report
        .counts_by_namespace_and_rule()
        .into_iter()
        .map(|((ns, rule), n)| ((ns, rule.id().to_string()), n))
        .collect();
    assert!(!want.is_empty());

    let tls = selfsigned::write(&dir.path().join("tls")).unwrap();
    let config = serve_support::test_config(&tls);
    let running = Server::new(config, resolver)
        .with_background_audit(BackgroundAudit {
            client,
            interval: Duration::from_millis(300),
            reports: None,
        })
        .start()
        .await
        .expect("server starts");
    let url = format!("http://{}/metrics", running.health_addr().unwrap());
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let text = http.get(&url).send().await.unwrap().text().await.unwrap();
        if runs(&text) >= 2 {
            break text; // refreshed at least once after the first run
        }
        assert!(Instant::now() < deadline, "no second background audit in 20 s:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(audit_gauges(&metrics), want);
    assert!(metrics.contains("entrypoint_guard_audit_errors 0"), "{metrics}");
    // Shutdown does not wait for the next audit.
    let started = Instant::now();
    running.shutdown();
    running.wait().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
}
