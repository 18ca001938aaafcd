//! A request made ready for the engine: decoded, its object taken out, its
//! image lookups listed and its part of the memo key written — everything
//! that follows from the body and the policy alone, so that a body
//! [`Recall`] remembers costs none of it again.

use std::sync::Arc;

use super::memo::{Memo, Subject};
use super::prune::Schema;
use super::recall::Recall;
use super::request::{AdmissionRequest, DecodeError, Skip, decode_lean, decode_lean_spanned};
use crate::engine::{self, Lookups, Policy};

/// A request made ready for the engine (see the module docs).
#[derive(Debug, PartialEq)]
pub struct Prepared {
    /// The request, with its object and old object taken out and its uid
    /// empty: the uid is the body's, given beside each `Prepared`.
    pub request: AdmissionRequest,
    /// What the engine looks at, or why it does not look.
    pub target: Result<Target, Skip>,
}

/// The object the engine inspects, and what follows from it.
#[derive(Debug, PartialEq)]
pub struct Target {
    /// The object (with the object an UPDATE replaces) and its memo key part.
    pub subject: Subject,
    /// The images to resolve, and who asks.
    pub lookups: Lookups,
}

impl Prepared {
    /// `request` made ready under `policy`, for `memo`.
    pub fn new(mut request: AdmissionRequest, policy: &Policy, memo: &Memo) -> Prepared {
        request.uid.clear();
        let target = request.take_object(&policy.kinds).map(|object| {
            let old = request.take_old_object();
            let lookups = engine::lookups(&object, old.as_ref(), request.namespace.as_deref(), policy);
            Target {
                subject: memo.subject(object, old),
                lookups,
            }
        });
        Prepared { request, target }
    }
}

/// A body read by [`Intake::read`].
#[derive(Clone, Debug)]
pub struct Read {
    /// The request's uid.
    pub uid: String,
    /// The request, made ready.
    pub prepared: Arc<Prepared>,
    /// Whether it was recalled rather than decoded.
    pub recalled: bool,
}

/// From request bodies to [`Prepared`] requests: decoded along the policy's
/// schema, or recalled when an alike body was (see [`Recall`]).
#[derive(Debug)]
pub struct Intake {
    schema: Arc<Schema>,
    recall: Recall<Prepared>,
}

impl Intake {
    /// An intake decoding along `schema` and remembering the last
    /// `capacity` bodies (0: none).
    pub fn new(schema: Arc<Schema>, capacity: usize) -> Intake {
        Intake {
            schema,
            recall: Recall::new(capacity),
        }
    }

    /// The uid of `body` and the request it holds, made ready under
    /// `policy` (always the same one) for `memo`; or why it is not an
    /// AdmissionReview this webhook can answer.
    pub fn read(&self, body: &[u8], policy: &Policy, memo: &Memo) -> Result<Read, DecodeError> {
        if let Some((uid, prepared)) = self.recall.recall(body) {
            return Ok(Read {
                uid,
                prepared,
                recalled: true,
            });
        }
        // Spans are collected only to be remembered.
        let (mut request, spans) = if self.recalls() {
            decode_lean_spanned(body, &self.schema)?
        } else {
            (decode_lean(body, &self.schema)?, None)
        };
        // Taken, not copied: `Prepared` keeps no uid.
        let uid = std::mem::take(&mut request.uid);
        let prepared = Arc::new(Prepared::new(request, policy, memo));
        if let Some(spans) = spans {
            self.recall.remember(body, &spans, Arc::clone(&prepared));
        }
        Ok(Read {
            uid,
            prepared,
            recalled: false,
        })
    }

    /// Whether bodies are remembered at all (a capacity over 0).
    pub fn recalls(&self) -> bool {
        self.recall.capacity() > 0
    }

    /// How many bodies are remembered.
    pub fn remembered(&self) -> usize {
        self.recall.len()
    }
}
