//! `review --resolve`: image facts from registries, under the offline ones.
//!
//! Review is synchronous; a Tokio runtime is built only here, when
//! `--resolve` asks for registries. The registry resolver is the webhook's
//! ([`RegistryResolver`]) with the user's Docker config for credentials, and
//! the offline facts (configuration `imageFacts`, `--images`) win for the
//! images they name ([`LayeredResolver`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::reviewer::FactSource;
use crate::config::RegistryConfig;
use crate::image::registry::{CredentialSource, DockerConfigCredentials, RegistryResolver};
use crate::image::{LayeredResolver, OfflineResolver};

/// Credentials from `docker_config`, or from `$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json` when it is `None` (anonymous when that file does
/// not exist). A file named explicitly must exist and parse.
pub fn docker_credentials(docker_config: Option<&Path>) -> Result<DockerConfigCredentials, String> {
    let read = match docker_config {
        Some(path) => DockerConfigCredentials::from_path(path),
        None => DockerConfigCredentials::from_default_location(),
    };
    read.map_err(|e| format!("docker config: {e}"))
}

/// A multi-threaded runtime for registry lookups (the resolver's tasks and
/// its connection guard run on its workers while the caller blocks).
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("registry")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// The fact source of `review --resolve`: `offline` facts over the registry
/// resolver built from `registry` with `credentials`, `timeout` per input file.
pub fn fact_source(
    registry: &RegistryConfig,
    credentials: Arc<dyn CredentialSource>,
    offline: OfflineResolver,
    timeout: Duration,
) -> Result<FactSource, String> {
    let runtime = Arc::new(runtime()?);
    // The resolver starts its connection guard on the current runtime.
    let resolver = {
        let _entered = runtime.enter();
        RegistryResolver::new(registry, credentials).map_err(|e| e.to_string())?
    };
    Ok(FactSource::Resolver {
        resolver: Arc::new(LayeredResolver::new(offline, Arc::new(resolver))),
        timeout,
        runtime,
    })
}
