//! The image resolver of each front end, built in one place from the
//! configuration and the command line: the offline facts (configuration
//! `imageFacts`, then each `--images` file, later ones winning) answer for
//! the images they name, and, when registries are asked, the registry
//! resolver answers for the rest with one credential chain: the pull
//! secrets of the workload (and its ServiceAccount), then a Docker config.
//! `serve`, `review --resolve` and `audit --resolve` differ only in which
//! credentials they bring ([`Credentials`]).

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{self, Config, ConfigError};
use crate::image::{LayeredResolver, OfflineResolver, Resolver};
use crate::registry::{
    ChainedCredentials, CredentialSource, DockerConfigCredentials, KubeCredentials, RegistryError, RegistryResolver,
};

/// Where registry credentials come from, tried in this order.
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    /// Reads `imagePullSecrets` of the Pod and of its ServiceAccount through
    /// this client (`registry.pullSecrets`).
    pub pull_secrets: Option<kube::Client>,
    /// A Docker config's `auths` (its helpers are never run).
    pub docker_config: Option<DockerConfigCredentials>,
}

/// Why the resolver could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    /// An `--images` file cannot be used.
    #[error("--images: {0}")]
    ImageFacts(#[from] ConfigError),
    /// The registry resolver cannot start (bad CA file, guard, credential source).
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
}

/// The offline facts: the configuration's `imageFacts` with each of
/// `image_files` merged over them, later files winning.
pub(crate) fn offline(config: &Config, image_files: &[PathBuf]) -> Result<OfflineResolver, ConfigError> {
    let mut entries = config.image_facts.clone();
    for path in image_files {
        entries.extend(config::load_image_facts(path)?);
    }
    Ok(OfflineResolver::new(config::facts_from(&entries)))
}

/// `offline` over the registries (configured by `config.registry`), asked
/// with `credentials`. Must run inside the Tokio runtime that will drive the
/// lookups: the registry resolver starts its connection guard there.
pub(crate) fn with_registries(
    config: &Config,
    offline: OfflineResolver,
    credentials: Credentials,
) -> Result<Arc<dyn Resolver>, RegistryError> {
    let mut chain: Vec<Arc<dyn CredentialSource>> = Vec::new();
    if let Some(client) = credentials.pull_secrets {
        chain.push(Arc::new(KubeCredentials::new(
            client,
            config.registry.max_pull_secrets_per_admission,
        )));
    }
    if let Some(docker_config) = credentials.docker_config {
        chain.push(Arc::new(docker_config));
    }
    let registry = RegistryResolver::new(&config.registry, Arc::new(ChainedCredentials::new(chain)))?;
    Ok(Arc::new(LayeredResolver::new(offline, Arc::new(registry))))
}

/// The resolver: the offline facts alone when `registries` is `None`, else
/// over the registries asked with those credentials (see [`with_registries`]).
pub(crate) fn build(
    config: &Config,
    image_files: &[PathBuf],
    registries: Option<Credentials>,
) -> Result<Arc<dyn Resolver>, ResolverError> {
    let offline = offline(config, image_files)?;
    Ok(match registries {
        None => Arc::new(offline),
        Some(credentials) => with_registries(config, offline, credentials)?,
    })
}
