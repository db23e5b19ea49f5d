//! An envelope from a partner as the worker's job: received in the batch, answered once the
//! batch commits; one that arrived ahead of its chain waits here for the gap to fill, and the
//! envelope that fills it lets it through.

use std::time::Instant;

use anyhow::Result;
use rogatory_proto::ids::AgencyId;

use super::open::Opening;
use super::receive::{Outcome, receive_in};
use super::{Engine, MAX_WAITING, MAX_WAITING_BYTES, MAX_WAITING_BYTES_PER_SENDER};
use super::{MAX_WAITING_PER_SENDER, Notice, Reply, Waiting};
use crate::store::Batch;

impl Engine {
    /// An envelope from a partner (`Job::Inbound`), and any that waited for it: received in
    /// the batch, answered once it commits.
    pub(super) fn inbound(
        &mut self,
        batch: &mut Batch<'_>,
        token: u64,
        from: AgencyId,
        bytes: Vec<u8>,
        opened: Option<Box<Opening>>,
        replies: &mut Vec<Reply>,
    ) -> Result<()> {
        replies.push(Reply::Notice(Notice::Answer {
            token,
            receipt: None,
        }));
        let at = replies.len() - 1;
        if self.over_refusals(batch, &from)? {
            // Set aside unanswered: its sender retries later.
            return Ok(());
        }
        let mut next = Some((token, from, bytes, opened, at));
        // Applying one envelope may let the next of its chain through.
        while let Some((token, from, bytes, opened, at)) = next.take() {
            let now = rogatory_proto::time::now_unix();
            let receive = |batch: &mut Batch<'_>, engine: &mut Self, opened| {
                // The partners' histories as they are now.
                let trusted = engine.trust.snapshot();
                receive_in(
                    batch,
                    &engine.me,
                    &trusted,
                    &from,
                    &bytes,
                    now,
                    &engine.limits,
                    &engine.quotas,
                    &mut engine.cosigns,
                    opened,
                    &engine.policy,
                )
            };
            let (mut outcome, mut advanced) = receive(batch, self, opened.map(|o| *o))?;
            if let Outcome::UnknownOfficer {
                from: signer,
                sent_at,
                why,
            } = &outcome
            {
                match self.trust.fresh_at(signer) {
                    // The history held was confirmed after the envelope was sealed: the official
                    // was not certified then. Refused like any other invalid signature.
                    Some(t) if t > *sent_at => {
                        // It may have been opened (by an opening thread) before that history
                        // arrived: opened again, with the history as it is now (read after the
                        // time of its confirmation), and refused only if still unknown.
                        let (signer, why) = (signer.clone(), why.clone());
                        (outcome, advanced) = receive(batch, self, None)?;
                        if matches!(outcome, Outcome::UnknownOfficer { .. }) {
                            let why = format!(
                                "{why}; {signer} confirmed that history at {}, after the envelope was sealed",
                                rogatory_proto::time::format_unix(t)
                            );
                            let refused =
                                Err(rogatory_proto::envelope::OpenError::OfficerNotValid(why));
                            (outcome, advanced) = receive(batch, self, Some(refused))?;
                        }
                    }
                    _ => {
                        tracing::info!(%from, "an envelope signed by an official not known here yet: left unanswered while the sender's key history is asked for");
                        replies.push(Reply::Notice(Notice::KeysWanted {
                            agency: signer.clone(),
                        }));
                    }
                }
            }
            let receipt = match outcome {
                Outcome::Accepted {
                    envelope_id,
                    case_id,
                    receipt,
                    confirm,
                    evidence,
                    refused_items,
                } => {
                    tracing::info!(%from, envelope = %envelope_id, case = %case_id, "accepted");
                    self.counters.received(None);
                    if !refused_items.is_empty() {
                        self.report_refused(batch, &case_id, &refused_items, replies)?;
                    }
                    if evidence {
                        replies.push(Reply::Notice(Notice::EvidenceListed { case: case_id }));
                    }
                    if let Some(message) = confirm {
                        self.confirm(batch, &from, case_id, *message, replies)?;
                    }
                    Some(signed_or(receipt, envelope_id.0))
                }
                Outcome::Replay { receipt } => {
                    // Rare: the partner did not get (or record) the receipt sent before.
                    tracing::info!(%from, "a replay: answered with the original receipt");
                    // Empty when it was received earlier in this same batch.
                    let id = rogatory_proto::ids::Sha256Digest::of(&bytes).0;
                    Some(signed_or(receipt, id))
                }
                Outcome::Rejected { reason, receipt } => {
                    tracing::warn!(%from, reason = reason.name(), "rejected an envelope");
                    self.counters.received(Some(reason));
                    self.refusals
                        .entry(from.clone())
                        .or_default()
                        .push_back(Instant::now());
                    Some(Ok(receipt))
                }
                // Unanswered: its sender sends it again, by when the history has arrived.
                Outcome::UnknownOfficer { .. } => None,
                Outcome::Waiting { slot } => {
                    tracing::debug!(%from, sequence = slot.sequence, "ahead of its chain: waiting");
                    if let Some(old) = self.take_waiting(&slot) {
                        replies.push(Reply::Notice(Notice::Answer {
                            token: old.token,
                            receipt: None,
                        }));
                    }
                    let (from_sender, sender_bytes) = self
                        .waiting
                        .iter()
                        .filter(|(s, _)| s.from == slot.from)
                        .fold((0, 0), |(n, b), (_, w)| (n + 1, b + w.bytes.len()));
                    if self.waiting.len() < MAX_WAITING
                        && self.waiting_bytes + bytes.len() <= MAX_WAITING_BYTES
                        && from_sender < MAX_WAITING_PER_SENDER
                        && sender_bytes + bytes.len() <= MAX_WAITING_BYTES_PER_SENDER
                    {
                        self.waiting_bytes += bytes.len();
                        self.waiting.insert(
                            slot,
                            Waiting {
                                token,
                                from,
                                bytes,
                                since: Instant::now(),
                            },
                        );
                        // Answered later, not now.
                        replies[at] = Reply::Nothing;
                    }
                    None
                }
            };
            match receipt {
                // Signed once the batch's checkpoints are, just before it commits.
                Some(Err(id)) => self.unsigned_answers.push((at, id)),
                Some(Ok(receipt)) => {
                    replies[at] = Reply::Notice(Notice::Answer {
                        token,
                        receipt: Some(receipt),
                    });
                }
                None => {}
            }
            if let Some(slot) = advanced
                && let Some(w) = self.take_waiting(&slot.next())
            {
                replies.push(Reply::Notice(Notice::Answer {
                    token: w.token,
                    receipt: None,
                }));
                // It is opened again: what waits is held as received, within the waiting bounds.
                next = Some((w.token, w.from, w.bytes, None, replies.len() - 1));
            }
        }
        Ok(())
    }
}

/// A receipt, or the envelope whose receipt the batch signs before it commits (an empty one).
fn signed_or(receipt: Vec<u8>, envelope_id: [u8; 32]) -> Result<Vec<u8>, [u8; 32]> {
    if receipt.is_empty() {
        Err(envelope_id)
    } else {
        Ok(receipt)
    }
}
