//! Listing one kind in one scope, page by page, with a deadline per page.
//!
//! Objects are read as raw JSON (`serde_json::Value`), never through typed
//! structs, so the engine sees every field the API server sent.

use std::time::Duration;

use kube::api::ListParams;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::engine::Kind;

/// Why a listing failed, in the few classes a reader acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureReason {
    /// 401: the credentials were refused.
    Unauthorized,
    /// 403: RBAC does not allow listing this kind here.
    Forbidden,
    /// 404: the API server does not serve this kind (or namespace path).
    NotFound,
    /// 410: the continue token expired between pages.
    Expired,
    /// The page did not arrive within the request timeout.
    Timeout,
    /// Any other answer of the API server (429, 5xx, ...).
    Server,
    /// The connection or TLS failed.
    Connection,
    /// The answer was not a list.
    Decode,
}

impl FailureReason {
    /// The camelCase name, as in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Unauthorized => "unauthorized",
            FailureReason::Forbidden => "forbidden",
            FailureReason::NotFound => "notFound",
            FailureReason::Expired => "expired",
            FailureReason::Timeout => "timeout",
            FailureReason::Server => "server",
            FailureReason::Connection => "connection",
            FailureReason::Decode => "decode",
        }
    }
}

/// A failed listing: the class and the API server's (or client's) words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListFailure {
    /// The class.
    pub reason: FailureReason,
    /// What happened, including the HTTP status when there was one.
    pub message: String,
}

/// How to page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Paging {
    /// Objects per page (`limit`).
    pub page_size: u32,
    /// Deadline for each page.
    pub timeout: Duration,
}

/// Lists one kind in one scope a page at a time, so that a caller holds
/// one page, never the whole collection.
///
/// No `resourceVersion` is sent: a list with `resourceVersion=0` is served
/// from the watch cache, which ignores `limit` (kube-apiserver's
/// `computeListLimit`: "the limit is ignored for requests that set RV == 0")
/// and answers the whole collection in one response. Unset, the first page
/// is a consistent read, served from the watch cache since Kubernetes 1.31
/// (ConsistentListFromCache) with `limit` honoured; the `continue` pages are
/// read from etcd before 1.34 and from the cache's snapshots from 1.34 on.
pub(crate) struct Pager<'a> {
    client: &'a kube::Client,
    request: kube::core::Request,
    kind: &'a Kind,
    paging: Paging,
    token: Option<String>,
    /// Pages read so far.
    pub pages: usize,
    done: bool,
}

impl<'a> Pager<'a> {
    /// A pager over `kind` in `namespace` (all namespaces when `None`).
    pub(crate) fn new(client: &'a kube::Client, kind: &'a Kind, namespace: Option<&str>, paging: Paging) -> Self {
        Pager {
            client,
            request: kube::core::Request::new(kind.list_path(namespace)),
            kind,
            paging,
            token: None,
            pages: 0,
            done: false,
        }
    }

    /// The next page's objects (with `apiVersion` and `kind` set; list items
    /// lack them), `None` after the last page or after a failure, which is
    /// returned once.
    pub(crate) async fn next(&mut self) -> Option<Result<Vec<Value>, ListFailure>> {
        if self.done {
            return None;
        }
        let result = self.fetch().await;
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }

    async fn fetch(&mut self) -> Result<Vec<Value>, ListFailure> {
        let params = ListParams {
            limit: Some(self.paging.page_size.max(1)),
            continue_token: self.token.clone(),
            ..ListParams::default()
        };
        let mut page = fetch_page(self.client, &self.request, &params, self.paging.timeout, self.pages + 1).await?;
        self.pages += 1;
        let Some(Value::Array(items)) = page.get_mut("items").map(Value::take) else {
            return Err(ListFailure {
                reason: FailureReason::Decode,
                message: format!(
                    "answer to {} has no items array (kind {})",
                    self.request.url_path,
                    page.get("kind").and_then(Value::as_str).unwrap_or("absent")
                ),
            });
        };
        let next = page
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        match next {
            None => self.done = true,
            // A server that hands back the same token would page forever.
            Some(next) if self.token.as_deref() == Some(next.as_str()) => {
                return Err(ListFailure {
                    reason: FailureReason::Decode,
                    message: "the API server returned the same continue token twice".into(),
                });
            }
            Some(next) => self.token = Some(next),
        }
        let kind = self.kind;
        Ok(items.into_iter().map(|item| with_type_meta(item, kind)).collect())
    }
}

/// One page, as raw JSON, within `timeout`.
async fn fetch_page(
    client: &kube::Client,
    request: &kube::core::Request,
    params: &ListParams,
    timeout: Duration,
    number: usize,
) -> Result<Value, ListFailure> {
    let http_request = request.list(params).map_err(|e| ListFailure {
        reason: FailureReason::Decode,
        message: format!("cannot build the list request: {e}"),
    })?;
    match tokio::time::timeout(timeout, client.request::<Value>(http_request)).await {
        Ok(Ok(page)) => Ok(page),
        Ok(Err(e)) => Err(classify(&e)),
        Err(_) => Err(ListFailure {
            reason: FailureReason::Timeout,
            message: format!("no answer within {} (page {number})", crate::config::Span(timeout)),
        }),
    }
}

/// List items carry no `apiVersion` and `kind`; the engine needs them, and
/// `kubectl apply` needs them first, so they lead the object.
pub(crate) fn with_type_meta(item: Value, kind: &Kind) -> Value {
    let Value::Object(fields) = item else { return item };
    let mut out = Map::with_capacity(fields.len() + 2);
    out.insert("apiVersion".into(), Value::String(kind.api_version()));
    out.insert("kind".into(), Value::String(kind.kind.clone()));
    for (key, value) in fields {
        if key != "apiVersion" && key != "kind" {
            out.insert(key, value);
        }
    }
    Value::Object(out)
}

pub(crate) fn classify(e: &kube::Error) -> ListFailure {
    match e {
        kube::Error::Api(status) => {
            let reason = match status.code {
                401 => FailureReason::Unauthorized,
                403 => FailureReason::Forbidden,
                404 => FailureReason::NotFound,
                410 => FailureReason::Expired,
                _ => FailureReason::Server,
            };
            let message = if status.message.is_empty() {
                format!("HTTP {} {}", status.code, status.reason)
            } else {
                format!("HTTP {}: {}", status.code, status.message)
            };
            ListFailure { reason, message }
        }
        kube::Error::SerdeError(e) => ListFailure {
            reason: FailureReason::Decode,
            message: format!("the answer is not JSON: {e}"),
        },
        other => ListFailure {
            reason: FailureReason::Connection,
            message: crate::error::chain(other),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_meta_leads_and_every_field_is_kept() {
        let item = json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"y": 2}});
        let kinds = crate::engine::Kinds::builtin();
        let typed = with_type_meta(item, kinds.find(Some("apps/v1"), "Deployment").unwrap());
        let keys: Vec<_> = typed.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec", "status"]);
        assert_eq!(typed["apiVersion"], "apps/v1");
        assert_eq!(typed["status"]["y"], 2);
    }
}
