//! What the store holds and did, counted without decoding a record: for `GET /v1/status` and
//! `GET /metrics`.

use redb::ReadableTableMetadata;

use super::{ALERTS, OUTBOX, QUEUE, RECEIVED, Store, StoreError};

/// How many envelopes a store holds ([`Store::counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Accepted here.
    pub received: u64,
    /// Sealed here.
    pub sent: u64,
    /// Sealed here and not settled.
    pub queued: u64,
    /// Alerts recorded.
    pub alerts: u64,
}

impl Store {
    /// How many envelopes were accepted here, sealed here, and are queued (without reading
    /// them).
    pub fn counts(&self) -> Result<Counts, StoreError> {
        let tx = self.begin_read()?;
        Ok(Counts {
            received: tx.open_table(RECEIVED)?.len()?,
            sent: tx.open_table(OUTBOX)?.len()?,
            queued: tx.open_table(QUEUE)?.len()?,
            alerts: tx.open_table(ALERTS)?.len()?,
        })
    }

    /// Audit entries appended by committed transactions since the store was opened.
    pub fn audit_appended(&self) -> u64 {
        self.appended.load(std::sync::atomic::Ordering::Relaxed)
    }
}
