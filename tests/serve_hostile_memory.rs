//! The attack against the built binary, as a separate process whose
//! memory can be read: 40 TLS connections each declare a 4 MiB body, send all
//! of it but one byte and stall. The server's peak RSS (VmHWM) stays under
//! half the chart's memory limit, an ordinary AdmissionReview sent while they
//! are held is answered, and the server closes every one of them.

#[path = "support/serve.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

const HOSTILE: usize = 40;
const DECLARED: usize = 4 * 1024 * 1024;

/// The chart's `resources.limits.memory`, in KiB (values.yaml says `NNNMi`).
fn chart_memory_limit_kib() -> u64 {
    let values =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/entrypoint-guard/values.yaml"))
            .unwrap();
    let limits = values.find("  limits:\n").expect("resources.limits in values.yaml");
    let line = values[limits..]
        .lines()
        .find(|l| l.trim_start().starts_with("memory:"))
        .unwrap();
    let mi: u64 = line
        .trim()
        .trim_start_matches("memory:")
        .trim()
        .strip_suffix("Mi")
        .expect("a limit in Mi")
        .parse()
        .unwrap();
    mi * 1024
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One hostile client: declares 4 MiB, sends all but a byte (or until the
/// server refuses), then waits for the server to close; returns the status line.
async fn stall(connector: TlsConnector, port: u16, done: mpsc::UnboundedSender<String>) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let head = format!(
        "POST /mutate?timeout=30s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {DECLARED}\r\n\r\n"
    );
    let _ = tls.write_all(head.as_bytes()).await;
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < DECLARED - 1 {
        let n = chunk.len().min(DECLARED - 1 - sent);
        if tls.write_all(&chunk[..n]).await.is_err() {
            break; // answered and closed already (503)
        }
        sent += n;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = tls.read(&mut buf).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let status = String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap_or("closed unanswered")
        .to_string();
    let _ = done.send(status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_stalled_4_mib_bodies_keep_rss_under_half_the_chart_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.yaml");
    // Defaults but a body deadline long enough that the review below is
    // surely answered while the stalled bodies are held.
    std::fs::write(
        &config,
        "server:\n  bodyReadTimeout: 20s\nregistry:\n  enabled: false\n",
    )
    .unwrap();
    let certs = tmp.path().join("certs");
    let mut child = spawn_serve(tmp.path(), "info", "off", &["--config".as_ref(), config.as_os_str()]);
    let pid = child.id();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let served = Served(child);
    let addr = serving_event(&mut lines)["addr"].as_str().unwrap().to_string();
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let port: u16 = addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let idle = status_kib(pid, "VmRSS:");

    let tls = tls_config(&[&certs.join("ca.crt")], &[b"http/1.1"]);
    let connector = TlsConnector::from(Arc::new(tls));
    let (done, mut finished) = mpsc::unbounded_channel();
    for _ in 0..HOSTILE {
        tokio::spawn(stall(connector.clone(), port, done.clone()));
    }
    drop(done);
    let within = |what: &'static str| move |_| -> Option<String> { panic!("{what}: nothing within 60 s") };
    // The first to finish was turned away: the budget is spent by the held ones.
    let first = tokio::time::timeout(Duration::from_secs(60), finished.recv())
        .await
        .unwrap_or_else(within("a first hostile client"))
        .unwrap();
    assert!(first.starts_with("HTTP/1.1 503"), "{first}");
    let mut statuses = vec![first];

    // While the others are held, an ordinary review is answered.
    let client = support::client(&[&certs.join("ca.crt")], true);
    let review = fixture("pod-create");
    let answer = post(
        &client,
        &format!("https://localhost:{port}/mutate?timeout=10s"),
        &review,
    )
    .await;
    decode_like_api_server(&review, &answer);
    let during = status_kib(pid, "VmRSS:");

    while let Some(status) = tokio::time::timeout(Duration::from_secs(60), finished.recv())
        .await
        .unwrap_or_else(within("the stalled clients"))
    {
        statuses.push(status);
    }
    let peak = status_kib(pid, "VmHWM:");
    let limit = chart_memory_limit_kib();
    eprintln!(
        "idle RSS {idle} KiB; {during} KiB while held; peak {peak} KiB with {HOSTILE} stalled 4 MiB bodies; chart limit {limit} KiB"
    );
    let held = statuses.iter().filter(|s| s.starts_with("HTTP/1.1 408")).count();
    let shed = statuses.iter().filter(|s| s.starts_with("HTTP/1.1 503")).count();
    assert_eq!(
        held + shed,
        HOSTILE,
        "each is answered 408 (held, then timed out) or 503: {statuses:?}"
    );
    assert!(held > 0, "some bodies fit the budget and were held: {statuses:?}");
    assert!(
        peak < limit / 2,
        "peak RSS {peak} KiB is not under half the chart's limit ({limit} KiB)"
    );
    drop(served);
}
