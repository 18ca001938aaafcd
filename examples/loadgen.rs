//! A load generator for the webhook that checks every answer, for
//! `scripts/load.sh` (not run by CI; prints numbers, asserts nothing but the
//! answers).
//!
//! N requests over C keep-alive HTTPS/1.1 connections (hyper + rustls with
//! ring, the stack the webhook serves with). Every request is the review
//! fixture with a fresh `request.uid` (the fixture's uid overwritten in
//! place by one of the same length), and every answer is checked: HTTP 200,
//! its own uid echoed, and — unless `--check allowed` — `patchType:
//! JSONPatch` with a patch. The checks are byte searches, so the checker is
//! not the bottleneck.
//!
//! Without `--rate` each connection sends its next request as soon as the
//! answer arrives (closed loop: the peak rate). With `--rate R` the
//! requests are scheduled at R per second in total, spread evenly over the
//! connections, and each latency is counted from the request's *scheduled*
//! time, so a stalled server is not hidden by requests that were never sent
//! (no coordinated omission).
//!
//! ```text
//! cargo run --release --example loadgen -- --url https://localhost:18443/mutate?timeout=10s \
//!   --ca certs/ca.crt [--requests 1000000] [--connections 64] [--rate 0] [--check patch|allowed]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{Request, StatusCode, Uri, header};
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use memchr::memmem;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// What an answer must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Check {
    /// HTTP 200, the uid echoed, `patchType: JSONPatch` and a patch.
    Patch,
    /// HTTP 200 and the uid echoed (for the constant-answer server, whose
    /// answer carries the fixture's own uid, only HTTP 200).
    Allowed,
}

/// Sends AdmissionReviews over keep-alive TLS connections and checks every answer.
#[derive(Parser)]
struct Args {
    /// The admission URL (https://HOST:PORT/PATH?QUERY).
    #[arg(long)]
    url: Uri,
    /// PEM CA certificate that signed the server's certificate.
    #[arg(long)]
    ca: PathBuf,
    /// The AdmissionReview to send.
    #[arg(long, default_value = "tests/fixtures/admission-reviews/pod-create.json")]
    body: PathBuf,
    /// Requests in total.
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: u64,
    /// Requests per second in total (0: as fast as the server answers).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// What every answer must carry.
    #[arg(long, value_enum, default_value_t = Check::Patch)]
    check: Check,
    /// Whether the server echoes the uid (off for a constant-answer server).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    echo_uid: bool,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// The fixture with its `request.uid` located, so each request can carry its own.
struct Template {
    body: Vec<u8>,
    uid_at: usize,
    uid_len: usize,
}

impl Template {
    fn new(body: Vec<u8>) -> Result<Self, String> {
        let review: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let uid = review["request"]["uid"]
            .as_str()
            .ok_or("the body has no request.uid")?
            .to_string();
        if uid.len() != 36 {
            return Err(format!("request.uid {uid:?} is not a 36-character UUID"));
        }
        let quoted = format!("\"{uid}\"");
        let found = memmem::find_iter(&body, quoted.as_bytes()).collect::<Vec<_>>();
        let [at] = found[..] else {
            return Err(format!(
                "request.uid {uid:?} appears {} times in the body, not once",
                found.len()
            ));
        };
        Ok(Template {
            body,
            uid_at: at + 1,
            uid_len: uid.len(),
        })
    }

    /// The body for request `n` of `connection` and its uid (a UUID naming both).
    fn request(&self, connection: u64, n: u64) -> (Bytes, String) {
        let uid = format!("{:08x}-0000-4000-8000-{:012x}", connection as u32, n & 0xffff_ffff_ffff);
        let mut body = self.body.clone();
        body[self.uid_at..self.uid_at + self.uid_len].copy_from_slice(uid.as_bytes());
        (Bytes::from(body), uid)
    }
}

/// What one connection measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

struct Target {
    uri: Uri,
    host: String,
    port: u16,
    connector: TlsConnector,
    template: Template,
    check: Check,
    echo_uid: bool,
}

fn connector(ca: &PathBuf) -> Result<TlsConnector, Box<dyn std::error::Error>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Checks one answer; `Err` says what is wrong with it.
fn check(target: &Target, status: StatusCode, body: &[u8], uid: &str) -> Result<(), String> {
    if status != StatusCode::OK {
        return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(body)));
    }
    if target.echo_uid && memmem::find(body, format!("\"uid\":\"{uid}\"").as_bytes()).is_none() {
        return Err(format!("uid {uid} not echoed: {}", String::from_utf8_lossy(body)));
    }
    if target.check == Check::Patch
        && (memmem::find(body, b"\"patchType\":\"JSONPatch\"").is_none()
            || memmem::find(body, b"\"patch\":\"").is_none())
    {
        return Err(format!("no JSONPatch in the answer: {}", String::from_utf8_lossy(body)));
    }
    Ok(())
}

