//! Offline facts layered over another resolver (the registry).
//!
//! Facts written in configuration (`imageFacts`) or an `--images` file are a
//! deliberate statement by the operator, so they win over what a registry
//! says for the images they name: a test image that exists nowhere, an
//! air-gapped registry, or a correction. Every other image goes to the
//! fallback resolver. The whole [`ImageFacts`](super::ImageFacts) of a named
//! image come from the offline side (an entry without `digest` is not
//! pinned), so the result never mixes two sources for one image.

use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;

use super::facts::Facts;
use super::resolver::{LookupContext, LookupStats, OfflineResolver, Resolver};

/// [`OfflineResolver`] first, then `fallback` for the images it does not name.
#[derive(Clone)]
pub struct LayeredResolver {
    offline: OfflineResolver,
    fallback: Arc<dyn Resolver>,
}

impl LayeredResolver {
    /// Answers from `offline` where it names an image, else from `fallback`.
    pub fn new(offline: OfflineResolver, fallback: Arc<dyn Resolver>) -> Self {
        LayeredResolver { offline, fallback }
    }
}

impl Resolver for LayeredResolver {
    fn resolve<'a>(&'a self, images: &'a [String], ctx: &'a LookupContext, deadline: Instant) -> BoxFuture<'a, Facts> {
        Box::pin(async move {
            let (named, rest): (Vec<String>, Vec<String>) = images.iter().cloned().partition(|i| self.offline.names(i));
            let mut facts = self.offline.resolve_now(&named);
            if !rest.is_empty() {
                let resolved = self.fallback.resolve(&rest, ctx, deadline).await;
                for image in rest {
                    if let Some(f) = resolved.get(&image) {
                        facts.insert(image, f.clone());
                    }
                }
            }
            facts
        })
    }

    fn lookup_stats(&self) -> Option<LookupStats> {
        self.fallback.lookup_stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageFacts;

    /// A fallback that records what it was asked and knows every image.
    struct Recording(std::sync::Mutex<Vec<String>>);

    impl Resolver for Recording {
        fn resolve<'a>(&'a self, images: &'a [String], _: &'a LookupContext, _: Instant) -> BoxFuture<'a, Facts> {
            self.0.lock().unwrap().extend(images.iter().cloned());
            let facts = images
                .iter()
                .map(|i| (i.clone(), ImageFacts::known(vec!["/from-registry".into()], None)))
                .collect();
            Box::pin(std::future::ready(facts))
        }
    }

    #[test]
    fn offline_facts_win_and_only_the_rest_reach_the_fallback() {
        let offline: Facts = [(
            "r.io/a:1".to_string(),
            ImageFacts::known(vec!["/chalk".into(), "exec".into(), "--".into()], None),
        )]
        .into_iter()
        .collect();
        let fallback = Arc::new(Recording(Default::default()));
        let layered = LayeredResolver::new(OfflineResolver::new(offline), fallback.clone());
        let images = vec!["r.io/a:1".to_string(), "r.io/b:1".to_string()];
        let facts = futures::executor::block_on(layered.resolve(&images, &LookupContext::default(), Instant::now()));
        assert_eq!(facts.len(), 2);
        assert_eq!(
            facts.get("r.io/a:1"),
            Some(&ImageFacts::known(
                vec!["/chalk".into(), "exec".into(), "--".into()],
                None
            ))
        );
        assert_eq!(
            facts.get("r.io/b:1"),
            Some(&ImageFacts::known(vec!["/from-registry".into()], None))
        );
        assert_eq!(*fallback.0.lock().unwrap(), ["r.io/b:1"]);
    }
}
