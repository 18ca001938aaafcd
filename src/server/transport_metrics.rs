//! Metrics of the transport bounds (`server.*`): each counts the times a
//! bound bit, so a dashboard shows whether clients are being cut off and why.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerReason {
    listener: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerPhase {
    listener: &'static str,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Listener {
    listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// The transport's counters and gauges.
#[derive(Debug, Default)]
pub(crate) struct TransportMetrics {
    rejected: Family<ListenerReason, Counter>,
    timeouts: Family<ListenerPhase, Counter>,
    open: Family<Listener, Gauge>,
    shed: Family<Reason, Counter>,
}

impl TransportMetrics {
    /// Registers the families in `registry`.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = TransportMetrics::default();
        registry.register(
            "connections_rejected",
            "Connections closed as soon as accepted, by listener and reason (max-connections: server.maxConnections)",
            metrics.rejected.clone(),
        );
        registry.register(
            "connection_timeouts",
            "Connections or requests cut off by a time bound, by listener and phase \
             (tls-handshake, header, body, idle)",
            metrics.timeouts.clone(),
        );
        registry.register(
            "open_connections",
            "Connections open now, by listener",
            metrics.open.clone(),
        );
        registry.register(
            "requests_shed",
            "Requests answered 503 at once because a shared bound was spent, by reason \
             (body-budget: server.maxInFlightBodyBytes)",
            metrics.shed.clone(),
        );
        // Zero from the start, so alerts on rate() are defined before the first event.
        for listener in ["admission", "health"] {
            let _ = metrics.rejected.get_or_create(&ListenerReason {
                listener,
                reason: "max-connections",
            });
            for phase in ["tls-handshake", "header", "body", "idle"] {
                let _ = metrics.timeouts.get_or_create(&ListenerPhase { listener, phase });
            }
            let _ = metrics.open.get_or_create(&Listener { listener });
        }
        let _ = metrics.shed.get_or_create(&Reason { reason: "body-budget" });
        metrics
    }

    /// Counts a connection closed unserved.
    pub(crate) fn rejected(&self, listener: &'static str, reason: &'static str) {
        self.rejected.get_or_create(&ListenerReason { listener, reason }).inc();
    }

    /// Counts a bound that expired.
    pub(crate) fn timeout(&self, listener: &'static str, phase: &'static str) {
        self.timeouts.get_or_create(&ListenerPhase { listener, phase }).inc();
    }

    /// Counts a request shed.
    pub(crate) fn shed(&self, reason: &'static str) {
        self.shed.get_or_create(&Reason { reason }).inc();
    }

    /// One more (`+1`) or one less (`-1`) open connection.
    pub(crate) fn open(&self, listener: &'static str, delta: i64) {
        self.open.get_or_create(&Listener { listener }).inc_by(delta);
    }
}
