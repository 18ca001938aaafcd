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
use tokio::sync::{mpsc, watch};

/// The fixture facts, answered once the test opens the gate: a registry
/// as slow as the test needs, that says when a lookup has arrived.
struct GatedResolver {
    inner: OfflineResolver,
    arrived: mpsc::UnboundedSender<()>,
    open: watch::Receiver<bool>,
}

impl Resolver for GatedResolver {
    fn resolve<'a>(&'a self, images: &'a [String], ctx: &'a LookupContext, deadline: Instant) -> BoxFuture<'a, Facts> {
        Box::pin(async move {
            let _ = self.arrived.send(());
            let mut open = self.open.clone();
            let _ = open.wait_for(|open| *open).await;
            self.inner.resolve(images, ctx, deadline).await
        })
    }
}

/// A server whose lookups wait for the gate, with `grace` to finish on
/// shutdown; the receiver of lookup arrivals; the gate.
async fn start(grace: Duration) -> (TestServer, mpsc::UnboundedReceiver<()>, watch::Sender<bool>) {
    let (arrived, arrivals) = mpsc::unbounded_channel();
    let (gate, open) = watch::channel(false);
    let server = TestServer::start_with(
        |c| c.server.shutdown_grace = Span(grace),
        move |c| {
            Arc::new(GatedResolver {
                inner: OfflineResolver::new(c.facts()),
                arrived,
                open,
            })
        },
    )
    .await;
    (server, arrivals, gate)
}

/// Waits (within a generous deadline) until a new connection to `addr` is refused.
async fn refused(addr: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "new connections are still accepted during shutdown"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_complete_and_new_connections_are_refused() {
    // A grace far longer than the test: the server must stop when the last
    // request is answered, not when the grace ends.
    let (server, mut arrivals, gate) = start(Duration::from_secs(3600)).await;
    let server = Arc::new(server);
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
    for _ in 0..in_flight.len() {
        arrivals.recv().await.expect("a lookup arrives");
    }
    server.running.shutdown();
    // Every request is still waiting for its lookup, and the port is closed.
    refused(addr).await;
    assert!(in_flight.iter().all(|r| !r.is_finished()));
    gate.send_replace(true);
    for request in in_flight {
        let decoded = request.await.expect("in-flight request completed");
        assert!(decoded.allowed && decoded.patch.is_some(), "{:?}", decoded.response);
    }
    let server = Arc::into_inner(server).expect("all requests done");
    tokio::time::timeout(Duration::from_secs(60), server.running.wait())
        .await
        .expect("stopped once the last request was answered, long before the grace ends")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_outliving_the_grace_period_does_not_hold_the_exit() {
    let (server, mut arrivals, _gate) = start(Duration::from_millis(500)).await;
    let server = Arc::new(server);
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
    arrivals.recv().await.expect("the lookup arrives");
    server.running.shutdown();
    // The gate never opens: only the end of the grace ends the request.
    let result = stuck.await.unwrap();
    assert!(result.is_err(), "the request past the grace period is cut: {result:?}");
    let server = Arc::into_inner(server).expect("request done");
    tokio::time::timeout(Duration::from_secs(60), server.running.wait())
        .await
        .expect("the server stops once the grace is over")
        .unwrap();
}
