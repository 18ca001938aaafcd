//! Request bodies read under bounds, before the router sees them: the body
//! must arrive whole within `server.bodyReadTimeout` of the request's first
//! byte (whatever `?timeout=` says), may not exceed `server.maxBodyBytes`
//! (a chunked body is cut off at the limit, never read whole), and every
//! byte held counts against `server.maxInFlightBodyBytes`, shared by all
//! requests. A request that would go over that budget is answered 503 at
//! once: waiting for room would be an unbounded queue, and the API server
//! retries nothing itself but logs the answer's text.
//!
//! Large bodies may not take the last quarter of the budget: bytes past a
//! body's first [`SMALL_BODY`] are refused while that would leave less than
//! a quarter free. Clients stalling 4 MiB bodies thus fill at most three
//! quarters, and the ordinary AdmissionReview (tens of KiB) still finds room.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use bytes::BytesMut;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::metrics::{Metrics, Rejection, Route};

/// A body up to this size may use the whole budget; past it, only three quarters.
pub(crate) const SMALL_BODY: usize = 64 * 1024;

/// The body bounds, shared by every connection of a listener.
#[derive(Debug)]
pub(crate) struct BodyBounds {
    /// `server.maxBodyBytes`.
    pub(crate) max_body: usize,
    /// `server.bodyReadTimeout`.
    pub(crate) read_timeout: Duration,
    /// `server.maxInFlightBodyBytes`: one permit per byte held.
    pub(crate) budget: Arc<Semaphore>,
    /// The budget's size, for the 503's text.
    pub(crate) budget_bytes: usize,
}

/// A body read whole, and the budget its bytes hold until the request is answered.
pub(crate) struct Held {
    /// The body.
    pub(crate) body: Bytes,
    /// The budget the bytes hold; released when dropped.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

/// Why a body was not read: the answer to send instead.
#[derive(Debug)]
pub(crate) enum Refused {
    /// Declared or found to be over `maxBodyBytes`: 413.
    TooLarge(String),
    /// The budget of bytes in flight is spent: 503.
    Busy(String),
    /// Not whole within `bodyReadTimeout`: 408 (the connection is closed).
    Slow(String),
    /// The client broke off or sent garbage: 400.
    Broken(String),
}

impl Refused {
    /// The plain-text answer; the API server puts the text in its log and the
    /// user's error message.
    /// `http1`: whether to say `Connection: close` (HTTP/2 has no such header:
    /// the stream is reset instead).
    pub(crate) fn response(&self, metrics: &Metrics, path: &str, http1: bool) -> Response<Body> {
        let route = match path {
            "/mutate" => Some(Route::Mutate),
            "/audit" => Some(Route::Audit),
            _ => None,
        };
        let (status, why, rejection) = match self {
            Refused::TooLarge(why) => (StatusCode::PAYLOAD_TOO_LARGE, why, Some(Rejection::TooLarge)),
            Refused::Busy(why) => (StatusCode::SERVICE_UNAVAILABLE, why, None),
            Refused::Slow(why) => (StatusCode::REQUEST_TIMEOUT, why, None),
            Refused::Broken(why) => (StatusCode::BAD_REQUEST, why, Some(Rejection::BadRequest)),
        };
        if let (Some(route), Some(rejection)) = (route, rejection) {
            metrics.rejected(route, rejection);
        }
        match self {
            Refused::Busy(_) => metrics.transport().shed("body-budget"),
            Refused::Slow(_) => metrics.transport().timeout("admission", "body"),
            _ => {}
        }
        let mut response = Response::new(Body::from(format!("{why}\n")));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        match self {
            Refused::Busy(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Refused::Slow(_) | Refused::TooLarge(_) | Refused::Broken(_) if http1 => {
                // The rest of the body is not read: the connection cannot carry another request.
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

impl BodyBounds {
    /// Reads the body of `request`, whose first byte arrived at `start`.
    pub(crate) async fn read(&self, request: Request<Incoming>, start: Instant) -> Result<Request<Held>, Refused> {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(declared) = declared
            && declared > self.max_body as u64
        {
            return Err(Refused::TooLarge(format!(
                "length limit exceeded: the body declares {declared} bytes; at most {} are accepted (server.maxBodyBytes)",
                self.max_body
            )));
        }
        let (parts, body) = request.into_parts();
        let deadline = start + self.read_timeout;
        let read = self.collect(body);
        let held = match tokio::time::timeout_at(deadline, read).await {
            Ok(held) => held?,
            Err(_) => {
                return Err(Refused::Slow(format!(
                    "the request body did not arrive whole within {} ms (server.bodyReadTimeout)",
                    self.read_timeout.as_millis()
                )));
            }
        };
        Ok(Request::from_parts(parts, held))
    }

    /// Reads frames as they come, taking budget for each before keeping it.
    async fn collect(&self, mut body: Incoming) -> Result<Held, Refused> {
        let mut permit: Option<OwnedSemaphorePermit> = None;
        // No allocation from a declared length: memory grows only with bytes
        // received (and counted), so a client declaring 4 MiB and sending
        // nothing costs nothing. Frames are kept as hyper read them and joined
        // once at the end: growing one buffer by doubling would copy each body
        // several times and leave the allocator with freed blocks of every size.
        let mut frames: Vec<Bytes> = Vec::new();
        let mut held = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Refused::Broken(format!("cannot read the body: {e}")))?;
            let Ok(data) = frame.into_data() else { continue }; // trailers
            if data.is_empty() {
                continue;
            }
            if held + data.len() > self.max_body {
                return Err(Refused::TooLarge(format!(
                    "length limit exceeded: the body is over {} bytes (server.maxBodyBytes)",
                    self.max_body
                )));
            }
            let busy = || {
                Refused::Busy(format!(
                    "entrypoint-guard is busy: {} bytes of request bodies are already being read \
                     (server.maxInFlightBodyBytes); retry",
                    self.budget_bytes
                ))
            };
            if held + data.len() > SMALL_BODY
                && self.budget.available_permits().saturating_sub(data.len()) < self.budget_bytes / 4
            {
                return Err(busy());
            }
            let more = self
                .budget
                .clone()
                .try_acquire_many_owned(data.len() as u32)
                .map_err(|_| busy())?;
            match &mut permit {
                Some(p) => p.merge(more),
                None => permit = Some(more),
            }
            held += data.len();
            frames.push(data);
        }
        // One frame (the common case) is kept as is, without a copy.
        let body = match frames.len() {
            0 => Bytes::new(),
            1 => frames.swap_remove(0),
            _ => {
                let mut whole = BytesMut::with_capacity(held);
                for frame in frames.drain(..) {
                    whole.extend_from_slice(&frame);
                }
                whole.freeze()
            }
        };
        Ok(Held { body, permit })
    }
}
