//! Messages: the inbox, the outbox, sending, reading one message, passing one on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use rogatory_proto::envelope::{self, Recipient};
use rogatory_proto::ids::{AgencyId, CaseId, Sha256Digest};
use rogatory_proto::message::Message;
use rogatory_proto::receipt::verify_receipt;
use rogatory_proto::time::format_unix;

use super::wire::{
    ErrorBody, Forward, Forwarded, InboxRow, MessageView, OutboxQuery, OutboxRow, QueuedRow,
    ReceiptView, Wait,
};
use super::{ApiError, ApiState, Authorized, MAX_WAIT_SECS, blocking};
use crate::engine::{Job, SendRequest};
use crate::store::{OutboxEntry, OutboxState, Store};

/// Envelopes accepted here, oldest first.
#[utoipa::path(get, path = "/v1/inbox", tag = "messages",
    responses((status = 200, description = "The answer", body = Vec<InboxRow>), (status = 401, description = "No valid bearer token", body = ErrorBody)))]
pub async fn inbox(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
) -> Result<Json<Vec<InboxRow>>, ApiError> {
    let store = Arc::clone(&s.store);
    let list = blocking(move || Ok(store.received()?)).await?;
    Ok(Json(
        list.into_iter()
            .map(|(id, r)| InboxRow {
                envelope_id: hex::encode(id),
                from: r.from.to_string(),
                case_id: r.case_id.to_string(),
                kind: r.message_type,
                message_id: r.message_id.to_string(),
                sequence: r.sequence,
                emergency: r.emergency,
                arrival: r.arrival,
                sent_at: format_unix(r.sent_at),
                received_at: format_unix(r.received_at),
            })
            .collect(),
    ))
}

/// The name of an outbox state.
pub fn state_name(s: OutboxState) -> &'static str {
    match s {
        OutboxState::Queued => "queued",
        OutboxState::Delivered => "delivered",
        OutboxState::Rejected => "rejected",
    }
}

/// An outbox entry as the API shows it, with what its receipt says (without the live state
/// of delivery, which only the running node knows).
pub fn outbox_row(e: &OutboxEntry) -> OutboxRow {
    let id = Sha256Digest::of(&e.envelope);
    // Receipts are verified before they are stored (they settle nothing otherwise): listing
    // them decodes without verifying each signature again.
    let receipt = e
        .receipt
        .as_ref()
        .and_then(|r| rogatory_proto::receipt::decode_verified_earlier(r).ok())
        .filter(|v| v.receipt.envelope_id == id)
        .map(|v| ReceiptView {
            event: event_name(v.receipt.event),
            received_at: format_unix(v.receipt.received_at),
            reason: v.receipt.reason.map(|r| r.name().to_string()),
            detail: v.receipt.detail.clone(),
            receipt_hash: v.hash.to_hex(),
            ack_secs: Some(v.receipt.received_at.saturating_sub(e.sealed_at)),
            cosignature: v
                .receipt
                .cosignature
                .as_deref()
                .map(|c| String::from_utf8_lossy(c).into_owned()),
        });
    OutboxRow {
        envelope_id: id.to_hex(),
        case_id: e.case_id.to_string(),
        to: e.to.to_string(),
        sealed_at: format_unix(e.sealed_at),
        state: state_name(e.state).into(),
        emergency: e.emergency,
        receipt,
        retry_in_secs: None,
        failures: None,
        last_error: None,
    }
}

fn event_name(e: rogatory_proto::receipt::ReceiptEvent) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The envelopes sealed here and where each stands; with `?settled=N&wait=SECS`, answered once
/// at least N are settled (or the time is up).
#[utoipa::path(get, path = "/v1/outbox", tag = "messages", params(OutboxQuery),
    responses((status = 200, description = "The answer", body = Vec<OutboxRow>), (status = 401, description = "No valid bearer token", body = ErrorBody)))]
