//! Sending: one message (`POST /v1/send`) or several at once (`POST /v1/send/batch`), each
//! answered once its envelopes are durable, or, with `?wait=SECS`, once each is settled.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use rogatory_proto::ids::CaseId;
use rogatory_proto::message::{Message, MessageError, MessageType};

use super::access::Bearer;
use super::messages::state_name;
use super::wire::{BatchResult, ErrorBody, QueuedRow, SendBatch, SendBody, Sent, SentBatch, Wait};
use super::{ApiError, ApiState, Authorized, MAX_WAIT_SECS};
use crate::engine::{Job, SendRequest};
use crate::people::Caller;
use crate::store::OutboxState;

/// The most messages one `POST /v1/send/batch` takes.
pub const MAX_BATCH: usize = 64;

/// A message given as JSON, checked against its type's rules.
fn parse_message(kind: MessageType, body: &serde_json::Value) -> Result<Message, ApiError> {
    Message::from_json(kind, body)
        .and_then(|m| m.validate().map(|()| m))
        .map_err(|e| refused_message(&format!("this {kind} cannot be sent"), e))
}

/// A message that did not parse or validate, as a 422 listing every problem after `what`.
pub(super) fn refused_message(what: &str, e: MessageError) -> ApiError {
    match e {
        MessageError::Invalid { problems, .. } => ApiError::invalid(format!(
            "{what}: {}",
            problems
                .0
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        )),
        other => ApiError::invalid(other.to_string()),
    }
}

/// The case a send names: an existing UUIDv7, or a new one.
fn send_case(case: &str) -> Result<CaseId, ApiError> {
    if case == "new" {
        return Ok(CaseId::generate());
    }
    let c: CaseId = case
        .parse()
        .map_err(|_| ApiError::invalid(format!("case {case:?} is not a UUID (or `new`)")))?;
    if c.0.get_version_num() != 7 {
        return Err(ApiError::invalid(format!("case {c} is not a UUIDv7")));
    }
    if c == crate::store::NODE_LOG {
        return Err(ApiError::invalid(format!(
            "case {c} is reserved for the node's own log"
        )));
    }
    Ok(c)
}

/// Seals a message for its addressees (one envelope each, at the next position of the case's
/// chain to each) and queues it; answered once it is durable, or, with `?wait=SECS`, once each
/// envelope is settled (delivered or rejected: its `state`) or the time is up.
#[utoipa::path(post, path = "/v1/send", tag = "messages", request_body = SendBody, params(Wait),
    responses((status = 200, description = "The answer", body = Sent), (status = 409, description = "Conflicts with the state of the case or item", body = ErrorBody),
        (status = 422, description = "Refused as given", body = ErrorBody), (status = 500, description = "The node's store failed; nothing was recorded", body = ErrorBody),
        (status = 503, description = "The node is stopping", body = ErrorBody)))]
pub async fn send(
    Authorized(user): Authorized,
    axum::Extension(caller): axum::Extension<Caller>,
    token: Option<axum::Extension<Bearer>>,
    State(s): State<Arc<ApiState>>,
    Query(w): Query<Wait>,
    Json(b): Json<SendBody>,
) -> Result<Json<Sent>, ApiError> {
    let official = Official::new(&s, &caller, token.as_ref().map(|t| &t.0));
    let mut sent = send_one(&s, user, &caller, &official, b).await?;
    settle(&s, std::slice::from_mut(&mut sent), w.wait).await?;
    Ok(Json(sent))
}

/// Several messages, each sent as `POST /v1/send` sends it and refused or queued on its own
/// (one refused does not hold back the others), handed to the store worker together and in the
/// order given (messages of one case take their places in its chain in that order), so that
/// they share its group commits. The answer lists one result per message, in order; with
/// `?wait=SECS`, once every queued envelope is settled or the time is up.
#[utoipa::path(post, path = "/v1/send/batch", tag = "messages", request_body = SendBatch, params(Wait),
    responses((status = 200, description = "One result per message, in order", body = SentBatch),
        (status = 422, description = "No message, or more than 64", body = ErrorBody),
        (status = 503, description = "The node is stopping", body = ErrorBody)))]
