//! What the store worker decided since the node started, counted for `GET /metrics`: partners'
//! envelopes accepted or refused (by reason), and this node's envelopes its partners accepted or
//! refused (by reason, from their verified receipts). Counted as decided: a batch whose commit
//! then fails answers nothing, and its envelopes come again, so a count may run ahead by that
//! batch.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rogatory_proto::receipt::ReasonCode;

/// The counts, shared by the worker (which adds) and the API (which reads).
#[derive(Debug, Default)]
pub struct Counters {
    received: Mutex<BTreeMap<&'static str, u64>>,
    settled: Mutex<BTreeMap<&'static str, u64>>,
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

    /// One of this node's envelopes settled by its addressee's receipt.
    pub fn settled(&self, refused: Option<ReasonCode>) {
        add(&self.settled, refused.map_or("accepted", |r| r.name()));
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
