//! Where image facts come from: the resolver trait and its offline implementation.
//!
//! The resolver is the only part of the program allowed to talk to a
//! registry; the engine only reads the [`Facts`] it returns.

use std::time::Instant;

use futures::future::BoxFuture;
use serde_json::Value;

use super::facts::{Facts, ImageFacts};
use crate::engine::workload;

/// Who is asking, so a registry resolver can pick credentials: the
/// namespace and the pull secrets and service account its pod specs name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LookupContext {
    /// The object's namespace, if any.
    pub namespace: Option<String>,
    /// `imagePullSecrets[].name` of every pod spec in the object.
    pub pull_secrets: Vec<String>,
    /// `serviceAccountName` of the pod specs (`default` when unset).
    pub service_accounts: Vec<String>,
}

impl LookupContext {
    /// The context of `object` in `namespace` (the admission request's
    /// namespace, or the object's own `metadata.namespace`).
    pub fn of(object: &Value, namespace: Option<&str>) -> Self {
        let namespace = namespace.map(str::to_string).or_else(|| {
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        let mut ctx = LookupContext {
            namespace,
            ..Default::default()
        };
        for at in workload::pod_specs(object) {
            let Some(spec) = object.pointer(&at.spec) else { continue };
            if let Some(secrets) = spec.get("imagePullSecrets").and_then(Value::as_array) {
                for name in secrets.iter().filter_map(|s| s.get("name").and_then(Value::as_str)) {
                    if !ctx.pull_secrets.iter().any(|n| n == name) {
                        ctx.pull_secrets.push(name.to_string());
                    }
                }
            }
            let account = spec
                .get("serviceAccountName")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("default");
            if !ctx.service_accounts.iter().any(|n| n == account) {
                ctx.service_accounts.push(account.to_string());
            }
        }
        ctx
    }
}

/// Turns image references (as written) into facts, within a deadline.
///
/// Implementations never fail as a whole: an image that cannot be resolved
/// in time gets [`ImageFacts::unknown`] with the reason, so the engine
/// reports it and the answer still goes out.
pub trait Resolver: Send + Sync {
    /// Resolves every image in `images`, finishing by `deadline`.
    fn resolve<'a>(&'a self, images: &'a [String], ctx: &'a LookupContext, deadline: Instant) -> BoxFuture<'a, Facts>;
}

/// Facts from configuration and `--images` files only; never touches the network.
#[derive(Clone, Debug, Default)]
pub struct OfflineResolver {
    facts: Facts,
}

impl OfflineResolver {
    /// A resolver that answers from `facts`; other images are unknown.
    pub fn new(facts: Facts) -> Self {
        OfflineResolver { facts }
    }

    /// Whether `image` (as written) has offline facts.
    pub fn names(&self, image: &str) -> bool {
        self.facts.get(image).is_some()
    }

    /// Resolves without waiting (offline lookups are immediate).
    pub fn resolve_now(&self, images: &[String]) -> Facts {
        images
            .iter()
            .map(|image| {
                let facts = self
                    .facts
                    .get(image)
                    .cloned()
                    .unwrap_or_else(|| ImageFacts::unknown("no offline image facts for this image"));
                (image.clone(), facts)
            })
            .collect()
    }
}

impl Resolver for OfflineResolver {
    fn resolve<'a>(
        &'a self,
        images: &'a [String],
        _ctx: &'a LookupContext,
        _deadline: Instant,
    ) -> BoxFuture<'a, Facts> {
        Box::pin(std::future::ready(self.resolve_now(images)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn context_collects_pull_secrets_and_service_accounts() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "demo"},
            "spec": {"imagePullSecrets": [{"name": "a"}, {"name": "b"}], "containers": []}});
        let ctx = LookupContext::of(&pod, None);
        assert_eq!(ctx.namespace.as_deref(), Some("demo"));
        assert_eq!(ctx.pull_secrets, ["a", "b"]);
        assert_eq!(ctx.service_accounts, ["default"]);
    }
}
