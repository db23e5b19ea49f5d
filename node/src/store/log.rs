//! The per-case audit logs in the store: records keyed by the leaf whose append created them,
//! the append (frontier, subtree hashes, a checkpoint signed in the same transaction), proofs.

use redb::ReadableTable;
use rogatory_proto::audit::entry::{AuditEntry, case_origin, log_key_name};
use rogatory_proto::audit::merkle::{self, Frontier, Hash, NodeSource, leaf_hash};
use rogatory_proto::audit::note::{Checkpoint, Note, NoteVerifier, SIG_ED25519, TlogProof};
use rogatory_proto::ids::{AgencyId, CaseId};
use rogatory_proto::keys::SigningKey;

use super::*;

type LogKey<'a> = (&'a [u8; 16], u64, u8, u64);

/// The size of a case's log: its last record's leaf plus one.
pub(super) fn log_size<T: ReadableTable<LogKey<'static>, &'static [u8]>>(
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

impl Store {
    fn remember(&self, case: &CaseId, note: &[u8]) {
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= VERIFIED_CACHE {
                m.clear();
            }
            m.insert(*case.as_bytes(), note.to_vec());
        }
    }

    /// The frontier a batch extends a case's log from: the stored tip, checked against the
    /// latest checkpoint the agency signed (an altered log is never extended). A case without a
    /// log gets one, empty, registered in `cases`.
    pub(super) fn frontier_in(
        &self,
        tx: &redb::WriteTransaction,
        signer: &LogSigner<'_>,
        case: &CaseId,
    ) -> Result<Frontier, StoreError> {
        let key = case.as_bytes();
        let log = tx.open_table(LOG)?;
        let frontier = tip(&log, key)?;
        if frontier.size() == 0 {
            let mut cases = tx.open_table(CASES)?;
            if cases.get(key)?.is_some() {
                return Err(StoreError::Corrupt(format!(
                    "case {case} is registered but its log is empty: it was deleted"
                )));
            }
            cases.insert(key, 0)?;
            return Ok(frontier);
        }
        // Extend only what the agency signed: the frontier must hash to the root of the latest
        // checkpoint, verified with the agency's key.
        let size = frontier.size();
        let note = log
            .get((key, size - 1, CHECKPOINT, 0))?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| StoreError::Corrupt("the latest checkpoint is missing".into()))?;
        let known = self
            .verified
            .lock()
            .ok()
            .is_some_and(|m| m.get(key) == Some(&note));
        let cp = if known {
            let n = Note::parse(&note).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Checkpoint::parse(n.text()).map_err(|e| StoreError::Corrupt(e.to_string()))?
        } else {
            let first =
                rogatory_proto::audit::note::verify_checkpoint(&note, &signer.verifier(), &[]);
            // Signed before a rotation: with the key of the time.
            self.earlier
                .iter()
                .filter_map(|k| {
                    NoteVerifier::new(&log_key_name(signer.agency), SIG_ED25519, k).ok()
                })
                .fold(first, |r, v| {
                    r.or_else(|_| rogatory_proto::audit::note::verify_checkpoint(&note, &v, &[]))
                })
                .map_err(|e| {
                    StoreError::Corrupt(format!("the latest checkpoint does not verify: {e}"))
                })?
                .0
        };
        if cp.size != size
            || cp.root != frontier.root()
            || cp.origin != case_origin(signer.agency, case)
        {
            return Err(StoreError::Corrupt(
                "the stored log does not match its latest signed checkpoint; it will not be extended"
                    .into(),
            ));
        }
        Ok(frontier)
    }

    /// Writes entries at the end of a case's log (each entry's `seq` assigned here) with the
    /// subtree hashes they complete, extending `frontier`. No checkpoint: see [`Store::sign_in`].
    pub(super) fn write_entries(
        tx: &redb::WriteTransaction,
        case: &CaseId,
        frontier: &mut Frontier,
        entries: &mut [AuditEntry],
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Err(StoreError::Request("nothing to append".into()));
        }
        let key = case.as_bytes();
        let mut log = tx.open_table(LOG)?;
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
        Ok(())
    }

    /// Signs the checkpoint of a case's log at `frontier` and writes it as the log's last
    /// record; returns the signed note.
    pub(super) fn sign_in(
        &self,
        tx: &redb::WriteTransaction,
        agency: &AgencyId,
        key: &SigningKey,
        case: &CaseId,
        frontier: &Frontier,
    ) -> Result<Vec<u8>, StoreError> {
        let cp = Checkpoint {
            origin: case_origin(agency, case),
            size: frontier.size(),
            root: frontier.root(),
            extensions: Vec::new(),
        };
        let mut n = Note::new(&cp.body()).map_err(|e| StoreError::Request(e.to_string()))?;
        n.sign(&log_key_name(agency), key)
            .map_err(|e| StoreError::Request(e.to_string()))?;
        let note = n.to_text().into_bytes();
        let mut log = tx.open_table(LOG)?;
        fresh(
            log.insert(
                (case.as_bytes(), frontier.size() - 1, CHECKPOINT, 0),
                note.as_slice(),
            )?
            .is_none(),
        )?;
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

pub(super) struct NodeTable<T> {
    pub(super) table: T,
    pub(super) case: [u8; 16],
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
