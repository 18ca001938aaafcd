//! The Kubernetes API as raw JSON over the kube client: objects stay
//! `serde_json::Value`, and every answer keeps what the API server returned —
//! status, body and the `Warning` headers an admission webhook's warnings
//! become.
//!
//! Include with `#[path = "support/kube_api.rs"] mod kube_api;`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::http::{Method, Request, header};
use http_body_util::BodyExt as _;
use kube::client::Body;
use serde_json::Value;

/// The field manager of every write the tests make.
pub const FIELD_MANAGER: &str = "eg-control-plane-test";

/// What the API server answered.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The `Warning` headers' texts, in order.
    pub warnings: Vec<String>,
}

impl Reply {
    /// The body, after checking the status is 2xx.
    pub fn ok(self, what: &str) -> Reply {
        assert!(
            (200..300).contains(&self.status),
            "{what}: HTTP {}: {}",
            self.status,
            self.body
        );
        self
    }
}

/// A cluster-admin client speaking raw JSON.
#[derive(Clone)]
pub struct Api {
    client: kube::Client,
}

impl Api {
    /// Wraps `client`.
    pub fn new(client: kube::Client) -> Api {
        Api { client }
    }

    /// Sends one request; panics only when no HTTP answer came back.
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>, content_type: &str) -> Reply {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("JSON")).unwrap_or_default();
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, "application/json")
            .body(Body::from(bytes))
            .expect("a valid request");
        let response = self
            .client
            .send(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let warnings = response
            .headers()
            .get_all("warning")
            .iter()
            // UTF-8, not only visible ASCII: the API server passes the text through.
            .map(|v| warning_text(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let bytes = response
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: body: {e}"));
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, body, warnings }
    }

    /// `POST` of `object` to the collection `path`; with `dry_run` as
    /// `kubectl create --dry-run=server` sends it.
    pub async fn create(&self, path: &str, object: &Value, dry_run: bool) -> Reply {
        let dry = if dry_run { "&dryRun=All" } else { "" };
        let path = format!("{path}?fieldManager={FIELD_MANAGER}{dry}");
        self.request(Method::POST, &path, Some(object), "application/json")
            .await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, None, "application/json").await
    }

    /// A JSON merge patch (an UPDATE for admission).
    pub async fn merge_patch(&self, path: &str, patch: &Value) -> Reply {
        let path = format!("{path}?fieldManager={FIELD_MANAGER}");
        self.request(Method::PATCH, &path, Some(patch), "application/merge-patch+json")
            .await
    }

    /// `PUT` of `object` to `path`, optionally as a server dry-run.
    pub async fn replace(&self, path: &str, object: &Value, dry_run: bool) -> Reply {
        let dry = if dry_run { "&dryRun=All" } else { "" };
        let path = format!("{path}?fieldManager={FIELD_MANAGER}{dry}");
        self.request(Method::PUT, &path, Some(object), "application/json").await
    }

    /// `DELETE path` (background propagation: the garbage collector removes
    /// what the object owns).
    pub async fn delete(&self, path: &str) -> Reply {
        let options =
            serde_json::json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"});
        self.request(Method::DELETE, path, Some(&options), "application/json")
            .await
    }

    /// The items of the collection `path` and the list's resourceVersion.
    pub async fn list(&self, path: &str) -> (Vec<Value>, String) {
        let reply = self.get(path).await.ok(&format!("list {path}"));
        let version = reply.body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // List items carry no apiVersion and kind: give them the list's.
        let api_version = reply.body["apiVersion"].clone();
        let kind = reply.body["kind"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches("List")
            .to_string();
        let mut items = reply.body["items"].as_array().cloned().unwrap_or_default();
        for item in &mut items {
            item["apiVersion"] = api_version.clone();
            item["kind"] = Value::String(kind.clone());
        }
        (items, version)
    }

    /// Watches the collection `path` from `resource_version`.
    pub async fn watch(&self, path: &str, resource_version: &str) -> Watch {
        let uri = format!("{path}?watch=true&resourceVersion={resource_version}");
        let request = Request::get(&uri)
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .expect("a valid request");
        let response = self
            .client
            .send(request)
            .await
            .unwrap_or_else(|e| panic!("watch {path}: {e}"));
        assert_eq!(response.status().as_u16(), 200, "watch {path}");
        Watch {
            what: path.to_string(),
            body: response.into_body(),
            buffer: Vec::new(),
            events: VecDeque::new(),
        }
    }
}

/// `299 - "text"` → `text`.
fn warning_text(header: &str) -> String {
    let quoted = header.splitn(3, ' ').nth(2).unwrap_or(header);
    let inner = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(quoted);
    inner.replace("\\\"", "\"").replace("\\\\", "\\")
}

/// A watch: each event is `{"type": ADDED|MODIFIED|DELETED, "object": ...}`.
pub struct Watch {
    what: String,
    body: Body,
    buffer: Vec<u8>,
    events: VecDeque<Value>,
}

impl Watch {
    /// The next event, or `None` when none arrives within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Value> {
        let until = Instant::now() + wait;
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            let left = until.checked_duration_since(Instant::now())?;
            let frame = tokio::time::timeout(left, self.body.frame()).await.ok()?;
            let frame = frame
                .unwrap_or_else(|| panic!("watch {} ended", self.what))
                .unwrap_or_else(|e| panic!("watch {}: {e}", self.what));
            if let Ok(data) = frame.into_data() {
                self.buffer.extend_from_slice(&data);
                while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.buffer.drain(..=end).collect();
                    let event: Value = serde_json::from_slice(&line).unwrap_or_else(|e| {
                        panic!(
                            "watch {}: bad event ({e}): {}",
                            self.what,
                            String::from_utf8_lossy(&line)
                        )
                    });
                    assert_ne!(event["type"], "ERROR", "watch {}: {event}", self.what);
                    self.events.push_back(event);
                }
            }
        }
    }
}
