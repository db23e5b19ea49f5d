//! The node's embedded store (redb), and in it one verifiable audit log per case.
//!
//! ```text
//! meta    "format" → u64                                        STORE_FORMAT
//! cases   case id → 0                                            written once, when a log starts
//! log     (case id, s, 0 = entry, 0) → audit entry (CBOR)        leaf s's data
//!         (case id, s, 1 = node, level) → [u8; 32]               the perfect subtree hashes
//!                                                                that leaf s completed
//!         (case id, n − 1, 2 = checkpoint, 0) → signed note      the checkpoint of size n
//! inbox   envelope id → envelope bytes                           accepted envelopes
//! receipts envelope id → receipt bytes                           the receipt returned for each
//! outbox  envelope id → OutboxEntry (CBOR)                       every envelope sealed here: its
//!                                                                case, addressee, bytes, state
//! queue   order → envelope id                                    outbox entries not yet settled,
//!                                                                in the order they were sealed
//! received envelope id → Received (sealed CBOR)                  what the inbox lists
//! chain-in  (sender, case commitment) → seq ‖ envelope id        the last envelope of each
//!                                                                sender's chain applied here
//! chain-out (case id, addressee) → seq ‖ envelope id             the last envelope sealed here
//!                                                                for each case and addressee
//! case-records case id → CaseRecord (sealed CBOR)                 kind, side, partner, and the
//!                                                                status updates applied
//! evidence (case id, item id) → EvidenceRecord (sealed CBOR)     each evidence item added here
//!                                                                or listed by a partner; its
//!                                                                content lives in `evidence/`
//! ```
//!
//! The tables from `queue` on were added within format 1: a store without them gets them empty
//! when opened, and nothing already stored changes meaning. Format 2 seals the values of
//! `received`, `case-records` and `evidence` ([`sealed`]: encrypted under a key derived from the
//! storage key, bound to table and key, signed with the agency key); the rest is as in format 1.
//!
//! Every record of a log is keyed by the leaf whose append created it: node (level, index) by
//! leaf `(index + 1)·2^level − 1`, the checkpoint of size n by leaf n − 1. An append therefore
//! writes only at the end of the case's key range, dirtying the tail of one B-tree, and a durable
//! append costs little more than the bare commit it rides
//! on (README, "Benchmarks"). The last record of a case is always its latest checkpoint, so the
//! log's size is that record's leaf plus one, and its right frontier is the stored nodes of the
//! size's perfect subtrees: no separate state is rewritten on each append. Before signing a new
//! checkpoint, an append checks that the frontier it extends still hashes to the root of the
//! latest checkpoint, verified with the agency's key: a store altered on disk is never extended
//! and re-signed, it is refused.
//!
//! An append (one entry or a batch) is one write transaction: the entries, the new subtree
//! hashes and a checkpoint signed with the agency key; it never overwrites a record. It returns only after
//! redb's commit has reached the disk (`Durability::Immediate`), so what it reports appended is
//! durable. Appending reads nothing but the frontier: O(log n) work, never a rehash of the log.
//! The formats are pinned by the known-answer test in `tests/it/store.rs`.

pub mod records;
pub mod sealed;

use std::path::Path;

pub use records::{
    Alert, MAX_OUTBOX_ENTRY, NODE_LOG, OutboxEntry, OutboxState, ROUTINE, Received,
    unwrap_envelope_key, wrap_envelope_key,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use rogatory_proto::audit::entry::{AuditEntry, case_origin, log_key_name};
use rogatory_proto::audit::merkle::{self, Frontier, Hash, MemoryTree, NodeSource, leaf_hash};
use rogatory_proto::audit::note::{Checkpoint, Note, NoteVerifier, SIG_ED25519, TlogProof};
use rogatory_proto::ids::{AgencyId, CaseId};
use rogatory_proto::keys::SigningKey;
pub use sealed::RecordKeys;

/// File name of the store in a data directory.
pub const STORE_FILE: &str = "rogatory.redb";
/// redb's page cache: bounded, so a node's memory does not grow with its store (redb's default
/// is 1 GiB).
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;
/// Version of the stored formats; a store of another version is refused, never rewritten.
/// Format 2 seals case, evidence and inbox records ([`sealed`]); format 1 kept them in clear.
pub const STORE_FORMAT: u64 = 2;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CASES: TableDefinition<&[u8; 16], u8> = TableDefinition::new("cases");
const LOG: TableDefinition<(&[u8; 16], u64, u8, u64), &[u8]> = TableDefinition::new("log");
const INBOX: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("inbox");
const RECEIPTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("receipts");
const OUTBOX: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("outbox");
const QUEUE: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("queue");
const RECEIVED: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new(RECEIVED_NAME);
const CHAIN_IN: TableDefinition<(&str, &[u8; 32]), &[u8]> = TableDefinition::new("chain-in");
const CHAIN_OUT: TableDefinition<(&[u8; 16], &str), &[u8]> = TableDefinition::new("chain-out");
const CASE_RECORDS: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new(CASE_RECORDS_NAME);
const EVIDENCE: TableDefinition<(&[u8; 16], &str), &[u8]> = TableDefinition::new(EVIDENCE_NAME);
/// The tables whose values are sealed ([`sealed`]).
const CASE_RECORDS_NAME: &str = "case-records";
const EVIDENCE_NAME: &str = "evidence";
const RECEIVED_NAME: &str = "received";
/// (peer, case) → the peer's last signed checkpoint of the case witnessed here (a signed note).
const WITNESSED: TableDefinition<(&str, &[u8; 16]), &[u8]> = TableDefinition::new("witnessed");
/// (case, addressee) → the size of the checkpoint carried by the last envelope sealed for it.
const WITNESS_OUT: TableDefinition<(&[u8; 16], &str), u64> = TableDefinition::new("witness-out");
/// Alert number (0, 1, 2 …) → the alert (CBOR): what a witness or receipt check found wrong.
const ALERTS: TableDefinition<u64, &[u8]> = TableDefinition::new("alerts");

/// Record kinds in the `log` table.
const ENTRY: u8 = 0;
const NODE: u8 = 1;
const CHECKPOINT: u8 = 2;

/// The key of subtree node (level, index): the leaf whose append completed it.
fn node_key(case: &[u8; 16], level: u32, index: u64) -> (&[u8; 16], u64, u8, u64) {
    let leaf = index
        .checked_add(1)
        .and_then(|i| i.checked_shl(level))
        .map_or(u64::MAX, |v| v.wrapping_sub(1));
    (case, leaf, NODE, u64::from(level))
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (I/O, full disk, corruption detected by redb).
    #[error("store: {0}")]
    Db(String),
    /// The store was written by another format version.
    #[error("the store is format version {found}; this software reads version {STORE_FORMAT}")]
    Format {
        /// The version found.
        found: u64,
    },
    /// Stored data that does not decode (damage, or tampering: run `rogatory audit verify-store`).
    #[error("store: {0} (run `rogatory audit verify-store`)")]
    Corrupt(String),
    /// The caller asked for something that does not exist or is not allowed.
    #[error("{0}")]
    Request(String),
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Request(
                "the store is in use by a running node (`rogatory run`); stop it, or use its API"
                    .into(),
            ),
            e => StoreError::Db(e.to_string()),
        }
    }
}

