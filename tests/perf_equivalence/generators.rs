//! proptest strategies: objects of every kind and shape the engine treats
//! differently (built-in and custom kinds), with noise everywhere it does
//! not read.

use entrypoint_guard::engine::{Kinds, workload};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

pub(crate) const IMAGES: [&str; 5] = [
    "registry.example/app:1.0",
    "nginx",
    "registry.example/init:1.0",
    "registry.example/pinned@sha256:4444444444444444444444444444444444444444444444444444444444444444",
    "Not A Reference",
];

/// Anything at all, for fields the engine does not read and wrong-typed fields it does.
pub(crate) fn noise() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z/~ é\"\\\\]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

pub(crate) fn string_list() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::collection::vec(prop_oneof![Just("/chalk"), Just("exec"), Just("run"), Just("--flag")], 0..4)
            .prop_map(|v| json!(v)),
        1 => noise(),
    ]
}

/// `Some(value)` for a member that may be absent.
pub(crate) fn maybe<T: Strategy<Value = Value>>(s: T) -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(0.7, s)
}

pub(crate) fn map_of(members: Vec<(&'static str, Option<Value>)>, extra: Value) -> Value {
    let mut map: Map<String, Value> = members
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect();
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            map.entry(k).or_insert(v);
        }
    }
    Value::Object(map)
}

pub(crate) fn container() -> impl Strategy<Value = Value> {
    let image = prop_oneof![4 => prop::sample::select(IMAGES.to_vec()).prop_map(Value::from), 1 => noise()];
    let object = (
        maybe("[a-z]{1,6}".prop_map(Value::from)),
        maybe(image),
        maybe(string_list()),
        maybe(string_list()),
        noise(),
    )
        .prop_map(|(name, image, command, args, extra)| {
            map_of(
                vec![("name", name), ("image", image), ("command", command), ("args", args)],
                extra,
            )
        });
    prop_oneof![9 => object, 1 => noise()]
}

pub(crate) fn containers() -> impl Strategy<Value = Value> {
    prop_oneof![9 => prop::collection::vec(container(), 0..4).prop_map(Value::from), 1 => noise()]
}

pub(crate) fn pod_spec() -> impl Strategy<Value = Value> {
    let secrets = prop_oneof![
        prop::collection::vec("[a-z]{1,4}".prop_map(|n| json!({"name": n})), 0..3).prop_map(Value::from),
        noise(),
    ];
    let account = prop_oneof![Just(json!("")), Just(json!("builder")), noise()];
    (
        maybe(containers()),
        maybe(containers()),
        maybe(containers()),
        maybe(secrets),
        maybe(account),
        noise(),
    )
        .prop_map(|(c, init, eph, secrets, account, extra)| {
            map_of(
                vec![
                    ("containers", c),
                    ("initContainers", init),
                    ("ephemeralContainers", eph),
                    ("imagePullSecrets", secrets),
                    ("serviceAccountName", account),
                ],
                extra,
            )
        })
}

