//! Security checks of the admission port and the resolver: TLS 1.0 and 1.1
//! refused (tried with `openssl s_client`), no plain-HTTP answer, a body
//! over the limit refused before it is read, and a Pod naming an image on a
//! loopback or link-local address causes no connection there.

#[path = "support/serve.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entrypoint_guard::config::Config;
use entrypoint_guard::image::{Entrypoint, Resolver};
use entrypoint_guard::registry::{NoCredentials, RegistryResolver};
use serde_json::json;
use support::{TestServer, decode_like_api_server, fixture, tls_config, with_object};

/// Runs `openssl s_client` forcing `version` (`-tls1`, `-tls1_1`, ...) against `port`.
fn s_client(port: u16, version: &str) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), version])
        // Debian's OpenSSL refuses TLS 1.0/1.1 itself at the default security
        // level; level 0 makes it actually offer them to the server.
        .args(["-cipher", "DEFAULT@SECLEVEL=0"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("`openssl` is required for this test: run scripts/testenv/install.sh (or apt-get install openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_0_and_1_1_are_refused_and_1_2_is_served() {
    let server = TestServer::start(|_| {}).await;
    let port = server.running.addr().port();
    let (ok12, text12) = tokio::task::spawn_blocking(move || s_client(port, "-tls1_2"))
        .await
        .unwrap();
    assert!(ok12 && text12.contains("New, TLSv1.2"), "TLS 1.2 must work:\n{text12}");
    for version in ["-tls1", "-tls1_1"] {
        let (ok, text) = tokio::task::spawn_blocking(move || s_client(port, version))
            .await
            .unwrap();
        assert!(!ok, "{version} was accepted:\n{text}");
        assert!(
            text.contains("Cipher is (NONE)") && text.contains("alert"),
            "{version}: expected the server to refuse the handshake with an alert:\n{text}"
        );
        assert!(
            !text.contains("no protocols available"),
            "{version}: openssl did not even offer it, so nothing was tested:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admission_port_does_not_answer_plain_http() {
    let server = TestServer::start(|_| {}).await;
    let addr = server.running.addr();
    let reply = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            .unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        reply
    })
    .await
    .unwrap();
    assert!(
        !reply.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer: {}",
        String::from_utf8_lossy(&reply)
    );
    // The answer is one TLS record and the end of the connection: an alert
    // (content type 21, TLS 1.2 record version, 2 bytes), fatal (2),
    // decode_error (50), since "POST ..." is no TLS record. An empty reply
    // would be a closed (or never served) port, which proves nothing.
    assert_eq!(
        reply,
        [21, 3, 3, 0, 2, 2, 50],
        "expected a fatal decode_error alert, got {reply:02x?}"
    );
    // And the server keeps serving.
    let review = fixture("pod-create");
    assert_eq!(server.post("/mutate", &review).await.status, 200);
}

/// A rustls connection to the server, verifying it with the test CA.
fn tls_stream(server: &TestServer) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let config = tls_config(&[&server.ca], &[]);
    let name = "localhost".try_into().unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(server.running.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_declared_over_the_limit_is_refused_before_it_is_sent() {
    let server = TestServer::start(|c| c.server.max_body_bytes = 64 * 1024).await;
    let mut stream = tls_stream(&server);
    let reply = tokio::task::spawn_blocking(move || {
        // Declares 1 GiB, sends 1 KiB, and waits: the answer must come now.
        let head = "POST /mutate?timeout=10s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&[b' '; 1024]).unwrap();
        stream.flush().unwrap();
        let mut reply = vec![0u8; 4096];
        match stream.read(&mut reply) {
            Ok(n) => String::from_utf8_lossy(&reply[..n]).into_owned(),
            Err(e) => format!("no answer while the body was outstanding: {e}"),
        }
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    let review = fixture("pod-create");
    assert_eq!(server.post("/mutate", &review).await.status, 200, "still serving");
}

/// Records the connections accepted on a loopback port.
struct Trap {
    port: u16,
    /// The peer address of each connection accepted, in order.
    accepted: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Trap {
    fn start() -> Trap {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let seen = accepted.clone();
        std::thread::spawn(move || {
            while let Ok((_, peer)) = listener.accept() {
                seen.lock().unwrap().push(peer);
            }
        });
        Trap { port, accepted }
    }

    /// Connects once and waits until the trap has accepted that connection;
    /// connections are accepted in order, so every one made before it has
    /// been counted too. Returns how many were accepted in all.
    fn probe(&self) -> usize {
        let probe = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let me = probe.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let accepted = self.accepted.lock().unwrap();
            if accepted.contains(&me) {
                return accepted.len();
            }
            drop(accepted);
            assert!(Instant::now() < deadline, "the trap never accepted the probe");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn guarded(config: &mut Config) {
    // The defaults a cluster has: registry on, nothing listed in allowPrivate.
    config.registry.enabled = true;
    config.registry.pull_secrets = false;
    config.image_facts.clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_naming_a_loopback_or_metadata_image_causes_no_connection() {
    let trap = Trap::start();
    let images = [
        format!("127.0.0.1:{}/app:1.0", trap.port),
        format!("localhost:{}/app:1.0", trap.port),
        format!("[::ffff:127.0.0.1]:{}/app:1.0", trap.port),
        "169.254.169.254/latest/meta-data:1.0".to_string(),
        "169.254.169.254:80/app:1.0".to_string(),
    ];
    let mut config = Config::default();
    guarded(&mut config);
    let resolver = entrypoint_guard::server::resolver(&config, &[]).await.unwrap();
    let server = TestServer::start_with(guarded, move |_| resolver).await;

    let review = fixture("pod-create");
    let mut pod = review["request"]["object"].clone();
    pod["spec"]["initContainers"] = json!([]);
    pod["spec"]["containers"] = json!(
        images
            .iter()
            .enumerate()
            .map(|(i, image)| json!({"name": format!("c{i}"), "image": image, "command": ["/app"]}))
            .collect::<Vec<_>>()
    );
    let review = with_object(&review, "5ec0a000-0000-4000-8000-000000000001", pod);
    let decoded = decode_like_api_server(&review, &server.post("/mutate", &review).await);
    assert!(decoded.allowed && decoded.patch.is_none(), "{:?}", decoded.response);
    assert_eq!(decoded.warnings.len(), images.len(), "{:?}", decoded.warnings);

    // The same lookups through the resolver itself say why: refused, not unreachable.
    let resolver = RegistryResolver::new(&config.registry, Arc::new(NoCredentials)).unwrap();
    let ctx = entrypoint_guard::engine::lookups(&review["request"]["object"], None, Some("default"), &config.policy())
        .context;
    let images: Vec<String> = images.to_vec();
    let facts = resolver
        .resolve(&images, &ctx, Instant::now() + Duration::from_secs(5))
        .await;
    for image in &images {
        let Some(Entrypoint::Unknown { reason }) = facts.get(image).map(|f| &f.entrypoint) else {
            panic!("{image}: {:?}", facts.get(image));
        };
        assert!(
            reason.contains("refused") && (reason.contains("loopback") || reason.contains("link-local")),
            "{image}: {reason}"
        );
    }
    // Every lookup has given its final answer. A connection one of them
    // made would be in the trap's accept queue ahead of this probe, so once
    // the probe is accepted, the count says whether anything else came.
    assert_eq!(trap.probe(), 1, "something connected to the trap");
}
