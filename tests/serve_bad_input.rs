//! Bad and unusual requests each get their specified answer, and the server
//! keeps serving afterwards.

#[path = "support/serve.rs"]
mod support;

use serde_json::{Value, json};
use support::*;

fn review_with(f: impl FnOnce(&mut Value)) -> Value {
    let mut review = fixture("pod-create");
    f(&mut review);
    review
}

#[tokio::test]
async fn each_bad_input_gets_its_status_and_the_server_keeps_serving() {
    let server = TestServer::start(|_| {}).await;
    let url = server.url("/mutate?timeout=10s");
    let pod = serde_json::to_vec(&fixture("pod-create")).unwrap();

    // (case, content type, body, status, text the answer must contain)
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "truncated JSON",
            "application/json",
            pod[..pod.len() / 2].to_vec(),
            400,
            "not a valid AdmissionReview: at request.object",
        ),
        (
            "wrong apiVersion",
            "application/json",
            serde_json::to_vec(&review_with(|r| r["apiVersion"] = json!("admission.k8s.io/v1beta1"))).unwrap(),
            400,
            "apiVersion is \"admission.k8s.io/v1beta1\"; only admission.k8s.io/v1 is served",
        ),
        (
            "wrong kind",
            "application/json",
            serde_json::to_vec(&review_with(|r| r["kind"] = json!("Pod"))).unwrap(),
            400,
            "kind is \"Pod\"; expected AdmissionReview",
        ),
        (
            "missing request",
            "application/json",
            serde_json::to_vec(&review_with(|r| {
                r.as_object_mut().unwrap().remove("request");
            }))
            .unwrap(),
            400,
            "the AdmissionReview has no request",
        ),
        (
            "missing uid",
            "application/json",
            serde_json::to_vec(&review_with(|r| {
                r["request"].as_object_mut().unwrap().remove("uid");
            }))
            .unwrap(),
            400,
            "request.uid is missing or empty",
        ),
        (
            "not JSON at all",
            "application/json",
            b"kind: AdmissionReview\n".to_vec(),
            400,
            "not a valid AdmissionReview",
        ),
        (
            "non-JSON content type",
            "application/yaml",
            pod.clone(),
            415,
            "Content-Type: application/json",
        ),
        (
            "oversized body (default limit 4 MiB)",
            "application/json",
            {
                let mut big = review_with(|_| {});
                big["request"]["object"]["metadata"]["annotations"] = json!({"padding": "x".repeat(5 << 20)});
                serde_json::to_vec(&big).unwrap()
            },
            413,
            "length limit exceeded",
        ),
    ];
    for (case, content_type, body, status, text) in cases {
        let answer = post_raw(&server.client, &url, content_type, body).await;
        assert_eq!(answer.status, status, "{case}: {}", answer.text);
        assert!(answer.text.contains(text), "{case}: {:?} lacks {text:?}", answer.text);
        // Still serving, on the same client.
        let good = fixture("pod-create");
        let decoded = decode_like_api_server(&good, &server.post("/mutate", &good).await);
        assert!(decoded.patch.is_some(), "after {case}");
    }
    let metrics = server.client.get(server.health_url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for (reason, n) in [("bad-request", 6), ("unsupported-media-type", 1), ("too-large", 1)] {
        let line = format!("entrypoint_guard_rejected_requests_total{{route=\"mutate\",reason=\"{reason}\"}} {n}\n");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn operations_and_kinds_that_are_not_inspected_are_allowed_untouched() {
    let server = TestServer::start(|_| {}).await;
    let base = fixture("pod-create");
    let object = base["request"]["object"].clone();
    let cases: Vec<(&str, Value)> = vec![
        (
            "DELETE with no object",
            review_with(|r| {
                r["request"]["operation"] = json!("DELETE");
                r["request"]["oldObject"] = object.clone();
                r["request"]["object"] = Value::Null;
                r["request"]["options"] = json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"});
            }),
        ),
        (
            "CONNECT (pods/exec)",
            review_with(|r| {
                r["request"]["operation"] = json!("CONNECT");
                r["request"]["subResource"] = json!("exec");
                r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "PodExecOptions"});
                r["request"]["object"] =
                    json!({"kind": "PodExecOptions", "apiVersion": "v1", "stdin": true, "command": ["sh"]});
            }),
        ),
        (
            "unknown kind",
            review_with(|r| {
                r["request"]["kind"] = json!({"group": "example.com", "version": "v1", "kind": "Widget"});
                r["request"]["object"]["apiVersion"] = json!("example.com/v1");
                r["request"]["object"]["kind"] = json!("Widget");
            }),
        ),
        (
            "pods/ephemeralcontainers subresource",
            review_with(|r| {
                r["request"]["operation"] = json!("UPDATE");
                r["request"]["subResource"] = json!("ephemeralcontainers");
            }),
        ),
        (
            "unknown operation and unknown fields",
            review_with(|r| {
                r["request"]["operation"] = json!("TELEPORT");
                r["request"]["somethingNew"] = json!({"a": [1, 2]});
                r["alsoNew"] = json!(true);
            }),
        ),
    ];
    for (case, review) in cases {
        let decoded = decode_like_api_server(&review, &server.post("/mutate", &review).await);
        assert!(decoded.allowed, "{case}");
        assert!(decoded.patch.is_none(), "{case}");
        assert!(decoded.warnings.is_empty(), "{case}: {:?}", decoded.warnings);
        assert_eq!(
            decoded.response,
            json!({"uid": review["request"]["uid"], "allowed": true}),
            "{case}"
        );
    }
    // Unknown fields elsewhere do not stop a real inspection.
    let review = review_with(|r| r["request"]["somethingNew"] = json!(1));
    let decoded = decode_like_api_server(&review, &server.post("/mutate", &review).await);
    assert!(decoded.patch.is_some());
}

#[tokio::test]
async fn wrong_methods_and_paths_are_http_errors() {
    let server = TestServer::start(|_| {}).await;
    let get = server.client.get(server.url("/mutate")).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let other = post(&server.client, &server.url("/validate"), &fixture("pod-create")).await;
    assert_eq!(other.status, 404);
}