/// One keep-alive connection sending `count` requests, the i-th at
/// `start + offset + i * interval` when paced.
async fn connection(
    target: Arc<Target>,
    id: u64,
    count: u64,
    pacing: Option<(Instant, Duration, Duration)>,
    done: Arc<AtomicU64>,
) -> Tally {
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(count as usize),
        ..Default::default()
    };
    let fail = |tally: &mut Tally, why: String| {
        tally.errors += 1;
        tally.first_error.get_or_insert(why);
    };
    let mut sender = None;
    for n in 0..count {
        let scheduled = match pacing {
            Some((start, offset, interval)) => {
                let at = start + offset + interval * n as u32;
                tokio::time::sleep_until(at.into()).await;
                Some(at)
            }
            None => None,
        };
        if sender.is_none() {
            match open(&target).await {
                Ok(s) => sender = Some(s),
                Err(e) => {
                    fail(&mut tally, format!("connect: {e}"));
                    continue;
                }
            }
        }
        let send = sender.as_mut().expect("connected above");
        let (body, uid) = target.template.request(id, n);
        let request = Request::post(target.uri.clone())
            .header(header::HOST, target.host.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .expect("a valid request");
        let sent = Instant::now();
        let outcome = async {
            let response = send.send_request(request).await.map_err(|e| format!("request: {e}"))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes();
            check(&target, status, &body, &uid)
        }
        .await;
        let latency = scheduled.unwrap_or(sent).elapsed();
        match outcome {
            Ok(()) => tally
                .latencies_us
                .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX)),
            Err(why) => {
                fail(&mut tally, why);
                sender = None; // start over on a fresh connection
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn open(target: &Target) -> Result<Sender, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(target.host.clone())?;
    let tls = target.connector.connect(name, tcp).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.connections == 0 || args.requests == 0 {
        return Err("--connections and --requests must be positive".into());
    }
    let host = args.url.host().ok_or("the URL has no host")?.to_string();
    let port = args.url.port_u16().unwrap_or(443);
    let template = Template::new(std::fs::read(&args.body).map_err(|e| format!("{}: {e}", args.body.display()))?)?;
    let target = Arc::new(Target {
        uri: args.url.clone(),
        host,
        port,
        connector: connector(&args.ca)?,
        template,
        check: args.check,
        echo_uid: args.echo_uid,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?;
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tallies = runtime.block_on(async {
        let per = args.requests / args.connections;
        let extra = args.requests % args.connections;
        let pacing_start = Instant::now() + Duration::from_millis(200);
        let mut tasks = Vec::new();
        for id in 0..args.connections {
            let count = per + u64::from(id < extra);
            let pacing = (args.rate > 0.0).then(|| {
                let interval = Duration::from_secs_f64(args.connections as f64 / args.rate);
                let offset = interval.mul_f64(id as f64 / args.connections as f64);
                (pacing_start, offset, interval)
            });
            tasks.push(tokio::spawn(connection(
                Arc::clone(&target),
                id,
                count,
                pacing,
                Arc::clone(&done),
            )));
        }
        let progress = {
            let done = Arc::clone(&done);
            let total = args.requests;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    eprintln!("loadgen: {} / {total} requests", done.load(Ordering::Relaxed));
                }
            })
        };
        let mut tallies = Vec::new();
        for task in tasks {
            tallies.push(task.await.expect("a connection task does not panic"));
        }
        progress.abort();
        tallies
    });
    let elapsed = started.elapsed();
    let errors: u64 = tallies.iter().map(|t| t.errors).sum();
    let first_error = tallies.iter().find_map(|t| t.first_error.clone());
    let mut latencies: Vec<u32> = tallies.into_iter().flat_map(|t| t.latencies_us).collect();
    latencies.sort_unstable();
    let ok = latencies.len() as u64;
    let rps = (ok + errors) as f64 / elapsed.as_secs_f64();
    println!(
        "loadgen: {} requests over {} connections{} in {:.2} s",
        args.requests,
        args.connections,
        if args.rate > 0.0 {
            format!(" at {:.0} req/s scheduled", args.rate)
        } else {
            String::new()
        },
        elapsed.as_secs_f64()
    );
    println!(
        "RESULT rps={rps:.0} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3} ok={ok} errors={errors}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 99.9),
        percentile(&latencies, 100.0),
    );
    if let Some(why) = first_error {
        println!("first error: {why}");
        std::process::exit(1);
    }
    Ok(())
}
