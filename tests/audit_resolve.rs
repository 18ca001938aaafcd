//! `entrypoint-guard audit --resolve` end to end: the stand-in API server
//! serves the captured lists with their images pointed at real loopback
//! registries (docker-registry, images pushed with umoci and skopeo); the
//! built binary resolves them, with pull secrets read from the API server
//! as the webhook reads them, and reports the right fix in every format.

#[path = "support/registry.rs"]
mod registry;
#[path = "support/resolve.rs"]
mod resolve;
#[path = "support/audit.rs"]
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;
use std::sync::OnceLock;

use base64::Engine as _;
use registry::{Auth, World};
use resolve::{SHAPES, assert_fixed, config_file, container, docker_config, shape_container, yaml_documents};
use serde_json::{Value, json};
use support::{ApiServer, Behaviour, json_report, run_audit, stderr};

const DEPLOYMENTS: &str = "/apis/apps/v1/deployments";

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::new)
}

/// The fixtures' images, pointed at `reg`: `app` bare-wrapped, `init` wrapped
/// naming `echo`, `sidecar` not wrapped, `tool` a multi-arch index.
fn images_in(reg: &str) -> HashMap<String, String> {
    [
        ("registry.example/app:1.0", "chalk/bare:1.0"),
        ("registry.example/init:1.0", "chalk/one:1.0"),
        ("registry.example/sidecar:1.0", "plain/app:1.0"),
        ("registry.example/tool:2.3", "chalk/multi:1.0"),
    ]
    .into_iter()
    .map(|(from, to)| (from.to_string(), format!("{reg}/{to}")))
    .collect()
}

/// A Deployment (as a list item) in `demo` with `containers` and `spec` extras.
fn deployment(name: &str, containers: Vec<Value>, extra_spec: Value) -> Value {
    let mut spec = json!({"containers": containers});
    for (k, v) in extra_spec.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    json!({"metadata": {"name": name, "namespace": "demo", "uid": format!("uid-{name}")},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}})
}

/// The report's object `Kind/name` in `demo`.
fn object<'a>(report: &'a Value, kind_name: &str) -> &'a Value {
    report["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .find(|o| format!("{}/{}", o["kind"].as_str().unwrap(), o["name"].as_str().unwrap()) == kind_name)
        .unwrap_or_else(|| panic!("{kind_name} not reported in {report:#}"))
}

