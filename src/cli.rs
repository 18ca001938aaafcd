//! The command line: one binary, one subcommand per front end.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::server::ServeCommandError;

/// Keeps chalk-wrapped image entrypoints running in Kubernetes and pins images to digests.
#[derive(Debug, Parser)]
#[command(name = "entrypoint-guard", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (YAML); every field has a default.
    #[arg(long, global = true, env = "ENTRYPOINT_GUARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `entrypoint_guard=debug` (RUST_LOG also works).
    #[arg(long, global = true, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a configuration file and print the effective configuration.
    Config,
    /// Serve the HTTPS admission webhook.
    Serve(crate::server::ServeArgs),
    /// Review manifests offline: what the webhook would change, as text, YAML, JSON or SARIF.
    Review(crate::review::ReviewArgs),
    /// Audit a live cluster: list workloads and report those that bypass their chalk wrapper.
    Audit(crate::audit::AuditArgs),
    /// Run as a KRM function (kustomize, kpt): a ResourceList on standard input, fixed on standard output.
    Krm(crate::krm::KrmArgs),
    /// Print the kinds inspected (built-in and customKinds), or with --chart the Helm chart's files/kinds.yaml.
    Kinds(KindsArgs),
}

/// `entrypoint-guard kinds`.
#[derive(Debug, clap::Args)]
pub struct KindsArgs {
    /// Print the built-in kinds and every preset `customKinds` may name, as the Helm chart's
    /// files/kinds.yaml holds them (its webhook rules and RBAC are built from it).
    #[arg(long)]
    pub chart: bool,
}

/// Exit status when `review` or `audit` found something (unless `--exit-zero`).
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status for usage, configuration and parse errors, and when part of
/// the input could not be reviewed or of the cluster could not be audited.
/// The exit statuses are decided here and nowhere else: the front ends say
/// what happened, this module says what it means to a shell.
pub const EXIT_USAGE: u8 = 2;

/// Loads the configuration named by `--config`, or the defaults.
pub fn load_config(path: Option<&PathBuf>) -> Result<Config, crate::config::ConfigError> {
    match path {
        Some(path) => Config::load(path),
        None => Ok(Config::default()),
    }
}

/// Sets up logging on stderr. Lines are written by a background thread
/// through a bounded, lossy queue (`crate::logging`), so a request never
/// waits on a slow stderr (a full pipe, a busy log collector): when the
/// queue is full, lines are dropped and counted
/// (`entrypoint_guard_log_lines_dropped_total`). Keep the guard until exit:
/// dropping it flushes.
pub fn init_logging(format: LogFormat, filter: &str) -> tracing_appender::non_blocking::WorkerGuard {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = crate::logging::lossy_writer(crate::logging::batched_stderr(), crate::logging::QUEUE_LINES);
    // Colour codes only for a person at a terminal: in a container's log
    // they are noise, and styling every field costs ~10% of a busy webhook's CPU.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    guard
}

/// Runs the command line; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let _flush_logs_on_exit = init_logging(cli.log_format, &cli.log_level);
    let config = match load_config(cli.config.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("entrypoint-guard: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match cli.command {
        Command::Serve(args) => match crate::server::serve(&args, config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("entrypoint-guard: {e}");
                match e {
                    // Serving failed, or could not start: not the user's input.
                    ServeCommandError::Runtime(_) | ServeCommandError::Serve(_) => ExitCode::FAILURE,
                    _ => ExitCode::from(EXIT_USAGE),
                }
            }
        },
        Command::Review(args) => match crate::review::run(&args, &config, cli.config.as_ref()) {
            Ok(review) => outcome(
                !review.problems.is_empty(),
                review.findings().next().is_some(),
                args.exit_zero,
            ),
            Err(e) => {
                eprintln!("entrypoint-guard: {e}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Config => match serde_saphyr::to_string(&config) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("entrypoint-guard: cannot print configuration: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Audit(args) => {
            let exit_zero = args.exit_zero;
            match crate::audit::command::run(args, &config) {
                Ok(report) => outcome(!report.errors.is_empty(), report.has_findings(), exit_zero),
                Err(e) => {
                    eprintln!("entrypoint-guard: {e}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
        // Whatever it found, the function succeeded unless it wrote an error result.
        Command::Krm(args) => match crate::krm::run(&args, &config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("entrypoint-guard: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Kinds(args) => {
            if args.chart {
                print!("{}", crate::engine::kinds::chart_file());
            } else {
                for kind in config.policy().kinds.iter() {
                    print!("{}", kind.to_yaml(""));
                }
            }
            ExitCode::SUCCESS
        }
    }
}

/// The exit status of `review` and `audit`: 2 when part of the input could
/// not be reviewed (or of the cluster audited), else 1 when there are
/// findings (0 with `--exit-zero`), else 0.
pub fn outcome(incomplete: bool, findings: bool, exit_zero: bool) -> ExitCode {
    if incomplete {
        ExitCode::from(EXIT_USAGE)
    } else if findings && !exit_zero {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}
