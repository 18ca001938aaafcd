//! Reading one image's facts from a registry with an oci-client client:
//! the tag's digest, its manifest (or index), and each platform's config.

use std::collections::BTreeMap;

use futures::{StreamExt as _, TryStreamExt as _};
use oci_client::Client;
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::image::facts::{Entrypoint, PlatformEntrypoint};

/// The manifest media types asked for. Without the OCI types a registry
/// answers 404 for OCI images; without any, it may serve a schema1 manifest
/// whose digest is not the one the tag's content has.
pub(crate) const MANIFEST_ACCEPT: &[&str] = &[
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
];

/// Largest image config read; real ones are a few KiB (history can add some).
const MAX_CONFIG_BYTES: usize = 4 << 20;
/// Most platforms of an index read.
const MAX_PLATFORMS: usize = 64;
/// Platform configs of one index read at once (the chart's memory arithmetic counts them).
const PLATFORM_READS_AT_ONCE: usize = 4;
/// What buildx marks attestation manifests with.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// Why a lookup failed, worded for the user (it ends up in a finding).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct LookupError(pub String);

impl LookupError {
    fn registry(what: &str, err: &OciDistributionError) -> Self {
        LookupError(format!("{what}: {}", describe(err)))
    }
}

/// A concise description of an oci-client error, with the cause chain of
/// network errors (which say "connection refused" only in their sources).
pub(crate) fn describe(err: &OciDistributionError) -> String {
    match err {
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .map(|e| format!("{:?}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        OciDistributionError::UnauthorizedError { .. } => {
            "unauthorized: the registry refused the credentials (or their absence)".to_string()
        }
        OciDistributionError::ServerError { code, message, .. } => {
            let message: String = message.trim().chars().take(200).collect();
            format!("HTTP {code} {message}")
        }
        other => crate::error::chain(other),
    }
}

/// The digest the registry serves for `reference` (a tag): HEAD with the
/// manifest `Accept` types, GET when the HEAD answer has no digest header.
pub(crate) async fn manifest_digest(
    client: &Client,
    auth: &RegistryAuth,
    reference: &oci_client::Reference,
) -> Result<String, LookupError> {
    client
        .fetch_manifest_digest(reference, auth)
        .await
        .map_err(|e| LookupError::registry(&format!("manifest of {reference}"), &e))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<IndexEntry>>,
    #[serde(default)]
    config: Option<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexEntry {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Platform {
    architecture: String,
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

impl Platform {
    fn name(&self) -> String {
        match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", self.os, self.architecture),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
}

#[derive(Deserialize)]
struct ImageConfig {
    #[serde(default)]
    config: Option<ContainerConfig>,
}

#[derive(Deserialize)]
struct ContainerConfig {
    #[serde(default, rename = "Entrypoint")]
    entrypoint: Option<Vec<String>>,
}

/// The Entrypoint facts of the manifest (or index) `reference` names by digest.
pub(crate) async fn entrypoint_of(
    client: &Client,
    auth: &RegistryAuth,
    reference: &oci_client::Reference,
) -> Result<Entrypoint, LookupError> {
    let manifest = get_manifest(client, auth, reference).await?;
    let Some(entries) = manifest.manifests else {
        let entrypoint = image_entrypoint(client, reference, manifest).await?;
        return Ok(Entrypoint::Known { entrypoint });
    };
    let platforms: Vec<(String, String)> = entries
        .into_iter()
        .filter(|e| is_image_manifest(e.media_type.as_deref()))
        .filter(|e| e.annotations.get(REFERENCE_TYPE).map(String::as_str) != Some("attestation-manifest"))
        .filter_map(|e| {
            // `unknown/unknown` entries are attestations, not runnable images.
            let name = e
                .platform
                .as_ref()
                .map_or_else(|| "unspecified".to_string(), Platform::name);
            let unknown = e
                .platform
                .as_ref()
                .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown");
            (!unknown).then_some((name, e.digest))
        })
        .collect();
    if platforms.is_empty() {
        return Err(LookupError(format!("index {reference} lists no image manifests")));
    }
    if platforms.len() > MAX_PLATFORMS {
        return Err(LookupError(format!(
            "index {reference} lists {} platforms; at most {MAX_PLATFORMS} are read",
            platforms.len()
        )));
    }
    // Owned items: a stream of futures borrowing from the list cannot be spawned.
    let reads = platforms.into_iter().map(|(name, digest)| async move {
        let child = reference.clone_with_digest(digest);
        let manifest = get_manifest(client, auth, &child).await?;
        if manifest.manifests.is_some() {
            return Err(LookupError(format!(
                "{child} ({name}) is a nested index; not supported"
            )));
        }
        let entrypoint = image_entrypoint(client, &child, manifest).await?;
        Ok::<_, LookupError>(PlatformEntrypoint {
            platform: name,
            entrypoint,
        })
    });
    // A few at a time, in order: each read may hold an image config of up to
    // MAX_CONFIG_BYTES, and a lookup must not hold 64 of them at once.
    let platforms: Vec<PlatformEntrypoint> = futures::stream::iter(reads)
        .buffered(PLATFORM_READS_AT_ONCE)
        .try_collect()
        .await?;
    let first = &platforms[0].entrypoint;
    if platforms.iter().all(|p| &p.entrypoint == first) {
        Ok(Entrypoint::Known {
            entrypoint: first.clone(),
        })
    } else {
        Ok(Entrypoint::PlatformsDisagree { platforms })
    }
}

fn is_image_manifest(media_type: Option<&str>) -> bool {
    // Entries without a media type are taken as images (old Docker lists).
    media_type.is_none_or(|m| m == OCI_IMAGE_MEDIA_TYPE || m == IMAGE_MANIFEST_MEDIA_TYPE)
}

async fn get_manifest(
    client: &Client,
    auth: &RegistryAuth,
    reference: &oci_client::Reference,
) -> Result<Manifest, LookupError> {
    let (body, _digest) = client
        .pull_manifest_raw(reference, auth, MANIFEST_ACCEPT)
        .await
        .map_err(|e| LookupError::registry(&format!("manifest {reference}"), &e))?;
    let manifest: Manifest = serde_json::from_slice(&body)
        .map_err(|e| LookupError(format!("manifest {reference} is not a manifest: {e}")))?;
    if let Some(mt) = manifest.media_type.as_deref()
        && !MANIFEST_ACCEPT.contains(&mt)
    {
        return Err(LookupError(format!(
            "manifest {reference} has unsupported media type {mt}"
        )));
    }
    Ok(manifest)
}

/// Reads the config of an image manifest (the client already holds the auth
/// from fetching the manifest).
async fn image_entrypoint(
    client: &Client,
    reference: &oci_client::Reference,
    manifest: Manifest,
) -> Result<Vec<String>, LookupError> {
    let config = manifest
        .config
        .ok_or_else(|| LookupError(format!("manifest {reference} has no config")))?;
    let mut stream = client
        .pull_blob_stream(reference, config.digest.as_str())
        .await
        .map_err(|e| LookupError::registry(&format!("config {} of {reference}", config.digest), &e))?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| LookupError(format!("config {} of {reference}: {e}", config.digest)))?;
        if bytes.len() + chunk.len() > MAX_CONFIG_BYTES {
            return Err(LookupError(format!(
                "config {} of {reference} is larger than {MAX_CONFIG_BYTES} bytes",
                config.digest
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    let parsed: ImageConfig = serde_json::from_slice(&bytes).map_err(|e| {
        LookupError(format!(
            "config {} of {reference} is not an image config: {e}",
            config.digest
        ))
    })?;
    Ok(parsed.config.and_then(|c| c.entrypoint).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_entrypoints_from_image_configs() {
        let c: ImageConfig =
            serde_json::from_str(r#"{"architecture":"amd64","config":{"Entrypoint":["/chalk","exec","--"]}}"#).unwrap();
        assert_eq!(c.config.unwrap().entrypoint.unwrap(), ["/chalk", "exec", "--"]);
        let c: ImageConfig = serde_json::from_str(r#"{"config":{"Entrypoint":null,"Cmd":["sh"]}}"#).unwrap();
        assert_eq!(c.config.unwrap().entrypoint, None);
        let c: ImageConfig = serde_json::from_str(r#"{"architecture":"amd64"}"#).unwrap();
        assert!(c.config.is_none());
    }

    #[test]
    fn names_platforms() {
        let p = Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
        };
        assert_eq!(p.name(), "linux/arm64/v8");
        assert!(is_image_manifest(None));
        assert!(!is_image_manifest(Some(OCI_IMAGE_INDEX_MEDIA_TYPE)));
    }
}
