//! Which image resolver `serve` uses: offline facts over the registry.

use std::sync::Arc;

use crate::config::Config;
use crate::image::registry::{CredentialSource, KubeCredentials, NoCredentials, RegistryResolver};
use crate::image::{LayeredResolver, OfflineResolver, Resolver};

/// The webhook's resolver: configuration `imageFacts` (and `--images`) for
/// the images they name, the registry for the rest when `registry.enabled`.
///
/// With `registry.pullSecrets`, credentials come from each Pod's and its
/// ServiceAccount's `imagePullSecrets`, read through the Kubernetes API. When
/// no cluster configuration can be found (a laptop trying `--self-signed`),
/// lookups go anonymous and a warning says so. Must run inside the runtime
/// that will serve: the registry resolver starts its connection guard there.
pub async fn build(config: &Config) -> Result<Arc<dyn Resolver>, String> {
    let offline = OfflineResolver::new(config.facts());
    if !config.registry.enabled {
        return Ok(Arc::new(offline));
    }
    let credentials: Arc<dyn CredentialSource> = if config.registry.pull_secrets {
        match crate::cluster::connect(None, None).await {
            Ok(client) => Arc::new(KubeCredentials::new(client)),
            Err(e) => {
                tracing::warn!(error = %e, "registry.pullSecrets is on but there is no cluster to read pull secrets from; registry lookups are anonymous");
                Arc::new(NoCredentials)
            }
        }
    } else {
        Arc::new(NoCredentials)
    };
    let registry = RegistryResolver::new(&config.registry, credentials).map_err(|e| format!("registry: {e}"))?;
    Ok(Arc::new(LayeredResolver::new(offline, Arc::new(registry))))
}
