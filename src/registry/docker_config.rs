//! Registry credentials from Docker config JSON (`.dockerconfigjson`,
//! legacy `.dockercfg`, `~/.docker/config.json`), parsed here.
//!
//! Credential helpers (`credHelpers`, `credsStore`) are never run: a webhook
//! must not execute programs named by a Secret, and the CLI keeps the same
//! behaviour so that both agree.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::image::reference::{DOCKER_HUB, Reference};

/// Docker config JSON that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DockerConfigError {
    /// Not JSON of the expected shape.
    #[error("{origin}: not a Docker config: {reason}")]
    Json {
        /// Where the config came from (file path, `secret ns/name`).
        origin: String,
        /// The JSON error, with its location.
        reason: String,
    },
    /// An `auth` value is not base64 of `user:password`.
    #[error("{origin}: auths[{server:?}].auth is not base64 of \"user:password\"")]
    Auth {
        /// Where the config came from.
        origin: String,
        /// The `auths` key.
        server: String,
    },
}

/// Which images a credential applies to: a registry host (or `*.domain`
/// wildcard) and optionally a repository path prefix, as the kubelet matches them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerMatch {
    host: String,
    path: Option<String>,
}

impl ServerMatch {
    /// Parses a docker config key: `host[:port][/path]`, optionally with a
    /// scheme; Docker Hub's many spellings become `docker.io`.
    pub fn parse(key: &str) -> Self {
        let key = key.trim();
        let key = key
            .strip_prefix("https://")
            .or_else(|| key.strip_prefix("http://"))
            .unwrap_or(key);
        let (host, path) = match key.split_once('/') {
            Some((h, p)) => (h, p.trim_matches('/')),
            None => (key, ""),
        };
        let mut host = host.to_ascii_lowercase();
        let mut path = (!path.is_empty()).then(|| path.to_string());
        if matches!(host.as_str(), "index.docker.io" | "registry-1.docker.io" | DOCKER_HUB) {
            host = DOCKER_HUB.to_string();
            // `https://index.docker.io/v1/` names the registry, not a repository.
            if matches!(path.as_deref(), Some("v1" | "v2")) {
                path = None;
            }
        }
        ServerMatch { host, path }
    }

    /// Whether an image in `registry`/`repository` is covered.
    pub fn matches(&self, registry: &str, repository: &str) -> bool {
        let registry = registry.to_ascii_lowercase();
        let host_ok = match self.host.strip_prefix("*.") {
            // One wildcard label, as the kubelet does.
            Some(suffix) => registry
                .strip_suffix(suffix)
                .and_then(|l| l.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.')),
            None => registry == self.host,
        };
        host_ok
            && self.path.as_deref().is_none_or(|p| {
                repository == p || repository.starts_with(p) && repository.as_bytes().get(p.len()) == Some(&b'/')
            })
    }

    /// More specific matches sort first: a path beats none, a longer one beats a shorter.
    fn specificity(&self) -> (usize, bool) {
        (
            self.path.as_ref().map_or(0, |p| p.len() + 1),
            !self.host.starts_with("*."),
        )
    }
}

impl fmt::Display for ServerMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{}/{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// A username and password for the registries a [`ServerMatch`] covers.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryCredential {
    server: ServerMatch,
    username: String,
    password: String,
    identity: String,
    origin: String,
}

impl RegistryCredential {
    /// A credential for `server` (a docker config key), from `origin` (for logs).
    pub fn new(server: &str, username: &str, password: &str, origin: &str) -> Self {
        let server = ServerMatch::parse(server);
        // The identity is derived from the content, so the same secret read
        // twice keys the same cache entries, and different ones never share.
        let mut h = Sha256::new();
        for part in [server.to_string().as_str(), username, password] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let digest = h.finalize();
        let identity: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        RegistryCredential {
            server,
            username: username.to_string(),
            password: password.to_string(),
            identity,
            origin: origin.to_string(),
        }
    }

    /// Which images this credential is for.
    pub fn server(&self) -> &ServerMatch {
        &self.server
    }

    /// Whether the credential applies to `reference`.
    pub fn matches(&self, reference: &Reference) -> bool {
        self.server.matches(reference.registry(), reference.repository())
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password (or token).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A stable identity (a hash of server, username and password) that keys
    /// clients and cache entries without revealing the secret.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Where the credential came from, e.g. `secret demo/regcred`.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl fmt::Debug for RegistryCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryCredential")
            .field("server", &self.server.to_string())
            .field("username", &self.username)
            .field("identity", &self.identity)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, serde_json::Value>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// Parses `.dockerconfigjson` / `config.json` (`{"auths": {...}}`).
pub fn parse_config_json(bytes: &[u8], origin: &str) -> Result<Vec<RegistryCredential>, DockerConfigError> {
    let config: ConfigJson = from_json(bytes, origin)?;
    if !config.cred_helpers.is_empty() || config.creds_store.is_some() {
        tracing::debug!(
            origin,
            "credHelpers/credsStore ignored: credential helpers are never run"
        );
    }
    entries(config.auths, origin)
}

/// Parses a legacy `.dockercfg` (`{"server": {"auth": ...}}`, no `auths` level).
pub fn parse_dockercfg(bytes: &[u8], origin: &str) -> Result<Vec<RegistryCredential>, DockerConfigError> {
    let auths: BTreeMap<String, AuthEntry> = from_json(bytes, origin)?;
    entries(auths, origin)
}

fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8], origin: &str) -> Result<T, DockerConfigError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| DockerConfigError::Json {
        origin: origin.to_string(),
        reason: format!("at {}: {}", e.path(), e.inner()),
    })
}

