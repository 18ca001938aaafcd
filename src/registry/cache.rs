//! The facts cache: keyed by credential identity and reference, with a TTL
//! for tags, no TTL for digests (content-addressed), a short one for failures,
//! and a size bound. Concurrent lookups of one key share one registry request
//! (moka runs a single initialiser per key while the others wait).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;

use super::fetch::LookupError;
use crate::image::facts::ImageFacts;

/// What a lookup found: facts, or why there are none.
pub(crate) type Outcome = Arc<Result<ImageFacts, LookupError>>;

/// A cache key: who asks (the identities of the credentials usable for the
/// reference, or `anonymous`) and what (`registry/repo:tag` or `registry/repo@digest`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    /// The credential identities, joined.
    pub credentials: String,
    /// The canonical reference.
    pub reference: String,
    /// Whether `reference` names a digest (cached until evicted).
    pub by_digest: bool,
}

struct FactsExpiry {
    ttl: Duration,
    negative_ttl: Duration,
}

impl Expiry<CacheKey, Outcome> for FactsExpiry {
    fn expire_after_create(&self, key: &CacheKey, value: &Outcome, _created_at: Instant) -> Option<Duration> {
        match value.as_ref() {
            Err(_) => Some(self.negative_ttl),
            Ok(_) if key.by_digest => None,
            Ok(_) => Some(self.ttl),
        }
    }
}

/// The cache of lookup outcomes.
#[derive(Clone)]
pub(crate) struct FactsCache {
    cache: moka::future::Cache<CacheKey, Outcome>,
}

impl FactsCache {
    /// A cache keeping at most `capacity` outcomes.
    pub(crate) fn new(capacity: u64, ttl: Duration, negative_ttl: Duration) -> Self {
        FactsCache {
            cache: moka::future::Cache::builder()
                .max_capacity(capacity)
                .expire_after(FactsExpiry { ttl, negative_ttl })
                .build(),
        }
    }

    /// The cached outcome for `key`, if any.
    pub(crate) async fn get(&self, key: &CacheKey) -> Option<Outcome> {
        self.cache.get(key).await
    }

    /// The outcome for `key`, running `lookup` if it is not cached; callers
    /// asking for the same key meanwhile wait for this one lookup.
    pub(crate) async fn get_with(&self, key: CacheKey, lookup: impl Future<Output = Outcome>) -> Outcome {
        self.cache.get_with(key, lookup).await
    }

    /// Records `outcome` for `key` (used for the digest a tag lookup found).
    pub(crate) async fn insert(&self, key: CacheKey, outcome: Outcome) {
        self.cache.insert(key, outcome).await;
    }

    /// How many outcomes are cached, once the cache's pending work
    /// (evictions, expirations, which moka applies lazily) has run.
    pub(crate) async fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.entry_count()
    }

    /// How many outcomes are cached, without waiting for the pending work:
    /// approximate, for a gauge read at scrape time.
    pub(crate) fn approximate_entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(reference: &str, by_digest: bool) -> CacheKey {
        CacheKey {
            credentials: "anonymous".into(),
            reference: reference.into(),
            by_digest,
        }
    }

    #[test]
    fn failures_expire_sooner_than_tags_and_digests_stay() {
        let expiry = FactsExpiry {
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(30),
        };
        let ok: Outcome = Arc::new(Ok(ImageFacts::known(vec![], None)));
        let failed: Outcome = Arc::new(Err(LookupError("down".into())));
        let now = Instant::now();
        let ttl = |key: CacheKey, outcome: &Outcome| expiry.expire_after_create(&key, outcome, now);
        assert_eq!(ttl(key("r/a:1", false), &ok), Some(Duration::from_secs(300)));
        assert_eq!(ttl(key("r/a@sha256:x", true), &ok), None, "a digest never changes");
        assert_eq!(ttl(key("r/b:1", false), &failed), Some(Duration::from_secs(30)));
        assert_eq!(ttl(key("r/b@sha256:x", true), &failed), Some(Duration::from_secs(30)));
    }

    #[tokio::test]
    async fn capacity_bounds_the_count_and_a_zero_ttl_serves_nothing() {
        let cache = FactsCache::new(10, Duration::from_secs(60), Duration::from_secs(60));
        for i in 0..100 {
            let outcome: Outcome = Arc::new(Ok(ImageFacts::known(vec![], None)));
            cache.insert(key(&format!("r/a:{i}"), false), outcome).await;
        }
        assert!(cache.entry_count().await <= 10);
        let expired = FactsCache::new(10, Duration::ZERO, Duration::ZERO);
        let outcome: Outcome = Arc::new(Ok(ImageFacts::known(vec![], None)));
        expired.insert(key("r/a:1", false), outcome).await;
        assert!(
            expired.get(&key("r/a:1", false)).await.is_none(),
            "a zero TTL serves nothing"
        );
    }

    #[tokio::test]
    async fn concurrent_lookups_of_one_key_run_once() {
        let cache = FactsCache::new(100, Duration::from_secs(60), Duration::from_secs(1));
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let lookups = (0..20).map(|_| {
            let runs = runs.clone();
            cache.get_with(key("r/a:1", false), async move {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Arc::new(Ok(ImageFacts::known(vec![], None)))
            })
        });
        futures::future::join_all(lookups).await;
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
