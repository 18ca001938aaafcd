//! The stand-in kube-apiserver of the `audit` tests (see `audit.rs`): HTTPS
//! with rustls (ring) and an rcgen CA, bearer-token auth, the captured lists at
//! their API paths, namespace filtering, `limit`/`continue` paging, and
//! injected 403s (or a ClusterRole's verdict) and delays.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::{COLLECTIONS, TOKEN, fixture};

#[path = "audit_reports.rs"]
mod reports;

/// How the stand-in server misbehaves, per collection path (`/apis/apps/v1/deployments`).
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Collections answered with a 403 Status, as RBAC denies.
    pub forbidden: HashSet<String>,
    /// Collections answered only after this delay.
    pub slow: HashMap<String, Duration>,
    /// Objects served in addition to the fixture's items (list items, without
    /// apiVersion/kind), per collection path.
    pub extra: HashMap<String, Vec<Value>>,
    /// When set, a ClusterRole whose rules decide, as RBAC would, which
    /// `list` requests are allowed; the rest get 403.
    pub cluster_role: Option<Value>,
    /// Collections whose continue tokens have expired: any page after the
    /// first gets 410 Gone, as after etcd compaction.
    pub expired_continue: HashSet<String>,
    /// Image strings rewritten in every served object (`image` fields of
    /// containers), e.g. to point the fixtures at a loopback registry.
    pub images: HashMap<String, String>,
    /// Single objects answered to `get` at their path
    /// (`/api/v1/namespaces/demo/secrets/regcred`), subject to `cluster_role`.
    pub objects: HashMap<String, Value>,
    /// Custom resources served as an installed CRD makes the API server
    /// serve them: in its discovery documents and at their collection path.
    pub crds: Vec<Crd>,
    /// Report APIs served (`openreports.io`, `wgpolicyk8s.io`): their
    /// discovery documents, and their reports, applied (server-side apply,
    /// recorded), listed by label and deleted.
    pub report_groups: Vec<String>,
    /// Namespaces whose reports are refused (422, as a report over etcd's
    /// size limit is).
    pub refused_reports: HashSet<String>,
    /// Namespaces answered 404, as once deleted; every other namespace is
    /// answered with uid `uid-NAME`.
    pub gone_namespaces: HashSet<String>,
    /// Pods generated on the fly after the fixture's at `/api/v1/pods` (all
    /// namespaces only), so a huge cluster costs this server nothing.
    pub generated_pods: Option<GeneratedPods>,
}

/// Pods made from the fixture's: `count` of them, in `namespaces`
/// namespaces (`load-N`), every `bypass_every`-th one the fixture's Pod with
/// a bypass (`app-pod`), the others its clean Pod (`control`).
#[derive(Clone, Copy, Debug)]
pub struct GeneratedPods {
    /// How many.
    pub count: usize,
    /// Over how many namespaces.
    pub namespaces: usize,
    /// One Pod in this many has a finding.
    pub bypass_every: usize,
}

/// One server-side apply the server received.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The object's path (`/apis/G/V/namespaces/NS/RESOURCE/NAME`).
    pub path: String,
    /// The query (`fieldManager`, `force`).
    pub query: HashMap<String, String>,
    /// The Content-Type header.
    pub content_type: String,
    /// The body, parsed.
    pub body: Value,
}

/// The versions and resources of the report APIs, as their CRDs serve them.
const REPORT_APIS: [(&str, &str, &str, &str); 2] = [
    ("openreports.io", "v1alpha1", "reports", "clusterreports"),
    ("wgpolicyk8s.io", "v1alpha2", "policyreports", "clusterpolicyreports"),
];

/// An installed CRD and the objects of its kind.
#[derive(Clone, Debug)]
pub struct Crd {
    /// The API group, e.g. `argoproj.io`.
    pub group: String,
    /// The versions served, the preferred (storage) one first.
    pub versions: Vec<String>,
    /// The kind, e.g. `Rollout`.
    pub kind: String,
    /// The resource, e.g. `rollouts`.
    pub plural: String,
    /// Its objects (list items, without apiVersion/kind), served in every version.
    pub items: Vec<Value>,
}

