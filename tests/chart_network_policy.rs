//! The chart's optional NetworkPolicy: off by default; when on, valid
//! against the Kubernetes schema, selecting the webhook's own pods, opening
//! the admission port to the configured peers (any source when none: the API
//! server must always get through) and the health and metrics port to the
//! monitoring namespace only, on the ports the container really listens on.
//! The values schema refuses bad limits and unknown keys.

#[path = "support/chart.rs"]
mod chart;

use chart::{FULLNAME, NAMESPACE, render, render_error, validate};
use serde_json::{Value, json};

/// The container port named `name` in the rendered Deployment.
fn container_port(r: &chart::Rendered, name: &str) -> Value {
    r.pod_spec()["containers"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no container port {name}"))["containerPort"]
        .clone()
}

#[test]
fn network_policy_is_off_by_default() {
    let r = render(&[]);
    assert!(r.all("NetworkPolicy").is_empty(), "{}", r.summary());
}

#[test]
fn network_policy_renders_valid_and_opens_only_the_two_ports() {
    let r = render(&["--set", "networkPolicy.enabled=true"]);
    validate(&r.text);
    let np = r.get("NetworkPolicy", FULLNAME);
    assert_eq!(np["metadata"]["namespace"], NAMESPACE);
    let spec = &np["spec"];
    // The Deployment's pods and nothing else.
    assert_eq!(
        spec["podSelector"]["matchLabels"],
        r.get("Deployment", FULLNAME)["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        spec["policyTypes"],
        json!(["Ingress"]),
        "egress (registries, API server) untouched"
    );
    let rules = spec["ingress"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    // Admission port: the container's, from any source by default.
    assert_eq!(
        rules[0]["ports"],
        json!([{"protocol": "TCP", "port": container_port(&r, "https")}])
    );
    assert!(rules[0].get("from").is_none(), "{:#}", rules[0]);
    // Health and metrics port: the monitoring namespace only.
    assert_eq!(
        rules[1]["ports"],
        json!([{"protocol": "TCP", "port": container_port(&r, "http-metrics")}])
    );
    assert_eq!(
        rules[1]["from"],
        json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}, "podSelector": {}}])
    );
}

#[test]
fn network_policy_peers_and_ports_are_configurable() {
    let r = render(&[
        "--set",
        "networkPolicy.enabled=true",
        "--set-json",
        r#"networkPolicy.webhook.from=[{"ipBlock":{"cidr":"172.16.0.0/28"}},{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kube-system"}},"podSelector":{"matchLabels":{"component":"kube-apiserver"}}}]"#,
        "--set-json",
        r#"networkPolicy.metrics.namespaceSelector={"matchLabels":{"kubernetes.io/metadata.name":"observability"}}"#,
        "--set-json",
        r#"networkPolicy.metrics.podSelector={"matchLabels":{"app.kubernetes.io/name":"prometheus"}}"#,
        "--set-json",
        r#"networkPolicy.metrics.from=[{"ipBlock":{"cidr":"10.9.0.0/16"}}]"#,
        "--set",
        "ports.webhook=9443",
        "--set",
        "ports.health=9090",
    ]);
    validate(&r.text);
    let rules = &r.get("NetworkPolicy", FULLNAME)["spec"]["ingress"];
    assert_eq!(rules[0]["ports"][0]["port"], 9443);
    assert_eq!(rules[0]["from"][0]["ipBlock"]["cidr"], "172.16.0.0/28");
    assert_eq!(
        rules[0]["from"][1]["podSelector"]["matchLabels"]["component"],
        "kube-apiserver"
    );
    assert_eq!(rules[1]["ports"][0]["port"], 9090);
    assert_eq!(
        rules[1]["from"],
        json!([
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
             "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
            {"ipBlock": {"cidr": "10.9.0.0/16"}}
        ])
    );
}

#[test]
fn the_values_schema_refuses_bad_limits_and_unknown_network_policy_keys() {
    for (key, bad) in [
        ("config.registry.maxConcurrentLookups", "0"),
        ("config.registry.maxImagesPerAdmission", "-1"),
        ("config.registry.maxPullSecretsPerAdmission", "1001"),
    ] {
        let e = render_error(&["--set", &format!("{key}={bad}")]);
        assert!(chart::mentions_field(&e, key), "{key}={bad}: {e}");
    }
    let e = render_error(&["--set", "networkPolicy.egress=true"]);
    assert!(e.contains("egress"), "{e}");
}