pub async fn outbox(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    Query(q): Query<OutboxQuery>,
) -> Result<Json<Vec<OutboxRow>>, ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.min(MAX_WAIT_SECS));
    let list = loop {
        // Listening before reading, so a settlement in between is not missed.
        let woken = s.watch.anything();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let store = Arc::clone(&s.store);
        let list = blocking(move || Ok(store.outbox()?)).await?;
        let settled = list
            .iter()
            .filter(|e| e.state != OutboxState::Queued)
            .count();
        if settled >= q.settled || tokio::time::timeout_at(deadline, woken).await.is_err() {
            break list;
        }
    };
    let net = s.net.status().await.unwrap_or_default();
    let sending: HashSet<[u8; 32]> = net.sending.iter().copied().collect();
    let peers: HashMap<&str, &crate::net::PeerStatus> =
        net.peers.iter().map(|p| (p.agency.as_str(), p)).collect();
    let rows = list
        .iter()
        .map(|e| {
            let mut row = outbox_row(e);
            if e.state == OutboxState::Queued {
                let id = Sha256Digest::of(&e.envelope);
                let peer = peers.get(e.to.as_str());
                row.state = if sending.contains(&id.0) {
                    "sending".into()
                } else if let Some(p) = peer.filter(|p| p.retry_in_secs.is_some()) {
                    row.retry_in_secs = p.retry_in_secs;
                    row.failures = Some(p.failures);
                    row.last_error.clone_from(&p.last_error);
                    "waiting-for-retry".into()
                } else {
                    "queued".into()
                };
            }
            row
        })
        .collect();
    Ok(Json(rows))
}

/// One envelope sealed here, by its full id; with `?wait=SECS`, answered when it is settled
/// (delivered or rejected) or the time is up.
#[utoipa::path(get, path = "/v1/outbox/{id}", tag = "messages",
    params(("id" = String, Path, description = "The envelope id (64 hex digits)"), Wait),
    responses((status = 200, description = "The answer", body = OutboxRow), (status = 404, description = "No such thing here", body = ErrorBody)))]
pub async fn outbox_one(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Query(w): Query<Wait>,
) -> Result<Json<OutboxRow>, ApiError> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(&id, &mut key)
        .map_err(|_| ApiError::bad("give the full envelope id (64 hex digits)"))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(w.wait.min(MAX_WAIT_SECS));
    loop {
        // Registered before reading, so a settlement in between is not missed.
        let mut woken = s.watch.envelope(key);
        // One record by key, from redb's cache as a rule: read here, not on a blocking thread
        // (the handoff would cost more than the read).
        let entry = s
            .store
            .outbox_entry(&key)?
            .ok_or_else(|| ApiError::not_found("no such envelope in the outbox"))?;
        if entry.state != OutboxState::Queued || tokio::time::Instant::now() >= deadline {
            return Ok(Json(outbox_row(&entry)));
        }
        // Wait for this envelope (or the deadline), then read again; the interest is
        // forgotten when it goes out of scope, whatever happened.
        let _ = tokio::time::timeout_at(deadline, woken.settled()).await;
    }
}

/// Finds an envelope by id or unique hex prefix (at least 8 characters), among those received
/// and those sent: `(id, received)`.
fn find(store: &Store, id: &str) -> Result<Option<([u8; 32], bool)>, ApiError> {
    let id = id.to_ascii_lowercase();
    if id.len() < 8 || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad(
            "give an envelope id, or at least its first 8 hex digits",
        ));
    }
    let mut hits = store.envelopes_starting_with(&id, 2)?;
    match hits.len() {
        0 => Ok(None),
        1 => Ok(hits.pop()),
        _ => Err(ApiError::bad(format!(
            "several envelopes start with {id}: give more digits"
        ))),
    }
}

/// One message, sent or received. A received one's content is shown only once its reading is
/// logged (`content-accessed`, with the local user).
#[utoipa::path(get, path = "/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "The envelope id, or at least its first 8 hex digits")),
    responses((status = 200, description = "The answer", body = MessageView), (status = 400, description = "The request is malformed", body = ErrorBody),
        (status = 404, description = "No such thing here", body = ErrorBody)))]
