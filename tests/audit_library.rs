//! `cluster::run` (the audit core) as a library, the way `serve --background-audit` will call it:
//! a kube client from a kubeconfig, a resolver behind the trait, and the
//! per-namespace, per-rule counts the gauges export.

#[path = "support/audit.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use entrypoint_guard::cluster::{self, AuditOptions};
use entrypoint_guard::engine::{Policy, Rule};
use entrypoint_guard::image::{OfflineResolver, Resolver};
use serde_json::Value;
use support::{ApiServer, Behaviour, COLLECTIONS, expected, fixture, images_facts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_counts_by_namespace_and_rule_and_keeps_objects_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = ApiServer::start(Behaviour::default());
    let kubeconfig = server.kubeconfig(dir.path());
    let client = entrypoint_guard::cluster::connect(Some(&kubeconfig), Some("stand-in"))
        .await
        .expect("client from the kubeconfig");
    let facts = images_facts(dir.path());
    let resolver: Arc<dyn Resolver> = Arc::new(OfflineResolver::new(facts.clone()));
    let options = AuditOptions {
        page_size: 1,
        ..AuditOptions::default()
    };
    let report = cluster::run(&client, &options, resolver, &Policy::default()).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let mut want: BTreeMap<(String, Rule), u64> = BTreeMap::new();
    for (file, api_version, kind, _) in COLLECTIONS {
        for item in fixture(file)["items"].as_array().unwrap() {
            let (object, inspection) = expected(item, api_version, kind, &facts);
            let namespace = object["metadata"]["namespace"].as_str().unwrap().to_string();
            for finding in &inspection.findings {
                *want.entry((namespace.clone(), finding.rule)).or_insert(0) += 1;
            }
            // An object with findings is in the report, and the object the
            // engine saw is the listed item, every field kept, with
            // apiVersion and kind added; one without findings is not.
            let name = &item["metadata"]["name"];
            let audited = report.objects.iter().find(|o| o.kind == kind && o.name == *name);
            if inspection.findings.is_empty() {
                assert!(audited.is_none(), "{kind} {name} has no findings but is reported");
                continue;
            }
            let audited = audited.unwrap_or_else(|| panic!("{kind} {name} has findings but is not in the report"));
            assert_eq!(audited.object, object, "{kind}");
            assert_eq!(audited.findings, inspection.findings, "{kind} {name}");
            let keys: Vec<&String> = audited.object.as_object().unwrap().keys().take(2).collect();
            assert_eq!(keys, ["apiVersion", "kind"]);
        }
    }
    assert_eq!(report.counts_by_namespace_and_rule(), want);
    assert_eq!(want[&("demo".to_string(), Rule::CommandBypassesWrapper)], 12);
    assert!(report.objects.iter().all(|o| o.object != Value::Null));
}
