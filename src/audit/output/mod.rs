//! The report formats: a text table, JSON, YAML of the fixed objects, SARIF.

mod sarif;
mod text;
mod yaml;

use clap::ValueEnum;

use crate::cluster::report::AuditReport;
use crate::engine::{Change, Finding, Fix, Rule};

/// How the audit report is written to stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table: namespace, kind/name, container, image, rule, proposed fix.
    #[default]
    Text,
    /// The whole report as JSON.
    Json,
    /// The fixed objects, ready for `kubectl apply -f -`.
    Yaml,
    /// SARIF 2.1.0 for code-scanning dashboards.
    Sarif,
}

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutputError {
    /// The JSON report could not be written.
    #[error("cannot write the JSON report: {0}")]
    Json(#[source] serde_json::Error),
    /// An object's proposed fix does not apply to it (a bug).
    #[error("the fix of {object} does not apply: {source}")]
    Patch {
        /// `namespace Kind/name`.
        object: String,
        /// Why.
        source: json_patch::PatchError,
    },
    /// A fixed object could not be written as YAML.
    #[error("cannot write {object} as YAML: {source}")]
    Yaml {
        /// `namespace Kind/name`.
        object: String,
        /// Why.
        source: serde_saphyr::ser::Error,
    },
}

/// Renders `report` in `format`. Fails only when the YAML of a fixed object
/// cannot be built (the error names the object).
pub(crate) fn render(report: &AuditReport, format: OutputFormat) -> Result<String, OutputError> {
    match format {
        OutputFormat::Text => Ok(text::render(report)),
        OutputFormat::Json => serde_json::to_string_pretty(report)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(OutputError::Json),
        OutputFormat::Yaml => yaml::render(report),
        OutputFormat::Sarif => Ok(sarif::render(report)),
    }
}

/// The proposed fix of `finding` in a few words, for tables and SARIF messages.
pub(crate) fn proposed_fix(finding: &Finding) -> String {
    let show = |items: &[String]| serde_json::to_string(items).unwrap_or_default();
    match (&finding.fix, &finding.change) {
        (Some(Fix::Args), Some(Change::Command { after, .. })) => {
            format!(
                "args: drop command, args={}",
                show(after.args.as_deref().unwrap_or_default())
            )
        }
        (Some(Fix::Prepend), Some(Change::Command { after, .. })) => {
            format!(
                "prepend: command={}",
                show(after.command.as_deref().unwrap_or_default())
            )
        }
        (Some(Fix::Pin), Some(Change::Image { after, .. })) => format!("pin: image={after}"),
        _ => match finding.rule {
            Rule::PreferredFixWrong => "none (strategy args is wrong here; use prepend)".into(),
            Rule::ImageConfigUnknown => "none (image config unknown)".into(),
            Rule::PlatformsDisagree => "none (platforms disagree)".into(),
            Rule::InvalidModeAnnotation => "fix the mode annotation".into(),
            _ => "none".into(),
        },
    }
}

/// The container column: its name, marked when it is an init container.
pub(crate) fn container_label(finding: &Finding) -> String {
    match &finding.container {
        Some(c) if c.init => format!("{} (init)", c.name),
        Some(c) => c.name.clone(),
        None => "-".into(),
    }
}
