//! What resolving an object's images needs, found in one walk of its pod
//! specs: the images [`super::inspect()`] will ask facts for, and who asks
//! (namespace, pull secrets, service accounts) so a registry resolver can
//! pick credentials.

use std::collections::HashSet;

use serde_json::Value;

use super::fix::may_bypass;
use super::inspect::{container_lists, strings};
use super::policy::Policy;
use super::update::{self, Previous};
use super::workload;
use crate::image::LookupContext;

/// The image lookups one object needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Every image (as written) the inspection will ask facts for, without
    /// duplicates, in document order. On UPDATE: those of changed
    /// containers, of unchanged ones only what is needed to report a bypass,
    /// and for a kept pin the pinned image.
    pub images: Vec<String>,
    /// Who asks: the namespace, and the pull secrets and service accounts
    /// the pod specs name.
    pub context: LookupContext,
}

/// The lookups for `object` (replacing `old` on UPDATE) in `namespace` (the
/// admission request's namespace; `None` uses the object's own
/// `metadata.namespace`).
pub fn lookups(object: &Value, old: Option<&Value>, namespace: Option<&str>, policy: &Policy) -> Lookups {
    let namespace = namespace.map(str::to_string).or_else(|| {
        object
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let mut out = Lookups {
        images: Vec::new(),
        context: LookupContext {
            namespace,
            ..LookupContext::default()
        },
    };
    let specs = workload::pod_specs(object, &policy.kinds);
    // Sets beside the lists: an object may name thousands of images or
    // secrets, and `Vec::contains` would make that quadratic.
    let mut seen_secrets = HashSet::new();
    for spec in &specs {
        if let Some(spec) = super::pointer::get(object, &spec.spec) {
            who_asks(spec, &mut out.context, &mut seen_secrets);
        }
    }
    let mut seen_images = HashSet::new();
    for specs in specs.chunk_by(|a, b| a.object == b.object) {
        let previous = old.map(|old| Previous::new(old, &specs[0].object, policy));
        let lists = container_lists(object, specs);
        let containers = lists
            .iter()
            .flat_map(|(list_at, _, items)| items.iter().map(move |c| (list_at, c)));
        for (list_at, container) in containers {
            let Some(image) = container.get("image").and_then(Value::as_str) else {
                continue;
            };
            if !policy.images.applies_to(image) {
                continue;
            }
            let name = container.get("name").and_then(Value::as_str);
            let wanted = match previous
                .as_ref()
                .and_then(|p| p.container(list_at, name).map(|c| (p, c)))
            {
                None => Some(image.to_string()),
                Some((previous, old)) => {
                    let effective = previous
                        .kept_pin(image, old, policy)
                        .unwrap_or_else(|| image.to_string());
                    // Unchanged: never pinned, so facts only to report a bypass.
                    let needed = !update::unchanged(container, &effective, old)
                        || matches!(strings(container, "command"), Ok(Some(c)) if may_bypass(&c, policy));
                    needed.then_some(effective)
                }
            };
            if let Some(image) = wanted
                && seen_images.insert(image.clone())
            {
                out.images.push(image);
            }
        }
    }
    out
}

/// Adds the pull secrets and service account of the pod spec `spec`.
fn who_asks<'a>(spec: &'a Value, ctx: &mut LookupContext, seen: &mut HashSet<&'a str>) {
    if let Some(secrets) = spec.get("imagePullSecrets").and_then(Value::as_array) {
        for name in secrets.iter().filter_map(|s| s.get("name").and_then(Value::as_str)) {
            if seen.insert(name) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_walk_finds_images_pull_secrets_and_service_accounts() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "demo"},
            "spec": {"imagePullSecrets": [{"name": "a"}, {"name": "b"}], "containers": [
                {"name": "x", "image": "r.io/x:1"}, {"name": "y", "image": "r.io/x:1"}]}});
        let found = lookups(&pod, None, None, &Policy::default());
        assert_eq!(found.images, ["r.io/x:1"]);
        assert_eq!(found.context.namespace.as_deref(), Some("demo"));
        assert_eq!(found.context.pull_secrets, ["a", "b"]);
        assert_eq!(found.context.service_accounts, ["default"]);
        let other = lookups(&pod, None, Some("request-ns"), &Policy::default());
        assert_eq!(other.context.namespace.as_deref(), Some("request-ns"));
    }
}
