//! The admission routes (`POST /mutate`, `POST /audit`) and the plain-HTTP
//! health routes (`/healthz`, `/readyz`, `/metrics`).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::FutureExt;

use super::metrics::{Metrics, Rejection, Route};
use crate::admission::{self, Answer, Intake, Memo, OnError, Read, Target};
use crate::config::{Config, Span};
use crate::engine::{Finding, Policy};
use crate::image::{Facts, Resolver};

/// What every admission needs, shared by all requests and never locked.
pub(crate) struct AppState {
    policy: Policy,
    /// Decodes along the policy's kinds, or recalls an alike body's decode.
    intake: Intake,
    resolver: Arc<dyn Resolver>,
    /// `registry.budget`: the most image lookups may take.
    budget: Duration,
    /// `registry.safetyMargin`: kept free of the API server's timeout for answering.
    safety_margin: Duration,
    /// `server.requestTimeout`: the timeout when the request states none.
    default_timeout: Duration,
    on_error: OnError,
    metrics: Arc<Metrics>,
    /// The last answers, by what decided them (see [`admission::Memo`]).
    memo: Memo,
}

impl AppState {
    /// The state for `config`, resolving images with `resolver`.
    pub(crate) fn new(config: &Config, resolver: Arc<dyn Resolver>, metrics: Arc<Metrics>) -> Self {
        let policy = config.policy();
        AppState {
            intake: Intake::new(
                Arc::new(admission::Schema::of(&policy.kinds)),
                config.server.memo_answers,
            ),
            policy,
            resolver,
            budget: config.registry.budget.get(),
            safety_margin: config.registry.safety_margin.get(),
            default_timeout: config.server.request_timeout.get(),
            on_error: config.server.on_error,
            metrics,
            memo: Memo::new(config.server.memo_answers),
        }
    }
}

/// The HTTPS admission router.
pub(crate) fn admission_router(state: Arc<AppState>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/audit", post(audit))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

async fn mutate(
    State(state): State<Arc<AppState>>,
    version: Version,
    RawQuery(query): RawQuery,
    JsonBody(json): JsonBody,
    AdmissionBody(body): AdmissionBody,
) -> Response {
    state.admit(Route::Mutate, version, query.as_deref(), json, body).await
}

async fn audit(
    State(state): State<Arc<AppState>>,
    version: Version,
    RawQuery(query): RawQuery,
    JsonBody(json): JsonBody,
    AdmissionBody(body): AdmissionBody,
) -> Response {
    state.admit(Route::Audit, version, query.as_deref(), json, body).await
}

/// Whether the request declares a JSON body; read in place rather than
/// cloning the whole `HeaderMap` for one header.
struct JsonBody(bool);

impl<S: Send + Sync> FromRequestParts<S> for JsonBody {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(JsonBody(is_json(&parts.headers)))
    }
}

/// Why the body was not read.
enum BodyError {
    /// Declared or found to be over `server.maxBodyBytes` (HTTP 413).
    TooLarge(String),
    /// The body could not be read (HTTP 400).
    Unreadable(String),
}

/// The request body. The listener has already read it whole under
/// `server.*`'s bounds (`super::bodies`: declared length, size, deadline,
/// in-flight budget), so this only takes the bytes; `DefaultBodyLimit`
/// (axum's own cap, which would otherwise be 2 MB) is set to the same size.
struct AdmissionBody(Result<Bytes, BodyError>);

impl FromRequest<Arc<AppState>> for AdmissionBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: axum::extract::Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        Ok(AdmissionBody(Bytes::from_request(req, state).await.map_err(
            |rejection: BytesRejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    BodyError::TooLarge(rejection.body_text())
                } else {
                    BodyError::Unreadable(rejection.body_text())
                }
            },
        )))
    }
}

/// The `timeout` the API server appends (`?timeout=10s`), if present and readable.
pub(crate) fn query_timeout(query: Option<&str>) -> Option<Duration> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "timeout")
        .and_then(|(_, value)| Span::parse(value).ok())
        .map(Span::get)
}

/// Whether the request says its body is JSON (`application/json`, any parameters).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

