//! Helm: `review --chart` on chart sources, and `helm template | review -f -`
//! on what a chart renders (real helm).

#[path = "support/review.rs"]
mod support;

use serde_json::Value;
use support::{require_tool, run, run_in, tool};

fn findings(stdout: &str) -> Vec<Value> {
    let report: Value = serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    report["findings"].as_array().unwrap().clone()
}

fn at(findings: &[Value]) -> Vec<String> {
    findings
        .iter()
        .map(|f| format!("{}:{}:{}", f["file"].as_str().unwrap(), f["line"], f["column"]))
        .collect()
}

#[test]
fn chart_sources_are_reported_with_file_and_line() {
    let out = run(&["review", "--chart", "examples/chart", "-o", "json"], None);
    assert_eq!(out.code, 1, "{out:?}");
    let found = findings(&out.stdout);
    // Not the probe's `exec: command:` (values.yaml:11, deployment.yaml:28),
    // nor the `command` in the template's comment.
    assert_eq!(
        at(&found),
        [
            "examples/chart/values.yaml:6:1",
            "examples/chart/templates/deployment.yaml:19:11"
        ]
    );
    assert!(
        found
            .iter()
            .all(|f| f["rule"] == "helm-command-override" && f.get("fix").is_none())
    );
    let values = found[0]["message"].as_str().unwrap();
    assert!(values.contains("`command`") && values.contains("args"), "{values}");
    assert!(
        values.contains(r#"["/chalk","exec","--exec-command-name","gunicorn","--","--workers","4","app:wsgi"]"#),
        "says exactly what to write: {values}"
    );

    let text = run(&["review", "--chart", "examples/chart"], None);
    assert!(
        text.stdout.contains("examples/chart/templates/deployment.yaml:19:11: Helm chart source\n  helm-command-override: renders `command:`"),
        "{}",
        text.stdout
    );

    let sarif = run(&["review", "--chart", "examples/chart", "-o", "sarif"], None);
    let log: Value = serde_json::from_str(&sarif.stdout).unwrap();
    let region = &log["runs"][0]["results"][1]["locations"][0]["physicalLocation"];
    assert_eq!(
        region["artifactLocation"]["uri"],
        "examples/chart/templates/deployment.yaml"
    );
    assert_eq!(region["region"]["startLine"], 19);
}

#[test]
fn subcharts_and_values_variants_are_scanned_and_non_charts_refused() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("parent");
    let sub = chart.join("charts/worker");
    std::fs::create_dir_all(sub.join("templates")).unwrap();
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: parent\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(chart.join("values.yaml"), "replicas: 1\n").unwrap();
    std::fs::write(chart.join("values-prod.yaml"), "app:\n  command:\n    - run\n").unwrap();
    std::fs::write(sub.join("Chart.yaml"), "apiVersion: v2\nname: worker\nversion: 0.1.0\n").unwrap();
    std::fs::write(sub.join("values.yaml"), "worker:\n  command: [work, --hard]\n").unwrap();
    std::fs::write(sub.join("templates/NOTES.txt"), "command: not a manifest\n").unwrap();
    let out = run_in(dir.path(), &["review", "--chart", "parent", "-o", "json"], None);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        at(&findings(&out.stdout)),
        ["parent/values-prod.yaml:2:3", "parent/charts/worker/values.yaml:2:3"]
    );

    let out = run_in(dir.path(), &["review", "--chart", "parent/templates"], None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("not a Helm chart"), "{}", out.stderr);

    std::fs::write(chart.join("values.yaml"), "a: [\n").unwrap();
    let out = run_in(dir.path(), &["review", "--chart", "parent"], None);
    assert_eq!(out.code, 2, "a broken values file is a parse error");
    assert!(out.stderr.contains("parent/values.yaml:"), "{}", out.stderr);
}

