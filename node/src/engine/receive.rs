//! Receiving an envelope: the pipeline the daemon's `/rogatory/envelope/1` handler runs, and that
//! tests run directly.
//!
//! de-duplicate by envelope id (a replay gets the original receipt) → verify the origin → apply
//! in the sender's chain order → decrypt, verify the inner signature, validate → store the
//! envelope, its audit entry and the signed receipt in one transaction → return the receipt only
//! once that transaction is durable. Anything refused gets a signed rejection receipt with its
//! reason code and an audit entry, and changes nothing else.
//!
//! Refusals whose case cannot be known (the envelope could not be opened) are logged in the
//! node's own log, the reserved case id [`NODE_LOG`].

use anyhow::{Context, Result};
use rogatory_proto::audit::entry::{AuditEvent, case_origin, log_key_name};

use super::audit_entry;
use super::open::Opening;
use crate::trust::Partners;
use rogatory_proto::envelope::{self, Limits, Recipient};
use rogatory_proto::ids::{AgencyId, CaseId, EnvelopeId, Sha256Digest};
use rogatory_proto::receipt::ReasonCode;

use crate::evidence::Quotas;
use crate::keydir::KeyDir;
use crate::store::{Batch, LogSigner, Received, Store};

pub use super::receipts::sign_receipts;
use super::receipts::{receipt, sign_rejection};
pub use crate::store::NODE_LOG;

/// What became of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted and stored; the receipt is signed in the same transaction ([`sign_receipts`],
    /// before the commit) and may be returned once it commits.
    Accepted {
        /// The envelope.
        envelope_id: EnvelopeId,
        /// Its case.
        case_id: CaseId,
        /// The signed receipt; empty within a batch, until [`sign_receipts`] signs it.
        receipt: Vec<u8>,
        /// A proposal of the partner this node (the requested side) applied: the confirmation
        /// to send back in the same transaction (`cases::Effect::Confirm`).
        confirm: Option<Box<rogatory_proto::message::Message>>,
        /// It was an evidence manifest: its `send` items are to be fetched.
        evidence: bool,
        /// Items of that manifest refused (beyond a quota): the holder is to be told, in the
        /// same transaction (record keys).
        refused_items: Vec<String>,
    },
    /// Already answered before: the original receipt, unchanged.
    Replay {
        /// The original receipt; empty if it was accepted earlier in the same batch, until
        /// [`sign_receipts`] signs it.
        receipt: Vec<u8>,
    },
    /// Refused; nothing was applied.
    Rejected {
        /// Why.
        reason: ReasonCode,
        /// The signed rejection receipt.
        receipt: Vec<u8>,
    },
    /// Signed by an official whose key this node's copy of the sender's key history does not
    /// name (spec/PEOPLE.md §5.4): the sender may have certified the official after this node
    /// last heard its history. Its origin is established; nothing was stored and there is no
    /// receipt, so the sender sends it again.
    UnknownOfficer {
        /// The sender.
        from: AgencyId,
        /// When it says it was sealed.
        sent_at: u64,
        /// What was not found.
        why: String,
    },
    /// Ahead of the sender's chain: an earlier envelope of the case has not arrived yet.
    /// Nothing was stored and there is no receipt; it is applied when the gap fills.
    Waiting {
        /// Where it waits.
        slot: ChainSlot,
    },
}

/// A position in a sender's chain of envelopes for one case: the sender, the case commitment
/// (the case id is only inside the encryption), the sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChainSlot {
    /// The sending agency.
    pub from: AgencyId,
    /// The case commitment.
    pub commitment: [u8; 32],
    /// The sequence number.
    pub sequence: u64,
}

impl ChainSlot {
    /// The slot after this one.
    pub fn next(&self) -> ChainSlot {
        ChainSlot {
            sequence: self.sequence + 1,
            ..self.clone()
        }
    }
}

