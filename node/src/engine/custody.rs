//! The receiving side's chain of custody: an item's arrival (verified or quarantined), the items
//! refused by the quotas, and the `evidence-status` reports to the holder sealed in the same
//! transaction (spec/EVIDENCE.md §6).

use anyhow::{Result, anyhow};
use rogatory_proto::audit::entry::{Actor, AuditEntry, AuditEvent};
use rogatory_proto::ids::CaseId;
use rogatory_proto::message::{CustodyEntry, EvidenceStatus, ItemState, ItemStatus, Message};

use super::*;
use crate::store::Batch;

impl Engine {
    /// Records an item's content arrival: its state, file and the audit entries
    /// (`evidence-transferred`, then `evidence-verified` or `evidence-quarantined`, with the
    /// manifest's hash and the partner).
    pub(super) fn evidence_arrived(
        &self,
        batch: &mut Batch<'_>,
        case: &CaseId,
        key: &str,
        outcome: Arrival,
        replies: &mut Vec<Reply>,
    ) -> Result<()> {
        let Some(mut r) = batch.evidence_item(case, key)? else {
            return Err(anyhow!("no evidence item {key} in case {case}"));
        };
        let now = rogatory_proto::time::now_unix();
        let verified = matches!(outcome, Arrival::Verified { .. });
        let from = r
            .peer
            .as_ref()
            .map_or_else(|| "the holder".into(), |p| p.to_string());
        let mut custody = vec![self.custody(
            now,
            None,
            format!("received from {from} through Rogatory"),
            None,
        )];
        let state = match outcome {
            Arrival::Verified { blob } => {
                r.state = crate::evidence::EvidenceState::Verified;
                r.blob = Some(blob);
                r.chunks_done = rogatory_proto::evidence::chunks(r.item.size);
                let action = "verified: the SHA-256 matches the manifest".into();
                custody.push(self.custody(now, None, action, None));
                ItemState::Verified
            }
            Arrival::Quarantined { problem } => {
                r.state = crate::evidence::EvidenceState::Quarantined;
                let action = "quarantined: the content does not match the manifest".into();
                custody.push(self.custody(now, None, action, Some(problem.clone())));
                r.problem = Some(problem);
                ItemState::Quarantined
            }
        };
        self.report_to_holder(batch, &mut r, state, custody, replies)?;
        let entry = |event| AuditEntry {
            seq: 0,
            time: now,
            case_id: *case,
            event,
            actor: Actor {
                agency: self.me.card.id().clone(),
                user: None,
            },
            peer: r.peer.clone(),
            envelope_id: r.manifest,
            receipt_hash: None,
            transition: None,
            reason: None,
            commitment: r.item.sha256,
        };
        let mut entries = vec![
            entry(AuditEvent::EvidenceTransferred),
            entry(if verified {
                AuditEvent::EvidenceVerified
            } else {
                AuditEvent::EvidenceQuarantined
            }),
        ];
        batch.append(&self.signer(), case, &mut entries)?;
        Ok(())
    }

    /// Tells the holder, in one `evidence-status` sealed in the batch that accepted its
    /// manifest, which items this node refused to fetch and why (spec/EVIDENCE.md §6), and
    /// writes the custody entry and the `evidence-refused` audit entry of each.
    pub(super) fn report_refused(
        &self,
        batch: &mut Batch<'_>,
        case: &CaseId,
        keys: &[String],
        replies: &mut Vec<Reply>,
    ) -> Result<()> {
        let now = rogatory_proto::time::now_unix();
        let mut items = Vec::with_capacity(keys.len());
        let mut entries = Vec::with_capacity(keys.len());
        let mut holder = None;
        for key in keys {
            let Some(mut r) = batch.evidence_item(case, key)? else {
                return Err(anyhow!("no evidence item {key} in case {case}"));
            };
            let problem = r.problem.clone().unwrap_or_default();
            let custody = vec![self.custody(now, None, format!("refused: {problem}"), None)];
            r.item.custody.extend(custody.iter().cloned());
            batch.put_evidence(&r)?;
            holder.clone_from(&r.peer);
            entries.push(AuditEntry {
                seq: 0,
                time: now,
                case_id: *case,
                event: AuditEvent::EvidenceRefused,
                actor: Actor {
                    agency: self.me.card.id().clone(),
                    user: None,
                },
                peer: r.peer.clone(),
                envelope_id: r.manifest,
                receipt_hash: None,
                transition: None,
                reason: None,
                commitment: r.item.sha256,
            });
            items.push(ItemStatus {
                item_id: r.item.item_id.clone(),
                sha256: r.item.sha256,
                state: Some(ItemState::Refused),
                custody,
                problem: Some(problem),
            });
        }
        batch.append(&self.signer(), case, &mut entries)?;
        let Some(holder) = holder else {
            return Ok(());
        };
        let request = SendRequest {
            to: vec![holder.clone()],
            case: *case,
            message: Message::EvidenceStatus(EvidenceStatus { items }),
            user: None,
            confirmation: false,
            officers: Vec::new(),
            made: Vec::new(),
            message_id: None,
        };
        match self.seal(batch, &request, replies)? {
            Ok(_) => {
                tracing::info!(to = %holder, case = %case, items = keys.len(), "told the holder which items were refused");
            }
            Err(e) => {
                tracing::error!(to = %holder, case = %case, "cannot tell the holder that items were refused: {e}");
            }
        }
        Ok(())
    }

    /// A custody entry by this agency (and local user) now.
    pub(super) fn custody(
        &self,
        now: u64,
        user: Option<&str>,
        action: String,
        note: Option<String>,
    ) -> CustodyEntry {
        let agency = self.me.card.id();
        CustodyEntry {
            at: rogatory_proto::time::format_unix(now),
            actor: match user {
                Some(u) => format!("{agency}: {u}"),
                None => agency.to_string(),
            },
            action,
            note,
        }
    }

    /// Extends a received item's chain of custody with `custody`, stores the record, and seals
    /// an `evidence-status` telling the holder (spec/EVIDENCE.md §6), so that both sides keep
    /// the same chain. The holder no longer being a partner does not undo what happened here:
    /// it is logged and the report is not sent.
    pub(super) fn report_to_holder(
        &self,
        batch: &mut Batch<'_>,
        r: &mut crate::evidence::EvidenceRecord,
        state: ItemState,
        custody: Vec<CustodyEntry>,
        replies: &mut Vec<Reply>,
    ) -> Result<()> {
        r.item.custody.extend(custody.iter().cloned());
        batch.put_evidence(r)?;
        let Some(holder) = r.peer.clone() else {
            return Ok(());
        };
        let problem = match state {
            ItemState::Quarantined => r.problem.clone(),
            _ => None,
        };
        let request = SendRequest {
            to: vec![holder.clone()],
            case: r.case_id,
            message: Message::EvidenceStatus(EvidenceStatus {
                items: vec![ItemStatus {
                    item_id: r.item.item_id.clone(),
                    sha256: r.item.sha256,
                    state: Some(state),
                    custody,
                    problem,
                }],
            }),
            user: None,
            confirmation: false,
            officers: Vec::new(),
            made: Vec::new(),
            message_id: None,
        };
        match self.seal(batch, &request, replies)? {
            Ok(_) => {
                tracing::info!(to = %holder, case = %r.case_id, item = %r.item.item_id, state = state.as_str(), "told the holder");
            }
            Err(e) => {
                tracing::error!(to = %holder, case = %r.case_id, item = %r.item.item_id, "cannot tell the holder that the item was {}: {e}", state.as_str());
            }
        }
        Ok(())
    }
}
