//! The ConfigMap the chart renders, read by the program's own parser, so chart
//! and program can never disagree on a key; and the helm test's expectations,
//! checked against the engine itself.

#[path = "support/chart.rs"]
mod chart;

use std::path::PathBuf;
use std::time::Duration;

use chart::{FULLNAME, Rendered, render};
use entrypoint_guard::config::Config;
use entrypoint_guard::config::server::OnError;
use entrypoint_guard::engine::{self, Mode, Scope, Strategy, UnknownImages};
use entrypoint_guard::image::Entrypoint;
use serde_json::Value;

fn parse(r: &Rendered) -> Config {
    Config::from_yaml(r.config_text(), "configmap")
        .unwrap_or_else(|e| panic!("the program rejects the chart's ConfigMap: {e}\n{}", r.config_text()))
}

#[test]
fn default_values_are_the_programs_defaults() {
    let r = render(&["--set", "tests.enabled=false"]);
    assert_eq!(
        parse(&r),
        Config::default(),
        "values.yaml config drifted from the program's defaults"
    );
}

#[test]
fn every_value_reaches_the_program() {
    let r = render(&[
        "--set",
        "config.mode=audit",
        "--set",
        "config.strategy=prepend",
        "--set",
        "config.scope=pods",
        "--set",
        "config.wrapper={/opt/chalk,exec,--heartbeat}",
        "--set",
        "config.unknownImages=args",
        "--set",
        "config.images.include={registry.example.com/**}",
        "--set",
        "config.images.exclude={**/debug:*}",
        "--set",
        "config.pinning.keepTag=false",
        "--set",
        "config.annotationPrefix=guard.example.com",
        "--set-json",
        r#"config.imageFacts={"registry.example.com/app:1":{"entrypoint":["/chalk","exec","--"],"digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}"#,
        "--set",
        "config.server.onError=deny",
        "--set",
        "config.server.requestTimeout=8s",
        "--set",
        "config.server.maxBodyBytes=1048576",
        "--set",
        "config.registry.budget=2500ms",
        "--set",
        "config.registry.pullSecrets=false",
        "--set",
        "config.registry.cacheCapacity=500",
        "--set",
        "config.registry.deny={*.internal}",
        "--set",
        "config.registry.insecure={registry.local:5000}",
        "--set",
        "config.registry.allowPrivate={registry.local:5000}",
        "--set",
        "config.registry.caFiles.registry\\.local:5000=/etc/registry-ca/ca.crt",
        "--set",
        "config.registry.maxConcurrentLookups=8",
        "--set",
        "config.registry.maxImagesPerAdmission=20",
        "--set",
        "config.registry.maxPullSecretsPerAdmission=5",
        "--set",
        "ports.webhook=9443",
        "--set",
        "ports.health=9090",
    ]);
    let c = parse(&r);
    assert_eq!(c.mode, Mode::Audit);
    assert_eq!(c.strategy, Strategy::Prepend);
    assert_eq!(c.scope, Scope::Pods);
    assert_eq!(c.wrapper.0, ["/opt/chalk", "exec", "--heartbeat"]);
    assert_eq!(c.unknown_images, UnknownImages::Args);
    assert_eq!(c.images.include[0].0, "registry.example.com/**");
    assert_eq!(c.images.exclude[0].0, "**/debug:*");
    assert!(c.pinning.enabled && !c.pinning.keep_tag);
    assert_eq!(c.annotation_prefix.0, "guard.example.com");
    let facts = c.facts();
    let app = facts.get("registry.example.com/app:1").expect("hand-written fact");
    assert!(matches!(&app.entrypoint, Entrypoint::Known { entrypoint } if entrypoint == &["/chalk", "exec", "--"]));
    assert_eq!(c.server.on_error, OnError::Deny);
    assert_eq!(c.server.request_timeout.get(), Duration::from_secs(8));
    assert_eq!(c.server.max_body_bytes, 1_048_576);
    assert_eq!(c.server.listen.to_string(), "0.0.0.0:9443");
    assert_eq!(
        c.server.health_listen.map(|a| a.to_string()).as_deref(),
        Some("0.0.0.0:9090")
    );
    assert_eq!(c.server.tls_cert, PathBuf::from("/etc/entrypoint-guard/tls/tls.crt"));
    assert_eq!(c.server.tls_key, PathBuf::from("/etc/entrypoint-guard/tls/tls.key"));
    assert_eq!(c.registry.budget.get(), Duration::from_millis(2500));
    assert!(!c.registry.pull_secrets);
    assert_eq!(c.registry.cache_capacity, 500);
    assert_eq!(c.registry.max_concurrent_lookups, 8);
    assert_eq!(c.registry.max_images_per_admission, 20);
    assert_eq!(c.registry.max_pull_secrets_per_admission, 5);
    assert_eq!(c.registry.deny[0].0, "*.internal");
    assert_eq!(c.registry.insecure, ["registry.local:5000"]);
    assert_eq!(c.registry.allow_private, ["registry.local:5000"]);
    assert_eq!(
        c.registry.ca_files.get("registry.local:5000"),
        Some(&PathBuf::from("/etc/registry-ca/ca.crt"))
    );
    // The probe image of the helm test follows the configured wrapper.
    let probe = facts
        .get("registry.invalid/entrypoint-guard/helm-test:1.0")
        .expect("probe fact");
    assert!(
        matches!(&probe.entrypoint, Entrypoint::Known { entrypoint } if entrypoint == &["/opt/chalk", "exec", "--heartbeat", "--"])
    );
    // The container listens where the Service and probes point.
    let ports = r.pod_spec()["containers"][0]["ports"].to_string();
    assert!(ports.contains("9443") && ports.contains("9090"), "{ports}");
}

