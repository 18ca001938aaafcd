//! How often the memo spares work (`server.memoAnswers`): bodies whose
//! decode was recalled, answers given from memory. A low hit rate on a busy
//! webhook says the objects it sees are all different (or that an earlier
//! webhook writes something per object), and that `memoAnswers` buys little.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::Metrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MemoLabels {
    memo: &'static str,
    result: &'static str,
}

/// The four series, made once: no label hashing per request.
#[derive(Debug)]
pub(super) struct MemoMetrics {
    /// decode hit, decode miss, answer hit, answer miss.
    counters: [Counter; 4],
}

impl MemoMetrics {
    /// Registers `memo_lookups_total{memo,result}`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let family = Family::<MemoLabels, Counter>::default();
        registry.register(
            "memo_lookups",
            "Lookups in serve's memo (server.memoAnswers), by memo: decode (a body alike but for its uid, not decoded \
             again) or answer (an answer given from memory), and result: hit or miss",
            family.clone(),
        );
        let counters = [
            ("decode", "hit"),
            ("decode", "miss"),
            ("answer", "hit"),
            ("answer", "miss"),
        ]
        .map(|(memo, result)| family.get_or_create(&MemoLabels { memo, result }).clone());
        MemoMetrics { counters }
    }
}

impl Metrics {
    /// Counts a body recalled or decoded (`None`: no memo), and an answer
    /// from memory or worked out (`None`: the memo was not asked).
    pub fn memo(&self, recalled: Option<bool>, answered: Option<bool>) {
        if let Some(hit) = recalled {
            self.memo.counters[if hit { 0 } else { 1 }].inc();
        }
        if let Some(hit) = answered {
            self.memo.counters[if hit { 2 } else { 3 }].inc();
        }
    }
}
