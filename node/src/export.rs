//! Case export bundles (spec/BUNDLE.md): everything this node holds about one case that an
//! auditor can verify offline, gathered from the store in one read.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use rogatory_proto::audit::entry::{AuditEvent, log_key_name};
use rogatory_proto::audit::note::Note;
use rogatory_proto::audit::witness;
use rogatory_proto::bundle::{Bundle, Direction, Disclosure, EnvelopeRecord, FORMAT};
use rogatory_proto::card::AgencyCard;
use rogatory_proto::envelope::{self, Limits};
use rogatory_proto::ids::{AgencyId, CaseId};
use serde_bytes::ByteBuf;

use crate::keydir::KeyDir;
use crate::store::Store;

/// Builds the bundle of `case` from the store. With `auditor`, the content of every envelope
/// whose key this node holds (every one it received, every one it sealed since it keeps sent
/// envelopes' keys) is disclosed to that auditor's card (spec/BUNDLE.md §5).
pub fn bundle(
    store: &Store,
    me: &KeyDir,
    trusted: &crate::trust::Partners,
    case: &CaseId,
    now: u64,
    auditor: Option<&AgencyCard>,
) -> Result<Bundle> {
    let limits = Limits::default();
    let entries = store.entries(case)?;
    if entries.is_empty() {
        anyhow::bail!("case {case} has no audit log on this node");
    }
    let mut envelopes = Vec::new();
    let mut partners: BTreeSet<AgencyId> = BTreeSet::new();
    // This node's checkpoints, with the cosignature lines partners returned for each.
    let mut cosigned: BTreeMap<Vec<u8>, Vec<String>> = BTreeMap::new();
    let mut witnessed: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut disclosures = Vec::new();
    let storage = me.keys.storage_key();
    let recipient = envelope::Recipient {
        card: &me.card,
        keys: &me.keys,
    };
    for e in store.outbox()? {
        if &e.case_id != case {
            continue;
        }
        partners.insert(e.to.clone());
        let info = envelope::inspect(&e.envelope, &limits).context("an envelope in the outbox")?;
        let receipt = e
            .receipt
            .as_ref()
            .and_then(|r| rogatory_proto::receipt::decode_verified_earlier(r).ok());
        if let Some(cp) = info.checkpoint {
            let lines = cosigned.entry(cp).or_default();
            if let Some(line) = receipt
                .as_ref()
                .and_then(|r| r.receipt.cosignature.as_ref())
                .and_then(|l| String::from_utf8(l.clone()).ok())
                && !lines.contains(&line)
            {
                lines.push(line);
            }
        }
        if let Some(cp) = receipt.as_ref().and_then(|r| r.receipt.checkpoint.clone()) {
            witnessed.insert(cp);
        }
        // An envelope sealed before content keys were kept has none, and is not disclosed; a
        // kept key that does not open under this node's storage key is a damaged record.
        if let (Some(a), Some(wrapped)) = (auditor, e.content_key.as_deref()) {
            let id = info.id;
            let key = crate::store::unwrap_envelope_key(&storage, &id, wrapped).with_context(|| {
                format!("the content key kept for envelope {id} does not open with this node's storage key: its outbox record is damaged")
            })?;
            disclosures.push(Disclosure {
                envelope: id,
                key: ByteBuf::from(envelope::disclose(&key, a).context("disclosing a key")?),
            });
        }
        envelopes.push(EnvelopeRecord {
            direction: Direction::Sent,
            envelope: ByteBuf::from(e.envelope),
            receipt: e.receipt.map(|r| ByteBuf::from(r.into_vec())),
        });
    }
    for (id, r) in store.received()? {
        if &r.case_id != case {
            continue;
        }
        partners.insert(r.from.clone());
        let bytes = store
            .inbox_envelope(&id)?
            .context("an envelope on record is missing from the inbox")?;
        if let Ok(info) = envelope::inspect(&bytes, &limits)
            && let Some(cp) = info.checkpoint
        {
            witnessed.insert(cp);
        }
        if let Some(a) = auditor {
            let key = envelope::envelope_key(&bytes, &recipient, &limits)
                .context("an envelope in the inbox does not open with this node's key")?;
            disclosures.push(Disclosure {
                envelope: rogatory_proto::ids::Sha256Digest::of(&bytes),
                key: ByteBuf::from(envelope::disclose(&key, a).context("disclosing a key")?),
            });
        }
        let receipt = store.receipt_for(&id)?;
        if let Some(cp) = receipt
            .as_deref()
            .and_then(|r| rogatory_proto::receipt::decode_verified_earlier(r).ok())
            .and_then(|r| r.receipt.checkpoint)
        {
            cosigned.entry(cp).or_default();
        }
        envelopes.push(EnvelopeRecord {
            direction: Direction::Received,
            envelope: ByteBuf::from(bytes),
            receipt: receipt.map(ByteBuf::from),
        });
    }
    let latest = store.checkpoint(case, None)?;
    cosigned.entry(latest).or_default();
    let checkpoints = cosigned
        .into_iter()
        .map(|(note, lines)| {
            let mut text = note;
            for l in lines {
                text.extend_from_slice(l.as_bytes());
            }
            ByteBuf::from(text)
        })
        .collect();
    // Each agency's key history (its card if it has none), and in the policy every signing key
    // it had: what it signed before a rotation verifies too (spec/KEYS.md §9).
    let mut cards = vec![ByteBuf::from(me.history.to_file())];
    let mut policy = format!(
        "# tlog-policy of {}'s log of case {case}: cosigned by any one partner.\n",
        me.card.id()
    );
    for key in signing_keys(&me.history) {
        policy.push_str(&format!(
            "log {}\n",
            rogatory_proto::card::note_verifier_key(me.card.id(), key)
        ));
    }
    let mut names = Vec::new();
    for p in &partners {
        let Some(history) = trusted.get(p) else {
            continue;
        };
        cards.push(ByteBuf::from(history.to_file()));
        for (n, key) in signing_keys(history).into_iter().enumerate() {
            let w = witness::witness_verifier(&log_key_name(p), key)
                .context("a partner's witness key")?;
            let name = match n {
                0 => p.to_string(),
                n => format!("{p}~{n}"),
            };
            policy.push_str(&format!("witness {name} {}\n", w.vkey()));
            names.push(name);
        }
    }
    if names.is_empty() {
        policy.push_str("quorum none\n");
    } else {
        policy.push_str(&format!(
            "group partners any {}\nquorum partners\n",
            names.join(" ")
        ));
    }
    let mut proofs = Vec::new();
    for (e, _) in &entries {
        if matches!(
            e.event,
            AuditEvent::EnvelopeSent | AuditEvent::EnvelopeReceived
        ) {
            proofs.push(store.prove(case, e.seq, None)?.to_text());
        }
    }
    // Every note the bundle carries must parse (a stored one that does not is a store fault).
    for n in &witnessed {
        Note::parse(n).context("a witnessed checkpoint does not parse")?;
    }
    Ok(Bundle {
        format: FORMAT.into(),
        case_id: *case,
        exporter: me.card.id().clone(),
        exported_at: now,
        cards,
        policy,
        entries: entries.into_iter().map(|(_, b)| ByteBuf::from(b)).collect(),
        checkpoints,
        envelopes,
        witnessed: witnessed.into_iter().map(ByteBuf::from).collect(),
        proofs,
        auditor: auditor.map(|a| ByteBuf::from(a.as_bytes().to_vec())),
        disclosures,
    })
}

/// An agency's signing keys over its history, the current one first.
fn signing_keys(
    h: &rogatory_proto::keyhist::KeyHistory,
) -> Vec<&rogatory_proto::keys::VerifyingKey> {
    let mut keys = vec![h.current_card().signing_key()];
    for c in h.cards().iter().rev() {
        if !keys.contains(&c.signing_key()) {
            keys.push(c.signing_key());
        }
    }
    keys
}
