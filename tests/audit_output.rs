//! Each `audit` output format, from the real binary against the stand-in API
//! server: the text table, YAML ready for `kubectl apply --server-side`, SARIF.

#[path = "support/audit.rs"]
mod support;

use serde_json::{Value, json};
use support::{ApiServer, Behaviour, COLLECTIONS, expected, fixture, images_facts, images_file, run_audit};

const SIDECAR_PINNED: &str =
    "registry.example/sidecar:1.0@sha256:5c3b1e3e1e0d1d5b7c1d2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d";

fn audit(format: &str, extra: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = ApiServer::start(Behaviour {
        forbidden: ["/api/v1/replicationcontrollers".to_string()].into(),
        ..Behaviour::default()
    });
    let kubeconfig = server.kubeconfig(dir.path());
    let images = images_file(dir.path());
    let mut args = vec!["-o", format, "--images", images.to_str().unwrap()];
    args.extend_from_slice(extra);
    let output = run_audit(&kubeconfig, &args);
    (output, dir)
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

#[test]
fn text_is_a_table_of_findings_with_the_proposed_fix() {
    let (output, _dir) = audit("text", &[]);
    assert_eq!(output.status.code(), Some(2), "a forbidden kind makes it exit 2");
    let text = stdout(&output);
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split("  ").filter(|c| !c.is_empty()).map(str::trim).collect();
    assert_eq!(
        header,
        ["NAMESPACE", "KIND/NAME", "CONTAINER", "IMAGE", "RULE", "PROPOSED FIX"]
    );
    let row = |kind_name: &str, container: &str, rule: &str| {
        lines
            .iter()
            .find(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.get(1) == Some(&kind_name) && cells.get(2) == Some(&container) && l.contains(rule)
            })
            .unwrap_or_else(|| panic!("no row for {kind_name} {container} {rule} in\n{text}"))
            .to_string()
    };
    let app = row("StatefulSet/app-sts", "app", "command-bypasses-wrapper");
    assert!(app.starts_with("demo "), "{app}");
    assert!(app.contains("registry.example/app:1.0"), "{app}");
    assert!(
        app.ends_with(r#"args: drop command, args=["sh","-c","echo hello"]"#),
        "{app}"
    );
    let init = row("CronJob/app-cron", "init-setup", "command-bypasses-wrapper");
    assert!(
        init.ends_with(r#"prepend: command=["/chalk","exec","--exec-command-name","sh","--","-c"]"#),
        "{init}"
    );
    let pin = row("StatefulSet/app-sts", "sidecar", "image-pinned");
    assert!(pin.ends_with(&format!("pin: image={SIDECAR_PINNED}")), "{pin}");
    // Every column of every row starts where the header's does.
    let starts: Vec<usize> = ["KIND/NAME", "CONTAINER", "IMAGE", "RULE", "PROPOSED FIX"]
        .iter()
        .map(|h| lines[0].find(h).unwrap())
        .collect();
    for line in lines.iter().skip(1).take_while(|l| !l.is_empty()) {
        for &at in &starts {
            assert!(
                line.as_bytes()[at - 1] == b' ' && line.as_bytes()[at] != b' ',
                "misaligned at {at}: {line}"
            );
        }
    }
    assert!(
        text.contains("error: cannot list replicationcontrollers in all namespaces: forbidden: HTTP 403"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with(
            "18 findings in 6 objects; 7 objects audited, 0 reported through their owner (--pods shows them), 1 error"
        ),
        "{text}"
    );
}

#[test]
fn yaml_is_the_fixed_objects_ready_for_apply() {
    let (output, dir) = audit("yaml", &[]);
    assert_eq!(output.status.code(), Some(2));
    let text = stdout(&output);
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).expect("the output is YAML");
    // Six objects have findings; the bare Pod and the Job cannot be updated
    // with their fix, so they are comments saying so instead of documents.
    assert_eq!(documents.len(), 4, "{text}");
    assert!(
        !documents.iter().any(|d| d["kind"] == "Pod" || d["kind"] == "Job"),
        "{text}"
    );
    for comment in [
        "# Pod demo/app-pod: left out, a Pod cannot be updated in place",
        "# Job demo/app-job: left out, a Job's pod template cannot change",
    ] {
        assert!(text.contains(comment), "{comment}\n{text}");
    }
    support::kubernetes_validate(&text);
    let facts = images_facts(dir.path());
    for document in &documents {
        let kind = document["kind"].as_str().expect("kind is set");
        let name = document["metadata"]["name"].as_str().unwrap();
        for field in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            assert!(document["metadata"].get(field).is_none(), "{kind}/{name} keeps {field}");
        }
        assert!(document.get("status").is_none(), "{kind}/{name} keeps status");
        // It is exactly the listed object with the engine's fix applied.
        let (file, api_version, _, _) = COLLECTIONS.iter().find(|c| c.2 == kind).unwrap();
        assert_eq!(document["apiVersion"], *api_version);
        let item = fixture(file)["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == name)
            .unwrap()
            .clone();
        let (mut want, inspection) = expected(&item, api_version, kind, &facts);
        json_patch::patch(&mut want, &inspection.proposed).unwrap();
        want.as_object_mut().unwrap().remove("status");
        for field in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            want["metadata"].as_object_mut().unwrap().remove(field);
        }
        assert_eq!(document, &want, "{kind}/{name}");
    }
    let deploy = documents.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let spec = &deploy["spec"]["template"]["spec"];
    assert_eq!(spec["containers"][0].get("command"), None);
    // The captured Deployment was updated to `echo updated` before the list.
    assert_eq!(spec["containers"][0]["args"], json!(["sh", "-c", "echo updated"]));
    assert_eq!(
        spec["initContainers"][0]["command"],
        json!(["/chalk", "exec", "--exec-command-name", "sh", "--", "-c"])
    );
    assert_eq!(spec["initContainers"][0]["args"], json!(["echo init"]));
    assert_eq!(spec["containers"][1]["image"], SIDECAR_PINNED);
    let resolved = deploy["metadata"]["annotations"]["entrypoint-guard.io/resolved-images"]
        .as_str()
        .expect("trace annotation");
    assert!(resolved.contains("registry.example/sidecar:1.0"), "{resolved}");
}

#[test]
fn sarif_has_the_2_1_0_structure() {
    let (output, _dir) = audit("sarif", &[]);
    assert_eq!(output.status.code(), Some(2));
    let sarif: Value = serde_json::from_slice(&output.stdout).expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["$schema"].as_str().unwrap().ends_with("sarif-schema-2.1.0.json"));
    let runs = sarif["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "entrypoint-guard");
    let rules = driver["rules"].as_array().unwrap();
    let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(rule_ids.contains(&"command-bypasses-wrapper"));
    assert!(rules.iter().all(|r| r["shortDescription"]["text"].is_string()));
    let results = runs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 18);
    for result in results {
        let id = result["ruleId"].as_str().unwrap();
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], id, "ruleIndex points at the rule");
        assert!(["error", "warning", "note"].contains(&result["level"].as_str().unwrap()));
        assert!(!result["message"]["text"].as_str().unwrap().is_empty());
        let location = &result["locations"][0]["logicalLocations"][0];
        assert!(location["fullyQualifiedName"].as_str().unwrap().starts_with("demo/"));
    }
    let app = results
        .iter()
        .find(|r| {
            r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
                == "demo/Deployment/app-deploy/spec.template.spec.containers[0]"
        })
        .expect("the Deployment's app container");
    assert_eq!(app["ruleId"], "command-bypasses-wrapper");
    assert_eq!(app["properties"]["fix"], "args");
    // Regression: `review` said error and `audit` warning for the same rule.
    assert_eq!(app["level"], "error");
    let review = std::process::Command::new(env!("CARGO_BIN_EXE_entrypoint-guard"))
        .args(["review", "-f", "-", "-o", "sarif"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("ENTRYPOINT_GUARD_CONFIG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("review runs");
    let review: Value = serde_json::from_slice(&review.stdout).expect("review SARIF is JSON");
    assert_eq!(
        review["runs"][0]["tool"]["driver"]["rules"], driver["rules"],
        "review and audit describe every rule (id, name, level) the same way"
    );
    let invocation = &runs[0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], false);
    let note = invocation["toolExecutionNotifications"][0]["message"]["text"]
        .as_str()
        .unwrap();
    assert!(note.contains("replicationcontrollers"), "{note}");
}

#[test]
fn json_findings_say_which_fix_and_exit_zero_only_silences_findings() {
    let dir = tempfile::tempdir().unwrap();
    let server = ApiServer::start(Behaviour::default());
    let kubeconfig = server.kubeconfig(dir.path());
    let images = images_file(dir.path());
    let images = images.to_str().unwrap();
    let output = run_audit(&kubeconfig, &["-o", "json", "--images", images]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let job = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Job")
        .unwrap();
    assert_eq!(job["apiVersion"], "batch/v1");
    let fixes: Vec<&str> = job["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fix"].as_str().unwrap())
        .collect();
    assert_eq!(fixes, ["prepend", "args", "pin"]);
    let output = run_audit(&kubeconfig, &["-o", "json", "--exit-zero", "--images", images]);
    assert_eq!(output.status.code(), Some(0));

    // Without image facts nothing is known: commands are reported, not fixed.
    let output = run_audit(&kubeconfig, &["-o", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let rules: Vec<&str> = report["objects"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.iter().all(|r| *r == "image-config-unknown"), "{rules:?}");
    assert!(
        report["objects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["proposed"] == json!([]))
    );
}