pub async fn send_batch(
    Authorized(user): Authorized,
    axum::Extension(caller): axum::Extension<Caller>,
    token: Option<axum::Extension<Bearer>>,
    State(s): State<Arc<ApiState>>,
    Query(w): Query<Wait>,
    Json(b): Json<SendBatch>,
) -> Result<Json<SentBatch>, ApiError> {
    if b.messages.is_empty() || b.messages.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "a batch holds 1 to {MAX_BATCH} messages, not {}",
            b.messages.len()
        )));
    }
    let official = Official::new(&s, &caller, token.as_ref().map(|t| &t.0));
    // The caller's key as an official, if any message needs it, is opened first and once: then
    // no message waits for it, and each is handed to the worker in the order given.
    let needs_key = b.messages.iter().any(|m| {
        m.kind
            .parse::<MessageType>()
            .is_ok_and(|k| s.signed.contains(&k) || s.validated.contains(&k))
    });
    if needs_key {
        official.get().await?;
    }
    let each = b
        .messages
        .into_iter()
        .map(|m| send_one(&s, user.clone(), &caller, &official, m));
    let outcomes = futures::future::join_all(each).await;
    let mut sent: Vec<Sent> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().cloned())
        .collect();
    settle(&s, &mut sent, w.wait).await?;
    let mut sent = sent.into_iter();
    let results = outcomes
        .into_iter()
        .map(|o| match o {
            Ok(_) => BatchResult {
                status: 200,
                sent: sent.next(),
                error: None,
            },
            Err(ApiError(status, error)) => BatchResult {
                status: status.as_u16(),
                sent: None,
                error: Some(error),
            },
        })
        .collect();
    Ok(Json(SentBatch { results }))
}

/// With `wait` seconds, waits until every envelope queued by `sent` is settled (or the time is
/// up) and gives each its state; with 0, leaves them as they are.
async fn settle(s: &Arc<ApiState>, sent: &mut [Sent], wait: u64) -> Result<(), ApiError> {
    if wait == 0 {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait.min(MAX_WAIT_SECS));
    for row in sent.iter_mut().flat_map(|s| s.queued.iter_mut()) {
        let mut key = [0u8; 32];
        hex::decode_to_slice(&row.envelope_id, &mut key).map_err(ApiError::internal)?;
        // Registered before reading, so a settlement in between is not missed.
        let mut woken = s.watch.envelope(key);
        // The envelopes are committed already: a read that fails here only means waiting for
        // the settlement instead of finding it.
        let mut state = match s.store.outbox_entry(&key) {
            Ok(entry) => entry.map_or(OutboxState::Queued, |e| e.state),
            Err(e) => {
                tracing::warn!("cannot read a queued envelope back, waiting for it: {e}");
                OutboxState::Queued
            }
        };
        if state == OutboxState::Queued
            && let Ok(Some(settled)) = tokio::time::timeout_at(deadline, woken.settled()).await
        {
            state = settled;
        }
        row.state = Some(state_name(state).to_string());
    }
    Ok(())
}