pub async fn message(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<MessageView>, ApiError> {
    let st = Arc::clone(&s);
    let found = blocking(move || find(&st.store, &id)).await?;
    let Some((id, received)) = found else {
        return Err(ApiError::not_found("no such envelope"));
    };
    let st = Arc::clone(&s);
    let mut v = blocking(move || describe(&st, id, received)).await?;
    if received {
        let case: CaseId = v.case_id.parse().map_err(ApiError::internal)?;
        let peer = AgencyId::new(&v.from).map_err(ApiError::internal)?;
        let user = user.unwrap_or_else(|| "unknown".into());
        let reader = user.clone();
        s.worker
            .ask(|reply| Job::Access {
                case,
                envelope: Sha256Digest(id),
                peer,
                user: reader,
                reply,
            })
            .await?;
        v.accessed_by = Some(user);
    } else {
        v.content = None;
    }
    Ok(Json(v))
}

/// A received envelope, opened again from the inbox.
fn open_received(s: &ApiState, id: &[u8; 32]) -> Result<envelope::Opened, ApiError> {
    let bytes = s
        .store
        .inbox_envelope(id)?
        .ok_or_else(|| ApiError::internal("the envelope is missing from the inbox"))?;
    envelope::open(
        &bytes,
        &Recipient {
            card: &s.me.card,
            keys: &s.me.keys,
        },
        &crate::trust::AsReceived(&s.trust.snapshot()),
        &s.limits,
    )
    .map_err(|e| ApiError::internal(format!("a stored envelope no longer opens: {e}")))
}

/// The officials who signed a received message, named as the sender's key history certifies
/// them.
fn officials(s: &ApiState, opened: &envelope::Opened) -> Vec<super::wire::OfficialView> {
    let partners = s.trust.snapshot();
    let history = partners.get(&opened.info.from);
    opened
        .officers
        .iter()
        .map(|o| super::wire::OfficialView {
            name: history
                .and_then(|h| h.officers().iter().find(|x| x.key.id() == &o.kid))
                .map_or_else(|| "?".into(), |x| x.name.clone()),
            role: o.role.as_str().into(),
            key_id: hex::encode(o.kid),
        })
        .collect()
}

fn describe(s: &ApiState, id: [u8; 32], received: bool) -> Result<MessageView, ApiError> {
    let eid = Sha256Digest(id);
    let (case, mut v) = if received {
        let opened = open_received(s, &id)?;
        let receipt = s
            .store
            .receipt_for(&id)?
            .and_then(|r| {
                // Signed with this node's key of the time (before a rotation, an earlier one).
                let kid = rogatory_proto::receipt::signer_key_id(&r).unwrap_or_default();
                let card =
                    s.me.history
                        .record(&kid)
                        .and_then(|rec| s.me.history.cards().get(rec.card))
                        .unwrap_or(&s.me.card);
                verify_receipt(&r, card, Some(&eid)).ok()
            })
            .map(|r| ReceiptView {
                event: event_name(r.receipt.event),
                received_at: format_unix(r.receipt.received_at),
                reason: r.receipt.reason.map(|c| c.name().to_string()),
                detail: r.receipt.detail.clone(),
                receipt_hash: r.hash.to_hex(),
                ack_secs: None,
                cosignature: None,
            });
        (
            opened.case_id,
            MessageView {
                direction: "received".into(),
                envelope_id: eid.to_hex(),
                case_id: opened.case_id.to_string(),
                from: opened.info.from.to_string(),
                to: opened.info.to.to_string(),
                recipients: Some(opened.recipients.iter().map(|r| r.to_string()).collect()),
                kind: Some(opened.message.kind().as_str().to_string()),
                message_id: opened.info.message_id.to_string(),
                sequence: opened.info.chain.sequence,
                sent_at: Some(format_unix(opened.info.sent_at)),
                sealed_at: None,
                state: None,
                receipt,
                content: Some(opened.message.to_json()),
                signed_by: officials(s, &opened),
                accessed_by: None,
                note: None,
                audit: Vec::new(),
            },
        )
    } else {
        let e = s
            .store
            .outbox_entry(&id)?
            .ok_or_else(|| ApiError::internal("the envelope is missing from the outbox"))?;
        let info = envelope::inspect(&e.envelope, &s.limits).map_err(ApiError::internal)?;
        let row = outbox_row(&e);
        (
            e.case_id,
            MessageView {
                direction: "sent".into(),
                envelope_id: row.envelope_id,
                case_id: row.case_id,
                from: info.from.to_string(),
                to: row.to,
                recipients: None,
                kind: None,
                message_id: info.message_id.to_string(),
                sequence: info.chain.sequence,
                sent_at: None,
                sealed_at: Some(row.sealed_at),
                state: Some(row.state),
                receipt: row.receipt,
                content: None,
                signed_by: Vec::new(),
                accessed_by: None,
                note: Some(
                    "the content of a sent envelope is encrypted to its addressee; it is not kept here in clear"
                        .into(),
                ),
                audit: Vec::new(),
            },
        )
    };
    v.audit = s
        .store
        .entries(&case)?
        .into_iter()
        .filter(|(e, _)| e.envelope_id == Some(eid))
        .map(|(e, _)| serde_json::to_value(e).unwrap_or_default())
        .collect();
    Ok(v)
}

/// Whether a message's handling codes forbid onward sharing (H2: not without the originator's
/// permission).
fn no_onward_sharing(m: &Message) -> bool {
    use rogatory_proto::message::HandlingCode;
    match m {
        Message::Liaison(l) => l.handling.codes.contains(&HandlingCode::H2),
        Message::EvidenceManifest(e) => e.items.iter().any(|i| {
            i.handling
                .as_ref()
                .is_some_and(|h| h.codes.contains(&HandlingCode::H2))
        }),
        _ => false,
    }
}

/// Passes a received message on to other pinned partners, in its case. Refused (403), and the
/// attempt logged, when its handling code is H2.
#[utoipa::path(post, path = "/v1/messages/{id}/forward", tag = "messages", request_body = Forward,
    params(("id" = String, Path, description = "The envelope id, or at least its first 8 hex digits")),
    responses((status = 200, description = "The answer", body = Forwarded), (status = 403, description = "Refused by the message's handling code (the attempt is logged)", body = ErrorBody),
        (status = 404, description = "No such thing here", body = ErrorBody), (status = 422, description = "Refused as given", body = ErrorBody)))]
