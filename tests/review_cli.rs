//! `review` on the command line: inputs (files, directories, stdin), exit
//! codes, and errors that name file, line and column without hiding the
//! findings elsewhere.

#[path = "support/review.rs"]
mod support;

use serde_json::Value;
use support::{review_examples, run, run_in};

const CLEAN_SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - port: 80\n";

const BARE_POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: shipper
spec:
  containers:
    - name: ship
      image: registry.example.com/tools/log-shipper:2.0
      command: [/usr/bin/ship]
";

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("--output json is JSON: {e}\n{stdout}"))
}

fn rules(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| format!("{}:{}", f["file"].as_str().unwrap(), f["rule"].as_str().unwrap()))
        .collect()
}

#[test]
fn exit_codes_say_clean_findings_or_error() {
    let clean = run(&["review", "-f", "-"], Some(CLEAN_SERVICE));
    assert_eq!(clean.code, 0, "{clean:?}");
    assert!(
        clean.stdout.contains("0 findings in 1 document of 1 file"),
        "{}",
        clean.stdout
    );

    let findings = review_examples(&[]);
    assert_eq!(findings.code, 1, "{}", findings.stderr);
    assert!(findings.stderr.is_empty(), "{}", findings.stderr);

    let zero = review_examples(&["--exit-zero"]);
    assert_eq!(zero.code, 0);
    assert_eq!(zero.stdout, findings.stdout, "--exit-zero changes only the exit code");

    let broken = run(&["review", "-f", "-", "--exit-zero"], Some("kind: Pod\nmetadata: [\n"));
    assert_eq!(broken.code, 2, "parse errors exit 2 even with --exit-zero: {broken:?}");

    let missing = run(&["review", "-f", "no/such/file.yaml"], None);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("no/such/file.yaml"), "{}", missing.stderr);

    let usage = run(&["review"], None);
    assert_eq!(usage.code, 2, "no input is a usage error: {usage:?}");
    assert!(usage.stderr.contains("--filename"), "{}", usage.stderr);
    let usage = run(&["review", "-f", "-", "--output", "html"], Some(CLEAN_SERVICE));
    assert_eq!(usage.code, 2);
    let usage = run(&["review", "-f", "-", "--mode", "loud"], Some(CLEAN_SERVICE));
    assert_eq!(usage.code, 2);
    assert!(usage.stderr.contains("not one of off, audit, fix"), "{}", usage.stderr);
}

#[test]
fn stdin_streams_are_split_into_documents() {
    let images = "examples/images.yaml";
    let stream = format!("---\n{CLEAN_SERVICE}---\n# a comment only\n---\n{BARE_POD}");
    let out = run(&["review", "-f", "-", "--images", images, "-o", "json"], Some(&stream));
    assert_eq!(out.code, 1, "{out:?}");
    let report = json(&out.stdout);
    assert_eq!(
        report["summary"]["documents"], 2,
        "the comment-only document is not one"
    );
    let finding = &report["findings"][0];
    assert_eq!(finding["file"], "<stdin>");
    assert_eq!(finding["document"], 2);
    // The container `- name: ship` is on line 18 of the stream.
    assert_eq!(finding["line"], 18, "{finding}");
    assert_eq!(finding["column"], 7);
    assert_eq!(finding["kind"], "Pod");
    assert_eq!(finding["name"], "shipper");
    assert_eq!(finding["rule"], "command-bypasses-wrapper");
    assert_eq!(finding["fix"], "args");
    assert_eq!(finding["applied"], true);
    assert_eq!(finding["container"]["pointer"], "/spec/containers/0");
}

#[test]
fn directories_are_walked_for_manifests_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("apps/deep")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join("apps/deep/pod.yml"), BARE_POD).unwrap();
    std::fs::write(root.join("apps/service.yaml"), CLEAN_SERVICE).unwrap();
    std::fs::write(root.join("apps/README.md"), "kind: Pod\n").unwrap();
    std::fs::write(root.join(".git/pod.yaml"), BARE_POD).unwrap();
    let json_pod = serde_json::to_string_pretty(&serde_saphyr::from_str::<Value>(BARE_POD).unwrap()).unwrap();
    std::fs::write(root.join("pod.json"), json_pod).unwrap();
    let images = support::root().join("examples/images.yaml");
    let out = run_in(
        root,
        &["review", "-f", ".", "--images", images.to_str().unwrap(), "-o", "json"],
        None,
    );
    assert_eq!(out.code, 1, "{out:?}");
    let report = json(&out.stdout);
    assert_eq!(
        report["summary"]["files"], 3,
        "pod.yml, service.yaml and pod.json: {report}"
    );
    assert_eq!(
        rules(&report),
        [
            "./apps/deep/pod.yml:command-bypasses-wrapper",
            "./pod.json:command-bypasses-wrapper"
        ]
    );
    // In the JSON file the container starts on the line of its `{`.
    let json_line = report["findings"][1]["line"].as_u64().unwrap();
    let text = std::fs::read_to_string(root.join("pod.json")).unwrap();
    assert!(
        text.lines()
            .nth(json_line as usize - 1)
            .unwrap()
            .trim_start()
            .starts_with('{')
    );
}

