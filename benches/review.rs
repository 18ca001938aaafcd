//! Review throughput over a generated stream of 10,000 workload documents,
//! next to a bare serde-saphyr parse of the same stream.
//!
//! `cargo bench --bench review` prints the numbers; nothing is asserted.

use std::hint::black_box;
use std::time::{Duration, Instant};

use entrypoint_guard::config::{ImageFactsEntry, facts_from};
use entrypoint_guard::engine::Policy;
use entrypoint_guard::image::OfflineResolver;
use entrypoint_guard::review::report;
use entrypoint_guard::review::{Review, Reviewer, Source};
use serde_json::Value;

const DOCUMENTS: usize = 10_000;
const ROUNDS: usize = 5;

/// Images with known facts: a bare wrapper, a wrapper naming its program,
/// an unwrapped image; plus one image nothing is known about.
const IMAGES: [(&str, Option<&[&str]>); 4] = [
    ("registry.example.com/tools/ship:2.0", Some(&["/chalk", "exec", "--"])),
    (
        "registry.example.com/shop/web:1.4.2",
        Some(&["/chalk", "exec", "--exec-command-name", "gunicorn", "--", "app:wsgi"]),
    ),
    ("nginx:1.27", Some(&["/docker-entrypoint.sh"])),
    ("registry.example.com/unknown/thing:0.1", None),
];

fn pod_spec(i: usize, indent: &str) -> String {
    let (image, _) = IMAGES[i % IMAGES.len()];
    // Every other container sets `command`; the rest only args.
    let command = if i.is_multiple_of(2) {
        format!(
            "{indent}    command: [\"/usr/bin/run-{i}\", --port, \"80{:02}\"]\n",
            i % 100
        )
    } else {
        format!("{indent}    args: [--verbose]\n")
    };
    format!(
        "{indent}restartPolicy: {restart}\n{indent}containers:\n{indent}  - name: main\n{indent}    image: {image}\n{command}\
         {indent}    env:\n{indent}      - name: INSTANCE\n{indent}        value: \"{i}\"\n\
         {indent}    resources:\n{indent}      requests: {{cpu: 100m, memory: 64Mi}}\n\
         {indent}  - name: sidecar\n{indent}    image: nginx:1.27\n{indent}    ports: [{{containerPort: 8080}}]\n",
        restart = if i % 6 == 4 || i % 6 == 5 {
            "OnFailure"
        } else {
            "Always"
        },
    )
}

/// One workload document of a kind picked by `i`.
fn document(i: usize) -> String {
    let meta = format!(
        "metadata:\n  name: app-{i}\n  namespace: team-{}\n  labels: {{app: app-{i}}}\n",
        i % 17
    );
    match i % 6 {
        0 => format!(
            "apiVersion: apps/v1\nkind: Deployment\n{meta}spec:\n  replicas: 2\n  selector: {{matchLabels: {{app: app-{i}}}}}\n  template:\n    metadata: {{labels: {{app: app-{i}}}}}\n    spec:\n{}",
            pod_spec(i, "      ")
        ),
        1 => format!(
            "apiVersion: apps/v1\nkind: StatefulSet\n{meta}spec:\n  serviceName: app-{i}\n  selector: {{matchLabels: {{app: app-{i}}}}}\n  template:\n    metadata: {{labels: {{app: app-{i}}}}}\n    spec:\n{}",
            pod_spec(i, "      ")
        ),
        2 => format!(
            "apiVersion: apps/v1\nkind: DaemonSet\n{meta}spec:\n  selector: {{matchLabels: {{app: app-{i}}}}}\n  template:\n    metadata: {{labels: {{app: app-{i}}}}}\n    spec:\n{}",
            pod_spec(i, "      ")
        ),
        3 => format!("apiVersion: v1\nkind: Pod\n{meta}spec:\n{}", pod_spec(i, "  ")),
        4 => format!(
            "apiVersion: batch/v1\nkind: Job\n{meta}spec:\n  template:\n    spec:\n{}",
            pod_spec(i, "      ")
        ),
        _ => format!(
            "apiVersion: batch/v1\nkind: CronJob\n{meta}spec:\n  schedule: \"*/5 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n{}",
            pod_spec(i, "          ")
        ),
    }
}

