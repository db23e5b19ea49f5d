//! One write transaction ([`Batch`]): what the store worker does for many jobs, committed once.

use redb::ReadableTable;
use rogatory_proto::audit::entry::AuditEntry;
use std::collections::HashMap;

use rogatory_proto::audit::merkle::{self, Frontier, Hash};
use rogatory_proto::audit::witness::CarriedProof;
use rogatory_proto::ids::{AgencyId, CaseId};
use rogatory_proto::keys::SigningKey;
use rogatory_proto::receipt::Receipt;

use super::log::{LogSigner, NodeTable, log_size};
use super::*;

/// One write transaction: everything done through it becomes durable together at
/// [`Batch::commit`], or not at all. The daemon groups the work of many envelopes into one batch
/// (one fsync), and answers none of them before the commit returns.
///
/// What a batch signs, it signs once: appends to a case's log are written as they come, and the
/// case's new checkpoint is signed when the batch commits (or earlier, by
/// [`Batch::append_signed`], for a receipt that must carry it); a case record written several
/// times is sealed and signed once, at commit.
pub struct Batch<'s> {
    pub(super) store: &'s Store,
    pub(super) tx: redb::WriteTransaction,
    /// Audit entries appended in this batch, counted once it commits.
    pub(super) appended: u64,
    /// Logs appended to in this batch whose new checkpoint is not signed yet.
    pub(super) unsigned: HashMap<[u8; 16], Unsigned>,
    /// Case records written in this batch, sealed at commit.
    pub(super) records: HashMap<[u8; 16], records::CaseRecord>,
    /// Acceptance receipts to sign once the batch's checkpoints are signed, by envelope id.
    pub(super) receipts: Vec<([u8; 32], CaseId, Receipt)>,
}

/// A case log appended to in a batch, its new checkpoint not yet signed.
pub(super) struct Unsigned {
    /// The frontier after the entries written so far.
    frontier: Frontier,
    /// The size of the latest signed checkpoint (0: none yet).
    signed: u64,
    /// Who signs it.
    agency: AgencyId,
    key: SigningKey,
}