#[test]
fn a_broken_file_among_good_ones_hides_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broken = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n  labels: {a: b\nspec: {}\n";
    std::fs::write(dir.path().join("a-good.yaml"), BARE_POD).unwrap();
    std::fs::write(dir.path().join("b-broken.yaml"), broken).unwrap();
    std::fs::write(
        dir.path().join("c-good.yaml"),
        BARE_POD.replace("name: shipper", "name: shipper-2"),
    )
    .unwrap();
    let images = support::root().join("examples/images.yaml");
    let out = run_in(
        dir.path(),
        &["review", "-f", ".", "--images", images.to_str().unwrap(), "-o", "json"],
        None,
    );
    assert_eq!(out.code, 2, "{out:?}");
    let report = json(&out.stdout);
    assert_eq!(
        rules(&report),
        [
            "./a-good.yaml:command-bypasses-wrapper",
            "./c-good.yaml:command-bypasses-wrapper"
        ]
    );
    let problem = &report["problems"][0];
    assert_eq!(problem["file"], "./b-broken.yaml");
    assert_eq!(problem["line"], 6, "{problem}");
    // stderr names file:line:column, the way compilers do.
    assert!(
        out.stderr.starts_with("entrypoint-guard: ./b-broken.yaml:6:"),
        "{}",
        out.stderr
    );
}

#[test]
fn one_bad_document_does_not_hide_the_others() {
    let stream = format!("{BARE_POD}---\nkind: Pod\nspec:\n  containers: [\n---\n{BARE_POD}---\n- a list\n");
    let out = run(
        &["review", "-f", "-", "--images", "examples/images.yaml", "-o", "json"],
        Some(&stream),
    );
    assert_eq!(out.code, 2, "{out:?}");
    let report = json(&out.stdout);
    let documents: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["document"].as_u64().unwrap())
        .collect();
    assert_eq!(documents, [1, 3]);
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(problems[0]["document"], 2);
    assert!(
        (11..=13).contains(&problems[0]["line"].as_u64().unwrap()),
        "{problems:?}"
    );
    assert_eq!(problems[1]["document"], 4);
    assert!(
        problems[1]["message"]
            .as_str()
            .unwrap()
            .contains("not a Kubernetes object")
    );
    // The broken document is passed through, not dropped.
    let yaml = run(
        &["review", "-f", "-", "--images", "examples/images.yaml", "-o", "yaml"],
        Some(&stream),
    );
    assert!(
        yaml.stdout.contains("---\nkind: Pod\nspec:\n  containers: [\n---\n"),
        "{}",
        yaml.stdout
    );
}

#[test]
fn image_facts_come_from_config_and_images_files() {
    let dir = tempfile::tempdir().unwrap();
    // The config says the image is not wrapped; the --images file, read
    // after it, says it is (bare wrapper), so the file wins.
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "imageFacts:\n  registry.example.com/tools/log-shipper:2.0:\n    entrypoint: [/usr/bin/ship]\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let alone = run(&["--config", config, "review", "-f", "-"], Some(BARE_POD));
    assert_eq!(alone.code, 0, "not wrapped, per the config: {alone:?}");
    let both = run(
        &[
            "--config",
            config,
            "review",
            "-f",
            "-",
            "--images",
            "examples/images.yaml",
        ],
        Some(BARE_POD),
    );
    assert_eq!(both.code, 1, "{both:?}");
    assert!(both.stdout.contains("command-bypasses-wrapper"), "{}", both.stdout);

    let bad = dir.path().join("images.yaml");
    std::fs::write(&bad, "app:1:\n  entrypoint: [a]\n  bogus: 1\n").unwrap();
    let out = run(
        &["review", "-f", "-", "--images", bad.to_str().unwrap()],
        Some(BARE_POD),
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("images.yaml:3:") && out.stderr.contains("bogus"),
        "{}",
        out.stderr
    );
}

