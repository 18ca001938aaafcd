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

/// The result of listing one kind in one scope.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// The objects read, with `apiVersion` and `kind` set (list items lack them).
    /// When a later page failed, the objects of the earlier pages are kept.
    pub items: Vec<Value>,
    /// How many pages were read.
    pub pages: usize,
    /// Why the listing stopped early, if it did.
    pub failure: Option<ListFailure>,
}

/// How to page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Paging {
    /// Objects per page (`limit`).
    pub page_size: u32,
    /// Deadline for each page.
    pub timeout: Duration,
}

/// Lists `kind` in `namespace` (all namespaces when `None`), following
/// `continue` tokens until the last page, each page within `paging.timeout`.
pub(crate) async fn list(client: &kube::Client, kind: &Kind, namespace: Option<&str>, paging: Paging) -> Listing {
    let request = kube::core::Request::new(kind.list_path(namespace));
    let mut out = Listing::default();
    let mut token: Option<String> = None;
    loop {
        let params = ListParams {
            limit: Some(paging.page_size.max(1)),
            continue_token: token.clone(),
            ..ListParams::default()
        };
        let mut page = match fetch_page(client, &request, &params, paging.timeout, out.pages + 1).await {
            Ok(page) => page,
            Err(failure) => {
                out.failure = Some(failure);
                return out;
            }
        };
        out.pages += 1;
        let Some(Value::Array(items)) = page.get_mut("items").map(Value::take) else {
            out.failure = Some(ListFailure {
                reason: FailureReason::Decode,
                message: format!(
                    "answer to {} has no items array (kind {})",
                    request.url_path,
                    page.get("kind").and_then(Value::as_str).unwrap_or("absent")
                ),
            });
            return out;
        };
        out.items
            .extend(items.into_iter().map(|item| with_type_meta(item, kind)));
        let next = page
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        match next {
            None => return out,
            // A server that hands back the same token would page forever.
            Some(next) if token.as_deref() == Some(next.as_str()) => {
                out.failure = Some(ListFailure {
                    reason: FailureReason::Decode,
                    message: "the API server returned the same continue token twice".into(),
                });
                return out;
            }
            Some(next) => token = Some(next),
        }
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