/// `rule` → `change.after` of the findings about `container` in `object`.
fn changes(object: &Value, container: &str) -> HashMap<String, Value> {
    object["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["container"]["name"] == container)
        .map(|f| (f["rule"].as_str().unwrap().to_string(), f["change"]["after"].clone()))
        .collect()
}

/// Runs the audit with the config file and `args`.
fn audit(server: &ApiServer, dir: &Path, config: &Path, args: &[&str]) -> Output {
    let kubeconfig = server.kubeconfig(dir);
    let mut all = vec!["--config", config.to_str().unwrap(), "--resolve"];
    all.extend_from_slice(args);
    run_audit(&kubeconfig, &all)
}

/// A plain-registry world served by a stand-in API server, plus the shapes Deployment.
fn plain_cluster() -> (ApiServer, tempfile::TempDir, std::path::PathBuf, Value) {
    let w = world();
    let reg = w.plain.addr.as_str();
    let shapes = deployment(
        "shapes",
        SHAPES.iter().map(|s| shape_container(s, reg)).collect(),
        json!({}),
    );
    let server = ApiServer::start(Behaviour {
        images: images_in(reg),
        extra: HashMap::from([(DEPLOYMENTS.to_string(), vec![shapes.clone()])]),
        ..Behaviour::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &[reg], &[], "");
    (server, dir, config, shapes)
}

#[test]
fn json_proposes_the_registry_fix_for_every_object() {
    let w = world();
    let reg = w.plain.addr.as_str();
    let (server, dir, config, shapes) = plain_cluster();
    let out = audit(&server, dir.path(), &config, &["-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let report = json_report(&out);
    // The shapes Deployment with the proposed patch applied: the exact fix.
    let mut fixed = json!({"apiVersion": "apps/v1", "kind": "Deployment"});
    for (k, v) in shapes.as_object().unwrap() {
        fixed[k] = v.clone();
    }
    let proposed: json_patch::Patch = serde_json::from_value(object(&report, "Deployment/shapes")["proposed"].clone())
        .expect("proposed is a JSON patch");
    json_patch::patch(&mut fixed, &proposed).unwrap();
    for shape in SHAPES {
        assert_fixed(
            container(&fixed, shape.name),
            shape,
            reg,
            w.images.digest(shape.repo_tag),
        );
    }
    // The captured workloads, resolved through the registry.
    let pinned = |repo_tag: &str| json!(format!("{reg}/{repo_tag}@{}", w.images.digest(repo_tag)));
    for kind_name in [
        "StatefulSet/app-sts",
        "DaemonSet/app-ds",
        "Job/app-job",
        "CronJob/app-cron",
    ] {
        let o = object(&report, kind_name);
        let app = changes(o, "app");
        assert_eq!(
            app["command-bypasses-wrapper"],
            json!({"args": ["sh", "-c", "echo hello"]}),
            "{kind_name}"
        );
        assert_eq!(app["image-pinned"], pinned("chalk/bare:1.0"), "{kind_name}");
        let init = changes(o, "init-setup");
        assert_eq!(
            init["command-bypasses-wrapper"]["command"],
            json!(["/chalk", "exec", "--exec-command-name", "sh", "--", "-c"]),
            "{kind_name}"
        );
        assert_eq!(init["image-pinned"], pinned("chalk/one:1.0"), "{kind_name}");
        assert_eq!(
            changes(o, "sidecar")["image-pinned"],
            pinned("plain/app:1.0"),
            "{kind_name}"
        );
    }
    let pod = object(&report, "Pod/app-pod");
    assert_eq!(changes(pod, "args-only")["image-pinned"], pinned("chalk/multi:1.0"));
}

#[test]
fn yaml_is_the_fixed_objects_with_registry_digests() {
    let w = world();
    let reg = w.plain.addr.as_str();
    let (server, dir, config, _) = plain_cluster();
    let out = audit(&server, dir.path(), &config, &["-o", "yaml"]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    support::kubernetes_validate(&text);
    let docs = yaml_documents(&text);
    let doc = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind}/{name} in\n{text}"))
    };
    let shapes = doc("Deployment", "shapes");
    for shape in SHAPES {
        assert_fixed(
            container(shapes, shape.name),
            shape,
            reg,
            w.images.digest(shape.repo_tag),
        );
    }
    let deploy = doc("Deployment", "app-deploy");
    let app = container(deploy, "app");
    assert_eq!(app.get("command"), None);
    assert_eq!(app["args"], json!(["sh", "-c", "echo updated"]));
    assert_eq!(
        app["image"],
        json!(format!("{reg}/chalk/bare:1.0@{}", w.images.digest("chalk/bare:1.0")))
    );
    let init = container(deploy, "init-setup");
    assert_eq!(
        init["command"],
        json!(["/chalk", "exec", "--exec-command-name", "sh", "--", "-c"])
    );
    assert_eq!(init["args"], json!(["echo init"]));
}

#[test]
fn text_and_sarif_show_the_same_fixes() {
    let w = world();
    let reg = w.plain.addr.as_str();
    let (server, dir, config, _) = plain_cluster();
    let out = audit(&server, dir.path(), &config, &["-o", "text"]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let row = |kind_name: &str, container: &str, rule: &str| {
        text.lines()
            .find(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.get(1) == Some(&kind_name) && cells.get(2) == Some(&container) && cells.contains(&rule)
            })
            .unwrap_or_else(|| panic!("no row {kind_name} {container} {rule} in\n{text}"))
    };
    let bypass = "command-bypasses-wrapper";
    assert!(row("Deployment/shapes", "bare", bypass).ends_with(r#"args: drop command, args=["sh","-c","echo hi"]"#));
    assert!(row("Deployment/shapes", "flags", bypass).ends_with(
        r#"prepend: command=["/chalk","exec","--heartbeat","--exec-command-name","python","--","-m","http.server"]"#
    ));
    assert!(row("Deployment/shapes", "disagree", "platforms-disagree").ends_with("none (platforms disagree)"));
    let pin = row("Deployment/shapes", "multi", "image-pinned");
    assert!(
        pin.ends_with(&format!(
            "pin: image={reg}/chalk/multi:1.0@{}",
            w.images.digest("chalk/multi:1.0")
        )),
        "{pin}"
    );
    assert!(!text.contains("image-config-unknown"), "every image resolved:\n{text}");

    let out = audit(&server, dir.path(), &config, &["-o", "sarif"]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let sarif: Value = serde_json::from_slice(&out.stdout).expect("SARIF is JSON");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let result = |at: &str, rule: &str| {
        results
            .iter()
            .find(|r| r["ruleId"] == rule && r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == at)
            .unwrap_or_else(|| panic!("no {rule} at {at} in {sarif:#}"))
    };
    let containers = "demo/Deployment/shapes/spec.template.spec.containers";
    for (i, shape) in SHAPES.iter().enumerate() {
        let at = format!("{containers}[{i}]");
        let pin = result(&at, "image-pinned");
        assert_eq!(pin["properties"]["fix"], "pin", "{}", shape.name);
        let want = match shape.name {
            "plain" => None,
            "disagree" => Some(("platforms-disagree", Value::Null)),
            "bare" | "multi" | "multi-v2s2" | "multi-attest" => Some((bypass, json!("args"))),
            _ => Some((bypass, json!("prepend"))),
        };
        if let Some((rule, fix)) = want {
            assert_eq!(result(&at, rule)["properties"]["fix"], fix, "{}", shape.name);
        }
    }
    assert!(!results.iter().any(|r| r["ruleId"] == "image-config-unknown"));
}

/// A TLS registry with basic auth, workloads needing its pull secret, and a
/// stand-in API server that serves the secret and ServiceAccounts under `role`.
struct Private {
    server: ApiServer,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    reg: String,
    _registry: registry::Registry,
}

fn private_cluster(role: Option<Value>) -> Private {
    let w = world();
    let users = vec![("puller".to_string(), "pull-pw".to_string())];
    let tls = w.registry(
        &format!("audit-tls-{}", registry::free_port()),
        Auth::TlsHtpasswd { users },
    );
    let reg = tls.addr.clone();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let dockerconfig = json!({"auths": {&reg: {"auth": b64("puller:pull-pw")}}}).to_string();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred", "namespace": "demo"}, "data": {".dockerconfigjson": b64(&dockerconfig)}});
    let builder = json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "builder", "namespace": "demo"}, "imagePullSecrets": [{"name": "regcred"}]});
    let shape = |name: &str| shape_container(SHAPES.iter().find(|s| s.name == name).unwrap(), &reg);
    let extra = vec![
        deployment(
            "private",
            vec![shape("two")],
            json!({"imagePullSecrets": [{"name": "regcred"}]}),
        ),
        deployment("via-sa", vec![shape("shell")], json!({"serviceAccountName": "builder"})),
        deployment("no-secret", vec![shape("flags")], json!({})),
    ];
    let server = ApiServer::start(Behaviour {
        // The captured workloads' images too, so that nothing leaves loopback.
        images: images_in(&reg),
        extra: HashMap::from([(DEPLOYMENTS.to_string(), extra)]),
        objects: HashMap::from([
            ("/api/v1/namespaces/demo/secrets/regcred".to_string(), secret),
            ("/api/v1/namespaces/demo/serviceaccounts/builder".to_string(), builder),
            (
                "/api/v1/namespaces/demo/serviceaccounts/default".to_string(),
                support::fixture("api_v1_namespaces_demo_serviceaccounts_default.json"),
            ),
        ]),
        cluster_role: role,
        ..Behaviour::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &[], &[(&reg, tls.ca_file.as_deref().unwrap())], "");
    Private {
        server,
        dir,
        config,
        reg,
        _registry: tls,
    }
}

/// The `command-bypasses-wrapper` fix proposed for each of the three Deployments.
fn private_fixes(p: &Private, args: &[&str]) -> HashMap<&'static str, Value> {
    let mut all = vec!["-o", "json", "-n", "demo"];
    all.extend_from_slice(args);
    let out = audit(&p.server, p.dir.path(), &p.config, &all);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let report = json_report(&out);
    ["private", "via-sa", "no-secret"]
        .into_iter()
        .map(|name| {
            let o = object(&report, &format!("Deployment/{name}"));
            let f = o["findings"].as_array().unwrap();
            let rule = |r: &str| f.iter().find(|f| f["rule"] == r).cloned();
            let fix = rule("command-bypasses-wrapper")
                .map(|f| json!({"after": f["change"]["after"], "pin": rule("image-pinned").map(|p| p["change"]["after"].clone())}))
                .unwrap_or_else(|| json!(f.iter().map(|f| f["rule"].clone()).collect::<Vec<_>>()));
            (name, fix)
        })
        .collect()
}

#[test]
fn pull_secrets_of_the_pod_spec_and_its_service_account_are_used() {
    let w = world();
    let p = private_cluster(None);
    let fixes = private_fixes(&p, &[]);
    let pinned = |repo_tag: &str| json!(format!("{}/{repo_tag}@{}", p.reg, w.images.digest(repo_tag)));
    assert_eq!(
        fixes["private"],
        json!({"after": {"command": ["/chalk", "exec", "--exec-command-name", "python", "--", "app.py"], "args": ["--port", "80"]},
            "pin": pinned("chalk/two:1.0")})
    );
    assert_eq!(
        fixes["via-sa"]["pin"],
        pinned("chalk/shell:1.0"),
        "{:#}",
        fixes["via-sa"]
    );
    // No pull secret: the registry says 401, and nothing is proposed.
    assert_eq!(fixes["no-secret"], json!(["image-config-unknown"]));
    let gets: Vec<String> = p.server.seen().into_iter().map(|s| s.path).collect();
    assert!(
        gets.contains(&"/api/v1/namespaces/demo/secrets/regcred".to_string()),
        "{gets:?}"
    );
    assert!(
        gets.contains(&"/api/v1/namespaces/demo/serviceaccounts/builder".to_string()),
        "{gets:?}"
    );

    // --docker-config is tried after the pull secrets: now every image resolves.
    let file = docker_config(&p.dir.path().join("docker"), &p.reg, "puller", "pull-pw");
    let fixes = private_fixes(&p, &["--docker-config", file.to_str().unwrap()]);
    assert_eq!(
        fixes["no-secret"]["pin"],
        pinned("chalk/flags:1.0"),
        "{:#}",
        fixes["no-secret"]
    );
}

/// The optional Role documented in docs/AUDIT.md for `audit --resolve`.
fn documented_resolve_role() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/AUDIT.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let block = doc
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("name: entrypoint-guard-audit-resolve"))
        .expect("docs/AUDIT.md shows the entrypoint-guard-audit-resolve Role");
    serde_saphyr::from_str(block).expect("the documented Role is YAML")
}

#[test]
fn the_shipped_role_cannot_read_pull_secrets_and_the_documented_role_can() {
    let mut role = support::shipped_cluster_role();
    let p = private_cluster(Some(role.clone()));
    let fixes = private_fixes(&p, &[]);
    assert_eq!(
        fixes["private"],
        json!(["image-config-unknown"]),
        "secrets are forbidden"
    );
    assert_eq!(fixes["via-sa"], json!(["image-config-unknown"]));
    drop(p);

    let extra = documented_resolve_role();
    assert_eq!(extra["kind"], "Role");
    role["rules"]
        .as_array_mut()
        .unwrap()
        .extend(extra["rules"].as_array().unwrap().iter().cloned());
    let p = private_cluster(Some(role));
    let fixes = private_fixes(&p, &[]);
    assert!(fixes["private"]["pin"].is_string(), "{:#}", fixes["private"]);
    assert!(fixes["via-sa"]["pin"].is_string(), "{:#}", fixes["via-sa"]);
}
