//! The node's case registry: for each case, its kind, this agency's side, the partner, and every
//! status or stage update applied, in order. The state is never stored on its own: it is the
//! replay of the updates through `rogatory-proto::case`, so it cannot disagree with them.
//!
//! Updates are checked in the same write transaction that seals an outgoing message or stores an
//! incoming one (`engine::seal`, `engine::receive`): an illegal one is refused locally, or answered with an
//! `illegal-transition` rejection receipt, and changes nothing. The requested side orders each
//! case (`rogatory_proto::case::order`): the requesting side's updates are proposals, which the
//! requested side's node confirms by sending them back, so both sides end with one history.

use rogatory_proto::case::authz::{self, Rule, Standing, Unauthorized};
use rogatory_proto::case::order::{Applied, Replica};
use rogatory_proto::case::{Day, IllegalTransition, Side};
use rogatory_proto::ids::{AgencyId, CaseId, EnvelopeId, MessageId};
use rogatory_proto::message::{ExtraditionStage, Message, MessageType};
use rogatory_proto::receipt::ReasonCode;

use crate::store::{Batch, Store, StoreError};

pub use crate::store::records::{
    CaseKind, CaseRecord, ExtraditionReplica, MlaReplica, Preservation, UpdateMeta,
};

/// The message a case update travels in, as `apply` needs it.
#[derive(Debug, Clone, Copy)]
pub struct Carried<'a> {
    /// The message.
    pub message: &'a Message,
    /// Its message id (the same in every addressee's envelope).
    pub message_id: MessageId,
    /// The envelope (to this partner).
    pub envelope_id: EnvelopeId,
    /// The sender's `sent_at`, Unix seconds.
    pub sent_at: u64,
}

/// What the caller must do after `apply`.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Nothing more.
    Nothing,
    /// Send this confirmation of the partner's proposal to the partner, in the same
    /// transaction (this node is the requested side).
    Confirm(Box<Message>),
}

/// Why `apply` refused a message; nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The sender may not send this message in this case (spec/PROTOCOL.md §5.4): answered
    /// `unauthorized`.
    #[error("{0}")]
    Unauthorized(#[from] Unauthorized),
    /// The case's state machine does not allow it: answered `illegal-transition`.
    #[error("{0}")]
    Illegal(#[from] IllegalTransition),
    /// It would exceed a limit this node sets (items in a manifest or a case): answered
    /// `over-quota`.
    #[error("{0}")]
    OverQuota(String),
}

impl Refusal {
    /// The receipt's reason code for this refusal.
    pub fn reason(&self) -> ReasonCode {
        match self {
            Refusal::Unauthorized(_) => ReasonCode::Unauthorized,
            Refusal::Illegal(_) => ReasonCode::IllegalTransition,
            Refusal::OverQuota(_) => ReasonCode::OverQuota,
        }
    }
}

/// Which way a message goes, as `apply` needs it.
#[derive(Debug, Clone, Copy)]
pub enum Direction<'a> {
    /// This node seals it for these addressees.
    Sent {
        /// This agency.
        me: &'a AgencyId,
        /// The addressees.
        to: &'a [AgencyId],
    },
    /// It arrived here.
    Received {
        /// This agency.
        me: &'a AgencyId,
        /// The sender.
        from: &'a AgencyId,
        /// Every addressee the sender named (the inner `recipients`).
        recipients: &'a [AgencyId],
    },
}

/// Where `from` stands towards a case as this node knows it (`None`: the case is not known).
pub fn standing(record: Option<&CaseRecord>, from: &AgencyId) -> Standing {
    match record {
        None => Standing::Unknown,
        Some(r) if &r.peer == from => Standing::Partner,
        Some(r) if r.copied.contains(from) => Standing::Copied,
        Some(_) => Standing::Outsider,
    }
}

