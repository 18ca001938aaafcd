//! `entrypoint-guard serve`: its arguments and entry point.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{Server, selfsigned};
use crate::cli::EXIT_USAGE;
use crate::config::{self, Config};

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
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval)]
    pub background_audit: Option<Duration>,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let interval = crate::config::Span::parse(s)?.get();
    if interval < Duration::from_secs(1) {
        return Err(format!(
            "{s:?} is too short for a cluster audit: use at least 1s (e.g. 10m)"
        ));
    }
    Ok(interval)
}

/// `--health-listen`: an address, or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthListen(pub Option<SocketAddr>);

fn parse_health_listen(s: &str) -> Result<HealthListen, String> {
    if s == "off" {
        return Ok(HealthListen(None));
    }
    s.parse()
        .map(|a| HealthListen(Some(a)))
        .map_err(|e| format!("{s:?} is neither an address (host:port) nor `off`: {e}"))
}

impl ServeArgs {
    /// Applies the arguments to `config`, writing self-signed certificates if asked.
    pub fn apply(&self, config: &mut Config) -> Result<(), String> {
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
            let files = selfsigned::write(dir).map_err(|e| format!("--self-signed: {e}"))?;
            eprintln!(
                "entrypoint-guard: wrote a development CA to {} (trust it to call the webhook)",
                files.ca.display()
            );
            server.tls_cert = files.cert;
            server.tls_key = files.key;
        }
        for path in &self.images {
            let entries = config::load_image_facts(path).map_err(|e| format!("--images: {e}"))?;
            config.image_facts.extend(entries);
        }
        Ok(())
    }
}

/// Runs `serve` until SIGTERM/SIGINT; returns the process exit code.
pub fn serve(args: &ServeArgs, mut config: Config) -> ExitCode {
    if let Err(e) = args.apply(&mut config) {
        eprintln!("entrypoint-guard: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("entrypoint-guard: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let resolver = match super::resolver::build(&config).await {
            Ok(resolver) => resolver,
            Err(e) => {
                eprintln!("entrypoint-guard: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let mut server = Server::new(config, resolver);
        if let Some(interval) = args.background_audit {
            match crate::cluster::connect(None, None).await {
                Ok(client) => {
                    server = server.with_background_audit(super::background::BackgroundAudit { client, interval })
                }
                Err(e) => {
                    eprintln!("entrypoint-guard: --background-audit needs a cluster: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            }
        }
        let running = match server.start().await {
            Ok(running) => running,
            Err(e) => {
                eprintln!("entrypoint-guard: {e}");
                return ExitCode::FAILURE;
            }
        };
        match running.run_until_signal().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("entrypoint-guard: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
