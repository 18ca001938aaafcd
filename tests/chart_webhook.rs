//! The MutatingWebhookConfiguration the chart renders: two webhooks with
//! safe defaults (three with `config.scope: pods`), namespaces routed by
//! label, and the namespaces that must never reach the webhook.

#[path = "support/chart.rs"]
mod chart;

use chart::{FULLNAME, NAMESPACE, Rendered, render};
use entrypoint_guard::engine::Kinds;
use serde_json::{Value, json};

const FIX: &str = "fix.entrypoint-guard.io";
const AUDIT: &str = "audit.entrypoint-guard.io";
const WORKLOADS: &str = "workloads.entrypoint-guard.io";

#[test]
fn both_webhooks_carry_the_safe_defaults() {
    let r = render(&[]);
    for (name, path) in [(FIX, "/mutate"), (AUDIT, "/audit")] {
        let w = r.webhook(name);
        assert_eq!(w["admissionReviewVersions"], json!(["v1"]), "{name}");
        assert_eq!(w["sideEffects"], "None", "{name}");
        assert_eq!(w["failurePolicy"], "Ignore", "{name}");
        assert_eq!(w["timeoutSeconds"], 5, "{name}");
        assert_eq!(w["reinvocationPolicy"], "IfNeeded", "{name}");
        assert_eq!(w["matchPolicy"], "Equivalent", "{name}");
        assert_eq!(
            w["clientConfig"]["service"],
            json!({"name": FULLNAME, "namespace": NAMESPACE, "path": path, "port": 443}),
            "{name}"
        );
        assert!(
            w.get("objectSelector").is_none(),
            "{name}: no objectSelector unless asked"
        );
        assert_eq!(rules(w), all_kinds(), "{name}");
        for rule in w["rules"].as_array().unwrap() {
            assert_eq!(rule["operations"], json!(["CREATE", "UPDATE"]), "{name}");
            assert_eq!(rule["scope"], "Namespaced", "{name}");
        }
        let conditions = w["matchConditions"].as_array().expect("matchConditions");
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0]["name"], "skip-mirror-pods");
        let cel = conditions[0]["expression"].as_str().unwrap();
        // Scoped to core pods, tolerant of objects without annotations.
        for part in [
            "request.resource.group != ''",
            "request.resource.resource != 'pods'",
            "!has(object.metadata.annotations)",
            "!('kubernetes.io/config.mirror' in object.metadata.annotations)",
        ] {
            assert!(cel.contains(part), "{name}: {cel} lacks {part}");
        }
    }
    // The Service routes port 443 to the container's https port.
    let svc = r.get("Service", FULLNAME);
    let https = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "https")
        .unwrap();
    assert_eq!(
        (https["port"].clone(), https["targetPort"].clone()),
        (json!(443), json!("https"))
    );
}