fn refuse(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message + "\n",
    )
        .into_response()
}

impl AppState {
    async fn admit(
        &self,
        route: Route,
        version: Version,
        query: Option<&str>,
        json: bool,
        body: Result<Bytes, BodyError>,
    ) -> Response {
        let started = Instant::now();
        let body = match body {
            Ok(body) => body,
            Err(BodyError::TooLarge(why)) => {
                self.metrics.rejected(route, Rejection::TooLarge);
                return refuse(StatusCode::PAYLOAD_TOO_LARGE, why);
            }
            Err(BodyError::Unreadable(why)) => {
                self.metrics.rejected(route, Rejection::BadRequest);
                return refuse(StatusCode::BAD_REQUEST, format!("cannot read the body: {why}"));
            }
        };
        if !json {
            self.metrics.rejected(route, Rejection::UnsupportedMediaType);
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "an AdmissionReview must be sent as Content-Type: application/json".into(),
            );
        }
        let read = match self.intake.read(&body, &self.policy, &self.memo) {
            Ok(read) => read,
            Err(e) => {
                self.metrics.rejected(route, Rejection::BadRequest);
                tracing::debug!(route = route.as_str(), error = %e, "undecodable admission request");
                return refuse(StatusCode::BAD_REQUEST, e.to_string());
            }
        };
        drop(body);
        let (uid, request) = (read.uid.as_str(), &read.prepared.request);
        let timeout = query_timeout(query).unwrap_or(self.default_timeout);
        let answer = match &read.prepared.target {
            Ok(target) => self.inspect(route, uid, target, timeout).await,
            Err(skip) => {
                tracing::debug!(uid, skip = skip.as_str(), "admission request not inspected");
                Answer::of(admission::untouched(uid))
            }
        };
        let verdict = &*answer.verdict;
        let kind = request.kind.kind.as_str();
        // The mode the engine used (an object's mode annotation counts); the
        // configured one, capped by the route, when it did not look.
        let mode = verdict.mode.unwrap_or(self.policy.mode.min(route.ceiling()));
        self.metrics
            .admission(route, kind, request.operation, mode, verdict.outcome, started.elapsed());
        self.metrics.findings(&verdict.findings);
        self.metrics.held(&verdict.held);
        self.metrics.clipped(verdict.response.clipped);
        self.metrics
            .memo(self.intake.recalls().then_some(read.recalled), answer.memo_hit);
        self.log(route, version, &read, &answer, started);
        let mut response = Response::new(Body::from(answer.body));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }

    /// Resolves the target's images within the deadline and runs the engine
    /// (against the object an UPDATE replaces, if any).
    async fn inspect(&self, route: Route, uid: &str, target: &Target, timeout: Duration) -> Answer {
        // The answer must leave before the API server gives up on it.
        let hard = timeout.saturating_sub(self.safety_margin);
        let lookups = &target.lookups;
        let facts = if lookups.images.is_empty() {
            Facts::new()
        } else {
            let (images, ctx) = (&lookups.images, &lookups.context);
            let deadline = Instant::now() + hard.min(self.budget);
            // A resolver that panics (building its future or polling it) is
            // an internal error, not a dropped connection.
            let lookup = match catch_unwind(AssertUnwindSafe(|| self.resolver.resolve(images, ctx, deadline))) {
                Ok(lookup) => AssertUnwindSafe(lookup).catch_unwind(),
                Err(_) => {
                    self.metrics.error(route, "internal");
                    return Answer::of(admission::failed(
                        uid,
                        "internal error in the image resolver",
                        self.on_error,
                    ));
                }
            };
            // `timeout` polls the lookup before the clock, so an immediate
            // (offline) answer wins even with no time left.
            match tokio::time::timeout(hard, lookup).await {
                Ok(Ok(facts)) => facts,
                Ok(Err(_)) => {
                    self.metrics.error(route, "internal");
                    return Answer::of(admission::failed(
                        uid,
                        "internal error in the image resolver",
                        self.on_error,
                    ));
                }
                Err(_) => {
                    self.metrics.error(route, "deadline");
                    let why = format!("image lookups did not finish within {} ms", hard.as_millis());
                    return Answer::of(admission::failed(uid, &why, self.on_error));
                }
            }
        };
        let answer = self.memo.review(
            uid,
            &target.subject,
            &facts,
            &self.policy,
            route.ceiling(),
            self.on_error,
        );
        if answer.verdict.outcome == admission::Outcome::Error {
            self.metrics.error(route, "internal");
        }
        answer
    }

    /// One info line per admission with findings (its rules, as
    /// `rule@container`), one debug line per finding (with its message) and
    /// per answer. Lines are built only when their level is on: at `info` a
    /// busy webhook spent a quarter of its CPU formatting a line per finding,
    /// and then a tenth escaping the findings' messages (~1.2 KB for a Pod
    /// of three containers) into one line, character by character. The
    /// messages are in the answer's warnings and audit annotations already.
    fn log(&self, route: Route, version: Version, read: &Read, answer: &Answer, started: Instant) {
        let (uid, request, verdict) = (read.uid.as_str(), &read.prepared.request, &*answer.verdict);
        let namespace = request.namespace.as_deref().unwrap_or("");
        let kind = request.kind.kind.as_str();
        let name = request.name.as_deref().unwrap_or("");
        let findings = verdict.findings.as_slice();
        if !findings.is_empty() {
            tracing::info!(
                route = route.as_str(),
                uid,
                namespace,
                kind,
                name,
                dry_run = request.dry_run,
                outcome = verdict.outcome.as_str(),
                rules = %Rules(findings),
                "admission with findings"
            );
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            for finding in findings {
                let container = finding.container.as_ref().map_or("", |c| c.name.as_str());
                tracing::debug!(
                    route = route.as_str(),
                    uid,
                    namespace,
                    kind,
                    name,
                    container,
                    rule = finding.rule.id(),
                    applied = finding.applied,
                    dry_run = request.dry_run,
                    "{}",
                    finding.message
                );
            }
        }
        tracing::debug!(
            route = route.as_str(),
            uid,
            namespace,
            kind,
            name,
            operation = request.operation.as_str(),
            outcome = verdict.outcome.as_str(),
            // Whether the API server kept its HTTP/2 connection (`HTTP/2.0`) or fell back.
            http_version = ?version,
            // Whether the body's decode was recalled, the answer remembered.
            recalled = read.recalled,
            from_memory = answer.memo_hit.unwrap_or(false),
            micros = started.elapsed().as_micros() as u64,
            "admission answered"
        );
    }
}

