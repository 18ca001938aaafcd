//! `--output json`: the machine-readable report.

use json_patch::PatchOperation;
use serde::Serialize;

use crate::review::model::{Counts, Item, Problem, Review};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report<'a> {
    summary: Counts,
    findings: Vec<&'a Item>,
    /// The documents the fixes change, with the patch for each.
    changes: Vec<Changed<'a>>,
    problems: &'a [Problem],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Changed<'a> {
    file: &'a str,
    document: usize,
    line: usize,
    patch: &'a [PatchOperation],
}

/// The report as pretty-printed JSON: `summary`, `findings` (each with
/// file, document, line, object and the engine's finding), `changes` (the
/// JSON patch per changed document) and `problems`.
pub fn render(review: &Review) -> String {
    let changes = review
        .files
        .iter()
        .flat_map(|f| f.documents.iter().map(move |d| (f, d)))
        .filter(|(_, d)| d.fixed.is_some())
        .map(|(f, d)| Changed {
            file: &f.name,
            document: d.index,
            line: d.first_line,
            patch: &d.patch,
        })
        .collect();
    let report = Report {
        summary: review.counts(),
        findings: review.findings().collect(),
        changes,
        problems: &review.problems,
    };
    // Plain data with string keys: serialising cannot fail.
    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
}
