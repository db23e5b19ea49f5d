//! What the two sides of an evidence transfer share: the event loop's side ([`super::fetch`])
//! and the pool that writes items to disk ([`super::pool`], `writer`). Each item being received
//! has a pool thread. It takes the responses in chunk order, opens every chunk (which checks
//! it), hashes the plaintext, and appends the sealed chunk to `evidence/partial/`; every
//! `evidence.sync_every_mib` it syncs the file and has the store worker record how many chunks
//! are durable ([`Recorder`]), where a transfer resumes after a restart of either node (the
//! prefix is opened and hashed again). At the end, a SHA-256 equal to the manifest's moves the
//! file into place (verified); another one moves it to `evidence/quarantine/`.

use std::sync::mpsc::SyncSender;

use rogatory_proto::ids::{AgencyId, CaseId, Sha256Digest};

/// Requests in flight (or answered and not yet written) per item.
pub const WINDOW: usize = 4;
/// Requests in flight for all items together.
pub const MAX_IN_FLIGHT: usize = 8;
/// Times a chunk that does not open is asked for again before the item is quarantined.
pub(super) const REFETCHES: u32 = 2;
/// Identifies an item being received: its case and its record key (`partner/item`).
pub type ItemKey = (CaseId, String);

/// What a pool thread tells the event loop.
#[derive(Debug)]
pub enum WriterEvent {
    /// An item is being received: its durable prefix is checked, its file open.
    Started {
        /// The item.
        key: ItemKey,
        /// The partner holding it.
        peer: AgencyId,
        /// Its id in the partner's manifest.
        item: String,
        /// Its chunks.
        chunks: u64,
        /// The first chunk not yet held.
        next: u64,
        /// Its case is an emergency.
        emergency: bool,
        /// Where the responses go, in any order.
        writer: SyncSender<(u64, Vec<u8>)>,
    },
    /// A response was written (or dropped as a duplicate): room for another request.
    Consumed(ItemKey),
    /// Ask again for chunks from this one on (a chunk did not open).
    Refetch(ItemKey, u64),
    /// More of the item is durable (for those waiting on progress).
    Progress(ItemKey),
    /// The item is done: verified, quarantined, or given up (the writer has ended).
    Ended(ItemKey),
}

/// The name of an item's partial file: its case and a hash of its record key, so that two item
/// ids (`a.b`, `a-b`) never share a file, and no id reaches the file system as it was given.
pub fn partial_name(case: &CaseId, key: &str) -> String {
    let name = Sha256Digest::of(key.as_bytes()).to_hex();
    format!("{case}-{}", &name[..32])
}

/// What became of an item's content when it had all arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// Its SHA-256 matched the manifest's; it is in `evidence/` under this name.
    Verified {
        /// The file name.
        blob: String,
    },
    /// It did not match; it is in `evidence/quarantine/`.
    Quarantined {
        /// Why.
        problem: String,
    },
}

/// Where a transfer's durable progress and its end are recorded, durably, before the writer
/// goes on: the store worker (`engine::Worker` implements it).
pub trait Recorder: Send + Sync {
    /// `done` chunks of the item (`key` in `case`) are synced in its partial file.
    fn progress(&self, case: CaseId, key: String, done: u64) -> anyhow::Result<()>;
    /// The item's content arrived whole: verified, or quarantined.
    fn arrived(&self, case: CaseId, key: String, outcome: Arrival) -> anyhow::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn two_item_ids_never_share_a_partial_file() {
        let case = CaseId::from_bytes([2; 16]);
        let names: BTreeSet<String> = [
            "XB.DOJ-CA/a.b",
            "XB.DOJ-CA/a-b",
            "XB.DOJ-CA/a_b",
            "XC.POLICE/a.b",
        ]
        .iter()
        .map(|k| partial_name(&case, k))
        .collect();
        assert_eq!(names.len(), 4);
        assert!(names.iter().all(|n| !n.contains(['/', '.'])));
    }
}