/// Receives one envelope from `sender` (the agency the transport authenticated) in its own
/// durable transaction.
#[allow(clippy::too_many_arguments)]
pub fn receive(
    store: &Store,
    me: &KeyDir,
    trusted: &Partners,
    sender: &AgencyId,
    bytes: &[u8],
    now: u64,
    limits: &Limits,
    quotas: &Quotas,
) -> Result<Outcome> {
    let mut batch = store.batch()?;
    let mut cosigns = Cosigns::default();
    let (out, _) = receive_in(
        &mut batch,
        me,
        trusted,
        sender,
        bytes,
        now,
        limits,
        quotas,
        &mut cosigns,
        None,
        &SignaturePolicy::default(),
    )?;
    let signed = sign_receipts(&mut batch, me)?;
    batch.commit().context("cannot commit")?;
    Ok(match out {
        Outcome::Accepted {
            envelope_id,
            case_id,
            confirm,
            evidence,
            refused_items,
            ..
        } => Outcome::Accepted {
            receipt: signed.get(&envelope_id.0).cloned().unwrap_or_default(),
            envelope_id,
            case_id,
            confirm,
            evidence,
            refused_items,
        },
        other => other,
    })
}

pub use super::policy::SignaturePolicy;

/// Receives one envelope within `batch`; whatever it returns holds only once the batch commits.
///
/// 1. a replay (an envelope already answered) gets its stored receipt;
/// 2. the envelope is opened (outer signature, decryption, inner signature, validation); if
///    that fails, the outer layer alone must parse, verify against the sender's pinned card and
///    name this agency as addressee; otherwise a rejection, logged in [`NODE_LOG`], and the
///    sender's chain does not move;
/// 3. the chain: the next sequence number of the sender's chain for the case, linking the
///    previous envelope, is applied; one further ahead waits ([`Outcome::Waiting`]); one behind,
///    or linking another envelope, is refused as `chain-broken`;
/// 4. accepted (inbox, inbox record, audit entry, chain, receipt) or, if it did not open,
///    rejected (node log, chain, receipt). Either way its receipt is stored, so a replay gets
///    the same answer.
///
/// `opened` is what opening `bytes` gave, when that was done in front of the worker
/// ([`super::open`]) with the same keys, cards and limits; `None` opens them here.
///
/// Returns the outcome and, when the sender's chain moved, the slot just filled.
#[allow(clippy::too_many_arguments)]
pub fn receive_in(
    batch: &mut Batch<'_>,
    me: &KeyDir,
    trusted: &Partners,
    sender: &AgencyId,
    bytes: &[u8],
    now: u64,
    limits: &Limits,
    quotas: &Quotas,
    cosigns: &mut Cosigns,
    opened: Option<Opening>,
    policy: &SignaturePolicy,
) -> Result<(Outcome, Option<ChainSlot>)> {
    let id = Sha256Digest::of(bytes);
    if batch.receipt_deferred(&id.0) {
        // Accepted earlier in this batch: the same receipt, once it is signed.
        return Ok((
            Outcome::Replay {
                receipt: Vec::new(),
            },
            None,
        ));
    }
    if let Some(receipt) = batch.receipt_for(&id.0)? {
        return Ok((Outcome::Replay { receipt }, None));
    }
    let signer = LogSigner {
        agency: me.card.id(),
        key: &me.keys.signing,
    };
    let recipient = Recipient {
        card: &me.card,
        keys: &me.keys,
    };
    // Opening checks the origin too; only when it fails is the outer layer checked on its own,
    // to tell a refusal of the content (which takes its place in the chain) from an envelope
    // whose origin is not established (which does not).
    let opened = opened
        .unwrap_or_else(|| envelope::open(bytes, &recipient, trusted, limits))
        .and_then(|o| policy.check(&o).map(|()| o));
    let info = match &opened {
        Ok(o) => o.info.clone(),
        Err(_) => match outer(bytes, me, trusted, &origin_limits(limits)) {
            Ok(info) => info,
            Err((reason, detail)) => {
                let receipt = reject(batch, &signer, me, id, sender, now, reason, detail)?;
                return Ok((Outcome::Rejected { reason, receipt }, None));
            }
        },
    };
    // An official unknown here (spec/PEOPLE.md §5.4): unanswered while the history is asked
    // for, unless the envelope is dated beyond the clock's tolerance (refused below for that).
    if let Err(envelope::OpenError::UnknownOfficer(why)) = &opened
        && info.sent_at <= now.saturating_add(rogatory_proto::case::authz::CLOCK_TOLERANCE_SECS)
    {
        return Ok((
            Outcome::UnknownOfficer {
                from: info.from.clone(),
                sent_at: info.sent_at,
                why: why.clone(),
            },
            None,
        ));
    }
    let last = batch.chain_in(&info.from, &info.case_commitment.0)?;
    let expected = last.map_or(1, |(seq, _)| seq + 1);
    let slot = ChainSlot {
        from: info.from.clone(),
        commitment: info.case_commitment.0,
        sequence: info.chain.sequence,
    };
    if info.chain.sequence > expected {
        return Ok((Outcome::Waiting { slot }, None));
    }
    let in_order =
        info.chain.sequence == expected && info.chain.previous.map(|p| p.0) == last.map(|(_, p)| p);
    // Clock (spec/PROTOCOL.md §3.8): an envelope dated further ahead than this node's clock
    // allows is refused before anything of it is looked at; it takes its place in the chain,
    // like any other refusal of an envelope whose origin is established.
    if info.sent_at > now.saturating_add(rogatory_proto::case::authz::CLOCK_TOLERANCE_SECS) {
        let reason = ReasonCode::FutureDated;
        let detail = format!(
            "the envelope says it was sealed at {}, {} s ahead of this node's clock ({}); at most {} s are allowed",
            rogatory_proto::time::format_unix(info.sent_at),
            info.sent_at - now,
            rogatory_proto::time::format_unix(now),
            rogatory_proto::case::authz::CLOCK_TOLERANCE_SECS
        );
        tracing::warn!(peer = %info.from, "refused an envelope dated in the future: {detail}");
        let place = in_order.then_some(slot);
        return refuse_in_place(batch, &signer, me, id, &info, place, now, reason, detail);
    }
    // The sender's log must extend what was witnessed of it (spec/PROTOCOL.md §6.6); checked
    // before the chain, so that a sender restored from an old copy (which reuses chain
    // positions) is named for what it is. Kept only for the envelope next in the chain.
    let cosignature = match &opened {
        Ok(o) if o.case_id != NODE_LOG => {
            match witness(batch, me, trusted, o, id, now, in_order, cosigns)? {
                Ok(c) => c,
                Err(inconsistency) => {
                    let reason = ReasonCode::LogInconsistent;
                    let detail = format!(
                        "your log of this case is not consistent with what we witnessed: {inconsistency}"
                    );
                    let place = in_order.then_some(slot);
                    return refuse_in_place(
                        batch, &signer, me, id, &info, place, now, reason, detail,
                    );
                }
            }
        }
        _ => None,
    };
    if !in_order {
        let reason = ReasonCode::ChainBroken;
        let detail = format!(
            "envelope #{} of {}'s chain for this case does not follow #{} (the last applied)",
            info.chain.sequence,
            info.from,
            expected - 1
        );
        let receipt = reject(batch, &signer, me, id, &info.from, now, reason, detail)?;
        // Its origin is established: a replay gets this same refusal.
        batch.store_receipt(&id.0, &receipt)?;
        return Ok((Outcome::Rejected { reason, receipt }, None));
    }
    batch.set_chain_in(
        &info.from,
        &info.case_commitment.0,
        info.chain.sequence,
        &id.0,
    )?;
    match opened {
        Ok(opened) if opened.case_id == NODE_LOG => {
            let reason = ReasonCode::InvalidSchema;
            let detail = "the case id is reserved for the node's own log".to_string();
            let receipt = reject(batch, &signer, me, id, &info.from, now, reason, detail)?;
            batch.store_receipt(&id.0, &receipt)?;
            Ok((Outcome::Rejected { reason, receipt }, Some(slot)))
        }
        Ok(opened) => {
            // Who may send what in a case (spec/PROTOCOL.md §5.4), then what the message says
            // about its case must be allowed for the sender's side.
            let carried = crate::cases::Carried {
                message: &opened.message,
                message_id: opened.info.message_id,
                envelope_id: id,
                sent_at: opened.info.sent_at,
            };
            let direction = crate::cases::Direction::Received {
                me: me.card.id(),
                from: &opened.info.from,
                recipients: &opened.recipients,
            };
            let effect = crate::cases::apply(batch, &opened.case_id, direction, carried, now)?;
            // The partner's report on evidence handed over from here: one audit entry per item.
            let mut reported = Vec::new();
            let mut refused_items = Vec::new();
            let effect = match (effect, &opened.message) {
                (Ok(e), rogatory_proto::message::Message::EvidenceManifest(m)) => {
                    match crate::evidence::record_manifest(
                        batch,
                        &opened.case_id,
                        &opened.info.from,
                        id,
                        m,
                        &me.keys.storage_key(),
                        quotas,
                        now,
                    )? {
                        Ok(refused) => {
                            refused_items = refused;
                            Ok(e)
                        }
                        Err(refusal) => Err(refusal),
                    }
                }
                (Ok(e), rogatory_proto::message::Message::EvidenceStatus(m)) => {
                    match crate::evidence::record_status(
                        batch,
                        &opened.case_id,
                        &opened.info.from,
                        m,
                        id,
                        now,
                    )? {
                        Ok(events) => {
                            reported = events;
                            Ok(e)
                        }
                        Err(refusal) => Err(refusal),
                    }
                }
                (other, _) => other,
            };
            let confirm = match effect {
                Ok(crate::cases::Effect::Confirm(m)) => Some(m),
                Ok(crate::cases::Effect::Nothing) => None,
                Err(refusal) => {
                    let reason = refusal.reason();
                    let detail = refusal.to_string();
                    let receipt = if reason == ReasonCode::Unauthorized {
                        unauthorized(batch, me, &opened, id, now, &detail)?
                    } else {
                        reject(batch, &signer, me, id, &info.from, now, reason, detail)?
                    };
                    batch.store_receipt(&id.0, &receipt)?;
                    return Ok((Outcome::Rejected { reason, receipt }, Some(slot)));
                }
            };
            let meta = Received {
                case_id: opened.case_id,
                from: opened.info.from.clone(),
                message_type: opened.message.kind().as_str().to_string(),
                message_id: opened.info.message_id,
                sent_at: opened.info.sent_at,
                received_at: now,
                sequence: opened.info.chain.sequence,
                emergency: opened.message.is_emergency(),
                arrival: 0,
            };
            batch
                .insert_inbox(&id.0, bytes, Some(&meta))
                .context("cannot store the envelope")?;
            let mut entries = vec![audit_entry(
                me.card.id(),
                &opened.case_id,
                now,
                AuditEvent::EnvelopeReceived,
                &opened.info.from,
                id,
            )];
            for (sha256, event) in reported {
                let mut e = audit_entry(
                    me.card.id(),
                    &opened.case_id,
                    now,
                    event,
                    &opened.info.from,
                    id,
                );
                e.commitment = Some(sha256);
                entries.push(e);
            }
            // The receipt carries our checkpoint of the case, including this envelope: signed
            // once the batch's checkpoints are (`sign_receipts`), then stored.
            batch.append(&signer, &opened.case_id, &mut entries)?;
            batch.defer_receipt(
                id.0,
                opened.case_id,
                receipt(me, id, &opened.info.from, None, now, cosignature),
            );
            Ok((
                Outcome::Accepted {
                    envelope_id: id,
                    case_id: opened.case_id,
                    receipt: Vec::new(),
                    confirm,
                    evidence: matches!(
                        opened.message,
                        rogatory_proto::message::Message::EvidenceManifest(_)
                    ),
                    refused_items,
                },
                Some(slot),
            ))
        }
        Err(e) => {
            let reason = e.reason_code();
            let receipt = reject(
                batch,
                &signer,
                me,
                id,
                &info.from,
                now,
                reason,
                e.to_string(),
            )?;
            batch.store_receipt(&id.0, &receipt)?;
            Ok((Outcome::Rejected { reason, receipt }, Some(slot)))
        }
    }
}

