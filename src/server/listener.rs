//! Serving one listener under bounds: the accept loop, the TLS handshake,
//! HTTP/1.1 or HTTP/2 by ALPN, and graceful shutdown.
//!
//! hyper is driven directly (not through axum-server) because the bounds
//! need the connection: a handshake under a timeout, a protocol chosen by
//! ALPN rather than by sniffing bytes (hyper-util's sniffing has no timer,
//! so a client that stops after one byte would be held forever), a
//! per-connection watchdog that closes an idle or header-stalled
//! connection, and a cap on connections checked at accept.
//!
//! Over `server.maxConnections` a new connection is closed at once, before
//! its TLS handshake: answering 503 would cost the handshake (the CPU an
//! attacker wants to spend) and a queue would hold the sockets; the API
//! server sees a reset, applies its failurePolicy and retries the next call.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use axum_server::tls_rustls::RustlsConfig;
use futures::future::BoxFuture;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::activity::{Activity, Watched};
use super::bodies::BodyBounds;
use super::metrics::Metrics;
use crate::config::ServerConfig;

/// HTTP/2 streams a client may reset before the server accepted them
/// (CVE-2023-44487, "rapid reset"); over it the connection gets a GOAWAY.
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// Streams the server may reset for a client's protocol errors before the
/// connection is closed (RUSTSEC-2024-0003, "MadeYouReset").
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 64;
/// Largest HTTP/2 frame accepted: the protocol's minimum, 16 KiB.
const MAX_FRAME_SIZE: u32 = 16 * 1024;
/// Response bytes buffered per HTTP/2 stream for a client that does not read.
const MAX_SEND_BUF_SIZE: usize = 64 * 1024;

/// How one listener serves.
pub(crate) struct Listener {
    /// `admission` or `health`, for metrics and logs.
    pub(crate) name: &'static str,
    /// The bound socket.
    pub(crate) tcp: TcpListener,
    /// The certificate (admission) or none (health: plain HTTP/1.1).
    pub(crate) tls: Option<RustlsConfig>,
    /// Read bodies under bounds before routing (admission only).
    pub(crate) bodies: Option<Arc<BodyBounds>>,
    /// The routes.
    pub(crate) app: Router,
    /// Counted here.
    pub(crate) metrics: Arc<Metrics>,
}

/// What every connection of a listener shares.
struct Shared {
    name: &'static str,
    tls: Option<RustlsConfig>,
    bodies: Option<Arc<BodyBounds>>,
    app: Router,
    metrics: Arc<Metrics>,
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    handshake_timeout: Duration,
    header_timeout: Duration,
    idle_timeout: Duration,
}

/// The per-connection hyper builders, with every protocol bound set.
fn builders(config: &ServerConfig) -> (http1::Builder, http2::Builder<TokioExecutor>) {
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        // A backstop only: hyper starts this clock when a connection goes
        // idle, so it must outlast the idle wait; the watchdog (activity.rs)
        // applies headerReadTimeout from the head's first byte.
        .header_read_timeout(config.idle_timeout.get() + config.header_read_timeout.get())
        .max_buf_size(config.max_header_bytes)
        .keep_alive(true);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .max_concurrent_streams(config.http2_max_concurrent_streams)
        .max_header_list_size(config.max_header_bytes as u32)
        .max_frame_size(MAX_FRAME_SIZE)
        .max_send_buf_size(MAX_SEND_BUF_SIZE)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS)
        .keep_alive_interval(config.http2_keep_alive_interval.get())
        .keep_alive_timeout(config.http2_keep_alive_timeout.get());
    (h1, h2)
}

impl Listener {
    /// Serves until `stop` holds a grace period, then stops accepting, lets
    /// connections finish within it and closes the rest.
    pub(crate) async fn serve(
        self,
        config: &ServerConfig,
        mut stop: watch::Receiver<Option<Duration>>,
    ) -> io::Result<()> {
        let (h1, h2) = builders(config);
        let shared = Arc::new(Shared {
            name: self.name,
            tls: self.tls,
            bodies: self.bodies,
            app: self.app,
            metrics: self.metrics,
            h1,
            h2,
            handshake_timeout: config.tls_handshake_timeout.get(),
            header_timeout: config.header_read_timeout.get(),
            idle_timeout: config.idle_timeout.get(),
        });
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                biased;
                () = stopped(&mut stop) => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, _)) => {
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            shared.metrics.transport().rejected(shared.name, "max-connections");
                            drop(stream); // closed before any byte is read
                            continue;
                        };
                        connections.spawn(connection(stream, slot, shared.clone(), stop.clone()));
                    }
                    Err(e) => {
                        // Out of file descriptors, usually: back off instead of spinning.
                        tracing::warn!(listener = shared.name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(self.tcp); // new connections are refused from now on
        let grace = stop.borrow().unwrap_or_default();
        let drained = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, drained).await.is_err() {
            tracing::warn!(
                listener = shared.name,
                left = connections.len(),
                "grace period over: closing connections"
            );
            connections.shutdown().await;
        }
        Ok(())
    }
}

