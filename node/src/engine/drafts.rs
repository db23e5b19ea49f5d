//! Four-eyes approval (spec/PEOPLE.md §6): a message an official without the issuing
//! authority's role sends, of a type that needs approval, is kept as a draft; an issuing
//! authority other than its drafter approves it (then, and only then, it is sealed and queued, in
//! the same transaction) or rejects it. Drafting, approval and rejection are entries of the
//! node's own log; an approval is also an entry of the case's log, after its `envelope-sent`.

use anyhow::Result;
use rogatory_proto::audit::entry::{Actor, AuditEntry, AuditEvent};
use rogatory_proto::ids::{CaseId, Sha256Digest};
use rogatory_proto::message::{Message, MessageType};
use sha2::{Digest, Sha256};

use super::{Engine, Error, Reply, SendRequest};
use crate::store::{Batch, Draft, DraftState, NODE_LOG};

/// Most drafts waiting at once: beyond, a new one is refused until some are decided.
pub(super) const MAX_WAITING_DRAFTS: usize = 10_000;

/// The draft `id`, or why not.
fn load(batch: &Batch<'_>, id: &Sha256Digest) -> Result<Result<Draft, Error>> {
    Ok(batch
        .draft(&id.0)?
        .ok_or_else(|| Error::NotFound(format!("no draft {}", id.to_hex()))))
}

/// A stored draft's message (a store failure if it no longer decodes: it was checked when kept).
fn message_of(d: &Draft, limit: usize) -> Result<Message> {
    let kind: MessageType = d
        .kind
        .parse()
        .map_err(|e| anyhow::anyhow!("a stored draft's type: {e}"))?;
    Message::from_cbor(kind, &d.message, limit)
        .map_err(|e| anyhow::anyhow!("a stored draft does not decode: {e}"))
}

impl Engine {
    /// Keeps `r` as a draft; nothing is sealed.
    pub(super) fn draft(
        &self,
        batch: &mut Batch<'_>,
        r: &SendRequest,
    ) -> Result<Result<Draft, Error>> {
        let Some(user) = r.user.clone() else {
            return Ok(Err(Error::Invalid(
                "a draft needs the account that drafts it".into(),
            )));
        };
        let waiting = self
            .store
            .drafts()?
            .iter()
            .filter(|d| d.state == DraftState::AwaitingApproval)
            .count();
        if waiting >= MAX_WAITING_DRAFTS {
            return Ok(Err(Error::Conflict(format!(
                "{MAX_WAITING_DRAFTS} drafts wait for approval already: decide some first"
            ))));
        }
        let message = match r.message.to_cbor() {
            Ok(m) => m,
            Err(e) => return Ok(Err(Error::Invalid(format!("the message: {e}")))),
        };
        let now = rogatory_proto::time::now_unix();
        let mut nonce = [0u8; 16];
        rogatory_proto::keys::fill_random(&mut nonce);
        let id = Sha256Digest(
            Sha256::new()
                .chain_update(b"rogatory/draft/v1\0")
                .chain_update(nonce)
                .chain_update(r.case.as_bytes())
                .chain_update(&message)
                .finalize()
                .into(),
        );
        let d = Draft {
            id,
            case_id: r.case,
            to: r.to.clone(),
            kind: r.message.kind().as_str().to_string(),
            message,
            drafted_by: user.clone(),
            drafted_at: now,
            state: DraftState::AwaitingApproval,
            decided_by: None,
            decided_at: None,
            reason: None,
            envelopes: Vec::new(),
            message_id: r.message_id,
            issued: r
                .made
                .first()
                .map(crate::store::records::IssuerSignature::of),
            validated_by: None,
        };
        let mut d = d;
        if d.issued.is_some() {
            // An issuing authority's own message of a type that needs validation.
            d.state = DraftState::AwaitingValidation;
        }
        batch.put_draft(&d)?;
        let entry = self.draft_entry(&NODE_LOG, now, AuditEvent::DraftCreated, &d, user);
        batch.append(&self.signer(), &NODE_LOG, &mut [entry])?;
        Ok(Ok(d))
    }

