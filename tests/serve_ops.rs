//! Running the webhook: deadlines from `?timeout=`, failures answered per
//! `server.onError`, health/readiness/metrics, graceful shutdown.

#[path = "support/serve.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entrypoint_guard::config::Span;
use entrypoint_guard::config::server::OnError;
use entrypoint_guard::image::{Facts, LookupContext, OfflineResolver, Resolver};
use futures::future::BoxFuture;
use serde_json::Value;
use support::*;
use tokio::sync::{Semaphore, watch};

/// How the test resolver misbehaves.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Sleeps this long, ignoring the deadline (a broken resolver).
    Sleep(Duration),
    /// Panics while building its future.
    PanicNow,
    /// Panics when polled.
    PanicLater,
    /// Answers from the offline facts after this long, within the deadline.
    OfflineAfter(Duration),
    /// Answers from the offline facts once the test opens `gate`.
    Gated,
}

/// A resolver at the `Server::new` seam that records the deadline it was given.
struct TestResolver {
    behaviour: Behaviour,
    offline: OfflineResolver,
    deadlines: Mutex<Vec<Duration>>,
    /// A permit per lookup that has arrived.
    arrived: Semaphore,
    /// `Behaviour::Gated` lookups wait until this is true.
    gate: watch::Sender<bool>,
}

impl Resolver for TestResolver {
    fn resolve<'a>(&'a self, images: &'a [String], _: &'a LookupContext, deadline: Instant) -> BoxFuture<'a, Facts> {
        self.deadlines
            .lock()
            .unwrap()
            .push(deadline.saturating_duration_since(Instant::now()));
        match self.behaviour {
            Behaviour::Sleep(d) => Box::pin(async move {
                tokio::time::sleep(d).await;
                Facts::new()
            }),
            Behaviour::PanicNow => panic!("resolver bug (test)"),
            Behaviour::PanicLater => Box::pin(async { panic!("resolver bug in the future (test)") }),
            Behaviour::OfflineAfter(d) => Box::pin(async move {
                tokio::time::sleep(d.min(deadline.saturating_duration_since(Instant::now()))).await;
                self.offline.resolve_now(images)
            }),
            Behaviour::Gated => Box::pin(async move {
                self.arrived.add_permits(1);
                let _ = self.gate.subscribe().wait_for(|open| *open).await;
                self.offline.resolve_now(images)
            }),
        }
    }
}

async fn start(behaviour: Behaviour, on_error: OnError) -> (TestServer, Arc<TestResolver>) {
    let mut shared = None;
    let server = TestServer::start_with(
        |c| {
            c.registry.budget = Span(Duration::from_secs(3));
            c.registry.safety_margin = Span(Duration::from_secs(1));
            c.server.on_error = on_error;
        },
        |c| {
            let r = Arc::new(TestResolver {
                behaviour,
                offline: OfflineResolver::new(c.facts()),
                deadlines: Mutex::new(Vec::new()),
                arrived: Semaphore::new(0),
                gate: watch::channel(false).0,
            });
            shared = Some(r.clone());
            r
        },
    )
    .await;
    (server, shared.unwrap())
}

async fn post_to(server: &TestServer, path: &str, review: &Value) -> Answer {
    post(&server.client, &server.url(path), review).await
}

#[tokio::test]
async fn the_resolver_deadline_is_the_budget_capped_by_the_api_server_timeout() {
    let (server, resolver) = start(Behaviour::OfflineAfter(Duration::ZERO), OnError::Allow).await;
    let review = fixture("pod-create");
    // (path, expected deadline): budget 3 s, safety margin 1 s, default request timeout 10 s.
    let cases = [
        ("/mutate?timeout=10s", 3.0),
        ("/mutate?timeout=2s", 1.0),
        ("/mutate", 3.0),
        ("/mutate?timeout=bogus&x=1", 3.0),
        ("/audit?timeout=1500ms", 0.5),
    ];
    for (path, _) in cases {
        let decoded = decode_like_api_server(&review, &post_to(&server, path, &review).await);
        assert!(decoded.allowed, "{path}");
    }
    let seen = resolver.deadlines.lock().unwrap().clone();
    assert_eq!(seen.len(), cases.len());
    for ((path, expected), got) in cases.iter().zip(seen) {
        let got = got.as_secs_f64();
        assert!(
            got <= *expected && got > expected - 0.25,
            "{path}: deadline {got} s, expected ~{expected} s"
        );
    }
}

