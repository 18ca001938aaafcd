//! `review`: the offline dry run over manifests and Helm chart sources.
//!
//! Reads manifests (files, directories, standard input, multi-document
//! YAML), puts every document through the engine with offline image facts,
//! and reports what would change — or prints the fixed documents, or writes
//! the fixes back into the files ([`write`]). A thin front end: every
//! decision is [`crate::engine::inspect`]'s.

pub(crate) mod chart;
pub(crate) mod documents;
pub mod locate;
pub(crate) mod model;
pub mod report;
pub mod reviewer;
pub mod source;
pub mod write;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use crate::config::{Config, Span};
use crate::engine::{Mode, Policy, Scope, Strategy};
use crate::registry::{CredentialFileError, DockerConfigCredentials};
use crate::resolver::{Credentials, ResolverError};
pub use model::{Counts, DocumentReview, FileReview, Item, Problem, Review};
pub use reviewer::{FactSource, Reviewer};
pub use source::{Input, Source};

/// `entrypoint-guard review`: what the webhook would change, offline.
#[derive(Clone, Debug, Args)]
#[command(
    after_help = "Exit status: 0 nothing to fix, 1 findings (0 with --exit-zero), 2 usage or parse error, \
    or a file --write could not write.\n\
    A directory holding Chart.yaml is reviewed as a Helm chart (as with --chart); charts are never rewritten.",
    group(clap::ArgGroup::new("writes").multiple(true))
)]
pub struct ReviewArgs {
    /// Manifest file, directory (recursive *.yaml, *.yml, *.json) or `-` for standard input. Repeatable.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "PATH",
        required_unless_present_any = ["chart", "paths"]
    )]
    pub filenames: Vec<PathBuf>,
    /// More manifests, as with -f (how pre-commit passes the files it checks).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Helm chart directory: report `command:` in values*.yaml and templates/. Repeatable.
    #[arg(long, value_name = "DIR")]
    pub chart: Vec<PathBuf>,
    /// Report format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Where image facts come from: files, the configuration, registries.
    #[command(flatten)]
    pub facts: FactArgs,
    /// Exit 0 even when there are findings (parse and usage errors still exit 2).
    #[arg(long)]
    pub exit_zero: bool,
    /// Mode instead of the configured one: fix, audit or off.
    #[arg(long)]
    pub mode: Option<Mode>,
    /// Fix strategy instead of the configured one: auto, args or prepend.
    #[arg(long)]
    pub strategy: Option<Strategy>,
    /// Scope instead of the configured one: workloads (workloads and Pods are fixed) or pods (only Pods).
    #[arg(long)]
    pub scope: Option<Scope>,
    /// Write the fixes into the manifest files in place. Only the fixed `command`, `args` and
    /// `image` values change; comments, key order, quoting and indentation stay as written.
    #[arg(long, group = "writes")]
    pub write: bool,
    /// Print the fixes as a unified diff of the files instead of the report (with --write: what
    /// was written; alone: what --write would write).
    #[arg(long, group = "writes", conflicts_with = "output")]
    pub diff: bool,
    /// With --write or --diff: also add the annotation recording pinned digests.
    #[arg(long, requires = "writes")]
    pub annotate: bool,
}

/// Where `review` and `krm` get image facts: the configuration's
/// `imageFacts`, `--images` files over them, and with `--resolve` the registries.
#[derive(Clone, Debug, Args)]
pub struct FactArgs {
    /// Offline image facts (map of image → entrypoint/platforms/digest), over the configuration's imageFacts.
    #[arg(long, value_name = "FILE")]
    pub images: Vec<PathBuf>,
    /// Resolve images from their registries (digests and image configs), as the webhook does;
    /// offline facts (--images, imageFacts) still win for the images they name.
    #[arg(long)]
    pub resolve: bool,
    /// Docker config file with registry credentials for --resolve
    /// (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json, if present). Helpers are never run.
    #[arg(long, value_name = "PATH", requires = "resolve")]
    pub docker_config: Option<PathBuf>,
    /// With --resolve: time allowed for the registry lookups of one input (its documents are resolved together).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::config::values::span_arg::<100, 3_600_000>)]
    pub resolve_timeout: Span,
}

impl Default for FactArgs {
    /// Offline: the configuration's facts only.
    fn default() -> Self {
        FactArgs {
            images: Vec::new(),
            resolve: false,
            docker_config: None,
            resolve_timeout: Span(std::time::Duration::from_secs(30)),
        }
    }
}

/// Report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A block per finding and a unified diff per changed document.
    Text,
    /// Every document with the fixes applied, for `kubectl apply -f -`.
    Yaml,
    /// Machine-readable report.
    Json,
    /// SARIF 2.1.0 for code-scanning UIs.
    Sarif,
}

