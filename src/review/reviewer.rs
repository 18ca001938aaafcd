//! The review itself: each document through the engine, fixes applied.
//!
//! Deliberately thin: `engine::lookups` → resolver → `engine::inspect` → patch. Every
//! decision is the engine's, so `review` and the webhook never disagree.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::documents::{self, Chunk, ParseError};
use super::locate::Locator;
use super::model::{DocumentReview, FileReview, Item, Problem};
use super::source::Source;
use crate::engine::{self, Finding, Inspection, Lookups, Mode, Policy};
use crate::image::{Facts, OfflineResolver, Resolver};

/// Where a [`Reviewer`] gets image facts.
#[derive(Clone)]
pub enum FactSource {
    /// Configuration and `--images` files only: no I/O, no async runtime.
    Offline(OfflineResolver),
    /// Any [`Resolver`] (for `review --resolve`, the registry under the
    /// offline facts), each file's lookups run on `runtime` and given
    /// `timeout`.
    Resolver {
        /// Resolves the images of one document.
        resolver: Arc<dyn Resolver>,
        /// Time allowed for the lookups of one file's documents.
        timeout: Duration,
        /// Drives the lookups; dropped after `resolver`, which runs tasks on it.
        runtime: Arc<tokio::runtime::Runtime>,
    },
}

impl FactSource {
    /// The facts for the images of each of `docs` (`None`: not an object,
    /// nothing to resolve). A resolver never fails: what it cannot resolve
    /// in time comes back unknown, with the reason. All documents are looked
    /// up at once, under one deadline, so a file of many documents costs one
    /// round of registry lookups, not one per document.
    fn facts(&self, docs: &[Option<&Value>], policy: &Policy) -> Vec<Facts> {
        let needed: Vec<Lookups> = docs
            .iter()
            .map(|doc| doc.map_or_else(Lookups::default, |doc| engine::lookups(doc, None, None, policy)))
            .collect();
        match self {
            FactSource::Offline(offline) => needed.iter().map(|n| offline.resolve_now(&n.images)).collect(),
            FactSource::Resolver {
                resolver,
                timeout,
                runtime,
            } => {
                let deadline = Instant::now() + *timeout;
                let lookups = needed.iter().map(|n| resolver.resolve(&n.images, &n.context, deadline));
                runtime.block_on(futures::future::join_all(lookups))
            }
        }
    }
}

impl std::fmt::Debug for FactSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FactSource::Offline(offline) => f.debug_tuple("Offline").field(offline).finish(),
            FactSource::Resolver { timeout, .. } => f
                .debug_struct("Resolver")
                .field("timeout", timeout)
                .finish_non_exhaustive(),
        }
    }
}

/// Reviews manifests under one policy with one source of image facts.
#[derive(Clone, Debug)]
pub struct Reviewer {
    policy: Policy,
    facts: FactSource,
}

impl Reviewer {
    /// A reviewer applying `policy` with the facts `resolver` knows.
    pub fn new(policy: Policy, resolver: OfflineResolver) -> Self {
        Self::with_source(policy, FactSource::Offline(resolver))
    }

