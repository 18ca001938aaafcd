//! Request bodies seen before, byte for byte but for their uid.
//!
//! An API server writes the AdmissionReviews of alike objects alike: the
//! Pods a ReplicaSet scales up in one burst, the retries of one request, the
//! re-applies of one workload differ in `request.uid` alone. Decoding a
//! 10 KB Pod is most of what an admission costs when [`super::Memo`]
//! already knows the answer, so [`Recall`] keeps, for the last bodies, what
//! their decode made, and hands it back for a body equal to a remembered
//! one in every byte outside the uid.
//!
//! Why that is exact: a remembered body is `P ++ U ++ S`, where `U` is the
//! whole content of `request.uid`'s string as decoding found it (a
//! [`UidSpan`]: no escapes in it, so it is the uid itself). A new body
//! `P ++ V ++ S`, whose `V` holds only printable ASCII other than `"` and
//! `\`, reads as the same tokens but that one string, whose value is `V`:
//! it is valid, decodes to the same request with uid `V`, and fails no check
//! the first passed (the uid is not empty). Anything else — another uid
//! length, an escaped or unusual uid, any other byte changed — is decoded
//! as usual. `tests/perf_equivalence` checks this against fresh decodes of
//! mutated bodies.
//!
//! Bounds: bodies over [`MAX_BODY_BYTES`] are never kept, nor more than
//! [`MAX_TOTAL_BYTES`] of bodies or the memo's number of entries in all;
//! when full it starts over, like the memo. Lookups try each distinct
//! position of the uid seen so far, at most [`MAX_SHAPES`] of them (an API
//! server writes the uid first in `request`: one).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use super::request::UidSpan;

/// The largest body kept: a Pod is a few to some tens of KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The most body bytes kept in all.
pub const MAX_TOTAL_BYTES: usize = 4 * 1024 * 1024;
/// The most distinct uid positions kept.
pub const MAX_SHAPES: usize = 4;

/// Where the uid sits: its offset and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    start: usize,
    len: usize,
}

/// One remembered body and what its decode made.
struct Entry<T> {
    body: Box<[u8]>,
    uid: Range<usize>,
    value: Arc<T>,
}

struct Inner<T> {
    entries: HashMap<u64, Entry<T>>,
    /// The first `shape_count` are the uid positions of the entries.
    shapes: [Shape; MAX_SHAPES],
    shape_count: usize,
    bytes: usize,
}

impl<T> Inner<T> {
    fn shapes(&self) -> &[Shape] {
        &self.shapes[..self.shape_count]
    }
}

/// What the decodes of the last bodies made, by the body less its uid (see
/// the module docs).
pub struct Recall<T> {
    inner: Mutex<Inner<T>>,
    capacity: usize,
    hasher: foldhash::fast::RandomState,
}

impl<T> std::fmt::Debug for Recall<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recall")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Whether `uid` can stand in a JSON string as it is, with the meaning it
/// has: printable ASCII, no quote, no backslash; and not empty.
fn plain_uid(uid: &[u8]) -> bool {
    !uid.is_empty()
        && uid
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

impl<T> Recall<T> {
    /// A recall of at most `capacity` bodies; 0 keeps nothing.
    pub fn new(capacity: usize) -> Recall<T> {
        Recall {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                shapes: [Shape { start: 0, len: 0 }; MAX_SHAPES],
                shape_count: 0,
                bytes: 0,
            }),
            capacity,
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn hash(&self, body: &[u8], shape: Shape) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_usize(shape.start);
        h.write_usize(shape.len);
        h.write(&body[..shape.start]);
        h.write(&body[shape.start + shape.len..]);
        h.finish()
    }

    /// The uid of `body` and what the decode of an alike body made, when
    /// one is remembered.
    pub fn recall(&self, body: &[u8]) -> Option<(String, Arc<T>)> {
        if self.capacity == 0 || body.len() > MAX_BODY_BYTES {
            return None;
        }
        // Copied out: the hashing below runs without the lock.
        let (shapes, count) = {
            let inner = self.lock();
            (inner.shapes, inner.shape_count)
        };
        for &shape in &shapes[..count] {
            let Some(uid) = body.get(shape.start..shape.start + shape.len) else {
                continue;
            };
            if !plain_uid(uid) {
                continue;
            }
            let hash = self.hash(body, shape);
            let inner = self.lock();
            let Some(entry) = inner.entries.get(&hash) else {
                continue;
            };
            let (before, after) = (&entry.body[..entry.uid.start], &entry.body[entry.uid.end..]);
            if entry.uid.start == shape.start
                && entry.uid.len() == shape.len
                && body.len() == entry.body.len()
                && body[..shape.start] == *before
                && body[shape.start + shape.len..] == *after
            {
                let uid = std::str::from_utf8(uid).expect("printable ASCII is UTF-8");
                return Some((uid.to_string(), Arc::clone(&entry.value)));
            }
        }
        None
    }

    /// Remembers `value`, made by decoding `body` whose uid sits at `span`.
    pub fn remember(&self, body: &[u8], span: &UidSpan, value: Arc<T>) {
        let uid = span.range();
        if self.capacity == 0 || body.len() > MAX_BODY_BYTES || !plain_uid(&body[uid.clone()]) {
            return;
        }
        let shape = Shape {
            start: uid.start,
            len: uid.len(),
        };
        let hash = self.hash(body, shape);
        let mut inner = self.lock();
        let known = inner.shapes().contains(&shape);
        let full = inner.entries.len() >= self.capacity
            || inner.bytes + body.len() > MAX_TOTAL_BYTES
            || (!known && inner.shape_count == MAX_SHAPES);
        if full {
            inner.entries.clear();
            inner.shape_count = 0;
            inner.bytes = 0;
        }
        if !inner.shapes().contains(&shape) {
            let at = inner.shape_count;
            inner.shapes[at] = shape;
            inner.shape_count += 1;
        }
        let entry = Entry {
            body: body.into(),
            uid,
            value,
        };
        inner.bytes += body.len();
        if let Some(old) = inner.entries.insert(hash, entry) {
            inner.bytes -= old.body.len();
        }
    }

    /// How many bodies it may remember.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many bodies are remembered.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().expect("the recall's lock is never poisoned")
    }
}
