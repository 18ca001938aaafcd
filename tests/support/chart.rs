//! Shared helpers of the chart tests: run the real `helm` and
//! `kubernetes-validate` binaries and look into what the chart renders.
//!
//! Include with `#[path = "support/chart.rs"] mod chart;`.
#![allow(dead_code)] // each test file uses a different subset

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The release namespace every render uses.
pub const NAMESPACE: &str = "eg";
/// The release name every render uses.
pub const RELEASE: &str = "r";
/// The full name the chart derives from [`RELEASE`].
pub const FULLNAME: &str = "r-entrypoint-guard";
/// The Kubernetes version manifests are validated against.
pub const KUBE_VERSION: &str = "1.33.0";

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    root().join("charts/entrypoint-guard")
}

/// Runs `tool args...`, failing loudly when the tool is not installed.
pub fn run(tool: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(tool);
    cmd.args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot run `{tool}` ({e}): install the test tools with scripts/testenv/install.sh")
    });
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())
            .expect("write to the tool's stdin");
    }
    child.wait_with_output().expect("wait for the tool")
}

/// Text of a tool's stdout and stderr, for failure messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `helm lint --strict` on `chart` with extra arguments; panics on failure.
pub fn lint(chart: &Path, args: &[&str]) {
    let chart = chart.to_str().expect("utf-8 path");
    let mut all = vec!["lint", "--strict", chart, "--namespace", NAMESPACE];
    all.extend_from_slice(args);
    let out = run("helm", &all, None);
    assert!(
        out.status.success(),
        "helm lint --strict {args:?} failed:\n{}",
        describe(&out)
    );
}

/// `helm template` of `chart`; the raw output or helm's error text.
pub fn template_at(chart: &Path, args: &[&str]) -> Result<String, String> {
    let chart = chart.to_str().expect("utf-8 path");
    let mut all = vec!["template", RELEASE, chart, "--namespace", NAMESPACE];
    all.extend_from_slice(args);
    let out = run("helm", &all, None);
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("helm prints UTF-8"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The chart rendered with `args`, split into documents.
pub struct Rendered {
    /// Exactly what `helm template` printed.
    pub text: String,
    /// Every non-empty document.
    pub docs: Vec<Value>,
}

impl Rendered {
    /// Every document of `kind`.
    pub fn all(&self, kind: &str) -> Vec<&Value> {
        self.docs.iter().filter(|d| d["kind"] == kind).collect()
    }

    /// The one document of `kind` named `name`; panics when absent.
    pub fn get(&self, kind: &str, name: &str) -> &Value {
        self.find(kind, name)
            .unwrap_or_else(|| panic!("no {kind} {name} in:\n{}", self.summary()))
    }

    /// The document of `kind` named `name`, if rendered.
    pub fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    }

    /// `Kind/name` of every document, for messages.
    pub fn summary(&self) -> String {
        self.docs
            .iter()
            .map(|d| {
                format!(
                    "{}/{}",
                    d["kind"].as_str().unwrap_or("?"),
                    d["metadata"]["name"].as_str().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The MutatingWebhookConfiguration's webhooks.
    pub fn webhooks(&self) -> &Vec<Value> {
        self.get("MutatingWebhookConfiguration", FULLNAME)["webhooks"]
            .as_array()
            .expect("webhooks is a list")
    }

    /// The webhook named `name` (`fix.entrypoint-guard.io`, `audit.entrypoint-guard.io`).
    pub fn webhook(&self, name: &str) -> &Value {
        self.webhooks()
            .iter()
            .find(|w| w["name"] == name)
            .unwrap_or_else(|| panic!("no webhook {name}"))
    }

    /// The `config.yaml` text of the server's ConfigMap.
    pub fn config_text(&self) -> &str {
        self.get("ConfigMap", FULLNAME)["data"]["config.yaml"]
            .as_str()
            .expect("config.yaml is a string")
    }

    /// The server's pod template spec.
    pub fn pod_spec(&self) -> &Value {
        &self.get("Deployment", FULLNAME)["spec"]["template"]["spec"]
    }
}

/// Parses multi-document YAML into JSON values, dropping empty documents.
pub fn parse_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{text}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// Renders the repository's chart with `args`; panics with helm's error.
pub fn render(args: &[&str]) -> Rendered {
    render_at(&chart_dir(), args)
}

/// Renders the chart at `chart` with `args`; panics with helm's error.
pub fn render_at(chart: &Path, args: &[&str]) -> Rendered {
    let text = template_at(chart, args).unwrap_or_else(|e| panic!("helm template {args:?} failed:\n{e}"));
    let docs = parse_docs(&text);
    Rendered { text, docs }
}

/// Renders with `args`, expecting helm to refuse; returns its error text.
pub fn render_error(args: &[&str]) -> String {
    match template_at(&chart_dir(), args) {
        Ok(text) => panic!("helm template {args:?} should have failed, rendered:\n{text}"),
        Err(e) => e,
    }
}

/// Kinds that come from CRDs, which kubernetes-validate has no schema for.
pub const CRD_KINDS: [&str; 4] = ["Certificate", "Issuer", "ServiceMonitor", "PrometheusRule"];

/// Runs `kubernetes-validate --strict` on `text`; panics unless every resource
/// passes. Only CRD kinds may go unchecked (a warning), and only those listed.
pub fn validate(text: &str) {
    let out = run(
        "kubernetes-validate",
        &["--strict", "-k", KUBE_VERSION, "--quiet", "-"],
        Some(text),
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "kubernetes-validate failed:\n{all}\n--- input\n{text}"
    );
    for line in all.lines().filter(|l| !l.trim().is_empty()) {
        let crd = line.starts_with("WARN") && CRD_KINDS.iter().any(|k| line.contains(&format!("kind {k} ")));
        assert!(crd, "unexpected kubernetes-validate output: {line}");
    }
}

/// Base64-decodes standard-alphabet text.
pub fn b64(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64 ({e}): {text}"))
}

/// A copy of the chart in a temporary directory, for tests that must change a
/// template (simulating `lookup`) without touching the real one.
pub fn chart_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&chart_dir(), &dir.path().join("entrypoint-guard"));
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read chart dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Whether helm's error names the values field `dotted` (`tls.secret.name`):
/// Helm 3 writes it dotted, Helm 4 as a JSON pointer (`/tls/secret/name`).
pub fn mentions_field(error: &str, dotted: &str) -> bool {
    error.contains(dotted) || error.contains(&format!("/{}", dotted.replace('.', "/")))
}
