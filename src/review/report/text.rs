//! `--output text`: one block per finding, then a diff of each changed document.

use std::fmt::Write;

use similar::TextDiff;

use super::to_yaml;
use crate::engine::{Change, CommandLine};
use crate::review::model::{Item, Review};

/// The human report: per document, a block per finding (where, what, why,
/// what changes), then a unified diff of the document before and after the
/// fixes (both sides written the same way, so only the fixes show); chart
/// findings follow; a summary line ends it.
pub fn render(review: &Review) -> String {
    let mut out = String::new();
    for file in &review.files {
        for doc in &file.documents {
            for item in &doc.findings {
                block(&mut out, item);
            }
            if let (Some(original), Some(fixed)) = (&doc.original, &doc.fixed) {
                let before = to_yaml(original);
                let after = to_yaml(fixed);
                let header = format!("{} (document {}", file.name, doc.index);
                let diff = TextDiff::from_lines(&before, &after);
                let _ = write!(
                    out,
                    "{}",
                    diff.unified_diff()
                        .context_radius(3)
                        .header(&format!("{header})"), &format!("{header}, fixed)"))
                );
                out.push('\n');
            }
        }
    }
    for item in &review.chart_findings {
        block(&mut out, item);
    }
    out.push_str(&summary(review));
    out
}

fn block(out: &mut String, item: &Item) {
    let f = &item.finding;
    let _ = write!(out, "{}:{}:{}: ", item.file, item.line, item.column);
    if let Some(document) = item.document {
        let _ = write!(out, "document {document}, {}", item.object_label());
        if let Some(c) = &f.container {
            let kind = if c.init { "init container" } else { "container" };
            let _ = write!(out, ", {kind} {:?} ({})", c.name, c.field);
        }
    } else {
        out.push_str("Helm chart source");
    }
    let _ = writeln!(out, "\n  {}: {}", f.rule.id(), f.message);
    if let Some(fix) = f.fix {
        let state = if f.applied { "applied" } else { "proposed, not applied" };
        let _ = writeln!(out, "  fix: {} ({state})", fix.as_str());
    }
    match &f.change {
        Some(Change::Command { before, after }) => {
            line_change(
                out,
                "command",
                field(before, |c| &c.command),
                field(after, |c| &c.command),
            );
            line_change(out, "args", field(before, |c| &c.args), field(after, |c| &c.args));
        }
        Some(Change::Image { before, after }) => {
            let _ = writeln!(out, "    image: {before} -> {after}");
        }
        None => {}
    }
    out.push('\n');
}

fn field(line: &CommandLine, get: impl Fn(&CommandLine) -> &Option<Vec<String>>) -> String {
    match get(line) {
        Some(words) => serde_json::to_string(words).unwrap_or_default(),
        None => "(unset)".to_string(),
    }
}

fn line_change(out: &mut String, name: &str, before: String, after: String) {
    if before != after {
        let _ = writeln!(out, "    {name}: {before} -> {after}");
    }
}

fn summary(review: &Review) -> String {
    let c = review.counts();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut s = format!(
        "{} in {} of {}",
        plural(c.findings, "finding"),
        plural(c.documents, "document"),
        plural(c.files, "file")
    );
    if !review.chart_findings.is_empty() {
        let _ = write!(s, " and Helm chart sources");
    }
    if c.changed > 0 {
        let _ = write!(
            s,
            "; fixes change {} (`--output yaml` writes them)",
            plural(c.changed, "document")
        );
    }
    if c.problems > 0 {
        let _ = write!(s, "; {} (see standard error)", plural(c.problems, "problem"));
    }
    s.push('\n');
    s
}
