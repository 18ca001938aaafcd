//! `review`: the offline dry run over manifests and Helm chart sources.
//!
//! Reads manifests (files, directories, standard input, multi-document
//! YAML), puts every document through the engine with offline image facts,
//! and reports what would change — or writes the fixed documents. A thin
//! front end: every decision is [`crate::engine::inspect`]'s.

pub mod chart;
pub mod documents;
pub mod locate;
pub mod model;
pub mod report;
pub mod resolve;
pub mod reviewer;
pub mod source;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use crate::cli::EXIT_USAGE;
use crate::config::{self, Config, Span};
use crate::engine::{Mode, Scope, Strategy};
use crate::image::resolver::OfflineResolver;
pub use model::{Counts, DocumentReview, FileReview, Item, Problem, Review};
pub use reviewer::{FactSource, Reviewer};
pub use source::{Input, Source};

/// Exit code when there are findings (unless `--exit-zero`).
pub const EXIT_FINDINGS: u8 = 1;

/// `entrypoint-guard review`: what the webhook would change, offline.
#[derive(Clone, Debug, Args)]
#[command(
    after_help = "Exit status: 0 nothing to fix, 1 findings (0 with --exit-zero), 2 usage or parse error.\n\
    A directory holding Chart.yaml is reviewed as a Helm chart (as with --chart)."
)]
pub struct ReviewArgs {
    /// Manifest file, directory (recursive *.yaml, *.yml, *.json) or `-` for standard input. Repeatable.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "PATH",
        required_unless_present = "chart"
    )]
    pub filenames: Vec<PathBuf>,
    /// Helm chart directory: report `command:` in values*.yaml and templates/. Repeatable.
    #[arg(long, value_name = "DIR")]
    pub chart: Vec<PathBuf>,
    /// Report format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Offline image facts (map of image → entrypoint/platforms/digest), over the configuration's imageFacts.
    #[arg(long, value_name = "FILE")]
    pub images: Vec<PathBuf>,
    /// Exit 0 even when there are findings (parse and usage errors still exit 2).
    #[arg(long)]
    pub exit_zero: bool,
    /// Mode instead of the configured one: fix, audit or off.
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<Mode>,
    /// Fix strategy instead of the configured one: auto, args or prepend.
    #[arg(long, value_parser = parse_strategy)]
    pub strategy: Option<Strategy>,
    /// Scope instead of the configured one: workloads (workloads and Pods are fixed) or pods (only Pods).
    #[arg(long)]
    pub scope: Option<Scope>,
    /// Resolve images from their registries (digests and image configs), as the webhook does;
    /// offline facts (--images, imageFacts) still win for the images they name.
    #[arg(long)]
    pub resolve: bool,
    /// Docker config file with registry credentials for --resolve
    /// (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json, if present). Helpers are never run.
    #[arg(long, value_name = "PATH", requires = "resolve")]
    pub docker_config: Option<PathBuf>,
    /// With --resolve: time allowed for the registry lookups of one input file (its documents are resolved together).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = Span::parse)]
    pub resolve_timeout: Span,
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

fn parse_mode(s: &str) -> Result<Mode, String> {
    Mode::parse(s).ok_or_else(|| format!("`{s}` is not one of off, audit, fix"))
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    match s {
        "auto" => Ok(Strategy::Auto),
        "args" => Ok(Strategy::Args),
        "prepend" => Ok(Strategy::Prepend),
        _ => Err(format!("`{s}` is not one of auto, args, prepend")),
    }
}

/// The reviewer `args` and `config` ask for: the configured policy with the
/// command-line overrides, and the configuration's image facts with each
/// `--images` file merged over them, later files winning. With `--resolve`,
/// the registries answer for every other image.
pub fn reviewer(args: &ReviewArgs, config: &Config) -> Result<Reviewer, String> {
    let mut policy = config.policy();
    policy.mode = args.mode.unwrap_or(policy.mode);
    policy.strategy = args.strategy.unwrap_or(policy.strategy);
    policy.scope = args.scope.unwrap_or(policy.scope);
    let mut entries = config.image_facts.clone();
    for path in &args.images {
        entries.extend(config::load_image_facts(path).map_err(|e| e.to_string())?);
    }
    let offline = OfflineResolver::new(config::facts_from(&entries));
    if !args.resolve {
        return Ok(Reviewer::new(policy, offline));
    }
    let credentials = resolve::docker_credentials(args.docker_config.as_deref())?;
    let source = resolve::fact_source(
        &config.registry,
        std::sync::Arc::new(credentials),
        offline,
        args.resolve_timeout.get(),
    )?;
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
                    let file = reviewer.review(&source, &mut review.problems);
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
/// report on standard output, problems on standard error.
pub fn run(args: &ReviewArgs, config: &Config, config_path: Option<&PathBuf>) -> ExitCode {
    let reviewer = match reviewer(args, config) {
        Ok(reviewer) => reviewer,
        Err(e) => {
            eprintln!("entrypoint-guard: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Image facts and configuration living beside the manifests are not manifests.
    let skip: Vec<PathBuf> = args.images.iter().chain(config_path).cloned().collect();
    let review = review(&reviewer, &args.filenames, &args.chart, &skip);
    for problem in &review.problems {
        eprintln!("entrypoint-guard: {problem}");
    }
    let out = render(&review, args.output);
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("entrypoint-guard: cannot write the report: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    exit_code(&review, args.exit_zero)
}

/// 2 when something could not be read or parsed, else 1 when there are
/// findings (0 with `exit_zero`), else 0.
pub fn exit_code(review: &Review, exit_zero: bool) -> ExitCode {
    if !review.problems.is_empty() {
        ExitCode::from(EXIT_USAGE)
    } else if review.findings().next().is_some() && !exit_zero {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}
