//! One image lookup: where to ask (mirrors, then the registry) with which
//! credentials, and the cache key that says who asked.

use super::cache::CacheKey;
use super::clients::ANONYMOUS;
use super::docker_config::RegistryCredential;
use crate::image::reference::Reference;

/// One image to look up: the places to ask (mirrors first, then the
/// registry itself) with the credentials each may use, and its cache key.
pub(super) struct Lookup {
    pub(super) reference: Reference,
    pub(super) endpoints: Vec<Endpoint>,
    pub(super) key: CacheKey,
}

/// One place to ask for an image: its reference on that host and the
/// credentials that match that host.
pub(super) struct Endpoint {
    pub(super) reference: Reference,
    pub(super) credentials: Vec<RegistryCredential>,
    /// A mirror (its host is recorded on the facts it answers).
    pub(super) mirror: bool,
}

impl Lookup {
    pub(super) fn new(reference: Reference, endpoints: Vec<Endpoint>) -> Self {
        // Who asks: the credential identities on each endpoint, so facts
        // found with one credential never answer a caller without it.
        let identities = endpoints
            .iter()
            .map(|e| {
                let ids = if e.credentials.is_empty() {
                    ANONYMOUS.to_string()
                } else {
                    e.credentials.iter().map(|c| c.identity()).collect::<Vec<_>>().join(",")
                };
                if endpoints.len() == 1 {
                    ids
                } else {
                    format!("{}={ids}", e.reference.registry())
                }
            })
            .collect::<Vec<_>>()
            .join("|");
        let key = CacheKey {
            credentials: identities,
            reference: canonical(&reference),
            by_digest: reference.digest().is_some(),
        };
        Lookup {
            reference,
            endpoints,
            key,
        }
    }
}

/// `registry/repo:tag` or `registry/repo@digest`.
fn canonical(reference: &Reference) -> String {
    match reference.digest() {
        Some(d) => format!("{}/{}@{d}", reference.registry(), reference.repository()),
        None => format!(
            "{}/{}:{}",
            reference.registry(),
            reference.repository(),
            reference.tag_or_latest()
        ),
    }
}

pub(super) fn oci_reference(reference: &Reference) -> oci_client::Reference {
    let registry = reference.registry().to_string();
    let repository = reference.repository().to_string();
    match reference.digest() {
        Some(d) => oci_client::Reference::with_digest(registry, repository, d.to_string()),
        None => oci_client::Reference::with_tag(registry, repository, reference.tag_or_latest().to_string()),
    }
}
