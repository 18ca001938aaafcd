//! What one connection is doing, for its time bounds: how many requests are
//! in flight, since when it has been idle, and (HTTP/1.1) when the first byte
//! of the next request arrived.
//!
//! hyper's own HTTP/1.1 header timer starts when a connection goes idle, so
//! it cannot tell a keep-alive connection waiting for its next request (which
//! may wait `idleTimeout`) from a client trickling a request head (which gets
//! `headerReadTimeout` from its first byte). [`Watched`] notes that first
//! byte; [`Activity::expired`] turns the three instants into one deadline.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Which bound closed a connection (the `phase` label of
/// `entrypoint_guard_connection_timeouts_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// A request head did not arrive whole within `headerReadTimeout` of its
    /// first byte (or of the connection's start).
    Header,
    /// No request came for `idleTimeout`.
    Idle,
}

impl Expiry {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Expiry::Header => "header",
            Expiry::Idle => "idle",
        }
    }
}

#[derive(Debug)]
struct State {
    in_flight: usize,
    /// When the last request finished (or the connection started).
    idle_since: Instant,
    /// HTTP/1.1: when the first byte after going idle arrived.
    first_byte: Option<Instant>,
    /// Whether a request has been seen on this connection.
    served: bool,
}

/// The activity of one connection, shared by its IO, its service and its
/// watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    state: Mutex<State>,
    /// Set while idle with no byte seen yet: the reader's cheap check.
    armed: AtomicBool,
    changed: Notify,
    /// HTTP/1.1 (bytes while idle start a request head) or HTTP/2 (they may be pings).
    http1: bool,
}

impl Activity {
    /// A connection that starts now.
    pub(crate) fn new(http1: bool) -> Arc<Activity> {
        Arc::new(Activity {
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                first_byte: None,
                served: false,
            }),
            armed: AtomicBool::new(http1),
            changed: Notify::new(),
            http1,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few numbers, always consistent: a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes arrived; on an idle HTTP/1.1 connection they start a request head.
    fn bytes_read(&self) {
        if self.armed.swap(false, Ordering::AcqRel) {
            let mut state = self.lock();
            if state.in_flight == 0 && state.first_byte.is_none() {
                state.first_byte = Some(Instant::now());
                drop(state);
                self.changed.notify_one();
            }
        }
    }

    /// A request begins; returns when its first byte arrived (HTTP/1.1) or
    /// now, and a guard that ends it when dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> (Instant, InFlight) {
        let mut state = self.lock();
        state.in_flight += 1;
        state.served = true;
        let start = state.first_byte.take().unwrap_or_else(Instant::now);
        self.armed.store(false, Ordering::Release);
        drop(state);
        self.changed.notify_one();
        (start, InFlight(self.clone()))
    }

    /// Resolves when a bound expires: `idle` with no request in flight, or
    /// `header` after a request's first byte (HTTP/1.1; also a fresh
    /// HTTP/1.1 connection that has sent nothing). Never while a request is
    /// in flight: the body deadline and the API server's own timeout cover those.
    pub(crate) async fn expired(&self, header: Duration, idle: Duration) -> Expiry {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deadline = {
                let state = self.lock();
                if state.in_flight > 0 {
                    None
                } else if let Some(first) = state.first_byte {
                    Some((first + header, Expiry::Header))
                } else if self.http1 && !state.served {
                    Some((state.idle_since + header, Expiry::Header))
                } else {
                    Some((state.idle_since + idle, Expiry::Idle))
                }
            };
            match deadline {
                None => notified.await,
                Some((at, why)) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(at) => return why,
                    }
                }
            }
        }
    }
}

/// A request in flight; dropping it (answered, or the client reset the
/// stream) makes the connection idle again when it was the last.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        let mut state = activity.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
            state.first_byte = None;
            activity.armed.store(activity.http1, Ordering::Release);
        }
        drop(state);
        activity.changed.notify_one();
    }
}

/// A connection's IO that tells its [`Activity`] when bytes arrive.
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    /// Watches `inner`.
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_and_header_deadlines() {
        let (header, idle) = (Duration::from_secs(5), Duration::from_secs(60));
        // A fresh HTTP/1.1 connection that sends nothing gets the header bound.
        let fresh = Activity::new(true);
        let t0 = Instant::now();
        assert_eq!(fresh.expired(header, idle).await, Expiry::Header);
        assert_eq!(t0.elapsed(), header);

        // After a request, an idle keep-alive connection gets the idle bound...
        let conn = Activity::new(true);
        drop(conn.begin().1);
        let t1 = Instant::now();
        assert_eq!(conn.expired(header, idle).await, Expiry::Idle);
        assert_eq!(t1.elapsed(), idle);

        // ...until a byte of the next request arrives: then the header bound, from that byte.
        tokio::time::advance(Duration::from_secs(1)).await;
        let t2 = Instant::now();
        conn.bytes_read();
        assert_eq!(conn.expired(header, idle).await, Expiry::Header);
        assert_eq!(t2.elapsed(), header);
        let (start, in_flight) = conn.begin();
        assert_eq!(start, t2, "the request starts at its first byte");

        // Nothing expires while a request is in flight.
        let waiting = conn.expired(header, idle);
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(idle * 10, &mut waiting).await.is_err(),
            "in flight"
        );
        drop(in_flight);
        assert_eq!(waiting.await, Expiry::Idle);

        // HTTP/2: bytes (pings) do not start a header deadline.
        let h2 = Activity::new(false);
        h2.bytes_read();
        let t3 = Instant::now();
        assert_eq!(h2.expired(header, idle).await, Expiry::Idle);
        assert_eq!(t3.elapsed(), idle);
    }
}