pub(crate) fn metadata() -> impl Strategy<Value = Value> {
    let record = json!({"registry.example/old:1": "sha256:00"}).to_string();
    let annotation_value = prop_oneof![
        Just(json!("fix")),
        Just(json!("audit")),
        Just(json!("off")),
        Just(json!("bogus")),
        noise()
    ];
    let annotations = (
        maybe(annotation_value),
        maybe(prop_oneof![Just(Value::from(record)), noise()]),
        maybe(Just(json!("true"))),
        noise(),
    )
        .prop_map(|(mode, resolved, mirror, extra)| {
            map_of(
                vec![
                    ("entrypoint-guard.io/mode", mode),
                    ("entrypoint-guard.io/resolved-images", resolved),
                    ("kubernetes.io/config.mirror", mirror),
                ],
                extra,
            )
        });
    let owner = prop_oneof![
        Just(json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u-1", "controller": true})),
        Just(json!({"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "controller": false})),
        noise(),
    ];
    let owners = prop_oneof![4 => prop::collection::vec(owner, 0..3).prop_map(Value::from), 1 => noise()];
    let name = prop_oneof!["[a-z]{1,5}".prop_map(Value::from), noise()];
    let meta = (
        maybe(prop_oneof![4 => annotations, 1 => noise()]),
        maybe("[a-z]{1,5}".prop_map(Value::from)),
        (maybe(name.clone()), maybe(name), maybe(owners)),
        noise(),
    )
        .prop_map(|(annotations, namespace, (name, generate_name, owners), extra)| {
            map_of(
                vec![
                    ("annotations", annotations),
                    ("namespace", namespace),
                    ("name", name),
                    ("generateName", generate_name),
                    ("ownerReferences", owners),
                ],
                extra,
            )
        });
    prop_oneof![9 => meta, 1 => noise()]
}

/// A template (`metadata` + pod `spec`), sometimes the wrong shape.
pub(crate) fn template() -> impl Strategy<Value = Value> {
    let t = (maybe(metadata()), maybe(pod_spec()), noise())
        .prop_map(|(metadata, spec, extra)| map_of(vec![("metadata", metadata), ("spec", spec)], extra));
    prop_oneof![9 => t, 1 => noise()]
}

/// The kinds generated: `(apiVersion, kind, template pointer)` of every
/// kind of the engine's table (so a kind added there is proven to decode
/// the same), and one kind it does not inspect.
pub(crate) fn kinds() -> Vec<(String, String, String)> {
    Kinds::builtin()
        .iter()
        .map(|k| {
            let spec = k.pod_specs[0].to_string();
            (k.api_version(), k.kind.clone(), k.pod_specs[0].template_of(&spec))
        })
        .chain([("v1".to_string(), "ConfigMap".to_string(), "/spec/template".to_string())])
        .collect()
}

/// One object of a kind from [`kinds`], its pod spec where that kind keeps it.
pub(crate) fn object() -> impl Strategy<Value = Value> {
    (
        0..kinds().len(),
        any::<bool>(),
        metadata(),
        pod_spec(),
        template(),
        noise(),
    )
        .prop_map(|(k, kind_last, metadata, spec, template, extra)| {
            let (api_version, kind, template_at) = kinds().swap_remove(k);
            let body = if template_at.is_empty() {
                json!({"metadata": metadata, "spec": spec, "status": extra})
            } else {
                // Noise on every level on the way to the template (and
                // metadata below the object's own), then the template.
                let mut body = json!({"metadata": metadata});
                let mut at = &mut body;
                for (depth, key) in template_at.split('/').skip(1).enumerate() {
                    at["extra"] = extra.clone();
                    if depth > 0 {
                        at["metadata"] = extra.clone();
                    }
                    at = &mut at[key];
                }
                *at = template;
                body
            };
            let mut map = Map::new();
            let head = [("apiVersion", json!(api_version)), ("kind", json!(kind))];
            if !kind_last {
                map.extend(head.clone().map(|(k, v)| (k.to_string(), v)));
            }
            map.extend(body.as_object().unwrap().clone());
            if kind_last {
                map.extend(head.map(|(k, v)| (k.to_string(), v)));
            }
            Value::Object(map)
        })
}

/// An object, or a `List` of objects (pod specs at `/items/N/...`).
pub(crate) fn any_object() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => object(),
        1 => prop::collection::vec(object(), 0..3).prop_map(|items| json!({"apiVersion": "v1", "kind": "List", "items": items})),
    ]
}

/// The object as this engine would have pinned it at an earlier admission
/// (every image without a digest pinned, and recorded), to be an UPDATE's
/// `oldObject`: the path that keeps an earlier pin.
pub(crate) fn pinned_copy(object: &Value) -> Value {
    const DIGEST: &str = "sha256:5555555555555555555555555555555555555555555555555555555555555555";
    let mut old = object.clone();
    for at in workload::pod_specs(object, &custom_kinds()) {
        let mut record = Map::new();
        for list in ["initContainers", "containers"] {
            let Some(Value::Array(containers)) = old.pointer_mut(&format!("{}/{list}", at.spec)) else {
                continue;
            };
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(Value::String(image)) = container.get_mut("image")
                    && !image.contains('@')
                {
                    record.insert(image.clone(), json!(DIGEST));
                    image.push('@');
                    image.push_str(DIGEST);
                }
            }
        }
        if let Some(Value::Object(metadata)) = old.pointer_mut(&format!("{}/metadata", at.object)) {
            let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
            if let Some(annotations) = annotations.as_object_mut() {
                annotations.insert(
                    "entrypoint-guard.io/resolved-images".into(),
                    Value::from(Value::Object(record).to_string()),
                );
            }
        }
    }
    old
}

/// An UPDATE's `oldObject`: none, the object itself, another object, or
/// the object as pinned earlier.
pub(crate) fn old_object(object: &Value) -> impl Strategy<Value = Option<Value>> + use<> {
    let same = object.clone();
    let pinned = pinned_copy(object);
    prop_oneof![
        1 => Just(None),
        2 => Just(Some(same)),
        2 => any_object().prop_map(Some),
        3 => Just(Some(pinned)),
    ]
}

pub(crate) fn review() -> impl Strategy<Value = Vec<u8>> {
    (
        any_object(),
        0..kinds().len(),
        any::<bool>(),
        prop::sample::select(vec!["CREATE", "UPDATE"]),
    )
        .prop_flat_map(|(object, k, strip_kind, operation)| {
            let old = if operation == "UPDATE" {
                old_object(&object).boxed()
            } else {
                Just(None).boxed()
            };
            (Just(object), Just(k), Just(strip_kind), Just(operation), old)
        })
        .prop_map(|(object, k, strip_kind, operation, old)| {
            let (api_version, kind, _) = kinds().swap_remove(k);
            let mut object = object;
            if strip_kind && let Some(map) = object.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            admission_review(&api_version, &kind, operation, object, old)
        })
}

/// The AdmissionReview of `object` (of `kind` in `api_version`), with `old`
/// as its `oldObject` on UPDATE.
pub(crate) fn admission_review(
    api_version: &str,
    kind: &str,
    operation: &str,
    object: Value,
    old: Option<Value>,
) -> Vec<u8> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let mut review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "kind": {"group": group, "version": version, "kind": kind},
        "operation": operation, "namespace": "demo", "object": object}});
    if let Some(old) = old {
        review["request"]["oldObject"] = old;
    }
    serde_json::to_vec(&review).unwrap()
}

