//! Receiving an envelope: the pipeline the daemon's `/rogatory/envelope/1` handler runs, and that
//! tests run directly.
//!
//! verify and open (`rogatory-proto`'s checks, in order) → de-duplicate by envelope id (a replay
//! gets the original receipt) → commit the envelope and its audit entry durably → only then sign
//! the receipt, store it, and return it. Anything refused gets a signed rejection receipt with its
//! reason code and an audit entry, and changes nothing else.
//!
//! Refusals whose case cannot be known (the envelope could not be opened) are logged in the
//! node's own log, the reserved case id [`NODE_LOG`].

use anyhow::{Context, Result};
use rogatory_proto::audit::entry::{Actor, AuditEntry, AuditEvent};
use rogatory_proto::card::AgencyCard;
use rogatory_proto::envelope::{self, Limits, Recipient};
use rogatory_proto::ids::{AgencyId, CaseId, EnvelopeId, Sha256Digest};
use rogatory_proto::receipt::{ReasonCode, Receipt, ReceiptEvent};

use crate::keydir::KeyDir;
use crate::store::{LogSigner, Store};

/// The case id of the node's own log (UUIDv7 with a zero timestamp and zero random bits): where
/// refusals are logged when the envelope's case cannot be read.
pub const NODE_LOG: CaseId = CaseId(uuid::Uuid::from_bytes([
    0, 0, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 0,
]));

/// What became of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted and stored; the receipt was signed after the commit.
    Accepted {
        /// The envelope.
        envelope_id: EnvelopeId,
        /// Its case.
        case_id: CaseId,
        /// The signed receipt.
        receipt: Vec<u8>,
    },
    /// Already accepted before: the original receipt, unchanged.
    Replay {
        /// The original receipt.
        receipt: Vec<u8>,
    },
    /// Refused; nothing was applied.
    Rejected {
        /// Why.
        reason: ReasonCode,
        /// The signed rejection receipt.
        receipt: Vec<u8>,
    },
}

/// Receives one envelope from `sender` (the agency the transport authenticated).
pub fn receive(
    store: &Store,
    me: &KeyDir,
    trusted: &[AgencyCard],
    sender: &AgencyId,
    bytes: &[u8],
    now: u64,
    limits: &Limits,
) -> Result<Outcome> {
    let id = Sha256Digest::of(bytes);
    if let Some(receipt) = store.receipt_for(&id.0)? {
        return Ok(Outcome::Replay { receipt });
    }
    let signer = LogSigner {
        agency: me.card.id(),
        key: &me.keys.signing,
    };
    let recipient = Recipient {
        card: &me.card,
        keys: &me.keys,
    };
    match envelope::open(bytes, &recipient, trusted, limits) {
        Ok(opened) => {
            if !store.has_envelope(&id.0)? {
                let mut entries = vec![entry(
                    me,
                    opened.case_id,
                    now,
                    AuditEvent::EnvelopeReceived,
                    &opened.info.from,
                    id,
                    None,
                )];
                store
                    .accept_envelope(&signer, &opened.case_id, &id.0, bytes, &mut entries)
                    .context("cannot store the envelope")?;
            }
            // Durable now: sign the acceptance, carrying our latest checkpoint of the case.
            let checkpoint = store.checkpoint(&opened.case_id, None).ok();
            let receipt = sign(
                me,
                id,
                &opened.info.from,
                ReceiptEvent::Accepted,
                None,
                now,
                checkpoint,
            )?;
            store.store_receipt(&id.0, &receipt)?;
            Ok(Outcome::Accepted {
                envelope_id: id,
                case_id: opened.case_id,
                receipt,
            })
        }
        Err(e) => {
            let reason = e.reason_code();
            let mut entries = vec![entry(
                me,
                NODE_LOG,
                now,
                AuditEvent::EnvelopeRejected,
                sender,
                id,
                Some(u16::from(reason)),
            )];
            store
                .append(&signer, &NODE_LOG, &mut entries)
                .context("cannot log the refusal")?;
            let receipt = sign(
                me,
                id,
                sender,
                ReceiptEvent::Rejected,
                Some((reason, e.to_string())),
                now,
                None,
            )?;
            Ok(Outcome::Rejected { reason, receipt })
        }
    }
}

fn entry(
    me: &KeyDir,
    case: CaseId,
    time: u64,
    event: AuditEvent,
    peer: &AgencyId,
    envelope: EnvelopeId,
    reason: Option<u16>,
) -> AuditEntry {
    AuditEntry {
        seq: 0,
        time,
        case_id: case,
        event,
        actor: Actor {
            agency: me.card.id().clone(),
            user: None,
        },
        peer: Some(peer.clone()),
        envelope_id: Some(envelope),
        receipt_hash: None,
        transition: None,
        reason,
        commitment: None,
    }
}

fn sign(
    me: &KeyDir,
    envelope_id: EnvelopeId,
    to: &AgencyId,
    event: ReceiptEvent,
    rejection: Option<(ReasonCode, String)>,
    now: u64,
    checkpoint: Option<Vec<u8>>,
) -> Result<Vec<u8>> {
    let (reason, detail) = match rejection {
        Some((r, d)) => (Some(r), Some(d)),
        None => (None, None),
    };
    let r = Receipt {
        version: envelope::PROTOCOL_VERSION,
        envelope_id,
        from: me.card.id().clone(),
        to: to.clone(),
        event,
        reason,
        detail,
        received_at: now,
        checkpoint,
        cosignature: None,
    };
    Ok(r.sign(&me.keys)?.bytes)
}
