//! Settings of the `serve` front end (the HTTPS webhook).
//!
//! Every duration and size is checked against a range while it is read
//! (`values::span_within`, `values::count_within`): a zero interval, a
//! timeout of a year or a size of a byte is a configuration error with its
//! line, not a panic or an unbounded server later.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::values::{Span, count_within, span_within};
pub use crate::admission::OnError;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// The `server` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct ServerConfig {
    /// Address of the HTTPS admission listener.
    pub listen: SocketAddr,
    /// PEM certificate chain file.
    pub tls_cert: PathBuf,
    /// PEM private key file.
    pub tls_key: PathBuf,
    /// How often the certificate files' content is checked for changes.
    #[serde(deserialize_with = "span_within::<100, 3_600_000, _>")]
    pub cert_reload_interval: Span,
    /// Address of the plain-HTTP health and metrics listener; `null` turns it off.
    pub health_listen: Option<SocketAddr>,
    /// Largest admission request body accepted.
    #[serde(deserialize_with = "count_within::<1024, 67_108_864, _, _>")]
    pub max_body_bytes: usize,
    /// The budget for one admission when the API server states none.
    #[serde(deserialize_with = "span_within::<100, 300_000, _>")]
    pub request_timeout: Span,
    /// What to answer on internal errors and blown deadlines.
    pub on_error: OnError,
    /// How long in-flight requests may take to finish on shutdown.
    #[serde(deserialize_with = "span_within::<100, 600_000, _>")]
    pub shutdown_grace: Span,
    /// The most connections open at once, per listener; more are closed as
    /// soon as they are accepted.
    #[serde(deserialize_with = "count_within::<1, 65_536, _, _>")]
    pub max_connections: usize,
    /// The most bytes of request bodies held at once, all requests together;
    /// a request that would go over is answered 503 at once.
    #[serde(deserialize_with = "count_within::<1024, 1_073_741_824, _, _>")]
    pub max_in_flight_body_bytes: usize,
    /// The longest a TLS handshake may take.
    #[serde(deserialize_with = "span_within::<100, 60_000, _>")]
    pub tls_handshake_timeout: Span,
    /// HTTP/1.1: the longest from a request's first byte to the end of its head.
    #[serde(deserialize_with = "span_within::<100, 300_000, _>")]
    pub header_read_timeout: Span,
    /// The longest from a request's arrival to the last byte of its body,
    /// whatever `?timeout=` says.
    #[serde(deserialize_with = "span_within::<100, 300_000, _>")]
    pub body_read_timeout: Span,
    /// A connection with no request in flight is closed after this long
    /// (HTTP/1.1 keep-alive; HTTP/2 gets a GOAWAY).
    #[serde(deserialize_with = "span_within::<1_000, 3_600_000, _>")]
    pub idle_timeout: Span,
    /// Largest request head (HTTP/1.1 read buffer, HTTP/2 header list).
    #[serde(deserialize_with = "count_within::<8192, 1_048_576, _, _>")]
    pub max_header_bytes: usize,
    /// HTTP/2: the most streams a client may have open on one connection.
    #[serde(deserialize_with = "count_within::<1, 1_000, _, _>")]
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2: how often an otherwise silent connection is pinged.
    #[serde(deserialize_with = "span_within::<1_000, 3_600_000, _>")]
    pub http2_keep_alive_interval: Span,
    /// HTTP/2: how long a ping may go unanswered before the connection is closed.
    #[serde(deserialize_with = "span_within::<100, 300_000, _>")]
    pub http2_keep_alive_timeout: Span,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            tls_cert: PathBuf::from("/etc/entrypoint-guard/tls/tls.crt"),
            tls_key: PathBuf::from("/etc/entrypoint-guard/tls/tls.key"),
            cert_reload_interval: Span(Duration::from_secs(5)),
            health_listen: Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
            max_body_bytes: 4 * MIB,
            request_timeout: Span(Duration::from_secs(10)),
            on_error: OnError::Allow,
            shutdown_grace: Span(Duration::from_secs(20)),
            max_connections: 512,
            max_in_flight_body_bytes: 32 * MIB,
            tls_handshake_timeout: Span(Duration::from_secs(5)),
            header_read_timeout: Span(Duration::from_secs(10)),
            body_read_timeout: Span(Duration::from_secs(10)),
            idle_timeout: Span(Duration::from_secs(90)),
            max_header_bytes: 64 * KIB,
            http2_max_concurrent_streams: 100,
            http2_keep_alive_interval: Span(Duration::from_secs(30)),
            http2_keep_alive_timeout: Span(Duration::from_secs(10)),
        }
    }
}

impl ServerConfig {
    /// Checks what no single key can: the field at fault and why.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.max_in_flight_body_bytes < self.max_body_bytes {
            return Err((
                "maxInFlightBodyBytes",
                format!(
                    "{} is less than maxBodyBytes ({}): a body of the largest accepted size could never be read",
                    self.max_in_flight_body_bytes, self.max_body_bytes
                ),
            ));
        }
        Ok(())
    }
}
