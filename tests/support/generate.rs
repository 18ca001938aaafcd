//! Generators shared by the engine's property tests: images, facts about
//! them in every shape the engine decides differently on, and the policy
//! settings.
#![allow(dead_code)] // each test crate uses a different subset

use entrypoint_guard::engine::{Change, Inspection, Strategy as FixStrategy, UnknownImages};
use entrypoint_guard::image::{Entrypoint, Facts, ImageFacts, PlatformEntrypoint};
use proptest::prelude::*;

/// The images generated containers run: tags, a Docker Hub short name, a
/// registry with a port, one already pinned, and one that is no reference.
pub const IMAGES: [&str; 5] = [
    "registry.example/app:1.0",
    "nginx",
    "127.0.0.1:5000/chalk/one:1.0",
    "registry.example/pinned@sha256:4444444444444444444444444444444444444444444444444444444444444444",
    "Not A Reference",
];

/// `["a", "b"]` as owned strings.
pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Every Entrypoint shape: wrapped in each way chalk writes (old forms too),
/// not wrapped, none, unknown, and platforms that disagree.
pub fn entrypoint() -> impl Strategy<Value = Entrypoint> {
    prop_oneof![
        Just(Entrypoint::Known {
            entrypoint: strings(&["/chalk", "exec", "--"])
        }),
        Just(Entrypoint::Known {
            entrypoint: strings(&["/chalk", "exec", "--exec-command-name", "echo", "--"])
        }),
        Just(Entrypoint::Known {
            entrypoint: strings(&["/chalk", "exec", "--exec-command-name", "one", "--", "entrypoint"])
        }),
        Just(Entrypoint::Known {
            entrypoint: strings(&[
                "/chalk",
                "exec",
                "--heartbeat",
                "--exec-command-name",
                "/bin/sh",
                "--",
                "-c",
                "x"
            ])
        }),
        Just(Entrypoint::Known {
            entrypoint: strings(&["/chalk", "exec"])
        }),
        Just(Entrypoint::Known {
            entrypoint: strings(&["python"])
        }),
        Just(Entrypoint::Known { entrypoint: vec![] }),
        Just(Entrypoint::Unknown {
            reason: "offline".into()
        }),
        Just(Entrypoint::PlatformsDisagree {
            platforms: vec![
                PlatformEntrypoint {
                    platform: "linux/amd64".into(),
                    entrypoint: strings(&["/chalk", "exec", "--"])
                },
                PlatformEntrypoint {
                    platform: "linux/arm64".into(),
                    entrypoint: strings(&["x"])
                },
            ]
        }),
    ]
}

/// Facts for each of [`IMAGES`] (or none: not resolved), with or without a digest.
pub fn facts() -> impl Strategy<Value = Facts> {
    proptest::collection::vec((entrypoint(), any::<bool>(), any::<bool>()), IMAGES.len()).prop_map(|per_image| {
        let mut f = Facts::new();
        for (i, (entrypoint, has_digest, known)) in per_image.into_iter().enumerate() {
            if !known {
                continue; // not resolved at all
            }
            let digest = has_digest.then(|| format!("sha256:{}", format!("{i}").repeat(64)));
            f.insert(
                IMAGES[i],
                ImageFacts {
                    digest,
                    entrypoint,
                    source: None,
                },
            );
        }
        f
    })
}

/// Every fix strategy.
pub fn fix_strategy() -> impl Strategy<Value = FixStrategy> {
    prop_oneof![
        Just(FixStrategy::Auto),
        Just(FixStrategy::Args),
        Just(FixStrategy::Prepend)
    ]
}

/// Every `unknownImages` setting.
pub fn unknown_images() -> impl Strategy<Value = UnknownImages> {
    prop_oneof![
        Just(UnknownImages::Report),
        Just(UnknownImages::Args),
        Just(UnknownImages::Prepend),
        Just(UnknownImages::Ignore),
    ]
}

/// The facts plus the same facts under each pinned name, as a resolver
/// would give for `repo:tag@sha256:…`.
pub fn with_pinned(facts: &Facts, inspection: &Inspection) -> Facts {
    let mut all = facts.clone();
    for finding in &inspection.findings {
        if let Some(Change::Image { before, after }) = &finding.change
            && let Some(f) = facts.get(before)
        {
            all.insert(after.clone(), f.clone());
        }
    }
    all
}
