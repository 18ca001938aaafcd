//! The kinds in the chart (real `helm template`): the webhook rules of each
//! route and the background audit's RBAC hold exactly the kinds the
//! program's own table holds for the rendered configuration, built-in and
//! `config.customKinds` alike; the chart's files/kinds.yaml, which they are
//! built from, is the program's table (built-in rows and presets); and
//! values.schema.json offers exactly the presets the program knows.

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
    let file = std::fs::read_to_string(chart::chart_dir().join("files/kinds.yaml")).unwrap();
    assert_eq!(
        file,
        chart_file(),
        "files/kinds.yaml is stale: regenerate it with `entrypoint-guard kinds --chart`"
    );
    // The schema offers the presets the file (the program) has, no more, no less.
    let file: Value = serde_saphyr::from_str(&file).unwrap();
    let presets: BTreeSet<String> = file["presets"].as_object().unwrap().keys().cloned().collect();
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(chart::chart_dir().join("values.schema.json")).unwrap()).unwrap();
    let offered: BTreeSet<String> = schema
        .pointer("/properties/config/properties/customKinds/items/oneOf/0/enum")
        .and_then(Value::as_array)
        .expect("the preset names in values.schema.json")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(offered, presets);
}

#[test]
fn the_rules_and_the_rbac_hold_exactly_the_programs_kinds() {
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
        assert_eq!(
            policy.kinds.custom().count(),
            6,
            "Rollout, three Knative kinds, the Volcano Job, Widget"
        );
        let of = |pods: bool, workloads: bool| -> BTreeSet<(String, String, String)> {
            policy
                .kinds
                .iter()
                .filter(|k| {
                    if k.kind == "Pod" && k.group.is_empty() {
                        pods
                    } else {
                        workloads
                    }
                })
                .map(|k| {
                    (
                        k.group.clone(),
                        k.plural.clone(),
                        serde_json::to_string(&k.versions).unwrap(),
                    )
                })
                .collect()
        };
        // scope: pods sends only Pods to /mutate, the other kinds of fix namespaces to /audit.
        let routes = match scope {
            "pods" => vec![
                ("fix", of(true, false)),
                ("audit", of(true, true)),
                ("workloads", of(false, true)),
            ],
            _ => vec![("fix", of(true, true)), ("audit", of(true, true))],
        };
        let webhooks = r.webhooks();
        assert_eq!(webhooks.len(), routes.len(), "{scope}");
        for (name, expected) in routes {
            let webhook = webhooks
                .iter()
                .find(|w| w["name"] == format!("{name}.entrypoint-guard.io"))
                .unwrap_or_else(|| panic!("{scope}: no {name} webhook"));
            assert_eq!(resources(&webhook["rules"], true), expected, "{scope} {name}");
        }
        let role = r.get("ClusterRole", chart::FULLNAME);
        let reads: Vec<Value> = role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|rule| rule["verbs"] == serde_json::json!(["get", "list"]))
            .cloned()
            .collect();
        let expected: BTreeSet<_> = of(true, true)
            .into_iter()
            .map(|(g, p, _)| (g, p, String::new()))
            .collect();
        assert_eq!(resources(&Value::Array(reads), false), expected, "{scope}: RBAC");
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
