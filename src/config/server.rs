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
    /// How many answers `serve` remembers by what decided them (alike objects,
    /// such as the Pods of one ReplicaSet, are answered from memory), and how
    /// many request bodies it remembers the decode of (a body equal to one of
    /// them but for its uid and the strings the decode skips, as the Pods of
    /// one ReplicaSet are, is not decoded again; at most 4 MiB of bodies);
    /// 0 turns both off.
    #[serde(deserialize_with = "count_within::<0, 65_536, _, _>")]
    pub memo_answers: usize,
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
            memo_answers: 256,
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

#[cfg(test)]
mod tests {
    use crate::config::Config;

    /// Every duration key of the section, and a value in range.
    const SPANS: [(&str, &str); 10] = [
        ("certReloadInterval", "5s"),
        ("requestTimeout", "10s"),
        ("shutdownGrace", "20s"),
        ("tlsHandshakeTimeout", "5s"),
        ("headerReadTimeout", "10s"),
        ("bodyReadTimeout", "10s"),
        ("idleTimeout", "90s"),
        ("http2KeepAliveInterval", "30s"),
        ("http2KeepAliveTimeout", "10s"),
        ("requestTimeout", "1m"),
    ];
    /// Every size or count key, and a value in range.
    const COUNTS: [(&str, &str); 5] = [
        ("maxBodyBytes", "4194304"),
        ("maxInFlightBodyBytes", "33554432"),
        ("maxConnections", "512"),
        ("maxHeaderBytes", "65536"),
        ("http2MaxConcurrentStreams", "100"),
    ];

    fn error(key: &str, value: &str) -> String {
        let yaml = format!("mode: fix\nserver:\n  {key}: {value}\n");
        match Config::from_yaml(&yaml, "c.yaml") {
            Ok(_) => panic!("server.{key}: {value} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_duration_rejects_zero_negative_and_absurd_values_at_its_line() {
        for (key, good) in SPANS {
            Config::from_yaml(&format!("server:\n  {key}: {good}\n"), "c.yaml")
                .unwrap_or_else(|e| panic!("{key}: {good}: {e}"));
            for bad in ["0s", "0ms", "-1s", "1000h", "99999999999999999999h"] {
                let e = error(key, bad);
                assert!(e.starts_with("c.yaml:3:"), "{key}: {bad}: {e}");
                assert!(e.contains(&format!("server.{key}")), "{key}: {bad}: {e}");
            }
            assert!(error(key, "0s").contains("out of range"), "{key}");
        }
        // The reload task's interval: zero used to panic it at startup.
        let e = error("certReloadInterval", "0s");
        assert!(e.contains("must be between 100ms and 60m"), "{e}");
    }

    #[test]
    fn every_size_and_count_rejects_zero_negative_and_absurd_values_at_its_line() {
        for (key, good) in COUNTS {
            Config::from_yaml(&format!("server:\n  {key}: {good}\n"), "c.yaml")
                .unwrap_or_else(|e| panic!("{key}: {good}: {e}"));
            for bad in ["0", "-1", "1099511627776", "1.5", "lots"] {
                let e = error(key, bad);
                assert!(e.starts_with("c.yaml:3:"), "{key}: {bad}: {e}");
                assert!(e.contains(&format!("server.{key}")), "{key}: {bad}: {e}");
            }
            assert!(error(key, "0").contains("out of range"), "{key}");
        }
    }

    #[test]
    fn the_memo_size_may_be_zero_but_not_negative_or_absurd() {
        for good in ["0", "1", "256", "65536"] {
            let config = Config::from_yaml(&format!("server:\n  memoAnswers: {good}\n"), "c.yaml")
                .unwrap_or_else(|e| panic!("memoAnswers: {good}: {e}"));
            assert_eq!(config.server.memo_answers.to_string(), good);
        }
        for bad in ["-1", "65537", "1.5", "lots"] {
            let e = error("memoAnswers", bad);
            assert!(e.starts_with("c.yaml:3:"), "{bad}: {e}");
            assert!(e.contains("server.memoAnswers"), "{bad}: {e}");
        }
        assert!(error("memoAnswers", "65537").contains("must be between 0 and 65536"));
    }

    #[test]
    fn the_body_budget_holds_at_least_one_largest_body() {
        let yaml = "server:\n  maxBodyBytes: 8388608\n  maxInFlightBodyBytes: 4194304\n";
        let path = std::env::temp_dir().join(format!("eg-server-{}.yaml", std::process::id()));
        std::fs::write(&path, yaml).unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(
            e.contains(":3:1: server.maxInFlightBodyBytes: 4194304 is less than maxBodyBytes"),
            "{e}"
        );
    }
}
