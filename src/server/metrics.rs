//! Prometheus metrics of the webhook, all named `entrypoint_guard_*`.
//!
//! Label sets are small and fixed (route, the kinds of the policy's table,
//! operation, mode, outcome, rule), so each series' counter is looked up in
//! its family once and kept in a `OnceLock` slot: after the first request of
//! a kind, the hot path is an atomic load and an atomic add, with no lock taken.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

mod limits;
mod memo;
mod state;

use super::histogram::AtomicHistogram;
use crate::admission::{Operation, Outcome};
use crate::engine::{Finding, Held, Kinds, Mode, Rule};

/// The admission routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /mutate`: the configured mode.
    Mutate,
    /// `POST /audit`: at most audit.
    Audit,
}

impl Route {
    /// Both routes.
    pub const ALL: [Route; 2] = [Route::Mutate, Route::Audit];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Mutate => "mutate",
            Route::Audit => "audit",
        }
    }

    /// The most this route may do to an object.
    pub fn ceiling(self) -> Mode {
        match self {
            Route::Mutate => Mode::Fix,
            Route::Audit => Mode::Audit,
        }
    }
}

/// The `kind` label values: the name of each kind of the policy's table
/// (built-in and custom; kinds of two groups with one name, such as
/// OpenKruise's StatefulSet, share it), then `other` for any other kind, so
/// the label stays bounded.
#[derive(Debug)]
struct KindLabels(Box<[String]>);

impl KindLabels {
    fn of(kinds: &Kinds) -> KindLabels {
        let mut names: Vec<String> = Vec::new();
        for kind in kinds.iter() {
            if !names.contains(&kind.kind) {
                names.push(kind.kind.clone());
            }
        }
        names.push("other".to_string());
        KindLabels(names.into_boxed_slice())
    }

    /// How many label values there are, `other` included.
    fn len(&self) -> usize {
        self.0.len()
    }

    /// The label of `kind`, and its index.
    fn of_kind(&self, kind: &str) -> (usize, &str) {
        let other = self.0.len() - 1;
        let i = self.0[..other].iter().position(|k| k == kind).unwrap_or(other);
        (i, &self.0[i])
    }
}
const OPERATIONS: [Operation; 5] = [
    Operation::Create,
    Operation::Update,
    Operation::Delete,
    Operation::Connect,
    Operation::Other,
];
const MODES: [Mode; 3] = [Mode::Off, Mode::Audit, Mode::Fix];
/// How many request series there are for `kinds` label values.
const fn request_slots(kinds: usize) -> usize {
    Route::ALL.len() * kinds * OPERATIONS.len() * MODES.len() * Outcome::ALL.len()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    kind: String,
    operation: &'static str,
    mode: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    rule: &'static str,
    applied: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HeldLabels {
    kind: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    route: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ResultLabels {
    pub(super) result: &'static str,
}

/// Why an admission's work failed: `deadline` (the lookups outlived the
/// time left) or `internal` (a bug caught: a panic, an unserializable answer).
pub(crate) const ERROR_REASONS: [&str; 2] = ["deadline", "internal"];

/// Why a request got no AdmissionReview answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// HTTP 400: not an AdmissionReview v1.
    BadRequest,
    /// HTTP 413: body over `server.maxBodyBytes`.
    TooLarge,
    /// HTTP 415: not `application/json`.
    UnsupportedMediaType,
}

impl Rejection {
    fn as_str(self) -> &'static str {
        match self {
            Rejection::BadRequest => "bad-request",
            Rejection::TooLarge => "too-large",
            Rejection::UnsupportedMediaType => "unsupported-media-type",
        }
    }
}

/// Every metric the server exports, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    kinds: KindLabels,
    request_slots: Box<[OnceLock<Counter>]>,
    durations: [AtomicHistogram; 2],
    findings: Family<FindingLabels, Counter>,
    finding_slots: [[OnceLock<Counter>; 2]; Rule::ALL.len()],
    held: Family<HeldLabels, Counter>,
    errors: Family<ReasonLabels, Counter>,
    rejected: Family<ReasonLabels, Counter>,
    state: state::StateMetrics,
    transport: super::transport_metrics::TransportMetrics,
    limits: limits::LimitMetrics,
    memo: memo::MemoMetrics,
}

