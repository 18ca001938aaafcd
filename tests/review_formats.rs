//! `review --output text|yaml|json|sarif` over `examples/`: what a newcomer
//! sees, what `kubectl apply -f -` gets, and what programs and code-scanning
//! UIs read.

#[path = "support/review.rs"]
mod support;

use serde_json::Value;
use support::{require_tool, review_examples, run, tool};

fn documents(stream: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(stream)
        .unwrap_or_else(|e| panic!("the output is YAML: {e}\n{stream}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

#[test]
fn text_shows_each_finding_and_a_diff() {
    let out = review_examples(&[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    insta::assert_snapshot!("examples_text", out.stdout);
}

#[test]
fn yaml_is_ready_for_kubectl_and_keeps_untouched_documents_verbatim() {
    let out = review_examples(&["-o", "yaml"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let yaml = &out.stdout;

    // Untouched documents: byte for byte, comments included.
    let multi = std::fs::read_to_string(support::root().join("examples/manifests/multi.yaml")).unwrap();
    for document in multi.split("---\n") {
        assert!(yaml.contains(document), "verbatim:\n{document}\nnot in:\n{yaml}");
    }
    // Changed documents: fixed, leading comments kept.
    assert!(
        yaml.contains("---\n# A web shop whose containers set `command`"),
        "{yaml}"
    );
    let docs = documents(yaml);
    assert_eq!(docs.len(), 6, "every document of every manifest file");
    let web = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let containers = &web["spec"]["template"]["spec"]["containers"];
    assert_eq!(
        containers[0]["command"],
        serde_json::json!([
            "/chalk",
            "exec",
            "--heartbeat",
            "--exec-command-name",
            "gunicorn",
            "--",
            "--workers",
            "4",
            "app:wsgi"
        ])
    );
    assert_eq!(containers[1].get("command"), None);
    assert_eq!(
        containers[1]["args"],
        serde_json::json!(["/usr/bin/ship", "--to", "loki.monitoring:3100"])
    );
    assert!(
        containers[0]["image"]
            .as_str()
            .unwrap()
            .starts_with("registry.example.com/shop/web:1.4.2@sha256:")
    );
    // Values YAML 1.1 readers would retype stay strings ("4", "0 2 * * *").
    assert_eq!(containers[0]["command"][7], "4");

    // Every object is valid Kubernetes 1.33, strictly (no unknown fields).
    let validate = require_tool("kubernetes-validate");
    let (code, stdout, stderr) = tool(&validate, &["--strict", "-k", "1.33.0", "--quiet", "-"], yaml);
    assert_eq!(code, 0, "kubernetes-validate: {stdout}{stderr}");

    // Reviewing the output again fixes nothing more (idempotent); only the
    // Job whose image is unknown is still reported.
    let again = run(
        &["review", "-f", "-", "--images", "examples/images.yaml", "-o", "json"],
        Some(yaml),
    );
    let report: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(report["summary"]["changed"], 0, "{report}");
    let rules: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["image-config-unknown"]);
}

#[test]
fn json_report_patches_reproduce_the_yaml_output() {
    let out = review_examples(&["-o", "json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let summary = &report["summary"];
    assert_eq!(summary["files"], 4);
    assert_eq!(summary["documents"], 6);
    assert_eq!(summary["changed"], 3);
    assert_eq!(summary["problems"], 0);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(summary["findings"], findings.len());
    for f in findings {
        for key in ["file", "line", "column", "rule", "message", "applied"] {
            assert!(f.get(key).is_some(), "{key} in {f}");
        }
    }
    let chart: Vec<_> = findings
        .iter()
        .filter(|f| f["rule"] == "helm-command-override")
        .map(|f| format!("{}:{}", f["file"].as_str().unwrap(), f["line"]))
        .collect();
    assert_eq!(
        chart,
        [
            "examples/chart/values.yaml:6",
            "examples/chart/templates/deployment.yaml:19"
        ]
    );

    // Each change's patch, applied to the source document, gives the
    // document `--output yaml` writes.
    let fixed = documents(&review_examples(&["-o", "yaml"]).stdout);
    for change in report["changes"].as_array().unwrap() {
        let file = change["file"].as_str().unwrap();
        let text = std::fs::read_to_string(support::root().join(file)).unwrap();
        let mut doc: Value = serde_saphyr::from_str(&text).unwrap();
        let patch: json_patch::Patch = serde_json::from_value(change["patch"].clone()).unwrap();
        json_patch::patch(&mut doc, &patch).unwrap();
        assert!(fixed.contains(&doc), "{file}: patched document is in the YAML output");
    }
}

#[test]
fn sarif_has_the_structure_code_scanning_requires() {
    let out = review_examples(&["-o", "sarif"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let log: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().ends_with("sarif-schema-2.1.0.json"));
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "entrypoint-guard");
    let rules = driver["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"command-bypasses-wrapper") && ids.contains(&"helm-command-override"));
    for rule in rules {
        assert!(rule["shortDescription"]["text"].as_str().is_some_and(|t| !t.is_empty()));
    }
    let results = runs[0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for result in results {
        let id = result["ruleId"].as_str().unwrap();
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(ids[index], id, "ruleIndex points at ruleId");
        assert!(["error", "warning", "note", "none"].contains(&result["level"].as_str().unwrap()));
        assert!(result["message"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().unwrap();
        assert!(uri.starts_with("examples/") && !uri.contains(' '), "{uri}");
        let line = location["region"]["startLine"].as_u64().unwrap();
        assert!(line >= 1);
        // The region points at the container (or chart line) in the file.
        let text = std::fs::read_to_string(support::root().join(uri)).unwrap();
        let at = text.lines().nth(line as usize - 1).unwrap();
        if id == "helm-command-override" {
            assert!(at.contains("command:"), "{uri}:{line}: {at}");
        } else {
            // YAML: the container's first key; JSON: its opening brace.
            let name = result["properties"]["container"].as_str().unwrap();
            let first_key = at.contains(&format!("name: {name}"));
            assert!(first_key || at.trim() == "{", "{uri}:{line}: {at}");
        }
    }
    let invocation = &runs[0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], true);

    // Parse errors become tool notifications, and the run is unsuccessful.
    let broken = run(&["review", "-f", "-", "-o", "sarif"], Some("kind: Pod\nspec: [\n"));
    assert_eq!(broken.code, 2);
    let log: Value = serde_json::from_str(&broken.stdout).unwrap();
    let invocation = &log["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let note = &invocation["toolExecutionNotifications"][0];
    assert_eq!(note["level"], "error");
    assert_eq!(
        note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "stdin"
    );
}
