//! The text table: one row per finding, then errors and a summary line.

use std::fmt::Write;

use super::{container_label, proposed_fix};
use crate::cluster::report::AuditReport;

const HEADER: [&str; 6] = ["NAMESPACE", "KIND/NAME", "CONTAINER", "IMAGE", "RULE", "PROPOSED FIX"];

/// Renders the table (aligned columns; the last one is not padded).
pub(super) fn render(report: &AuditReport) -> String {
    let mut rows: Vec<[String; 6]> = Vec::new();
    for object in &report.objects {
        for finding in &object.findings {
            rows.push([
                object.namespace.clone(),
                object.kind_name(),
                container_label(finding),
                finding.container.as_ref().map_or("-".into(), |c| c.image.clone()),
                finding.rule.id().to_string(),
                proposed_fix(finding),
            ]);
        }
    }
    let mut out = String::new();
    if !rows.is_empty() {
        let mut widths = HEADER.map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let header = HEADER.map(str::to_string);
        for row in std::iter::once(&header).chain(&rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    if !report.errors.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        for e in &report.errors {
            let _ = writeln!(
                out,
                "error: cannot list {} in {}: {}: {}{}",
                e.resource,
                e.scope(),
                e.reason.as_str(),
                e.message,
                if e.items_read > 0 {
                    format!(" ({} objects read before it were audited)", e.items_read)
                } else {
                    String::new()
                }
            );
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "{} finding{} in {} object{}; {} object{} audited, {} reported through {}owner (--pods shows them), {} error{}",
        s.findings,
        plural(s.findings),
        s.with_findings,
        plural(s.with_findings),
        s.audited,
        plural(s.audited),
        s.skipped_owned,
        if s.skipped_owned == 1 { "its " } else { "their " },
        s.errors,
        plural(s.errors),
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
