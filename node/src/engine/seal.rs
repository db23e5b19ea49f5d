//! Sealing and queueing: a message for its addressees at the next position of each chain (its
//! case checked first), the node's confirmations of a partner's proposals, and evidence added
//! and announced.

use anyhow::{Result, anyhow};
use rogatory_proto::audit::entry::{Actor, AuditEntry, AuditEvent};
use rogatory_proto::audit::note::{Checkpoint, Note};
use rogatory_proto::envelope::{self, Addressee, ChainLink, SealParams, Sender};
use rogatory_proto::ids::{AgencyId, CaseId, MessageId, Sha256Digest};
use rogatory_proto::message::Message;

use super::*;
use crate::store::{Batch, OutboxEntry, OutboxState};

impl Engine {
    /// Records new evidence items of a case, with their `evidence-added` entries. The inner
    /// `Err` is a refusal that wrote nothing.
    pub(super) fn add_evidence(
        &self,
        batch: &mut Batch<'_>,
        case: &CaseId,
        items: Vec<NewEvidence>,
        user: Option<String>,
    ) -> Result<Result<Vec<String>, Error>> {
        if batch.case_record(case)?.is_none() {
            return Ok(Err(Error::NotFound(format!(
                "there is no case {case} on this node (rogatory case new)"
            ))));
        }
        let existing = batch.evidence(case)?;
        let mut next = existing
            .iter()
            .filter(|r| r.outgoing)
            .filter_map(|r| r.item.item_id.strip_prefix('E')?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        let storage = self.me.keys.storage_key();
        let now = rogatory_proto::time::now_unix();
        let mut ids = Vec::with_capacity(items.len());
        let mut entries = Vec::with_capacity(items.len());
        for NewEvidence { mut item, content } in items {
            next += 1;
            item.item_id = format!("E{next}");
            item.content_key = None;
            let action = match &content {
                Some(_) => "added: hashed (SHA-256) and sealed into the node's evidence store",
                None => "added: hashed (SHA-256); the content stays with this agency",
            };
            item.custody
                .push(self.custody(now, user.as_deref(), action.into(), None));
            let (blob, wrapped_key) = match content {
                Some((name, key)) => {
                    let context = crate::evidence::key_context(case, &item.item_id);
                    let wrapped = rogatory_proto::evidence::wrap_key(&storage, &context, &key);
                    (Some(name), Some(wrapped))
                }
                None => (None, None),
            };
            let e = AuditEntry {
                seq: 0,
                time: now,
                case_id: *case,
                event: AuditEvent::EvidenceAdded,
                actor: Actor {
                    agency: self.me.card.id().clone(),
                    user: user.clone(),
                },
                peer: None,
                envelope_id: None,
                receipt_hash: None,
                transition: None,
                reason: None,
                commitment: item.sha256,
            };
            entries.push(e);
            ids.push(item.item_id.clone());
            batch.put_evidence(&crate::evidence::EvidenceRecord {
                case_id: *case,
                item,
                outgoing: true,
                state: crate::evidence::EvidenceState::Staged,
                peer: None,
                manifest: None,
                blob,
                wrapped_key,
                chunks_done: 0,
                problem: None,
                added_at: now,
                added_by: user.clone(),
                announced_at: None,
                reports: Vec::new(),
            })?;
        }
        batch.append(&self.signer(), case, &mut entries)?;
        Ok(Ok(ids))
    }

    /// Seals the manifest of a case's staged items for a partner (content keys inside the
    /// encrypted envelope) and marks them announced, in one transaction.
    pub(super) fn send_manifest(
        &self,
        batch: &mut Batch<'_>,
        case: &CaseId,
        to: &AgencyId,
        user: Option<String>,
        replies: &mut Vec<Reply>,
    ) -> Result<Result<ManifestSent, Error>> {
        let staged: Vec<_> = batch
            .evidence(case)?
            .into_iter()
            .filter(|r| r.outgoing && r.state == crate::evidence::EvidenceState::Staged)
            .collect();
        if staged.is_empty() {
            return Ok(Err(Error::Conflict(format!(
                "case {case} has no evidence staged to send (rogatory evidence add)"
            ))));
        }
        let storage = self.me.keys.storage_key();
        let now = rogatory_proto::time::now_unix();
        let mut staged = staged;
        let mut items = Vec::with_capacity(staged.len());
        for r in &mut staged {
            // The hand-over is the chain's next link, in the manifest and here.
            let action = format!("handed over to {to} through Rogatory");
            r.item
                .custody
                .push(self.custody(now, user.as_deref(), action, None));
            let mut item = r.item.clone();
            if let Some(w) = &r.wrapped_key {
                let context = crate::evidence::key_context(case, &item.item_id);
                let key = rogatory_proto::evidence::unwrap_key(&storage, &context, w).ok_or_else(
                    || {
                        anyhow!(
                            "the content key of {} does not unwrap with this node's storage key",
                            item.item_id
                        )
                    },
                )?;
                item.content_key = Some(*key.as_bytes());
            }
            items.push(item);
        }
        let request = SendRequest {
            to: vec![to.clone()],
            case: *case,
            message: Message::EvidenceManifest(rogatory_proto::message::EvidenceManifest {
                request: None,
                items,
                note: None,
            }),
            user,
            confirmation: false,
            officers: Vec::new(),
            made: Vec::new(),
            message_id: None,
        };
        let queued = match self.seal(batch, &request, replies)? {
            Ok(q) => q,
            Err(e) => return Ok(Err(e)),
        };
        let envelope = queued.first().map(|q| q.envelope_id);
        let mut ids = Vec::with_capacity(staged.len());
        for mut r in staged {
            r.state = crate::evidence::EvidenceState::Announced;
            r.peer = Some(to.clone());
            r.manifest = envelope;
            r.announced_at = Some(now);
            ids.push(r.item.item_id.clone());
            batch.put_evidence(&r)?;
        }
        Ok(Ok((queued, ids)))
    }

    /// Seals and queues this node's confirmation of a partner's proposal, in the batch that
    /// applied the proposal (spec/CASES.md §4).
    pub(super) fn confirm(
        &self,
        batch: &mut Batch<'_>,
        to: &AgencyId,
        case: CaseId,
        message: Message,
        replies: &mut Vec<Reply>,
    ) -> Result<()> {
        let request = SendRequest {
            to: vec![to.clone()],
            case,
            message,
            user: None,
            confirmation: true,
            officers: Vec::new(),
            made: Vec::new(),
            message_id: None,
        };
        match self.seal(batch, &request, replies)? {
            Ok(queued) => {
                for q in queued {
                    tracing::info!(%to, case = %case, envelope = %q.envelope_id, "confirmed the partner's update");
                }
                Ok(())
            }
            // The proposal was applied; without its confirmation the sides would differ, so
            // nothing of this batch may stand.
            Err(e) => Err(anyhow!("cannot confirm the partner's update: {e}")),
        }
    }

    /// Seals a message for each addressee at the next position of the case's chain to it, and
    /// queues the envelopes with their `envelope-sent` entries, telling the event loop (in
    /// `replies`, sent once the batch is committed). The inner `Result` is a refusal that wrote
    /// nothing; the outer one a store failure.
    pub(super) fn seal(
        &self,
        batch: &mut Batch<'_>,
        r: &SendRequest,
        replies: &mut Vec<Reply>,
    ) -> Result<Result<Vec<Queued>, Error>> {
        let trusted = self.trust.snapshot();
        let mut cards = Vec::with_capacity(r.to.len());
        for to in &r.to {
            match trusted.get(to).map(|h| h.current_card()) {
                Some(c) => cards.push(c),
                None => {
                    return Ok(Err(Error::Invalid(format!(
                        "{to} is not a pinned partner (rogatory peer add)"
                    ))));
                }
            }
        }
        let now = rogatory_proto::time::now_unix();
        let signer = LogSigner {
            agency: self.me.card.id(),
            key: &self.me.keys.signing,
        };
        let checkpoint = batch.checkpoint_signed(&signer, &r.case)?;
        // The size of the checkpoint carried, for the witnesses' consistency proofs.
        let size = match &checkpoint {
            Some(n) => Some(
                Note::parse(n)
                    .and_then(|n| Checkpoint::parse(n.text()))
                    .map_err(|e| anyhow!("this node's latest checkpoint does not parse: {e}"))?
                    .size,
            ),
            None => None,
        };
        let mut addressees = Vec::with_capacity(cards.len());
        for card in &cards {
            let chain = match batch.chain_out(&r.case, card.id())? {
                None => ChainLink::FIRST,
                Some((seq, id)) => ChainLink {
                    sequence: seq + 1,
                    previous: Some(Sha256Digest(id)),
                },
            };
            let consistency = batch
                .carried_proof(&r.case, card.id(), size)?
                .map_err(|e| anyhow!("cannot prove this node's log of the case only grew: {e}"))?;
            addressees.push(Addressee {
                card,
                chain,
                consistency,
            });
        }
        let params = SealParams {
            case_id: r.case,
            message_id: r.message_id.unwrap_or_else(MessageId::generate),
            sent_at: now,
            checkpoint,
        };
        let officers: Vec<rogatory_proto::officer::Officer<'_>> = r
            .officers
            .iter()
            .map(|o| rogatory_proto::officer::Officer {
                role: o.role,
                key: &o.key,
            })
            .collect();
        let sealed = match envelope::seal_countersigned(
            &Sender {
                card: &self.me.card,
                keys: &self.me.keys,
            },
            &r.made,
            &officers,
            &addressees,
            &r.message,
            &params,
            &self.limits,
        ) {
            Ok(s) => s,
            Err(e) => return Ok(Err(Error::Invalid(format!("cannot seal the message: {e}")))),
        };
        // The case's machine must allow what the message says (once, whatever the addressees);
        // sealing wrote nothing, so a refusal leaves no trace.
        if let Some(first) = sealed.first()
            && !r.confirmation
        {
            let carried = crate::cases::Carried {
                message: &r.message,
                message_id: params.message_id,
                envelope_id: first.id,
                sent_at: now,
            };
            let direction = crate::cases::Direction::Sent {
                me: self.me.card.id(),
                to: &r.to,
            };
            if let Err(e) = crate::cases::apply(batch, &r.case, direction, carried, now)? {
                return Ok(Err(e.into()));
            }
        }
        let mut out = Vec::with_capacity(sealed.len());
        let mut entries = Vec::with_capacity(sealed.len());
        let storage = self.me.keys.storage_key();
        for (s, a) in sealed.into_iter().zip(&addressees) {
            replies.push(Reply::Notice(Notice::Queued {
                to: s.to.clone(),
                order: 0,
                id: s.id.0,
                envelope: s.bytes.clone(),
            }));
            let notice = replies.len() - 1;
            let mut entry = OutboxEntry {
                content_key: Some(crate::store::wrap_envelope_key(&storage, &s.id, &s.key)),
                case_id: r.case,
                to: s.to.clone(),
                sealed_at: now,
                envelope: s.bytes,
                state: OutboxState::Queued,
                receipt: None,
                order: None,
                emergency: r.message.is_emergency(),
            };
            let order = batch
                .enqueue(&mut entry, true)?
                .ok_or_else(|| anyhow!("the queue gave no order"))?;
            if let Reply::Notice(Notice::Queued { order: o, .. }) = &mut replies[notice] {
                *o = order;
            }
            batch.set_chain_out(&r.case, &s.to, a.chain.sequence, &s.id.0)?;
            if let Some(size) = size {
                batch.set_witness_out(&r.case, &s.to, size)?;
            }
            let mut e = audit_entry(
                self.me.card.id(),
                &r.case,
                now,
                AuditEvent::EnvelopeSent,
                &s.to,
                s.id,
            );
            e.actor.user = r.user.clone();
            entries.push(e);
            out.push(Queued {
                envelope_id: s.id,
                to: s.to,
                order,
                sequence: a.chain.sequence,
            });
        }
        batch.append(&self.signer(), &r.case, &mut entries)?;
        Ok(Ok(out))
    }
}