db_err!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

type LogKey<'a> = (&'a [u8; 16], u64, u8, u64);

/// The size of a case's log: its last record's leaf plus one.
fn log_size<T: ReadableTable<LogKey<'static>, &'static [u8]>>(
    log: &T,
    case: &[u8; 16],
) -> Result<u64, StoreError> {
    let last = log
        .range((case, 0u64, 0u8, 0u64)..=(case, u64::MAX, u8::MAX, u64::MAX))?
        .next_back()
        .transpose()?;
    match last {
        None => Ok(0),
        Some((k, _)) => {
            let (_, leaf, kind, x) = k.value();
            if kind != CHECKPOINT || x != 0 {
                return Err(StoreError::Corrupt(format!(
                    "the last record of the log is not a checkpoint (leaf {leaf}, kind {kind})"
                )));
            }
            leaf.checked_add(1)
                .ok_or_else(|| StoreError::Corrupt("a record lies beyond any possible log".into()))
        }
    }
}

/// The size and right frontier of a case's log, from its records: the size is the last
/// record's leaf plus one; the frontier is the node of each perfect subtree of that size.
fn tip<T: ReadableTable<LogKey<'static>, &'static [u8]>>(
    log: &T,
    case: &[u8; 16],
) -> Result<Frontier, StoreError> {
    let size = log_size(log, case)?;
    let mut hashes = Vec::new();
    let mut start = 0u64;
    for level in (0..64u32).rev() {
        if size >> level & 1 == 1 {
            let index = start >> level;
            let v = log.get(node_key(case, level, index))?.ok_or_else(|| {
                StoreError::Corrupt(format!("subtree hash ({level}, {index}) is missing"))
            })?;
            hashes.push(v.value().try_into().map_err(|_| {
                StoreError::Corrupt(format!("subtree hash ({level}, {index}) is not 32 bytes"))
            })?);
            start += 1 << level;
        }
    }
    Frontier::from_parts(size, hashes)
        .ok_or_else(|| StoreError::Corrupt("the log frontier does not fit its size".into()))
}

/// The agency whose logs these are, and its checkpoint key.
pub struct LogSigner<'a> {
    /// The agency.
    pub agency: &'a AgencyId,
    /// Its signing key.
    pub key: &'a SigningKey,
}

impl LogSigner<'_> {
    /// The verifier key of the checkpoints.
    pub fn verifier(&self) -> NoteVerifier {
        // The agency's key name is always a valid note key name.
        NoteVerifier::new(
            &log_key_name(self.agency),
            SIG_ED25519,
            self.key.verifying_key(),
        )
        .unwrap_or_else(|_| unreachable!("agency key names are valid note key names"))
    }
}

/// A chain position as stored: sequence and envelope id.
fn chain_value(seq: u64, id: &[u8; 32]) -> [u8; 40] {
    let mut v = [0u8; 40];
    v[..8].copy_from_slice(&seq.to_be_bytes());
    v[8..].copy_from_slice(id);
    v
}

fn chain_parse(v: &[u8]) -> Result<(u64, [u8; 32]), StoreError> {
    let seq: [u8; 8] = v
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("a chain record is truncated".into()))?;
    let id: [u8; 32] = v
        .get(8..)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("a chain record is truncated".into()))?;
    Ok((u64::from_be_bytes(seq), id))
}

fn corrupt<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// One write transaction: everything done through it becomes durable together at
/// [`Batch::commit`], or not at all. The daemon groups the work of many envelopes into one batch
/// (one fsync), and answers none of them before the commit returns.
pub struct Batch<'s> {
    store: &'s Store,
    tx: redb::WriteTransaction,
}

