//! What a review found: per file, per document, per finding, ready for any
//! report format.

use json_patch::PatchOperation;
use serde::Serialize;
use serde_json::Value;

use crate::engine::Finding;

/// A finding placed in its file, with the object it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// The file, as named on the command line (`<stdin>` for standard input).
    pub file: String,
    /// 1-based document number in the file; absent for chart findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    /// 1-based line of the container (or object) in the file.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The object's `kind`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The object's `metadata.name` (or `generateName`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The object's `metadata.namespace`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The engine's finding.
    #[serde(flatten)]
    pub finding: Finding,
}

impl Item {
    /// `Kind namespace/name`, `Kind name` or `Kind`, for reports.
    pub fn object_label(&self) -> String {
        let kind = self.kind.as_deref().unwrap_or("object");
        match (&self.namespace, &self.name) {
            (Some(ns), Some(name)) => format!("{kind} {ns}/{name}"),
            (None, Some(name)) => format!("{kind} {name}"),
            _ => kind.to_string(),
        }
    }
}

/// Something that stopped part of the input from being reviewed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// The file (or directory, or chart) concerned.
    pub file: String,
    /// 1-based document number, when the problem is in one document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    /// 1-based line, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem with a whole file (or directory): unreadable, missing, ...
    pub fn file(file: impl std::fmt::Display, message: impl std::fmt::Display) -> Problem {
        Problem {
            file: file.to_string(),
            document: None,
            line: None,
            column: None,
            message: message.to_string(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(document) = self.document {
            write!(f, ": document {document}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// One document of a manifest file and what became of it.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentReview {
    /// 1-based number among the file's non-empty documents.
    pub index: usize,
    /// 1-based line where its text starts.
    pub first_line: usize,
    /// Byte offset in the file's text where its text starts.
    pub offset: usize,
    /// Its text exactly as read (emitted verbatim when nothing changes).
    pub text: String,
    /// The parsed document, or `None` when it does not parse.
    pub original: Option<Value>,
    /// The document with the fixes applied, when the fixes change it.
    pub fixed: Option<Value>,
    /// The JSON patch that turns `original` into `fixed`.
    pub patch: Vec<PatchOperation>,
    /// What the engine found, in document order.
    pub findings: Vec<Item>,
}

/// One manifest file (or standard input).
#[derive(Clone, Debug, PartialEq)]
pub struct FileReview {
    /// The file, as named on the command line.
    pub name: String,
    /// The file to write fixes back to; `None` for standard input.
    pub path: Option<std::path::PathBuf>,
    /// Its whole text as read (without a byte-order mark).
    pub text: String,
    /// Whether it is a `.json` file.
    pub json: bool,
    /// Its documents.
    pub documents: Vec<DocumentReview>,
}

/// The whole review.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Review {
    /// The manifest files, in command-line order.
    pub files: Vec<FileReview>,
    /// Findings in Helm chart sources (values files and templates).
    pub chart_findings: Vec<Item>,
    /// Inputs, documents or charts that could not be reviewed.
    pub problems: Vec<Problem>,
}

impl Review {
    /// Every finding: manifest findings in file and document order, then chart findings.
    pub fn findings(&self) -> impl Iterator<Item = &Item> {
        self.files
            .iter()
            .flat_map(|f| f.documents.iter().flat_map(|d| d.findings.iter()))
            .chain(self.chart_findings.iter())
    }

    /// How many documents were read, how many parsed, and how many change.
    pub fn counts(&self) -> Counts {
        let documents = self.files.iter().flat_map(|f| f.documents.iter());
        let mut counts = Counts {
            files: self.files.len(),
            findings: self.findings().count(),
            problems: self.problems.len(),
            ..Counts::default()
        };
        for doc in documents {
            counts.documents += 1;
            counts.changed += usize::from(doc.fixed.is_some());
        }
        counts
    }
}

/// Totals for summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Manifest files read.
    pub files: usize,
    /// Documents read (parsed or not).
    pub documents: usize,
    /// Documents the fixes change.
    pub changed: usize,
    /// Findings, chart findings included.
    pub findings: usize,
    /// Problems (parse and read errors).
    pub problems: usize,
}
