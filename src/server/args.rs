//! `entrypoint-guard serve`: its arguments and entry point.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{Server, selfsigned};
use crate::cluster::ConnectError;
use crate::config::values::span_arg;
use crate::config::{Config, Span};
use crate::image::Resolver;
use crate::resolver::{Credentials, ResolverError};

/// Arguments of `serve`; each overrides the `server` section of the configuration.
#[derive(Clone, Debug, Default, Args)]
pub struct ServeArgs {
    /// Address of the HTTPS admission listener (server.listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address of the plain-HTTP health and metrics listener, or `off` (server.healthListen).
    #[arg(long, value_name = "ADDR|off", value_parser = parse_health_listen)]
    pub health_listen: Option<HealthListen>,
    /// PEM certificate chain (server.tlsCert).
    #[arg(long, value_name = "FILE", conflicts_with = "self_signed")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (server.tlsKey).
    #[arg(long, value_name = "FILE", conflicts_with = "self_signed")]
    pub tls_key: Option<PathBuf>,
    /// Write a fresh CA (ca.crt) and a serving certificate for localhost and
    /// 127.0.0.1 (tls.crt, tls.key) into DIR and serve with them.
    #[arg(long, value_name = "DIR")]
    pub self_signed: Option<PathBuf>,
    /// Offline image facts (YAML or JSON: image → {entrypoint, platforms, digest});
    /// repeatable, later files win over earlier ones and over `imageFacts`.
    #[arg(long = "images", value_name = "FILE")]
    pub images: Vec<PathBuf>,
    /// Audit existing workloads in the cluster every INTERVAL (e.g. `10m`) and
    /// export the counts as `entrypoint_guard_audit_*` gauges; needs list on
    /// every pod-template kind (deploy/audit/clusterrole.yaml).
    /// At least 1s (a cluster-wide list more often is a load on the API
    /// server, not an audit), at most 24h.
    #[arg(long, value_name = "INTERVAL", value_parser = span_arg::<1_000, 86_400_000>)]
    pub background_audit: Option<Span>,
    /// With --background-audit: write its findings as PolicyReports
    /// (openreports.io Reports, else wgpolicyk8s.io PolicyReports, whichever
    /// the API server serves), one per namespace.
    #[arg(long, requires = "background_audit")]
    pub policy_reports: bool,
    /// With --policy-reports: also a `pass` result per audited workload without findings.
    #[arg(long, requires = "policy_reports")]
    pub policy_report_passes: bool,
}

/// A `serve` argument that cannot be used.
#[derive(Debug, thiserror::Error)]
enum ArgError {
    /// `--health-listen` is neither an address nor `off`.
    #[error("{value:?} is neither an address (host:port) nor `off`: {source}")]
    HealthListen {
        /// What was written.
        value: String,
        /// Why it is no address.
        source: std::net::AddrParseError,
    },
}

/// `--health-listen`: an address, or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthListen(pub Option<SocketAddr>);

fn parse_health_listen(s: &str) -> Result<HealthListen, ArgError> {
    if s == "off" {
        return Ok(HealthListen(None));
    }
    s.parse()
        .map(|a| HealthListen(Some(a)))
        .map_err(|source| ArgError::HealthListen {
            value: s.to_string(),
            source,
        })
}

/// Why `serve` could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeCommandError {
    /// `--self-signed` could not write its certificates.
    #[error("--self-signed: {0}")]
    SelfSigned(#[source] super::selfsigned::SelfSignedError),
    /// The image resolver cannot be built (an `--images` file, the registry settings).
    #[error(transparent)]
    Resolver(#[from] ResolverError),
    /// `--background-audit` was asked for but there is no cluster to audit.
    #[error("--background-audit needs a cluster: {0}")]
    NoCluster(#[source] ConnectError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The server could not start or failed while serving.
    #[error(transparent)]
    Serve(#[from] super::ServeError),
}

impl ServeArgs {
    /// Applies the listener and TLS arguments to `config`, writing
    /// self-signed certificates if asked.
    pub fn apply(&self, config: &mut Config) -> Result<(), ServeCommandError> {
        let server = &mut config.server;
        if let Some(listen) = self.listen {
            server.listen = listen;
        }
        if let Some(HealthListen(health)) = self.health_listen {
            server.health_listen = health;
        }
        if let Some(cert) = &self.tls_cert {
            server.tls_cert = cert.clone();
        }
        if let Some(key) = &self.tls_key {
            server.tls_key = key.clone();
        }
        if let Some(dir) = &self.self_signed {
            let files = selfsigned::write(dir).map_err(ServeCommandError::SelfSigned)?;
            eprintln!(
                "entrypoint-guard: wrote a development CA to {} (trust it to call the webhook)",
                files.ca.display()
            );
            server.tls_cert = files.cert;
            server.tls_key = files.key;
        }
        Ok(())
    }
}

/// The webhook's resolver (`crate::resolver`): the offline facts for the
/// images they name, the registries for the rest when `registry.enabled`.
///
/// With `registry.pullSecrets`, credentials come from each Pod's and its
/// ServiceAccount's `imagePullSecrets`, read through the Kubernetes API. When
/// no cluster configuration can be found (a laptop trying `--self-signed`),
/// lookups go anonymous and a warning says so. Must run inside the runtime
/// that will serve.
pub async fn resolver(config: &Config, image_files: &[PathBuf]) -> Result<Arc<dyn Resolver>, ResolverError> {
    if !config.registry.enabled {
        return crate::resolver::build(config, image_files, None);
    }
    let mut credentials = Credentials::default();
    if config.registry.pull_secrets {
        match crate::cluster::connect(None, None).await {
            Ok(client) => credentials.pull_secrets = Some(client),
            Err(e) => {
                tracing::warn!(error = %e, "registry.pullSecrets is on but there is no cluster to read pull secrets from; registry lookups are anonymous");
            }
        }
    }
    crate::resolver::build(config, image_files, Some(credentials))
}

/// Runs `serve` until SIGTERM/SIGINT.
pub fn serve(args: &ServeArgs, mut config: Config) -> Result<(), ServeCommandError> {
    args.apply(&mut config)?;
    let runtime = crate::runtime::build(None).map_err(ServeCommandError::Runtime)?;
    runtime.block_on(async move {
        let resolver = resolver(&config, &args.images).await?;
        let mut server = Server::new(config, resolver);
        if let Some(interval) = args.background_audit {
            let client = crate::cluster::connect(None, None)
                .await
                .map_err(ServeCommandError::NoCluster)?;
            let reports = args.policy_reports.then_some(super::background::ReportOptions {
                passes: args.policy_report_passes,
            });
            server = server.with_background_audit(super::background::BackgroundAudit {
                client,
                interval: interval.get(),
                reports,
            });
        }
        let running = server.start().await?;
        running.run_until_signal().await?;
        Ok(())
    })
}