impl Batch<'_> {
    /// Makes everything in the batch durable (`Durability::Immediate`).
    pub fn commit(self) -> Result<(), StoreError> {
        self.tx.commit()?;
        Ok(())
    }

    /// Appends entries to a case's log and signs its new checkpoint (see [`Store::append`]).
    pub fn append(
        &mut self,
        signer: &LogSigner<'_>,
        case: &CaseId,
        entries: &mut [AuditEntry],
    ) -> Result<Vec<u8>, StoreError> {
        self.store.append_in(&self.tx, signer, case, entries)
    }

    /// The latest checkpoint of a case, as this batch sees it (`None` without a log).
    pub fn checkpoint(&self, case: &CaseId) -> Result<Option<Vec<u8>>, StoreError> {
        let log = self.tx.open_table(LOG)?;
        let size = log_size(&log, case.as_bytes())?;
        if size == 0 {
            return Ok(None);
        }
        Ok(log
            .get((case.as_bytes(), size - 1, CHECKPOINT, 0))?
            .map(|v| v.value().to_vec()))
    }

    /// The receipt returned for an envelope, if any.
    pub fn receipt_for(&self, envelope_id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tx
            .open_table(RECEIPTS)?
            .get(envelope_id)?
            .map(|v| v.value().to_vec()))
    }

    /// Stores the receipt returned for an envelope.
    pub fn store_receipt(
        &mut self,
        envelope_id: &[u8; 32],
        receipt: &[u8],
    ) -> Result<(), StoreError> {
        self.tx.open_table(RECEIPTS)?.insert(envelope_id, receipt)?;
        Ok(())
    }

    /// Stores an accepted envelope and what the inbox lists about it; refuses one already stored.
    pub fn insert_inbox(
        &mut self,
        envelope_id: &[u8; 32],
        envelope: &[u8],
        meta: Option<&Received>,
    ) -> Result<(), StoreError> {
        if self
            .tx
            .open_table(INBOX)?
            .insert(envelope_id, envelope)?
            .is_some()
        {
            return Err(StoreError::Request("the envelope is already stored".into()));
        }
        if let Some(meta) = meta {
            let mut meta = meta.clone();
            let mut m = self.tx.open_table(META)?;
            let next = m.get("arrival-next")?.map_or(0, |v| v.value());
            m.insert("arrival-next", next + 1)?;
            drop(m);
            meta.arrival = next;
            let bytes = self.store.seal_record(RECEIVED_NAME, envelope_id, &meta)?;
            self.tx
                .open_table(RECEIVED)?
                .insert(envelope_id, bytes.as_slice())?;
        }
        Ok(())
    }

    /// The last envelope applied from `from`'s chain for the case with this commitment.
    pub fn chain_in(
        &self,
        from: &AgencyId,
        commitment: &[u8; 32],
    ) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        self.tx
            .open_table(CHAIN_IN)?
            .get((from.as_str(), commitment))?
            .map(|v| chain_parse(v.value()))
            .transpose()
    }

    /// Records the last envelope applied from a sender's chain.
    pub fn set_chain_in(
        &mut self,
        from: &AgencyId,
        commitment: &[u8; 32],
        seq: u64,
        id: &[u8; 32],
    ) -> Result<(), StoreError> {
        self.tx
            .open_table(CHAIN_IN)?
            .insert((from.as_str(), commitment), chain_value(seq, id).as_slice())?;
        Ok(())
    }

    /// The last envelope sealed here for a case and addressee.
    pub fn chain_out(
        &self,
        case: &CaseId,
        to: &AgencyId,
    ) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        self.tx
            .open_table(CHAIN_OUT)?
            .get((case.as_bytes(), to.as_str()))?
            .map(|v| chain_parse(v.value()))
            .transpose()
    }

    /// Records the last envelope sealed for a case and addressee.
    pub fn set_chain_out(
        &mut self,
        case: &CaseId,
        to: &AgencyId,
        seq: u64,
        id: &[u8; 32],
    ) -> Result<(), StoreError> {
        self.tx.open_table(CHAIN_OUT)?.insert(
            (case.as_bytes(), to.as_str()),
            chain_value(seq, id).as_slice(),
        )?;
        Ok(())
    }

    /// Puts an envelope in the outbox; with `queue`, also at the end of the delivery queue
    /// (its order is returned). Refuses an envelope already there.
    pub fn enqueue(
        &mut self,
        entry: &mut OutboxEntry,
        queue: bool,
    ) -> Result<Option<u64>, StoreError> {
        let id = rogatory_proto::ids::Sha256Digest::of(&entry.envelope);
        if queue {
            let mut meta = self.tx.open_table(META)?;
            let next = meta.get("queue-next")?.map_or(0, |v| v.value());
            meta.insert("queue-next", next + 1)?;
            // Emergencies sort before every routine envelope: the queue is read in key order.
            let order = if entry.emergency {
                next
            } else {
                ROUTINE | next
            };
            self.tx.open_table(QUEUE)?.insert(order, &id.0)?;
            entry.order = Some(order);
        }
        let bytes = rogatory_proto::cbor::to_vec(&*entry).map_err(corrupt)?;
        if self
            .tx
            .open_table(OUTBOX)?
            .insert(&id.0, bytes.as_slice())?
            .is_some()
        {
            return Err(StoreError::Request(
                "the envelope is already in the outbox".into(),
            ));
        }
        Ok(entry.order)
    }

    /// A case's record, as this batch sees it.
    pub fn case_record(&self, case: &CaseId) -> Result<Option<records::CaseRecord>, StoreError> {
        let table = self.tx.open_table(CASE_RECORDS)?;
        let Some(v) = table.get(case.as_bytes())? else {
            return Ok(None);
        };
        self.store
            .open_record(CASE_RECORDS_NAME, case.as_bytes(), v.value(), "case record")
            .map(Some)
    }

    /// Stores a case's record.
    pub fn put_case_record(&mut self, r: &records::CaseRecord) -> Result<(), StoreError> {
        let bytes = self
            .store
            .seal_record(CASE_RECORDS_NAME, r.case_id.as_bytes(), r)?;
        self.tx
            .open_table(CASE_RECORDS)?
            .insert(r.case_id.as_bytes(), bytes.as_slice())?;
        Ok(())
    }

    /// A case's evidence items, as this batch sees them, in item-id order.
    pub fn evidence(&self, case: &CaseId) -> Result<Vec<records::EvidenceRecord>, StoreError> {
        self.store.evidence_of(&self.tx.open_table(EVIDENCE)?, case)
    }

    /// Every evidence record of every case, as this batch sees it.
    pub fn evidence_all(&self) -> Result<Vec<records::EvidenceRecord>, StoreError> {
        let table = self.tx.open_table(EVIDENCE)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let (case, key) = k.value();
            out.push(self.store.open_record(
                EVIDENCE_NAME,
                &evidence_key(case, key),
                v.value(),
                "evidence record",
            )?);
        }
        Ok(out)
    }

    /// One evidence item of a case, by its record key, as this batch sees it.
    pub fn evidence_item(
        &self,
        case: &CaseId,
        key: &str,
    ) -> Result<Option<records::EvidenceRecord>, StoreError> {
        self.store
            .evidence_get(&self.tx.open_table(EVIDENCE)?, case, key)
    }

    /// Writes an evidence item's record.
    pub fn put_evidence(&mut self, r: &records::EvidenceRecord) -> Result<(), StoreError> {
        let key = r.key();
        let bytes =
            self.store
                .seal_record(EVIDENCE_NAME, &evidence_key(r.case_id.as_bytes(), &key), r)?;
        self.tx
            .open_table(EVIDENCE)?
            .insert((r.case_id.as_bytes(), key.as_str()), bytes.as_slice())?;
        Ok(())
    }

    /// The last checkpoint of `peer`'s log of `case` witnessed here (a signed note).
    pub fn witnessed(&self, peer: &AgencyId, case: &CaseId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tx
            .open_table(WITNESSED)?
            .get((peer.as_str(), case.as_bytes()))?
            .map(|v| v.value().to_vec()))
    }

    /// Records the last checkpoint of `peer`'s log of `case` witnessed here.
    pub fn set_witnessed(
        &mut self,
        peer: &AgencyId,
        case: &CaseId,
        note: &[u8],
    ) -> Result<(), StoreError> {
        self.tx
            .open_table(WITNESSED)?
            .insert((peer.as_str(), case.as_bytes()), note)?;
        Ok(())
    }

    /// The size of the checkpoint carried by the last envelope sealed for (case, addressee).
    pub fn witness_out(&self, case: &CaseId, to: &AgencyId) -> Result<Option<u64>, StoreError> {
        Ok(self
            .tx
            .open_table(WITNESS_OUT)?
            .get((case.as_bytes(), to.as_str()))?
            .map(|v| v.value()))
    }

    /// Records the size of the checkpoint an envelope for (case, addressee) carries.
    pub fn set_witness_out(
        &mut self,
        case: &CaseId,
        to: &AgencyId,
        size: u64,
    ) -> Result<(), StoreError> {
        self.tx
            .open_table(WITNESS_OUT)?
            .insert((case.as_bytes(), to.as_str()), size)?;
        Ok(())
    }

    /// A consistency proof of a case's log from size `from` to size `to`, as this batch sees it.
    pub fn consistency(
        &self,
        case: &CaseId,
        from: u64,
        to: u64,
    ) -> Result<Result<Vec<Hash>, merkle::ProofError>, StoreError> {
        let src = NodeTable {
            table: self.tx.open_table(LOG)?,
            case: *case.as_bytes(),
        };
        merkle::consistency_proof(&src, from, to)
    }

    /// Records an alert; returns its number.
    pub fn raise_alert(&mut self, alert: &Alert) -> Result<u64, StoreError> {
        let mut t = self.tx.open_table(ALERTS)?;
        let n = t.last()?.map_or(0, |(k, _)| k.value() + 1);
        let bytes = rogatory_proto::cbor::to_vec(alert).map_err(corrupt)?;
        t.insert(n, bytes.as_slice())?;
        Ok(n)
    }

    /// The alerts raised at or after `since` (Unix seconds), newest first: alerts are numbered
    /// in the order they are raised, so this reads only the recent ones.
    pub fn alerts_since(&self, since: u64) -> Result<Vec<Alert>, StoreError> {
        let t = self.tx.open_table(ALERTS)?;
        let mut out = Vec::new();
        for row in t.iter()?.rev() {
            let (_, v) = row?;
            let a: Alert = rogatory_proto::cbor::from_slice(v.value(), 1 << 20, "an alert")
                .map_err(corrupt)?;
            if a.at < since {
                break;
            }
            out.push(a);
        }
        Ok(out)
    }

    /// An outbox entry, as this batch sees it.
    pub fn outbox_entry(&self, envelope_id: &[u8; 32]) -> Result<Option<OutboxEntry>, StoreError> {
        let table = self.tx.open_table(OUTBOX)?;
        let Some(v) = table.get(envelope_id)? else {
            return Ok(None);
        };
        rogatory_proto::cbor::from_slice(v.value(), MAX_OUTBOX_ENTRY, "outbox entry")
            .map(Some)
            .map_err(corrupt)
    }

    /// Settles an outbox entry with its verified receipt: its new state, and out of the queue.
    pub fn settle(
        &mut self,
        mut entry: OutboxEntry,
        receipt: &[u8],
        state: OutboxState,
    ) -> Result<(), StoreError> {
        let id = rogatory_proto::ids::Sha256Digest::of(&entry.envelope);
        entry.state = state;
        entry.receipt = Some(serde_bytes::ByteBuf::from(receipt.to_vec()));
        if let Some(order) = entry.order {
            self.tx.open_table(QUEUE)?.remove(order)?;
        }
        let bytes = rogatory_proto::cbor::to_vec(&entry).map_err(corrupt)?;
        self.tx
            .open_table(OUTBOX)?
            .insert(&id.0, bytes.as_slice())?;
        Ok(())
    }
}