impl Batch<'_> {
    /// Signs the checkpoints and seals the case records the batch still holds, then makes
    /// everything in it durable (`Durability::Immediate`).
    pub fn commit(mut self) -> Result<(), StoreError> {
        if !self.receipts.is_empty() {
            return Err(StoreError::Corrupt(
                "a batch was committed with receipts it did not sign".into(),
            ));
        }
        self.sign_logs()?;
        for (_, r) in std::mem::take(&mut self.records) {
            self.write_case_record(&r)?;
        }
        self.tx.commit()?;
        self.store
            .appended
            .fetch_add(self.appended, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Appends entries to a case's log (see [`Store::append`]); the new checkpoint is signed
    /// when the batch commits, once for all of the case's appends in it.
    pub fn append(
        &mut self,
        signer: &LogSigner<'_>,
        case: &CaseId,
        entries: &mut [AuditEntry],
    ) -> Result<(), StoreError> {
        let key = *case.as_bytes();
        let mut u = match self.unsigned.remove(&key) {
            Some(u) => u,
            None => {
                let frontier = self.store.frontier_in(&self.tx, signer, case)?;
                Unsigned {
                    signed: frontier.size(),
                    frontier,
                    agency: signer.agency.clone(),
                    key: signer.key.clone(),
                }
            }
        };
        if let Err(e) = Store::write_entries(&self.tx, case, &mut u.frontier, entries) {
            // What was appended before stays to be signed.
            self.unsigned.insert(key, u);
            return Err(e);
        }
        if &u.agency != signer.agency || u.key.verifying_key() != signer.key.verifying_key() {
            u.agency = signer.agency.clone();
            u.key = signer.key.clone();
        }
        self.unsigned.insert(key, u);
        self.appended += entries.len() as u64;
        Ok(())
    }

    /// Signs the new checkpoint of every log appended to in this batch and not signed yet.
    pub fn sign_logs(&mut self) -> Result<(), StoreError> {
        for (case, u) in std::mem::take(&mut self.unsigned) {
            let case = CaseId::from_bytes(case);
            self.store
                .sign_in(&self.tx, &u.agency, &u.key, &case, &u.frontier)?;
        }
        Ok(())
    }

    /// Holds an acceptance receipt to sign once the batch's checkpoints are signed.
    pub fn defer_receipt(&mut self, envelope_id: [u8; 32], case: CaseId, receipt: Receipt) {
        self.receipts.push((envelope_id, case, receipt));
    }

    /// Whether the batch holds an unsigned receipt for this envelope.
    pub fn receipt_deferred(&self, envelope_id: &[u8; 32]) -> bool {
        self.receipts.iter().any(|(id, _, _)| id == envelope_id)
    }

    /// The receipts held unsigned, to sign and store.
    pub fn take_deferred_receipts(&mut self) -> Vec<([u8; 32], CaseId, Receipt)> {
        std::mem::take(&mut self.receipts)
    }

    /// Appends entries to a case's log and signs its new checkpoint now; returns it (a
    /// receipt carries the checkpoint that includes its envelope's entry).
    pub fn append_signed(
        &mut self,
        signer: &LogSigner<'_>,
        case: &CaseId,
        entries: &mut [AuditEntry],
    ) -> Result<Vec<u8>, StoreError> {
        self.append(signer, case, entries)?;
        let Some(u) = self.unsigned.remove(case.as_bytes()) else {
            return Err(StoreError::Corrupt(
                "an append was lost in its batch".into(),
            ));
        };
        self.store
            .sign_in(&self.tx, signer.agency, signer.key, case, &u.frontier)
    }

    /// The size of a case's log up to its latest signed checkpoint, as this batch sees it.
    fn signed_size(&self, case: &CaseId) -> Result<u64, StoreError> {
        match self.unsigned.get(case.as_bytes()) {
            Some(u) => Ok(u.signed),
            None => log_size(&self.tx.open_table(LOG)?, case.as_bytes()),
        }
    }

    /// Whether a case has a log, as this batch sees it (one started in it counts).
    pub fn has_log(&self, case: &CaseId) -> Result<bool, StoreError> {
        Ok(self.unsigned.contains_key(case.as_bytes()) || self.signed_size(case)? > 0)
    }

    /// The latest signed checkpoint of a case, as this batch sees it (`None` without one).
    pub fn checkpoint(&self, case: &CaseId) -> Result<Option<Vec<u8>>, StoreError> {
        let size = self.signed_size(case)?;
        if size == 0 {
            return Ok(None);
        }
        let log = self.tx.open_table(LOG)?;
        Ok(log
            .get((case.as_bytes(), size - 1, CHECKPOINT, 0))?
            .map(|v| v.value().to_vec()))
    }

    /// The latest checkpoint of a case as `signer` signs it now: the one stored, or, if an
    /// earlier key of the agency signed it (before a rotation), the same checkpoint signed
    /// again with the current key and stored in its place. The log itself is not touched.
    pub fn checkpoint_signed(
        &mut self,
        signer: &LogSigner<'_>,
        case: &CaseId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        use rogatory_proto::audit::note::Note;
        let Some(note) = self.checkpoint(case)? else {
            return Ok(None);
        };
        let parsed = Note::parse(&note).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id = signer.verifier().id();
        if parsed.signatures().iter().any(|s| s.id == id) {
            return Ok(Some(note));
        }
        let mut fresh = Note::new(parsed.text()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        fresh
            .sign(
                &rogatory_proto::audit::entry::log_key_name(signer.agency),
                signer.key,
            )
            .map_err(|e| StoreError::Request(e.to_string()))?;
        let bytes = fresh.to_text().into_bytes();
        let size = self.signed_size(case)?;
        let mut log = self.tx.open_table(LOG)?;
        log.insert((case.as_bytes(), size - 1, CHECKPOINT, 0), bytes.as_slice())?;
        Ok(Some(bytes))
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
        if let Some(r) = self.records.get(case.as_bytes()) {
            return Ok(Some(r.clone()));
        }
        let table = self.tx.open_table(CASE_RECORDS)?;
        let Some(v) = table.get(case.as_bytes())? else {
            return Ok(None);
        };
        self.store
            .open_record(CASE_RECORDS_NAME, case.as_bytes(), v.value(), "case record")
            .map(Some)
    }

    /// Stores a case's record (sealed when the batch commits).
    pub fn put_case_record(&mut self, r: &records::CaseRecord) -> Result<(), StoreError> {
        self.records.insert(*r.case_id.as_bytes(), r.clone());
        Ok(())
    }

    fn write_case_record(&mut self, r: &records::CaseRecord) -> Result<(), StoreError> {
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

    /// The proof an envelope for `to` carrying the checkpoint of size `size` needs
    /// (spec/PROTOCOL.md §6.6): from the checkpoint the previous envelope of that chain carried
    /// (what the addressee witnessed last) to this one; none for the first, or when the size has
    /// not grown. The inner `Err`: the log cannot prove it (damaged).
    pub fn carried_proof(
        &self,
        case: &CaseId,
        to: &AgencyId,
        size: Option<u64>,
    ) -> Result<Result<Option<CarriedProof>, merkle::ProofError>, StoreError> {
        match (self.witness_out(case, to)?, size) {
            (Some(old), Some(new)) if old > 0 && old < new => {
                Ok(self.consistency(case, old, new)?.map(|hashes| {
                    Some(CarriedProof {
                        old_size: old,
                        hashes,
                    })
                }))
            }
            _ => Ok(Ok(None)),
        }
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
