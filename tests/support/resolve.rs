//! Shared by the `--resolve` tests of `review` and `audit`: the configuration
//! that lets the binary reach loopback test registries, Docker config files,
//! and the chalk wrap shapes with the exact fix each must get.

#![allow(dead_code)] // each test crate uses its own part of these helpers

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};

/// An entrypoint-guard configuration file in `dir`: `registries` reached over
/// plain HTTP, `tls` (host:port, CA file) over HTTPS with their own CA, all
/// allowed on loopback; `extra` YAML appended (e.g. `imageFacts`).
pub fn config_file(dir: &Path, registries: &[&str], tls: &[(&str, &Path)], extra: &str) -> PathBuf {
    let insecure: Vec<String> = registries.iter().map(|r| r.to_string()).collect();
    let private: Vec<String> = registries
        .iter()
        .map(|r| r.to_string())
        .chain(tls.iter().map(|(r, _)| r.to_string()))
        .collect();
    let ca_files: serde_json::Map<String, Value> = tls
        .iter()
        .map(|(r, ca)| (r.to_string(), json!(ca.display().to_string())))
        .collect();
    let registry = json!({"insecure": insecure, "allowPrivate": private, "caFiles": ca_files});
    // JSON is YAML: the registry section, then the caller's YAML.
    let text = format!("registry: {registry}\n{extra}");
    let path = dir.join("entrypoint-guard.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A Docker `config.json` in `dir` with `user:password` for `registry`.
pub fn docker_config(dir: &Path, registry: &str, user: &str, password: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("docker config dir");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let path = dir.join("config.json");
    std::fs::write(&path, json!({"auths": {registry: {"auth": auth}}}).to_string()).expect("write docker config");
    path
}

/// Every YAML document of `text`, as JSON values.
pub fn yaml_documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The container (or init container) called `name` anywhere in `object`.
pub fn container<'a>(object: &'a Value, name: &str) -> &'a Value {
    fn find<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
        match v {
            Value::Object(map) => {
                for key in ["containers", "initContainers"] {
                    if let Some(found) = map
                        .get(key)
                        .and_then(Value::as_array)
                        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
                    {
                        return Some(found);
                    }
                }
                map.values().find_map(|v| find(v, name))
            }
            Value::Array(items) => items.iter().find_map(|v| find(v, name)),
            _ => None,
        }
    }
    find(object, name).unwrap_or_else(|| panic!("no container {name} in {object:#}"))
}

/// One container of the shapes test: its name, the image (`repo:tag` in the
/// standard set), the `command`/`args` it is written with, and those it must
/// have after the fix (`None`: the field is absent).
pub struct Shape {
    /// Container name.
    pub name: &'static str,
    /// `repo:tag` pushed by make-images.sh.
    pub repo_tag: &'static str,
    /// `command` as written.
    pub command: &'static [&'static str],
    /// `args` as written (empty: none).
    pub args: &'static [&'static str],
    /// `command` after the fix.
    pub fixed_command: Option<&'static [&'static str]>,
    /// `args` after the fix.
    pub fixed_args: Option<&'static [&'static str]>,
}

/// The four chalk wrap shapes, chalk flags, plain and multi-arch images, and
/// an index whose platforms disagree: what each must become (README.md,
/// "Why").
pub const SHAPES: &[Shape] = &[
    Shape {
        name: "bare",
        repo_tag: "chalk/bare:1.0",
        command: &["sh", "-c", "echo hi"],
        args: &[],
        fixed_command: None,
        fixed_args: Some(&["sh", "-c", "echo hi"]),
    },
    Shape {
        name: "one",
        repo_tag: "chalk/one:1.0",
        command: &["sh", "-c"],
        args: &["echo one"],
        fixed_command: Some(&["/chalk", "exec", "--exec-command-name", "sh", "--", "-c"]),
        fixed_args: Some(&["echo one"]),
    },
    Shape {
        name: "two",
        repo_tag: "chalk/two:1.0",
        command: &["python", "app.py"],
        args: &["--port", "80"],
        fixed_command: Some(&["/chalk", "exec", "--exec-command-name", "python", "--", "app.py"]),
        fixed_args: Some(&["--port", "80"]),
    },
    Shape {
        name: "shell",
        repo_tag: "chalk/shell:1.0",
        command: &["/bin/sh", "-c", "run"],
        args: &[],
        fixed_command: Some(&["/chalk", "exec", "--exec-command-name", "/bin/sh", "--", "-c", "run"]),
        fixed_args: None,
    },
    Shape {
        name: "flags",
        repo_tag: "chalk/flags:1.0",
        command: &["python", "-m", "http.server"],
        args: &[],
        fixed_command: Some(&[
            "/chalk",
            "exec",
            "--heartbeat",
            "--exec-command-name",
            "python",
            "--",
            "-m",
            "http.server",
        ]),
        fixed_args: None,
    },
    Shape {
        name: "plain",
        repo_tag: "plain/app:1.0",
        command: &["python", "x.py"],
        args: &["-v"],
        fixed_command: Some(&["python", "x.py"]),
        fixed_args: Some(&["-v"]),
    },
    Shape {
        name: "multi",
        repo_tag: "chalk/multi:1.0",
        command: &["sh", "-c", "echo m"],
        args: &["x"],
        fixed_command: None,
        fixed_args: Some(&["sh", "-c", "echo m", "x"]),
    },
    Shape {
        name: "multi-v2s2",
        repo_tag: "chalk/multi-v2s2:1.0",
        command: &["sh"],
        args: &[],
        fixed_command: None,
        fixed_args: Some(&["sh"]),
    },
    Shape {
        name: "multi-attest",
        repo_tag: "chalk/multi-attest:1.0",
        command: &["sh"],
        args: &[],
        fixed_command: None,
        fixed_args: Some(&["sh"]),
    },
    Shape {
        name: "disagree",
        repo_tag: "chalk/multi-disagree:1.0",
        command: &["sh", "-c", "echo d"],
        args: &[],
        fixed_command: Some(&["sh", "-c", "echo d"]),
        fixed_args: None,
    },
];

/// A container spec for `shape` with its image in `registry`.
pub fn shape_container(shape: &Shape, registry: &str) -> Value {
    let mut c =
        json!({"name": shape.name, "image": format!("{registry}/{}", shape.repo_tag), "command": shape.command});
    if !shape.args.is_empty() {
        c["args"] = json!(shape.args);
    }
    c
}

/// Asserts that `fixed` (a container after the fix) has `shape`'s command,
/// args, and its image pinned to `digest` with the tag kept.
pub fn assert_fixed(fixed: &Value, shape: &Shape, registry: &str, digest: &str) {
    let name = shape.name;
    assert_eq!(
        fixed["command"],
        json!(shape.fixed_command),
        "{name}: command in {fixed:#}"
    );
    assert_eq!(fixed["args"], json!(shape.fixed_args), "{name}: args in {fixed:#}");
    assert_eq!(
        fixed["image"],
        json!(format!("{registry}/{}@{digest}", shape.repo_tag)),
        "{name}: image pinned to the registry's digest"
    );
}