impl Crd {
    /// The discovery document of the group (`/apis/GROUP`), as kube-apiserver writes it.
    fn group(&self) -> Value {
        let version = |v: &String| json!({"groupVersion": format!("{}/{v}", self.group), "version": v});
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": self.group,
            "versions": self.versions.iter().map(version).collect::<Vec<_>>(),
            "preferredVersion": version(&self.versions[0])})
    }

    /// The resource list of one version (`/apis/GROUP/VERSION`), with the status subresource.
    fn resources(&self, version: &str) -> Value {
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{}/{version}", self.group),
            "resources": [
                {"name": self.plural, "singularName": self.kind.to_lowercase(), "namespaced": true,
                 "kind": self.kind, "verbs": ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"],
                 "storageVersionHash": "x"},
                {"name": format!("{}/status", self.plural), "singularName": "", "namespaced": true,
                 "kind": self.kind, "verbs": ["get", "patch", "update"]}]})
    }
}

/// The ClusterRole shipped in deploy/audit/clusterrole.yaml.
pub fn shipped_cluster_role() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/audit/clusterrole.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether `role`'s rules allow `verb` on `resource` in API group `group`.
pub fn allows(role: &Value, group: &str, resource: &str, verb: &str) -> bool {
    let has = |rule: &Value, field: &str, value: &str| {
        rule[field]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i == value || i == "*"))
    };
    role["rules"].as_array().is_some_and(|rules| {
        rules
            .iter()
            .any(|r| has(r, "apiGroups", group) && has(r, "resources", resource) && has(r, "verbs", verb))
    })
}

/// One request the server saw: path and query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The path, e.g. `/apis/apps/v1/namespaces/demo/deployments`.
    pub path: String,
    /// The query parameters.
    pub query: HashMap<String, String>,
}

struct Shared {
    behaviour: Behaviour,
    lists: HashMap<String, Value>,
    seen: Mutex<Vec<Seen>>,
    applied: Mutex<Vec<Applied>>,
    /// The reports stored, by path.
    reports: Mutex<std::collections::BTreeMap<String, Value>>,
    /// Namespaces whose objects are no longer listed (as after `kubectl delete ns`).
    hidden: Mutex<HashSet<String>>,
    /// Objects no longer listed, as `namespace/name`.
    removed: Mutex<HashSet<String>>,
    /// Pod templates for generated Pods: (clean, with a bypass).
    templates: (Value, Value),
}

/// A running stand-in API server; stops when dropped.
pub struct ApiServer {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The CA certificate (PEM) that signed the server certificate.
    pub ca_pem: String,
    shared: Arc<Shared>,
    handle: axum_server::Handle<SocketAddr>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    /// Starts the server on a free loopback port.
    pub fn start(behaviour: Behaviour) -> ApiServer {
        let mut lists = HashMap::new();
        for (file, _, _, path) in COLLECTIONS {
            let mut list = fixture(file);
            if let Some(extra) = behaviour.extra.get(path) {
                let items = list["items"].as_array_mut().expect("fixture lists have items");
                items.extend(extra.iter().cloned());
            }
            rewrite_images(&mut list, &behaviour.images);
            lists.insert(path.to_string(), list);
        }
        for crd in &behaviour.crds {
            for version in &crd.versions {
                let list = json!({"apiVersion": format!("{}/{version}", crd.group), "kind": format!("{}List", crd.kind),
                    "metadata": {"resourceVersion": "1"}, "items": crd.items});
                lists.insert(format!("/apis/{}/{version}/{}", crd.group, crd.plural), list);
            }
        }
        let pods = fixture("api_v1_pods.json");
        let template = |name: &str| {
            pods["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["metadata"]["name"] == name)
                .cloned()
                .expect("fixture pod")
        };
        let templates = (template("control"), template("app-pod"));
        let shared = Arc::new(Shared {
            behaviour,
            lists,
            seen: Mutex::new(Vec::new()),
            applied: Mutex::new(Vec::new()),
            reports: Mutex::new(Default::default()),
            hidden: Mutex::new(HashSet::new()),
            removed: Mutex::new(HashSet::new()),
            templates,
        });
        let (ca_pem, tls) = tls_config();
        let handle = axum_server::Handle::new();
        let app = Router::new().fallback(serve).with_state(Arc::clone(&shared));
        let server_handle = handle.clone();
        // The address comes back over a channel so that `start` works from
        // plain and async tests alike (no runtime is entered on this thread).
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test runtime");
            runtime.block_on(async move {
                let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls));
                let server = axum_server::bind_rustls(SocketAddr::from(([127, 0, 0, 1], 0)), config)
                    .handle(server_handle.clone())
                    .serve(app.into_make_service());
                let serving = tokio::spawn(server);
                let _ = tx.send(server_handle.listening().await);
                serving.await.expect("server task").expect("stand-in API server");
            });
        });
        let addr = rx.recv().ok().flatten().expect("the stand-in API server listens");
        ApiServer {
            url: format!("https://{addr}"),
            ca_pem,
            shared,
            handle,
            thread: Some(thread),
        }
    }

    /// Every request seen so far, in order of arrival.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Stops listing the objects of `namespace` and answers 404 for it, as
    /// once it is deleted (its reports stay: the garbage collector, which
    /// follows their owner reference, is not part of this server).
    pub fn delete_namespace(&self, namespace: &str) {
        self.shared.hidden.lock().unwrap().insert(namespace.to_string());
    }

    /// Stops listing the objects named `name` in `namespace`, as once deleted.
    pub fn delete_object(&self, namespace: &str, name: &str) {
        self.shared
            .removed
            .lock()
            .unwrap()
            .insert(format!("{namespace}/{name}"));
    }

    /// Every server-side apply received so far, in order of arrival.
    pub fn applied(&self) -> Vec<Applied> {
        self.shared.applied.lock().unwrap().clone()
    }

    /// The reports stored now (applied and not deleted), by path.
    pub fn reports(&self) -> std::collections::BTreeMap<String, Value> {
        self.shared.reports.lock().unwrap().clone()
    }

    /// Writes a kubeconfig for this server (CA data and token) into `dir`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: auditor\n  user:\n    token: {TOKEN}\ncontexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: auditor\n    namespace: demo\ncurrent-context: stand-in\n",
            url = self.url
        );
        let path = dir.join("kubeconfig");
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The `i`-th generated Pod.
fn generate_pod(templates: &(Value, Value), g: GeneratedPods, i: usize) -> Value {
    let mut pod = if g.bypass_every > 0 && i.is_multiple_of(g.bypass_every) {
        templates.1.clone()
    } else {
        templates.0.clone()
    };
    let metadata = &mut pod["metadata"];
    metadata["name"] = json!(format!("gen-{i:06}"));
    metadata["namespace"] = json!(format!("load-{}", i % g.namespaces.max(1)));
    metadata["uid"] = json!(format!("00000000-0000-4000-8000-{i:012}"));
    pod
}

