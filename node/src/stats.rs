//! Statistics (spec/STATS.md): every case's messages as this node holds them, opened again
//! from the store, handed to `rogatory_proto::stats`, the function an auditor's recomputation
//! from the export bundles runs too. Nothing of a message leaves here but the aggregates, so
//! reading them is not logged as an access to each message; the request is in the node's log.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rogatory_proto::audit::entry::AuditEvent;
use rogatory_proto::envelope::{self, Limits, Recipient};
use rogatory_proto::ids::CaseId;
use rogatory_proto::stats::{CaseMessages, StatMessage};

use crate::keydir::KeyDir;
use crate::store::Store;

/// Every case's messages sealed up to `until`: those received (opened with this node's keys,
/// the partners' keys as they were when each arrived) and those sealed here whose content key
/// the node kept (as an export discloses them, spec/BUNDLE.md §5). Later ones count for no
/// figure of the period, and are not opened.
pub fn material(
    store: &Store,
    me: &KeyDir,
    trusted: &crate::trust::Partners,
    until: u64,
) -> Result<Vec<CaseMessages>> {
    let limits = Limits::default();
    // Each message with its envelope id, by case; the log positions are read afterwards, once
    // per case that has any.
    let mut cases: BTreeMap<CaseId, Vec<([u8; 32], StatMessage)>> = BTreeMap::new();
    let recipient = Recipient {
        card: &me.card,
        keys: &me.keys,
    };
    let as_received = crate::trust::AsReceived(trusted);
    for (id, r) in store.received()? {
        if r.sent_at > until {
            continue;
        }
        let bytes = store
            .inbox_envelope(&id)?
            .context("an envelope on record is missing from the inbox")?;
        let o = envelope::open(&bytes, &recipient, &as_received, &limits).with_context(|| {
            format!("envelope {} in the inbox no longer opens", hex::encode(id))
        })?;
        cases.entry(r.case_id).or_default().push((id, stat(o)));
    }
    let storage = me.keys.storage_key();
    for e in store.outbox()? {
        let Some(wrapped) = e.content_key.as_deref() else {
            continue;
        };
        let info = envelope::inspect(&e.envelope, &limits).context("an envelope in the outbox")?;
        if info.sent_at > until {
            continue;
        }
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
        cases
            .entry(e.case_id)
            .or_default()
            .push((info.id.0, stat(o)));
    }
    let mut out = Vec::with_capacity(cases.len());
    for (case_id, found) in cases {
        // Each envelope's place in the case's log (`envelope-sent`, `envelope-received`).
        let mut logged: BTreeMap<[u8; 32], u64> = BTreeMap::new();
        for (e, _) in store.entries(&case_id)? {
            if matches!(
                e.event,
                AuditEvent::EnvelopeSent | AuditEvent::EnvelopeReceived
            ) && let Some(id) = e.envelope_id
            {
                logged.entry(id.0).or_insert(e.seq);
            }
        }
        let mut messages = Vec::with_capacity(found.len());
        for (id, mut m) in found {
            m.position = *logged.get(&id).with_context(|| {
                format!("envelope {} is not in its case's log", hex::encode(id))
            })?;
            messages.push(m);
        }
        out.push(CaseMessages { case_id, messages });
    }
    Ok(out)
}

/// What the figures need of an opened envelope; its place in the case's log is set later.
fn stat(o: envelope::Opened) -> StatMessage {
    StatMessage {
        from: o.info.from,
        to: o.info.to,
        sent_at: o.info.sent_at,
        position: 0,
        message: o.message,
    }
}
