//! What is known about an image: the facts the engine decides with.
//!
//! Facts come from a resolver (the registry, or offline configuration). The
//! engine never fetches them itself; it only reads a [`Facts`] map keyed by
//! the image string exactly as a container names it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The image config's Entrypoint, as far as it is known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Entrypoint {
    /// Every platform of the image has this Entrypoint (possibly empty).
    Known {
        /// The config's `Entrypoint` array; empty when the image sets none.
        entrypoint: Vec<String>,
    },
    /// The platforms of a multi-arch image disagree, so no single fix is right.
    PlatformsDisagree {
        /// Each platform (`os/arch[/variant]`) with its Entrypoint.
        platforms: Vec<PlatformEntrypoint>,
    },
    /// The config could not be read (registry unreachable, offline review, ...).
    Unknown {
        /// Why, for the finding shown to the user.
        reason: String,
    },
}

/// One platform's Entrypoint inside a multi-arch image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformEntrypoint {
    /// `os/architecture[/variant]`, e.g. `linux/arm64/v8`.
    pub platform: String,
    /// That platform's config Entrypoint.
    pub entrypoint: Vec<String>,
}

/// Everything the engine needs to know about one image reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFacts {
    /// The digest the registry serves for the reference (the index digest for
    /// a multi-arch image), when known.
    pub digest: Option<String>,
    /// The image's Entrypoint, when known.
    pub entrypoint: Entrypoint,
    /// The registry host that answered when it is not the image's own (a
    /// mirror); recorded in the trace annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl ImageFacts {
    /// Facts for an image about which nothing is known.
    pub fn unknown(reason: impl Into<String>) -> Self {
        ImageFacts {
            digest: None,
            entrypoint: Entrypoint::Unknown { reason: reason.into() },
            source: None,
        }
    }

    /// Facts for an image whose Entrypoint is known.
    pub fn known(entrypoint: Vec<String>, digest: Option<String>) -> Self {
        ImageFacts {
            digest,
            entrypoint: Entrypoint::Known { entrypoint },
            source: None,
        }
    }
}

/// Image facts keyed by the image string as containers write it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    by_image: HashMap<String, ImageFacts>,
}

impl Facts {
    /// An empty set: every image is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the facts for `image` (the string as written in the object).
    pub fn insert(&mut self, image: impl Into<String>, facts: ImageFacts) {
        self.by_image.insert(image.into(), facts);
    }

    /// The facts for `image`, or `None` when nothing was resolved for it.
    pub fn get(&self, image: &str) -> Option<&ImageFacts> {
        self.by_image.get(image)
    }

    /// Every image with its facts, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ImageFacts)> {
        self.by_image.iter().map(|(image, facts)| (image.as_str(), facts))
    }

    /// How many images have facts.
    pub fn len(&self) -> usize {
        self.by_image.len()
    }

    /// Whether no image has facts.
    pub fn is_empty(&self) -> bool {
        self.by_image.is_empty()
    }
}

impl FromIterator<(String, ImageFacts)> for Facts {
    fn from_iter<T: IntoIterator<Item = (String, ImageFacts)>>(iter: T) -> Self {
        Facts {
            by_image: iter.into_iter().collect(),
        }
    }
}
