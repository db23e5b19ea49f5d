//! The node's embedded store (redb), and in it one verifiable audit log per case.
//!
//! ```text
//! meta    "format" → u64                                        STORE_FORMAT
//!         "table:NAME" → u64                                     each table's version, TABLES
//!         "queue-next" → u64                                     the next queue order
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
//! `drafts` (drafts waiting for approval, sealed) is in `store/drafts.rs`; it was added within format 2.
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
//! on (docs/benchmarks.md, "Audit log"). The last record of a case is always its latest checkpoint (once committed), so the
//! log's size is that record's leaf plus one, and its right frontier is the stored nodes of the
//! size's perfect subtrees: no separate state is rewritten on each append. Before signing a new
//! checkpoint, an append checks that the frontier it extends still hashes to the root of the
//! latest checkpoint, verified with the agency's key: a store altered on disk is never extended
//! and re-signed, it is refused.
//!
//! An append (one entry or a batch) is one write transaction: the entries, the new subtree
//! hashes and a checkpoint signed with the agency key; it never overwrites a record. A
//! [`Batch`] of many appends signs one checkpoint per case, when it commits (or at once, by
//! [`Batch::append_signed`]); between the two, the case's last records are entries. It returns only after
//! redb's commit has reached the disk (`Durability::Immediate`), so what it reports appended is
//! durable. Appending reads nothing but the frontier: O(log n) work, never a rehash of the log.
//! The formats are pinned by the known-answer test in `tests/it/store.rs`.
//!
//! A backend other than redb (docs/high-availability.md) would stand behind the same two types:
//! [`Store`] (reads, each in one snapshot, beside the writer) and [`Batch`] (one serializable
//! write transaction, durable on every machine that may take over when [`Batch::commit`]
//! returns, with the case's tree head compared and swapped in the transaction that signs a new
//! checkpoint, so that a node fenced off mid-commit can never sign a second head of one size).