/// One message of a send: refused, kept as a draft for approval, or queued.
async fn send_one(
    s: &Arc<ApiState>,
    user: Option<String>,
    caller: &Caller,
    official: &Official<'_>,
    b: SendBody,
) -> Result<Sent, ApiError> {
    if b.to.is_empty() {
        return Err(ApiError::invalid("no addressee"));
    }
    let to =
        b.to.iter()
            .map(|t| s.partner(t))
            .collect::<Result<Vec<_>, _>>()?;
    let case = send_case(&b.case)?;
    let kind: MessageType = b
        .kind
        .parse()
        .map_err(|e| ApiError::invalid(format!("{e}")))?;
    if kind == MessageType::EvidenceManifest {
        return Err(ApiError::invalid(
            "an evidence manifest is sent with `rogatory evidence send` (POST /v1/evidence/{case}/send), which keeps the items it lists and their content keys",
        ));
    }
    if kind == MessageType::EvidenceStatus {
        return Err(ApiError::invalid(
            "an evidence status is written by the node itself when an item arrives, is verified or quarantined, or is exported",
        ));
    }
    let message = parse_message(kind, &b.body)?;
    let request = Box::new(SendRequest {
        to,
        case,
        message,
        user,
        confirmation: false,
        officers: Vec::new(),
        made: Vec::new(),
        message_id: None,
    });
    // An issuing authority's own message of a type that needs validation: signed now, kept
    // until a validating authority countersigns (spec/PEOPLE.md §6).
    if s.validated.contains(&kind) && caller.may(crate::people::Permission::Approve) {
        let Some(o) = official.get().await? else {
            return Err(ApiError::invalid(format!(
                "a {kind} is validated before it is sent: its issuer signs it with a key the agency certified (rogatory user certify)"
            )));
        };
        let mut request = request;
        let body = request
            .message
            .to_cbor()
            .map_err(|e| ApiError::invalid(e.to_string()))?;
        let of = (&case, request.to.as_slice(), kind.as_str(), &body[..]);
        let (message_id, signature) = super::drafts::issue_signature(s, &o, of);
        request.made = vec![signature];
        request.message_id = Some(message_id);
        let d = s.worker.ask(|reply| Job::Draft { request, reply }).await?;
        tracing::info!(draft = %d.id.to_hex(), by = %d.drafted_by, kind = %d.kind, "a message waits for a validating authority");
        return Ok(drafted(&case, kind, &d));
    }
    // An official who may not approve drafts what needs approval (spec/PEOPLE.md §6).
    if s.approval.contains(&kind)
        && matches!(caller, crate::people::Caller::Account(_))
        && !caller.may(crate::people::Permission::Approve)
    {
        let d = s.worker.ask(|reply| Job::Draft { request, reply }).await?;
        tracing::info!(draft = %d.id.to_hex(), by = %d.drafted_by, kind = %d.kind, "a message waits for an issuing authority's approval");
        return Ok(drafted(&case, kind, &d));
    }
    let mut request = request;
    if s.signed.contains(&kind)
        && let Some(o) = official.get().await?
    {
        request.officers.push(o);
    }
    let queued = s.worker.ask(|reply| Job::Send { request, reply }).await?;
    Ok(Sent {
        case_id: case.to_string(),
        kind: kind.as_str().to_string(),
        queued: queued.iter().map(QueuedRow::from).collect(),
        draft: None,
    })
}

/// The answer for a message kept as a draft: nothing queued.
fn drafted(case: &CaseId, kind: MessageType, d: &crate::store::Draft) -> Sent {
    Sent {
        case_id: case.to_string(),
        kind: kind.as_str().to_string(),
        queued: Vec::new(),
        draft: Some(super::wire::DraftRow::from(d)),
    }
}

/// The caller's own key as an official (spec/PEOPLE.md §5), opened at most once per request:
/// each opening is an Argon2id derivation, and the node does only a few at once.
struct Official<'a> {
    s: &'a Arc<ApiState>,
    caller: &'a Caller,
    token: Option<&'a Bearer>,
    opened: tokio::sync::OnceCell<Option<crate::engine::OfficerSigner>>,
}

impl<'a> Official<'a> {
    fn new(s: &'a Arc<ApiState>, caller: &'a Caller, token: Option<&'a Bearer>) -> Self {
        Self {
            s,
            caller,
            token,
            opened: tokio::sync::OnceCell::new(),
        }
    }

    /// The key, if the agency's key history certifies the caller's now.
    async fn get(&self) -> Result<Option<crate::engine::OfficerSigner>, ApiError> {
        self.opened
            .get_or_try_init(|| super::access::own_officer(self.s, self.caller, self.token))
            .await
            .cloned()
    }
}
