//! HTTP/2 over TLS, negotiated by ALPN as kube-apiserver does: the fixture
//! round trips answer exactly as over HTTP/1.1, and a stream flood or a
//! rapid-reset flood (CVE-2023-44487) leaves the server answering.

#[path = "support/serve.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, Version};
use bytes::Bytes;
use entrypoint_guard::config::Span;
use h2::Reason;
use rustls_pki_types::ServerName;
use support::*;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A reqwest client offering `h2` and `http/1.1`, as the API server does.
fn h2_client(server: &TestServer) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(&[&server.ca], &[b"h2", b"http/1.1"]))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// POSTs `review` to `/mutate` over `client`, as the API server does.
async fn post_review(
    client: &reqwest::Client,
    server: &TestServer,
    review: &serde_json::Value,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(server.url("/mutate?timeout=10s"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(review).unwrap())
        .send()
        .await
}

/// A raw `h2` connection (for what reqwest will not do: floods, resets).
async fn raw_h2(server: &TestServer) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(server.running.addr()).await.unwrap();
    let tls = TlsConnector::from(Arc::new(tls_config(&[&server.ca], &[b"h2"])))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (send, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send
}

fn mutate(server: &TestServer) -> Request<()> {
    Request::post(server.url("/mutate?timeout=10s"))
        .header("content-type", "application/json")
        .body(())
        .unwrap()
}

#[tokio::test]
async fn the_fixtures_round_trip_over_http2_as_over_http1() {
    let server = TestServer::start(|_| {}).await;
    let h2 = h2_client(&server);
    for (name, review) in fixtures() {
        let response = post_review(&h2, &server, &review)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(response.version(), Version::HTTP_2, "{name}: ALPN must pick h2");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let answer = Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or_default(),
            text,
        };
        decode_like_api_server(&review, &answer);
        let over_h1 = server.post("/mutate", &review).await;
        assert_eq!(answer.body, over_h1.body, "{name}: HTTP/2 and HTTP/1.1 answers differ");
    }
}

#[tokio::test]
async fn a_stream_flood_is_held_to_max_concurrent_streams_and_others_are_answered() {
    let server = TestServer::start(|c| {
        c.server.http2_max_concurrent_streams = 8;
        c.server.body_read_timeout = Span(Duration::from_secs(2));
    })
    .await;
    let mut flood = raw_h2(&server).await;
    // One whole exchange first: the server's SETTINGS come before its first answer.
    flood = within("a first stream", flood.ready()).await.unwrap();
    let (first, _) = flood.send_request(mutate(&server), true).unwrap();
    assert_eq!(within("a first answer", first).await.unwrap().status(), 400);
    // Each stream declares a body and sends half of it, then stalls.
    let mut stalled = Vec::new();
    for _ in 0..8 {
        flood = within("a stream slot", flood.ready()).await.unwrap();
        let mut request = mutate(&server);
        request.headers_mut().insert("content-length", 1000.into());
        let (response, mut body) = flood.send_request(request, false).unwrap();
        body.send_data(Bytes::from(vec![b' '; 500]), false).unwrap();
        stalled.push((response, body));
    }
    assert_eq!(
        flood.current_max_send_streams(),
        8,
        "the server advertises http2MaxConcurrentStreams"
    );
    // A ninth waits for a slot: the client cannot open more than the server allows.
    let (ninth, _) = flood.send_request(mutate(&server), true).unwrap();
    // Meanwhile another client (another connection) is answered.
    let review = fixture("pod-create");
    let answer = within(
        "a review during the flood",
        post_review(&h2_client(&server), &server, &review),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.version(), Version::HTTP_2);
    // The stalled streams end at server.bodyReadTimeout with 408...
    for (response, _body) in stalled {
        let response = within("a stalled stream", response).await.unwrap();
        assert_eq!(response.status(), 408);
    }
    // ...and the ninth stream gets its turn (an empty body: 400).
    let ninth = within("the ninth stream", ninth).await.unwrap();
    assert_eq!(ninth.status(), 400);
}

#[tokio::test]
async fn a_rapid_reset_flood_leaves_the_server_answering() {
    let server = TestServer::start(|_| {}).await;
    let body = Bytes::from(serde_json::to_vec(&fixture("pod-create")).unwrap());
    let mut flood = raw_h2(&server).await;
    // Open a stream, send its body, reset it at once: thousands of times, as
    // fast as the connection takes them. The server either keeps up or ends
    // the connection (GOAWAY); either way nothing is left running.
    let mut sent = 0;
    let ended = within("the flood", async {
        for _ in 0..5_000 {
            flood = match flood.ready().await {
                Ok(f) => f,
                Err(e) => return Some(e),
            };
            match flood.send_request(mutate(&server), false) {
                Ok((_, mut stream)) => {
                    let _ = stream.send_data(body.clone(), false);
                    stream.send_reset(Reason::CANCEL);
                    sent += 1;
                }
                Err(e) => return Some(e),
            }
        }
        None
    })
    .await;
    eprintln!("rapid reset: {sent} streams opened and reset; connection ended by the server: {ended:?}");
    // An ordinary client is answered, over HTTP/2 and HTTP/1.1.
    let review = fixture("pod-create");
    let answer = within(
        "a review after the flood",
        post_review(&h2_client(&server), &server, &review),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
    decode_like_api_server(&review, &server.post("/mutate", &review).await);
}