    /// Approves (seals and queues, in this transaction) or rejects a draft.
    pub(super) fn decide(
        &self,
        batch: &mut Batch<'_>,
        id: &Sha256Digest,
        approve: bool,
        (user, officers): (&str, Vec<super::OfficerSigner>),
        reason: Option<String>,
        replies: &mut Vec<Reply>,
    ) -> Result<Result<Draft, Error>> {
        let mut d = match load(batch, id)? {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        // Waiting for approval: approved or rejected; waiting for validation: only rejected.
        let open = d.state == DraftState::AwaitingApproval
            || (d.state == DraftState::AwaitingValidation && !approve);
        if !open {
            return Ok(Err(Error::Conflict(format!(
                "draft {} is {} already (by {})",
                &d.id.to_hex()[..16],
                d.state.as_str(),
                d.decided_by.as_deref().unwrap_or("?")
            ))));
        }
        if approve && d.drafted_by == user {
            return Ok(Err(Error::Invalid(format!(
                "{user} drafted this message: another issuing authority must approve it (four eyes)"
            ))));
        }
        let now = rogatory_proto::time::now_unix();
        if approve {
            let message = message_of(&d, self.limits.max_envelope_bytes)?;
            let request = SendRequest {
                to: d.to.clone(),
                case: d.case_id,
                message,
                user: Some(user.to_string()),
                confirmation: false,
                officers,
                made: Vec::new(),
                message_id: None,
            };
            // The case's machine decides now, as for any send: a refusal leaves the draft
            // waiting and nothing recorded.
            let queued = match self.seal(batch, &request, replies)? {
                Ok(q) => q,
                Err(e) => return Ok(Err(e)),
            };
            d.envelopes = queued.iter().map(|q| q.envelope_id).collect();
            d.state = DraftState::Approved;
            let in_case = self.draft_entry(
                &d.case_id,
                now,
                AuditEvent::DraftApproved,
                &d,
                user.to_string(),
            );
            batch.append(&self.signer(), &d.case_id, &mut [in_case])?;
        } else {
            d.state = DraftState::Rejected;
            d.reason = reason;
        }
        d.decided_by = Some(user.to_string());
        d.decided_at = Some(now);
        batch.put_draft(&d)?;
        let event = if approve {
            AuditEvent::DraftApproved
        } else {
            AuditEvent::DraftRejected
        };
        let entry = self.draft_entry(&NODE_LOG, now, event, &d, user.to_string());
        batch.append(&self.signer(), &NODE_LOG, &mut [entry])?;
        Ok(Ok(d))
    }

    /// An issuing authority approves a draft of a type that needs validation: their signature
    /// (made by the API with their key, over the message id fixed now) is kept, and the draft
    /// waits for a validating authority. Nothing is sealed.
    pub(super) fn issue(
        &self,
        batch: &mut Batch<'_>,
        id: &Sha256Digest,
        user: &str,
        (message_id, signature): (
            rogatory_proto::ids::MessageId,
            rogatory_proto::officer::OfficerSignature,
        ),
    ) -> Result<Result<Draft, Error>> {
        let mut d = match load(batch, id)? {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        if d.state != DraftState::AwaitingApproval {
            return Ok(Err(Error::Conflict(format!(
                "draft {} is {} already",
                &d.id.to_hex()[..16],
                d.state.as_str()
            ))));
        }
        if d.drafted_by == user {
            return Ok(Err(Error::Invalid(format!(
                "{user} drafted this message: another issuing authority must approve it (four eyes)"
            ))));
        }
        let now = rogatory_proto::time::now_unix();
        d.state = DraftState::AwaitingValidation;
        d.message_id = Some(message_id);
        d.issued = Some(crate::store::records::IssuerSignature::of(&signature));
        d.decided_by = Some(user.to_string());
        d.decided_at = Some(now);
        batch.put_draft(&d)?;
        let entry = self.draft_entry(
            &NODE_LOG,
            now,
            AuditEvent::DraftApproved,
            &d,
            user.to_string(),
        );
        batch.append(&self.signer(), &NODE_LOG, &mut [entry])?;
        Ok(Ok(d))
    }

    /// A validating authority countersigns a draft waiting for validation: sealed and queued
    /// in this transaction with the issuer's signature and theirs.
    pub(super) fn validate(
        &self,
        batch: &mut Batch<'_>,
        id: &Sha256Digest,
        user: &str,
        officer: super::OfficerSigner,
        replies: &mut Vec<Reply>,
    ) -> Result<Result<Draft, Error>> {
        let mut d = match load(batch, id)? {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        if d.state != DraftState::AwaitingValidation {
            return Ok(Err(Error::Conflict(format!(
                "draft {} is {}, not awaiting validation",
                &d.id.to_hex()[..16],
                d.state.as_str()
            ))));
        }
        if d.drafted_by == user || d.decided_by.as_deref() == Some(user) {
            return Ok(Err(Error::Invalid(format!(
                "{user} drafted or issued this message: another official must validate it"
            ))));
        }
        let (Some(message_id), Some(issued)) = (
            d.message_id,
            d.issued.as_ref().and_then(|i| i.to_signature()),
        ) else {
            return Err(anyhow::anyhow!(
                "a draft awaiting validation lacks its issuer's signature"
            ));
        };
        let message = message_of(&d, self.limits.max_envelope_bytes)?;
        let request = SendRequest {
            to: d.to.clone(),
            case: d.case_id,
            message,
            user: Some(user.to_string()),
            confirmation: false,
            officers: vec![officer],
            made: vec![issued],
            message_id: Some(message_id),
        };
        let queued = match self.seal(batch, &request, replies)? {
            Ok(q) => q,
            Err(e) => return Ok(Err(e)),
        };
        let now = rogatory_proto::time::now_unix();
        d.envelopes = queued.iter().map(|q| q.envelope_id).collect();
        d.state = DraftState::Approved;
        d.validated_by = Some(user.to_string());
        batch.put_draft(&d)?;
        for log in [d.case_id, NODE_LOG] {
            let entry =
                self.draft_entry(&log, now, AuditEvent::DraftApproved, &d, user.to_string());
            batch.append(&self.signer(), &log, &mut [entry])?;
        }
        Ok(Ok(d))
    }

    /// Logs that `user` reads a draft's message (`content-accessed` in the node's log, with the
    /// draft's id), before it is shown.
    pub(super) fn draft_read(
        &self,
        batch: &mut Batch<'_>,
        id: &Sha256Digest,
        user: Option<String>,
    ) -> Result<Result<(), Error>> {
        let d = match load(batch, id)? {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let now = rogatory_proto::time::now_unix();
        let mut entry = self.draft_entry(
            &NODE_LOG,
            now,
            AuditEvent::ContentAccessed,
            &d,
            String::new(),
        );
        entry.actor.user = user;
        batch.append(&self.signer(), &NODE_LOG, &mut [entry])?;
        Ok(Ok(()))
    }

    fn draft_entry(
        &self,
        log: &CaseId,
        time: u64,
        event: AuditEvent,
        d: &Draft,
        user: String,
    ) -> AuditEntry {
        AuditEntry {
            seq: 0,
            time,
            case_id: *log,
            event,
            actor: Actor {
                agency: self.me.card.id().clone(),
                user: Some(user),
            },
            peer: d.to.first().cloned(),
            envelope_id: None,
            receipt_hash: None,
            transition: None,
            reason: None,
            commitment: Some(d.id),
        }
    }
}
