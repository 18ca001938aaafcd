//! `entrypoint-guard krm`, the KRM function: golden ResourceLists in and
//! out (the exact output, results and kpt's annotations included),
//! idempotence on its own output, failures that leave the list whole, and
//! the function run by the real hosts: kubectl's kustomize (as an exec
//! plugin) and, where the machine has it, kpt (`fn eval --exec`).

#[path = "support/review.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{Run, run_in};

fn fixture(name: &str) -> String {
    let path = support::root().join("tests/fixtures/krm").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn krm(input: &str) -> Run {
    run_in(&support::root(), &["krm"], Some(input))
}

/// The whole of a run, for a snapshot.
fn transcript(run: &Run) -> String {
    format!(
        "exit: {}\n--- stderr\n{}--- stdout\n{}",
        run.code, run.stderr, run.stdout
    )
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
}

/// The documents of a YAML stream.
fn documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("not a YAML stream: {e}\n{text}"))
}

fn results(list: &Value) -> Vec<Value> {
    list.get("results")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn fixes_pins_and_reports_every_item_of_a_kpt_resource_list() {
    let run = krm(&fixture("kpt-fix.yaml"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("kpt_fix", transcript(&run));
}

#[test]
fn a_config_map_configures_it_as_kpt_key_value_arguments_do() {
    let run = krm(&fixture("kpt-audit-configmap.yaml"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = yaml(&run.stdout);
    let input = yaml(&fixture("kpt-audit-configmap.yaml"));
    assert_eq!(out["items"], input["items"], "mode: audit changes nothing");
    insta::assert_snapshot!("kpt_audit_configmap", transcript(&run));
}

#[test]
fn json_in_json_out() {
    let run = krm(&fixture("list.json"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out: Value = serde_json::from_str(&run.stdout).expect("JSON answered in JSON");
    assert_eq!(
        out["items"][0]["spec"]["containers"][0]["args"],
        serde_json::json!(["backup", "--all"])
    );
    insta::assert_snapshot!("list_json", transcript(&run));
}

#[test]
fn its_own_output_is_a_fixed_point() {
    for name in ["kpt-fix.yaml", "kpt-audit-configmap.yaml", "list.json"] {
        let first = krm(&fixture(name));
        assert_eq!(first.code, 0, "{name}: {}", first.stderr);
        let second = krm(&first.stdout);
        assert_eq!(second.code, 0, "{name}: {}", second.stderr);
        let (a, b) = (yaml(&first.stdout), yaml(&second.stdout));
        assert_eq!(a["items"], b["items"], "{name}: a second run changes nothing");
        assert_eq!(a["functionConfig"], b["functionConfig"], "{name}");
        let third = krm(&second.stdout);
        assert_eq!(third.stdout, second.stdout, "{name}: byte for byte once settled");
        for result in results(&b) {
            assert_eq!(
                result["tags"]["applied"], "false",
                "{name}: nothing left to apply: {result}"
            );
        }
    }
}

#[test]
fn failures_write_the_items_unchanged_with_one_error_result() {
    for (name, expect) in [
        (
            "bad-function-config.yaml",
            "<stdin>:15:5: pinning.bogus: unknown field `bogus`",
        ),
        ("bad-config-map.yaml", "<stdin>:15:11: mode: unknown variant `fixx`"),
        (
            "item-not-an-object.yaml",
            "<stdin>:9:3: items[1]: not a Kubernetes object",
        ),
        (
            "unknown-function-config.yaml",
            "<stdin>:5:3: functionConfig: \"SetLabels\"",
        ),
    ] {
        let input = fixture(name);
        let run = krm(&input);
        assert_eq!(run.code, 1, "{name}: {}", run.stdout);
        let out = yaml(&run.stdout);
        assert_eq!(out["items"], yaml(&input)["items"], "{name}: the items as they came");
        let results = results(&out);
        assert_eq!(results.len(), 1, "{name}: {results:?}");
        assert_eq!(results[0]["severity"], "error", "{name}");
        let message = results[0]["message"].as_str().unwrap();
        assert!(message.starts_with(expect), "{name}: {message}");
        assert!(
            run.stderr.contains(message),
            "{name}: the error on stderr too: {}",
            run.stderr
        );
        insta::assert_snapshot!(name.trim_end_matches(".yaml").replace('-', "_"), transcript(&run));
    }
}

#[test]
fn unreadable_input_is_an_empty_list_with_the_error() {
    for (name, expect) in [
        ("broken.yaml", "<stdin>:6:"),
        ("not-a-resource-list.yaml", "<stdin>: expected a ResourceList"),
    ] {
        let run = krm(&fixture(name));
        assert_eq!(run.code, 1, "{name}");
        let out = yaml(&run.stdout);
        assert_eq!(out["kind"], "ResourceList");
        assert_eq!(out["items"], serde_json::json!([]));
        let message = results(&out)[0]["message"].as_str().unwrap().to_string();
        assert!(message.starts_with(expect), "{name}: {message}");
    }
    let empty = krm("");
    assert_eq!(empty.code, 1);
    assert!(empty.stderr.contains("no input"), "{}", empty.stderr);
}

/// A kustomization: `web.yaml` (a Deployment that overrides `command` on a
/// wrapped image, and a Service) and the function's configuration `guard.yaml`
/// as its transformer.
fn kustomization(dir: &Path, guard: &str) {
    std::fs::write(
        dir.join("kustomization.yaml"),
        "resources:\n- web.yaml\ntransformers:\n- guard.yaml\n",
    )
    .unwrap();
    let web = yaml(&fixture("kpt-fix.yaml"))["items"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|item| {
            let mut item = item.clone();
            item["metadata"].as_object_mut().unwrap().remove("annotations");
            format!("---\n{}", serde_saphyr::to_string(&item).unwrap())
        })
        .collect::<String>();
    std::fs::write(dir.join("web.yaml"), web).unwrap();
    std::fs::write(dir.join("guard.yaml"), guard).unwrap();
}

const GUARD: &str = "\
apiVersion: entrypoint-guard.io/v1alpha1
kind: EntrypointGuard
metadata:
  name: guard
imageFacts:
  registry.example.com/shop/web:1.4.2:
    entrypoint: [/chalk, exec, --heartbeat, --exec-command-name, gunicorn, --, app:wsgi]
    digest: sha256:4315c8fd5a82533f56a83922bc1d5a2cff2b1f1e76117f66673abbcffd6c9fff
";

/// kustomize's exec plugin for `EntrypointGuard`: the two-line script
/// docs/KRM.md gives, under a plugin home of its own.
fn plugin_home(root: &Path) -> PathBuf {
    let dir = root.join("plugins/kustomize/plugin/entrypoint-guard.io/v1alpha1/entrypointguard");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("EntrypointGuard");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec '{}' krm \"$@\"\n",
            env!("CARGO_BIN_EXE_entrypoint-guard")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    root.join("plugins")
}

fn kubectl_kustomize(home: &Path, dir: &Path) -> std::process::Output {
    Command::new(support::require_tool("kubectl"))
        .args(["kustomize", "--enable-alpha-plugins"])
        .arg(dir)
        .env("XDG_CONFIG_HOME", home)
        .output()
        .expect("kubectl runs (scripts/testenv/install.sh installs it)")
}

#[test]
fn kubectl_kustomize_runs_it_as_an_exec_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let home = plugin_home(tmp.path());
    let dir = tmp.path().join("app");
    std::fs::create_dir(&dir).unwrap();
    kustomization(&dir, GUARD);
    let out = kubectl_kustomize(&home, &dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = documents(&stdout);
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").expect("the Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["command"],
        serde_json::json!([
            "/chalk",
            "exec",
            "--heartbeat",
            "--exec-command-name",
            "gunicorn",
            "--",
            "--bind",
            "0.0.0.0:8000"
        ])
    );
    assert_eq!(
        container["image"],
        "registry.example.com/shop/web:1.4.2@sha256:4315c8fd5a82533f56a83922bc1d5a2cff2b1f1e76117f66673abbcffd6c9fff"
    );
    let annotations = deployment["metadata"]["annotations"].as_object().unwrap();
    assert!(
        annotations.contains_key("entrypoint-guard.io/resolved-images"),
        "{annotations:?}"
    );
    assert!(
        !annotations.keys().any(|k| k.starts_with("kustomize.config.k8s.io")),
        "kustomize's own id annotation went back to kustomize: {annotations:?}"
    );
    let service = docs.iter().find(|d| d["kind"] == "Service").expect("the Service");
    assert_eq!(service["spec"]["ports"][0]["port"], 80);

    // A bad configuration stops the build, naming the field (and its line
    // in the copy of the configuration kustomize hands the plugin).
    std::fs::write(dir.join("guard.yaml"), format!("{GUARD}mode: fixx\n")).unwrap();
    let out = kubectl_kustomize(&home, &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("entrypoint-guard: /tmp/") && stderr.contains(":7: mode: unknown variant `fixx`"),
        "the error names the field: {stderr}"
    );
}

/// kpt is not in Debian, PyPI, crates.io or npm, so scripts/testenv/install.sh
/// cannot install it; the machines of this project have it preinstalled
/// (Google's `google-cloud-cli-kpt`). Like the control-plane suite, this
/// says so and passes where it is missing.
fn kpt() -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join("kpt"))
        .find(|p| p.is_file())
}

#[test]
fn kpt_fn_eval_runs_it_with_a_config_file_and_with_key_value_arguments() {
    let Some(kpt) = kpt() else {
        eprintln!("kpt is not on PATH: kpt_fn_eval_runs_it_… did not run (kustomize is tested above)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    std::fs::create_dir(&pkg).unwrap();
    kustomization(&pkg, GUARD);
    std::fs::remove_file(pkg.join("kustomization.yaml")).unwrap();
    let guard = pkg.join("guard.yaml");
    let config = tmp.path().join("guard.yaml");
    std::fs::rename(&guard, &config).unwrap();
    let exec = format!("{} krm", env!("CARGO_BIN_EXE_entrypoint-guard"));

    // Audit first, through `-- key=value` (a ConfigMap functionConfig): nothing changes.
    let before = documents(&std::fs::read_to_string(pkg.join("web.yaml")).unwrap());
    let out = Command::new(&kpt)
        .args(["fn", "eval"])
        .arg(&pkg)
        .args(["--exec", &exec, "--", "mode=audit"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        documents(&std::fs::read_to_string(pkg.join("web.yaml")).unwrap()),
        before
    );
    assert!(
        stderr.contains("[warning] apps/v1/Deployment/shop/web spec.template.spec.containers[0]"),
        "kpt shows the finding: {stderr}"
    );

    // Then fix with the configuration file, results saved by kpt.
    let results = tmp.path().join("results");
    let out = Command::new(&kpt)
        .args(["fn", "eval"])
        .arg(&pkg)
        .args(["--exec", &exec, "--fn-config"])
        .arg(&config)
        .arg("--results-dir")
        .arg(&results)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fixed = std::fs::read_to_string(pkg.join("web.yaml")).unwrap();
    assert!(
        fixed.contains("- --exec-command-name\n") && fixed.contains("@sha256:4315c8fd"),
        "{fixed}"
    );
    let saved = std::fs::read_to_string(results.join("results.yaml")).unwrap();
    assert!(saved.contains("rule: command-bypasses-wrapper"), "{saved}");
    assert!(saved.contains("path: web.yaml"), "{saved}");
}

#[test]
fn as_an_exec_plugin_it_reads_and_writes_a_stream_and_reports_on_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("guard.yaml");
    std::fs::write(&config, GUARD).unwrap();
    let stream = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: web\n    \
                  image: registry.example.com/shop/web:1.4.2\n    command: [gunicorn]\n---\n# only a comment\n---\n\
                  apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  x: 'no'\n";
    let run = run_in(tmp.path(), &["krm", config.to_str().unwrap()], Some(stream));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let docs = documents(&run.stdout);
    assert_eq!(docs.len(), 2, "{}", run.stdout);
    assert_eq!(docs[0]["spec"]["containers"][0]["command"][0], "/chalk");
    assert_eq!(docs[1]["data"]["x"], "no");
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        [
            "entrypoint-guard: [info] v1/Pod/a spec.containers[0]: command replaces the chalk-wrapped entrypoint: \
             image entrypoint [\"/chalk\",\"exec\",\"--heartbeat\",\"--exec-command-name\",\"gunicorn\",\"--\",\"app:wsgi\"] \
             names its own program, so the wrapper is prepended with the image's chalk flags; fix: prepend the chalk wrapper to command",
            "entrypoint-guard: [info] v1/Pod/a spec.containers[0].image: image registry.example.com/shop/web:1.4.2 resolved to \
             sha256:4315c8fd5a82533f56a83922bc1d5a2cff2b1f1e76117f66673abbcffd6c9fff; pinned as \
             registry.example.com/shop/web:1.4.2@sha256:4315c8fd5a82533f56a83922bc1d5a2cff2b1f1e76117f66673abbcffd6c9fff",
        ]
    );

    let broken = run_in(
        tmp.path(),
        &["krm", config.to_str().unwrap()],
        Some("kind: Pod\nmetadata: [\n"),
    );
    assert_eq!(broken.code, 1);
    assert!(broken.stdout.is_empty(), "nothing half-written: {}", broken.stdout);
    assert!(broken.stderr.contains("<stdin>:"), "{}", broken.stderr);
    let missing = run_in(tmp.path(), &["krm", "no-such.yaml"], Some(stream));
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("no-such.yaml: cannot read"),
        "{}",
        missing.stderr
    );
}