/// (apiGroup, apiVersion, resource) of every rule, sorted.
fn rules(webhook: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for rule in webhook["rules"].as_array().expect("rules") {
        for group in rule["apiGroups"].as_array().unwrap() {
            for version in rule["apiVersions"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    out.push((
                        group.as_str().unwrap().to_string(),
                        version.as_str().unwrap().to_string(),
                        resource.as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

/// Pods and every pod-template kind the engine handles: its built-in kinds,
/// read from its own table, so the chart's rules cannot fall behind it.
fn all_kinds() -> Vec<(String, String, String)> {
    let mut out: Vec<_> = Kinds::builtin()
        .iter()
        .flat_map(|k| {
            k.versions
                .iter()
                .map(|v| (k.group.clone(), v.clone(), k.plural.clone()))
        })
        .collect();
    assert_eq!(out.len(), 9, "Pod and the eight built-in pod-template kinds");
    out.sort();
    out
}

/// The `NotIn` list on `kubernetes.io/metadata.name`, and the mode label's expression.
fn selector(w: &Value) -> (Vec<String>, (String, Vec<String>)) {
    let exprs = w["namespaceSelector"]["matchExpressions"]
        .as_array()
        .expect("matchExpressions");
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let names = exprs
        .iter()
        .find(|e| e["key"] == "kubernetes.io/metadata.name")
        .expect("namespace name expression");
    assert_eq!(names["operator"], "NotIn");
    let mode = exprs
        .iter()
        .find(|e| e["key"] == "entrypoint-guard.io/mode")
        .expect("mode label expression");
    (
        strings(&names["values"]),
        (mode["operator"].as_str().unwrap().to_string(), strings(&mode["values"])),
    )
}

#[test]
fn kube_system_and_release_namespace_are_excluded_everywhere() {
    for args in [
        &[][..],
        &["--set", "webhook.excludeNamespaces={monitoring,kube-system}"],
        &["--set", "webhook.defaultMode=audit"],
        &["--set", "webhook.defaultMode=off", "--namespace", "platform"],
    ] {
        let r = render(args);
        let release_ns = if args.contains(&"platform") {
            "platform"
        } else {
            NAMESPACE
        };
        for w in r.webhooks() {
            let (excluded, _) = selector(w);
            assert!(excluded.contains(&"kube-system".to_string()), "{args:?}: {excluded:?}");
            assert!(excluded.contains(&release_ns.to_string()), "{args:?}: {excluded:?}");
            let mut unique = excluded.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), excluded.len(), "no duplicates: {excluded:?}");
            if args.iter().any(|a| a.contains("monitoring")) {
                assert!(excluded.contains(&"monitoring".to_string()), "{excluded:?}");
            }
        }
    }
}

#[test]
fn the_namespace_label_routes_each_namespace_to_one_webhook() {
    // Which webhook sees a namespace with this label value (None: no label).
    fn routed(r: &Rendered, label: Option<&str>) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (name, short) in [(FIX, "fix"), (AUDIT, "audit")] {
            let (_, (op, values)) = selector(r.webhook(name));
            let listed = label.is_some_and(|l| values.iter().any(|v| v == l));
            let matches = match op.as_str() {
                "In" => listed,
                "NotIn" => !listed,
                other => panic!("unexpected operator {other}"),
            };
            if matches {
                out.push(short);
            }
        }
        out
    }
    for (default, unlabelled) in [("fix", vec!["fix"]), ("audit", vec!["audit"]), ("off", vec![])] {
        let r = render(&["--set", &format!("webhook.defaultMode={default}")]);
        assert_eq!(routed(&r, None), unlabelled, "default {default}, no label");
        assert_eq!(routed(&r, Some("fix")), ["fix"], "default {default}");
        assert_eq!(routed(&r, Some("audit")), ["audit"], "default {default}");
        assert!(routed(&r, Some("off")).is_empty(), "default {default}");
    }
    let r = render(&["--set", "webhook.namespaceLabel=example.com/eg"]);
    let exprs = r.webhook(FIX)["namespaceSelector"]["matchExpressions"].to_string();
    assert!(exprs.contains("example.com/eg"), "{exprs}");
}

#[test]
fn optional_webhook_settings_render_when_set() {
    let r = render(&[
        "--set",
        "webhook.failurePolicy=Fail",
        "--set",
        "webhook.timeoutSeconds=12",
        "--set-json",
        r#"webhook.objectSelector={"matchLabels":{"guard":"yes"}}"#,
        "--set-json",
        r#"webhook.matchConditions=[{"name":"not-dry","expression":"true"}]"#,
    ]);
    for w in r.webhooks() {
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["timeoutSeconds"], 12);
        assert_eq!(w["objectSelector"], json!({"matchLabels": {"guard": "yes"}}));
        let names: Vec<_> = w["matchConditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(names, [json!("skip-mirror-pods"), json!("not-dry")]);
    }
    let r = render(&["--set", "webhook.skipMirrorPods=false"]);
    assert!(r.webhook(FIX).get("matchConditions").is_none());
}

/// The webhooks that would see an object of `resource` (core or apps/batch,
/// any) in a namespace whose mode label is `label`, with their paths.
fn seen_by(r: &Rendered, label: Option<&str>, resource: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for w in r.webhooks() {
        let (_, (op, values)) = selector(w);
        let listed = label.is_some_and(|l| values.iter().any(|v| v == l));
        let namespace_matches = match op.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            other => panic!("unexpected operator {other}"),
        };
        let kind_matches = rules(w).iter().any(|(_, _, r)| r == resource);
        if namespace_matches && kind_matches {
            out.push((
                w["name"].as_str().unwrap().to_string(),
                w["clientConfig"]["service"]["path"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

#[test]
fn scope_pods_sends_workload_kinds_only_to_the_audit_path() {
    let r = render(&["--set", "config.scope=pods"]);
    let names: Vec<&str> = r.webhooks().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, [FIX, AUDIT, WORKLOADS]);
    let fix = r.webhook(FIX);
    assert_eq!(
        rules(fix),
        [("".to_string(), "v1".to_string(), "pods".to_string())],
        "the fix webhook takes Pods only"
    );
    let workloads = r.webhook(WORKLOADS);
    assert_eq!(workloads["clientConfig"]["service"]["path"], "/audit");
    assert_eq!(
        workloads["namespaceSelector"], fix["namespaceSelector"],
        "the fix namespaces"
    );
    let mut expected: Vec<_> = all_kinds().into_iter().filter(|(_, _, r)| r != "pods").collect();
    expected.sort();
    assert_eq!(rules(workloads), expected);
    assert_eq!(rules(r.webhook(AUDIT)), all_kinds(), "audit namespaces are unchanged");
    for key in [
        "sideEffects",
        "failurePolicy",
        "timeoutSeconds",
        "matchPolicy",
        "matchConditions",
    ] {
        assert_eq!(workloads[key], fix[key], "{key}");
    }

    // Every (namespace label, kind) reaches at most one webhook; only Pods reach /mutate.
    for default in ["fix", "audit", "off"] {
        let r = render(&[
            "--set",
            "config.scope=pods",
            "--set",
            &format!("webhook.defaultMode={default}"),
        ]);
        for label in [None, Some("fix"), Some("audit"), Some("off")] {
            for (_, _, resource) in all_kinds() {
                let seen = seen_by(&r, label, &resource);
                assert!(seen.len() <= 1, "{default} {label:?} {resource}: {seen:?}");
                let mode = label.unwrap_or(default);
                let expected_path = match (mode, resource.as_str()) {
                    ("off", _) => None,
                    ("fix", "pods") => Some("/mutate"),
                    _ => Some("/audit"),
                };
                assert_eq!(
                    seen.first().map(|(_, path)| path.as_str()),
                    expected_path,
                    "default {default}, label {label:?}, {resource}"
                );
            }
        }
    }

    // The default scope keeps the two webhooks, every kind on both.
    let r = render(&[]);
    assert_eq!(r.webhooks().len(), 2);
    assert_eq!(rules(r.webhook(FIX)), all_kinds());
    let r = render(&["--set", "config.scope=workloads"]);
    assert_eq!(rules(r.webhook(FIX)), all_kinds());
}
