//! `audit --report-to-cluster` against the live API server, with the
//! wgpolicyk8s.io PolicyReport CRD installed (a minimal one written from the
//! published schema, tests/fixtures/crds): the server-side apply is
//! accepted, nothing of it is pruned, the report is owned by its Namespace
//! and a second run replaces it.

use std::time::Duration;

use serde_json::Value;

use super::Suite;
use super::audit_cli::audit;
use crate::control_plane::wait_for;
use crate::manifests::{kind, workload};
use crate::namespaces;

const CRD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/crds/wgpolicyk8s.io_policyreports.yaml"
);

pub async fn case(s: &Suite) {
    let ns = "policy-reports";
    let crd_text = std::fs::read_to_string(CRD).expect("the CRD fixture");
    let crd: Value = serde_saphyr::from_str(&crd_text).expect("the CRD parses");
    s.api
        .create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &crd, false)
        .await
        .ok("create the PolicyReport CRD");
    let crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/policyreports.wgpolicyk8s.io";
    wait_for(
        "the PolicyReport CRD is established",
        Duration::from_secs(60),
        || async {
            let crd = s.api.get(crd_path).await.body;
            let established = crd["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Established" && c["status"] == "True"));
            let served = s.api.get("/apis/wgpolicyk8s.io/v1alpha2").await.status == 200;
            Ok((established && served).then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    namespaces::create(s, ns, Some("audit")).await;
    let deployment = kind("Deployment");
    s.api
        .create(&deployment.list_path(Some(ns)), &workload(deployment, "app"), false)
        .await
        .ok("create the Deployment");

    let report_path = format!("/apis/wgpolicyk8s.io/v1alpha2/namespaces/{ns}/policyreports/entrypoint-guard");
    for run in 0..2 {
        let out = audit(s, ns, "json", &["--report-to-cluster"]).await;
        assert_eq!(
            out.status.code(),
            Some(1),
            "run {run}: {}",
            crate::chart::describe(&out)
        );
        let stored = s.api.get(&report_path).await.ok("the PolicyReport").body;
        let results = stored["results"].as_array().expect("results");
        assert!(
            results.iter().any(|r| r["rule"] == "command-bypasses-wrapper"
                && r["result"] == "fail"
                && r["resources"][0]["name"] == "app"),
            "{stored}"
        );
        // Nothing pruned: every result kept its properties and timestamp.
        for result in results {
            assert!(result["properties"]["container"].is_string(), "{result}");
            assert!(result["timestamp"]["seconds"].as_i64().unwrap() > 0, "{result}");
        }
        let namespace = s
            .api
            .get(&format!("/api/v1/namespaces/{ns}"))
            .await
            .ok("the namespace")
            .body;
        let owner = &stored["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "Namespace");
        assert_eq!(
            owner["uid"], namespace["metadata"]["uid"],
            "owned by the Namespace: {stored}"
        );
        let managers: Vec<(&str, &str)> = stored["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["manager"].as_str().unwrap(), m["operation"].as_str().unwrap()))
            .collect();
        assert_eq!(managers, [("entrypoint-guard", "Apply")], "{stored}");
    }
    let (reports, _) = s
        .api
        .list(&format!("/apis/wgpolicyk8s.io/v1alpha2/namespaces/{ns}/policyreports"))
        .await;
    assert_eq!(reports.len(), 1, "replaced, not duplicated: {reports:?}");
}
