//! Image references as written in a container's `image` field.
//!
//! The engine must rewrite what the user wrote (`nginx:1.25` becomes
//! `nginx:1.25@sha256:…`, not `docker.io/library/nginx:1.25@sha256:…`), while
//! the resolver needs the normalised registry, repository and tag. A
//! [`Reference`] keeps both.

use std::fmt;

/// The registry Docker Hub names resolve to.
pub(crate) const DOCKER_HUB: &str = "docker.io";

/// A parsed image reference that remembers the original string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    original: String,
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why an image string is not a valid reference.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The string is empty or only whitespace.
    #[error("image reference is empty")]
    Empty,
    /// The string is longer than any registry accepts.
    #[error("image reference is longer than 4096 characters")]
    TooLong,
    /// The digest part is not `algorithm:hex`.
    #[error("invalid digest {0:?}: expected algorithm:hex, e.g. sha256:<64 hex digits>")]
    Digest(String),
    /// The tag has characters a tag cannot have.
    #[error("invalid tag {0:?}: a tag is 1-128 characters of [A-Za-z0-9_.-], not starting with . or -")]
    Tag(String),
    /// The repository path has a component a registry would refuse.
    #[error("invalid repository {0:?}: components are lowercase [a-z0-9] separated by '.', '_', '__' or '-'")]
    Repository(String),
    /// The registry host part is malformed.
    #[error("invalid registry host {0:?}")]
    Registry(String),
}

impl Reference {
    /// Parses an image reference the way the container runtime does,
    /// normalising Docker Hub short names (`nginx` → `docker.io/library/nginx`).
    pub fn parse(image: &str) -> Result<Self, ReferenceError> {
        if image.trim().is_empty() {
            return Err(ReferenceError::Empty);
        }
        if image.len() > 4096 {
            return Err(ReferenceError::TooLong);
        }
        let (name_and_tag, digest) = match image.split_once('@') {
            Some((n, d)) => {
                validate_digest(d)?;
                (n, Some(d.to_string()))
            }
            None => (image, None),
        };
        // A ':' after the last '/' separates the tag; one before it is a port.
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                let tag = &name_and_tag[at + 1..];
                validate_tag(tag)?;
                (&name_and_tag[..at], Some(tag.to_string()))
            }
            None => (name_and_tag, None),
        };
        let (registry, repository) = split_registry(name)?;
        for component in repository.split('/') {
            if !valid_path_component(component) {
                return Err(ReferenceError::Repository(repository));
            }
        }
        Ok(Reference {
            original: image.to_string(),
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The string exactly as the user wrote it.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// The registry host (with port), `docker.io` for Docker Hub names.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, with `library/` added for official Docker Hub images.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag as written, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The tag the registry is asked for: the written tag, or `latest`.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// The digest as written, if the reference is already pinned.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The reference rewritten to name `digest`: the original string with
    /// `@digest` appended, keeping the tag for humans when `keep_tag` is set
    /// (`repo:tag@sha256:…`), otherwise `repo@sha256:…`.
    pub fn pinned(&self, digest: &str, keep_tag: bool) -> String {
        let without_digest = match self.original.split_once('@') {
            Some((n, _)) => n,
            None => &self.original,
        };
        let base = match (&self.tag, keep_tag) {
            (Some(tag), false) => &without_digest[..without_digest.len() - tag.len() - 1],
            _ => without_digest,
        };
        format!("{base}@{digest}")
    }

    /// The fully qualified name, e.g. `docker.io/library/nginx:1.25`, used as
    /// a stable key for caches and logs.
    pub fn canonical(&self) -> String {
        let mut s = format!("{}/{}", self.registry, self.repository);
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest);
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

fn split_registry(name: &str) -> Result<(String, String), ReferenceError> {
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    match rest {
        // The first component is a host when it looks like one: it has a dot,
        // a port, or is `localhost` (the rule Docker and containerd share).
        Some(rest) if first.contains('.') || first.contains(':') || first == "localhost" => {
            if !valid_host(first) {
                return Err(ReferenceError::Registry(first.to_string()));
            }
            let host = if first == "index.docker.io" || first == "registry-1.docker.io" {
                DOCKER_HUB
            } else {
                first
            };
            let repository = if host == DOCKER_HUB && !rest.contains('/') {
                format!("library/{rest}")
            } else {
                rest.to_string()
            };
            Ok((host.to_string(), repository))
        }
        Some(_) => Ok((DOCKER_HUB.to_string(), name.to_string())),
        None => Ok((DOCKER_HUB.to_string(), format!("library/{name}"))),
    }
}

fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        // An IPv6 literal is bracketed: `[::1]:5000`.
        Some((n, p)) if !n.ends_with(':') => (n, Some(p)),
        _ => (host, None),
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if let Some(v6) = name.strip_prefix('[') {
        return v6
            .strip_suffix(']')
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    }
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn valid_path_component(c: &str) -> bool {
    if c.is_empty() {
        return false;
    }
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    // Separators are '.', '_', '__' or one or more '-', between alphanumerics.
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::Tag(tag.to_string()))
    }
}

fn validate_digest(digest: &str) -> Result<(), ReferenceError> {
    let err = || ReferenceError::Digest(digest.to_string());
    let (algorithm, hex) = digest.split_once(':').ok_or_else(err)?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'.' | b'_' | b'-'));
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    let length_ok = match algorithm {
        "sha256" => hex.len() == 64,
        "sha512" => hex.len() == 128,
        _ => true,
    };
    if algorithm_ok && hex_ok && length_ok {
        Ok(())
    } else {
        Err(err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalises_docker_hub_names() {
        let r = Reference::parse("nginx").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("docker.io", "library/nginx", None)
        );
        assert_eq!(r.tag_or_latest(), "latest");
        let r = Reference::parse("bitnami/redis:7").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("docker.io", "bitnami/redis", Some("7"))
        );
        let r = Reference::parse("index.docker.io/nginx:1").unwrap();
        assert_eq!(r.canonical(), "docker.io/library/nginx:1");
    }

    #[test]
    fn keeps_registry_ports_apart_from_tags() {
        let r = Reference::parse("127.0.0.1:5000/chalk/bare:1.0").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "chalk/bare", Some("1.0"))
        );
        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!((r.registry(), r.tag()), ("localhost:5000", None));
        let r = Reference::parse("[::1]:5000/app:2").unwrap();
        assert_eq!((r.registry(), r.tag()), ("[::1]:5000", Some("2")));
    }

    #[test]
    fn pins_the_original_string() {
        let r = Reference::parse("nginx:1.25").unwrap();
        assert_eq!(r.pinned(D, true), format!("nginx:1.25@{D}"));
        assert_eq!(r.pinned(D, false), format!("nginx@{D}"));
        let r = Reference::parse("registry.example/app").unwrap();
        assert_eq!(r.pinned(D, true), format!("registry.example/app@{D}"));
        let r = Reference::parse(&format!("app:1@{D}")).unwrap();
        assert_eq!(r.digest(), Some(D));
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "  ",
            "UPPER/case",
            "app:",
            "app:-x",
            "app@sha256:zz",
            "a//b",
            "exa mple/x",
            "app@md5",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
