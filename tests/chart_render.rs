//! The Helm chart as `helm lint --strict`, `helm template` and
//! `kubernetes-validate --strict` see it: every variant valid, the
//! Deployment's safety settings, RBAC, the schema's refusals, the helm test
//! and NOTES. The webhook registration is in chart_webhook.rs.

#[path = "support/chart.rs"]
mod chart;

use chart::{FULLNAME, NAMESPACE, render, render_error, validate};
use serde_json::json;

/// Representative value sets; each must lint, render and validate.
const VARIANTS: &[&[&str]] = &[
    &[],
    &["--set", "tls.mode=certManager"],
    &[
        "--set",
        "tls.mode=secret",
        "--set",
        "tls.secret.name=my-tls",
        "--set",
        "tls.secret.caBundle=Q0E=",
    ],
    &[
        "--set",
        "webhook.defaultMode=audit",
        "--set",
        "replicaCount=1",
        "--set",
        "podAntiAffinity=hard",
    ],
    &[
        "--set",
        "webhook.defaultMode=off",
        "--set",
        "config.registry.pullSecrets=false",
    ],
    &[
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "priorityClassName=system-cluster-critical",
        "--set",
        "webhook.failurePolicy=Fail",
        "--set-json",
        r#"webhook.objectSelector={"matchExpressions":[{"key":"skip","operator":"DoesNotExist"}]}"#,
        "--set",
        "webhook.excludeNamespaces={monitoring,cert-manager}",
        "--set",
        "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ],
    &["--set", "tests.enabled=false", "--set", "webhook.skipMirrorPods=false"],
    &["--set", "config.scope=pods", "--set", "webhook.defaultMode=audit"],
];

#[test]
fn every_variant_lints_renders_and_validates() {
    for args in VARIANTS {
        chart::lint(&chart::chart_dir(), args);
        let r = render(args);
        validate(&r.text);
        // The common shape holds in every variant (scope pods adds the workloads webhook).
        let webhooks = if args.contains(&"config.scope=pods") { 3 } else { 2 };
        assert_eq!(r.webhooks().len(), webhooks, "{args:?}");
        r.get("Deployment", FULLNAME);
        r.get("Service", FULLNAME);
        r.get("ServiceAccount", FULLNAME);
    }
}

#[test]
fn deployment_is_locked_down_and_spread() {
    let r = render(&[]);
    let pod = r.pod_spec();
    assert_eq!(r.get("Deployment", FULLNAME)["spec"]["replicas"], 2);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    // Endpoints drop the pod before SIGTERM closes keep-alive connections.
    assert_eq!(c["lifecycle"]["preStop"]["sleep"]["seconds"], 5);
    assert!(
        render(&["--set", "preStopSleepSeconds=0"]).pod_spec()["containers"][0]
            .get("lifecycle")
            .is_none()
    );
    // The image's ENTRYPOINT runs `serve`: the chart sets args only.
    assert!(c.get("command").is_none(), "no command override");
    assert_eq!(
        c["args"],
        json!([
            "--config",
            "/etc/entrypoint-guard/config.yaml",
            "--log-format",
            "json",
            "--log-level",
            "info"
        ])
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "http-metrics"})
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "http-metrics"})
    );
    let ports: Vec<_> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].clone())
        .collect();
    assert_eq!(ports, [json!(8443), json!(8080)]);
    let anti = &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(anti["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname");
    // The config and the certificate come from volumes.
    let mounts = c["volumeMounts"].to_string();
    assert!(
        mounts.contains("/etc/entrypoint-guard/tls") && mounts.contains("config.yaml"),
        "{mounts}"
    );
    let pdb = r.get("PodDisruptionBudget", FULLNAME);
    assert_eq!(pdb["spec"]["minAvailable"], 1);

    let r = render(&[
        "--set",
        "replicaCount=1",
        "--set",
        "podAntiAffinity=hard",
        "--set",
        "priorityClassName=high",
    ]);
    assert!(r.all("PodDisruptionBudget").is_empty(), "no PDB for one replica");
    let pod = r.pod_spec();
    assert_eq!(pod["priorityClassName"], "high");
    assert!(pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"].is_array());
}

#[test]
fn config_checksum_rolls_the_pods_on_config_change() {
    let checksum = |args: &[&str]| {
        render(args).get("Deployment", FULLNAME)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            .as_str()
            .expect("checksum annotation")
            .to_string()
    };
    let base = checksum(&[]);
    assert_eq!(base.len(), 64, "sha256 hex: {base}");
    assert_eq!(base, checksum(&[]), "stable across renders");
    assert_ne!(base, checksum(&["--set", "config.strategy=prepend"]));
    assert_eq!(base, checksum(&["--set", "replicaCount=3"]), "only config changes roll");
}

#[test]
fn rbac_exists_only_for_pull_secret_auth() {
    let r = render(&[]);
    let role = r.get("ClusterRole", FULLNAME);
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets", "serviceaccounts"], "verbs": ["get"]}])
    );
    let binding = r.get("ClusterRoleBinding", FULLNAME);
    assert_eq!(binding["subjects"][0]["name"], FULLNAME);
    assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    assert_eq!(r.pod_spec()["automountServiceAccountToken"], true);

    for off in ["config.registry.pullSecrets=false", "config.registry.enabled=false"] {
        let r = render(&["--set", off]);
        for kind in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
            let found: Vec<_> = r
                .all(kind)
                .into_iter()
                // The helm test's own Role (a hook) is not the server's RBAC.
                .filter(|d| d["metadata"]["annotations"]["helm.sh/hook"] != "test")
                .collect();
            assert!(found.is_empty(), "{off}: unexpected {kind}: {found:?}");
        }
        assert_eq!(
            r.pod_spec()["automountServiceAccountToken"],
            false,
            "{off}: no API token"
        );
        // The ServiceAccount is there regardless.
        r.get("ServiceAccount", FULLNAME);
    }
}

