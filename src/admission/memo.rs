//! Answers remembered by everything that decides them.
//!
//! The engine is a pure function of the object (and, on UPDATE, the object
//! it replaces), the image facts, the policy and the route's ceiling; the
//! answer adds only the request's uid. The Pods a ReplicaSet or a Job
//! creates are alike in all of that — the API server names them after
//! mutating admission, so they reach it with the same `generateName` and no
//! name — and so are the re-applies of one workload. [`Memo`] keeps the
//! last answers (the verdict, and the response body without its uid) by
//! those inputs, and answers the next alike request by writing its uid into
//! the remembered body: the engine, the warnings, the findings as JSON and
//! the encoding run once per such group of objects instead of once per
//! object.
//!
//! The key is the inputs themselves, not a digest of them: the object and
//! old object as JSON (as decoded — from [`super::decode_lean`], exactly
//! the parts the engine reads), every image's facts and the ceiling. One
//! memo serves one policy (the server's); answers the engine could not give
//! (a panic, caught) are never remembered. `tests/perf_equivalence.rs`
//! proves a remembered answer equal to a fresh one over every fixture and
//! generated objects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::response::write_str;
use super::{OnError, Outcome, Verdict, review};
use crate::engine::{Mode, Policy};
use crate::image::Facts;

/// What every encoded answer starts with, up to its uid.
const HEAD: &[u8] = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#;

/// An answer: the verdict (for metrics and logs) and the response body.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The verdict. From [`Memo`], its `response.uid` is empty: the uid is
    /// written only into `body`.
    pub verdict: Arc<Verdict>,
    /// The AdmissionReview response body, with the request's uid.
    pub body: Vec<u8>,
    /// Whether a memo had it (`Some(true)`), had to work it out
    /// (`Some(false)`), or was not asked.
    pub memo_hit: Option<bool>,
}

impl Answer {
    /// The answer of `verdict` as it is.
    pub fn of(verdict: Verdict) -> Answer {
        Answer {
            body: verdict.response.to_json(),
            verdict: Arc::new(verdict),
            memo_hit: None,
        }
    }
}

/// The engine's inputs from one request — the object and, on UPDATE, the
/// object it replaces — with their part of the memo's key, written once.
#[derive(Debug, PartialEq)]
pub struct Subject {
    /// The object to inspect.
    pub object: Value,
    /// The object an UPDATE replaces.
    pub old: Option<Value>,
    /// The objects as JSON, NUL-separated; `None` when the memo keeps nothing.
    key: Option<Vec<u8>>,
}

/// One remembered answer.
#[derive(Debug)]
struct Remembered {
    verdict: Arc<Verdict>,
    /// The body after `HEAD` and the uid.
    tail: Vec<u8>,
}

/// The last answers of one policy, by what decided them (see the module docs).
#[derive(Debug)]
pub struct Memo {
    answers: Mutex<HashMap<Vec<u8>, Arc<Remembered>, foldhash::fast::RandomState>>,
    capacity: usize,
}

impl Memo {
    /// A memo of at most `capacity` answers; when full it starts over, so
    /// its memory stays bounded without bookkeeping on every hit. With a
    /// capacity of 0 nothing is remembered and no key is built: every call
    /// is a plain [`review`].
    pub fn new(capacity: usize) -> Memo {
        Memo {
            answers: Mutex::new(HashMap::with_capacity_and_hasher(
                capacity.min(1024),
                foldhash::fast::RandomState::default(),
            )),
            capacity,
        }
    }

    /// The inputs `object` and `old`, ready for [`Memo::review`].
    pub fn subject(&self, object: Value, old: Option<Value>) -> Subject {
        let key = (self.capacity > 0).then(|| subject_key(&object, old.as_ref()));
        Subject { object, old, key }
    }

    /// [`review`]'s answer, from memory when an alike request was answered
    /// before. `policy` must be the same for every call on one memo.
    #[allow(clippy::too_many_arguments)] // review's arguments, and the memo's
    pub fn review(
        &self,
        uid: &str,
        subject: &Subject,
        facts: &Facts,
        policy: &Policy,
        ceiling: Mode,
        on_error: OnError,
    ) -> Answer {
        let (object, old) = (&subject.object, subject.old.as_ref());
        let Some(subject_key) = subject.key.as_deref().filter(|_| self.capacity > 0) else {
            return Answer::of(review(uid, object, old, facts, policy, ceiling, on_error));
        };
        let key = key(subject_key, facts, ceiling);
        let found = self
            .answers
            .lock()
            .expect("the memo's lock is never poisoned")
            .get(&key)
            .cloned();
        let hit = found.is_some();
        let remembered = match found {
            Some(remembered) => remembered,
            None => {
                let mut verdict = review("", object, old, facts, policy, ceiling, on_error);
                if verdict.outcome == Outcome::Error {
                    verdict.response.uid = uid.to_string();
                    return Answer {
                        memo_hit: Some(false),
                        ..Answer::of(verdict)
                    };
                }
                let body = verdict.response.to_json();
                let tail = body
                    .strip_prefix(HEAD)
                    .and_then(|rest| rest.strip_prefix(b"\"\""))
                    .expect("an answer starts with its uid")
                    .to_vec();
                let remembered = Arc::new(Remembered {
                    verdict: Arc::new(verdict),
                    tail,
                });
                let mut answers = self.answers.lock().expect("the memo's lock is never poisoned");
                if answers.len() >= self.capacity {
                    answers.clear();
                }
                answers.insert(key, Arc::clone(&remembered));
                remembered
            }
        };
        let mut body = Vec::with_capacity(HEAD.len() + uid.len() + 2 + remembered.tail.len());
        body.extend_from_slice(HEAD);
        write_str(&mut body, uid);
        body.extend_from_slice(&remembered.tail);
        Answer {
            verdict: Arc::clone(&remembered.verdict),
            body,
            memo_hit: Some(hit),
        }
    }

    /// How many answers are remembered.
    pub fn len(&self) -> usize {
        self.answers.lock().expect("the memo's lock is never poisoned").len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The objects as bytes. JSON text never holds a raw NUL, so NUL-separated
/// parts cannot run into each other.
fn subject_key(object: &Value, old: Option<&Value>) -> Vec<u8> {
    let mut key = Vec::with_capacity(1024);
    serde_json::to_writer(&mut key, object).expect("a Value serializes");
    key.push(0);
    if let Some(old) = old {
        serde_json::to_writer(&mut key, old).expect("a Value serializes");
    }
    key
}

/// The inputs as bytes: the ceiling, the objects ([`subject_key`]) and the
/// image facts, NUL-separated.
fn key(subject_key: &[u8], facts: &Facts, ceiling: Mode) -> Vec<u8> {
    let mut key = Vec::with_capacity(subject_key.len() + 512);
    key.extend_from_slice(ceiling.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(subject_key);
    let mut images: Vec<_> = facts.iter().collect();
    images.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (image, facts) in images {
        key.push(0);
        write_str(&mut key, image);
        serde_json::to_writer(&mut key, facts).expect("image facts serialize");
    }
    key
}