/// What kubectl's jsonpath prints for a field: compact JSON, or nothing when absent.
fn jsonpath(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs the engine on the helm test's probe as the webhook would (route
/// ceiling), and checks the answer is what the test script expects.
fn check_probe(args: &[&str], ceiling: Mode, expect: &str) {
    let r = render(args);
    let config = parse(&r);
    let data = &r.get("ConfigMap", &format!("{FULLNAME}-test"))["data"];
    assert_eq!(data["expect"], expect, "{args:?}");
    let probe: Value = serde_json::from_str(data["probe.json"].as_str().unwrap()).expect("probe.json is JSON");

    let inspection = engine::inspect(&probe, &config.facts(), &config.policy(), ceiling);
    let mut answered = probe.clone();
    json_patch::patch(&mut answered, &inspection.patch).expect("the engine's patch applies");
    let c = &answered["spec"]["containers"][0];
    for (field, key) in [
        ("command", "expected-command"),
        ("args", "expected-args"),
        ("image", "expected-image"),
    ] {
        assert_eq!(jsonpath(&c[field]), data[key].as_str().unwrap(), "{args:?}: {field}");
    }
    let warnings: Vec<String> = inspection.findings.iter().map(|f| f.summary()).collect();
    if expect == "reported" {
        // check.sh looks for this text in kubectl's warnings.
        assert!(
            warnings.iter().any(|w| w.contains("bypasses chalk")),
            "{args:?}: {warnings:?}"
        );
    } else {
        assert_ne!(answered, probe, "{args:?}: fixed means changed");
    }
}

#[test]
fn helm_test_expectations_match_the_engine() {
    check_probe(&[], Mode::Fix, "fixed");
    check_probe(&["--set", "config.pinning.keepTag=false"], Mode::Fix, "fixed");
    check_probe(&["--set", "config.pinning.enabled=false"], Mode::Fix, "fixed");
    check_probe(&["--set", "config.strategy=prepend"], Mode::Fix, "fixed");
    check_probe(
        &[
            "--set",
            "config.strategy=prepend",
            "--set",
            "config.wrapper={/opt/chalk,exec,--heartbeat}",
        ],
        Mode::Fix,
        "fixed",
    );
    check_probe(
        &["--set", "config.wrapper={/opt/chalk,exec,--heartbeat}"],
        Mode::Fix,
        "fixed",
    );
    // An audit default sends the test namespace to /audit.
    check_probe(&["--set", "webhook.defaultMode=audit"], Mode::Audit, "reported");
    // config.mode audit caps the /mutate route too.
    check_probe(&["--set", "config.mode=audit"], Mode::Fix, "reported");
}

#[test]
fn credential_sources_plugins_and_mirrors_reach_the_program() {
    let plugins = r#"{"apiVersion":"kubelet.config.k8s.io/v1","kind":"CredentialProviderConfig","providers":[{"name":"ecr-credential-provider","matchImages":["*.dkr.ecr.*.amazonaws.com"],"defaultCacheDuration":"12h","apiVersion":"credentialprovider.kubelet.k8s.io/v1"}]}"#;
    let r = render(&[
        "--set-json",
        r#"config.registry.mirrors={"docker.io":["mirror.corp:5000","harbor.corp/dockerhub-proxy"]}"#,
        "--set",
        "config.registry.mirrorFallback=false",
        "--set",
        "config.registry.credentials.ecr.enabled=true",
        "--set",
        "config.registry.credentials.ecr.region=eu-west-1",
        "--set",
        "config.registry.credentials.google.enabled=false",
        "--set-json",
        &format!("credentialPlugins.config={plugins}"),
        "--set-json",
        r#"credentialPlugins.binVolume={"hostPath":{"path":"/etc/eks/image-credential-provider","type":"Directory"}}"#,
        "--set-json",
        r#"serviceAccount.annotations={"eks.amazonaws.com/role-arn":"arn:aws:iam::123456789012:role/eg"}"#,
    ]);
    let c = parse(&r);
    let mirrors: Vec<String> = c.registry.mirrors.values().flatten().map(|m| m.to_string()).collect();
    assert_eq!(mirrors, ["mirror.corp:5000", "harbor.corp/dockerhub-proxy"]);
    assert!(!c.registry.mirror_fallback);
    let creds = &c.registry.credentials;
    assert_eq!(creds.ecr.enabled, entrypoint_guard::config::Toggle::On);
    assert_eq!(creds.ecr.region.as_ref().map(|r| r.0.as_str()), Some("eu-west-1"));
    assert_eq!(creds.google.enabled, entrypoint_guard::config::Toggle::Off);
    let plugins_config = creds.kubelet_plugins.config.clone().expect("plugins configured");
    assert_eq!(
        plugins_config,
        PathBuf::from("/etc/entrypoint-guard/credential-providers.yaml")
    );
    // The plugin configuration and executables are mounted where the config points.
    let pod = r.pod_spec();
    let mounts = pod["containers"][0]["volumeMounts"].to_string();
    assert!(
        mounts.contains("/etc/entrypoint-guard/credential-providers.yaml"),
        "{mounts}"
    );
    assert!(mounts.contains("/etc/entrypoint-guard/credential-plugins"), "{mounts}");
    assert!(
        pod["volumes"]
            .to_string()
            .contains("/etc/eks/image-credential-provider")
    );
    let configmap = r.get("ConfigMap", FULLNAME);
    let providers = configmap["data"]["credential-providers.yaml"]
        .as_str()
        .expect("providers file");
    assert!(
        providers.contains("ecr-credential-provider") && providers.contains("matchImages"),
        "{providers}"
    );
    let sa = r.get("ServiceAccount", FULLNAME);
    assert_eq!(
        sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/eg"
    );
    // Plugins without their executables are refused at render time.
    let e = chart::render_error(&["--set-json", &format!("credentialPlugins.config={plugins}")]);
    assert!(e.contains("credentialPlugins.binVolume"), "{e}");
}
