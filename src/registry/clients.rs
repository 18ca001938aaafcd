//! One oci-client client per (registry, credential).
//!
//! oci-client remembers the first credentials it is given for a registry, in
//! the client and all its clones, and caches tokens inside it. Sharing a
//! client between two credentials would let the first one answer for the
//! second, so every (registry, credential identity) pair gets its own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use oci_client::Client;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};

use super::guard::AccessPolicy;

/// The identity used for anonymous access.
pub(crate) const ANONYMOUS: &str = "anonymous";

/// How long an unused client (and its token cache) is kept.
const CLIENT_IDLE: Duration = Duration::from_secs(600);
/// Most clients kept.
const MAX_CLIENTS: u64 = 1024;

/// Why no client could be built for a registry (its CA certificate, say).
#[derive(Clone, Debug, thiserror::Error)]
#[error("cannot build a client for {registry}: {reason}")]
pub(crate) struct ClientError {
    /// The registry.
    pub(crate) registry: String,
    /// What oci-client said.
    pub(crate) reason: String,
}

/// Builds and keeps clients, each configured for its registry's transport.
pub(crate) struct ClientPool {
    clients: moka::future::Cache<(String, String), Client>,
    policy: Arc<AccessPolicy>,
    proxy_url: String,
    ca_pems: BTreeMap<String, Vec<u8>>,
    timeout: Duration,
}

impl ClientPool {
    /// A pool whose clients connect through the guarded proxy at `proxy_url`,
    /// trusting `ca_pems[registry]` in addition to the system roots.
    pub(crate) fn new(
        policy: Arc<AccessPolicy>,
        proxy_url: String,
        ca_pems: BTreeMap<String, Vec<u8>>,
        timeout: Duration,
    ) -> Self {
        ClientPool {
            clients: moka::future::Cache::builder()
                .max_capacity(MAX_CLIENTS)
                .time_to_idle(CLIENT_IDLE)
                .build(),
            policy,
            proxy_url,
            ca_pems,
            timeout,
        }
    }

    /// The client for `registry` used with the credential `identity`.
    pub(crate) async fn client(&self, registry: &str, identity: &str) -> Result<Client, ClientError> {
        let key = (registry.to_string(), identity.to_string());
        self.clients
            .try_get_with(key, async { self.build(registry) })
            .await
            .map_err(|e: Arc<ClientError>| (*e).clone())
    }

    /// A new client for `registry` (also used at startup to check CA files).
    pub(crate) fn build(&self, registry: &str) -> Result<Client, ClientError> {
        let protocol = if self.policy.is_insecure(registry) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let extra_root_certificates = self
            .ca_pems
            .get(registry)
            .map(|pem| {
                vec![Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                }]
            })
            .unwrap_or_default();
        let config = ClientConfig {
            protocol,
            extra_root_certificates,
            // Indexes are walked by the resolver itself, platform by platform.
            platform_resolver: None,
            read_timeout: Some(self.timeout),
            connect_timeout: Some(self.timeout),
            user_agent: concat!("entrypoint-guard/", env!("CARGO_PKG_VERSION")),
            https_proxy: Some(self.proxy_url.clone()),
            http_proxy: Some(self.proxy_url.clone()),
            ..Default::default()
        };
        Client::try_from(config).map_err(|e| ClientError {
            registry: registry.to_string(),
            reason: e.to_string(),
        })
    }
}
