//! Receipts: signed by this node for the envelopes it received — an acceptance at the end of
//! its batch, over the case's checkpoint signed once for the batch; a refusal at once.

use std::collections::HashMap;

use anyhow::Result;
use rogatory_proto::envelope;
use rogatory_proto::ids::{AgencyId, EnvelopeId};
use rogatory_proto::receipt::{ReasonCode, Receipt, ReceiptEvent};

use crate::keydir::KeyDir;
use crate::store::Batch;

/// Signs the checkpoints the batch holds unsigned, then the acceptance receipts it holds
/// (each carrying its case's checkpoint, which includes its envelope), and stores them; returns
/// them by envelope id. Done before the batch commits.
pub fn sign_receipts(batch: &mut Batch<'_>, me: &KeyDir) -> Result<HashMap<[u8; 32], Vec<u8>>> {
    batch.sign_logs()?;
    let mut out = HashMap::new();
    for (id, case, mut r) in batch.take_deferred_receipts() {
        // The case's log holds the envelope's entry, so it has a signed checkpoint now.
        let Some(checkpoint) = batch.checkpoint(&case)? else {
            return Err(crate::store::StoreError::Corrupt(format!(
                "case {case} has no checkpoint for the receipt of an envelope it holds"
            ))
            .into());
        };
        r.checkpoint = Some(checkpoint);
        let bytes = r.sign(&me.keys)?.bytes;
        batch.store_receipt(&id, &bytes)?;
        out.insert(id, bytes);
    }
    Ok(out)
}

/// This node's receipt, unsigned, for an envelope from `to`: an acceptance (with its
/// cosignature of the sender's checkpoint; its own checkpoint is added by [`sign_receipts`]) or a
/// rejection with its reason.
pub(super) fn receipt(
    me: &KeyDir,
    envelope_id: EnvelopeId,
    to: &AgencyId,
    rejection: Option<(ReasonCode, String)>,
    now: u64,
    cosignature: Option<Vec<u8>>,
) -> Receipt {
    let (event, reason, detail) = match rejection {
        Some((r, d)) => (ReceiptEvent::Rejected, Some(r), Some(d)),
        None => (ReceiptEvent::Accepted, None, None),
    };
    Receipt {
        version: envelope::PROTOCOL_VERSION,
        envelope_id,
        from: me.card.id().clone(),
        to: to.clone(),
        event,
        reason,
        detail,
        received_at: now,
        checkpoint: None,
        cosignature,
    }
}

/// Signs a rejection at once: it carries no checkpoint.
pub(super) fn sign_rejection(
    me: &KeyDir,
    envelope_id: EnvelopeId,
    to: &AgencyId,
    reason: ReasonCode,
    detail: String,
    now: u64,
) -> Result<Vec<u8>> {
    let r = receipt(me, envelope_id, to, Some((reason, detail)), now, None);
    Ok(r.sign(&me.keys)?.bytes)
}
