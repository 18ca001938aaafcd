//! Request bodies seen before, byte for byte but for the strings that
//! decide nothing.
//!
//! An API server writes the AdmissionReviews of alike objects alike. The
//! Pods a ReplicaSet creates differ in `request.uid`, in the name of the
//! projected token volume the ServiceAccount admission plugin adds
//! (`kube-api-access-` and five random characters, in `volumes` and every
//! `volumeMounts`), and in their managed fields' timestamps; a retry or a
//! re-apply differs in the uid alone. The lean decode never keeps those
//! strings: it only validates them. Decoding a 10 KB Pod is most of what an
//! admission costs when [`super::Memo`] already knows the answer, so
//! [`Recall`] keeps, for the last bodies, what their decode made, and hands
//! it back for a body equal to a remembered one in every byte outside those
//! strings.
//!
//! Why that is exact: decoding a remembered body recorded its [`Spans`]:
//! the whole content of `request.uid`'s string, and of every string it
//! only validated (inside a skipped value), each read without escapes. A
//! new body of the same length, equal outside those spans, and holding in
//! each of them the same bytes or only printable ASCII other than `"` and
//! `\`, reads as the same tokens but those strings: it is valid JSON with
//! the same structure; the skipped strings still pass validation and still
//! decide nothing; and the uid (not empty: same length) is the new one. So it decodes to the
//! same request with the new uid, and fails no check the first passed.
//! Anything else is decoded as usual. `tests/perf_equivalence` checks this
//! against fresh decodes of changed bodies.
//!
//! Bounds: bodies over [`MAX_BODY_BYTES`] are never kept, nor more than
//! [`MAX_TOTAL_BYTES`] of bodies or the memo's number of entries in all;
//! when full it starts over, like the memo. A body is compared only with
//! the remembered ones of its exact length, at most [`MAX_PER_LENGTH`] of
//! them (the newest), each comparison stopping at the first differing byte.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::{Arc, RwLock};

use super::request::Spans;

/// The largest body kept: a Pod is a few to some tens of KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The most bytes of bodies (and of their spans) kept in all.
pub const MAX_TOTAL_BYTES: usize = 4 * 1024 * 1024;
/// The most bodies of one length kept: a body is compared with each.
pub const MAX_PER_LENGTH: usize = 8;

/// One remembered body and what its decode made.
struct Entry<T> {
    body: Box<[u8]>,
    /// The spans whose bytes may differ, in order, the uid's among them.
    holes: Box<[Range<u32>]>,
    /// Which of `holes` is the uid.
    uid: usize,
    value: Arc<T>,
}

impl<T> Entry<T> {
    /// The uid of `body` when it is this entry's body but for its holes,
    /// each holding its own bytes or plain ones.
    fn recall<'b>(&self, body: &'b [u8]) -> Option<&'b str> {
        if body.len() != self.body.len() {
            return None;
        }
        let mut at = 0;
        for hole in self.holes.iter() {
            let (start, end) = (hole.start as usize, hole.end as usize);
            let hole = &body[start..end];
            if body[at..start] != self.body[at..start] || !(plain(hole) || *hole == self.body[start..end]) {
                return None;
            }
            at = end;
        }
        if body[at..] != self.body[at..] {
            return None;
        }
        let uid = &self.holes[self.uid];
        Some(std::str::from_utf8(&body[uid.start as usize..uid.end as usize]).expect("plain bytes are ASCII"))
    }
}

struct Inner<T> {
    /// Remembered bodies by length, the newest last.
    by_length: HashMap<usize, VecDeque<Arc<Entry<T>>>>,
    entries: usize,
    bytes: usize,
}

/// What the decodes of the last bodies made, by the body less the strings
/// that decide nothing (see the module docs).
pub struct Recall<T> {
    inner: RwLock<Inner<T>>,
    capacity: usize,
}

impl<T> std::fmt::Debug for Recall<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recall")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// Whether `bytes` can stand in a JSON string as they are, meaning
/// themselves: printable ASCII, no quote, no backslash.
fn plain(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

impl<T> Recall<T> {
    /// A recall of at most `capacity` bodies; 0 keeps nothing.
    pub fn new(capacity: usize) -> Recall<T> {
        Recall {
            inner: RwLock::new(Inner {
                by_length: HashMap::new(),
                entries: 0,
                bytes: 0,
            }),
            capacity,
        }
    }

    /// The uid of `body` and what the decode of an alike body made, when
    /// one is remembered.
    pub fn recall(&self, body: &[u8]) -> Option<(String, Arc<T>)> {
        if self.capacity == 0 || body.len() > MAX_BODY_BYTES {
            return None;
        }
        let inner = self.inner.read().expect("the recall's lock is never poisoned");
        let alike = inner.by_length.get(&body.len())?;
        alike
            .iter()
            .rev()
            .find_map(|entry| Some((entry.recall(body)?.to_string(), Arc::clone(&entry.value))))
    }

    /// Remembers `value`, made by decoding `body` whose spans are `spans`.
    pub fn remember(&self, body: &[u8], spans: &Spans, value: Arc<T>) {
        let uid = spans.uid();
        if self.capacity == 0 || body.len() > MAX_BODY_BYTES || uid.is_empty() || !plain(&body[uid.clone()]) {
            return;
        }
        // The uid among the skipped strings, in order (it is never one of them).
        let mut holes: Vec<Range<u32>> = Vec::with_capacity(spans.skipped().len() + 1);
        let mut uid_at = None;
        for span in spans.skipped() {
            if uid_at.is_none() && span.start >= uid.end {
                uid_at = Some(holes.len());
                holes.push(uid.start as u32..uid.end as u32);
            }
            holes.push(span.start as u32..span.end as u32);
        }
        let uid_at = uid_at.unwrap_or_else(|| {
            holes.push(uid.start as u32..uid.end as u32);
            holes.len() - 1
        });
        debug_assert!(holes.windows(2).all(|w| w[0].end <= w[1].start), "spans in order");
        let entry = Arc::new(Entry {
            body: body.into(),
            holes: holes.into(),
            uid: uid_at,
            value,
        });
        // The spans count too: a body of many short strings has thousands.
        let size = body.len() + std::mem::size_of_val(&*entry.holes);
        let mut inner = self.inner.write().expect("the recall's lock is never poisoned");
        if inner.entries >= self.capacity || inner.bytes + size > MAX_TOTAL_BYTES {
            inner.by_length.clear();
            inner.entries = 0;
            inner.bytes = 0;
        }
        let Inner {
            by_length,
            entries,
            bytes,
        } = &mut *inner;
        let alike = by_length.entry(body.len()).or_default();
        if alike.len() >= MAX_PER_LENGTH
            && let Some(oldest) = alike.pop_front()
        {
            *entries -= 1;
            *bytes -= oldest.body.len() + std::mem::size_of_val(&*oldest.holes);
        }
        alike.push_back(entry);
        *entries += 1;
        *bytes += size;
    }

    /// How many bodies it may remember.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many bodies are remembered.
    pub fn len(&self) -> usize {
        self.inner.read().expect("the recall's lock is never poisoned").entries
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