fn stream() -> String {
    (0..DOCUMENTS)
        .map(|i| format!("---\n# Source: bench/templates/app-{i}.yaml\n{}", document(i)))
        .collect()
}

fn reviewer() -> Reviewer {
    let entries = IMAGES
        .iter()
        .filter_map(|(image, entrypoint)| {
            let entry = ImageFactsEntry {
                entrypoint: Some(entrypoint.as_ref()?.iter().map(|s| s.to_string()).collect()),
                platforms: None,
                digest: Some(format!("sha256:{}", "ab".repeat(32))),
            };
            Some((image.to_string(), entry))
        })
        .collect();
    Reviewer::new(Policy::default(), OfflineResolver::new(facts_from(&entries)))
}

/// The fastest of `ROUNDS` runs (after one warm-up), and the last result.
fn time<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut result = f();
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        result = black_box(f());
        best = best.min(start.elapsed());
    }
    (best, result)
}

fn line(what: &str, took: Duration, bytes: usize, baseline: Duration) {
    let secs = took.as_secs_f64();
    println!(
        "{what:<38} {:>9.1} ms  {:>9.0} docs/s  {:>7.1} MiB/s  {:>5.2}x parse time",
        secs * 1e3,
        DOCUMENTS as f64 / secs,
        bytes as f64 / secs / (1024.0 * 1024.0),
        secs / baseline.as_secs_f64()
    );
}

fn main() {
    let text = stream();
    let bytes = text.len();
    let source = Source {
        name: "bench.yaml".into(),
        text: text.clone(),
        json: false,
    };
    let reviewer = reviewer();
    println!(
        "review benchmark: {DOCUMENTS} workload documents, {:.1} MiB, best of {ROUNDS} runs",
        bytes as f64 / (1024.0 * 1024.0)
    );

    // serde-saphyr's default budget stops a stream at 1,024 documents (review
    // parses document by document, so it is unaffected); lift it for the baseline.
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: usize::MAX,
            max_events: usize::MAX,
            max_nodes: usize::MAX,
            max_total_scalar_bytes: usize::MAX,
        },
    };
    let (parse, docs) = time(|| {
        serde_saphyr::from_multiple_with_options::<Value>(black_box(&text), options.clone()).expect("the stream parses")
    });
    assert_eq!(docs.len(), DOCUMENTS, "the generated stream has every document");

    let (reviewed, review) = time(|| {
        let mut problems = Vec::new();
        let file = reviewer.review(black_box(&source), &mut problems);
        Review {
            files: vec![file],
            chart_findings: Vec::new(),
            problems,
        }
    });
    let counts = review.counts();
    assert_eq!(counts.documents, DOCUMENTS);
    assert_eq!(counts.problems, 0);
    let (yaml, _) = time(|| report::yaml::render(black_box(&review)));
    let (json, _) = time(|| report::json::render(black_box(&review)));
    let (text_report, _) = time(|| report::text::render(black_box(&review)));
    let (sarif, _) = time(|| report::sarif::render(black_box(&review)));
    println!("({} findings, {} documents changed)", counts.findings, counts.changed);

    line("serde-saphyr parse (from_multiple)", parse, bytes, parse);
    line("review (split, parse, inspect, patch)", reviewed, bytes, parse);
    line("review + --output yaml", reviewed + yaml, bytes, parse);
    line("review + --output json", reviewed + json, bytes, parse);
    line("review + --output text (diffs)", reviewed + text_report, bytes, parse);
    line("review + --output sarif", reviewed + sarif, bytes, parse);
}