/// Checks a message against the authorization rules of spec/PROTOCOL.md §5.4 for the case as
/// this node knows it (`record`), in either direction. `Ok` carries the sender's standing (for
/// a message received) or the partner's (sent). Pure: it reads and writes nothing.
pub fn authorize(
    record: Option<&CaseRecord>,
    message: &Message,
    direction: Direction<'_>,
) -> Result<Standing, Refusal> {
    let kind = message.kind();
    match direction {
        Direction::Received {
            me,
            from,
            recipients,
        } => {
            let standing = standing(record, from);
            let rule = authz::rule(kind, standing);
            let case = record.map_or("this case".to_string(), |r| format!("case {}", r.case_id));
            match rule {
                Rule::Refused if standing == Standing::Unknown => {
                    return Err(Unauthorized(format!(
                        "{case} is not known here: a {kind} belongs in a case opened with {from} first"
                    ))
                    .into());
                }
                Rule::Refused => {
                    let partner = record.map_or_else(String::new, |r| {
                        format!(" (its parties are {me} and {})", r.peer)
                    });
                    return Err(Unauthorized(format!(
                        "{from} is {standing} {case}{partner}: it may not send a {kind} in it"
                    ))
                    .into());
                }
                Rule::NoRequest => {
                    return Err(IllegalTransition(
                        "there is no MLA request in this case to report on".into(),
                    )
                    .into());
                }
                Rule::RequestingSide => {
                    if record.is_some_and(|r| r.our_side != Side::Requested) {
                        return Err(Unauthorized(format!(
                            "{from} is the requested side of {case}: a request the other way opens a case of its own"
                        ))
                        .into());
                    }
                }
                Rule::Opens | Rule::Allowed | Rule::HandedOver => {}
            }
            if authz::partner_only(kind) && recipients.iter().any(|r| r != me) {
                return Err(Unauthorized(format!(
                    "a {kind} goes to one agency, the case's partner; this one names {}",
                    join(recipients)
                ))
                .into());
            }
            authz::check_fields(message, from, me)?;
            Ok(standing)
        }
        Direction::Sent { me, to } => {
            if authz::partner_only(kind) {
                let [addressee] = to else {
                    return Err(Unauthorized(format!(
                        "a {kind} goes to one agency, the case's partner, not to {}",
                        join(to)
                    ))
                    .into());
                };
                if let Some(r) = record
                    && &r.peer != addressee
                {
                    return Err(Unauthorized(format!(
                        "{addressee} is {} case {}, whose partner is {}: a {kind} goes to the partner (to work with {addressee}, open a case with it)",
                        standing(record, addressee),
                        r.case_id,
                        r.peer
                    ))
                    .into());
                }
                if matches!(
                    kind,
                    MessageType::MlaRequest | MessageType::PreservationRequest
                ) && record.is_some_and(|r| r.our_side != Side::Requesting)
                {
                    return Err(Unauthorized(format!(
                        "this agency is the requested side of this case: a request to {addressee} opens a case of its own"
                    ))
                    .into());
                }
                authz::check_fields(message, me, addressee)?;
            }
            Ok(Standing::Partner)
        }
    }
}

