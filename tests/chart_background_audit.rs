//! The chart's background-audit switch: the flag reaches `serve`, the
//! ClusterRole grants exactly the audit's reads, and the server still gets
//! no API access when neither pull secrets nor the audit need it.

#[path = "support/chart.rs"]
mod chart;

use chart::{FULLNAME, render, render_error, validate};
use serde_json::{Value, json};

fn args(r: &chart::Rendered) -> Vec<String> {
    serde_json::from_value(r.pod_spec()["containers"][0]["args"].clone()).unwrap()
}

fn audit_rules() -> Value {
    json!([
        {"apiGroups": [""], "resources": ["pods", "podtemplates", "replicationcontrollers"], "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"], "verbs": ["get", "list"]},
        {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["get", "list"]},
    ])
}

#[test]
fn background_audit_adds_the_flag_and_only_the_reads_it_needs() {
    let off = render(&[]);
    assert!(!args(&off).iter().any(|a| a == "--background-audit"));

    let r = render(&[
        "--set",
        "backgroundAudit.enabled=true",
        "--set",
        "backgroundAudit.interval=1h",
        "--set",
        "config.registry.pullSecrets=false",
    ]);
    let a = args(&r);
    let at = a
        .iter()
        .position(|x| x == "--background-audit")
        .expect("flag passed to serve");
    assert_eq!(a[at + 1], "1h");
    assert_eq!(r.get("ClusterRole", FULLNAME)["rules"], audit_rules());
    assert_eq!(
        r.pod_spec()["automountServiceAccountToken"],
        true,
        "the audit needs an API token"
    );
    validate(&r.text);

    // With pull secrets too, both sets of reads, nothing else.
    let both = render(&["--set", "backgroundAudit.enabled=true"]);
    let mut want = vec![json!({"apiGroups": [""], "resources": ["secrets", "serviceaccounts"], "verbs": ["get"]})];
    want.extend(audit_rules().as_array().unwrap().iter().cloned());
    assert_eq!(both.get("ClusterRole", FULLNAME)["rules"], json!(want));
}

#[test]
fn schema_rejects_a_bad_interval() {
    let err = render_error(&["--set", "backgroundAudit.interval=ten minutes"]);
    assert!(err.contains("backgroundAudit.interval"), "{err}");
}

fn report_rules() -> Value {
    json!([
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
        {"apiGroups": ["openreports.io"], "resources": ["reports"], "verbs": ["list", "create", "patch", "delete"]},
        {"apiGroups": ["wgpolicyk8s.io"], "resources": ["policyreports"], "verbs": ["list", "create", "patch", "delete"]},
    ])
}

#[test]
fn policy_reports_add_their_flags_and_writes_only_when_enabled() {
    let base = [
        "--set",
        "backgroundAudit.enabled=true",
        "--set",
        "config.registry.pullSecrets=false",
    ];
    let off = render(&base);
    assert!(!args(&off).iter().any(|a| a.starts_with("--policy-report")));
    assert_eq!(
        off.get("ClusterRole", FULLNAME)["rules"],
        audit_rules(),
        "no report access by default"
    );

    let mut on_args = base.to_vec();
    on_args.extend(["--set", "backgroundAudit.policyReports.enabled=true"]);
    let on = render(&on_args);
    let a = args(&on);
    assert!(a.iter().any(|x| x == "--policy-reports"), "{a:?}");
    assert!(!a.iter().any(|x| x == "--policy-report-passes"), "{a:?}");
    let mut want = audit_rules().as_array().unwrap().clone();
    want.extend(report_rules().as_array().unwrap().iter().cloned());
    assert_eq!(on.get("ClusterRole", FULLNAME)["rules"], json!(want));
    validate(&on.text);

    on_args.extend(["--set", "backgroundAudit.policyReports.passes=true"]);
    let passes = render(&on_args);
    assert!(args(&passes).iter().any(|x| x == "--policy-report-passes"));

    // Without the background audit, policyReports alone grants nothing.
    let alone = render(&[
        "--set",
        "backgroundAudit.policyReports.enabled=true",
        "--set",
        "config.registry.pullSecrets=false",
    ]);
    assert!(!args(&alone).iter().any(|x| x.starts_with("--policy-report")));
    assert!(!alone.text.contains("policyreports"), "{}", alone.text);
}