/// The limits under which a refused envelope's origin is checked: at least what the transport
/// reads, so that an envelope refused only for its size still takes its place in the chain.
fn origin_limits(limits: &Limits) -> Limits {
    Limits {
        max_envelope_bytes: limits
            .max_envelope_bytes
            .max(envelope::DEFAULT_MAX_ENVELOPE_BYTES),
        ..*limits
    }
}

/// The outer layer: parsed, from a pinned sender, signed by it, addressed to us.
fn outer(
    bytes: &[u8],
    me: &KeyDir,
    trusted: &Partners,
    limits: &Limits,
) -> Result<envelope::EnvelopeInfo, (ReasonCode, String)> {
    let fail = |e: envelope::OpenError| (e.reason_code(), e.to_string());
    let info = envelope::inspect(bytes, limits).map_err(fail)?;
    let signer =
        envelope::TrustedCards::signer(trusted, &info.from, &info.signer_key_id).map_err(fail)?;
    let info = envelope::verify_origin_by(bytes, &signer, limits).map_err(fail)?;
    if &info.to != me.card.id() {
        return Err((
            ReasonCode::NotAddressee,
            format!(
                "the envelope is addressed to {}, not to {}",
                info.to,
                me.card.id()
            ),
        ));
    }
    Ok(info)
}

