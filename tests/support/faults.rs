//! A fault-injecting registry stand-in: a TCP proxy in front of a real
//! registry that, depending on the fault set, passes connections through or
//! stalls, answers 500, answers garbage, answers 401 or drops the connection.
//!
//! The fault is chosen per connection, when its request head has arrived.
//! The resolver reaches plain-HTTP registries through its guarded proxy,
//! which opens a fresh connection for every request, so a fault set now
//! applies to the very next registry request.
//!
//! Control (for scripts driving `examples/fault_registry.rs`): a request for
//! `/__fault/<name>` sets the fault and answers `200 <name>`; `/__fault/stats`
//! answers how many connections each fault has seen.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the stand-in does with the next registry request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// Forward to the real registry.
    Pass = 0,
    /// Read the request and never answer (the connection stays open).
    Stall = 1,
    /// `500 Internal Server Error` with a distribution error body.
    ServerError = 2,
    /// `200 OK` with a manifest content type, a matching digest header and
    /// a body that is not JSON.
    Garbage = 3,
    /// `401 Unauthorized` with a Basic challenge.
    Unauthorized = 4,
    /// Read the request head, then close the connection without a byte.
    Drop = 5,
}

impl Fault {
    /// Every fault, in the order the reliability runs inject them.
    pub const ALL: [Fault; 5] = [
        Fault::Stall,
        Fault::ServerError,
        Fault::Garbage,
        Fault::Unauthorized,
        Fault::Drop,
    ];

    /// The name used in `/__fault/<name>` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::Stall => "stall",
            Fault::ServerError => "500",
            Fault::Garbage => "garbage",
            Fault::Unauthorized => "401",
            Fault::Drop => "drop",
        }
    }

    /// The fault called `name`.
    pub fn parse(name: &str) -> Option<Fault> {
        [Fault::Pass].into_iter().chain(Fault::ALL).find(|f| f.name() == name)
    }

    fn from_u8(v: u8) -> Fault {
        [Fault::Pass]
            .into_iter()
            .chain(Fault::ALL)
            .find(|f| *f as u8 == v)
            .unwrap_or(Fault::Pass)
    }
}

struct Shared {
    upstream: SocketAddr,
    fault: AtomicU8,
    /// Connections seen, by `Fault as usize`.
    seen: [AtomicU64; 6],
}

/// A running stand-in; stops accepting when dropped.
pub struct FaultRegistry {
    /// Where it listens (`127.0.0.1:PORT`).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultRegistry {
    /// Starts on `listen` (port 0: ephemeral) in front of `upstream`, passing through.
    pub async fn start(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<FaultRegistry> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            fault: AtomicU8::new(Fault::Pass as u8),
            seen: Default::default(),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultRegistry { addr, shared, task })
    }

    /// Sets what the next connections get.
    pub fn set(&self, fault: Fault) {
        self.shared.fault.store(fault as u8, Ordering::SeqCst);
    }

    /// How many registry connections `fault` has handled so far.
    pub fn seen(&self, fault: Fault) -> u64 {
        self.shared.seen[fault as usize].load(Ordering::SeqCst)
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = handle(stream, &shared).await;
        });
    }
}

/// Reads until the end of the request head (or 64 KiB, or EOF).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(head)
}

async fn answer(stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

async fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let head = read_head(&mut stream).await?;
    let line = String::from_utf8_lossy(head.split(|b| *b == b'\r').next().unwrap_or_default()).into_owned();
    let path = line.split(' ').nth(1).unwrap_or_default();
    if let Some(command) = path.strip_prefix("/__fault/") {
        return control(&mut stream, shared, command).await;
    }
    let fault = Fault::from_u8(shared.fault.load(Ordering::SeqCst));
    shared.seen[fault as usize].fetch_add(1, Ordering::SeqCst);
    match fault {
        Fault::Pass => {
            let mut upstream = TcpStream::connect(shared.upstream).await?;
            upstream.write_all(&head).await?;
            tokio::io::copy_bidirectional(&mut stream, &mut upstream).await?;
            Ok(())
        }
        Fault::Stall => {
            // Hold the connection until the client gives up (or ten minutes).
            let mut sink = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(600), async {
                while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
            })
            .await;
            Ok(())
        }
        Fault::ServerError => {
            let body = br#"{"errors":[{"code":"UNKNOWN","message":"injected fault: internal error"}]}"#;
            answer(
                &mut stream,
                "500 Internal Server Error",
                "Content-Type: application/json\r\n",
                body,
            )
            .await
        }
        Fault::Garbage => {
            let body: Vec<u8> = (0..512u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
            let digest = sha256_hex(&body);
            let headers = format!(
                "Content-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: sha256:{digest}\r\n"
            );
            answer(&mut stream, "200 OK", &headers, &body).await
        }
        Fault::Unauthorized => {
            let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
            answer(
                &mut stream,
                "401 Unauthorized",
                "Content-Type: application/json\r\nWww-Authenticate: Basic realm=\"injected-fault\"\r\n",
                body,
            )
            .await
        }
        Fault::Drop => {
            // No answer at all: the client sees the connection closed mid-request.
            drop(stream);
            Ok(())
        }
    }
}

async fn control(stream: &mut TcpStream, shared: &Shared, command: &str) -> std::io::Result<()> {
    if command == "stats" {
        let all = [Fault::Pass].into_iter().chain(Fault::ALL);
        let stats: Vec<String> = all
            .map(|f| format!("{} {}", f.name(), shared.seen[f as usize].load(Ordering::SeqCst)))
            .collect();
        return answer(stream, "200 OK", "", format!("{}\n", stats.join("\n")).as_bytes()).await;
    }
    match Fault::parse(command) {
        Some(fault) => {
            shared.fault.store(fault as u8, Ordering::SeqCst);
            answer(stream, "200 OK", "", format!("{}\n", fault.name()).as_bytes()).await
        }
        None => answer(stream, "404 Not Found", "", b"unknown fault\n").await,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
