//! `audit` end to end against a stand-in API server serving real
//! kube-apiserver v1.32 list responses over HTTPS: the real binary, the real
//! kube client (TLS, bearer token, paging, decoding), the real engine.

#[path = "support/audit.rs"]
mod support;

use std::collections::HashMap;

use serde_json::{Value, json};
use support::{
    ApiServer, Behaviour, COLLECTIONS, expected_findings, fixture, images_file, json_report, reported, run_audit,
    stderr,
};

const DEPLOYMENTS: &str = "/apis/apps/v1/deployments";

/// A second Deployment, so that `--chunk-size 1` pages deployments in two.
fn canary_deployment() -> Value {
    let mut canary = fixture("apis_apps_v1_deployments.json")["items"][0].clone();
    canary["metadata"]["name"] = json!("app-deploy-canary");
    canary["metadata"]["uid"] = json!("0b9f4d6e-canary-4c1e-9d1e-000000000001");
    canary
}

#[test]
fn findings_match_the_engine_for_every_object_and_lists_are_paged() {
    let dir = tempfile::tempdir().unwrap();
    let extra = HashMap::from([(DEPLOYMENTS.to_string(), vec![canary_deployment()])]);
    let server = ApiServer::start(Behaviour {
        extra: extra.clone(),
        ..Behaviour::default()
    });
    let kubeconfig = server.kubeconfig(dir.path());
    let images = images_file(dir.path());
    let output = run_audit(
        &kubeconfig,
        &["-o", "json", "--chunk-size", "1", "--images", images.to_str().unwrap()],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "findings exit 1; stderr: {}",
        stderr(&output)
    );
    let report = json_report(&output);

    let want = expected_findings(dir.path(), &extra);
    let got = reported(&report);
    let mut want_keys: Vec<_> = want.keys().cloned().collect();
    let mut got_keys: Vec<_> = got.keys().cloned().collect();
    want_keys.sort();
    got_keys.sort();
    assert_eq!(got_keys, want_keys, "the objects with findings");
    for (key, expected) in &want {
        assert_eq!(&got[key], expected, "{key}: audit and engine::inspect disagree");
    }
    // Every fixture workload with a command on a wrapped image is there, the
    // control Pod (no command, unpinnable image) is not.
    for key in [
        "demo/Pod/app-pod",
        "demo/Deployment/app-deploy",
        "demo/Deployment/app-deploy-canary",
        "demo/StatefulSet/app-sts",
        "demo/DaemonSet/app-ds",
        "demo/Job/app-job",
        "demo/CronJob/app-cron",
    ] {
        assert!(got.contains_key(key), "{key} missing from {got_keys:?}");
    }
    assert!(!got.contains_key("demo/Pod/control"));
    let rules: Vec<&str> = got["demo/Deployment/app-deploy"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["command-bypasses-wrapper", "command-bypasses-wrapper", "image-pinned"]
    );
    assert_eq!(report["summary"]["errors"], 0);
    assert_eq!(report["errors"], json!([]));
    assert_eq!(report["summary"]["listed"], 8, "{}", report["summary"]);

    // Deployments came in two pages: limit honoured, then the continue token.
    let pages: Vec<_> = server.seen().into_iter().filter(|s| s.path == DEPLOYMENTS).collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert_eq!(pages[0].query.get("limit").map(String::as_str), Some("1"));
    assert_eq!(pages[0].query.get("continue"), None);
    assert_eq!(pages[1].query.get("limit").map(String::as_str), Some("1"));
    assert_eq!(pages[1].query.get("continue").map(String::as_str), Some("offset-1"));
    // The whole cluster: one collection path per kind, no namespaced paths.
    assert!(server.seen().iter().all(|s| !s.path.contains("/namespaces/")));
}