#[tokio::test]
async fn a_blown_deadline_is_allowed_with_a_warning_before_the_api_server_gives_up() {
    let (server, _) = start(Behaviour::Sleep(Duration::from_secs(30)), OnError::Allow).await;
    let review = fixture("deployment-create");
    let started = Instant::now();
    let decoded = decode_like_api_server(&review, &post_to(&server, "/mutate?timeout=2s", &review).await);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered after the API server's timeout"
    );
    assert!(decoded.allowed && decoded.patch.is_none());
    assert_eq!(
        decoded.warnings,
        ["entrypoint-guard: not checked: image lookups did not finish within 1000 ms"]
    );
    let metrics = server.running.metrics().encode();
    assert!(metrics.contains("entrypoint_guard_admission_errors_total{route=\"mutate\",reason=\"deadline\"} 1\n"));
    assert!(metrics.contains("kind=\"Deployment\",operation=\"CREATE\",mode=\"fix\",outcome=\"error\"} 1\n"));
}

#[tokio::test]
async fn on_error_deny_denies_with_the_reason() {
    let (server, _) = start(Behaviour::Sleep(Duration::from_secs(30)), OnError::Deny).await;
    let review = fixture("pod-create");
    let decoded = decode_like_api_server(&review, &post_to(&server, "/mutate?timeout=1s", &review).await);
    assert!(!decoded.allowed);
    assert_eq!(decoded.response["status"]["code"], 500);
    assert_eq!(
        decoded.response["status"]["message"],
        "entrypoint-guard could not check this object: image lookups did not finish within 0 ms"
    );
}

#[tokio::test]
async fn a_panicking_resolver_is_an_internal_error_not_a_dropped_connection() {
    for behaviour in [Behaviour::PanicNow, Behaviour::PanicLater] {
        let (server, _) = start(behaviour, OnError::Allow).await;
        let review = fixture("job-create");
        for _ in 0..2 {
            let decoded = decode_like_api_server(&review, &server.post("/mutate", &review).await);
            assert!(decoded.allowed && decoded.patch.is_none());
            assert_eq!(
                decoded.warnings,
                ["entrypoint-guard: not checked: internal error in the image resolver"]
            );
        }
        let metrics = server.running.metrics().encode();
        assert!(metrics.contains("entrypoint_guard_admission_errors_total{route=\"mutate\",reason=\"internal\"} 2\n"));
    }
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = TestServer::start(|_| {}).await;
    let get = |path: &str| {
        let request = server.client.get(server.health_url(path));
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await, (200, "ok\n".to_string()));
    assert_eq!(get("/readyz").await, (200, "ready\n".to_string()));
    for stem in ["pod-create", "pod-update", "cronjob-create"] {
        let review = fixture(stem);
        decode_like_api_server(&review, &server.post("/mutate", &review).await);
    }
    let review = fixture("statefulset-create");
    decode_like_api_server(&review, &server.post("/audit", &review).await);
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "entrypoint_guard_admission_requests_total{route=\"mutate\",kind=\"Pod\",operation=\"CREATE\",mode=\"fix\",outcome=\"patched\"} 1",
        "entrypoint_guard_admission_requests_total{route=\"mutate\",kind=\"Pod\",operation=\"UPDATE\",mode=\"fix\",outcome=\"clean\"} 1",
        "entrypoint_guard_admission_requests_total{route=\"mutate\",kind=\"CronJob\",operation=\"CREATE\",mode=\"fix\",outcome=\"patched\"} 1",
        "entrypoint_guard_admission_requests_total{route=\"audit\",kind=\"StatefulSet\",operation=\"CREATE\",mode=\"audit\",outcome=\"audited\"} 1",
        "entrypoint_guard_findings_total{rule=\"command-bypasses-wrapper\",applied=\"true\"} 4",
        "entrypoint_guard_findings_total{rule=\"command-bypasses-wrapper\",applied=\"false\"} 2",
        "entrypoint_guard_findings_total{rule=\"image-pinned\",applied=\"true\"} 6",
        "entrypoint_guard_admission_duration_seconds_count{route=\"mutate\"} 3",
        "# TYPE entrypoint_guard_admission_duration_seconds histogram",
    ] {
        assert!(metrics.contains(&format!("{line}\n")), "missing {line} in\n{metrics}");
    }
}

