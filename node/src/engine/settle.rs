//! Settling a sent envelope with its verified receipt: the outbox entry, the
//! `receipt-received` entry, a proposal the partner refused, the partner's cosignature checked.

use anyhow::{Result, anyhow};
use rogatory_proto::audit::entry::{AuditEvent, log_key_name};
use rogatory_proto::audit::note::Note;
use rogatory_proto::audit::witness::{self};
use rogatory_proto::envelope::{self};
use rogatory_proto::ids::{AgencyId, Sha256Digest};
use rogatory_proto::receipt::ReceiptEvent;
use sha2::Digest;

use super::*;
use crate::store::{Batch, OutboxState};

impl Engine {
    /// Records a verified receipt: settles the outbox entry and logs `receipt-received`.
    /// Returns the entry's state (unchanged if it was settled already).
    pub(super) fn settle(
        &mut self,
        batch: &mut Batch<'_>,
        id: [u8; 32],
        by: &AgencyId,
        receipt: &[u8],
        event: ReceiptEvent,
        reason: Option<u16>,
    ) -> Result<Option<OutboxState>> {
        let Some(entry) = batch.outbox_entry(&id)? else {
            tracing::warn!("a receipt for an envelope that is not in the outbox");
            return Ok(None);
        };
        if entry.state != OutboxState::Queued || &entry.to != by {
            return Ok(Some(entry.state));
        }
        let state = match event {
            ReceiptEvent::Accepted => OutboxState::Delivered,
            ReceiptEvent::Rejected => OutboxState::Rejected,
        };
        let case = entry.case_id;
        if state == OutboxState::Rejected {
            // A proposal the requested side refused is shown refused on both sides.
            let detail = rogatory_proto::receipt::decode_verified_earlier(receipt)
                .ok()
                .and_then(|r| r.receipt.detail)
                .unwrap_or_else(|| "refused by the partner".into());
            let now = rogatory_proto::time::now_unix();
            crate::cases::proposal_refused(batch, &case, &Sha256Digest(id), detail, now)?;
        }
        if state == OutboxState::Delivered {
            self.check_cosignature(batch, &entry, by, receipt)?;
        }
        let mut e = audit_entry(
            self.me.card.id(),
            &case,
            rogatory_proto::time::now_unix(),
            AuditEvent::ReceiptReceived,
            by,
            Sha256Digest(id),
        );
        e.receipt_hash = Some(Sha256Digest::of(receipt));
        e.reason = reason;
        batch.settle(entry, receipt, state)?;
        batch.append(&self.signer(), &case, &mut [e])?;
        Ok(Some(state))
    }

    /// Checks the addressee's cosignature in an accepted receipt against the checkpoint the
    /// envelope carried (spec/PROTOCOL.md §6.6). The receipt is verified and kept either way
    /// (it proves delivery); a cosignature that is missing where a checkpoint was carried, or
    /// that does not verify, raises an alert.
    pub(super) fn check_cosignature(
        &mut self,
        batch: &mut Batch<'_>,
        entry: &crate::store::OutboxEntry,
        by: &AgencyId,
        receipt: &[u8],
    ) -> Result<()> {
        let Ok(info) = envelope::inspect(&entry.envelope, &self.limits) else {
            return Err(anyhow!("an envelope in the outbox does not parse"));
        };
        let Some(note) = info.checkpoint else {
            return Ok(());
        };
        let Some(card) = self.trusted.iter().find(|c| c.id() == by) else {
            return Ok(());
        };
        let cosignature = rogatory_proto::receipt::decode_verified_earlier(receipt)
            .ok()
            .and_then(|r| r.receipt.cosignature);
        let body = Note::parse(&note)
            .map(|n| n.text().to_string())
            .map_err(|e| anyhow!("this node's checkpoint in the outbox does not parse: {e}"))?;
        let problem = match cosignature {
            None => Some("the receipt carries no cosignature of our checkpoint".to_string()),
            Some(line) => {
                // The partner cosigns each checkpoint once a second: the envelopes of one batch
                // carry the same checkpoint and get the same cosignature, verified once.
                let mut seen = sha2::Sha256::new();
                for part in [by.as_str().as_bytes(), body.as_bytes(), &line] {
                    seen.update((part.len() as u64).to_be_bytes());
                    seen.update(part);
                }
                let seen = Sha256Digest(seen.finalize().into());
                if self.cosignatures_verified.contains(&seen) {
                    None
                } else {
                    let witness = witness::witness_verifier(&log_key_name(by), card.signing_key())
                        .map_err(|e| anyhow!("{by}'s witness key: {e}"))?;
                    match std::str::from_utf8(&line)
                        .map_err(|_| "the cosignature is not text".to_string())
                        .and_then(|l| {
                            witness::verify_cosignature(&body, l, &witness)
                                .map_err(|e| e.to_string())
                        }) {
                        Ok(_) => {
                            if self.cosignatures_verified.len() >= 4096 {
                                self.cosignatures_verified.clear();
                            }
                            self.cosignatures_verified.insert(seen);
                            None
                        }
                        Err(e) => Some(format!(
                            "the cosignature of our checkpoint does not verify: {e}"
                        )),
                    }
                }
            }
        };
        if let Some(detail) = problem {
            tracing::error!(peer = %by, case = %entry.case_id, "ALERT: {detail}");
            batch.raise_alert(&crate::store::Alert {
                at: rogatory_proto::time::now_unix(),
                peer: by.clone(),
                case_id: entry.case_id,
                kind: "bad-cosignature".into(),
                detail,
                envelope_id: Some(Sha256Digest::of(&entry.envelope)),
            })?;
        }
        Ok(())
    }
}
