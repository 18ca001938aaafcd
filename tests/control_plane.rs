//! The webhook inside a real control plane: etcd, kube-apiserver v1.32 and
//! kube-controller-manager on loopback (tests/support/control_plane.rs),
//! `entrypoint-guard serve` — the built binary, with the chart's
//! configuration — registered by the MutatingWebhookConfiguration the chart
//! renders, and cases that assert on what the API server stored or returned
//! and on what the Deployment, ReplicaSet, Job and CronJob controllers did.
//!
//! Runs when `EG_K8S_BIN` names the binaries' directory (`bash
//! ../shared/k8s/install.sh DIR`; `.ci/run` sets it); otherwise it says so
//! and passes. Starting a control plane takes seconds and nextest runs each
//! `#[test]` in its own process, so this target is one test that starts one
//! control plane, runs every case against it (each in its own namespace,
//! concurrently; the case that stops the webhook alone, last), reports each
//! case by name, runs them all even when one fails, and fails at the end
//! naming the failed cases. On failure the control plane's directory (every
//! component's log, the API server's audit log) is kept and printed.

#[path = "support/chart.rs"]
mod chart;
#[path = "support/control_plane.rs"]
mod control_plane;
#[path = "support/guard_process.rs"]
mod guard_process;
#[path = "support/kube_api.rs"]
mod kube_api;

#[path = "control_plane/admission.rs"]
mod admission;
#[path = "control_plane/audit_cli.rs"]
mod audit_cli;
#[path = "control_plane/controllers.rs"]
mod controllers;
#[path = "control_plane/manifests.rs"]
mod manifests;
#[path = "control_plane/namespaces.rs"]
mod namespaces;
#[path = "control_plane/policy_reports.rs"]
mod policy_reports;
#[path = "control_plane/rollout.rs"]
mod rollout;
#[path = "control_plane/webhook_down.rs"]
mod webhook_down;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Instant;

use futures::FutureExt as _;

use control_plane::{BIN_ENV, ControlPlane};
use guard_process::Guard;
use kube_api::Api;

/// What every case gets.
pub struct Suite {
    /// A cluster-admin client.
    pub api: Api,
    /// The admin kubeconfig, for kubectl and `entrypoint-guard audit`.
    pub kubeconfig: PathBuf,
    /// The API server's audit log.
    pub audit_log: PathBuf,
    /// The webhook's JSON log.
    pub webhook_log: PathBuf,
    /// The namespace label that picks the mode (the chart's `webhook.namespaceLabel`).
    pub mode_label: String,
}

type Case<'a> = (&'static str, Pin<Box<dyn Future<Output = ()> + 'a>>);

