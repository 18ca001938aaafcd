//! Token caching for the credential sources: one fetch at a time per key,
//! values kept until shortly before they expire, failures kept (and reported)
//! once per retry interval. Time comes from a [`Clock`] so tests can move it.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{SourceError, report_failure};

/// Wall-clock time, as tokens state their expiry.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told (tests of expiry and refresh).
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    /// A clock standing at the current system time.
    pub fn new() -> Self {
        ManualClock(Arc::new(Mutex::new(SystemTime::now())))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().expect("clock lock");
        *now += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().expect("clock lock")
    }
}

/// The most a token is refreshed ahead of its expiry.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// When to fetch a token again that expires at `expires` (fetched at `now`):
/// [`REFRESH_MARGIN`] before, or halfway for short-lived tokens.
pub fn refresh_before(expires: SystemTime, now: SystemTime) -> SystemTime {
    let lifetime = expires.duration_since(now).unwrap_or_default();
    expires - REFRESH_MARGIN.min(lifetime / 2)
}

/// A fetched value and until when it may be used (`None`: not kept).
pub struct Fresh<V> {
    /// The value.
    pub value: V,
    /// When to fetch again; `None` keeps nothing.
    pub refresh_at: Option<SystemTime>,
}

enum Slot<V> {
    Empty,
    Ready { value: V, refresh_at: SystemTime },
    Failed { error: SourceError, until: SystemTime },
}

/// Values per key, fetched once at a time and kept until their refresh time.
pub struct TokenCache<V> {
    /// `None`: failures are neither kept nor reported (an inner cache whose
    /// caller keeps and reports them).
    source: Option<String>,
    clock: Arc<dyn Clock>,
    retry: Duration,
    slots: moka::future::Cache<String, Arc<tokio::sync::Mutex<Slot<V>>>>,
}

/// Most keys kept per source.
const MAX_KEYS: u64 = 4096;

fn slots<V: Send + Sync + 'static>() -> moka::future::Cache<String, Arc<tokio::sync::Mutex<Slot<V>>>> {
    moka::future::Cache::builder()
        .max_capacity(MAX_KEYS)
        .time_to_idle(Duration::from_secs(24 * 3600))
        .build()
}

impl<V: Clone + Send + Sync + 'static> TokenCache<V> {
    /// A cache for `source` (its name in reports) that leaves a failed key
    /// alone for `retry`.
    pub fn new(source: &str, clock: Arc<dyn Clock>, retry: Duration) -> Self {
        TokenCache {
            source: Some(source.to_string()),
            clock,
            retry,
            slots: slots(),
        }
    }

    /// A cache that keeps values but neither keeps nor reports failures:
    /// for a token that another cache's fetch asks for, which does both.
    pub fn inner(clock: Arc<dyn Clock>) -> Self {
        TokenCache {
            source: None,
            clock,
            retry: Duration::ZERO,
            slots: slots(),
        }
    }

    /// The clock the cache reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The value for `key`: cached, or from `fetch` (one caller fetches,
    /// the others wait for it). A failure is reported once and returned
    /// without fetching again until the retry interval has passed.
    pub async fn get<F, Fut>(&self, key: &str, fetch: F) -> Result<V, SourceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fresh<V>, SourceError>>,
    {
        let slot = self
            .slots
            .get_with(key.to_string(), async {
                Arc::new(tokio::sync::Mutex::new(Slot::Empty))
            })
            .await;
        let mut slot = slot.lock().await;
        let now = self.clock.now();
        match &*slot {
            Slot::Ready { value, refresh_at } if now < *refresh_at => return Ok(value.clone()),
            Slot::Failed { error, until } if now < *until => return Err(error.clone()),
            _ => {}
        }
        match fetch().await {
            Ok(fresh) => {
                *slot = match fresh.refresh_at {
                    Some(refresh_at) => Slot::Ready {
                        value: fresh.value.clone(),
                        refresh_at,
                    },
                    None => Slot::Empty,
                };
                Ok(fresh.value)
            }
            Err(error) => {
                if let Some(source) = &self.source {
                    report_failure(source, key, &error, self.retry);
                    *slot = Slot::Failed {
                        error: error.clone(),
                        until: self.clock.now() + self.retry,
                    };
                }
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn keeps_values_until_refresh_and_failures_for_the_retry_interval() {
        let clock = ManualClock::new();
        let cache: TokenCache<u32> = TokenCache::new("test", Arc::new(clock.clone()), Duration::from_secs(60));
        let fetches = AtomicUsize::new(0);
        let fetch = |ok: bool| {
            let n = fetches.fetch_add(1, Ordering::SeqCst) as u32;
            let now = clock.now();
            async move {
                if ok {
                    Ok(Fresh {
                        value: n,
                        refresh_at: Some(refresh_before(now + Duration::from_secs(3600), now)),
                    })
                } else {
                    Err(SourceError("down".into()))
                }
            }
        };
        assert_eq!(cache.get("a", || fetch(true)).await, Ok(0));
        assert_eq!(cache.get("a", || fetch(true)).await, Ok(0));
        clock.advance(Duration::from_secs(3600 - 301));
        assert_eq!(
            cache.get("a", || fetch(true)).await,
            Ok(0),
            "kept until 5 minutes before expiry"
        );
        clock.advance(Duration::from_secs(2));
        assert_eq!(cache.get("a", || fetch(true)).await, Ok(1), "refreshed before expiry");
        assert!(cache.get("b", || fetch(false)).await.is_err());
        assert!(cache.get("b", || fetch(true)).await.is_err(), "failure kept");
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
        clock.advance(Duration::from_secs(61));
        assert_eq!(cache.get("b", || fetch(true)).await, Ok(3));
    }

    #[test]
    fn short_tokens_refresh_halfway() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(
            refresh_before(now + Duration::from_secs(60), now),
            now + Duration::from_secs(30)
        );
        assert_eq!(
            refresh_before(now + Duration::from_secs(43200), now),
            now + Duration::from_secs(43200 - 300)
        );
    }
}
