//! `review --write` and `--diff`: the fixes written back into the manifest
//! files, touching only the bytes of the values they change.
//!
//! The engine decides (findings with their patch operations); this module
//! only finds where each changed value is written ([`tree`]), splices new
//! text in its place in the style of its surroundings ([`edit`],
//! [`render`]), checks that the new text reads back as exactly the engine's
//! fixed object, and writes the file atomically ([`file`]). A fix that
//! cannot be written on its own — its value is an alias, an anchor other
//! places repeat, or comes from a merge key — is reported and left out;
//! the rest of the document is still fixed.

pub mod file;

mod edit;
mod render;
mod tree;

use std::collections::HashSet;
use std::path::PathBuf;

use json_patch::PatchOperation;
use serde_json::Value;

use super::documents::{self, Chunk};
use super::model::{DocumentReview, FileReview, Item};
use crate::engine::Rule;
use edit::Editor;
use tree::Tree;

/// A fix left out of the written file, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwritten {
    /// The file, as named on the command line.
    pub file: String,
    /// 1-based document number.
    pub document: usize,
    /// 1-based line of the container (or object).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What was not written: a rule id, or `trace annotation`.
    pub what: String,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Unwritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: document {}: {} not written: {}",
            self.file, self.line, self.column, self.document, self.what, self.reason
        )
    }
}

/// What writing the fixes into one file changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEdit {
    /// The file, as named on the command line.
    pub name: String,
    /// Where to write it; `None` for standard input.
    pub path: Option<PathBuf>,
    /// Its text as read.
    pub before: String,
    /// Its text with the fixes.
    pub after: String,
    /// How many fixes (findings, and trace annotations) are in `after`.
    pub written: usize,
    /// The fixes left out.
    pub unwritten: Vec<Unwritten>,
}

impl FileEdit {
    /// Whether writing would change the file.
    pub fn changes(&self) -> bool {
        self.before != self.after
    }
}

/// The fixes of `file` written into its text. With `annotate`, the trace
/// annotation of pinned images (`<prefix>/resolved-images`) is added too;
/// without it only `command`, `args` and `image` change.
pub fn plan(file: &FileReview, annotate: bool) -> FileEdit {
    let mut edit = FileEdit {
        name: file.name.clone(),
        path: file.path.clone(),
        before: file.text.clone(),
        after: String::new(),
        written: 0,
        unwritten: Vec::new(),
    };
    let mut after = String::with_capacity(file.text.len() + 256);
    let mut at = 0;
    for doc in &file.documents {
        let Some((text, written)) = plan_document(file, doc, annotate, &mut edit.unwritten) else {
            continue;
        };
        after.push_str(&file.text[at..doc.offset]);
        after.push_str(&text);
        at = doc.offset + doc.text.len();
        edit.written += written;
    }
    after.push_str(&file.text[at..]);
    edit.after = after;
    edit
}

/// One document's new text and how many fixes it holds, or `None` when
/// nothing in it is written.
fn plan_document(
    file: &FileReview,
    doc: &DocumentReview,
    annotate: bool,
    unwritten: &mut Vec<Unwritten>,
) -> Option<(String, usize)> {
    let original = doc.original.as_ref()?;
    doc.fixed.as_ref()?;
    let fixes: Vec<&Item> = doc
        .findings
        .iter()
        .filter(|i| i.finding.applied && !i.finding.ops.is_empty())
        .collect();
    let left_out = |item: &Item, what: &str, reason: String| Unwritten {
        file: file.name.clone(),
        document: doc.index,
        line: item.line,
        column: item.column,
        what: what.to_string(),
        reason,
    };
    let tree = match Tree::parse(&doc.text) {
        Ok(tree) => tree,
        Err(e) => {
            let reason = format!("the document cannot be read for editing: {}", e.0);
            unwritten.extend(fixes.iter().map(|i| left_out(i, i.finding.rule.id(), reason.clone())));
            return None;
        }
    };
    let editor = Editor::new(&doc.text, &tree, original, file.json);
    let mut splices = Vec::new();
    let mut ops: Vec<PatchOperation> = Vec::new();
    let mut written: Vec<&Item> = Vec::new();
    // Objects whose pin was left out: their trace annotation would record it.
    let mut unpinned: HashSet<&str> = HashSet::new();
    for &item in &fixes {
        match editor.splices(&item.finding.ops) {
            Ok(s) => {
                splices.extend(s);
                ops.extend(item.finding.ops.iter().cloned());
                written.push(item);
            }
            Err(reason) => {
                if item.finding.rule == Rule::ImagePinned {
                    unpinned.insert(&item.finding.object);
                }
                unwritten.push(left_out(item, item.finding.rule.id(), reason));
            }
        }
    }
    let mut annotations = 0;
    if annotate {
        // The patch's operations that no finding owns are the trace annotations.
        let owned: Vec<&PatchOperation> = fixes.iter().flat_map(|i| i.finding.ops.iter()).collect();
        for op in doc.patch.iter().filter(|op| !owned.contains(op)) {
            let Some(item) = owner(op, &fixes) else { continue };
            let result = if unpinned.contains(item.finding.object.as_str()) {
                Err("an image pin of this object was not written, and the annotation would record it".to_string())
            } else {
                editor.splices(std::slice::from_ref(op))
            };
            match result {
                Ok(s) => {
                    splices.extend(s);
                    ops.push(op.clone());
                    annotations += 1;
                }
                Err(reason) => unwritten.push(left_out(item, "trace annotation", reason)),
            }
        }
    }
    if splices.is_empty() {
        return None;
    }
    match verified(doc, original, &splices, &ops, file.json) {
        Ok(text) => Some((text, written.len() + annotations)),
        Err(reason) => {
            unwritten.extend(written.iter().map(|i| left_out(i, i.finding.rule.id(), reason.clone())));
            None
        }
    }
}

/// The finding whose object an annotation operation writes to.
fn owner<'a>(op: &PatchOperation, fixes: &[&'a Item]) -> Option<&'a Item> {
    let path = op.path().to_string();
    fixes
        .iter()
        .filter(|i| {
            let metadata = format!("{}/metadata", i.finding.object);
            path == metadata || path.starts_with(&format!("{metadata}/"))
        })
        .max_by_key(|i| i.finding.object.len())
        .copied()
}

/// The document's text with `splices`, if it reads back as `original` with
/// `ops` applied — the engine's fixed object — and nothing else.
fn verified(
    doc: &DocumentReview,
    original: &Value,
    splices: &[edit::Splice],
    ops: &[PatchOperation],
    json: bool,
) -> Result<String, String> {
    const BUG: &str = "(a bug; please report it with the document)";
    let text = edit::apply(&doc.text, splices).map_err(|e| format!("{e} {BUG}"))?;
    let mut expected = original.clone();
    json_patch::patch(&mut expected, ops).map_err(|e| format!("the engine's patch does not apply: {e} {BUG}"))?;
    let chunk = Chunk {
        index: doc.index,
        first_line: doc.first_line,
        offset: doc.offset,
        text: &text,
    };
    let parsed = if json {
        documents::parse_json(&text)
    } else {
        documents::parse_yaml(&chunk)
    };
    match parsed {
        Ok(value) if value == expected => Ok(text),
        Ok(_) => Err(format!("the edited text would not read back as the fixed object {BUG}")),
        Err(e) => Err(format!("the edited text would not parse ({}) {BUG}", e.message)),
    }
}
