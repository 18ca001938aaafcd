//! The webhook down with the chart's `failurePolicy: Ignore`, then back.

use serde_json::json;

use super::Suite;
use crate::controllers::{assert_pods, assert_pods_unfixed, assert_template_kept, assert_template_matches, deployment};
use crate::guard_process::Guard;
use crate::manifests::{assert_unfixed, kind, workload};
use crate::namespaces;
use crate::rollout::Rollout;

/// While the webhook is stopped, creation still succeeds (unfixed, no
/// warnings) and the controllers settle on the unfixed template. When it is
/// back, the API server calls it again, and a scale — an UPDATE that
/// touches no container — keeps the template and the ReplicaSet while the
/// new Pods are fixed: nothing loops.
pub async fn case(s: &Suite, guard: &mut Guard) {
    let ns = "webhook-down";
    namespaces::create(s, ns, Some("fix")).await;

    guard.stop();
    let pod = kind("Pod");
    let reply = s
        .api
        .create(&pod.list_path(Some(ns)), &workload(pod, "while-down"), false)
        .await
        .ok("create a Pod while the webhook is down");
    assert_unfixed(&reply.body, "a Pod admitted while the webhook is down");
    assert!(reply.warnings.is_empty(), "{:?}", reply.warnings);
    let (mut rollout, reply) = Rollout::create(s, ns, deployment("web", 1)).await;
    assert_unfixed(&reply.body, "a Deployment admitted while the webhook is down");
    let down = rollout.settle(1).await;
    assert_pods_unfixed(&down);

    guard.restart().await.unwrap_or_else(|e| panic!("{e}"));
    namespaces::routed(s, ns, "fix").await;
    let replicas = down.deployment["spec"]["replicas"].as_i64().unwrap() + 1;
    let scale = json!({"spec": {"replicas": replicas}});
    s.api
        .merge_patch(&rollout.path(), &scale)
        .await
        .ok("scale the Deployment");
    let back = rollout.settle(1).await;
    assert_template_kept(&down, &back, &scale);
    assert_template_matches(&back);
    assert_pods(&back, Some(&down));
}