/// One finding of [`Store::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The case.
    pub case: CaseId,
    /// The entry concerned, when one can be named.
    pub entry: Option<u64>,
    /// What is wrong.
    pub problem: String,
}

/// The result of [`Store::verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Sealed records (case, evidence, inbox) whose signature was checked.
    pub records: u64,
    /// Cases checked.
    pub cases: usize,
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// Everything that is wrong; empty when the store is intact.
    pub findings: Vec<Finding>,
}

/// The node's store.
pub struct Store {
    db: Db,
    /// The keys case, evidence and inbox records are sealed with ([`Store::with_record_keys`]).
    records: Option<RecordKeys>,
    /// Checkpoints whose signature this process already verified or made, by case: the exact
    /// note bytes, so an append re-verifies only a checkpoint it has not seen (the bytes decide
    /// the signature's validity, so a note changed on disk is verified again).
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 16], Vec<u8>>>,
}

/// Cases whose latest checkpoint is remembered as verified; beyond this the memory is cleared.
const VERIFIED_CACHE: usize = 10_000;

enum Db {
    ReadWrite(Database),
    ReadOnly(redb::ReadOnlyDatabase),
}

impl Store {
    /// Opens the store in `dir`, creating it if needed; refuses another format version.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join(STORE_FILE))?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("format")?.map(|v| v.value());
            match found {
                None => {
                    meta.insert("format", STORE_FORMAT)?;
                }
                Some(STORE_FORMAT) => {}
                Some(found) => return Err(StoreError::Format { found }),
            }
            tx.open_table(CASES)?;
            tx.open_table(LOG)?;
            tx.open_table(INBOX)?;
            tx.open_table(RECEIPTS)?;
            tx.open_table(OUTBOX)?;
            tx.open_table(QUEUE)?;
            tx.open_table(RECEIVED)?;
            tx.open_table(CHAIN_IN)?;
            tx.open_table(CHAIN_OUT)?;
            tx.open_table(CASE_RECORDS)?;
            tx.open_table(EVIDENCE)?;
            tx.open_table(WITNESSED)?;
            tx.open_table(WITNESS_OUT)?;
            tx.open_table(ALERTS)?;
        }
        tx.commit()?;
        // The store holds what the case records hold: only its owner reads it.
        crate::files::restrict(&dir.join(STORE_FILE))
            .map_err(|e| StoreError::Db(format!("{e:#}")))?;
        Ok(Self {
            db: Db::ReadWrite(db),
            records: None,
            verified: Default::default(),
        })
    }

    /// Opens an existing store without writing to it (what audits and proofs need: the
    /// evidence file is not modified and no write lock is taken).
    pub fn open_read_only(dir: &Path) -> Result<Self, StoreError> {
        let db = match redb::ReadOnlyDatabase::open(dir.join(STORE_FILE)) {
            Ok(db) => db,
            // The node stopped without closing the store (a crash, a kill): only a writable
            // open can run redb's repair, which restores the last committed state.
            Err(redb::DatabaseError::RepairAborted) => return Self::open(dir),
            Err(e) => return Err(e.into()),
        };
        let tx = db.begin_read()?;
        let found = tx.open_table(META)?.get("format")?.map(|v| v.value());
        if found != Some(STORE_FORMAT) {
            return Err(StoreError::Format {
                found: found.unwrap_or(0),
            });
        }
        drop(tx);
        Ok(Self {
            db: Db::ReadOnly(db),
            records: None,
            verified: Default::default(),
        })
    }

    fn begin_read(&self) -> Result<redb::ReadTransaction, StoreError> {
        Ok(match &self.db {
            Db::ReadWrite(d) => d.begin_read()?,
            Db::ReadOnly(d) => d.begin_read()?,
        })
    }

    fn writable(&self) -> Result<&Database, StoreError> {
        match &self.db {
            Db::ReadWrite(d) => Ok(d),
            Db::ReadOnly(_) => Err(StoreError::Request("the store was opened read-only".into())),
        }
    }

    /// The same store, able to read and write sealed records with `keys` (the node's).
    pub fn with_record_keys(mut self, keys: RecordKeys) -> Self {
        self.records = Some(keys);
        self
    }

    fn record_keys(&self) -> Result<&RecordKeys, StoreError> {
        self.records.as_ref().ok_or_else(|| {
            StoreError::Request(
                "case, evidence and inbox records are sealed at rest: reading them needs the node's keys".into(),
            )
        })
    }

    /// Seals a record for `table` at `key`.
    fn seal_record<T: serde::Serialize>(
        &self,
        table: &str,
        key: &[u8],
        value: &T,
    ) -> Result<Vec<u8>, StoreError> {
        let plain = zeroize::Zeroizing::new(rogatory_proto::cbor::to_vec(value).map_err(corrupt)?);
        Ok(sealed::seal(self.record_keys()?, table, key, &plain))
    }

    /// Opens a sealed record of `table` at `key`.
    fn open_record<T: serde::de::DeserializeOwned + serde::Serialize>(
        &self,
        table: &str,
        key: &[u8],
        bytes: &[u8],
        what: &'static str,
    ) -> Result<T, StoreError> {
        let plain = zeroize::Zeroizing::new(sealed::open(self.record_keys()?, table, key, bytes)?);
        rogatory_proto::cbor::from_slice(&plain, MAX_OUTBOX_ENTRY, what).map_err(corrupt)
    }

    /// The evidence records of one case in a table.
    fn evidence_of(
        &self,
        table: &impl ReadableTable<(&'static [u8; 16], &'static str), &'static [u8]>,
        case: &CaseId,
    ) -> Result<Vec<records::EvidenceRecord>, StoreError> {
        let mut out = Vec::new();
        for row in table.range((case.as_bytes(), "")..)? {
            let (k, v) = row?;
            let (c, key) = k.value();
            if c != case.as_bytes() {
                break;
            }
            out.push(self.open_record(
                EVIDENCE_NAME,
                &evidence_key(c, key),
                v.value(),
                "evidence record",
            )?);
        }
        Ok(out)
    }

    /// One evidence record in a table, by (case, record key).
    fn evidence_get(
        &self,
        table: &impl ReadableTable<(&'static [u8; 16], &'static str), &'static [u8]>,
        case: &CaseId,
        key: &str,
    ) -> Result<Option<records::EvidenceRecord>, StoreError> {
        match table.get((case.as_bytes(), key))? {
            Some(v) => self
                .open_record(
                    EVIDENCE_NAME,
                    &evidence_key(case.as_bytes(), key),
                    v.value(),
                    "evidence record",
                )
                .map(Some),
            None => Ok(None),
        }
    }

    /// Starts a write transaction (see [`Batch`]).
    pub fn batch(&self) -> Result<Batch<'_>, StoreError> {
        Ok(Batch {
            store: self,
            tx: self.writable()?.begin_write()?,
        })
    }

    /// Appends entries to a case's log in one durable transaction and signs the new checkpoint.
    /// Each entry's `seq` is assigned here; its `case_id` must be `case`. Returns the new
    /// signed checkpoint.
    pub fn append(
        &self,
        signer: &LogSigner<'_>,
        case: &CaseId,
        entries: &mut [AuditEntry],
    ) -> Result<Vec<u8>, StoreError> {
        let mut b = self.batch()?;
        let note = b.append(signer, case, entries)?;
        b.commit()?;
        Ok(note)
    }

    /// Records sealed envelopes in the outbox, with their `envelope-sent` entries, in one durable
    /// transaction: an envelope is in the outbox exactly when its sending is logged. (Envelopes
    /// sealed offline are not queued for the daemon: `rogatory deliver` hands them over.)
    pub fn queue_sent(
        &self,
        signer: &LogSigner<'_>,
        case: &CaseId,
        sent: &[OutboxEntry],
        entries: &mut [AuditEntry],
    ) -> Result<Vec<u8>, StoreError> {
        let mut b = self.batch()?;
        for e in sent {
            b.enqueue(&mut e.clone(), false)?;
        }
        let note = b.append(signer, case, entries)?;
        b.commit()?;
        Ok(note)
    }

    /// An outbox entry by envelope id.
    pub fn outbox_entry(&self, envelope_id: &[u8; 32]) -> Result<Option<OutboxEntry>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(OUTBOX)?;
        let Some(v) = table.get(envelope_id)? else {
            return Ok(None);
        };
        rogatory_proto::cbor::from_slice(v.value(), MAX_OUTBOX_ENTRY, "outbox entry")
            .map(Some)
            .map_err(corrupt)
    }

    /// Every outbox entry, oldest first (by queue order, then sealing time).
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let tx = self.begin_read()?;
        let mut out = Vec::new();
        for row in tx.open_table(OUTBOX)?.iter()? {
            let (_, v) = row?;
            out.push(
                rogatory_proto::cbor::from_slice(v.value(), MAX_OUTBOX_ENTRY, "outbox entry")
                    .map_err(corrupt)?,
            );
        }
        out.sort_by_key(|e: &OutboxEntry| (e.sealed_at, e.order));
        Ok(out)
    }

    /// The delivery queue in order: (order, envelope id).
    pub fn queued(&self) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
        let tx = self.begin_read()?;
        let mut out = Vec::new();
        for row in tx.open_table(QUEUE)?.iter()? {
            let (k, v) = row?;
            out.push((k.value(), *v.value()));
        }
        Ok(out)
    }

    /// Every accepted envelope's inbox record, oldest first.
    pub fn received(&self) -> Result<Vec<([u8; 32], Received)>, StoreError> {
        let tx = self.begin_read()?;
        let mut out = Vec::new();
        for row in tx.open_table(RECEIVED)?.iter()? {
            let (k, v) = row?;
            let r: Received =
                self.open_record(RECEIVED_NAME, k.value(), v.value(), "inbox record")?;
            out.push((*k.value(), r));
        }
        out.sort_by_key(|(_, r)| (r.received_at, r.arrival));
        Ok(out)
    }

    /// Every case record.
    pub fn case_records(&self) -> Result<Vec<records::CaseRecord>, StoreError> {
        let tx = self.begin_read()?;
        let mut out = Vec::new();
        for row in tx.open_table(CASE_RECORDS)?.iter()? {
            let (k, v) = row?;
            out.push(self.open_record(CASE_RECORDS_NAME, k.value(), v.value(), "case record")?);
        }
        Ok(out)
    }

    /// A case's evidence items, in item-id order.
    pub fn evidence(&self, case: &CaseId) -> Result<Vec<records::EvidenceRecord>, StoreError> {
        let tx = self.begin_read()?;
        self.evidence_of(&tx.open_table(EVIDENCE)?, case)
    }

    /// One evidence item of a case, by its record key.
    pub fn evidence_item(
        &self,
        case: &CaseId,
        key: &str,
    ) -> Result<Option<records::EvidenceRecord>, StoreError> {
        let tx = self.begin_read()?;
        self.evidence_get(&tx.open_table(EVIDENCE)?, case, key)
    }

    /// The cases that have evidence records.
    pub fn case_ids_with_evidence(&self) -> Result<Vec<CaseId>, StoreError> {
        let tx = self.begin_read()?;
        let mut out: Vec<CaseId> = Vec::new();
        for row in tx.open_table(EVIDENCE)?.iter()? {
            let (k, _) = row?;
            let c = CaseId::from_bytes(*k.value().0);
            if out.last() != Some(&c) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// One case record.
    pub fn case_record(
        &self,
        case: &rogatory_proto::ids::CaseId,
    ) -> Result<Option<records::CaseRecord>, StoreError> {
        let tx = self.begin_read()?;
        let table = tx.open_table(CASE_RECORDS)?;
        let Some(v) = table.get(case.as_bytes())? else {
            return Ok(None);
        };
        self.open_record(CASE_RECORDS_NAME, case.as_bytes(), v.value(), "case record")
            .map(Some)
    }

    /// An accepted envelope's bytes.
    pub fn inbox_envelope(&self, envelope_id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.begin_read()?;
        Ok(tx
            .open_table(INBOX)?
            .get(envelope_id)?
            .map(|v| v.value().to_vec()))
    }

    /// Records the verified receipt of a sent envelope: the new state of its outbox entry, the
    /// receipt, and a `receipt-received` entry in the case log, in one durable transaction. Only
    /// after this is the envelope delivered.
    pub fn record_receipt(
        &self,
        signer: &LogSigner<'_>,
        entry: OutboxEntry,
        receipt: &[u8],
        state: OutboxState,
        audit: &mut [AuditEntry],
    ) -> Result<Vec<u8>, StoreError> {
        let case = entry.case_id;
        let mut b = self.batch()?;
        b.settle(entry, receipt, state)?;
        let note = b.append(signer, &case, audit)?;
        b.commit()?;
        Ok(note)
    }

    /// Whether an envelope was accepted and stored.
    pub fn has_envelope(&self, envelope_id: &[u8; 32]) -> Result<bool, StoreError> {
        let tx = self.begin_read()?;
        Ok(tx.open_table(INBOX)?.get(envelope_id)?.is_some())
    }

    /// The receipt this node returned for an envelope, if any.
    pub fn receipt_for(&self, envelope_id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.begin_read()?;
        Ok(tx
            .open_table(RECEIPTS)?
            .get(envelope_id)?
            .map(|v| v.value().to_vec()))
    }

    fn remember(&self, case: &CaseId, note: &[u8]) {
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= VERIFIED_CACHE {
                m.clear();
            }
            m.insert(*case.as_bytes(), note.to_vec());
        }
    }

    fn append_in(
        &self,
        tx: &redb::WriteTransaction,
        signer: &LogSigner<'_>,
        case: &CaseId,
        entries: &mut [AuditEntry],
    ) -> Result<Vec<u8>, StoreError> {
        if entries.is_empty() {
            return Err(StoreError::Request("nothing to append".into()));
        }
        let key = case.as_bytes();
        let note;
        {
            let mut log = tx.open_table(LOG)?;
            let mut frontier = tip(&log, key)?;
            if frontier.size() == 0 {
                let mut cases = tx.open_table(CASES)?;
                if cases.get(key)?.is_some() {
                    return Err(StoreError::Corrupt(format!(
                        "case {case} is registered but its log is empty: it was deleted"
                    )));
                }
                cases.insert(key, 0)?;
            } else {
                // Extend only what the agency signed: the frontier must hash to the root of
                // the latest checkpoint, verified with the agency's key.
                let size = frontier.size();
                let note = log
                    .get((key, size - 1, CHECKPOINT, 0))?
                    .map(|v| v.value().to_vec())
                    .ok_or_else(|| {
                        StoreError::Corrupt("the latest checkpoint is missing".into())
                    })?;
                let known = self
                    .verified
                    .lock()
                    .ok()
                    .is_some_and(|m| m.get(key) == Some(&note));
                let cp = if known {
                    let n = Note::parse(&note).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    Checkpoint::parse(n.text()).map_err(|e| StoreError::Corrupt(e.to_string()))?
                } else {
                    rogatory_proto::audit::note::verify_checkpoint(&note, &signer.verifier(), &[])
                        .map_err(|e| {
                            StoreError::Corrupt(format!(
                                "the latest checkpoint does not verify: {e}"
                            ))
                        })?
                        .0
                };
                if cp.size != size
                    || cp.root != frontier.root()
                    || cp.origin != case_origin(signer.agency, case)
                {
                    return Err(StoreError::Corrupt(
                        "the stored log does not match its latest signed checkpoint; it will not be extended".into(),
                    ));
                }
            }
            for e in entries.iter_mut() {
                if &e.case_id != case {
                    return Err(StoreError::Request(format!(
                        "an entry of case {} cannot go into the log of case {case}",
                        e.case_id
                    )));
                }
                e.seq = frontier.size();
                let bytes = e
                    .to_cbor()
                    .map_err(|err| StoreError::Request(err.to_string()))?;
                fresh(
                    log.insert((key, e.seq, ENTRY, 0), bytes.as_slice())?
                        .is_none(),
                )?;
                for (level, index, h) in frontier.append(leaf_hash(&bytes)) {
                    fresh(
                        log.insert(node_key(key, level, index), h.as_slice())?
                            .is_none(),
                    )?;
                }
            }
            let cp = Checkpoint {
                origin: case_origin(signer.agency, case),
                size: frontier.size(),
                root: frontier.root(),
                extensions: Vec::new(),
            };
            let mut n = Note::new(&cp.body()).map_err(|e| StoreError::Request(e.to_string()))?;
            n.sign(&log_key_name(signer.agency), signer.key)
                .map_err(|e| StoreError::Request(e.to_string()))?;
            note = n.to_text().into_bytes();
            fresh(
                log.insert((key, frontier.size() - 1, CHECKPOINT, 0), note.as_slice())?
                    .is_none(),
            )?;
        }
        // The cache holds note bytes this process signed: if the transaction does not commit,
        // those bytes are never found on disk, so the entry is harmless.
        self.remember(case, &note);
        Ok(note)
    }

    /// Every case with a log.
    pub fn cases(&self) -> Result<Vec<CaseId>, StoreError> {
        let tx = self.begin_read()?;
        let cases = tx.open_table(CASES)?;
        let mut out = Vec::new();
        for row in cases.iter()? {
            let (k, _) = row?;
            out.push(CaseId::from_bytes(*k.value()));
        }
        Ok(out)
    }

    /// The number of entries in a case's log (0 if it has none).
    pub fn size(&self, case: &CaseId) -> Result<u64, StoreError> {
        let tx = self.begin_read()?;
        log_size(&tx.open_table(LOG)?, case.as_bytes())
    }

    /// The entries of a case's log, in order, with their stored bytes.
    pub fn entries(&self, case: &CaseId) -> Result<Vec<(AuditEntry, Vec<u8>)>, StoreError> {
        let tx = self.begin_read()?;
        let log = tx.open_table(LOG)?;
        let key = case.as_bytes();
        let mut out = Vec::new();
        for row in log.range((key, 0u64, 0u8, 0u64)..=(key, u64::MAX, u8::MAX, u64::MAX))? {
            let (k, v) = row?;
            if k.value().2 != ENTRY || k.value().3 != 0 {
                continue;
            }
            let bytes = v.value().to_vec();
            let e = AuditEntry::from_cbor(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("entry {}: {e}", k.value().1)))?;
            out.push((e, bytes));
        }
        Ok(out)
    }

    /// The signed checkpoint of a case at `size` (the latest when `None`).
    pub fn checkpoint(&self, case: &CaseId, size: Option<u64>) -> Result<Vec<u8>, StoreError> {
        let size = match size {
            Some(s) => s,
            None => self.size(case)?,
        };
        let tx = self.begin_read()?;
        let log = tx.open_table(LOG)?;
        if size == 0 {
            return Err(StoreError::Request(format!("case {case} has no log")));
        }
        match log.get((case.as_bytes(), size - 1, CHECKPOINT, 0))? {
            Some(v) => Ok(v.value().to_vec()),
            None => Err(StoreError::Request(format!(
                "case {case} has no checkpoint at size {size}"
            ))),
        }
    }

    /// A `tlog-proof` that entry `index` is in the log of size `size` (the latest when `None`),
    /// with the entry itself as the proof's extra data.
    pub fn prove(
        &self,
        case: &CaseId,
        index: u64,
        size: Option<u64>,
    ) -> Result<TlogProof, StoreError> {
        let key = case.as_bytes();
        let tx = self.begin_read()?;
        let src = NodeTable {
            table: tx.open_table(LOG)?,
            case: *key,
        };
        let current = log_size(&src.table, key)?;
        let size = size.unwrap_or(current);
        if size > current || size == 0 {
            return Err(StoreError::Request(format!(
                "case {case} has {current} entries; there is no tree of size {size}"
            )));
        }
        let checkpoint = src
            .table
            .get((key, size - 1, CHECKPOINT, 0))?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| {
                StoreError::Request(format!("case {case} has no checkpoint at size {size}"))
            })?;
        let proof = merkle::inclusion_proof(&src, index, size)?
            .map_err(|e| StoreError::Request(e.to_string()))?;
        let entry = src
            .table
            .get((key, index, ENTRY, 0))?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| StoreError::Corrupt(format!("entry {index} is missing")))?;
        Ok(TlogProof {
            extra: Some(entry),
            index,
            proof,
            checkpoint,
        })
    }

    /// A consistency proof from size `from` to size `to` (the latest when `None`).
    pub fn consistency(
        &self,
        case: &CaseId,
        from: u64,
        to: Option<u64>,
    ) -> Result<(u64, Vec<Hash>), StoreError> {
        let current = self.size(case)?;
        let to = to.unwrap_or(current);
        if to > current {
            return Err(StoreError::Request(format!(
                "case {case} has {current} entries, not {to}"
            )));
        }
        let tx = self.begin_read()?;
        let src = NodeTable {
            table: tx.open_table(LOG)?,
            case: *case.as_bytes(),
        };
        let p = merkle::consistency_proof(&src, from, to)?
            .map_err(|e| StoreError::Request(e.to_string()))?;
        Ok((to, p))
    }

    /// Every alert raised on this node, oldest first (none in a store written before alerts).
    pub fn alerts(&self) -> Result<Vec<(u64, Alert)>, StoreError> {
        let tx = self.begin_read()?;
        let t = match tx.open_table(ALERTS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let a = rogatory_proto::cbor::from_slice(v.value(), 1 << 20, "an alert")
                .map_err(corrupt)?;
            out.push((k.value(), a));
        }
        Ok(out)
    }

    /// Re-derives every case's tree from its stored entries and checks it against every stored
    /// subtree hash and every signed checkpoint. The work is proportional to the records stored,
    /// whatever keys an attacker wrote.
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let tx = self.begin_read()?;
        let log = tx.open_table(LOG)?;
        let mut registered = std::collections::BTreeSet::new();
        for row in tx.open_table(CASES)?.iter()? {
            registered.insert(*row?.0.value());
        }
        // Every case that has records, found by seeking past each case's key range.
        let mut cases = registered.clone();
        let mut from = [0u8; 16];
        loop {
            let next = log.range((&from, 0u64, 0u8, 0u64)..)?.next().transpose()?;
            let Some((k, _)) = next else { break };
            let c = *k.value().0;
            cases.insert(c);
            match u128::from_be_bytes(c).checked_add(1) {
                Some(n) => from = n.to_be_bytes(),
                None => break,
            }
        }
        for key in cases {
            report.cases += 1;
            let case = CaseId::from_bytes(key);
            let mut find = |entry: Option<u64>, problem: String| {
                report.findings.push(Finding {
                    case,
                    entry,
                    problem,
                });
            };
            if !registered.contains(&key) {
                find(
                    None,
                    "records are stored for a case that was never registered".into(),
                );
            }
            let mut tree = MemoryTree::new();
            let mut contiguous = true;
            let mut next_entry = 0u64;
            let mut checkpoints = Vec::new();
            let mut nodes = Vec::new();
            let mut records = 0u64;
            for row in log.range((&key, 0u64, 0u8, 0u64)..=(&key, u64::MAX, u8::MAX, u64::MAX))? {
                let (k, v) = row?;
                let (_, leaf, kind, x) = k.value();
                records += 1;
                match kind {
                    ENTRY if x == 0 => {
                        if leaf != next_entry {
                            find(
                                Some(next_entry),
                                if leaf == next_entry + 1 {
                                    "the entry is missing".to_string()
                                } else {
                                    format!("entries {next_entry} to {} are missing", leaf - 1)
                                },
                            );
                            contiguous = false;
                        }
                        next_entry = leaf.saturating_add(1);
                        let bytes = v.value();
                        match AuditEntry::from_cbor(bytes) {
                            Ok(e) if e.seq == leaf && e.case_id == case => {}
                            Ok(_) => find(
                                Some(leaf),
                                "the entry names another position or case".into(),
                            ),
                            Err(e) => find(Some(leaf), format!("the entry does not decode: {e}")),
                        }
                        match log.get(node_key(&key, 0, leaf))? {
                            Some(h) if h.value() == leaf_hash(bytes).as_slice() => {}
                            Some(_) => find(
                                Some(leaf),
                                "the entry was changed after it was logged: its hash differs from the logged leaf hash".into(),
                            ),
                            None => find(Some(leaf), "the logged leaf hash is missing".into()),
                        }
                        if contiguous {
                            tree.push(bytes);
                        }
                        report.entries += 1;
                    }
                    NODE => nodes.push((x, leaf, v.value().to_vec())),
                    CHECKPOINT if x == 0 => {
                        checkpoints.push((leaf.saturating_add(1), v.value().to_vec()))
                    }
                    _ => find(
                        Some(leaf),
                        format!(
                            "a record of unknown kind or key ({kind}, {x}) is stored at this entry"
                        ),
                    ),
                }
            }
            if records == 0 {
                find(
                    None,
                    "the case is registered but its log is empty: it was deleted".into(),
                );
                continue;
            }
            // Every stored subtree hash must be the one the entries give: proofs are built from them.
            let mut stored_nodes = 0u64;
            for (level, leaf, hash) in nodes {
                let level = u32::try_from(level).unwrap_or(u32::MAX);
                let span = 1u64.checked_shl(level).unwrap_or(0);
                let aligned = span != 0 && leaf.checked_add(1).is_some_and(|l| l % span == 0);
                if !aligned {
                    find(
                        Some(leaf),
                        format!(
                            "a subtree hash of level {level} is stored at a key no append writes"
                        ),
                    );
                    continue;
                }
                let index = ((leaf + 1) >> level) - 1;
                if leaf >= tree.size() {
                    find(
                        Some(leaf),
                        format!("a subtree hash ({level}, {index}) lies beyond the entries"),
                    );
                    continue;
                }
                stored_nodes += 1;
                if tree.node(level, index).ok().as_ref().map(|h| h.as_slice())
                    != Some(hash.as_slice())
                {
                    let (first, last) = (index << level, leaf);
                    if level == 0 {
                        find(
                            Some(leaf),
                            "the stored leaf hash differs from the entry".into(),
                        );
                    } else {
                        find(
                            None,
                            format!(
                                "the stored subtree hash ({level}, {index}) over entries {first} to {last} differs from those entries"
                            ),
                        );
                    }
                }
            }
            let n = tree.size();
            let expected_nodes: u64 = (0..64).map(|l| n >> l).sum();
            if contiguous && stored_nodes < expected_nodes {
                find(
                    None,
                    format!(
                        "{} subtree hashes are missing",
                        expected_nodes - stored_nodes
                    ),
                );
            }
            let mut latest = 0u64;
            let mut matched = 0u64;
            let origin = case_origin_from(verifier, &case);
            for (at, note) in checkpoints {
                report.checkpoints += 1;
                latest = latest.max(at);
                match rogatory_proto::audit::note::verify_checkpoint(&note, verifier, &[]) {
                    Err(e) => find(
                        None,
                        format!("the checkpoint at size {at} does not verify: {e}"),
                    ),
                    Ok((cp, _)) if cp.size != at || cp.origin != origin => find(
                        None,
                        format!(
                            "the checkpoint stored at size {at} is for size {} of {}",
                            cp.size, cp.origin
                        ),
                    ),
                    Ok((cp, _)) => {
                        if at > n {
                            find(
                                Some(n),
                                format!(
                                    "the checkpoint at size {at} signs entries that are no longer stored (only {n} are)"
                                ),
                            );
                        } else if merkle::root(&tree, at).ok() == Some(cp.root) {
                            matched = at;
                        } else {
                            find(
                                Some(matched),
                                if matched == at - 1 {
                                    format!(
                                        "the entry no longer hashes to the root signed at size {at}"
                                    )
                                } else {
                                    format!(
                                        "entries {matched} to {} no longer hash to the root signed at size {at}",
                                        at - 1
                                    )
                                },
                            );
                        }
                    }
                }
            }
            if latest > next_entry {
                find(
                    Some(next_entry),
                    if latest == next_entry + 1 {
                        "the entry is missing".to_string()
                    } else {
                        format!("entries {next_entry} to {} are missing", latest - 1)
                    },
                );
            } else if contiguous && latest < next_entry {
                find(
                    None,
                    format!(
                        "the latest checkpoint is at size {latest} but {next_entry} entries are stored (a checkpoint was rolled back or removed)"
                    ),
                );
            }
        }
        // Name each changed entry once.
        report.findings.dedup();
        self.verify_records(verifier, &mut report)?;
        Ok(report)
    }

    /// Checks every sealed record's signature with the agency's key (the verifier key's): a
    /// record changed, moved to another key or table, or written by another key is named.
    fn verify_records(
        &self,
        verifier: &NoteVerifier,
        report: &mut VerifyReport,
    ) -> Result<(), StoreError> {
        let tx = self.begin_read()?;
        let key = verifier.key();
        let found = |case: CaseId, table: &str, k: &[u8], v: &[u8], report: &mut VerifyReport| {
            report.records += 1;
            if let Err(why) = sealed::check(key, table, k, v) {
                report.findings.push(Finding {
                    case,
                    entry: None,
                    problem: format!(
                        "the {} record ({}) was altered: {why}",
                        table,
                        sealed::describe(table, k)
                    ),
                });
            }
        };
        for row in tx.open_table(CASE_RECORDS)?.iter()? {
            let (k, v) = row?;
            found(
                CaseId::from_bytes(*k.value()),
                CASE_RECORDS_NAME,
                k.value(),
                v.value(),
                report,
            );
        }
        for row in tx.open_table(EVIDENCE)?.iter()? {
            let (k, v) = row?;
            let (case, item) = k.value();
            found(
                CaseId::from_bytes(*case),
                EVIDENCE_NAME,
                &evidence_key(case, item),
                v.value(),
                report,
            );
        }
        for row in tx.open_table(RECEIVED)?.iter()? {
            let (k, v) = row?;
            // The inbox record's case is inside its sealing: the node log stands for it.
            found(NODE_LOG, RECEIVED_NAME, k.value(), v.value(), report);
        }
        Ok(())
    }
}

/// An append only adds records; finding one already there means the store was altered.
fn fresh(was_empty: bool) -> Result<(), StoreError> {
    if was_empty {
        Ok(())
    } else {
        Err(StoreError::Corrupt(
            "a record the append would write already exists; the log was altered".into(),
        ))
    }
}

fn case_origin_from(verifier: &NoteVerifier, case: &CaseId) -> String {
    format!("{}/case/{case}", verifier.name())
}

struct NodeTable<T> {
    table: T,
    case: [u8; 16],
}

impl<T: ReadableTable<(&'static [u8; 16], u64, u8, u64), &'static [u8]>> NodeSource
    for NodeTable<T>
{
    type Error = StoreError;
    fn node(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        let v = self
            .table
            .get(node_key(&self.case, level, index))?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("subtree hash ({level}, {index}) is missing"))
            })?;
        v.value().try_into().map_err(|_| {
            StoreError::Corrupt(format!("subtree hash ({level}, {index}) is not 32 bytes"))
        })
    }
}

/// The key of an evidence record in the sealing's associated data: case ‖ record key.
fn evidence_key(case: &[u8; 16], key: &str) -> Vec<u8> {
    let mut k = case.to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}