impl Default for Metrics {
    /// The metrics of the built-in kinds.
    fn default() -> Self {
        Metrics::new(&Kinds::builtin())
    }
}

impl Metrics {
    /// Registers every metric; `kinds` (the policy's) name the `kind` labels.
    pub fn new(kinds: &Kinds) -> Self {
        let mut registry = Registry::with_prefix("entrypoint_guard");
        let kind_labels = KindLabels::of(kinds);
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission requests answered, by route, kind, operation, mode and outcome",
            requests.clone(),
        );
        let durations_family = Family::<RouteLabels, AtomicHistogram>::default();
        registry.register(
            "admission_duration_seconds",
            "Time from a read request body to the admission verdict (decoding, image lookups, the engine), by route",
            durations_family.clone(),
        );
        let durations = Route::ALL.map(|route| {
            durations_family
                .get_or_create(&RouteLabels { route: route.as_str() })
                .clone()
        });
        let findings = Family::<FindingLabels, Counter>::default();
        registry.register(
            "findings",
            "Engine findings in admission requests, by rule and whether the fix was applied",
            findings.clone(),
        );
        let held = Family::<HeldLabels, Counter>::default();
        registry.register(
            "objects_left_unpatched",
            "Objects in fix mode left unpatched, by kind and reason: owned (a controller owns them; \
             their owner and Pods are fixed) or scope (scope is pods)",
            held.clone(),
        );
        let errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "admission_errors",
            "Admissions answered per onError because the work failed, by reason",
            errors.clone(),
        );
        // Zero from the start, so an error ratio is defined before the first error.
        for route in Route::ALL {
            for reason in ERROR_REASONS {
                let _ = errors.get_or_create(&ReasonLabels {
                    route: route.as_str(),
                    reason,
                });
            }
        }
        let rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "rejected_requests",
            "Requests refused with an HTTP error instead of an AdmissionReview, by reason",
            rejected.clone(),
        );
        let state = state::StateMetrics::register(&mut registry);
        let transport = super::transport_metrics::TransportMetrics::register(&mut registry);
        let limits = limits::LimitMetrics::register(&mut registry);
        let memo = memo::MemoMetrics::register(&mut registry);
        Metrics {
            state,
            transport,
            limits,
            memo,
            registry,
            requests,
            request_slots: (0..request_slots(kind_labels.len())).map(|_| OnceLock::new()).collect(),
            kinds: kind_labels,
            durations,
            findings,
            finding_slots: std::array::from_fn(|_| [OnceLock::new(), OnceLock::new()]),
            held,
            errors,
            rejected,
        }
    }

    /// Counts one answered admission and its latency.
    pub fn admission(
        &self,
        route: Route,
        kind: &str,
        operation: Operation,
        mode: Mode,
        outcome: Outcome,
        took: Duration,
    ) {
        let (k, kind) = self.kinds.of_kind(kind);
        let o = OPERATIONS.iter().position(|&o| o == operation).unwrap_or(0);
        let m = MODES.iter().position(|&m| m == mode).unwrap_or(0);
        let out = Outcome::ALL.iter().position(|&x| x == outcome).unwrap_or(0);
        let r = route as usize;
        let slot = (((r * self.kinds.len() + k) * OPERATIONS.len() + o) * MODES.len() + m) * Outcome::ALL.len() + out;
        self.request_slots[slot]
            .get_or_init(|| {
                let labels = RequestLabels {
                    route: route.as_str(),
                    kind: kind.to_string(),
                    operation: operation.as_str(),
                    mode: mode.as_str(),
                    outcome: outcome.as_str(),
                };
                self.requests.get_or_create(&labels).clone()
            })
            .inc();
        self.durations[r].observe(took);
    }

    /// Counts findings by rule.
    pub fn findings(&self, findings: &[Finding]) {
        for finding in findings {
            let rule = Rule::ALL.iter().position(|&r| r == finding.rule).unwrap_or(0);
            let applied = usize::from(finding.applied);
            self.finding_slots[rule][applied]
                .get_or_init(|| {
                    let labels = FindingLabels {
                        rule: finding.rule.id(),
                        applied: if finding.applied { "true" } else { "false" },
                    };
                    self.findings.get_or_create(&labels).clone()
                })
                .inc();
        }
    }

    /// Counts objects whose fixes were withheld, by kind and reason.
    pub fn held(&self, held: &[Held]) {
        for object in held {
            let labels = HeldLabels {
                kind: self.kinds.of_kind(&object.kind).1.to_string(),
                reason: object.reason(),
            };
            self.held.get_or_create(&labels).inc();
        }
    }

    /// Counts an admission whose work failed (`deadline`, `internal`).
    pub fn error(&self, route: Route, reason: &'static str) {
        debug_assert!(ERROR_REASONS.contains(&reason), "{reason} is not in ERROR_REASONS");
        let labels = ReasonLabels {
            route: route.as_str(),
            reason,
        };
        self.errors.get_or_create(&labels).inc();
    }

    /// Counts a request refused with an HTTP error.
    pub fn rejected(&self, route: Route, why: Rejection) {
        let labels = ReasonLabels {
            route: route.as_str(),
            reason: why.as_str(),
        };
        self.rejected.get_or_create(&labels).inc();
    }

    /// The transport bounds' metrics.
    pub(crate) fn transport(&self) -> &super::transport_metrics::TransportMetrics {
        &self.transport
    }

    /// Adds metrics read at scrape time (e.g. the registry lookup counts of
    /// `lookup_metrics`), under the `entrypoint_guard` prefix.
    pub(crate) fn add_collector(&mut self, collector: Box<dyn Collector>) {
        self.registry.register_collector(collector);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("encoding into a String");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_labelled_series() {
        let m = Metrics::default();
        for _ in 0..2 {
            m.admission(
                Route::Audit,
                "Deployment",
                Operation::Update,
                Mode::Audit,
                Outcome::Audited,
                Duration::from_micros(80),
            );
        }
        m.admission(
            Route::Mutate,
            "Widget",
            Operation::Create,
            Mode::Fix,
            Outcome::Clean,
            Duration::ZERO,
        );
        m.rejected(Route::Mutate, Rejection::TooLarge);
        let text = m.encode();
        assert!(
            text.contains(
                "entrypoint_guard_admission_requests_total{route=\"audit\",kind=\"Deployment\",operation=\"UPDATE\",mode=\"audit\",outcome=\"audited\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("kind=\"other\",operation=\"CREATE\",mode=\"fix\",outcome=\"clean\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("entrypoint_guard_admission_duration_seconds_count{route=\"audit\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("entrypoint_guard_rejected_requests_total{route=\"mutate\",reason=\"too-large\"} 1\n"));
    }

    #[test]
    fn every_kind_of_the_table_has_its_own_label() {
        let kinds = Kinds::with_every_preset();
        let m = Metrics::new(&kinds);
        for kind in kinds.iter() {
            m.admission(
                Route::Mutate,
                &kind.kind,
                Operation::Create,
                Mode::Fix,
                Outcome::Clean,
                Duration::ZERO,
            );
            m.held(&[Held {
                kind: kind.kind.clone(),
                name: "x".into(),
                owner: None,
            }]);
        }
        let text = m.encode();
        for kind in kinds.iter() {
            let label = format!("kind=\"{}\"", kind.kind);
            assert!(
                text.contains(&format!("{{route=\"mutate\",{label},")),
                "{label}: {text}"
            );
            assert!(
                text.contains(&format!("objects_left_unpatched_total{{{label},")),
                "{label}: {text}"
            );
        }
        assert!(!text.contains("kind=\"other\""), "{text}");
        // Without the presets, a Rollout is `other`.
        let builtin = Metrics::default();
        builtin.admission(
            Route::Mutate,
            "Rollout",
            Operation::Create,
            Mode::Fix,
            Outcome::Clean,
            Duration::ZERO,
        );
        assert!(builtin.encode().contains("kind=\"other\""));
    }
}