/// Witnesses the checkpoint an opened envelope carries: checks it against the last one
/// witnessed from the sender for the case (with the carried consistency proof) and returns the
/// cosignature line for the receipt. An envelope without a checkpoint gets no cosignature. The
/// checkpoint becomes the last witnessed only with `keep` (the envelope is the next of its
/// chain). The inner `Err` is an inconsistency: an alert and an audit entry are recorded (the
/// caller refuses the envelope), and the witnessed checkpoint stays as it was.
#[allow(clippy::too_many_arguments)]
fn witness(
    batch: &mut Batch<'_>,
    me: &KeyDir,
    trusted: &Partners,
    opened: &envelope::Opened,
    id: EnvelopeId,
    now: u64,
    keep: bool,
    cosigns: &mut Cosigns,
) -> Result<Result<Option<Vec<u8>>, rogatory_proto::audit::witness::Inconsistency>> {
    use rogatory_proto::audit::note::{Checkpoint, Note, NoteVerifier, SIG_ED25519};
    use rogatory_proto::audit::witness;
    let Some(note) = &opened.info.checkpoint else {
        return Ok(Ok(None));
    };
    let from = &opened.info.from;
    let case = &opened.case_id;
    let Some(history) = trusted.get(from) else {
        return Err(anyhow::anyhow!("{from} opened but has no pinned card"));
    };
    // The checkpoint is signed with one of the sender's signing keys that is not revoked: the
    // current one, or the one before a rotation if the log has not grown since.
    let name = log_key_name(from);
    let ids: Vec<u32> = Note::parse(note)
        .map(|n| n.signatures().iter().map(|s| s.id).collect())
        .unwrap_or_default();
    let mut log = None;
    for card in history.cards().iter().rev() {
        let ok = history.signer(card.signing_key().id()).is_ok();
        let v = NoteVerifier::new(&name, SIG_ED25519, card.signing_key())
            .context("the sender's log key")?;
        if ok && (log.is_none() || ids.contains(&v.id())) {
            let matches = ids.contains(&v.id());
            log = Some(v);
            if matches {
                break;
            }
        }
    }
    let Some(log) = log else {
        return Err(anyhow::anyhow!(
            "{from} has no signing key that is not revoked"
        ));
    };
    let witnessed = batch.witnessed(from, case)?;
    // The very checkpoint witnessed last (the sender's envelopes of one batch carry the same):
    // verified then, consistent with itself; only the cosignature is needed, once a second.
    if witnessed.as_deref() == Some(note.as_slice()) {
        let body = Note::parse(note)
            .map(|n| n.text().to_string())
            .context("a witnessed checkpoint in the store does not parse")?;
        let line = cosigns.cosign(note, now, || {
            witness::cosign(&body, &log_key_name(me.card.id()), &me.keys.signing, now)
                .context("cannot cosign")
        })?;
        return Ok(Ok(Some(line)));
    }
    let last = witnessed
        .map(|n| {
            Note::parse(&n)
                .and_then(|n| Checkpoint::parse(n.text()))
                .context("a witnessed checkpoint in the store does not parse")
        })
        .transpose()?;
    let origin = case_origin(from, case);
    match witness::witness(
        note,
        &log,
        &origin,
        last.as_ref(),
        opened.info.consistency.as_ref(),
    ) {
        Ok(cp) => {
            if keep {
                batch.set_witnessed(from, case, note)?;
            }
            let line = cosigns.cosign(note, now, || {
                witness::cosign(
                    &cp.body(),
                    &log_key_name(me.card.id()),
                    &me.keys.signing,
                    now,
                )
                .context("cannot cosign")
            })?;
            Ok(Ok(Some(line)))
        }
        Err(inconsistency) => {
            tracing::error!(peer = %from, case = %case, envelope = %id, kind = inconsistency.kind(), "ALERT: {from}'s log of case {case} is not consistent with what this node witnessed: {inconsistency}");
            batch.raise_alert(&crate::store::Alert {
                at: now,
                peer: from.clone(),
                case_id: *case,
                kind: inconsistency.kind().into(),
                detail: inconsistency.to_string(),
                envelope_id: Some(id),
            })?;
            let mut e = audit_entry(
                me.card.id(),
                case,
                now,
                AuditEvent::PeerLogInconsistent,
                from,
                id,
            );
            e.commitment = Some(Sha256Digest::of(note));
            let signer = LogSigner {
                agency: me.card.id(),
                key: &me.keys.signing,
            };
            // In the case's log when this node has one; a case never opened here has none.
            let log_of = if batch.has_log(case)? {
                *case
            } else {
                NODE_LOG
            };
            batch.append(&signer, &log_of, &mut [e])?;
            Ok(Err(inconsistency))
        }
    }
}

