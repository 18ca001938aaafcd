//! Graceful shutdown with requests in flight: they complete, new connections
//! are refused at once, and the server stops within `server.shutdownGrace`
//! even when a request would outlive it. The same for the binary under load
//! and SIGTERM: `scripts/reliability/shutdown.sh`.

#[path = "support/serve.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use entrypoint_guard::config::Span;
use entrypoint_guard::image::{Facts, LookupContext, OfflineResolver, Resolver};
use futures::future::BoxFuture;
use support::{TestServer, decode_like_api_server, fixture, with_object};

/// The fixture facts, answered after `delay`: a slow registry.
struct SlowResolver {
    delay: Duration,
    inner: OfflineResolver,
}

impl Resolver for SlowResolver {
    fn resolve<'a>(&'a self, images: &'a [String], ctx: &'a LookupContext, deadline: Instant) -> BoxFuture<'a, Facts> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.inner.resolve(images, ctx, deadline).await
        })
    }
}

async fn start(delay: Duration, grace: Duration) -> TestServer {
    TestServer::start_with(
        |c| c.server.shutdown_grace = Span(grace),
        move |c| {
            Arc::new(SlowResolver {
                delay,
                inner: OfflineResolver::new(c.facts()),
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_complete_and_new_connections_are_refused() {
    let server = Arc::new(start(Duration::from_millis(1500), Duration::from_secs(10)).await);
    let addr = server.running.addr();
    let in_flight: Vec<_> = (0..8)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                let review = with_object(
                    &fixture("pod-create"),
                    &format!("5d000000-0000-4000-8000-00000000000{i}"),
                    fixture("pod-create")["request"]["object"].clone(),
                );
                let answer = server.post("/mutate", &review).await;
                decode_like_api_server(&review, &answer)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = Instant::now();
    server.running.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "a new connection was accepted during shutdown");
    for request in in_flight {
        let decoded = request.await.expect("in-flight request completed");
        assert!(decoded.allowed && decoded.patch.is_some(), "{:?}", decoded.response);
    }
    let server = Arc::into_inner(server).expect("all requests done");
    server.running.wait().await.unwrap();
    // It stopped once the last request was answered, not at the end of the grace period.
    assert!(stopping.elapsed() < Duration::from_secs(10), "{:?}", stopping.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_outliving_the_grace_period_does_not_hold_the_exit() {
    let server = Arc::new(start(Duration::from_secs(60), Duration::from_millis(500)).await);
    let stuck = {
        let server = server.clone();
        tokio::spawn(async move {
            let review = fixture("pod-create");
            let url = server.url("/mutate?timeout=30s");
            server
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&review).unwrap())
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    server.running.shutdown();
    let result = stuck.await.unwrap();
    assert!(result.is_err(), "the request past the grace period is cut: {result:?}");
    let server = Arc::into_inner(server).expect("request done");
    server.running.wait().await.unwrap();
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stopped {took:?} after shutdown with a 500 ms grace"
    );
}
