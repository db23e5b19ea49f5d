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
    #[allow(clippy::too_many_arguments)]
    pub(super) fn settle(
        &mut self,
        batch: &mut Batch<'_>,
        id: [u8; 32],
        by: &AgencyId,
        receipt: &[u8],
        event: ReceiptEvent,
        reason: Option<u16>,
        cosigned: Cosigned,
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
            self.check_cosignature(batch, &entry, by, receipt, cosigned)?;
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
        let took = e.time.saturating_sub(entry.sealed_at);
        batch.settle(entry, receipt, state)?;
        batch.append(&self.signer(), &case, &mut [e])?;
        self.counters.settled(
            (state == OutboxState::Rejected)
                .then(|| rogatory_proto::receipt::ReasonCode::from(reason.unwrap_or_default())),
            took,
        );
        Ok(Some(state))
    }

    /// Checks the addressee's cosignature in an accepted receipt against the checkpoint the
    /// envelope carried (spec/PROTOCOL.md §6.6), unless the event loop checked it already
    /// (`cosigned`). The receipt is verified and kept either way (it proves delivery); a
    /// cosignature that is missing where a checkpoint was carried, or that does not verify,
    /// raises an alert.
    pub(super) fn check_cosignature(
        &mut self,
        batch: &mut Batch<'_>,
        entry: &crate::store::OutboxEntry,
        by: &AgencyId,
        receipt: &[u8],
        cosigned: Cosigned,
    ) -> Result<()> {
        let problem = match cosigned {
            Cosigned::Fine => None,
            Cosigned::Problem(detail) => Some(detail),
            Cosigned::Unchecked => {
                // The cosignature is made with the key that signed the receipt.
                let kid = rogatory_proto::receipt::signer_key_id(receipt).unwrap_or_default();
                let Some(card) = self.trust.card_for_key(by, &kid) else {
                    return Ok(());
                };
                let cosignature = rogatory_proto::receipt::decode_verified_earlier(receipt)
                    .ok()
                    .and_then(|r| r.receipt.cosignature);
                self.cosignatures
                    .check(&entry.envelope, cosignature.as_deref(), &card, &self.limits)
                    .map_err(|e| anyhow!("{e}"))?
                    .err()
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

/// What was found of a partner's cosignature in an accepted receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cosigned {
    /// Not checked yet: the worker checks it.
    Unchecked,
    /// None was due (the envelope carried no checkpoint) or it verifies.
    Fine,
    /// Missing or not verifying: what is wrong, for the alert.
    Problem(String),
}

/// Checks partners' cosignatures of this node's checkpoints (spec/PROTOCOL.md §6.6),
/// remembering those verified: a partner cosigns each checkpoint once a second, so the
/// envelopes that carried the same checkpoint get the same cosignature, verified once.
#[derive(Debug, Default)]
pub struct Cosignatures {
    verified: std::collections::HashSet<Sha256Digest>,
}

impl Cosignatures {
    /// Checks `cosignature`, from an accepted receipt already verified, of the checkpoint
    /// `envelope` carried, by the partner whose `card` is pinned. The outer `Err` is an
    /// envelope of this node that does not parse; the inner one the problem to raise an alert
    /// for.
    pub fn check(
        &mut self,
        envelope: &[u8],
        cosignature: Option<&[u8]>,
        card: &AgencyCard,
        limits: &Limits,
    ) -> Result<Result<(), String>, String> {
        let Ok(info) = envelope::inspect(envelope, limits) else {
            return Err("an envelope in the outbox does not parse".into());
        };
        let Some(note) = info.checkpoint else {
            return Ok(Ok(()));
        };
        let by = card.id();
        let Some(line) = cosignature else {
            return Ok(Err(
                "the receipt carries no cosignature of our checkpoint".into()
            ));
        };
        let body = Note::parse(&note)
            .map(|n| n.text().to_string())
            .map_err(|e| format!("this node's checkpoint in the outbox does not parse: {e}"))?;
        let mut seen = sha2::Sha256::new();
        for part in [by.as_str().as_bytes(), body.as_bytes(), line] {
            seen.update((part.len() as u64).to_be_bytes());
            seen.update(part);
        }
        let seen = Sha256Digest(seen.finalize().into());
        if self.verified.contains(&seen) {
            return Ok(Ok(()));
        }
        let witness = witness::witness_verifier(&log_key_name(by), card.signing_key())
            .map_err(|e| format!("{by}'s witness key: {e}"))?;
        match std::str::from_utf8(line)
            .map_err(|_| "the cosignature is not text".to_string())
            .and_then(|l| {
                witness::verify_cosignature(&body, l, &witness).map_err(|e| e.to_string())
            }) {
            Ok(_) => {
                if self.verified.len() >= 4096 {
                    self.verified.clear();
                }
                self.verified.insert(seen);
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(format!(
                "the cosignature of our checkpoint does not verify: {e}"
            ))),
        }
    }
}
