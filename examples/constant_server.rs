//! A constant-answer HTTPS server on the webhook's own stack (axum,
//! axum-server, rustls with ring, the same TLS configuration and TCP
//! options), for `scripts/load.sh`: it reads each request body and
//! answers the same bytes, so the gap to `entrypoint-guard serve` is the
//! cost of the admission work itself.
//!
//! `cargo run --release --example constant_server -- --listen 127.0.0.1:18444 \
//!   --tls-cert tls.crt --tls-key tls.key [--answer answer.json]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::post;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use clap::Parser;
use entrypoint_guard::server::tls::TlsFiles;

/// Answers every POST /mutate with the same AdmissionReview.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// PEM certificate chain.
    #[arg(long)]
    tls_cert: PathBuf,
    /// PEM private key.
    #[arg(long)]
    tls_key: PathBuf,
    /// The response body to send (default: a minimal allowed AdmissionReview).
    #[arg(long)]
    answer: Option<PathBuf>,
}

const MINIMAL: &str =
    r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"constant","allowed":true}}"#;

async fn constant(State(answer): State<Bytes>, body: Bytes) -> Response {
    drop(body); // read in full, like the webhook, then ignored
    let mut response = Response::new(Body::from(answer));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let answer = match &args.answer {
        Some(path) => Bytes::from(std::fs::read(path)?),
        None => Bytes::from_static(MINIMAL.as_bytes()),
    };
    let files = TlsFiles {
        cert: args.tls_cert,
        key: args.tls_key,
    };
    let tls = RustlsConfig::from_config(Arc::clone(&files.load()?.config));
    let app = Router::new()
        .route("/mutate", post(constant))
        .layer(DefaultBodyLimit::max(4 * 1024 * 1024))
        .with_state(answer);
    let listener = std::net::TcpListener::bind(args.listen)?;
    listener.set_nonblocking(true)?;
    eprintln!("constant_server: listening on {}", listener.local_addr()?);
    axum_server::from_tcp(listener)?
        .acceptor(RustlsAcceptor::new(tls).acceptor(NoDelayAcceptor::new()))
        .serve(app.into_make_service())
        .await?;
    Ok(())
}
