//! Registry mirrors (`registry.mirrors`): where to ask for an image before
//! (or, without `mirrorFallback`, instead of) its own registry.
//!
//! A mirror is asked for the same repository (under its prefix, if any) and
//! the same tag or digest. The digest it answers is pinned on the image as
//! written, and the facts name the mirror so the trace annotation records
//! which host answered. Each mirror host is configured like any registry:
//! its own `insecure`, `caFiles`, `allowPrivate` and credentials.

use std::collections::BTreeMap;

use crate::config::{Mirror, RegistryConfig};
use crate::image::reference::{Reference, ReferenceError};

/// The mirrors per registry host.
#[derive(Clone, Debug, Default)]
pub(crate) struct Mirrors {
    by_registry: BTreeMap<String, Vec<Mirror>>,
    fallback: bool,
}

impl Mirrors {
    /// The mirrors of `config`.
    pub(crate) fn from_config(config: &RegistryConfig) -> Self {
        Mirrors {
            by_registry: config
                .mirrors
                .iter()
                .map(|(host, mirrors)| (host.0.clone(), mirrors.clone()))
                .collect(),
            fallback: config.mirror_fallback,
        }
    }

    /// Where to ask for `reference`, in order, each with whether it is a
    /// mirror: the mirrors of its registry, then the registry itself (unless
    /// it has mirrors and `mirrorFallback` is off).
    pub(crate) fn endpoints(&self, reference: &Reference) -> Vec<(Reference, bool)> {
        let registry = reference.registry().to_ascii_lowercase();
        let Some(mirrors) = self.by_registry.get(&registry).filter(|m| !m.is_empty()) else {
            return vec![(reference.clone(), false)];
        };
        let mut out: Vec<(Reference, bool)> = mirrors
            .iter()
            .filter_map(|m| match on_mirror(reference, m) {
                Ok(r) => Some((r, true)),
                Err(e) => {
                    tracing::warn!(mirror = %m, image = %reference.canonical(), reason = %e, "mirror skipped");
                    None
                }
            })
            .collect();
        if self.fallback || out.is_empty() {
            out.push((reference.clone(), false));
        }
        out
    }
}

/// `reference` as found on `mirror`: the same repository (after the
/// mirror's prefix) and tag or digest.
fn on_mirror(reference: &Reference, mirror: &Mirror) -> Result<Reference, ReferenceError> {
    let mut image = mirror.host.clone();
    image.push('/');
    if !mirror.prefix.is_empty() {
        image.push_str(&mirror.prefix);
        image.push('/');
    }
    image.push_str(reference.repository());
    match reference.digest() {
        Some(d) => {
            image.push('@');
            image.push_str(d);
        }
        None => {
            image.push(':');
            image.push_str(reference.tag_or_latest());
        }
    }
    Reference::parse(&image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RegistryHost;

    fn mirrors(fallback: bool) -> Mirrors {
        let config = RegistryConfig {
            mirrors: [(
                RegistryHost("docker.io".into()),
                vec![
                    Mirror::parse("mirror.corp:5000").unwrap(),
                    Mirror::parse("harbor.corp/hub").unwrap(),
                ],
            )]
            .into_iter()
            .collect(),
            mirror_fallback: fallback,
            ..Default::default()
        };
        Mirrors::from_config(&config)
    }

    #[test]
    fn mirrors_come_first_with_the_same_repository_and_tag() {
        let r = Reference::parse("nginx:1.27").unwrap();
        let found: Vec<(String, bool)> = mirrors(true)
            .endpoints(&r)
            .into_iter()
            .map(|(r, m)| (r.canonical(), m))
            .collect();
        assert_eq!(
            found,
            [
                ("mirror.corp:5000/library/nginx:1.27".to_string(), true),
                ("harbor.corp/hub/library/nginx:1.27".to_string(), true),
                ("docker.io/library/nginx:1.27".to_string(), false),
            ]
        );
        assert_eq!(mirrors(false).endpoints(&r).len(), 2, "no fallback: mirrors only");
        let other =
            Reference::parse("ghcr.io/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000")
                .unwrap();
        assert_eq!(
            mirrors(false).endpoints(&other).len(),
            1,
            "unmirrored registries are asked directly"
        );
    }
}