#[test]
fn without_facts_the_image_is_reported_not_changed() {
    let out = run(&["review", "-f", "-", "-o", "yaml"], Some(BARE_POD));
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, format!("---\n{BARE_POD}"), "nothing changes, byte for byte");
    let text = run(&["review", "-f", "-"], Some(BARE_POD));
    assert!(text.stdout.contains("image-config-unknown"), "{}", text.stdout);
}

#[test]
fn mode_and_strategy_overrides() {
    let audit = review_examples(&["--mode", "audit", "-o", "yaml"]);
    assert_eq!(audit.code, 1, "audit still reports: {audit:?}");
    assert!(
        !audit.stdout.contains("/chalk"),
        "audit changes nothing:\n{}",
        audit.stdout
    );
    let deployment = std::fs::read_to_string(support::root().join("examples/manifests/deployment.yaml")).unwrap();
    assert!(
        audit.stdout.contains(&deployment),
        "untouched documents are copied verbatim"
    );
    let text = review_examples(&["--mode", "audit"]);
    assert!(text.stdout.contains("(proposed, not applied)"), "{}", text.stdout);
    assert!(!text.stdout.contains("+++"), "no diff when nothing changes");

    let off = review_examples(&["--mode", "off", "--exit-zero", "-o", "json"]);
    let report = json(&off.stdout);
    assert!(
        rules(&report).iter().all(|r| r.ends_with("helm-command-override")),
        "off leaves objects alone; chart sources are still reported: {report}"
    );

    // The web image names its own program after `--`: the args fix would
    // run the wrong thing, so preferring it is reported and not applied.
    let args = review_examples(&["--strategy", "args", "-o", "json"]);
    let report = json(&args.stdout);
    let web: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["container"]["name"] == "web")
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(web.contains(&"preferred-fix-wrong"), "{web:?}");
}

#[test]
fn long_streams_are_not_cut_at_the_parser_document_budget() {
    // serde-saphyr stops a single stream at 1,024 documents by default;
    // review parses document by document, so `helm template` of a large
    // release is reviewed whole.
    let stream: String = (0..1_500)
        .map(|i| {
            format!(
                "---\n{}",
                BARE_POD.replace("name: shipper", &format!("name: shipper-{i}"))
            )
        })
        .collect();
    let out = run(
        &["review", "-f", "-", "--images", "examples/images.yaml", "-o", "json"],
        Some(&stream),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = json(&out.stdout);
    assert_eq!(report["summary"]["documents"], 1_500);
    assert_eq!(report["summary"]["changed"], 1_500);
    assert_eq!(report["findings"][1_499]["name"], "shipper-1499");
}

#[test]
fn scope_pods_fixes_pods_and_reports_workloads() {
    let deployment = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shipper
spec:
  selector: {matchLabels: {app: shipper}}
  template:
    metadata: {labels: {app: shipper}}
    spec:
      containers:
        - name: ship
          image: registry.example.com/tools/log-shipper:2.0
          command: [/usr/bin/ship]
";
    let stdin = format!("{BARE_POD}---\n{deployment}");
    let images = ["--images", "examples/images.yaml"];
    let run_with = |extra: &[&str]| {
        let mut args = vec!["review", "-f", "-"];
        args.extend_from_slice(&images);
        args.extend_from_slice(extra);
        run(&args, Some(&stdin))
    };
    let pods = run_with(&["--scope", "pods", "-o", "json"]);
    assert_eq!(pods.code, 1, "{pods:?}");
    let report = json(&pods.stdout);
    let findings: Vec<(String, String, bool)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["rule"].as_str().unwrap().to_string(),
                f["applied"].as_bool().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("Pod", "command-bypasses-wrapper", true),
        ("Deployment", "out-of-scope", false),
        ("Deployment", "command-bypasses-wrapper", false),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(k, r, a)| (k.to_string(), r.to_string(), *a))
        .collect();
    assert_eq!(findings, expected);
    let yaml = run_with(&["--scope", "pods", "-o", "yaml"]).stdout;
    assert!(yaml.contains(deployment), "the Deployment is copied unchanged:\n{yaml}");
    assert!(!yaml.contains(BARE_POD), "the Pod is fixed:\n{yaml}");

    // The default (and the configured) scope fixes both.
    let workloads = run_with(&["--scope", "workloads", "-o", "yaml"]).stdout;
    assert!(!workloads.contains(deployment), "{workloads}");
    let bad = run_with(&["--scope", "pod"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("`pod` is not one of workloads, pods"),
        "{}",
        bad.stderr
    );
}