    /// A reviewer applying `policy` with facts from `facts`.
    pub fn with_source(policy: Policy, facts: FactSource) -> Self {
        Reviewer { policy, facts }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Inspects each of `objects` (documents already parsed) as `review`
    /// does, their images looked up together: one round of lookups under
    /// one deadline. For front ends that read objects themselves (`krm`).
    pub(crate) fn inspect(&self, objects: &[&Value]) -> Vec<Inspection> {
        let docs: Vec<Option<&Value>> = objects.iter().map(|o| Some(*o)).collect();
        let facts = self.facts.facts(&docs, &self.policy);
        objects
            .iter()
            .zip(facts)
            .map(|(object, facts)| engine::inspect(object, &facts, &self.policy, Mode::Fix))
            .collect()
    }

    /// Reviews every document of `source`. Documents that do not parse are
    /// kept (verbatim) and reported in `problems`; the others are reviewed.
    pub fn review(&self, source: &Source, problems: &mut Vec<Problem>) -> FileReview {
        let chunks = if source.json {
            if documents::is_blank(&source.text) {
                Vec::new()
            } else {
                vec![Chunk {
                    index: 1,
                    first_line: 1,
                    offset: 0,
                    text: &source.text,
                }]
            }
        } else {
            documents::split(&source.text)
        };
        let parsed: Vec<Result<Value, ParseError>> = chunks
            .iter()
            .map(|chunk| {
                if source.json {
                    documents::parse_json(chunk.text)
                } else {
                    documents::parse_yaml(chunk)
                }
            })
            .collect();
        let objects: Vec<Option<&Value>> = parsed
            .iter()
            .map(|p| p.as_ref().ok().filter(|d| d.is_object()))
            .collect();
        let facts = self.facts.facts(&objects, &self.policy);
        let documents = chunks
            .iter()
            .zip(parsed)
            .zip(facts)
            .map(|((chunk, parsed), facts)| self.review_chunk(&source.name, chunk, parsed, &facts, problems))
            .collect();
        FileReview {
            name: source.name.clone(),
            path: None,
            text: source.text.clone(),
            json: source.json,
            documents,
        }
    }

    fn review_chunk(
        &self,
        file: &str,
        chunk: &Chunk<'_>,
        parsed: Result<Value, ParseError>,
        facts: &Facts,
        problems: &mut Vec<Problem>,
    ) -> DocumentReview {
        let mut review = DocumentReview {
            index: chunk.index,
            first_line: chunk.first_line,
            offset: chunk.offset,
            text: chunk.text.to_string(),
            original: None,
            fixed: None,
            patch: Vec::new(),
            findings: Vec::new(),
        };
        let problem = |line, column, message| Problem {
            file: file.to_string(),
            document: Some(chunk.index),
            line: Some(line),
            column: Some(column),
            message,
        };
        let doc = match parsed {
            Ok(doc) => doc,
            Err(e) => {
                problems.push(problem(e.line, e.column, e.message));
                return review;
            }
        };
        if !(doc.is_object() || doc.is_null()) {
            let message = "not a Kubernetes object: expected a mapping with apiVersion and kind".to_string();
            problems.push(problem(chunk.first_line, 1, message));
            return review;
        }
        let inspection = engine::inspect(&doc, facts, &self.policy, Mode::Fix);
        if inspection.changes() {
            let mut fixed = doc.clone();
            match json_patch::patch(&mut fixed, &inspection.patch) {
                Ok(()) if fixed != doc => {
                    review.fixed = Some(fixed);
                    review.patch = inspection.patch;
                }
                Ok(()) => {}
                Err(e) => problems.push(problem(
                    chunk.first_line,
                    1,
                    format!("the engine's patch does not apply (a bug; please report it): {e}"),
                )),
            }
        }
        if !inspection.findings.is_empty() {
            // Positions only for documents with findings: a second walk of the text.
            let locator = Locator::new(chunk.text);
            review.findings = inspection
                .findings
                .into_iter()
                .map(|finding| place(file, chunk, &doc, &locator, finding))
                .collect();
        }
        review.original = Some(doc);
        review
    }
}

/// Puts a finding in its file: line of its container (or object), and the
/// object's kind, name and namespace.
fn place(file: &str, chunk: &Chunk<'_>, doc: &Value, locator: &Locator, finding: Finding) -> Item {
    let pointer = finding
        .container
        .as_ref()
        .map_or(finding.object.as_str(), |c| c.pointer.as_str());
    let at = locator.find(pointer);
    let object = doc.pointer(&finding.object);
    let text = |p: &str| {
        object
            .and_then(|o| o.pointer(p))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Item {
        file: file.to_string(),
        document: Some(chunk.index),
        line: chunk.first_line + at.map_or(1, |p| p.line) - 1,
        column: at.map_or(1, |p| p.column),
        kind: text("/kind"),
        name: text("/metadata/name").or_else(|| text("/metadata/generateName").map(|n| format!("{n}*"))),
        namespace: text("/metadata/namespace"),
        finding,
    }
}