/// Regression: a chart value that already starts with the wrapper runs
/// under chalk. It was reported, and the advice wrapped the wrapper in itself
/// (`["/chalk","exec","--exec-command-name","/chalk","--","exec","--","app"]`).
#[test]
fn chart_commands_that_already_start_with_the_wrapper_are_not_reported() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("wrapped");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: wrapped\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("values.yaml"),
        "app:\n  command: [\"/chalk\", \"exec\", \"--\", \"app\"]\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/pod.yaml"),
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: app\n      command: [\"/chalk\", \"exec\", \"--\", \"app\"]\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["review", "--chart", "wrapped", "-o", "json"], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(findings(&out.stdout).is_empty(), "{}", out.stdout);

    // Under a different wrapper the same value bypasses it, and the advice
    // prepends that wrapper, once.
    std::fs::write(dir.path().join("config.yaml"), "wrapper: [/usr/bin/chalk, exec]\n").unwrap();
    let out = run_in(
        dir.path(),
        &["--config", "config.yaml", "review", "--chart", "wrapped", "-o", "json"],
        None,
    );
    assert_eq!(out.code, 1, "{out:?}");
    let found = findings(&out.stdout);
    assert_eq!(
        at(&found),
        ["wrapped/values.yaml:2:3", "wrapped/templates/pod.yaml:6:7"]
    );
    let advice = found[0]["message"].as_str().unwrap();
    assert!(
        advice.contains(r#"["/usr/bin/chalk","exec","--exec-command-name","/chalk","--","exec","--","app"]"#),
        "{advice}"
    );
}

#[test]
fn helm_template_output_is_reviewed_from_stdin() {
    let helm = require_tool("helm");
    let (code, rendered, stderr) = tool(&helm, &["template", "shop", "examples/chart"], "");
    assert_eq!(code, 0, "helm template: {stderr}");
    assert!(
        rendered.starts_with("---\n# Source: shop/templates/deployment.yaml\n"),
        "{rendered}"
    );

    let out = run(
        &["review", "-f", "-", "--images", "examples/images.yaml", "-o", "json"],
        Some(&rendered),
    );
    assert_eq!(out.code, 1, "{out:?}");
    let found = findings(&out.stdout);
    let web_line = rendered.lines().position(|l| l.trim() == "- name: web").unwrap() + 1;
    let bypass = found.iter().find(|f| f["rule"] == "command-bypasses-wrapper").unwrap();
    assert_eq!(bypass["file"], "<stdin>");
    assert_eq!(bypass["document"], 1);
    assert_eq!(bypass["line"], web_line, "the line in helm's output");
    assert_eq!(bypass["name"], "shop");
    assert_eq!(bypass["fix"], "prepend");

    let yaml = run(
        &["review", "-f", "-", "--images", "examples/images.yaml", "-o", "yaml"],
        Some(&rendered),
    );
    assert!(
        yaml.stdout
            .starts_with("---\n# Source: shop/templates/deployment.yaml\napiVersion: apps/v1\n"),
        "helm's Source comment stays with its document: {}",
        yaml.stdout
    );
    assert!(yaml.stdout.contains("- --exec-command-name\n"), "{}", yaml.stdout);
    let validate = require_tool("kubernetes-validate");
    let (code, stdout, stderr) = tool(&validate, &["--strict", "-k", "1.33.0", "--quiet", "-"], &yaml.stdout);
    assert_eq!(code, 0, "kubernetes-validate: {stdout}{stderr}");
}

#[test]
fn helm_style_streams_keep_source_comments_and_line_numbers() {
    // What `helm template` writes for a chart with two templates, one empty.
    let stream = "\
---
# Source: app/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: app
spec:
  ports:
  - port: 80
---
# Source: app/templates/empty.yaml
---
# Source: app/templates/cronjob.yaml
apiVersion: batch/v1
kind: CronJob
metadata:
  name: app-backup
spec:
  schedule: '@daily'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: backup
            image: registry.example.com/ops/backup:3.1
            command: [backup.sh]
";
    let out = run(&["review", "-f", "-", "--images", "examples/images.yaml"], Some(stream));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .starts_with("<stdin>:26:13: document 2, CronJob app-backup, container \"backup\""),
        "{}",
        out.stdout
    );
    let yaml = run(
        &["review", "-f", "-", "--images", "examples/images.yaml", "-o", "yaml"],
        Some(stream),
    );
    let service = &stream[4..stream.find("---\n# Source: app/templates/empty").unwrap()];
    assert!(
        yaml.stdout
            .starts_with(&format!("---\n{service}---\n# Source: app/templates/cronjob.yaml\n")),
        "{}",
        yaml.stdout
    );
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml.stdout).unwrap();
    let container = &docs[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["args"], serde_json::json!(["backup.sh"]));
    assert_eq!(container.get("command"), None);
}
