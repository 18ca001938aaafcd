//! The HTTPS admission webhook: `POST /mutate` and `POST /audit` over TLS,
//! `/healthz`, `/readyz` and `/metrics` over plain HTTP.
//!
//! [`Server::new`] takes the configuration and the image [`Resolver`] — the
//! seam a registry resolver plugs into; [`Server::start`] binds both
//! listeners and returns a [`Running`] server that shuts down gracefully.

mod activity;
mod args;
pub mod background;
mod bodies;
pub(crate) mod histogram;
mod listener;
mod lookup_metrics;
pub mod metrics;
pub(crate) mod routes;
pub mod selfsigned;
pub mod tls;
mod transport_metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

pub use args::{ServeArgs, ServeCommandError, resolver, serve};
use bodies::BodyBounds;
use listener::Listener;
use metrics::Metrics;
use routes::{AppState, HealthState};
use tls::{TlsError, TlsFiles};

use crate::config::Config;
use crate::image::Resolver;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The serving certificate could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// A listener could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A listener failed while serving.
    #[error("{what} listener failed: {source}")]
    Serve {
        /// Which listener.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// A webhook ready to start.
pub struct Server {
    config: Config,
    resolver: Arc<dyn Resolver>,
    background_audit: Option<background::BackgroundAudit>,
}

impl Server {
    /// A server for `config` whose image facts come from `resolver`.
    pub fn new(config: Config, resolver: Arc<dyn Resolver>) -> Self {
        Server {
            config,
            resolver,
            background_audit: None,
        }
    }

    /// Also audits the cluster periodically and exports the counts as
    /// `entrypoint_guard_audit_*` gauges.
    pub fn with_background_audit(mut self, audit: background::BackgroundAudit) -> Self {
        self.background_audit = Some(audit);
        self
    }

    /// Loads the certificate, binds both listeners and starts serving.
    pub async fn start(self) -> Result<Running, ServeError> {
        let server = &self.config.server;
        let files = TlsFiles {
            cert: server.tls_cert.clone(),
            key: server.tls_key.clone(),
        };
        let loaded = files.load()?;
        let mut metrics = Metrics::new(&self.config.policy().kinds);
        metrics.add_collector(lookup_metrics::registry_collector(self.resolver.clone()));
        metrics.tls_certificate(loaded.not_after);
        let metrics = Arc::new(metrics);
        let health_state = Arc::new(HealthState {
            ready: AtomicBool::new(false),
            metrics: metrics.clone(),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        // `Some(grace)` stops a listener: the admission one on shutdown, the
        // health one once admission has stopped (readiness is reported to the end).
        let (health_stop, health_stop_rx) = watch::channel(None);
        let (admission_stop, admission_stop_rx) = watch::channel(None);

        let health = match server.health_listen {
            None => None,
            Some(addr) => {
                let tcp = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind {
                        what: "health",
                        addr,
                        source,
                    })?;
                let bound = tcp.local_addr().map_err(|source| ServeError::Bind {
                    what: "health",
                    addr,
                    source,
                })?;
                let listener = Listener {
                    name: "health",
                    tcp,
                    tls: None,
                    bodies: None,
                    app: routes::health_router(health_state.clone()),
                    metrics: metrics.clone(),
                };
                let config = server.clone();
                let task = tokio::spawn(async move { listener.serve(&config, health_stop_rx).await });
                Some((bound, task))
            }
        };

        let bind = |source| ServeError::Bind {
            what: "admission",
            addr: server.listen,
            source,
        };
        let tcp = std::net::TcpListener::bind(server.listen).map_err(bind)?;
        tcp.set_nonblocking(true).map_err(bind)?;
        let addr = tcp.local_addr().map_err(bind)?;
        let tcp = tokio::net::TcpListener::from_std(tcp).map_err(bind)?;
        let rustls = RustlsConfig::from_config(loaded.config);
        let state = Arc::new(AppState::new(&self.config, self.resolver.clone(), metrics.clone()));
        let listener = Listener {
            name: "admission",
            tcp,
            tls: Some(rustls.clone()),
            bodies: Some(Arc::new(BodyBounds {
                max_body: server.max_body_bytes,
                read_timeout: server.body_read_timeout.get(),
                budget: Arc::new(Semaphore::new(server.max_in_flight_body_bytes)),
                budget_bytes: server.max_in_flight_body_bytes,
            })),
            app: routes::admission_router(state, server.max_body_bytes),
            metrics: metrics.clone(),
        };
        let config = server.clone();
        let admission = tokio::spawn(async move { listener.serve(&config, admission_stop_rx).await });
        let watcher = tokio::spawn(tls::watch(
            files,
            rustls,
            loaded.hash,
            server.cert_reload_interval.get(),
            metrics.clone(),
        ));
        let background_audit = self.background_audit.map(|audit| {
            audit.spawn(
                self.resolver.clone(),
                self.config.policy(),
                metrics.clone(),
                stop_rx.clone(),
            )
        });
        health_state.ready.store(true, Ordering::Release);
        tracing::info!(%addr, health = ?health.as_ref().map(|h| h.0), mode = self.config.mode.as_str(), "serving admission requests");
        Ok(Running {
            addr,
            health_addr: health.as_ref().map(|h| h.0),
            admission_stop,
            health_stop,
            grace: server.shutdown_grace.get(),
            health_state,
            stop: stop_tx,
            admission,
            health: health.map(|h| h.1),
            watcher,
            background_audit,
            metrics,
        })
    }
}

/// A started server.
pub struct Running {
    addr: SocketAddr,
    health_addr: Option<SocketAddr>,
    admission_stop: watch::Sender<Option<Duration>>,
    health_stop: watch::Sender<Option<Duration>>,
    grace: Duration,
    health_state: Arc<HealthState>,
    stop: watch::Sender<bool>,
    admission: JoinHandle<std::io::Result<()>>,
    health: Option<JoinHandle<std::io::Result<()>>>,
    watcher: JoinHandle<()>,
    background_audit: Option<JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl Running {
    /// The address the HTTPS admission listener is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the plain-HTTP health listener, if on.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_addr
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Stops accepting connections and lets in-flight requests finish
    /// (within `server.shutdown_grace`); [`Running::wait`] returns when done.
    pub fn shutdown(&self) {
        self.health_state.ready.store(false, Ordering::Release);
        let _ = self.admission_stop.send(Some(self.grace));
    }

    /// Waits until the server has stopped (after [`Running::shutdown`] or a failure).
    pub async fn wait(self) -> Result<(), ServeError> {
        let served = self.admission.await;
        self.watcher.abort();
        let _ = self.stop.send(true);
        let _ = self.health_stop.send(Some(self.grace));
        if let Some(audit) = self.background_audit {
            let _ = audit.await; // returns at once: it watches `stop`
        }
        if let Some(health) = self.health
            && let Ok(Err(source)) = health.await
        {
            return Err(ServeError::Serve { what: "health", source });
        }
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ServeError::Serve {
                what: "admission",
                source,
            }),
            Err(join) => Err(ServeError::Serve {
                what: "admission",
                source: std::io::Error::other(join),
            }),
        }
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully.
    pub async fn run_until_signal(self) -> Result<(), ServeError> {
        shutdown_signal().await;
        tracing::info!(grace = ?self.grace, "shutting down: finishing in-flight requests");
        self.shutdown();
        self.wait().await
    }
}

/// Resolves on SIGTERM (what the kubelet sends) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