/// Replaces every `"image": X` string value whose X is a key of `images`.
fn rewrite_images(value: &mut Value, images: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(image) if key == "image" => {
                        if let Some(new) = images.get(image.as_str()) {
                            *image = new.clone();
                        }
                    }
                    _ => rewrite_images(v, images),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_images(v, images)),
        _ => {}
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn tls_config() -> (String, rustls::ServerConfig) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "audit test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("server key");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params")
        .signed_by(&leaf_key, &issuer)
        .expect("server certificate");
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_cert.der().clone()], key)
        .expect("server TLS config");
    (ca_cert.pem(), config)
}

fn status(code: u16, reason: &str, message: String) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (
        StatusCode::from_u16(code).expect("status code"),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Splits `/apis/apps/v1/namespaces/demo/deployments` into
/// (`/apis/apps/v1/deployments`, `Some("demo")`).
fn collection(path: &str) -> (String, Option<String>) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let prefix_len = if parts.first() == Some(&"api") { 2 } else { 3 };
    if parts.len() == prefix_len + 3 && parts[prefix_len] == "namespaces" {
        let base = parts[..prefix_len].join("/");
        (
            format!("/{base}/{}", parts[prefix_len + 2]),
            Some(parts[prefix_len + 1].to_string()),
        )
    } else {
        (path.to_string(), None)
    }
}

