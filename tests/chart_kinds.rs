//! `config.customKinds` in the chart (real `helm template`): every configured
//! kind's resource in the webhook rules of each route that takes workloads
//! and in the background audit's RBAC, exactly the kinds the program's own
//! table holds for the rendered configuration; and the chart's
//! files/kind-presets.yaml is the program's preset table.

#[path = "support/chart.rs"]
mod chart;

use std::collections::BTreeSet;

use chart::{render, render_error};
use entrypoint_guard::config::Config;
use entrypoint_guard::engine::kinds::chart_file;
use serde_json::Value;

const CUSTOM: &str = r#"config.customKinds=["argo-rollouts","knative-serving","volcano",{"group":"example.com","kind":"Widget","plural":"widgets","versions":["v1","v1beta1"],"podSpecPaths":["/spec/parts/*/template/spec"]}]"#;

/// (group, resource, versions) of every rule of a webhook (or ClusterRole rule).
fn resources(rules: &Value, with_versions: bool) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in rules.as_array().expect("rules") {
        let versions = if with_versions {
            rule["apiVersions"].to_string()
        } else {
            String::new()
        };
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                out.insert((
                    group.as_str().unwrap().to_string(),
                    resource.as_str().unwrap().to_string(),
                    versions.clone(),
                ));
            }
        }
    }
    out
}

#[test]
fn the_charts_presets_are_the_programs() {
    let file = std::fs::read_to_string(chart::chart_dir().join("files/kind-presets.yaml")).unwrap();
    assert_eq!(
        file,
        chart_file(),
        "files/kind-presets.yaml is stale: regenerate it with `entrypoint-guard kinds --presets`"
    );
}

#[test]
fn every_configured_kind_is_in_the_rules_and_the_rbac() {
    for scope in ["workloads", "pods"] {
        let r = render(&[
            "--set-json",
            CUSTOM,
            "--set",
            &format!("config.scope={scope}"),
            "--set",
            "backgroundAudit.enabled=true",
        ]);
        // The program reads the same configuration: its table is the truth.
        let config = Config::from_yaml(r.config_text(), "configmap").expect("the rendered config loads");
        let policy = config.policy();
        let expected: BTreeSet<(String, String, String)> = policy
            .kinds
            .custom()
            .map(|k| {
                (
                    k.group.clone(),
                    k.plural.clone(),
                    serde_json::to_string(&k.versions).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            expected.len(),
            6,
            "Rollout, three Knative kinds, the Volcano Job, Widget"
        );
        let (takes_workloads, pods_only): (Vec<&Value>, Vec<&Value>) = r
            .webhooks()
            .iter()
            .partition(|w| w["rules"].as_array().unwrap().len() > 1);
        assert_eq!(pods_only.len(), usize::from(scope == "pods"), "{scope}");
        for webhook in takes_workloads {
            let rules = resources(&webhook["rules"], true);
            for kind in &expected {
                assert!(
                    rules.contains(kind),
                    "{scope} {}: {kind:?} in {rules:?}",
                    webhook["name"]
                );
            }
        }
        for webhook in pods_only {
            let rules = resources(&webhook["rules"], true);
            assert!(
                expected.iter().all(|k| !rules.contains(k)),
                "{scope}: the Pods-only webhook takes no custom kind"
            );
        }
        let role = r.get("ClusterRole", chart::FULLNAME);
        let rbac = resources(&role["rules"], false);
        for (group, plural, _) in &expected {
            assert!(
                rbac.contains(&(group.clone(), plural.clone(), String::new())),
                "RBAC lists {plural}.{group}"
            );
        }
    }
}

#[test]
fn without_custom_kinds_nothing_changes_and_unknown_presets_are_refused() {
    let r = render(&[]);
    let config = Config::from_yaml(r.config_text(), "configmap").unwrap();
    assert_eq!(config.policy().kinds.custom().count(), 0);
    let e = render_error(&["--set-json", r#"config.customKinds=["argo-rolouts"]"#]);
    assert!(e.contains("customKinds"), "{e}");
    let e = render_error(&[
        "--set-json",
        r#"config.customKinds=[{"group":"example.com","kind":"Widget","plural":"widgets","versions":["v1"],"podSpecPaths":["spec"]}]"#,
    ]);
    assert!(e.contains("podSpecPaths"), "{e}");
}
