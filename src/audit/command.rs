//! `entrypoint-guard audit`: arguments, cluster connection, and printing.

use std::io::Write;
use std::path::PathBuf;

use super::output::{self, OutputError, OutputFormat};
use crate::cluster::progress::TerminalLine;
use crate::cluster::{AuditOptions, AuditReport, ConnectError, reports, run_with_progress};
use crate::config::values::{count_arg, span_arg};
use crate::config::{Config, Span};
use crate::engine::Scope;
use crate::registry::{CredentialFileError, DockerConfigCredentials};
use crate::resolver::{Credentials, ResolverError};

/// Arguments of `audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Kubeconfig context to use (default: the current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else the in-cluster service account).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace to audit; repeat for several (default: all namespaces).
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Also report objects whose owner is audited too: a ReplicaSet's Pods, a Deployment's ReplicaSets, a CronJob's Jobs.
    #[arg(long)]
    pub pods: bool,
    /// Scope instead of the configured one, for what the webhook would apply: workloads or pods (only Pods).
    #[arg(long)]
    pub scope: Option<Scope>,
    /// Report format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Exit 0 even when there are findings (errors still exit 2).
    #[arg(long)]
    pub exit_zero: bool,
    /// Image facts file (YAML or JSON map of image → entrypoint/digest); repeatable.
    #[arg(long = "images", value_name = "FILE")]
    pub images: Vec<PathBuf>,
    /// Objects per list page (1 to 10000: a page is held in memory whole).
    #[arg(long, default_value_t = 500, value_parser = count_arg::<1, 10_000>)]
    pub chunk_size: u32,
    /// Deadline for each list request.
    #[arg(long, default_value = "30s", value_parser = span_arg::<100, 3_600_000>)]
    pub request_timeout: Span,
    /// Resolve images from their registries, as the webhook does, with each workload's pull secrets
    /// (needs `get` on secrets and serviceaccounts); --images and imageFacts still win for the images they name.
    #[arg(long)]
    pub resolve: bool,
    /// With --resolve: a Docker config file whose credentials are tried after the pull secrets' (helpers are never run).
    #[arg(long, value_name = "PATH", requires = "resolve")]
    pub docker_config: Option<PathBuf>,
    /// With --resolve: time allowed for the registry lookups of one object.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = span_arg::<100, 3_600_000>)]
    pub resolve_timeout: Span,
    /// Also write the findings to the cluster as PolicyReports (openreports.io Reports, else
    /// wgpolicyk8s.io PolicyReports, whichever is served), one per audited namespace.
    #[arg(long)]
    pub report_to_cluster: bool,
    /// With --report-to-cluster: also a `pass` result per audited workload without findings.
    #[arg(long, requires = "report_to_cluster")]
    pub report_passes: bool,
}

/// Why `audit` could not run (what could not be listed is in the report).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuditCommandError {
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// An `--images` file or the registry settings cannot be used.
    #[error(transparent)]
    Resolver(#[from] ResolverError),
    /// The `--docker-config` file cannot be read.
    #[error("docker config: {0}")]
    DockerConfig(#[from] CredentialFileError),
    /// No client for the cluster.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The report could not be rendered.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// `--report-to-cluster` found no report API, or could not write.
    #[error("--report-to-cluster: {0}")]
    Reports(String),
    /// The report could not be written to standard output.
    #[error("cannot write the report: {0}")]
    Write(#[source] std::io::Error),
}

/// Runs the audit and prints the report; returns it (the command line turns
/// it into an exit status).
pub(crate) fn run(args: AuditArgs, config: &Config) -> Result<AuditReport, AuditCommandError> {
    let runtime = crate::runtime::build(Some(2)).map_err(AuditCommandError::Runtime)?;
    runtime.block_on(run_async(args, config))
}

async fn run_async(args: AuditArgs, config: &Config) -> Result<AuditReport, AuditCommandError> {
    let docker_config = args
        .docker_config
        .as_deref()
        .map(DockerConfigCredentials::from_path)
        .transpose()?;
    let client = crate::cluster::connect(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
    // With --resolve, the webhook's credentials: the pull secrets of each
    // workload and of its ServiceAccount, read with the audit's own client;
    // then the --docker-config file.
    let registries = args.resolve.then(|| Credentials {
        pull_secrets: config.registry.pull_secrets.then(|| client.clone()),
        docker_config,
    });
    let resolver = crate::resolver::build(config, &args.images, registries)?;
    let options = AuditOptions {
        namespaces: args.namespaces.clone(),
        include_owned: args.pods,
        page_size: args.chunk_size,
        request_timeout: args.request_timeout.get(),
        resolve_timeout: args.resolve_timeout.get(),
        keep_passed: args.report_passes,
        // Only `-o yaml` prints the objects (fixed).
        keep_objects: args.output == OutputFormat::Yaml,
        ..AuditOptions::default()
    };
    let progress = TerminalLine::for_stderr();
    let mut policy = config.policy();
    policy.scope = args.scope.unwrap_or(policy.scope);
    let report = run_with_progress(&client, &options, resolver, &policy, progress.as_ref()).await;
    if args.report_to_cluster {
        write_reports(&client, &report, &args).await?;
    }
    let text = output::render(&report, args.output)?;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        // A reader that closed the pipe (`| head`) chose to stop: not an error.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(AuditCommandError::Write(e));
        }
    }
    Ok(report)
}

/// `--report-to-cluster`: the reports, with the API discovery finds.
async fn write_reports(client: &kube::Client, report: &AuditReport, args: &AuditArgs) -> Result<(), AuditCommandError> {
    let fail = |e: reports::ReportsError| AuditCommandError::Reports(e.to_string());
    let api = reports::discover(client).await.map_err(fail)?.ok_or_else(|| {
        AuditCommandError::Reports(
            "the API server serves neither openreports.io/v1alpha1 nor wgpolicyk8s.io/v1alpha2 (install one of their CRDs)".into(),
        )
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let written = reports::write(client, &api, report, &args.namespaces, args.report_passes, now)
        .await
        .map_err(fail)?;
    tracing::info!(api = %api.api_version(), applied = written.applied, deleted = written.deleted, "reports written");
    if written.failed.is_empty() {
        return Ok(());
    }
    let failed: Vec<String> = written.failed.iter().map(ToString::to_string).collect();
    Err(AuditCommandError::Reports(format!(
        "{} of {} reports not written (the others were): {}",
        failed.len(),
        failed.len() + written.applied,
        failed.join("; ")
    )))
}
