//! PolicyReports from `audit --report-to-cluster` and `serve
//! --background-audit --policy-reports`, against the stand-in API server
//! (real HTTPS, the real kube client): the report API is chosen by
//! discovery, every report is a server-side apply of the whole report
//! (recorded here), replaced rather than duplicated, shrunk or deleted when
//! findings go away, and owned by its Namespace.

#[path = "support/audit.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use entrypoint_guard::engine::Rule;
use entrypoint_guard::image::{OfflineResolver, Resolver};
use entrypoint_guard::server::background::{BackgroundAudit, ReportOptions};
use serde_json::{Value, json};
use support::{ApiServer, Behaviour, fixture, images_facts, images_file, run_audit, stderr};

const DEPLOYMENTS: &str = "/apis/apps/v1/deployments";
const OPEN: &str = "/apis/openreports.io/v1alpha1/namespaces";
const WG: &str = "/apis/wgpolicyk8s.io/v1alpha2/namespaces";

/// The fixture's Deployment again, as `name` in `namespace`.
fn deployment(namespace: &str, name: &str, n: u32) -> Value {
    let mut deployment = fixture("apis_apps_v1_deployments.json")["items"][0].clone();
    deployment["metadata"]["namespace"] = json!(namespace);
    deployment["metadata"]["name"] = json!(name);
    deployment["metadata"]["uid"] = json!(format!("0b9f4d6e-0000-4c1e-9d1e-00000000000{n}"));
    deployment
}

fn server(groups: &[&str]) -> ApiServer {
    ApiServer::start(Behaviour {
        report_groups: groups.iter().map(|g| g.to_string()).collect(),
        extra: HashMap::from([(
            DEPLOYMENTS.to_string(),
            vec![
                deployment("team-b", "app-deploy", 2),
                deployment("demo", "app-deploy-canary", 3),
            ],
        )]),
        ..Behaviour::default()
    })
}