/// A single object `get`, or the 403 RBAC would give under `cluster_role`.
fn get_object(behaviour: &Behaviour, path: &str, object: &Value) -> Response {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (resource, name) = (parts[parts.len() - 2], parts[parts.len() - 1]);
    let group = if parts[0] == "apis" { parts[1] } else { "" };
    if let Some(role) = &behaviour.cluster_role
        && !allows(role, group, resource, "get")
    {
        return status(
            403,
            "Forbidden",
            format!(
                "{resource} \"{name}\" is forbidden: User \"system:serviceaccount:demo:auditor\" cannot get resource \"{resource}\" in API group \"{group}\""
            ),
        );
    }
    ([("content-type", "application/json")], object.to_string()).into_response()
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    shared.seen.lock().unwrap().push(Seen {
        path: uri.path().to_string(),
        query: query.clone(),
    });
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"));
    if !authorized {
        return status(401, "Unauthorized", "Unauthorized".into());
    }
    if let Some(object) = shared.behaviour.objects.get(uri.path()) {
        return get_object(&shared.behaviour, uri.path(), object);
    }
    let parts: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    if let Some(response) = reports::serve(&shared, &method, &parts, &query, &headers, &body) {
        return response;
    }
    if let ["api", "v1", "namespaces", name] = parts[..] {
        if shared.behaviour.gone_namespaces.contains(name) || shared.hidden.lock().unwrap().contains(name) {
            return status(404, "NotFound", format!("namespaces \"{name}\" not found"));
        }
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "uid": format!("uid-{name}")}, "status": {"phase": "Active"}});
        return ([("content-type", "application/json")], namespace.to_string()).into_response();
    }
    // Discovery, readable by every authenticated user (system:discovery).
    if parts.first() == Some(&"apis") && (2..=3).contains(&parts.len()) {
        if let Some(document) = reports::discovery(&shared.behaviour, &parts) {
            return ([("content-type", "application/json")], document.to_string()).into_response();
        }
        let crd = shared.behaviour.crds.iter().find(|c| c.group == parts[1]);
        let document = match (crd, parts.get(2)) {
            (Some(crd), None) => Some(crd.group()),
            (Some(crd), Some(version)) if crd.versions.iter().any(|v| v == version) => Some(crd.resources(version)),
            _ => None,
        };
        return match document {
            Some(document) => ([("content-type", "application/json")], document.to_string()).into_response(),
            None => status(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
            ),
        };
    }
    let (path, namespace) = collection(uri.path());
    let Some(list) = shared.lists.get(&path) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
        );
    };
    if let Some(delay) = shared.behaviour.slow.get(&path) {
        tokio::time::sleep(*delay).await;
    }
    let resource = path.rsplit('/').next().unwrap_or_default();
    let group = path
        .split('/')
        .nth(2)
        .filter(|_| path.starts_with("/apis/"))
        .unwrap_or("");
    let denied_by_role = shared
        .behaviour
        .cluster_role
        .as_ref()
        .is_some_and(|role| !allows(role, group, resource, "list"));
    if shared.behaviour.forbidden.contains(&path) || denied_by_role {
        let scope = match &namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        return status(
            403,
            "Forbidden",
            format!(
                "{resource}{dot}{group} is forbidden: User \"system:serviceaccount:demo:auditor\" cannot list resource \"{resource}\" in API group \"{group}\" {scope}",
                dot = if group.is_empty() { "" } else { "." }
            ),
        );
    }
    let hidden = shared.hidden.lock().unwrap().clone();
    let removed = shared.removed.lock().unwrap().clone();
    let items: Vec<&Value> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| {
            let in_namespace = item.pointer("/metadata/namespace").and_then(Value::as_str);
            let key = format!(
                "{}/{}",
                in_namespace.unwrap_or(""),
                item["metadata"]["name"].as_str().unwrap_or("")
            );
            (namespace.is_none() || in_namespace == namespace.as_deref())
                && !in_namespace.is_some_and(|ns| hidden.contains(ns))
                && !removed.contains(&key)
        })
        .collect();
    let generated = match shared.behaviour.generated_pods {
        Some(g) if path == "/api/v1/pods" && namespace.is_none() => g.count,
        _ => 0,
    };
    let fixed = items.len();
    if query.contains_key("continue") && shared.behaviour.expired_continue.contains(&path) {
        return status(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. \
             You can start a new list without the continue parameter."
                .into(),
        );
    }
    // Continue tokens are opaque to clients; this one is the offset.
    let offset: usize = match query.get("continue") {
        Some(token) => match token.strip_prefix("offset-").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return status(400, "BadRequest", format!("invalid continue token {token:?}")),
        },
        None => 0,
    };
    // As kube-apiserver's watch cache: `resourceVersion=0` ignores `limit`
    // (computeListLimit) and answers everything in one page.
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0 && query.get("resourceVersion").is_none_or(|rv| rv != "0"))
        .unwrap_or(usize::MAX);
    let total = fixed + generated;
    let end = offset.saturating_add(limit).min(total);
    let start = offset.min(end);
    let mut page: Vec<Value> = items[start.min(fixed)..end.min(fixed)]
        .iter()
        .map(|v| (*v).clone())
        .collect();
    if let Some(g) = shared.behaviour.generated_pods.filter(|_| generated > 0) {
        page.extend((start.max(fixed)..end).map(|i| generate_pod(&shared.templates, g, i - fixed)));
    }
    let mut metadata = json!({"resourceVersion": list["metadata"]["resourceVersion"]});
    if end < total {
        metadata["continue"] = json!(format!("offset-{end}"));
        metadata["remainingItemCount"] = json!(total - end);
    }
    let body = json!({"kind": list["kind"], "apiVersion": list["apiVersion"], "metadata": metadata, "items": page});
    ([("content-type", "application/json")], body.to_string()).into_response()
}