fn join(ids: &[AgencyId]) -> String {
    ids.iter()
        .map(AgencyId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies what a message says about its case, within `batch`, after checking it against the
/// authorization rules ([`authorize`]): creates the case on its first message, keeps the
/// agencies copied in it, and applies a status or stage update as `rogatory_proto::case::order`
/// says (this side's proposal, the other side's update, a confirmation). The inner `Err` is a
/// refusal that changed nothing but, for a proposal this node (the requested side) refused, the
/// record of that refusal; the outer one a store failure.
pub fn apply(
    batch: &mut Batch<'_>,
    case_id: &CaseId,
    direction: Direction<'_>,
    carried: Carried<'_>,
    now: u64,
) -> Result<Result<Effect, Refusal>, StoreError> {
    let message = carried.message;
    let existing = batch.case_record(case_id)?;
    if let Err(refusal) = authorize(existing.as_ref(), message, direction) {
        return Ok(Err(refusal));
    }
    let (we_send, peer) = match direction {
        Direction::Sent { to, .. } => match to.first() {
            Some(first) => (true, first),
            None => {
                return Ok(Err(
                    Unauthorized("a message needs an addressee".into()).into()
                ));
            }
        },
        Direction::Received { from, .. } => (false, from),
    };
    let (kind, sender_if_new) = match message {
        Message::MlaRequest(_) | Message::MlaStatus(_) => (CaseKind::Mla, Side::Requesting),
        Message::ExtraditionStatus(u) => (
            CaseKind::Extradition,
            match u.stage {
                Some(
                    ExtraditionStage::ProvisionalArrestRequested
                    | ExtraditionStage::FormalRequestReceived
                    | ExtraditionStage::Withdrawn,
                ) => Side::Requesting,
                _ => Side::Requested,
            },
        ),
        Message::Liaison(_) => (CaseKind::Liaison, Side::Requesting),
        Message::PreservationRequest(_) => (CaseKind::Preservation, Side::Requesting),
        // Evidence belongs to the case it is sent in, which exists (`authorize`).
        Message::EvidenceManifest(_) | Message::EvidenceStatus(_) => {
            return Ok(Ok(Effect::Nothing));
        }
    };
    let mut record = match existing {
        Some(r) => r,
        None => {
            if matches!(message, Message::MlaStatus(_)) {
                return Ok(Err(IllegalTransition(
                    "there is no MLA request in this case to report on".into(),
                )
                .into()));
            }
            let our_side = if we_send {
                sender_if_new
            } else {
                sender_if_new.other()
            };
            CaseRecord::new(*case_id, kind, our_side, peer.clone(), now)
        }
    };
    // Those copied: the other addressees of what this node sends, and the co-addressees the
    // partner names.
    let copied: Vec<&AgencyId> = match direction {
        Direction::Sent { to, .. } => to.iter().filter(|a| **a != record.peer).collect(),
        Direction::Received {
            me,
            from,
            recipients,
        } if *from == record.peer => recipients
            .iter()
            .filter(|a| *a != me && **a != record.peer)
            .collect(),
        Direction::Received { .. } => Vec::new(),
    };
    for a in copied {
        if !record.copied.contains(a) {
            record.copied.push(a.clone());
        }
    }
    // An MLA request may follow a preservation request in its case (Art. 29(7)).
    let follows_preservation =
        record.kind == CaseKind::Preservation && matches!(message, Message::MlaRequest(_));
    if record.kind == CaseKind::Preservation && matches!(message, Message::MlaStatus(_)) {
        return Ok(Err(IllegalTransition(
            "there is no MLA request in this case yet: send the MLA request first (rogatory request send)"
                .into(),
        )
        .into()));
    }
    if record.kind != kind && !matches!(message, Message::Liaison(_)) && !follows_preservation {
        return Ok(Err(IllegalTransition(format!(
            "this is {} case; a {} message does not belong in it",
            match record.kind {
                CaseKind::Mla => "an MLA",
                CaseKind::Extradition => "an extradition",
                CaseKind::Liaison => "a liaison",
                CaseKind::Preservation => "a preservation",
            },
            message.kind().as_str()
        ))
        .into()));
    }
    let meta = UpdateMeta {
        at: now,
        envelope_id: carried.envelope_id,
    };
    let mut effect = Effect::Nothing;
    match message {
        Message::MlaRequest(_) | Message::Liaison(_) | Message::PreservationRequest(_) => {
            if message.is_emergency() {
                record.emergency = true;
            }
            // A legal period runs from the day the request was sent, as the receiving node's
            // clock allows: never from a day after its arrival (spec/CASES.md §4.2).
            let sent_day = Day::of_unix(carried.sent_at.min(now)).0;
            if let Message::PreservationRequest(p) = message
                && record.preservation.is_none()
            {
                record.preservation = Some(Preservation {
                    requested_day: sent_day,
                    period_days: p.period_days,
                    mla_request_day: None,
                });
            }
            if follows_preservation {
                record.kind = CaseKind::Mla;
                if let Some(p) = record.preservation.as_mut() {
                    p.mla_request_day = Some(sent_day);
                }
            }
        }
        Message::MlaStatus(u) => {
            let our_side = record.our_side;
            let replica = record.mla.get_or_insert_with(|| Replica::new(our_side));
            let mut bare = u.clone();
            let confirms = bare.confirms.take();
            match update(replica, we_send, carried.message_id, bare, confirms, meta) {
                Ok(Some(mut c)) => {
                    c.confirms = Some(carried.message_id);
                    effect = Effect::Confirm(Box::new(Message::MlaStatus(c)));
                }
                Ok(None) => {}
                Err((e, keep)) => {
                    if keep {
                        record.updated_at = now;
                        batch.put_case_record(&record)?;
                    }
                    return Ok(Err(e.into()));
                }
            }
        }
        Message::ExtraditionStatus(u) => {
            let our_side = record.our_side;
            let replica = record
                .extradition
                .get_or_insert_with(|| Replica::new(our_side));
            let mut bare = u.clone();
            let confirms = bare.confirms.take();
            match update(replica, we_send, carried.message_id, bare, confirms, meta) {
                Ok(Some(mut c)) => {
                    c.confirms = Some(carried.message_id);
                    effect = Effect::Confirm(Box::new(Message::ExtraditionStatus(c)));
                }
                Ok(None) => {}
                Err((e, keep)) => {
                    if keep {
                        record.updated_at = now;
                        batch.put_case_record(&record)?;
                    }
                    return Ok(Err(e.into()));
                }
            }
        }
        Message::EvidenceManifest(_) | Message::EvidenceStatus(_) => {}
    }
    record.updated_at = now;
    batch.put_case_record(&record)?;
    Ok(Ok(effect))
}

/// One status or stage update through the case's replica. `Ok(Some(u))`: send `u` back as the
/// confirmation. `Err((e, keep))`: refused; `keep` says the replica recorded the refusal (a
/// proposal this node, the requested side, refused) and must be stored.
fn update<M: rogatory_proto::case::order::Machine>(
    replica: &mut Replica<M, UpdateMeta>,
    we_send: bool,
    message_id: MessageId,
    update: M::Update,
    confirms: Option<MessageId>,
    meta: UpdateMeta,
) -> Result<Option<M::Update>, (IllegalTransition, bool)> {
    if we_send {
        if confirms.is_some() {
            // Confirmations are sealed by the node itself, right after the proposal is applied
            // (see `Effect::Confirm`), never through here.
            return Err((
                IllegalTransition("a confirmation is sent by the node, not by a user".into()),
                false,
            ));
        }
        return replica
            .local(message_id, update, meta)
            .map(|_| None)
            .map_err(|e| (e, false));
    }
    match replica.remote(message_id, update.clone(), confirms, meta.clone()) {
        Ok(Applied::Confirm) => Ok(Some(update)),
        Ok(_) => Ok(None),
        Err(e) => {
            // The requested side keeps a refused proposal, so both sides show it refused.
            if replica.orders() && confirms.is_none() {
                replica.refuse_remote(message_id, update, meta, e.0.clone());
                return Err((e, true));
            }
            Err((e, false))
        }
    }
}

/// The requested side refused this node's proposal carried by `envelope`: record it as refused
/// (within the batch that records the rejection receipt). Returns whether it was a proposal.
pub fn proposal_refused(
    batch: &mut Batch<'_>,
    case_id: &CaseId,
    envelope: &EnvelopeId,
    reason: String,
    now: u64,
) -> Result<bool, StoreError> {
    let Some(mut record) = batch.case_record(case_id)? else {
        return Ok(false);
    };
    let mut found = false;
    if let Some(r) = record.mla.as_mut()
        && let Some(m) = r
            .pending
            .iter()
            .find(|e| &e.meta.envelope_id == envelope)
            .map(|e| e.message)
    {
        found = r.refused_by_peer(m, reason.clone());
    }
    if let Some(r) = record.extradition.as_mut()
        && let Some(m) = r
            .pending
            .iter()
            .find(|e| &e.meta.envelope_id == envelope)
            .map(|e| e.message)
    {
        found |= r.refused_by_peer(m, reason);
    }
    if found {
        record.updated_at = now;
        batch.put_case_record(&record)?;
    }
    Ok(found)
}

/// Opens a case before its first message (`rogatory case new`): this agency is the requesting
/// side. Refuses a case id already known.
pub fn open(batch: &mut Batch<'_>, record: &CaseRecord) -> Result<Result<(), String>, StoreError> {
    if batch.case_record(&record.case_id)?.is_some() {
        return Ok(Err(format!("case {} exists already", record.case_id)));
    }
    batch.put_case_record(record)?;
    Ok(Ok(()))
}

/// Days ahead the node's log warns of an open deadline.
pub const WARN_DAYS: i64 = 7;

/// Logs each open deadline that has passed (at error level) or is due within [`WARN_DAYS`]
/// (warning), so that an operator watching the log is told before a preservation lapses or an
/// extradition period runs out. Called at start and then every hour (`watch_deadlines`).
pub fn log_deadlines(store: &Store) {
    let records = match store.case_records() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot read the cases to check their deadlines: {e}");
            return;
        }
    };
    let today = Day::of_unix(rogatory_proto::time::now_unix());
    for r in records {
        for d in r.deadlines() {
            if d.overdue(today) {
                tracing::error!(
                    case = %r.case_id, partner = %r.peer, rule = d.name, due = %d.due,
                    "deadline passed: {}", d.what
                );
            } else if d.due_within(today, WARN_DAYS) {
                tracing::warn!(
                    case = %r.case_id, partner = %r.peer, rule = d.name, due = %d.due,
                    days_left = d.due.0 - today.0,
                    "deadline approaching: {}", d.what
                );
            }
        }
    }
}

/// Checks the deadlines every hour (after the check at start).
pub async fn watch_deadlines(store: std::sync::Arc<Store>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    every.tick().await;
    loop {
        every.tick().await;
        let s = std::sync::Arc::clone(&store);
        let _ = tokio::task::spawn_blocking(move || log_deadlines(&s)).await;
    }
}
