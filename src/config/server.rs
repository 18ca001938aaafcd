//! Settings of the `serve` front end (the HTTPS webhook).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::values::Span;
pub use crate::admission::OnError;

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
    pub cert_reload_interval: Span,
    /// Address of the plain-HTTP health and metrics listener; `null` turns it off.
    pub health_listen: Option<SocketAddr>,
    /// Largest admission request body accepted.
    pub max_body_bytes: usize,
    /// The budget for one admission when the API server states none.
    pub request_timeout: Span,
    /// What to answer on internal errors and blown deadlines.
    pub on_error: OnError,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_grace: Span,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            tls_cert: PathBuf::from("/etc/entrypoint-guard/tls/tls.crt"),
            tls_key: PathBuf::from("/etc/entrypoint-guard/tls/tls.key"),
            cert_reload_interval: Span(Duration::from_secs(5)),
            health_listen: Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
            max_body_bytes: 4 * 1024 * 1024,
            request_timeout: Span(Duration::from_secs(10)),
            on_error: OnError::Allow,
            shutdown_grace: Span(Duration::from_secs(20)),
        }
    }
}
