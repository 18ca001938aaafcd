//! The bounds on an admission's fan-out: registry lookups in flight (all
//! admissions together), distinct images and pull-secret names per admission,
//! and the count of each time one of them bites
//! (`entrypoint_guard_registry_limited_total{limit}`).
//!
//! Without them one Pod listing hundreds of images or pull secrets makes the
//! webhook open as many registry connections and API server GETs, and a
//! flood of such Pods makes that unbounded.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::image::resolver::LookupContext;

/// Which bound bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    /// A lookup found every slot taken and waited (`registry.maxConcurrentLookups`).
    LookupWaited,
    /// No slot came free before the request's deadline: the lookup was given up.
    LookupRefused,
    /// An admission named more distinct images than `registry.maxImagesPerAdmission`.
    Images,
    /// An admission named more pull secrets than `registry.maxPullSecretsPerAdmission`.
    PullSecrets,
    /// An admission named more ServiceAccounts than `registry.maxPullSecretsPerAdmission`.
    ServiceAccounts,
}

impl Limit {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Limit::LookupWaited => "lookup-waited",
            Limit::LookupRefused => "lookup-refused",
            Limit::Images => "images",
            Limit::PullSecrets => "pull-secrets",
            Limit::ServiceAccounts => "service-accounts",
        }
    }
}

/// The label of [`limit_metric`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    /// `lookup-waited`, `lookup-refused`, `images`, `pull-secrets` or `service-accounts`.
    pub limit: &'static str,
}

/// Times a fan-out bound bit, by limit, for `/metrics`
/// (`entrypoint_guard_registry_limited_total{limit}`). Process-wide like the
/// credential failures: the pull-secret reader and the resolver both count.
pub fn limit_metric() -> &'static Family<LimitLabel, Counter> {
    // No series until a bound bites: a webhook without registries exports none.
    static LIMITED: LazyLock<Family<LimitLabel, Counter>> = LazyLock::new(Family::default);
    &LIMITED
}

/// Counts one bite of `limit`.
pub(crate) fn count(limit: Limit) {
    limit_metric()
        .get_or_create(&LimitLabel { limit: limit.as_str() })
        .inc();
}

/// The reason given for the images of an admission past
/// `registry.maxImagesPerAdmission` (`max`) of the `named` it names; counts
/// and logs the bite.
pub(crate) fn too_many_images(named: usize, max: usize, ctx: &LookupContext) -> String {
    count(Limit::Images);
    tracing::warn!(images = named, max, namespace = ?ctx.namespace,
        "too many images in one admission; the rest are not looked up");
    format!("not looked up: the object names {named} distinct images, more than registry.maxImagesPerAdmission ({max})")
}

/// What to add to the reason of an image not resolved when the object names
/// more pull secrets than `max` (`registry.maxPullSecretsPerAdmission`): the
/// credential it needed may be among those left unread. Empty otherwise.
pub(crate) fn pull_secret_note(ctx: &LookupContext, max: usize) -> String {
    let mut seen = HashSet::new();
    let named = ctx.pull_secrets.iter().filter(|n| seen.insert(n.as_str())).count();
    if named > max {
        format!(" (only {max} of the {named} pull secrets were read: registry.maxPullSecretsPerAdmission)")
    } else {
        String::new()
    }
}

/// The registry lookup slots shared by every admission.
#[derive(Clone, Debug)]
pub(crate) struct LookupSlots {
    slots: Arc<Semaphore>,
}

/// No slot came free before the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no registry lookup slot came free within the request's deadline (registry.maxConcurrentLookups)")]
pub(crate) struct NoSlot;

impl LookupSlots {
    /// `n` slots.
    pub(crate) fn new(n: usize) -> Self {
        LookupSlots {
            slots: Arc::new(Semaphore::new(n)),
        }
    }

    /// A slot, waiting for one until `deadline` at most. The permit is owned,
    /// so the lookup task keeps its slot after the caller stops waiting for it.
    pub(crate) async fn acquire(&self, deadline: tokio::time::Instant) -> Result<OwnedSemaphorePermit, NoSlot> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        count(Limit::LookupWaited);
        match tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await {
            // The semaphore is never closed.
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => {
                count(Limit::LookupRefused);
                Err(NoSlot)
            }
        }
    }

    /// Slots free now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.slots.available_permits()
    }
}

/// The value of `limit` counted so far (tests read the metric this way).
#[cfg(test)]
pub(crate) fn counted(limit: Limit) -> u64 {
    limit_metric()
        .get_or_create(&LimitLabel { limit: limit.as_str() })
        .get()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_full_pool_waits_until_a_slot_frees_within_the_deadline() {
        let slots = LookupSlots::new(2);
        let deadline = Instant::now() + Duration::from_secs(3);
        let first = slots.acquire(deadline).await.unwrap();
        let _second = slots.acquire(deadline).await.unwrap();
        assert_eq!(slots.available(), 0);
        let waited = counted(Limit::LookupWaited);
        let waiter = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire(deadline).await.map(|_| Instant::now()) }
        });
        // The waiter is parked on the semaphore (paused time does not move
        // until every task is idle); freeing a slot at +1s lets it in then.
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(first);
        let got_at = waiter.await.unwrap().expect("a slot came free before the deadline");
        assert_eq!(got_at, deadline - Duration::from_secs(2));
        assert_eq!(counted(Limit::LookupWaited), waited + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn no_slot_by_the_deadline_is_a_refusal_at_the_deadline() {
        let slots = LookupSlots::new(1);
        let deadline = Instant::now() + Duration::from_millis(1500);
        let _held = slots.acquire(deadline).await.unwrap();
        let refused = counted(Limit::LookupRefused);
        assert_eq!(slots.acquire(deadline).await.unwrap_err(), NoSlot);
        assert_eq!(Instant::now(), deadline, "gave up exactly at the deadline, not before");
        assert_eq!(counted(Limit::LookupRefused), refused + 1);
        // A deadline already past still takes a free slot (nothing to wait for).
        drop(_held);
        assert!(slots.acquire(deadline).await.is_ok());
    }
}
