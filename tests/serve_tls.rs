//! The serving certificate: rotation as a Kubernetes Secret volume does it
//! (an atomic `..data` symlink swap) under continuous requests, a bad new
//! pair kept out, and `serve --self-signed` end to end with SIGTERM.

#[path = "support/serve.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use entrypoint_guard::image::OfflineResolver;
use entrypoint_guard::server::{Server, selfsigned};
use support::*;

/// A directory laid out like a mounted Secret: `tls.crt -> ..data/tls.crt`,
/// `..data -> ..<version>`, where the kubelet swaps `..data` atomically.
struct SecretVolume {
    dir: PathBuf,
    version: usize,
}

impl SecretVolume {
    fn new(dir: &Path, cert: &str, key: &str) -> SecretVolume {
        std::fs::create_dir_all(dir).unwrap();
        let mut volume = SecretVolume {
            dir: dir.to_path_buf(),
            version: 0,
        };
        volume.update(cert, key);
        std::os::unix::fs::symlink("..data/tls.crt", dir.join("tls.crt")).unwrap();
        std::os::unix::fs::symlink("..data/tls.key", dir.join("tls.key")).unwrap();
        volume
    }

    /// Writes a new version and swaps `..data` to it with one rename.
    fn update(&mut self, cert: &str, key: &str) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        let data = self.dir.join(&version);
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("tls.crt"), cert).unwrap();
        std::fs::write(data.join("tls.key"), key).unwrap();
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("tls.key")
    }
}

fn write_ca(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

async fn succeeds(client: &reqwest::Client, url: &str) -> bool {
    let review = fixture("pod-create");
    let body = serde_json::to_vec(&review).unwrap();
    match client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_under_load_fails_no_request() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca1, cert1, key1) = selfsigned::generate("rotation-one").unwrap();
    let (ca2, cert2, key2) = selfsigned::generate("rotation-two").unwrap();
    let (_, cert3, _) = selfsigned::generate("rotation-three").unwrap();
    let ca1 = write_ca(tmp.path(), "ca1.crt", &ca1);
    let ca2 = write_ca(tmp.path(), "ca2.crt", &ca2);
    let mut volume = SecretVolume::new(&tmp.path().join("secret"), &cert1, &key1);

    let files = selfsigned::SelfSigned {
        ca: ca1.clone(),
        cert: volume.cert(),
        key: volume.key(),
    };
    let config = test_config(&files);
    let resolver = Arc::new(OfflineResolver::new(config.facts()));
    let running = Server::new(config, resolver).start().await.unwrap();
    let url = format!("https://localhost:{}/mutate?timeout=10s", running.addr().port());

    // A client trusting both CAs, with a fresh TLS handshake per request, hammers the server.
    let both = client(&[&ca1, &ca2], true);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, ok, failed, url) = (stop.clone(), ok.clone(), failed.clone(), url.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if succeeds(&both, &url).await {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    let only_ca1 = client(&[&ca1], true);
    let only_ca2 = client(&[&ca2], true);
    assert!(succeeds(&only_ca1, &url).await);
    assert!(!succeeds(&only_ca2, &url).await, "the second CA must not verify yet");
    // The load runs before the rotation as well as across it.
    until("the load has started", || ok.load(Ordering::Relaxed) >= 5).await;

    volume.update(&cert2, &key2);
    let started = Instant::now();
    while !succeeds(&only_ca2, &url).await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "new certificate never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!succeeds(&only_ca1, &url).await, "the old CA must no longer verify");

    // A pair that does not match (rotation-three's cert with rotation-two's key) is refused.
    volume.update(&cert3, &key2);
    until("the mismatched pair was tried", || {
        running
            .metrics()
            .encode()
            .contains("entrypoint_guard_tls_reloads_total{result=\"error\"} 1\n")
    })
    .await;
    assert!(succeeds(&only_ca2, &url).await, "the good pair stays in service");

    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 10, "only {ok} requests during the rotation");
    assert_eq!(failed, 0, "{failed} of {} requests failed during rotation", ok + failed);

    let metrics = running.metrics().encode();
    assert!(
        metrics.contains("entrypoint_guard_tls_reloads_total{result=\"ok\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("entrypoint_guard_tls_reloads_total{result=\"error\"} 1\n"),
        "{metrics}"
    );
    running.shutdown();
    running.wait().await.unwrap();
}

/// Waits until `done` holds, checking every few milliseconds; fails after a
/// generous deadline (the machine may be loaded; the condition is an event).
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_bad_certificate_at_start_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let files = selfsigned::write(tmp.path()).unwrap();
    std::fs::write(&files.key, "not a key\n").unwrap();
    let config = test_config(&files);
    let resolver = Arc::new(OfflineResolver::new(config.facts()));
    let err = Server::new(config, resolver)
        .start()
        .await
        .err()
        .expect("must not start");
    let text = err.to_string();
    assert!(
        text.starts_with("TLS: ") && text.contains("tls.key: no usable private key"),
        "{text}"
    );
}

/// The binary: `serve --self-signed DIR` serves with the CA it wrote, and
/// SIGTERM stops it cleanly.
#[tokio::test]
async fn serve_self_signed_binary_answers_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    let mut child = spawn_serve(tmp.path(), "info,entrypoint_guard=debug", "off", &[]);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = serving_event(&mut lines)["addr"].as_str().unwrap().to_string();
    let port = addr.rsplit_once(':').unwrap().1;
    let client = client(&[&certs.join("ca.crt")], false);
    let review = fixture("pod-create");
    let answer = post(
        &client,
        &format!("https://localhost:{port}/mutate?timeout=10s"),
        &review,
    )
    .await;
    let decoded = decode_like_api_server(&review, &answer);
    assert!(decoded.patch.is_some(), "facts from --images are used");
    let also_ip = post(&client, &format!("https://127.0.0.1:{port}/audit"), &review).await;
    assert_eq!(also_ip.status, 200, "the certificate covers 127.0.0.1");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit after SIGTERM: {exit}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
    // Each answer's log line names the protocol the client spoke (this client: HTTP/1.1).
    let versions: Vec<String> = rest
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["message"] == "admission answered")
        .map(|e| e["http_version"].as_str().unwrap_or("missing").to_string())
        .collect();
    assert_eq!(versions, ["HTTP/1.1", "HTTP/1.1"], "{rest:?}");
}
