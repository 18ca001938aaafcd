//! `entrypoint-guard audit`: arguments, cluster connection, and printing.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use super::output::{self, OutputFormat};
use crate::cluster::progress::TerminalLine;
use crate::cluster::report::EXIT_ERRORS;
use crate::cluster::{AuditOptions, run_with_progress};
use crate::config::{self, Config, Span};
use crate::engine::Scope;
use crate::image::registry::{
    ChainedCredentials, CredentialSource, DockerConfigCredentials, KubeCredentials, RegistryResolver,
};
use crate::image::{LayeredResolver, OfflineResolver, Resolver};

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
    /// Objects per list page.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk_size: u32,
    /// Deadline for each list request.
    #[arg(long, default_value = "30s", value_parser = Span::parse)]
    pub request_timeout: Span,
    /// Resolve images from their registries, as the webhook does, with each workload's pull secrets
    /// (needs `get` on secrets and serviceaccounts); --images and imageFacts still win for the images they name.
    #[arg(long)]
    pub resolve: bool,
    /// With --resolve: a Docker config file whose credentials are tried after the pull secrets' (helpers are never run).
    #[arg(long, value_name = "PATH", requires = "resolve")]
    pub docker_config: Option<PathBuf>,
    /// With --resolve: time allowed for the registry lookups of one object.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = Span::parse)]
    pub resolve_timeout: Span,
}

/// Runs the audit and prints the report; returns the exit code.
pub fn run(args: AuditArgs, config: &Config) -> u8 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("entrypoint-guard: cannot start the async runtime: {e}");
            return EXIT_ERRORS;
        }
    };
    runtime.block_on(run_async(args, config))
}

async fn run_async(args: AuditArgs, config: &Config) -> u8 {
    let mut entries = config.image_facts.clone();
    for file in &args.images {
        match config::load_image_facts(file) {
            Ok(more) => entries.extend(more),
            Err(e) => {
                eprintln!("entrypoint-guard: {e}");
                return EXIT_ERRORS;
            }
        }
    }
    let offline = OfflineResolver::new(config::facts_from(&entries));
    let docker_config = match args.docker_config.as_deref().map(DockerConfigCredentials::from_path) {
        Some(Ok(credentials)) => Some(credentials),
        Some(Err(e)) => {
            eprintln!("entrypoint-guard: docker config: {e}");
            return EXIT_ERRORS;
        }
        None => None,
    };
    let client = match crate::cluster::connect(args.kubeconfig.as_deref(), args.context.as_deref()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("entrypoint-guard: {e}");
            return EXIT_ERRORS;
        }
    };
    let resolver: Arc<dyn Resolver> = if args.resolve {
        // The webhook's credentials: the pull secrets of each workload and
        // of its ServiceAccount, read with the audit's own client.
        let mut sources: Vec<Arc<dyn CredentialSource>> = Vec::new();
        if config.registry.pull_secrets {
            sources.push(Arc::new(KubeCredentials::new(client.clone())));
        }
        if let Some(docker_config) = docker_config {
            sources.push(Arc::new(docker_config));
        }
        match RegistryResolver::new(&config.registry, Arc::new(ChainedCredentials::new(sources))) {
            Ok(registry) => Arc::new(LayeredResolver::new(offline, Arc::new(registry))),
            Err(e) => {
                eprintln!("entrypoint-guard: {e}");
                return EXIT_ERRORS;
            }
        }
    } else {
        Arc::new(offline)
    };
    let options = AuditOptions {
        namespaces: args.namespaces.clone(),
        include_owned: args.pods,
        page_size: args.chunk_size,
        request_timeout: args.request_timeout.get(),
        resolve_timeout: args.resolve_timeout.get(),
        ..AuditOptions::default()
    };
    let progress = TerminalLine::for_stderr();
    let mut policy = config.policy();
    policy.scope = args.scope.unwrap_or(policy.scope);
    let report = run_with_progress(&client, &options, resolver, &policy, progress.as_ref()).await;
    let text = match output::render(&report, args.output) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("entrypoint-guard: {e}");
            return EXIT_ERRORS;
        }
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        // A reader that closed the pipe (`| head`) chose to stop: not an error.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("entrypoint-guard: cannot write the report: {e}");
            return EXIT_ERRORS;
        }
    }
    report.exit_code(args.exit_zero)
}
