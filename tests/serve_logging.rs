//! Logging never blocks the request path: the built binary, logging at
//! `trace` (dozens of lines per request) into a stderr pipe nobody reads,
//! keeps answering admissions once the pipe and the log queue are full; the
//! lines it could not queue are dropped and counted on `/metrics`
//! (`entrypoint_guard_log_lines_dropped_total`). With a blocking writer the
//! Tokio workers would wait on the pipe and the requests would hang.

#[path = "support/serve.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use support::{client, decode_like_api_server, fixture, post, serving_event, spawn_serve};

/// Kills the server when the test ends, passed or failed (its stderr is
/// never drained, so it must not outlive the test).
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `entrypoint_guard_log_lines_dropped_total` at `url`.
async fn dropped(client: &reqwest::Client, url: &str) -> u64 {
    let metrics = client.get(url).send().await.unwrap().text().await.unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("entrypoint_guard_log_lines_dropped_total "))
        .unwrap_or_else(|| panic!("no log_lines_dropped_total in\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stderr_drops_log_lines_and_requests_are_still_answered() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    let mut server = Server(spawn_serve(tmp.path(), "trace", "127.0.0.1:0", &[]));
    // Read stderr up to the listening line, then never again: the pipe fills.
    let mut lines = BufReader::new(server.0.stderr.take().unwrap()).lines();
    let event = serving_event(&mut lines);
    let addr = event["addr"].as_str().unwrap();
    let health = event["health"].as_str().unwrap();
    let health = health.trim_start_matches("Some(").trim_end_matches(')');
    let port = addr.rsplit_once(':').unwrap().1;
    let client = client(&[&certs.join("ca.crt")], false);
    let review = fixture("pod-create");
    let url = format!("https://localhost:{port}/mutate?timeout=10s");
    let metrics_url = format!("http://{health}/metrics");

    assert_eq!(dropped(&client, &metrics_url).await, 0);
    let mut answered = 0;
    let mut slowest = Duration::ZERO;
    let lost = loop {
        for _ in 0..50 {
            let started = Instant::now();
            // The client's own timeout (20 s) fails the test if a request hangs.
            let answer = post(&client, &url, &review).await;
            slowest = slowest.max(started.elapsed());
            assert!(decode_like_api_server(&review, &answer).patch.is_some());
            answered += 1;
        }
        let lost = dropped(&client, &metrics_url).await;
        if lost > 0 {
            break lost;
        }
        assert!(answered < 20_000, "no log line dropped after {answered} requests");
    };
    eprintln!("{answered} requests answered with stderr stalled; {lost} log lines dropped; slowest {slowest:?}");
    drop(lines);
}
