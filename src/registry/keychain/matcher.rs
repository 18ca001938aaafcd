//! Matching images against registry patterns exactly as the kubelet matches
//! a credential provider's `matchImages` (and a response's `auth` keys).
//!
//! kubernetes/kubernetes `pkg/credentialprovider/keyring.go` (`URLsMatch`):
//! the ports must be equal (a pattern without a port matches only images
//! without one); both hosts have the same number of DNS labels and each
//! label matches its glob (`filepath.Match`: `*` never crosses a `.`); the
//! pattern's path is a string prefix of the image's path. Documented at
//! kubernetes.io, "Kubelet Configuration (v1)", `CredentialProvider.matchImages`.

use globset::{GlobBuilder, GlobMatcher};

use crate::image::reference::Reference;

/// One compiled pattern.
#[derive(Clone, Debug)]
struct Compiled {
    source: String,
    labels: Vec<GlobMatcher>,
    port: String,
    path: String,
}

/// A set of patterns; an image matches when any of them does.
#[derive(Clone, Debug, Default)]
pub struct ImageMatcher {
    patterns: Vec<Compiled>,
}

/// `host[:port]` → (host, port), as Go's `net.SplitHostPort` (no port: empty).
fn split_port(host_port: &str) -> (&str, &str) {
    match host_port.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => (host, port),
        _ => (host_port, ""),
    }
}

/// `host[:port][/path]` → (host, port, `/path` or empty).
fn split(s: &str) -> (&str, &str, String) {
    let (host_port, path) = match s.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (s, String::new()),
    };
    let (host, port) = split_port(host_port);
    (host, port, path)
}

/// A `matchImages` pattern whose label is no glob.
#[derive(Debug, thiserror::Error)]
#[error("{pattern:?}: {source}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// Why a label of it is no glob.
    pub source: globset::Error,
}

impl ImageMatcher {
    /// Compiles `patterns`; an error names the first bad one.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let mut compiled = Vec::new();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            let (host, port, path) = split(pattern);
            let labels = host
                .split('.')
                .map(|label| {
                    GlobBuilder::new(label)
                        .literal_separator(true)
                        .backslash_escape(true)
                        .build()
                        .map(|g| g.compile_matcher())
                        .map_err(|source| PatternError {
                            pattern: pattern.to_string(),
                            source,
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            compiled.push(Compiled {
                source: pattern.to_string(),
                labels,
                port: port.to_string(),
                path,
            });
        }
        Ok(ImageMatcher { patterns: compiled })
    }

    /// Whether `image` (`host[:port]/path`, no tag) matches a pattern.
    pub fn matches(&self, image: &str) -> bool {
        self.first_match(image).is_some()
    }

    /// The first pattern `image` matches.
    pub fn first_match(&self, image: &str) -> Option<&str> {
        let (host, port, path) = split(image);
        let labels: Vec<&str> = host.split('.').collect();
        self.patterns
            .iter()
            .find(|p| {
                p.port == port
                    && p.labels.len() == labels.len()
                    && path.starts_with(&p.path)
                    && p.labels.iter().zip(&labels).all(|(glob, label)| glob.is_match(label))
            })
            .map(|p| p.source.as_str())
    }

    /// Whether `reference`'s registry and repository match.
    pub fn matches_reference(&self, reference: &Reference) -> bool {
        self.matches(&image_name(reference))
    }
}

/// `registry/repository`: the image name the kubelet matches and sends to plugins.
pub fn image_name(reference: &Reference) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, image: &str) -> bool {
        ImageMatcher::new(&[pattern]).unwrap().matches(image)
    }

    /// The examples of the kubelet's `matchImages` documentation and of
    /// `URLsMatch`'s own comment and tests.
    #[test]
    fn matches_like_the_kubelet() {
        assert!(m(
            "123456789.dkr.ecr.us-east-1.amazonaws.com",
            "123456789.dkr.ecr.us-east-1.amazonaws.com/app"
        ));
        assert!(m("*.azurecr.io", "myreg.azurecr.io/team/app"));
        assert!(!m("*.azurecr.io", "a.b.azurecr.io/app"), "one label per wildcard");
        assert!(!m("*.azurecr.io", "azurecr.io/app"));
        assert!(m("gcr.io", "gcr.io/project/app"));
        assert!(!m("gcr.io", "eu.gcr.io/project/app"));
        assert!(m("*.*.registry.io", "a.b.registry.io/x"));
        assert!(!m("*.*.registry.io", "b.registry.io/x"));
        assert!(m("registry.io:8080/path", "registry.io:8080/path/app"));
        assert!(
            !m("registry.io:8080/path", "registry.io/path/app"),
            "the port must match"
        );
        assert!(
            !m("registry.io", "registry.io:8080/app"),
            "an image port needs a pattern port"
        );
        assert!(!m("registry.io:8080/path", "registry.io:8080/other"));
        assert!(
            m("registry.io/path", "registry.io/pathology"),
            "the path is a string prefix"
        );
        assert!(m("*.docker.io", "blah.docker.io/x"));
        assert!(!m("*.docker.io", "not.right.io/x"));
        assert!(m("k8s.*.io", "k8s.gcr.io/pause"));
        assert!(m("k8s.*", "k8s.io/x"));
        assert!(m("*-docker.pkg.dev", "europe-west1-docker.pkg.dev/p/r/app"));
        assert!(m("127.0.0.1:5000", "127.0.0.1:5000/chalk/bare"));
    }

    #[test]
    fn bad_patterns_are_named() {
        let e = ImageMatcher::new(&["[.io"]).unwrap_err();
        assert!(e.to_string().contains("[.io"), "{e}");
    }
}
