//! Where registry credentials come from for one lookup.
//!
//! A [`CredentialSource`] answers, for the object being looked at, which
//! credentials may be used: the Pod's and its ServiceAccount's pull secrets
//! when serving ([`super::KubeCredentials`]), the user's Docker config for the
//! CLI ([`DockerConfigCredentials`]). Each credential carries a content-derived
//! identity that keys clients and cache entries, so one namespace's secret
//! never serves another namespace's lookup.

use std::path::{Path, PathBuf};

use futures::future::BoxFuture;

use super::docker_config::{DockerConfigError, RegistryCredential, parse_config_json};
use crate::image::resolver::LookupContext;

/// Supplies the credentials a lookup for `ctx` may use, in order of preference.
pub trait CredentialSource: Send + Sync {
    /// Every credential available to `ctx` (for any registry); the resolver
    /// picks those that match each image. Failures to read some of them are
    /// logged by the source, which returns what it could read.
    fn credentials<'a>(&'a self, ctx: &'a LookupContext) -> BoxFuture<'a, Vec<RegistryCredential>>;
}

/// No credentials: every registry is accessed anonymously.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCredentials;

impl CredentialSource for NoCredentials {
    fn credentials<'a>(&'a self, _ctx: &'a LookupContext) -> BoxFuture<'a, Vec<RegistryCredential>> {
        Box::pin(std::future::ready(Vec::new()))
    }
}

/// Several sources asked in turn, their credentials concatenated in order
/// (so the first source's credentials are tried first): `audit --resolve`
/// uses a workload's pull secrets, then the user's `--docker-config`.
#[derive(Clone, Default)]
pub struct ChainedCredentials {
    sources: Vec<std::sync::Arc<dyn CredentialSource>>,
}

impl ChainedCredentials {
    /// Asks `sources` in this order.
    pub fn new(sources: Vec<std::sync::Arc<dyn CredentialSource>>) -> Self {
        ChainedCredentials { sources }
    }
}

impl CredentialSource for ChainedCredentials {
    fn credentials<'a>(&'a self, ctx: &'a LookupContext) -> BoxFuture<'a, Vec<RegistryCredential>> {
        Box::pin(async move {
            let all = futures::future::join_all(self.sources.iter().map(|s| s.credentials(ctx))).await;
            all.into_iter().flatten().collect()
        })
    }
}

/// A Docker config file read with the CLI's user's rights (`review --resolve`);
/// the same credentials for every lookup.
#[derive(Clone, Debug, Default)]
pub struct DockerConfigCredentials {
    credentials: Vec<RegistryCredential>,
}

/// A Docker config file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialFileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file's content is not a usable Docker config.
    #[error(transparent)]
    Parse(#[from] DockerConfigError),
}

impl DockerConfigCredentials {
    /// Credentials from `config.json` content; `origin` names it in errors.
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Self, DockerConfigError> {
        Ok(DockerConfigCredentials {
            credentials: parse_config_json(bytes, origin)?,
        })
    }

    /// Credentials from the Docker config file at `path`.
    pub fn from_path(path: &Path) -> Result<Self, CredentialFileError> {
        let bytes = std::fs::read(path).map_err(|source| CredentialFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::from_json(&bytes, &path.display().to_string())?)
    }

    /// Credentials from `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`;
    /// none (anonymous access) when neither exists.
    pub fn from_default_location() -> Result<Self, CredentialFileError> {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
        match dir.map(|d| d.join("config.json")) {
            Some(path) if path.exists() => Self::from_path(&path),
            other => {
                tracing::debug!(path = ?other, "no Docker config file; registries are accessed anonymously");
                Ok(Self::default())
            }
        }
    }

    /// The credentials read.
    pub fn credentials(&self) -> &[RegistryCredential] {
        &self.credentials
    }
}

impl CredentialSource for DockerConfigCredentials {
    fn credentials<'a>(&'a self, _ctx: &'a LookupContext) -> BoxFuture<'a, Vec<RegistryCredential>> {
        Box::pin(std::future::ready(self.credentials.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chained_sources_keep_their_order() {
        let first =
            DockerConfigCredentials::from_json(br#"{"auths": {"a.io": {"username": "a", "password": "1"}}}"#, "first")
                .unwrap();
        let second =
            DockerConfigCredentials::from_json(br#"{"auths": {"b.io": {"username": "b", "password": "2"}}}"#, "second")
                .unwrap();
        let chain = ChainedCredentials::new(vec![
            std::sync::Arc::new(first),
            std::sync::Arc::new(NoCredentials),
            std::sync::Arc::new(second),
        ]);
        let creds = futures::executor::block_on(chain.credentials(&LookupContext::default()));
        let users: Vec<&str> = creds.iter().map(|c| c.username()).collect();
        assert_eq!(users, ["a", "b"]);
    }

    #[test]
    fn reads_a_config_file_and_names_it_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"auths": {"r.io": {"username": "u", "password": "p"}}}"#).unwrap();
        let creds = DockerConfigCredentials::from_path(&path).unwrap();
        assert_eq!(creds.credentials().len(), 1);
        std::fs::write(&path, "{").unwrap();
        let err = DockerConfigCredentials::from_path(&path).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        let missing = DockerConfigCredentials::from_path(&dir.path().join("nope.json")).unwrap_err();
        assert!(matches!(missing, CredentialFileError::Read { .. }));
    }
}