/// Runs `audit --report-to-cluster` with the fixtures' image facts.
fn audit(api: &ApiServer, dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let kubeconfig = api.kubeconfig(dir);
    let images = images_file(dir);
    let mut args = vec![
        "--report-to-cluster",
        "-o",
        "json",
        "--images",
        images.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_audit(&kubeconfig, &args)
}

/// `rule → result` pairs of a report, sorted.
fn outcomes(report: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap_or("").to_string(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The report with its timestamps set to 0, for snapshots.
fn stable(report: &Value) -> Value {
    let mut report = report.clone();
    for result in report["results"].as_array_mut().unwrap() {
        result["timestamp"] = json!({"seconds": 0, "nanos": 0});
    }
    report
}

#[test]
fn openreports_are_applied_whole_replaced_shrunk_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    // Both served: openreports.io wins.
    let api = server(&["openreports.io", "wgpolicyk8s.io"]);

    // 1. Everything.
    let first = audit(&api, dir.path(), &[]);
    assert_eq!(
        first.status.code(),
        Some(1),
        "findings exit 1; stderr: {}",
        stderr(&first)
    );
    let applied = api.applied();
    let paths: Vec<&str> = applied.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            format!("{OPEN}/demo/reports/entrypoint-guard"),
            format!("{OPEN}/team-b/reports/entrypoint-guard")
        ],
        "one report per namespace with findings"
    );
    for apply in &applied {
        assert_eq!(apply.content_type, "application/apply-patch+yaml");
        assert_eq!(
            apply.query.get("fieldManager").map(String::as_str),
            Some("entrypoint-guard")
        );
        assert_eq!(apply.query.get("force").map(String::as_str), Some("true"));
    }
    let demo_first = applied[0].body.clone();
    // Exactly the fields of an openreports Report.
    let keys: Vec<&str> = demo_first.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["apiVersion", "kind", "metadata", "source", "summary", "results"]);
    assert_eq!(demo_first["apiVersion"], "openreports.io/v1alpha1");
    assert_eq!(demo_first["kind"], "Report");
    assert_eq!(demo_first["source"], "entrypoint-guard");
    assert_eq!(
        demo_first["metadata"],
        json!({"name": "entrypoint-guard", "namespace": "demo",
            "labels": {"app.kubernetes.io/managed-by": "entrypoint-guard"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Namespace", "name": "demo", "uid": "uid-demo"}]}),
        "owned by the Namespace: deleting it garbage-collects the report"
    );
    for result in demo_first["results"].as_array().unwrap() {
        assert_eq!(result["policy"], "entrypoint-guard");
        assert_eq!(result["source"], "entrypoint-guard");
        let rule = Rule::ALL
            .into_iter()
            .find(|r| r.id() == result["rule"])
            .expect("a rule id of the engine");
        assert_eq!(result["result"], rule.outcome().as_str());
        assert_eq!(result["category"], rule.category());
        assert_eq!(result["resources"].as_array().unwrap().len(), 1);
        assert!(result["properties"].as_object().unwrap().values().all(Value::is_string));
    }
    let summary = &demo_first["summary"];
    let counted: u64 = ["pass", "fail", "warn", "error", "skip"]
        .iter()
        .map(|k| summary[k].as_u64().unwrap())
        .sum();
    assert_eq!(counted as usize, demo_first["results"].as_array().unwrap().len());
    assert!(summary["fail"].as_u64().unwrap() > 0, "{summary}");

    // 2. The canary Deployment is gone: fewer results, the same report replaced in place.
    api.delete_object("demo", "app-deploy-canary");
    let second = audit(&api, dir.path(), &[]);
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let stored = api.reports();
    assert_eq!(stored.len(), 2, "replaced, not duplicated: {:?}", stored.keys());
    let demo_second = &stored[&format!("{OPEN}/demo/reports/entrypoint-guard")];
    let (before, after) = (
        demo_first["results"].as_array().unwrap().len(),
        demo_second["results"].as_array().unwrap().len(),
    );
    assert!(
        after < before,
        "the report shrinks when findings go away: {before} → {after}"
    );
    insta::assert_json_snapshot!("openreports_demo", stable(demo_second));
    // A finding's proposed fix is in its properties.
    let deployment_bypass = demo_second["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "command-bypasses-wrapper" && r["resources"][0]["kind"] == "Deployment")
        .expect("the Deployment's bypass");
    assert_eq!(deployment_bypass["result"], "fail");
    assert_eq!(deployment_bypass["severity"], "high");
    assert!(deployment_bypass["properties"]["proposedArgs"].is_string());

    // 3. team-b deleted: its report is deleted, demo's stays.
    api.delete_namespace("team-b");
    let third = audit(&api, dir.path(), &[]);
    assert_eq!(third.status.code(), Some(1), "{}", stderr(&third));
    let stored = api.reports();
    let paths: Vec<&String> = stored.keys().collect();
    assert_eq!(paths, [&format!("{OPEN}/demo/reports/entrypoint-guard")]);
}

#[test]
fn wgpolicy_reports_when_only_they_are_served_with_passes() {
    let dir = tempfile::tempdir().unwrap();
    let api = server(&["wgpolicyk8s.io"]);
    let out = audit(&api, dir.path(), &["--report-passes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let stored = api.reports();
    let demo = &stored[&format!("{WG}/demo/policyreports/entrypoint-guard")];
    assert_eq!(demo["apiVersion"], "wgpolicyk8s.io/v1alpha2");
    assert_eq!(demo["kind"], "PolicyReport");
    assert!(
        demo.get("source").is_none(),
        "wgpolicyk8s.io has no report-level source"
    );
    // The control Pod has no findings: one pass.
    let passes: Vec<&Value> = demo["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["result"] == "pass")
        .collect();
    assert_eq!(passes.len(), demo["summary"]["pass"].as_u64().unwrap() as usize);
    assert!(
        passes
            .iter()
            .any(|r| r["resources"][0] == json!({"apiVersion": "v1", "kind": "Pod", "namespace": "demo", "name": "control", "uid": fixture("api_v1_pods.json")["items"][1]["metadata"]["uid"]})),
        "{passes:?}"
    );
    insta::assert_json_snapshot!(
        "wgpolicy_team_b",
        stable(&stored[&format!("{WG}/team-b/policyreports/entrypoint-guard")])
    );
}

#[test]
fn a_refused_report_leaves_the_others_written_and_fails_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let api = ApiServer::start(Behaviour {
        report_groups: vec!["openreports.io".into()],
        refused_reports: ["team-b".to_string()].into(),
        extra: HashMap::from([(DEPLOYMENTS.to_string(), vec![deployment("team-b", "app-deploy", 2)])]),
        ..Behaviour::default()
    });
    let out = audit(&api, dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("1 of 2 reports not written") && stderr(&out).contains("namespace team-b"),
        "{}",
        stderr(&out)
    );
    let stored = api.reports();
    let paths: Vec<&String> = stored.keys().collect();
    assert_eq!(paths, [&format!("{OPEN}/demo/reports/entrypoint-guard")]);
}

#[test]
fn no_report_api_served_is_an_error_for_audit() {
    let dir = tempfile::tempdir().unwrap();
    let api = server(&[]);
    let out = audit(&api, dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("serves neither openreports.io/v1alpha1 nor wgpolicyk8s.io/v1alpha2"),
        "{}",
        stderr(&out)
    );
    assert!(api.applied().is_empty());
}

#[test]
fn the_audit_never_asks_the_watch_cache_for_a_whole_collection() {
    // resourceVersion=0 makes kube-apiserver ignore limit: never sent.
    let dir = tempfile::tempdir().unwrap();
    let api = server(&[]);
    let kubeconfig = api.kubeconfig(dir.path());
    let out = run_audit(&kubeconfig, &["-o", "json", "--chunk-size", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lists: Vec<_> = api
        .seen()
        .into_iter()
        .filter(|s| s.query.contains_key("limit"))
        .collect();
    assert!(!lists.is_empty());
    assert!(
        lists.iter().all(|s| !s.query.contains_key("resourceVersion")),
        "{lists:?}"
    );
}

/// `serve`'s background audit of `api` writing reports every `interval`
/// (facts in `dir`): its task, and the sender that stops it.
async fn background_audit(
    api: &ApiServer,
    dir: &std::path::Path,
    interval: Duration,
) -> (tokio::task::JoinHandle<()>, tokio::sync::watch::Sender<bool>) {
    let client = entrypoint_guard::cluster::connect(Some(&api.kubeconfig(dir)), Some("stand-in"))
        .await
        .unwrap();
    let resolver: Arc<dyn Resolver> = Arc::new(OfflineResolver::new(images_facts(dir)));
    let metrics = Arc::new(entrypoint_guard::server::metrics::Metrics::new(&Default::default()));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let audit = BackgroundAudit {
        client,
        interval,
        reports: Some(ReportOptions { passes: false }),
    };
    (audit.spawn(resolver, Default::default(), metrics, stop), stop_tx)
}

/// `serve --background-audit --policy-reports`: reports appear, each cycle
/// applies them again in place; metrics only (and no request) when neither API is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_audit_writes_reports_each_cycle() {
    for groups in [vec!["wgpolicyk8s.io"], vec![]] {
        let dir = tempfile::tempdir().unwrap();
        let groups: Vec<&str> = groups;
        let api = server(&groups);
        let (task, stop_tx) = background_audit(&api, dir.path(), Duration::from_millis(50)).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let audits_seen = |api: &ApiServer| {
            api.seen()
                .iter()
                .filter(|s| s.path == "/apis/apps/v1/deployments")
                .count()
        };
        loop {
            let done = if groups.is_empty() {
                audits_seen(&api) >= 3
            } else {
                api.applied().len() >= 4
            };
            if done {
                break;
            }
            assert!(Instant::now() < deadline, "no two cycles in 30 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        if groups.is_empty() {
            assert!(api.applied().is_empty());
            continue;
        }
        let stored = api.reports();
        let mut paths: Vec<&String> = stored.keys().collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                &format!("{WG}/demo/policyreports/entrypoint-guard"),
                &format!("{WG}/team-b/policyreports/entrypoint-guard")
            ]
        );
        let counts: BTreeMap<String, usize> = api.applied().iter().fold(BTreeMap::new(), |mut m, a| {
            *m.entry(a.path.clone()).or_insert(0) += 1;
            m
        });
        assert!(counts.values().all(|n| *n >= 2), "applied again each cycle: {counts:?}");
        assert!(
            outcomes(&stored[paths[1]]).contains(&("command-bypasses-wrapper".to_string(), "fail".to_string())),
            "{:?}",
            outcomes(&stored[paths[1]])
        );
    }
}

/// A shared buffer the log lines of the test's thread go to.
#[derive(Clone, Default)]
struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// With neither report API served, `serve`'s background audit says so once
/// in its log, not once a cycle, and keeps auditing (metrics only).
#[tokio::test]
async fn no_report_api_is_said_once_however_many_cycles() {
    let lines = Lines::default();
    let writer = lines.clone();
    // This runtime has one thread, so the audit task logs through this subscriber.
    let _log = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    );
    let dir = tempfile::tempdir().unwrap();
    let api = server(&[]);
    let (task, stop_tx) = background_audit(&api, dir.path(), Duration::from_millis(20)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.seen().iter().filter(|s| s.path == DEPLOYMENTS).count() < 4 {
        assert!(Instant::now() < deadline, "no four cycles in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let said = text
        .matches("neither openreports.io/v1alpha1 nor wgpolicyk8s.io/v1alpha2 is served")
        .count();
    assert_eq!(said, 1, "{text}");
    assert!(api.applied().is_empty());
}