/// Cosignatures this node made, by the checkpoint and the second: a cosignature (C2SP
/// tlog-cosignature) is a deterministic signature of the checkpoint's body and the time, so the
/// many envelopes of one batch of the sender, carrying the same checkpoint, need one.
#[derive(Default)]
pub struct Cosigns {
    made: std::collections::HashMap<(Sha256Digest, u64), Vec<u8>>,
}

impl Cosigns {
    /// The cosignature of `note` at `now`, made once.
    fn cosign(
        &mut self,
        note: &[u8],
        now: u64,
        make: impl FnOnce() -> Result<String>,
    ) -> Result<Vec<u8>> {
        let key = (Sha256Digest::of(note), now);
        if let Some(line) = self.made.get(&key) {
            return Ok(line.clone());
        }
        let line = make()?.into_bytes();
        if self.made.len() >= 1024 {
            self.made.clear();
        }
        self.made.insert(key, line.clone());
        Ok(line)
    }
}

/// Most `unauthorized` alerts raised for one partner in [`ALERT_WINDOW_SECS`]: beyond them the
/// refusals are still logged and answered, but not raised again.
pub const MAX_UNAUTHORIZED_ALERTS: usize = 10;
/// The window of [`MAX_UNAUTHORIZED_ALERTS`].
pub const ALERT_WINDOW_SECS: u64 = 3600;

