//! Where image facts come from: the resolver trait and its offline implementation.
//!
//! The resolver is the only part of the program allowed to talk to a
//! registry; the engine only reads the [`Facts`] it returns.

use std::time::Instant;

use super::facts::{Facts, ImageFacts};
use futures::future::BoxFuture;

/// Who is asking, so a registry resolver can pick credentials: the
/// namespace and the pull secrets and service account its pod specs name
/// (found by [`crate::engine::lookups`], with the images to resolve).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LookupContext {
    /// The object's namespace, if any.
    pub namespace: Option<String>,
    /// `imagePullSecrets[].name` of every pod spec in the object.
    pub pull_secrets: Vec<String>,
    /// `serviceAccountName` of the pod specs (`default` when unset).
    pub service_accounts: Vec<String>,
}

/// Turns image references (as written) into facts, within a deadline.
///
/// Implementations never fail as a whole: an image that cannot be resolved
/// in time gets [`ImageFacts::unknown`] with the reason, so the engine
/// reports it and the answer still goes out.
pub trait Resolver: Send + Sync {
    /// Resolves every image in `images`, finishing by `deadline`.
    fn resolve<'a>(&'a self, images: &'a [String], ctx: &'a LookupContext, deadline: Instant) -> BoxFuture<'a, Facts>;

    /// Registry lookup counts, for a resolver that talks to registries (metrics).
    fn lookup_stats(&self) -> Option<LookupStats> {
        None
    }
}

/// What a registry resolver has done since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LookupStats {
    /// Images answered from the cache.
    pub cache_hits: u64,
    /// Lookups sent to a registry that found the image's facts.
    pub resolved: u64,
    /// Lookups sent to a registry that failed (unreachable, refused, not found, too slow).
    pub failed: u64,
    /// Outcomes in the cache now (approximate).
    pub cached: u64,
}

/// Facts from configuration and `--images` files only; never touches the network.
#[derive(Clone, Debug, Default)]
pub struct OfflineResolver {
    facts: Facts,
}

impl OfflineResolver {
    /// A resolver that answers from `facts`; other images are unknown.
    pub fn new(facts: Facts) -> Self {
        OfflineResolver { facts }
    }

    /// Whether `image` (as written) has offline facts.
    pub fn names(&self, image: &str) -> bool {
        self.facts.get(image).is_some()
    }

    /// Resolves without waiting (offline lookups are immediate).
    pub fn resolve_now(&self, images: &[String]) -> Facts {
        images
            .iter()
            .map(|image| {
                let facts = self
                    .facts
                    .get(image)
                    .cloned()
                    .unwrap_or_else(|| ImageFacts::unknown("no offline image facts for this image"));
                (image.clone(), facts)
            })
            .collect()
    }
}

impl Resolver for OfflineResolver {
    fn resolve<'a>(
        &'a self,
        images: &'a [String],
        _ctx: &'a LookupContext,
        _deadline: Instant,
    ) -> BoxFuture<'a, Facts> {
        Box::pin(std::future::ready(self.resolve_now(images)))
    }
}
