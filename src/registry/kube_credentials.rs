//! Pull-secret credentials read from the Kubernetes API when serving.
//!
//! The kubelet pulls with the Pod's `imagePullSecrets` and those of its
//! ServiceAccount; a workload template does not carry the latter (the
//! ServiceAccount admission plugin adds them to Pods only), so both are read.
//! RBAC: `get` on `secrets` and `serviceaccounts`, nothing else. Reads are
//! cached briefly so a burst of admissions does not hammer the API server,
//! and at most `registry.maxPullSecretsPerAdmission` pull-secret names, and
//! as many ServiceAccounts, are read for one admission (one GET each),
//! whatever the object lists: a custom kind may hold any number of pod
//! specs, each naming its own ServiceAccount.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Api;

use super::credentials::CredentialSource;
use super::docker_config::{DockerConfigError, RegistryCredential, parse_config_json, parse_dockercfg};
use super::limits::{self, Limit};
use crate::image::resolver::LookupContext;

/// How long a Secret or ServiceAccount read is reused.
const READ_CACHE_TTL: Duration = Duration::from_secs(30);
/// Most Secrets and ServiceAccounts remembered.
const READ_CACHE_CAPACITY: u64 = 4096;

const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
const DOCKERCFG_TYPE: &str = "kubernetes.io/dockercfg";
const DOCKERCFG_KEY: &str = ".dockercfg";

/// Credentials from the pull secrets named by the Pod and its ServiceAccount.
#[derive(Clone)]
pub struct KubeCredentials {
    client: kube::Client,
    /// `(namespace, name)` → secret names of a ServiceAccount.
    accounts: moka::future::Cache<(String, String), Arc<Vec<String>>>,
    /// `(namespace, name)` → credentials of a Secret.
    secrets: moka::future::Cache<(String, String), Arc<Vec<RegistryCredential>>>,
    /// Most pull-secret names read for one admission.
    max_secrets: usize,
}

impl KubeCredentials {
    /// A source reading with `client` (the webhook's in-cluster client), at
    /// most `max_secrets` pull-secret names per admission
    /// (`registry.maxPullSecretsPerAdmission`).
    pub fn new(client: kube::Client, max_secrets: usize) -> Self {
        KubeCredentials {
            client,
            accounts: read_cache(),
            secrets: read_cache(),
            max_secrets,
        }
    }

    async fn account_secrets(&self, namespace: &str, account: &str) -> Arc<Vec<String>> {
        let key = (namespace.to_string(), account.to_string());
        self.accounts
            .get_with(key, async {
                let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
                match api.get_opt(account).await {
                    Ok(Some(sa)) => Arc::new(service_account_pull_secrets(&sa)),
                    Ok(None) => {
                        tracing::debug!(namespace, account, "service account not found");
                        Arc::default()
                    }
                    Err(e) => {
                        tracing::warn!(namespace, account, error = %e, "cannot read service account");
                        Arc::default()
                    }
                }
            })
            .await
    }

    async fn secret_credentials(&self, namespace: &str, name: &str) -> Arc<Vec<RegistryCredential>> {
        let key = (namespace.to_string(), name.to_string());
        self.secrets
            .get_with(key, async {
                let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
                match api.get_opt(name).await {
                    Ok(Some(secret)) => match credentials_from_secret(&secret, namespace, name) {
                        Ok(creds) => Arc::new(creds),
                        Err(e) => {
                            tracing::warn!(error = %e, "pull secret ignored");
                            Arc::default()
                        }
                    },
                    // The kubelet skips missing pull secrets too.
                    Ok(None) => {
                        tracing::debug!(namespace, name, "pull secret not found");
                        Arc::default()
                    }
                    Err(e) => {
                        tracing::warn!(namespace, name, error = %e, "cannot read pull secret");
                        Arc::default()
                    }
                }
            })
            .await
    }
}

fn read_cache<V: Clone + Send + Sync + 'static>() -> moka::future::Cache<(String, String), V> {
    moka::future::Cache::builder()
        .max_capacity(READ_CACHE_CAPACITY)
        .time_to_live(READ_CACHE_TTL)
        .build()
}

impl CredentialSource for KubeCredentials {
    fn credentials<'a>(&'a self, ctx: &'a LookupContext) -> BoxFuture<'a, Vec<RegistryCredential>> {
        Box::pin(async move {
            let Some(namespace) = ctx.namespace.as_deref() else {
                return Vec::new();
            };
            // A set, not `Vec::contains`: an object may list thousands of names.
            let mut seen = std::collections::HashSet::new();
            let mut names: Vec<String> = Vec::new();
            for name in &ctx.pull_secrets {
                if seen.insert(name.clone()) {
                    names.push(name.clone());
                }
            }
            let mut accounts: Vec<&String> = Vec::new();
            let mut seen_accounts = std::collections::HashSet::new();
            for account in &ctx.service_accounts {
                if seen_accounts.insert(account) {
                    accounts.push(account);
                }
            }
            keep_first(&mut accounts, self.max_secrets, Limit::ServiceAccounts, namespace);
            // Read together, kept in order: their names follow the Pod's own.
            let reads = accounts.iter().map(|account| self.account_secrets(namespace, account));
            for secrets in futures::future::join_all(reads).await {
                for name in secrets.iter() {
                    if seen.insert(name.clone()) {
                        names.push(name.clone());
                    }
                }
            }
            // The Pod's own names first, as the kubelet tries them.
            keep_first(&mut names, self.max_secrets, Limit::PullSecrets, namespace);
            let reads = names.iter().map(|name| self.secret_credentials(namespace, name));
            futures::future::join_all(reads)
                .await
                .into_iter()
                .flat_map(|creds| creds.iter().cloned().collect::<Vec<_>>())
                .collect()
        })
    }
}