#[test]
fn kube_apiserver_controllers_and_the_webhook() {
    let Some(bin) = control_plane::binaries() else {
        eprintln!(
            "control-plane suite NOT RUN: {BIN_ENV} is not set. It needs etcd, kube-apiserver and \
             kube-controller-manager: `bash ../shared/k8s/install.sh DIR`, then \
             `{BIN_ENV}=DIR cargo nextest run --test control_plane` (README: Testing against a real control plane)."
        );
        return;
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(suite(&bin));
}

async fn suite(bin: &Path) {
    let started = Instant::now();
    // A panic is a failure report: its place and message, without the
    // backtrace of the runtime around it.
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        eprintln!("panicked at {place}: {message}");
    }));
    // Rendered first: a chart that does not render needs no control plane.
    let rendered = chart::render(&["--set", "config.registry.enabled=false"]);
    // Spawned from this thread (the runtime polls this future here), so the
    // processes die with the test even if it is killed.
    let mut plane = ControlPlane::start(bin).await.unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "control plane ready in {:.1} s at {} ({})",
        started.elapsed().as_secs_f64(),
        plane.server,
        plane.dir.display()
    );
    let facts = Path::new(manifests::FACTS_FILE);
    let mut guard = match Guard::start(&plane.dir, rendered.config_text(), &plane.pki.webhook, facts).await {
        Ok(guard) => guard,
        Err(e) => setup_failed(&mut plane, &e),
    };
    let api = Api::new(plane.client.clone());
    let configuration = guard_process::on_loopback(
        rendered.get("MutatingWebhookConfiguration", chart::FULLNAME),
        guard.port,
        &plane.pki.ca_bundle(),
    );
    let registered = api
        .create(
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
            &configuration,
            false,
        )
        .await;
    if registered.status != 201 {
        setup_failed(
            &mut plane,
            &format!("the chart's webhook configuration was refused: {}", registered.body),
        );
    }
    let suite = Suite {
        api,
        kubeconfig: plane.kubeconfig.clone(),
        audit_log: plane.audit_log.clone(),
        webhook_log: guard.log.clone(),
        mode_label: mode_label(&configuration),
    };
    let s = &suite;

    let concurrent: Vec<Case> = vec![
        (
            "every_kind_in_a_fix_namespace_comes_back_fixed",
            Box::pin(admission::fix_namespace(s)),
        ),
        (
            "every_kind_in_an_audit_namespace_is_untouched_with_warnings",
            Box::pin(admission::audit_namespace(s)),
        ),
        (
            "server_dry_run_returns_the_fix_and_stores_nothing",
            Box::pin(admission::dry_run(s)),
        ),
        (
            "audit_annotations_reach_the_api_server_audit_log",
            Box::pin(admission::audit_annotations(s)),
        ),
        (
            "kube_system_and_the_release_namespace_are_never_sent",
            Box::pin(admission::excluded_namespaces(s)),
        ),
        (
            "mirror_pods_are_skipped_by_the_match_condition",
            Box::pin(admission::mirror_pods(s)),
        ),
        (
            "the_api_server_speaks_http2_to_the_webhook",
            Box::pin(admission::http2(s)),
        ),
        (
            "deployment_replicaset_pods_are_fixed_with_one_replicaset",
            Box::pin(controllers::deployment_chain(s)),
        ),
        (
            "the_pods_of_one_replicaset_are_recalled_not_decoded",
            Box::pin(controllers::sibling_pods_are_recalled(s)),
        ),
        (
            "storm_deployment_admitted_unfixed_then_its_replicaset_deleted",
            Box::pin(controllers::storm(s)),
        ),
        (
            "deployment_update_of_replicas_or_a_label_makes_no_replicaset",
            Box::pin(controllers::quiet_updates(s)),
        ),
        (
            "deployment_admitted_unfixed_then_scaled_or_labelled_makes_no_replicaset",
            Box::pin(controllers::quiet_updates_after_audit(s)),
        ),
        (
            "cronjob_job_pod_chain_is_fixed",
            Box::pin(controllers::cronjob_chain(s)),
        ),
        (
            "cronjob_admitted_unfixed_its_jobs_pods_are_fixed",
            Box::pin(controllers::cronjob_admitted_unfixed(s)),
        ),
        (
            "audit_cli_finds_what_the_webhook_fixes_and_its_yaml_applies",
            Box::pin(audit_cli::case(s)),
        ),
        (
            "audit_writes_a_policy_report_the_api_server_accepts",
            Box::pin(policy_reports::case(s)),
        ),
    ];
    let mut outcomes = futures::future::join_all(concurrent.into_iter().map(run_case)).await;
    // Alone: it stops the webhook every other case needs.
    outcomes.push(
        run_case((
            "webhook_down_fails_open_and_nothing_loops_when_it_returns",
            Box::pin(webhook_down::case(s, &mut guard)),
        ))
        .await,
    );

    guard.stop();
    let failed: Vec<&str> = outcomes.iter().filter(|o| !o.1).map(|o| o.0).collect();
    let kept = plane.stop(!failed.is_empty());
    eprintln!(
        "control-plane suite: {} cases, {} failed, {:.1} s in all",
        outcomes.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        let dir = kept.map(|d| d.display().to_string()).unwrap_or_default();
        panic!(
            "{} of {} control-plane cases failed: {}\nlogs (etcd, kube-apiserver, kube-controller-manager, audit, webhook) kept in {dir}",
            failed.len(),
            outcomes.len(),
            failed.join(", ")
        );
    }
}

/// Runs one case, catching its panic (the hook has printed it); (name, passed).
async fn run_case((name, case): Case<'_>) -> (&'static str, bool) {
    let started = Instant::now();
    let passed = AssertUnwindSafe(case).catch_unwind().await.is_ok();
    let outcome = if passed { "ok" } else { "FAILED" };
    eprintln!("case {name}: {outcome} ({:.1} s)", started.elapsed().as_secs_f64());
    (name, passed)
}

/// Runs `program args...` (with `stdin`) off the runtime's thread, so the
/// other cases go on meanwhile.
pub async fn run_tool(program: &str, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let program = program.to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        chart::run(&program, &args, stdin.as_deref())
    })
    .await
    .expect("the tool's thread")
}

/// The namespace label the chart's selectors route by (`webhook.namespaceLabel`).
fn mode_label(configuration: &serde_json::Value) -> String {
    let expressions = configuration["webhooks"][0]["namespaceSelector"]["matchExpressions"]
        .as_array()
        .expect("the chart's namespaceSelector");
    expressions
        .iter()
        .filter_map(|e| e["key"].as_str())
        .find(|key| *key != "kubernetes.io/metadata.name")
        .expect("the chart's mode label")
        .to_string()
}

fn setup_failed(plane: &mut ControlPlane, why: &str) -> ! {
    let kept = plane.stop(true).map(|d| d.display().to_string()).unwrap_or_default();
    panic!("{why}\nlogs kept in {kept}");
}
