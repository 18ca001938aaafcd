//! A forward proxy on loopback through which every registry connection goes.
//!
//! oci-client builds its own HTTP client, so its DNS resolution cannot be
//! hooked. Its clients are pointed at this proxy instead: for each `CONNECT
//! host:port` (HTTPS) or absolute-form request (plain HTTP) the proxy resolves
//! the host itself, drops refused addresses ([`AccessPolicy::resolve`]) and
//! connects only to an address it checked. This covers the registry, its
//! token realm (named by the registry's `WWW-Authenticate`, so attacker
//! controlled) and any redirect, and leaves no window for DNS rebinding. TLS
//! stays end to end: the proxy only sees the tunnel.
//!
//! The proxy requires a random per-process password, so other processes on
//! the host cannot use it as an open proxy.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::guard::{AccessPolicy, split_host_port};

type Body = BoxBody<Bytes, hyper::Error>;

/// A running guarded proxy; stops when dropped.
#[derive(Debug)]
pub(crate) struct GuardedProxy {
    url: String,
    task: JoinHandle<()>,
}

impl GuardedProxy {
    /// Starts the proxy on an ephemeral loopback port, on the current Tokio runtime.
    pub(crate) fn start(policy: Arc<AccessPolicy>, connect_timeout: Duration) -> std::io::Result<Self> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| std::io::Error::other("the registry resolver needs a Tokio runtime"))?;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let listener = {
            let _enter = handle.enter();
            TcpListener::from_std(std_listener)?
        };
        let password = random_token()?;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("eg:{password}"))
        );
        let state = Arc::new(State {
            policy,
            expected,
            connect_timeout,
        });
        let task = handle.spawn(accept_loop(listener, state));
        Ok(GuardedProxy {
            url: format!("http://eg:{password}@{addr}"),
            task,
        })
    }

    /// The proxy URL with its credentials, for `https_proxy`/`http_proxy`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for GuardedProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    policy: Arc<AccessPolicy>,
    expected: String,
    connect_timeout: Duration,
}

/// 128 bits from the OS, hex-encoded.
fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| std::io::Error::other("the OS gave no randomness for the registry proxy password"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "registry proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, state.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "registry proxy connection ended");
            }
        });
    }
}

fn reply(status: StatusCode, message: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(message)).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response
}

async fn handle(mut req: Request<Incoming>, state: Arc<State>) -> Result<Response<Body>, hyper::Error> {
    let authorized = req
        .headers()
        .get(header::PROXY_AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == state.expected.as_bytes());
    if !authorized {
        return Ok(reply(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "proxy authentication required".into(),
        ));
    }
    let Some(target) = req.uri().authority().cloned() else {
        return Ok(reply(StatusCode::BAD_REQUEST, "request without a target host".into()));
    };
    let default_port = if req.method() == Method::CONNECT { 443 } else { 80 };
    let (host, port) = split_host_port(target.as_str(), default_port);
    let stream = match connect(&state, &host, port).await {
        Ok(stream) => stream,
        Err(response) => return Ok(response),
    };

    if req.method() == Method::CONNECT {
        tokio::spawn(async move {
            match hyper::upgrade::on(req).await {
                Ok(upgraded) => {
                    let mut upgraded = TokioIo::new(upgraded);
                    let mut stream = stream;
                    let _ = tokio::io::copy_bidirectional(&mut upgraded, &mut stream).await;
                }
                Err(e) => tracing::debug!(error = %e, "registry proxy: upgrade failed"),
            }
        });
        return Ok(Response::new(
            Full::new(Bytes::new()).map_err(|never| match never {}).boxed(),
        ));
    }

    // Plain HTTP: forward the request in origin form on a fresh connection.
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *req.uri_mut() = match path.parse() {
        Ok(uri) => uri,
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, "bad request path".into())),
    };
    req.headers_mut().remove(header::PROXY_AUTHORIZATION);
    req.headers_mut().remove("proxy-connection");
    if !req.headers().contains_key(header::HOST)
        && let Ok(value) = target.as_str().parse()
    {
        req.headers_mut().insert(header::HOST, value);
    }
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
        Ok(pair) => pair,
        Err(e) => return Ok(reply(StatusCode::BAD_GATEWAY, format!("{target}: {e}"))),
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    match sender.send_request(req).await {
        Ok(response) => Ok(response.map(BodyExt::boxed)),
        Err(e) => Ok(reply(StatusCode::BAD_GATEWAY, format!("{target}: {e}"))),
    }
}

/// Connects to the first reachable address `host` resolves to that the policy allows.
async fn connect(state: &State, host: &str, port: u16) -> Result<TcpStream, Response<Body>> {
    let addrs = state.policy.resolve(host, port).await.map_err(|e| {
        tracing::warn!(host, port, reason = %e, "registry proxy refused a connection");
        reply(StatusCode::FORBIDDEN, e.to_string())
    })?;
    let mut last_error = String::from("no address");
    for addr in addrs {
        match tokio::time::timeout(state.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last_error = format!("cannot connect to {addr}: {e}"),
            Err(_) => last_error = format!("cannot connect to {addr}: timed out"),
        }
    }
    Err(reply(StatusCode::BAD_GATEWAY, last_error))
}

/// The address the proxy listens on, for tests.
#[cfg(test)]
fn listen_addr(proxy: &GuardedProxy) -> std::net::SocketAddr {
    let rest = proxy.url.rsplit_once('@').map(|(_, a)| a).unwrap_or_default();
    rest.parse().expect("proxy URL ends with its address")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RegistryConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn connect_through(proxy: &GuardedProxy, target: &str, auth: bool) -> String {
        let mut s = TcpStream::connect(listen_addr(proxy)).await.unwrap();
        let password = proxy.url.split_once("eg:").unwrap().1.split_once('@').unwrap().0;
        let header = if auth {
            format!(
                "Proxy-Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(format!("eg:{password}"))
            )
        } else {
            String::new()
        };
        s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{header}\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    }

    #[tokio::test]
    async fn refuses_unlisted_loopback_and_unauthenticated_use() {
        let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = target.local_addr().unwrap().port();
        let config = RegistryConfig {
            allow_private: vec![format!("127.0.0.1:{port}")],
            ..Default::default()
        };
        let policy = Arc::new(AccessPolicy::from_config(&config).unwrap());
        let proxy = GuardedProxy::start(policy, Duration::from_secs(2)).unwrap();

        let answer = connect_through(&proxy, &format!("127.0.0.1:{port}"), false).await;
        assert!(answer.starts_with("HTTP/1.1 407"), "{answer}");
        let answer = connect_through(&proxy, &format!("127.0.0.1:{port}"), true).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let answer = connect_through(&proxy, &format!("localhost:{port}"), true).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(answer.contains("loopback"), "{answer}");
        let answer = connect_through(&proxy, "169.254.169.254:80", true).await;
        assert!(
            answer.starts_with("HTTP/1.1 403") && answer.contains("link-local"),
            "{answer}"
        );
    }
}