/// The findings' rules, `rule@container` (or the rule alone), comma-separated:
/// written straight into the log line, never collected.
struct Rules<'a>(&'a [Finding]);

impl fmt::Display for Rules<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, finding) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(finding.rule.id())?;
            if let Some(container) = &finding.container {
                write!(f, "@{}", container.name)?;
            }
        }
        Ok(())
    }
}

/// State of the health listener.
pub(crate) struct HealthState {
    /// Set once the admission listener serves TLS with the loaded configuration.
    pub ready: AtomicBool,
    /// What `/metrics` shows.
    pub metrics: Arc<Metrics>,
}

/// The plain-HTTP router: `/healthz`, `/readyz` and `/metrics`.
pub(crate) fn health_router(state: Arc<HealthState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(s): State<Arc<HealthState>>| async move {
                if s.ready.load(Ordering::Acquire) {
                    (StatusCode::OK, "ready\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(s): State<Arc<HealthState>>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    s.metrics.encode(),
                )
            }),
        )
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_api_server_timeout() {
        assert_eq!(query_timeout(Some("timeout=10s")), Some(Duration::from_secs(10)));
        assert_eq!(query_timeout(Some("a=b&timeout=1m30s")), Some(Duration::from_secs(90)));
        assert_eq!(query_timeout(Some("timeout=soon")), None);
        assert_eq!(query_timeout(None), None);
    }

    #[test]
    fn json_content_types() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            h
        };
        assert!(is_json(&with("application/json")));
        assert!(is_json(&with("Application/JSON; charset=utf-8")));
        assert!(!is_json(&with("text/plain")));
        assert!(!is_json(&HeaderMap::new()));
    }
}