#[test]
fn owned_objects_are_reported_through_their_owner_unless_pods() {
    let dir = tempfile::tempdir().unwrap();
    let deploy = fixture("apis_apps_v1_deployments.json")["items"][0].clone();
    // What the Deployment controller would create: a ReplicaSet owned by the
    // Deployment and a Pod owned by the ReplicaSet, both with its template.
    let mut rs = deploy.clone();
    rs["metadata"] = json!({"name": "app-deploy-6d9c8b7f5", "namespace": "demo",
        "uid": "6f1c2b1e-rs00-4c1e-9d1e-000000000002",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "app-deploy",
            "uid": deploy["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]});
    let mut pod = fixture("api_v1_pods.json")["items"][0].clone();
    pod["metadata"]["name"] = json!("app-deploy-6d9c8b7f5-x2x7q");
    pod["metadata"]["uid"] = json!("7a2d3c2f-pod0-4c1e-9d1e-000000000003");
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": "app-deploy-6d9c8b7f5", "uid": rs["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]);
    let server = ApiServer::start(Behaviour {
        extra: HashMap::from([
            ("/apis/apps/v1/replicasets".to_string(), vec![rs]),
            ("/api/v1/pods".to_string(), vec![pod]),
        ]),
        ..Behaviour::default()
    });
    let kubeconfig = server.kubeconfig(dir.path());
    let images = images_file(dir.path());
    let images = images.to_str().unwrap();

    let output = run_audit(&kubeconfig, &["-o", "json", "--images", images]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json_report(&output);
    let got = reported(&report);
    assert!(got.contains_key("demo/Deployment/app-deploy"));
    assert!(
        !got.contains_key("demo/ReplicaSet/app-deploy-6d9c8b7f5"),
        "{:?}",
        got.keys()
    );
    assert!(!got.contains_key("demo/Pod/app-deploy-6d9c8b7f5-x2x7q"));
    assert!(got.contains_key("demo/Pod/app-pod"), "an unowned Pod is reported");
    assert_eq!(report["summary"]["skippedOwned"], 2);

    let output = run_audit(&kubeconfig, &["-o", "json", "--pods", "--images", images]);
    let report = json_report(&output);
    let got = reported(&report);
    assert!(got.contains_key("demo/ReplicaSet/app-deploy-6d9c8b7f5"));
    assert!(got.contains_key("demo/Pod/app-deploy-6d9c8b7f5-x2x7q"));
    assert_eq!(report["summary"]["skippedOwned"], 0);
    // The webhook never patches the owned ReplicaSet, and the audit proposes
    // no fix for it (applying one would make the controller replace it):
    // its first finding names the owner to fix instead.
    let rs = &got["demo/ReplicaSet/app-deploy-6d9c8b7f5"];
    assert_eq!(rs["findings"][0]["rule"], "controller-owned");
    assert_eq!(
        rs["findings"][0]["held"]["owner"],
        json!({"kind": "Deployment", "name": "app-deploy"})
    );
    assert!(rs["findings"].as_array().unwrap().iter().all(|f| f["applied"] == false));
    assert_eq!(rs["proposed"], json!([]));
    // Pods are leaves: the webhook fixes them when they are created.
    let pod = &got["demo/Pod/app-deploy-6d9c8b7f5-x2x7q"];
    assert!(pod["findings"].as_array().unwrap().iter().any(|f| f["applied"] == true));
}

#[test]
fn scope_pods_says_which_objects_the_webhook_would_patch() {
    let dir = tempfile::tempdir().unwrap();
    let server = ApiServer::start(Behaviour::default());
    let kubeconfig = server.kubeconfig(dir.path());
    let images = images_file(dir.path());
    let images = images.to_str().unwrap();
    let output = run_audit(&kubeconfig, &["-o", "json", "--scope", "pods", "--images", images]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json_report(&output);
    let got = reported(&report);
    let mut workloads = 0;
    for (key, object) in &got {
        let findings = object["findings"].as_array().unwrap();
        if key.contains("/Pod/") {
            assert!(
                findings.iter().any(|f| f["applied"] == true),
                "{key}: the webhook fixes Pods"
            );
            continue;
        }
        workloads += 1;
        assert_eq!(findings[0]["rule"], "out-of-scope", "{key}");
        assert!(findings.iter().all(|f| f["applied"] == false), "{key}");
        assert!(
            !object["proposed"].as_array().unwrap().is_empty(),
            "{key}: the fix for the manifest"
        );
    }
    assert!(workloads >= 5, "{:?}", got.keys());
    let usage = run_audit(&kubeconfig, &["--scope", "everything"]);
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));
}

#[test]
fn namespaces_are_listed_one_by_one_with_the_same_findings() {
    let dir = tempfile::tempdir().unwrap();
    let server = ApiServer::start(Behaviour::default());
    let kubeconfig = server.kubeconfig(dir.path());
    let images = images_file(dir.path());
    let images = images.to_str().unwrap();
    let output = run_audit(
        &kubeconfig,
        &["-o", "json", "-n", "demo", "--namespace", "default", "--images", images],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json_report(&output);
    assert_eq!(reported(&report), expected_findings(dir.path(), &HashMap::new()));
    let seen = server.seen();
    assert_eq!(seen.len(), 2 * COLLECTIONS.len(), "{seen:?}");
    for (_, _, _, path) in COLLECTIONS {
        for ns in ["demo", "default"] {
            let (prefix, plural) = path.rsplit_once('/').unwrap();
            let want = format!("{prefix}/namespaces/{ns}/{plural}");
            assert!(seen.iter().any(|s| s.path == want), "{want} not requested");
        }
    }

    // A namespace with nothing in it is clean: exit 0.
    let output = run_audit(&kubeconfig, &["-n", "kube-system", "--images", images]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("0 findings in 0 objects; 0 objects audited"), "{text}");
}

#[test]
fn the_shipped_cluster_role_allows_every_request_and_nothing_more() {
    let role = support::shipped_cluster_role();
    assert_eq!(role["kind"], "ClusterRole");
    let dir = tempfile::tempdir().unwrap();
    let server = ApiServer::start(Behaviour {
        cluster_role: Some(role.clone()),
        ..Behaviour::default()
    });
    let kubeconfig = server.kubeconfig(dir.path());
    let images = images_file(dir.path());
    let output = run_audit(&kubeconfig, &["-o", "json", "--images", images.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(json_report(&output)["errors"], json!([]));

    // Read-only and minimal: only get/list, only on the kinds the audit lists.
    let mut granted = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        let verbs: Vec<&str> = rule["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(verbs, ["get", "list"], "{rule}");
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                granted.push(format!("{}/{}", group.as_str().unwrap(), resource.as_str().unwrap()));
            }
        }
    }
    let mut needed: Vec<String> = COLLECTIONS
        .iter()
        .map(|(_, api_version, _, path)| {
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
            format!("{group}/{}", path.rsplit('/').next().unwrap())
        })
        .collect();
    granted.sort();
    needed.sort();
    assert_eq!(granted, needed);

    // The stand-in enforces the role: without cronjobs, cronjobs are forbidden.
    let mut narrower = role;
    for rule in narrower["rules"].as_array_mut().unwrap() {
        rule["resources"].as_array_mut().unwrap().retain(|r| r != "cronjobs");
    }
    assert!(!support::allows(&narrower, "batch", "cronjobs", "list"));
    let server = ApiServer::start(Behaviour {
        cluster_role: Some(narrower),
        ..Behaviour::default()
    });
    let kubeconfig = server.kubeconfig(dir.path());
    let output = run_audit(&kubeconfig, &["-o", "json", "--images", images.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let errors = json_report(&output)["errors"].clone();
    assert_eq!(errors.as_array().unwrap().len(), 1, "{errors}");
    assert_eq!(errors[0]["resource"], "cronjobs.batch");
}