/// Why `review` could not run (or could not write its report).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// An `--images` file or the registry settings cannot be used.
    #[error(transparent)]
    Resolver(#[from] ResolverError),
    /// The Docker config for `--resolve` cannot be read.
    #[error("docker config: {0}")]
    DockerConfig(#[from] CredentialFileError),
    /// The async runtime for `--resolve` could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The report could not be written to standard output.
    #[error("cannot write the report: {0}")]
    Write(#[source] std::io::Error),
    /// `--write` was asked to write standard input back.
    #[error("--write cannot write standard input back; use --diff, or name the files with -f")]
    WriteStdin,
}

/// The reviewer `args` and `config` ask for: the configured policy with the
/// command-line overrides, and the facts [`reviewer_with`] finds.
pub fn reviewer(args: &ReviewArgs, config: &Config) -> Result<Reviewer, ReviewError> {
    let mut policy = config.policy();
    policy.mode = args.mode.unwrap_or(policy.mode);
    policy.strategy = args.strategy.unwrap_or(policy.strategy);
    policy.scope = args.scope.unwrap_or(policy.scope);
    reviewer_with(policy, config, &args.facts)
}

/// A reviewer applying `policy` with the image facts of `crate::resolver`:
/// the offline ones (the configuration's, each `--images` file over them),
/// and with `--resolve` the registries for every other image, with the
/// Docker config's credentials (`--docker-config`, or
/// `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` when present).
pub(crate) fn reviewer_with(policy: Policy, config: &Config, facts: &FactArgs) -> Result<Reviewer, ReviewError> {
    let offline = crate::resolver::offline(config, &facts.images).map_err(ResolverError::from)?;
    if !facts.resolve {
        return Ok(Reviewer::new(policy, offline));
    }
    let docker_config = match facts.docker_config.as_deref() {
        Some(path) => DockerConfigCredentials::from_path(path)?,
        None => DockerConfigCredentials::from_default_location()?,
    };
    let credentials = Credentials {
        pull_secrets: None,
        docker_config: Some(docker_config),
    };
    // Two workers run the lookups and the registry guard while review blocks.
    let runtime = Arc::new(crate::runtime::build(Some(2)).map_err(ReviewError::Runtime)?);
    let resolver = {
        let _entered = runtime.enter();
        crate::resolver::with_registries(config, offline, credentials).map_err(ResolverError::from)?
    };
    let source = FactSource::Resolver {
        resolver,
        timeout: facts.resolve_timeout.get(),
        runtime,
    };
    Ok(Reviewer::with_source(policy, source))
}

/// Reviews every input: manifests through the engine, charts through the
/// chart scanner. Unreadable inputs become problems; the rest is reviewed.
/// Directory walks leave out the files in `skip`.
pub fn review(reviewer: &Reviewer, filenames: &[PathBuf], charts: &[PathBuf], skip: &[PathBuf]) -> Review {
    let mut review = Review::default();
    let mut inputs = Vec::new();
    for path in filenames {
        match source::expand(std::slice::from_ref(path), skip) {
            Ok(expanded) => inputs.extend(expanded),
            Err(problem) => review.problems.push(problem),
        }
    }
    inputs.extend(charts.iter().cloned().map(Input::Chart));
    for input in inputs {
        match input {
            Input::Manifest(path) => match source::read(&path) {
                Ok(source) => {
                    let mut file = reviewer.review(&source, &mut review.problems);
                    file.path = (path.as_os_str() != "-").then_some(path);
                    review.files.push(file);
                }
                Err(problem) => review.problems.push(problem),
            },
            Input::Chart(dir) => chart::scan(
                &dir,
                reviewer.policy(),
                &mut review.chart_findings,
                &mut review.problems,
            ),
        }
    }
    review
}

/// The report in `format`.
pub fn render(review: &Review, format: Format) -> String {
    match format {
        Format::Text => report::text::render(review),
        Format::Yaml => report::yaml::render(review),
        Format::Json => report::json::render(review),
        Format::Sarif => report::sarif::render(review),
    }
}

/// Runs `review` with `config` (read from `config_path`, if any): the
/// report (or with `--diff` the diff) on standard output, problems on
/// standard error; with `--write` the fixes go into the files. Returns what
/// was reviewed, files that could not be written among its problems; the
/// command line turns it into an exit status.
pub fn run(args: &ReviewArgs, config: &Config, config_path: Option<&PathBuf>) -> Result<Review, ReviewError> {
    let filenames: Vec<PathBuf> = args.filenames.iter().chain(&args.paths).cloned().collect();
    if args.write && filenames.iter().any(|f| f.as_os_str() == "-") {
        return Err(ReviewError::WriteStdin);
    }
    let reviewer = reviewer(args, config)?;
    // Image facts and configuration living beside the manifests are not manifests.
    let skip: Vec<PathBuf> = args.facts.images.iter().chain(config_path).cloned().collect();
    let mut review = review(&reviewer, &filenames, &args.chart, &skip);
    for problem in &review.problems {
        eprintln!("entrypoint-guard: {problem}");
    }
    let diff = if args.write || args.diff {
        write_back(&mut review, args)
    } else {
        String::new()
    };
    let out = if args.diff { diff } else { render(&review, args.output) };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(ReviewError::Write(e));
    }
    Ok(review)
}

/// `--write` and `--diff`: plans each file's edit, reports the fixes left
/// out on standard error, writes the files (`--write`; a file that cannot
/// be written becomes a problem) and returns the diff (`--diff`).
fn write_back(review: &mut Review, args: &ReviewArgs) -> String {
    let mut diff = String::new();
    let mut failed = Vec::new();
    for file in &review.files {
        let edit = write::plan(file, args.annotate);
        for unwritten in &edit.unwritten {
            eprintln!("entrypoint-guard: {unwritten}");
        }
        if !edit.changes() {
            continue;
        }
        if args.diff {
            diff.push_str(&write::file::diff(&edit));
        }
        if args.write {
            match write::file::write(&edit) {
                Ok(()) => eprintln!(
                    "entrypoint-guard: {}: wrote {} fix{}",
                    edit.name,
                    edit.written,
                    if edit.written == 1 { "" } else { "es" }
                ),
                Err(e) => {
                    let problem = Problem::file(&edit.name, &e.failure);
                    eprintln!("entrypoint-guard: {problem}");
                    failed.push(problem);
                }
            }
        }
    }
    review.problems.extend(failed);
    diff
}