/// Resolves once the listener is told to stop (or its owner is gone).
async fn stopped(stop: &mut watch::Receiver<Option<Duration>>) {
    let _ = stop.wait_for(Option::is_some).await;
}

/// Serves one accepted connection, holding its `slot` until it closes.
async fn connection(
    stream: TcpStream,
    slot: OwnedSemaphorePermit,
    shared: Arc<Shared>,
    stop: watch::Receiver<Option<Duration>>,
) {
    let _slot = slot;
    let _open = Open::count(&shared);
    let transport = shared.metrics.transport();
    let _ = stream.set_nodelay(true);
    match &shared.tls {
        None => http(stream, false, &shared, stop).await,
        Some(tls) => {
            let acceptor = TlsAcceptor::from(tls.get_inner());
            match tokio::time::timeout(shared.handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                    http(tls, h2, &shared, stop).await;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => transport.timeout(shared.name, "tls-handshake"),
            }
        }
    }
}

/// Counts an open connection in `open_connections` until dropped (also
/// when the task is aborted at the end of a grace period).
struct Open(Arc<Shared>);

impl Open {
    fn count(shared: &Arc<Shared>) -> Open {
        shared.metrics.transport().open(shared.name, 1);
        Open(shared.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.metrics.transport().open(self.0.name, -1);
    }
}

/// A hyper connection that can be asked to finish gracefully.
trait Graceful: Future<Output = hyper::Result<()>> {
    fn graceful(self: std::pin::Pin<&mut Self>);
}

impl<I, S> Graceful for http1::Connection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    fn graceful(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S> Graceful for http2::Connection<I, S, TokioExecutor>
where
    S: hyper::service::HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    fn graceful(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Serves HTTP/1.1 or HTTP/2 over `io` until the client leaves, a bound
/// expires or the server stops.
async fn http<I>(io: I, h2: bool, shared: &Arc<Shared>, stop: watch::Receiver<Option<Duration>>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new(!h2);
    let io = TokioIo::new(Watched::new(io, activity.clone()));
    let service = Service {
        shared: shared.clone(),
        activity: activity.clone(),
        app: TowerToHyperService::new(shared.app.clone()),
    };
    if h2 {
        drive(shared.h2.serve_connection(io, service), true, shared, &activity, stop).await;
    } else {
        drive(shared.h1.serve_connection(io, service), false, shared, &activity, stop).await;
    }
}

async fn drive(
    conn: impl Graceful,
    h2: bool,
    shared: &Shared,
    activity: &Activity,
    mut stop: watch::Receiver<Option<Duration>>,
) {
    tokio::pin!(conn);
    tokio::select! {
        served = &mut conn => {
            if let Err(e) = served {
                tracing::debug!(listener = shared.name, error = %e, "connection ended with an error");
            }
        }
        () = stopped(&mut stop) => {
            // In-flight requests finish; the listener's grace bounds the wait.
            conn.as_mut().graceful();
            let _ = conn.await;
        }
        expired = activity.expired(shared.header_timeout, shared.idle_timeout) => {
            shared.metrics.transport().timeout(shared.name, expired.as_str());
            if h2 {
                // A GOAWAY tells the client not to send more on this
                // connection; nothing is in flight, so it closes at once.
                conn.as_mut().graceful();
                let _ = tokio::time::timeout(shared.header_timeout, conn).await;
            }
            // HTTP/1.1: nothing is in flight; dropping the connection closes it.
        }
    }
}

/// The per-connection service: marks the request in flight, reads its body
/// under bounds (admission), then routes it.
#[derive(Clone)]
struct Service {
    shared: Arc<Shared>,
    activity: Arc<Activity>,
    app: TowerToHyperService<Router>,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, std::convert::Infallible>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let (start, in_flight) = self.activity.begin();
        let shared = self.shared.clone();
        let app = self.app.clone();
        Box::pin(async move {
            // Dropped when answered or when the client resets the stream.
            let _in_flight = in_flight;
            let Some(bodies) = &shared.bodies else {
                return hyper::service::Service::call(&app, request).await;
            };
            let path = request.uri().path().to_owned();
            let http1 = request.version() < axum::http::Version::HTTP_2;
            match bodies.read(request, start).await {
                Ok(request) => {
                    let (parts, held) = request.into_parts();
                    // The budget is held until the answer is built: decoding
                    // and the engine work on these bytes.
                    let _permit = held.permit;
                    hyper::service::Service::call(&app, Request::from_parts(parts, Body::from(held.body))).await
                }
                Err(refused) => Ok(refused.response(&shared.metrics, &path, http1)),
            }
        })
    }
}
