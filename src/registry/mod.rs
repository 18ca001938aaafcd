//! The registry resolver: image facts from OCI registries.
//!
//! This is the only code that talks to a registry. For each image it finds
//! the digest the registry serves for the tag (HEAD with the manifest
//! `Accept` types, GET as fallback; the index digest for multi-arch images)
//! and every platform's config Entrypoint, skipping `unknown/unknown`
//! attestation entries.
//!
//! - `credentials`: where credentials come from ([`CredentialSource`]);
//!   `docker_config` parses Docker config JSON (helpers are never run);
//!   `kube_credentials` reads pull secrets from the API server;
//!   [`keychain`] speaks for the webhook's own cloud identity (ECR, Artifact
//!   Registry/GCR, ACR) and runs the kubelet's credential provider plugins.
//! - `mirrors`: the mirrors asked before a registry.
//! - `clients`: one oci-client client per (registry, credential).
//! - `cache`: moka cache keyed by credential identity and reference.
//! - `guard` and `proxy`: the SSRF guard, applied after DNS resolution
//!   to every connection (registry, token realm, redirects).
//! - `fetch`: manifests, indexes and configs.
//! - `limits`: the fan-out bounds (lookup slots, images and pull secrets
//!   per admission) and the count of each time one bites.
//! - `resolver`: [`RegistryResolver`], deadlines and coalescing.
//!
//! Wiring:
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use entrypoint_guard::config::RegistryConfig;
//! use entrypoint_guard::image::Resolver;
//! use entrypoint_guard::registry::{DockerConfigCredentials, RegistryResolver};
//!
//! let credentials = Arc::new(DockerConfigCredentials::from_default_location()?);
//! let resolver: Arc<dyn Resolver> = Arc::new(RegistryResolver::new(&RegistryConfig::default(), credentials)?);
//! # Ok(()) }
//! ```

pub(crate) mod cache;
pub(crate) mod clients;
pub(crate) mod credentials;
pub(crate) mod docker_config;
pub(crate) mod fetch;
pub(crate) mod guard;
pub mod keychain;
pub(crate) mod kube_credentials;
pub(crate) mod limits;
mod lookup;
pub(crate) mod mirrors;
pub(crate) mod proxy;
pub(crate) mod resolver;

pub use credentials::{
    ChainedCredentials, CredentialFileError, CredentialSource, DockerConfigCredentials, NoCredentials,
};
pub use docker_config::{DockerConfigError, RegistryCredential, ServerMatch, parse_config_json, parse_dockercfg};
pub use guard::{AccessPolicy, GuardError};
pub use keychain::{Environment, Keychain, Keychains, ManualClock, SystemClock};
pub use kube_credentials::KubeCredentials;
pub use limits::{LimitLabel, limit_metric};
pub use resolver::{RegistryError, RegistryResolver};