fn entries(auths: BTreeMap<String, AuthEntry>, origin: &str) -> Result<Vec<RegistryCredential>, DockerConfigError> {
    let mut out = Vec::new();
    for (server, entry) in auths {
        let from_auth = match entry.auth.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            Some(auth) => Some(decode_auth(auth).ok_or_else(|| DockerConfigError::Auth {
                origin: origin.to_string(),
                server: server.clone(),
            })?),
            None => None,
        };
        let pair = match (from_auth, entry.username, entry.password) {
            (Some(pair), _, _) => Some(pair),
            (None, Some(u), Some(p)) if !u.is_empty() => Some((u, p)),
            _ => None,
        };
        match pair {
            Some((user, password)) => out.push(RegistryCredential::new(&server, &user, &password, origin)),
            None if entry.identity_token.is_some() => {
                tracing::debug!(origin, server, "identity tokens are not supported; entry ignored")
            }
            None => tracing::debug!(origin, server, "entry has no auth or username/password; ignored"),
        }
    }
    sort_by_specificity(&mut out);
    Ok(out)
}

/// Most specific server matches first, so `reg.io/team` wins over `reg.io`.
pub(crate) fn sort_by_specificity(creds: &mut [RegistryCredential]) {
    creds.sort_by_key(|c| std::cmp::Reverse(c.server.specificity()));
}

fn decode_auth(auth: &str) -> Option<(String, String)> {
    let engine = base64::engine::general_purpose::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(auth).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn parses_auth_and_username_password_entries() {
        let json = format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}},
                "reg.example:5000": {{"username": "u2", "password": "p:2"}},
                "helper.example": {{}}}},
              "credHelpers": {{"gcr.io": "gcloud"}}, "credsStore": "desktop"}}"#,
            b64("alice:s3cret")
        );
        let creds = parse_config_json(json.as_bytes(), "test").unwrap();
        assert_eq!(creds.len(), 2);
        let hub = creds.iter().find(|c| c.username() == "alice").unwrap();
        assert_eq!(hub.password(), "s3cret");
        assert!(hub.matches(&Reference::parse("nginx:1").unwrap()));
        let other = creds.iter().find(|c| c.username() == "u2").unwrap();
        assert_eq!(other.password(), "p:2");
        assert!(other.matches(&Reference::parse("reg.example:5000/a/b:1").unwrap()));
        assert!(!other.matches(&Reference::parse("reg.example/a/b:1").unwrap()));
    }

    #[test]
    fn legacy_dockercfg_has_no_auths_level() {
        let json = format!(r#"{{"quay.io": {{"auth": "{}", "email": "x@y"}}}}"#, b64("bob:pw"));
        let creds = parse_dockercfg(json.as_bytes(), "test").unwrap();
        assert_eq!((creds[0].username(), creds[0].password()), ("bob", "pw"));
    }

    #[test]
    fn bad_auth_names_the_entry() {
        let err = parse_config_json(br#"{"auths": {"r.io": {"auth": "%%%"}}}"#, "secret ns/x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret ns/x: auths[\"r.io\"].auth is not base64 of \"user:password\""
        );
        let err = parse_config_json(br#"{"auths": []}"#, "f.json").unwrap_err();
        assert!(
            err.to_string().starts_with("f.json: not a Docker config: at auths"),
            "{err}"
        );
    }

    #[test]
    fn paths_and_wildcards_match_like_the_kubelet() {
        let team = ServerMatch::parse("reg.io/team");
        assert!(team.matches("reg.io", "team/app"));
        assert!(team.matches("reg.io", "team"));
        assert!(!team.matches("reg.io", "teamx/app"));
        let wild = ServerMatch::parse("*.example.com");
        assert!(wild.matches("r.example.com", "x"));
        assert!(!wild.matches("a.b.example.com", "x"));
        assert!(!wild.matches("example.com", "x"));
        let mut creds = vec![
            RegistryCredential::new("reg.io", "a", "1", "t"),
            RegistryCredential::new("reg.io/team", "b", "2", "t"),
        ];
        sort_by_specificity(&mut creds);
        assert_eq!(creds[0].username(), "b");
    }

    #[test]
    fn identity_depends_on_content_and_hides_the_secret() {
        let a = RegistryCredential::new("r.io", "u", "p1", "x");
        let b = RegistryCredential::new("r.io", "u", "p2", "y");
        let a2 = RegistryCredential::new("https://r.io/", "u", "p1", "z");
        assert_ne!(a.identity(), b.identity());
        assert_eq!(a.identity(), a2.identity());
        assert!(!format!("{a:?}").contains("p1"));
    }
}
