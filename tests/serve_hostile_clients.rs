//! Slow and hostile HTTP/1.1 clients over real TLS on loopback (issue 11):
//! each bound of `server.*` closes what it should, answers what it should,
//! and leaves the server answering ordinary AdmissionReviews.
//!
//! Every wait is on an event (the server's answer, its EOF); the outer
//! `within` deadlines only turn a hang into a failure.

#[path = "support/serve.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use entrypoint_guard::config::Span;
use rustls_pki_types::ServerName;
use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A raw TLS connection to the admission listener, ALPN `http/1.1`.
async fn connect(server: &TestServer) -> TlsStream<TcpStream> {
    let config = tls_config(&[&server.ca], &[b"http/1.1"]);
    let tcp = TcpStream::connect(server.running.addr()).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

/// Reads until the server closes the connection; returns what it sent.
async fn until_closed(tls: &mut TlsStream<TcpStream>) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => break, // EOF, or a reset after unread bytes
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads one answer (head and a `Content-Length` body), whether or not the
/// server then keeps the connection open.
async fn read_answer(tls: &mut (impl AsyncRead + Unpin)) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text;
            }
        }
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => return text,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// POSTs a body of `len` spaces and reads the answer while still sending:
/// a server that answers 503 part-way stops reading the body, and when the
/// socket buffers are small (many connections open at once) a send that
/// waited for the whole body to go out first would never finish.
async fn post_spaces(tls: TlsStream<TcpStream>, len: usize) -> String {
    let (mut reader, mut writer) = tokio::io::split(tls);
    let send = async {
        let _ = writer.write_all(head(Some(len)).as_bytes()).await;
        let _ = writer.write_all(&vec![b' '; len]).await;
        std::future::pending::<()>().await
    };
    tokio::select! {
        answer = read_answer(&mut reader) => answer,
        () = send => unreachable!("sending never ends on its own"),
    }
}

fn head(content_length: Option<usize>) -> String {
    let length = match content_length {
        Some(n) => format!("Content-Length: {n}\r\n"),
        None => "Transfer-Encoding: chunked\r\n".to_string(),
    };
    format!("POST /mutate?timeout=30s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{length}\r\n")
}