/// Copies every row of each table from the read transaction `$rx` into the write transaction
/// `$wx` (a table `$rx` does not have is made empty): backups and migrations.
macro_rules! copy_tables {
    ($rx:expr, $wx:expr, $($table:expr),* $(,)?) => {$({
        let mut to = $wx.open_table($table)?;
        match $rx.open_table($table) {
            Ok(from) => {
                for row in from.iter()? {
                    let (k, v) = row?;
                    to.insert(k.value(), v.value())?;
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
    })*};
}

pub mod backup;
mod batch;
mod counts;
mod drafts;
mod log;
pub mod migrate;
pub mod records;
pub mod sealed;
mod verify;

use std::path::{Path, PathBuf};

pub use batch::Batch;
pub use counts::Counts;
pub use log::LogSigner;
pub use records::{
    Alert, Draft, DraftState, MAX_OUTBOX_ENTRY, NODE_LOG, OutboxEntry, OutboxState, ROUTINE,
    Received, unwrap_envelope_key, wrap_envelope_key,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use rogatory_proto::audit::entry::AuditEntry;
use rogatory_proto::audit::merkle::{NodeSource, leaf_hash};
use rogatory_proto::ids::CaseId;
pub use sealed::RecordKeys;
pub use verify::{Finding, VerifyReport};

/// File name of the store in a data directory.
pub const STORE_FILE: &str = "rogatory.redb";
/// redb's page cache: bounded, so a node's memory does not grow with its store (redb's default
/// is 1 GiB).
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;
/// Version of the stored formats; a store of another version is refused, never rewritten.
/// Format 2 seals case, evidence and inbox records ([`sealed`]); format 1 kept them in clear.
pub const STORE_FORMAT: u64 = 2;

/// Every table, with the version of what it stores (kept in `meta` as `table:NAME`, checked at
/// every open; spec/BACKUP.md §4): a change to a table's keys or values raises its version and
/// the store's format, and comes with a migration. `received`, `case-records` and `evidence`
/// became sealed in format 2; `drafts` came with it.
pub const TABLES: &[(&str, u64)] = &[
    ("meta", 1),
    ("cases", 1),
    ("log", 1),
    ("inbox", 1),
    ("receipts", 1),
    ("outbox", 1),
    ("queue", 1),
    ("received", 2),
    ("chain-in", 1),
    ("chain-out", 1),
    ("case-records", 2),
    ("evidence", 2),
    ("witnessed", 1),
    ("witness-out", 1),
    ("alerts", 1),
    ("drafts", 1),
];

/// Writes each table's version where `meta` has none, and refuses a table of another version.
fn table_versions(meta: &mut redb::Table<'_, &str, u64>) -> Result<(), StoreError> {
    for (name, version) in TABLES {
        let key = format!("table:{name}");
        let found = meta.get(key.as_str())?.map(|v| v.value());
        match found {
            None => {
                meta.insert(key.as_str(), version)?;
            }
            Some(v) if v == *version => {}
            Some(found) => {
                return Err(StoreError::Table {
                    table: name,
                    found,
                    want: *version,
                });
            }
        }
    }
    Ok(())
}

/// Refuses a table whose version `meta` gives and this release does not write.
fn check_table_versions(meta: &impl ReadableTable<&'static str, u64>) -> Result<(), StoreError> {
    for (name, version) in TABLES {
        let found = meta
            .get(format!("table:{name}").as_str())?
            .map(|v| v.value());
        if let Some(found) = found.filter(|f| f != version) {
            return Err(StoreError::Table {
                table: name,
                found,
                want: *version,
            });
        }
    }
    Ok(())
}

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
    /// A table written in another version than this release's.
    #[error(
        "the store's table {table} is of version {found}; this software reads version {want} (spec/BACKUP.md §4)"
    )]
    Table {
        /// The table.
        table: &'static str,
        /// The version found.
        found: u64,
        /// This release's.
        want: u64,
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

fn closed() -> StoreError {
    StoreError::Db("the store is closed after an I/O error; the next write reopens it".into())
}

fn corrupt<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// The node's store.
pub struct Store {
    /// The database; replaced by a fresh open after an I/O error ([`Store::batch`]).
    db: std::sync::RwLock<Db>,
    /// The database file (for a reopen).
    file: PathBuf,
    /// The keys case, evidence and inbox records are sealed with ([`Store::with_record_keys`]).
    records: Option<RecordKeys>,
    /// Checkpoints whose signature this process already verified or made, by case: the exact
    /// note bytes, so an append re-verifies only a checkpoint it has not seen (the bytes decide
    /// the signature's validity, so a note changed on disk is verified again).
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 16], Vec<u8>>>,
    /// The agency's signing keys before its current one ([`Store::with_earlier_keys`]): a log
    /// whose latest checkpoint one of them signed is still extended.
    earlier: Vec<rogatory_proto::keys::VerifyingKey>,
    /// Audit entries appended by committed transactions since this store was opened (for
    /// `GET /metrics`).
    appended: std::sync::atomic::AtomicU64,
}

/// Cases whose latest checkpoint is remembered as verified; beyond this the memory is cleared.
const VERIFIED_CACHE: usize = 10_000;

enum Db {
    ReadWrite(Database),
    ReadOnly(redb::ReadOnlyDatabase),
    /// Closed after an I/O error, not yet reopened.
    Closed,
}
impl Store {
    /// Opens the store in `dir`, creating it if needed; refuses another format version.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        // Restored from a backup and not resumed: nothing may be written (spec/BACKUP.md §3).
        if dir.join(backup::RESTORED_FILE).exists() {
            return Err(StoreError::Request(format!(
                "{} was restored from a backup and is held until `rogatory restore --resume` (spec/BACKUP.md §3)",
                dir.display()
            )));
        }
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
            table_versions(&mut meta)?;
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
            tx.open_table(drafts::DRAFTS)?;
        }
        tx.commit()?;
        // The store holds what the case records hold: only its owner reads it.
        crate::files::restrict(&dir.join(STORE_FILE))
            .map_err(|e| StoreError::Db(format!("{e:#}")))?;
        Ok(Self {
            db: std::sync::RwLock::new(Db::ReadWrite(db)),
            file: dir.join(STORE_FILE),
            records: None,
            verified: Default::default(),
            earlier: Vec::new(),
            appended: Default::default(),
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
        let meta = tx.open_table(META)?;
        let found = meta.get("format")?.map(|v| v.value());
        if found != Some(STORE_FORMAT) {
            return Err(StoreError::Format {
                found: found.unwrap_or(0),
            });
        }
        check_table_versions(&meta)?;
        drop(meta);
        drop(tx);
        Ok(Self {
            db: std::sync::RwLock::new(Db::ReadOnly(db)),
            file: dir.join(STORE_FILE),
            records: None,
            verified: Default::default(),
            earlier: Vec::new(),
            appended: Default::default(),
        })
    }

    fn begin_read(&self) -> Result<redb::ReadTransaction, StoreError> {
        let db = self.db.read().map_err(|_| closed())?;
        Ok(match &*db {
            Db::ReadWrite(d) => d.begin_read()?,
            Db::ReadOnly(d) => d.begin_read()?,
            Db::Closed => return Err(closed()),
        })
    }

    fn begin_write(&self) -> Result<redb::WriteTransaction, redb::TransactionError> {
        let db = self
            .db
            .read()
            .map_err(|_| redb::TransactionError::Storage(redb::StorageError::PreviousIo))?;
        match &*db {
            Db::ReadWrite(d) => d.begin_write(),
            // A closed store is reopened by the caller (`batch`).
            Db::ReadOnly(_) | Db::Closed => Err(redb::TransactionError::Storage(
                redb::StorageError::PreviousIo,
            )),
        }
    }

    /// Closes the database and opens it again: after an I/O error (a full disk, say) redb
    /// refuses every transaction until then. Opening restores the last committed state; if it
    /// cannot yet (the disk is still full), the store stays closed and the next batch tries
    /// again.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut db = self.db.write().map_err(|_| closed())?;
        if matches!(&*db, Db::ReadOnly(_)) {
            return Err(StoreError::Request("the store was opened read-only".into()));
        }
        *db = Db::Closed;
        // Readers still holding a transaction of the old database keep its file open a moment.
        let mut last = None;
        for _ in 0..50 {
            match Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create(&self.file)
            {
                Ok(d) => {
                    *db = Db::ReadWrite(d);
                    tracing::warn!("the store was reopened after an I/O error");
                    return Ok(());
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        Err(StoreError::Db(format!(
            "cannot reopen the store after an I/O error: {}",
            last.map_or_else(|| "it is still in use".into(), |e| e.to_string())
        )))
    }

    /// The same store, able to read and write sealed records with `keys` (the node's).
    pub fn with_record_keys(mut self, keys: RecordKeys) -> Self {
        self.records = Some(keys);
        self
    }

    /// The same store, knowing the agency's signing keys before a rotation (its checkpoints
    /// signed with them are verified with them before a log is extended).
    pub fn with_earlier_keys(mut self, keys: Vec<rogatory_proto::keys::VerifyingKey>) -> Self {
        self.earlier = keys;
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

    /// Starts a write transaction (see [`Batch`]). After an I/O error, redb refuses every
    /// transaction of the open database: the store is then reopened first.
    pub fn batch(&self) -> Result<Batch<'_>, StoreError> {
        let tx = match self.begin_write() {
            Err(redb::TransactionError::Storage(redb::StorageError::PreviousIo)) => {
                self.reopen()?;
                self.begin_write()?
            }
            other => other?,
        };
        Ok(Batch {
            store: self,
            tx,
            appended: 0,
            unsigned: Default::default(),
            records: Default::default(),
            receipts: Vec::new(),
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
        let note = b.append_signed(signer, case, entries)?;
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

    /// Envelopes whose id starts with the hex digits `prefix`, received (`true`) or sent
    /// (`false`); at most `limit` of them. Read by key range: nothing is decoded or hashed.
    pub fn envelopes_starting_with(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<([u8; 32], bool)>, StoreError> {
        let digits: Vec<u8> = prefix
            .chars()
            .map(|c| c.to_digit(16).map(|d| d as u8))
            .collect::<Option<_>>()
            .filter(|d: &Vec<u8>| d.len() <= 64)
            .ok_or_else(|| StoreError::Request("an envelope id is hex digits".into()))?;
        let (mut low, mut high) = ([0u8; 32], [0xffu8; 32]);
        for (i, d) in digits.iter().enumerate() {
            let (byte, shift) = (i / 2, if i % 2 == 0 { 4 } else { 0 });
            low[byte] = (low[byte] & !(0xf << shift)) | (d << shift);
            high[byte] = (high[byte] & !(0xf << shift)) | (d << shift);
        }
        let tx = self.begin_read()?;
        let mut out = Vec::new();
        for (table, received) in [(RECEIVED, true), (OUTBOX, false)] {
            for row in tx.open_table(table)?.range::<&[u8; 32]>(&low..=&high)? {
                if out.len() >= limit {
                    break;
                }
                let (k, _) = row?;
                out.push((*k.value(), received));
            }
        }
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
        let note = b.append_signed(signer, &case, audit)?;
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
}

/// The key of an evidence record in the sealing's associated data: case ‖ record key.
fn evidence_key(case: &[u8; 16], key: &str) -> Vec<u8> {
    let mut k = case.to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}
