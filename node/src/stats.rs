//! Statistics (spec/STATS.md): every case's messages as this node holds them, opened again
//! from the store, handed to `rogatory_proto::stats`, the function an auditor's recomputation
//! from the export bundles runs too. Nothing of a message leaves here but the aggregates, so
//! reading them is not logged as an access to each message; the request is in the node's log.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rogatory_proto::envelope::{self, Limits, Recipient};
use rogatory_proto::ids::CaseId;
use rogatory_proto::stats::{CaseMessages, StatMessage};

use crate::keydir::KeyDir;
use crate::store::Store;

/// Every case's messages: those received (opened with this node's keys, the partners' keys as
/// they were when each arrived) and those sealed here whose content key the node kept (as an
/// export discloses them, spec/BUNDLE.md §5).
pub fn material(
    store: &Store,
    me: &KeyDir,
    trusted: &crate::trust::Partners,
) -> Result<Vec<CaseMessages>> {
    let limits = Limits::default();
    let mut cases: BTreeMap<CaseId, Vec<StatMessage>> = BTreeMap::new();
    let recipient = Recipient {
        card: &me.card,
        keys: &me.keys,
    };
    let as_received = crate::trust::AsReceived(trusted);
    for (id, r) in store.received()? {
        let bytes = store
            .inbox_envelope(&id)?
            .context("an envelope on record is missing from the inbox")?;
        let o = envelope::open(&bytes, &recipient, &as_received, &limits).with_context(|| {
            format!("envelope {} in the inbox no longer opens", hex::encode(id))
        })?;
        cases.entry(r.case_id).or_default().push(StatMessage {
            from: o.info.from,
            to: o.info.to,
            sent_at: o.info.sent_at,
            sequence: o.info.chain.sequence,
            message: o.message,
        });
    }
    let storage = me.keys.storage_key();
    for e in store.outbox()? {
        let Some(wrapped) = e.content_key.as_deref() else {
            continue;
        };
        let info = envelope::inspect(&e.envelope, &limits).context("an envelope in the outbox")?;
        let key = crate::store::unwrap_envelope_key(&storage, &info.id, wrapped)
            .context("a content key kept in the outbox does not open with the storage key")?;
        let card = me
            .history
            .cards()
            .iter()
            .find(|c| c.signing_key().id() == &info.signer_key_id)
            .context(
                "an envelope in the outbox was signed with a key not in this agency's history",
            )?;
        let o = envelope::open_with_key(&e.envelope, &key, card, None, &limits)
            .context("an envelope in the outbox does not open with its kept key")?;
        cases.entry(e.case_id).or_default().push(StatMessage {
            from: o.info.from,
            to: o.info.to,
            sent_at: o.info.sent_at,
            sequence: o.info.chain.sequence,
            message: o.message,
        });
    }
    Ok(cases
        .into_iter()
        .map(|(case_id, messages)| CaseMessages { case_id, messages })
        .collect())
}
