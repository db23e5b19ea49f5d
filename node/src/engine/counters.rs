//! What the store worker decided since the node started, counted for `GET /metrics`: partners'
//! envelopes accepted or refused (by reason), and this node's envelopes its partners accepted or
//! refused (by reason, from their verified receipts), and how long this node's envelopes took
//! from sealing to their receipt. Counted as decided: a batch whose commit then fails answers
//! nothing, and its envelopes come again, so a count may run ahead by that batch.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus_client::metrics::histogram::Histogram;
use rogatory_proto::receipt::ReasonCode;

/// The buckets of the delivery time, in seconds: from a second to a day.
pub const DELIVERY_BUCKETS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 43_200.0, 86_400.0,
];

/// The counts, shared by the worker (which adds) and the API (which reads).
#[derive(Debug)]
pub struct Counters {
    received: Mutex<BTreeMap<&'static str, u64>>,
    settled: Mutex<BTreeMap<&'static str, u64>>,
    /// Seconds from sealing (whole seconds, as `sent-at`) to the receipt, of every envelope
    /// settled (a clone shares the same counts: the API registers it at each scrape).
    pub delivery: Histogram,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            received: Mutex::default(),
            settled: Mutex::default(),
            delivery: Histogram::new(DELIVERY_BUCKETS),
        }
    }
}

fn add(map: &Mutex<BTreeMap<&'static str, u64>>, outcome: &'static str) {
    if let Ok(mut m) = map.lock() {
        *m.entry(outcome).or_default() += 1;
    }
}

fn read(map: &Mutex<BTreeMap<&'static str, u64>>) -> Vec<(&'static str, u64)> {
    map.lock()
        .map(|m| m.iter().map(|(k, v)| (*k, *v)).collect())
        .unwrap_or_default()
}

impl Counters {
    /// A partner's envelope: `None` accepted, else refused for `reason`.
    pub fn received(&self, refused: Option<ReasonCode>) {
        add(&self.received, refused.map_or("accepted", |r| r.name()));
    }

    /// One of this node's envelopes settled by its addressee's receipt, `seconds` after it
    /// was sealed.
    pub fn settled(&self, refused: Option<ReasonCode>, seconds: u64) {
        add(&self.settled, refused.map_or("accepted", |r| r.name()));
        self.delivery.observe(seconds as f64);
    }

    /// Partners' envelopes by outcome (`accepted`, or the reason's name).
    pub fn received_by_outcome(&self) -> Vec<(&'static str, u64)> {
        read(&self.received)
    }

    /// This node's envelopes settled, by outcome.
    pub fn settled_by_outcome(&self) -> Vec<(&'static str, u64)> {
        read(&self.settled)
    }
}