/// The custom kinds of the generated objects below: presets, and a kind of
/// our own whose path has an escaped key and a `*` over a list.
pub(crate) fn custom_kinds() -> Kinds {
    let config = entrypoint_guard::config::Config::from_yaml(
        "customKinds:\n  - argo-rollouts\n  - knative-serving\n  - volcano\n  - kubeflow\n  - keda\n\
         \x20 - {group: example.com, kind: Widget, plural: widgets, versions: [v1], podSpecPaths: ['/spec/pod~1templates/*/spec']}\n",
        "custom-kinds",
    )
    .unwrap();
    config.policy().kinds
}

pub(crate) const CUSTOM_KINDS: [(&str, &str); 7] = [
    ("argoproj.io/v1alpha1", "Rollout"),
    ("serving.knative.dev/v1", "Revision"),
    ("batch.volcano.sh/v1alpha1", "Job"),
    ("kubeflow.org/v1", "TFJob"),
    ("keda.sh/v1alpha1", "ScaledJob"),
    ("example.com/v1", "Widget"),
    ("batch/v1", "Job"),
];

/// One object of a custom kind, its pod specs where that kind keeps them.
pub(crate) fn custom_object() -> impl Strategy<Value = Value> {
    (
        0..CUSTOM_KINDS.len(),
        metadata(),
        pod_spec(),
        template(),
        template(),
        noise(),
    )
        .prop_map(|(k, metadata, spec, template, other, extra)| {
            let (api_version, kind) = CUSTOM_KINDS[k];
            let spec = match (api_version, kind) {
                (_, "Revision") => spec,
                (_, "Job") if api_version.starts_with("batch.volcano") => {
                    json!({"tasks": [{"name": "ps", "template": template}, extra, {"name": "w", "template": other}]})
                }
                (_, "TFJob") => json!({"tfReplicaSpecs": {"PS": {"template": template}, "Worker": {"replicas": 2, "template": other}, "Chief": extra}}),
                (_, "ScaledJob") => json!({"jobTargetRef": {"template": template}, "triggers": extra}),
                (_, "Widget") => json!({"pod/templates": [{"metadata": metadata.clone(), "spec": spec}, extra]}),
                _ => json!({"replicas": 1, "template": template, "strategy": extra}),
            };
            json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec})
        })
}

pub(crate) fn custom_review() -> impl Strategy<Value = Vec<u8>> {
    let object = prop_oneof![
        4 => custom_object(),
        1 => prop::collection::vec(custom_object(), 0..3).prop_map(|items| json!({"apiVersion": "v1", "kind": "List", "items": items})),
    ];
    (object, prop::sample::select(vec!["CREATE", "UPDATE"]))
        .prop_flat_map(|(object, operation)| {
            let old = if operation == "UPDATE" {
                prop_oneof![1 => Just(Some(object.clone())), 2 => Just(Some(pinned_copy(&object))), 1 => custom_object().prop_map(Some)].boxed()
            } else {
                Just(None).boxed()
            };
            (Just(object), Just(operation), old)
        })
        .prop_map(|(object, operation, old)| {
            let api_version = object["apiVersion"].as_str().unwrap_or("v1").to_string();
            let kind = object["kind"].as_str().unwrap_or("List").to_string();
            admission_review(&api_version, &kind, operation, object, old)
        })
}