#[test]
fn service_monitor_is_optional() {
    assert!(render(&[]).all("ServiceMonitor").is_empty());
    let r = render(&[
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "serviceMonitor.labels.release=prom",
    ]);
    let sm = r.get("ServiceMonitor", FULLNAME);
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "http-metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    assert_eq!(sm["spec"]["namespaceSelector"]["matchNames"], json!([NAMESPACE]));
}

#[test]
fn schema_rejects_bad_values_with_clear_messages() {
    // Helm 3 and Helm 4 word schema errors differently: each case names the
    // field and the complaint as either version puts it.
    let one_of = ["must be one of the following", "value must be one of"];
    for (args, field, hints) in [
        (&["--set", "config.mode=fixx"][..], "config.mode", &one_of[..]),
        (&["--set", "config.scope=pod"], "config.scope", &one_of),
        (
            &["--set", "webhook.defaultMode=enforce"],
            "webhook.defaultMode",
            &one_of,
        ),
        (&["--set", "tls.mode=vault"], "tls.mode", &one_of),
        (
            &["--set", "webhook.failurePolicy=ignore"],
            "webhook.failurePolicy",
            &one_of,
        ),
        (
            &["--set", "webhook.timeoutSeconds=31"],
            "webhook.timeoutSeconds",
            &["less than or equal to 30", "maximum: got 31, want 30"],
        ),
        (
            &["--set", "config.registry.budget=3"],
            "config.registry.budget",
            &["Invalid type", "got number, want string"],
        ),
        // Keys the program does not know, or that the chart owns, never reach the ConfigMap.
        (
            &["--set", "config.bogus=1"],
            "config",
            &[
                "Additional property bogus is not allowed",
                "additional properties 'bogus' not allowed",
            ],
        ),
        (
            &["--set", "config.server.listen=0.0.0.0:1"],
            "config.server",
            &[
                "Additional property listen is not allowed",
                "additional properties 'listen' not allowed",
            ],
        ),
        (
            &["--set", "tls.mode=secret"],
            "tls.secret.name",
            &["greater than or equal to 1", "minLength"],
        ),
    ] {
        let e = render_error(args);
        assert!(
            e.contains("values don't meet the specifications of the schema"),
            "{args:?}: {e}"
        );
        assert!(
            chart::mentions_field(&e, field),
            "{args:?}: want the field {field} named in:\n{e}"
        );
        assert!(
            hints.iter().any(|h| e.contains(h)),
            "{args:?}: want one of {hints:?} in:\n{e}"
        );
    }
}

#[test]
fn helm_test_sends_its_probe_where_the_webhook_looks() {
    let r = render(&[]);
    let pod = r.get("Pod", &format!("{FULLNAME}-test"));
    assert_eq!(pod["metadata"]["annotations"]["helm.sh/hook"], "test");
    let cm = r.get("ConfigMap", &format!("{FULLNAME}-test"));
    let script = cm["data"]["check.sh"].as_str().unwrap();
    assert!(script.contains("kubectl create --dry-run=server"), "{script}");
    assert!(
        !script.contains("excluded from the webhook"),
        "default namespace is watched"
    );
    let role = r.get("Role", &format!("{FULLNAME}-test"));
    assert_eq!(role["metadata"]["namespace"], "default");
    assert_eq!(role["rules"][0]["verbs"], json!(["create"]));

    // Installed into the test's own namespace, the test explains why it cannot pass.
    let r = render(&["--namespace", "default"]);
    let cm = r.get("ConfigMap", &format!("{FULLNAME}-test"));
    assert!(
        cm["data"]["check.sh"]
            .as_str()
            .unwrap()
            .contains("tests.namespace default is excluded")
    );

    let r = render(&["--set", "tests.enabled=false"]);
    assert!(r.all("Pod").is_empty() && r.find("ConfigMap", &format!("{FULLNAME}-test")).is_none());
}

/// NOTES.txt as `helm install` prints it: rendered through `tpl` in a copy of
/// the chart, since `helm template` leaves NOTES out.
fn notes(args: &[&str]) -> String {
    let copy = chart::chart_copy();
    let dir = copy.path().join("entrypoint-guard");
    std::fs::copy(dir.join("templates/NOTES.txt"), dir.join("notes.txt")).expect("copy NOTES.txt");
    std::fs::write(
        dir.join("templates/zz-notes.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ tpl (.Files.Get \"notes.txt\") . | quote }}\n",
    )
    .expect("write probe template");
    let r = chart::render_at(&dir, args);
    r.get("ConfigMap", "notes")["data"]["notes"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn notes_tell_how_to_check_and_what_tls_needs() {
    let text = notes(&[]);
    for needle in [
        "apply --dry-run=server",
        "kubectl label namespace NAME entrypoint-guard.io/mode=audit",
        "helm test r -n eg --logs",
        "kube-system, eg",
        "`helm template` cannot read the cluster",
    ] {
        assert!(text.contains(needle), "NOTES lack {needle:?}:\n{text}");
    }
    let text = notes(&["--set", "tls.mode=certManager", "--set", "config.mode=audit"]);
    assert!(text.contains("get certificate r-entrypoint-guard-tls"), "{text}");
    assert!(text.contains("config.mode is audit"), "{text}");
    assert!(!text.contains("config.scope is pods"), "{text}");
    let text = notes(&["--set", "config.scope=pods"]);
    assert!(text.contains("config.scope is pods: only Pods are patched"), "{text}");
}