/// Keeps the first `max` of `list` (pull-secret names or ServiceAccounts),
/// counting and logging the bite of `limit` when there are more.
fn keep_first<T>(list: &mut Vec<T>, max: usize, limit: Limit, namespace: &str) {
    if list.len() > max {
        limits::count(limit);
        tracing::warn!(
            namespace,
            limit = limit.as_str(),
            named = list.len(),
            read = max,
            "more {} than registry.maxPullSecretsPerAdmission; the rest are not read",
            limit.as_str().replace('-', " ")
        );
        list.truncate(max);
    }
}

/// The `imagePullSecrets` names of a ServiceAccount.
pub(crate) fn service_account_pull_secrets(sa: &ServiceAccount) -> Vec<String> {
    sa.image_pull_secrets
        .iter()
        .flatten()
        .map(|r| r.name.clone())
        .filter(|n| !n.is_empty())
        .collect()
}

/// The credentials in a pull secret, decoded as the kubelet does: a
/// `kubernetes.io/dockerconfigjson` Secret's `.dockerconfigjson`, or a
/// `kubernetes.io/dockercfg` Secret's `.dockercfg`; other Secrets hold none.
pub(crate) fn credentials_from_secret(
    secret: &Secret,
    namespace: &str,
    name: &str,
) -> Result<Vec<RegistryCredential>, DockerConfigError> {
    let origin = format!("secret {namespace}/{name}");
    let data = secret.data.as_ref();
    let value = |key: &str| data.and_then(|d| d.get(key)).map(|b| b.0.as_slice());
    match secret.type_.as_deref() {
        Some(DOCKER_CONFIG_JSON_TYPE) => match value(DOCKER_CONFIG_JSON_KEY) {
            Some(bytes) => parse_config_json(bytes, &origin),
            None => {
                tracing::warn!(%origin, "no {DOCKER_CONFIG_JSON_KEY} key; ignored");
                Ok(Vec::new())
            }
        },
        Some(DOCKERCFG_TYPE) => match value(DOCKERCFG_KEY) {
            Some(bytes) => parse_dockercfg(bytes, &origin),
            None => {
                tracing::warn!(%origin, "no {DOCKERCFG_KEY} key; ignored");
                Ok(Vec::new())
            }
        },
        other => {
            tracing::debug!(%origin, r#type = ?other, "not a pull secret type; ignored");
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::json;

    fn secret(value: serde_json::Value) -> Secret {
        serde_json::from_value(value).unwrap()
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn decodes_dockerconfigjson_secrets() {
        let config = json!({"auths": {"reg.example:5000": {"auth": b64("alice:pw")}}}).to_string();
        let s = secret(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "regcred", "namespace": "demo"},
            "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64(&config)}}));
        let creds = credentials_from_secret(&s, "demo", "regcred").unwrap();
        assert_eq!(creds.len(), 1);
        assert_eq!((creds[0].username(), creds[0].password()), ("alice", "pw"));
        assert_eq!(creds[0].origin(), "secret demo/regcred");
    }

    #[test]
    fn decodes_legacy_dockercfg_secrets() {
        let config = json!({"quay.io": {"username": "bob", "password": "x", "email": "b@q"}}).to_string();
        let s = secret(json!({"type": "kubernetes.io/dockercfg", "data": {".dockercfg": b64(&config)}}));
        let creds = credentials_from_secret(&s, "ns", "old").unwrap();
        assert_eq!(creds[0].username(), "bob");
    }

    #[test]
    fn other_secret_types_hold_no_credentials() {
        let config = json!({"auths": {"r.io": {"auth": b64("u:p")}}}).to_string();
        let s = secret(json!({"type": "Opaque", "data": {".dockerconfigjson": b64(&config)}}));
        assert!(credentials_from_secret(&s, "ns", "x").unwrap().is_empty());
        let s = secret(json!({"type": "kubernetes.io/dockerconfigjson", "data": {}}));
        assert!(credentials_from_secret(&s, "ns", "x").unwrap().is_empty());
    }

    #[test]
    fn malformed_secret_is_an_error_naming_it() {
        let s = secret(json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64("{nope")}}));
        let err = credentials_from_secret(&s, "ns", "bad").unwrap_err().to_string();
        assert!(err.starts_with("secret ns/bad: not a Docker config"), "{err}");
    }

    #[test]
    fn reads_service_account_pull_secret_names() {
        let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "default"},
            "imagePullSecrets": [{"name": "a"}, {"name": ""}, {"name": "b"}]}))
        .unwrap();
        assert_eq!(service_account_pull_secrets(&sa), ["a", "b"]);
        let fixture =
            include_str!("../../tests/fixtures/api-lists/api_v1_namespaces_demo_serviceaccounts_default.json");
        let sa: ServiceAccount = serde_json::from_str(fixture).unwrap();
        assert!(service_account_pull_secrets(&sa).is_empty());
    }
}