/// Refuses a message its sender may not send in its case (spec/PROTOCOL.md §5.4): logs the
/// refusal (`envelope-rejected`, reason `unauthorized`, with the sender as `peer`) in the case's
/// own log when this node has one, so that an audit of the case shows who tried what, else in
/// the node log; raises an alert (a correct node refuses such a message before sealing it, so
/// one that arrives was sealed past its node's checks), at most [`MAX_UNAUTHORIZED_ALERTS`] per
/// partner an hour; returns the signed rejection receipt.
fn unauthorized(
    batch: &mut Batch<'_>,
    me: &KeyDir,
    opened: &envelope::Opened,
    id: EnvelopeId,
    now: u64,
    detail: &str,
) -> Result<Vec<u8>> {
    let from = &opened.info.from;
    let case = &opened.case_id;
    let reason = ReasonCode::Unauthorized;
    let kind = opened.message.kind();
    tracing::error!(peer = %from, case = %case, envelope = %id, r#type = %kind, "ALERT: refused a {kind} from {from}: {detail}");
    let recent = batch
        .alerts_since(now.saturating_sub(ALERT_WINDOW_SECS))?
        .iter()
        .filter(|a| &a.peer == from && a.kind == reason.name())
        .count();
    if recent < MAX_UNAUTHORIZED_ALERTS {
        batch.raise_alert(&crate::store::Alert {
            at: now,
            peer: from.clone(),
            case_id: *case,
            kind: reason.name().into(),
            detail: format!("a {kind} from {from} was refused: {detail}"),
            envelope_id: Some(id),
        })?;
    }
    let log_of = if batch.has_log(case)? {
        *case
    } else {
        NODE_LOG
    };
    let mut e = audit_entry(
        me.card.id(),
        &log_of,
        now,
        AuditEvent::EnvelopeRejected,
        from,
        id,
    );
    e.reason = Some(u16::from(reason));
    let signer = LogSigner {
        agency: me.card.id(),
        key: &me.keys.signing,
    };
    batch
        .append(&signer, &log_of, &mut [e])
        .context("cannot log the refusal")?;
    sign_rejection(me, id, from, reason, detail.to_string(), now)
}

/// Refuses an envelope whose origin is established: the signed refusal is stored (a replay
/// gets the same), and, when it was next in its sender's chain (`place`), it takes that place.
#[allow(clippy::too_many_arguments)]
fn refuse_in_place(
    batch: &mut Batch<'_>,
    signer: &LogSigner<'_>,
    me: &KeyDir,
    id: EnvelopeId,
    info: &envelope::EnvelopeInfo,
    place: Option<ChainSlot>,
    now: u64,
    reason: ReasonCode,
    detail: String,
) -> Result<(Outcome, Option<ChainSlot>)> {
    let receipt = reject(batch, signer, me, id, &info.from, now, reason, detail)?;
    batch.store_receipt(&id.0, &receipt)?;
    if place.is_some() {
        batch.set_chain_in(
            &info.from,
            &info.case_commitment.0,
            info.chain.sequence,
            &id.0,
        )?;
    }
    Ok((Outcome::Rejected { reason, receipt }, place))
}

/// Logs a refusal in the node log and signs the rejection receipt.
#[allow(clippy::too_many_arguments)]
fn reject(
    batch: &mut Batch<'_>,
    signer: &LogSigner<'_>,
    me: &KeyDir,
    id: EnvelopeId,
    to: &AgencyId,
    now: u64,
    reason: ReasonCode,
    detail: String,
) -> Result<Vec<u8>> {
    let mut e = audit_entry(
        me.card.id(),
        &NODE_LOG,
        now,
        AuditEvent::EnvelopeRejected,
        to,
        id,
    );
    e.reason = Some(u16::from(reason));
    let mut entries = [e];
    batch
        .append(signer, &NODE_LOG, &mut entries)
        .context("cannot log the refusal")?;
    sign_rejection(me, id, to, reason, detail, now)
}