/// A metric's value from `/metrics`, by its exact series text.
async fn metric(server: &TestServer, series: &str) -> f64 {
    let text = server.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

async fn answers_a_review(server: &TestServer) {
    let review = fixture("pod-create");
    let answer = within("an ordinary review", server.post("/mutate", &review)).await;
    let decoded = decode_like_api_server(&review, &answer);
    assert!(decoded.patch.is_some(), "the fixture is fixed");
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_and_closed_within_body_read_timeout() {
    let server = TestServer::start(|c| c.server.body_read_timeout = Span(Duration::from_millis(500))).await;
    let mut tls = connect(&server).await;
    let declared = 4 * 1024 * 1024;
    tls.write_all(head(Some(declared)).as_bytes()).await.unwrap();
    // All of it but one byte; the server may already have answered (writes then fail).
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < declared - 1 {
        let n = chunk.len().min(declared - 1 - sent);
        if tls.write_all(&chunk[..n]).await.is_err() {
            break;
        }
        sent += n;
    }
    let answer = within("the stalled body", until_closed(&mut tls)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("server.bodyReadTimeout"), "{answer}");
    assert_eq!(
        metric(
            &server,
            "entrypoint_guard_connection_timeouts_total{listener=\"admission\",phase=\"body\"}"
        )
        .await,
        1.0
    );
    answers_a_review(&server).await;
}

#[tokio::test]
async fn a_stalled_head_and_a_silent_connection_are_closed_within_header_read_timeout() {
    let server = TestServer::start(|c| c.server.header_read_timeout = Span(Duration::from_millis(500))).await;
    let mut half = connect(&server).await;
    half.write_all(b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Ty")
        .await
        .unwrap();
    let mut silent = connect(&server).await;
    // Closed without an answer: there is no request to answer.
    assert_eq!(within("the stalled head", until_closed(&mut half)).await, "");
    assert_eq!(within("the silent connection", until_closed(&mut silent)).await, "");
    assert_eq!(
        metric(
            &server,
            "entrypoint_guard_connection_timeouts_total{listener=\"admission\",phase=\"header\"}"
        )
        .await,
        2.0
    );
    answers_a_review(&server).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let server = TestServer::start(|c| c.server.idle_timeout = Span(Duration::from_secs(1))).await;
    let mut tls = connect(&server).await;
    let body = serde_json::to_vec(&fixture("pod-create")).unwrap();
    tls.write_all(head(Some(body.len())).as_bytes()).await.unwrap();
    tls.write_all(&body).await.unwrap();
    // The answer comes, then (keep-alive, nothing more sent) the close.
    let answer = within("the idle connection", until_closed(&mut tls)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        metric(
            &server,
            "entrypoint_guard_connection_timeouts_total{listener=\"admission\",phase=\"idle\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_gets_413_without_being_read_whole() {
    let limit = 64 * 1024;
    let server = TestServer::start(|c| c.server.max_body_bytes = limit).await;
    let mut tls = connect(&server).await;
    tls.write_all(head(None).as_bytes()).await.unwrap();
    // One byte over the limit, in chunks, and the body never ends (no last chunk):
    // an answer can only come from cutting it off at the limit.
    let chunk = vec![b' '; 8 * 1024];
    let mut sent = 0;
    while sent <= limit {
        let frame = format!("{:x}\r\n", chunk.len());
        if tls.write_all(frame.as_bytes()).await.is_err()
            || tls.write_all(&chunk).await.is_err()
            || tls.write_all(b"\r\n").await.is_err()
        {
            break;
        }
        sent += chunk.len();
    }
    let answer = within("the chunked body", until_closed(&mut tls)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("server.maxBodyBytes"), "{answer}");
    answers_a_review(&server).await;
}

#[tokio::test]
async fn bodies_over_the_byte_budget_get_503_at_once_and_room_returns() {
    // Large bodies may fill three quarters of the budget (768 KiB): one
    // whole, then part of a second.
    let server = TestServer::start(|c| {
        c.server.max_in_flight_body_bytes = 1024 * 1024;
        c.server.max_body_bytes = 512 * 1024;
    })
    .await;
    let big = 512 * 1024;
    let mut hog = connect(&server).await;
    hog.write_all(head(Some(big)).as_bytes()).await.unwrap();
    hog.write_all(&vec![b' '; big - 1]).await.unwrap();
    // A second large body finds the budget spent by the first once the
    // server has read it: answered 503 with the reason, not queued.
    let answer = within("a second large body", async {
        loop {
            let answer = post_spaces(connect(&server).await, big).await;
            if !answer.starts_with("HTTP/1.1 400") {
                break answer;
            }
        }
    })
    .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("server.maxInFlightBodyBytes"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    // An ordinary review (small) still finds the reserved quarter.
    answers_a_review(&server).await;
    assert!(metric(&server, "entrypoint_guard_requests_shed_total{reason=\"body-budget\"}").await >= 1.0);
    // The stalled client leaves: its bytes are released, a large body fits again.
    drop(hog);
    within("room again", async {
        loop {
            // Not an AdmissionReview: 400 means the body was read whole.
            if post_spaces(connect(&server).await, big)
                .await
                .starts_with("HTTP/1.1 400")
            {
                break;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn connections_over_max_connections_are_closed_at_once() {
    let server = TestServer::start(|c| {
        c.server.max_connections = 2;
        c.server.header_read_timeout = Span(Duration::from_secs(60));
    })
    .await;
    let first = connect(&server).await;
    let _second = connect(&server).await;
    assert_eq!(
        metric(&server, "entrypoint_guard_open_connections{listener=\"admission\"}").await,
        2.0
    );
    // The third is closed before its handshake completes.
    let tcp = TcpStream::connect(server.running.addr()).await.unwrap();
    let config = tls_config(&[&server.ca], &[]);
    let third = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    assert!(third.is_err(), "a third connection must not be served");
    assert_eq!(
        metric(
            &server,
            "entrypoint_guard_connections_rejected_total{listener=\"admission\",reason=\"max-connections\"}"
        )
        .await,
        1.0
    );
    drop(first);
    // A slot frees when a connection closes (the server notices the EOF).
    within("a free slot", async {
        loop {
            let review = fixture("pod-create");
            let client = support::client(&[&server.ca], true);
            let sent = client
                .post(server.url("/mutate?timeout=10s"))
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&review).unwrap())
                .send()
                .await;
            if sent.is_ok_and(|r| r.status() == 200) {
                break;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_request_head_over_max_header_bytes_gets_431() {
    let server = TestServer::start(|c| c.server.max_header_bytes = 16 * 1024).await;
    let mut tls = connect(&server).await;
    let big = format!(
        "POST /mutate HTTP/1.1\r\nHost: localhost\r\nX-Padding: {}\r\n",
        "a".repeat(32 * 1024)
    );
    let _ = tls.write_all(big.as_bytes()).await;
    let answer = within("the large head", until_closed(&mut tls)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    answers_a_review(&server).await;
}

#[tokio::test]
async fn the_health_listener_closes_a_stalled_head_too() {
    let server = TestServer::start(|c| c.server.header_read_timeout = Span(Duration::from_millis(500))).await;
    let mut tcp = TcpStream::connect(server.running.health_addr().unwrap()).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: loc").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = within("the stalled health request", tcp.read(&mut buf))
        .await
        .unwrap_or(0);
    assert_eq!(
        n,
        0,
        "closed without an answer: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert_eq!(
        metric(
            &server,
            "entrypoint_guard_connection_timeouts_total{listener=\"health\",phase=\"header\"}"
        )
        .await,
        1.0
    );
}
