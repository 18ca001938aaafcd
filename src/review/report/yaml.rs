//! `--output yaml`: every document, fixes applied, for `kubectl apply -f -`.

use super::{leading_comments, to_yaml};
use crate::review::model::Review;

/// The documents of every file as one YAML stream. Documents the fixes do
/// not change are copied verbatim (comments, quoting and key order kept);
/// changed ones are re-serialised after their leading comments. Documents
/// that did not parse are copied too, so nothing is lost (their error is
/// reported on standard error and in the exit code).
pub fn render(review: &Review) -> String {
    let mut out = String::new();
    for doc in review.files.iter().flat_map(|f| f.documents.iter()) {
        match &doc.fixed {
            Some(fixed) => {
                out.push_str("---\n");
                out.push_str(leading_comments(&doc.text));
                out.push_str(&to_yaml(fixed));
            }
            None => {
                // `--- {inline: document}` carries its own separator.
                if !doc.text.starts_with("---") {
                    out.push_str("---\n");
                }
                out.push_str(&doc.text);
                if !doc.text.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
    }
    out
}