pub async fn forward(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Json(b): Json<Forward>,
) -> Result<Json<Forwarded>, ApiError> {
    let st = Arc::clone(&s);
    let found = blocking(move || find(&st.store, &id)).await?;
    let Some((id, true)) = found else {
        return Err(ApiError::not_found(
            "no such received message (only messages received here can be passed on)",
        ));
    };
    let to =
        b.to.iter()
            .map(|t| s.partner(t))
            .collect::<Result<Vec<_>, _>>()?;
    if to.is_empty() {
        return Err(ApiError::invalid("no addressee"));
    }
    let st = Arc::clone(&s);
    let opened = blocking(move || open_received(&st, &id)).await?;
    if no_onward_sharing(&opened.message) {
        for a in &to {
            s.worker
                .ask(|reply| Job::Refused {
                    case: opened.case_id,
                    envelope: Sha256Digest(id),
                    to: a.clone(),
                    user: user.clone(),
                    reason: rogatory_proto::receipt::ReasonCode::HandlingViolation,
                    reply,
                })
                .await?;
        }
        tracing::warn!(
            envelope = %hex::encode(id), user = user.as_deref().unwrap_or("unknown"),
            "refused to pass on a message marked H2"
        );
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "this message is marked H2 by {}: it may not be shared onward without its permission; the attempt is logged",
                opened.info.from
            ),
        ));
    }
    let case = opened.case_id;
    let queued = s
        .worker
        .ask(|reply| Job::Send {
            request: Box::new(SendRequest {
                to,
                case,
                message: opened.message,
                user,
                confirmation: false,
                officers: Vec::new(),
                made: Vec::new(),
                message_id: None,
            }),
            reply,
        })
        .await?;
    Ok(Json(Forwarded {
        case_id: case.to_string(),
        forwarded: hex::encode(id),
        queued: queued.iter().map(QueuedRow::from).collect(),
    }))
}
