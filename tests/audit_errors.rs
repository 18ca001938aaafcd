//! `audit` when the cluster does not cooperate: a forbidden kind, a list that
//! never answers, a refused token, an untrusted certificate. Each is reported
//! and everything else is still audited; the exit code says so.

#[path = "support/audit.rs"]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    ApiServer, Behaviour, COLLECTIONS, expected_findings, images_file, json_report, reported, run_audit, stderr,
};

#[test]
fn a_forbidden_kind_is_reported_and_the_rest_still_audited() {
    let dir = tempfile::tempdir().unwrap();
    let server = ApiServer::start(Behaviour {
        forbidden: ["/apis/apps/v1/daemonsets".to_string()].into(),
        ..Behaviour::default()
    });
    let kubeconfig = server.kubeconfig(dir.path());
    let images = images_file(dir.path());
    let output = run_audit(&kubeconfig, &["-o", "json", "--images", images.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "errors exit 2; {}", stderr(&output));
    let report = json_report(&output);
    assert_eq!(report["errors"].as_array().unwrap().len(), 1, "{}", report["errors"]);
    let error = &report["errors"][0];
    assert_eq!(error["kind"], "DaemonSet");
    assert_eq!(error["resource"], "daemonsets.apps");
    assert_eq!(error["reason"], "forbidden");
    assert_eq!(error["namespace"], Value::Null);
    assert!(
        error["message"].as_str().unwrap().contains("HTTP 403")
            && error["message"]
                .as_str()
                .unwrap()
                .contains("cannot list resource \"daemonsets\""),
        "{error}"
    );
    let got = reported(&report);
    assert!(!got.contains_key("demo/DaemonSet/app-ds"));
    let want = expected_findings(dir.path(), &HashMap::new());
    for (key, expected) in want.iter().filter(|(k, _)| !k.contains("/DaemonSet/")) {
        assert_eq!(got.get(key), Some(expected), "{key}");
    }
    assert!(stderr(&output).contains("cannot list daemonsets.apps in all namespaces"));

    // --exit-zero silences findings, not errors.
    let output = run_audit(&kubeconfig, &["--exit-zero", "--images", images.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("error: cannot list daemonsets.apps in all namespaces: forbidden: HTTP 403"),
        "{text}"
    );

    // Per namespace, each namespace's denial is its own error.
    let output = run_audit(
        &kubeconfig,
        &[
            "-o",
            "json",
            "-n",
            "demo",
            "-n",
            "default",
            "--images",
            images.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let report = json_report(&output);
    let scopes: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["demo", "default"]);
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("in the namespace \"demo\""),
        "{}",
        report["errors"][0]
    );
    assert!(reported(&report).contains_key("demo/Deployment/app-deploy"));
}

#[test]
fn a_slow_list_times_out_and_the_rest_is_still_audited() {
    let dir = tempfile::tempdir().unwrap();
    let server = ApiServer::start(Behaviour {
        slow: HashMap::from([
            // Far beyond the deadline: must be cut off.
            ("/apis/apps/v1/statefulsets".to_string(), Duration::from_secs(60)),
            // Slow but within the deadline: must be read.
            ("/apis/batch/v1/jobs".to_string(), Duration::from_millis(300)),
        ]),
        ..Behaviour::default()
    });
    let kubeconfig = server.kubeconfig(dir.path());
    let images = images_file(dir.path());
    let started = Instant::now();
    let output = run_audit(
        &kubeconfig,
        &[
            "-o",
            "json",
            "--request-timeout",
            "5s",
            "--images",
            images.to_str().unwrap(),
        ],
    );
    println!(
        "audit with one 60s collection and --request-timeout 5s took {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let report = json_report(&output);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["kind"], "StatefulSet");
    assert_eq!(errors[0]["reason"], "timeout");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("no answer within 5s"),
        "{}",
        errors[0]
    );
    let got = reported(&report);
    assert!(
        got.contains_key("demo/Job/app-job"),
        "the slow-but-in-time list was read"
    );
    assert!(got.contains_key("demo/Deployment/app-deploy"));
    assert!(!got.contains_key("demo/StatefulSet/app-sts"));
}

#[test]
fn a_refused_token_is_an_error_for_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let server = ApiServer::start(Behaviour::default());
    let kubeconfig = server.kubeconfig(dir.path());
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    std::fs::write(&kubeconfig, text.replace(support::TOKEN, "wrong-token")).unwrap();
    let output = run_audit(&kubeconfig, &["-o", "json"]);
    assert_eq!(output.status.code(), Some(2));
    let report = json_report(&output);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), COLLECTIONS.len());
    assert!(errors.iter().all(|e| e["reason"] == "unauthorized"), "{errors:?}");
}

#[test]
fn an_untrusted_server_certificate_is_a_connection_error() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let server = ApiServer::start(Behaviour::default());
    let other = ApiServer::start(Behaviour::default());
    let kubeconfig = server.kubeconfig(dir.path());
    // This server, but another server's CA: TLS must refuse the certificate.
    let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    std::fs::write(&kubeconfig, text.replace(&b64(&server.ca_pem), &b64(&other.ca_pem))).unwrap();
    let output = run_audit(&kubeconfig, &["-o", "json"]);
    assert_eq!(output.status.code(), Some(2));
    let report = json_report(&output);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), COLLECTIONS.len());
    assert!(errors.iter().all(|e| e["reason"] == "connection"), "{errors:?}");
    let message = errors[0]["message"].as_str().unwrap().to_lowercase();
    assert!(message.contains("certificate"), "{message}");
    assert!(server.seen().is_empty(), "no request got through");
}

#[test]
fn an_expired_continue_token_keeps_the_pages_already_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = ApiServer::start(Behaviour {
        expired_continue: ["/api/v1/pods".to_string()].into(),
        ..Behaviour::default()
    });
    let kubeconfig = server.kubeconfig(dir.path());
    let images = images_file(dir.path());
    let output = run_audit(
        &kubeconfig,
        &["-o", "json", "--chunk-size", "1", "--images", images.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let report = json_report(&output);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["kind"], "Pod");
    assert_eq!(errors[0]["reason"], "expired");
    assert_eq!(errors[0]["itemsRead"], 1);
    // The first page (app-pod) was audited; the rest of the cluster too.
    let got = reported(&report);
    assert!(got.contains_key("demo/Pod/app-pod"), "{:?}", got.keys());
    assert!(got.contains_key("demo/CronJob/app-cron"));
}

#[test]
fn bad_inputs_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kubeconfig");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_entrypoint-guard"))
        .args(["audit", "--kubeconfig", missing.to_str().unwrap()])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no-such-kubeconfig"), "{}", stderr(&output));

    let server = ApiServer::start(Behaviour::default());
    let kubeconfig = server.kubeconfig(dir.path());
    let images = dir.path().join("bad-images.yaml");
    std::fs::write(
        &images,
        "registry.example/app:1.0:\n  entrypoint: [/chalk]\n  bogus: 1\n",
    )
    .unwrap();
    let output = run_audit(&kubeconfig, &["--images", images.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("bad-images.yaml:3:") && message.contains("bogus"),
        "{message}"
    );
    assert!(server.seen().is_empty(), "nothing is listed when the input is bad");
}