/// Alike bodies are recalled and alike objects answered from memory — each
/// answer with its own uid, and the route's ceiling still deciding — and
/// `/metrics` counts both memos.
#[tokio::test]
async fn the_memo_recalls_alike_bodies_and_answers_and_counts_them() {
    let server = TestServer::start(|_| {}).await;
    let with_uid = |uid: &str| {
        let mut review = fixture("pod-create");
        review["request"]["uid"] = uid.into();
        review
    };
    let (first, second) = (with_uid(&"1".repeat(36)), with_uid(&"2".repeat(36)));
    let a = decode_like_api_server(&first, &server.post("/mutate", &first).await);
    // The same body but its uid: not decoded again, and answered from memory.
    let b = decode_like_api_server(&second, &server.post("/mutate", &second).await);
    assert_eq!((a.patch.is_some(), &a.patch), (true, &b.patch));
    // Another uid length: decoded again, the answer still from memory.
    let short = with_uid("short");
    decode_like_api_server(&short, &server.post("/mutate", &short).await);
    // A recalled body on /audit is answered in audit mode: a memo miss.
    let third = with_uid(&"3".repeat(36));
    let audited = decode_like_api_server(&third, &server.post("/audit", &third).await);
    assert!(audited.patch.is_none() && !audited.warnings.is_empty());
    // Another object: neither memo knows it.
    let mut other = with_uid(&"4".repeat(36));
    other["request"]["object"]["metadata"]["name"] = "other-pod".into();
    decode_like_api_server(&other, &server.post("/mutate", &other).await);
    let metrics = server.metrics().await;
    for line in [
        "entrypoint_guard_memo_lookups_total{memo=\"decode\",result=\"hit\"} 2",
        "entrypoint_guard_memo_lookups_total{memo=\"decode\",result=\"miss\"} 3",
        "entrypoint_guard_memo_lookups_total{memo=\"answer\",result=\"hit\"} 2",
        "entrypoint_guard_memo_lookups_total{memo=\"answer\",result=\"miss\"} 3",
    ] {
        assert!(metrics.contains(&format!("{line}\n")), "missing {line} in\n{metrics}");
    }
}

/// Regression: the request metric's mode came from the configuration and
/// the route, so an object annotated `mode: audit` under `/mutate` was
/// counted as mode="fix" (and one annotated `fix` under a configured audit
/// as mode="audit",outcome="patched"). It is the mode the engine used.
#[tokio::test]
async fn the_request_metric_counts_the_mode_the_object_was_inspected_in() {
    let annotated = |mode: &str| {
        let mut review = fixture("pod-create");
        review["request"]["object"]["metadata"]["annotations"] = serde_json::json!({"entrypoint-guard.io/mode": mode});
        review
    };
    let server = TestServer::start(|_| {}).await;
    let decoded = decode_like_api_server(&annotated("audit"), &server.post("/mutate", &annotated("audit")).await);
    assert!(decoded.patch.is_none() && !decoded.warnings.is_empty());
    let metrics = server.running.metrics().encode();
    assert!(
        metrics.contains("route=\"mutate\",kind=\"Pod\",operation=\"CREATE\",mode=\"audit\",outcome=\"audited\"} 1\n"),
        "{metrics}"
    );
    assert!(!metrics.contains("mode=\"fix\""), "{metrics}");

    let server = TestServer::start(|c| c.mode = entrypoint_guard::engine::Mode::Audit).await;
    let decoded = decode_like_api_server(&annotated("fix"), &server.post("/mutate", &annotated("fix")).await);
    assert!(decoded.patch.is_some());
    // `/audit` caps the annotation: the object is inspected in audit mode.
    decode_like_api_server(&annotated("fix"), &server.post("/audit", &annotated("fix")).await);
    let metrics = server.running.metrics().encode();
    for line in [
        "route=\"mutate\",kind=\"Pod\",operation=\"CREATE\",mode=\"fix\",outcome=\"patched\"} 1\n",
        "route=\"audit\",kind=\"Pod\",operation=\"CREATE\",mode=\"audit\",outcome=\"audited\"} 1\n",
    ] {
        assert!(metrics.contains(line), "missing {line} in {metrics}");
    }
    assert!(!metrics.contains("mode=\"audit\",outcome=\"patched\""), "{metrics}");
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_then_stops() {
    let (server, resolver) = start(Behaviour::Gated, OnError::Allow).await;
    let review = fixture("pod-create");
    let in_flight = {
        let (client, url, review) = (server.client.clone(), server.url("/mutate?timeout=10s"), review.clone());
        tokio::spawn(async move { post(&client, &url, &review).await })
    };
    resolver.arrived.acquire().await.expect("the lookup arrives").forget();
    let TestServer {
        running, client, dir, ..
    } = server;
    let ready_url = format!("http://{}/readyz", running.health_addr().unwrap());
    let port = running.addr().port();
    running.shutdown();
    let not_ready = client.get(&ready_url).send().await.unwrap();
    assert_eq!(not_ready.status().as_u16(), 503, "not ready while draining");
    assert!(!in_flight.is_finished(), "the request is still waiting for its lookup");
    resolver.gate.send_replace(true);
    let answer = in_flight.await.unwrap();
    let decoded = decode_like_api_server(&review, &answer);
    assert!(decoded.patch.is_some(), "the in-flight request finished normally");
    running.wait().await.unwrap();
    let after = client
        .post(format!("https://localhost:{port}/mutate"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&review).unwrap())
        .send()
        .await;
    assert!(after.is_err(), "still accepting after shutdown");
    drop(dir);
}
