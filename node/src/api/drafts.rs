//! Drafts waiting for an issuing authority's approval (spec/PEOPLE.md §6): the list, one draft
//! with its message, approval and rejection. Approving seals and queues the message; the
//! drafter cannot approve their own draft.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use rogatory_proto::ids::{AgencyId, Sha256Digest};
use rogatory_proto::message::{Message, MessageType};

use super::access::{Bearer, officer_signer, own_officer};
use super::wire::{DraftRow, DraftView, ErrorBody, Reject};
use super::{ApiError, ApiState, Authorized, blocking};
use crate::engine::Job;
use crate::people::Caller;
use crate::store::Draft;
use axum::Extension;

/// The draft `id` names: its id, or at least its first 8 hex digits.
fn find(s: &ApiState, id: &str) -> Result<Draft, ApiError> {
    let id = id.to_ascii_lowercase();
    if id.len() < 8 || id.len() > 64 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::bad(
            "give a draft id, or at least its first 8 hex digits",
        ));
    }
    s.store
        .draft_starting_with(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no draft {id}")))
}

/// Every draft, oldest first: those waiting, approved and rejected (no content).
#[utoipa::path(get, path = "/v1/drafts", tag = "messages",
    responses((status = 200, description = "The answer", body = Vec<DraftRow>), (status = 401, description = "No valid bearer token", body = ErrorBody)))]
pub async fn list(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
) -> Result<Json<Vec<DraftRow>>, ApiError> {
    let store = Arc::clone(&s.store);
    let all = blocking(move || Ok(store.drafts()?)).await?;
    Ok(Json(all.iter().map(DraftRow::from).collect()))
}

/// One draft and its message (reading it is logged, as for any content).
#[utoipa::path(get, path = "/v1/drafts/{id}", tag = "messages",
    params(("id" = String, Path, description = "The draft id, or at least its first 8 hex digits")),
    responses((status = 200, description = "The answer", body = DraftView), (status = 404, description = "No such thing here", body = ErrorBody)))]
pub async fn one(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<DraftView>, ApiError> {
    let st = Arc::clone(&s);
    let d = blocking(move || find(&st, &id)).await?;
    let kind: MessageType = d
        .kind
        .parse()
        .map_err(|e| ApiError::invalid(format!("the draft's type: {e}")))?;
    let message = Message::from_cbor(kind, &d.message, s.limits.max_envelope_bytes)
        .map_err(|e| ApiError::invalid(format!("the draft's message does not decode: {e}")))?;
    // Logged before it is shown.
    let id = d.id;
    s.worker
        .ask(|reply| Job::DraftRead { id, user, reply })
        .await?;
    Ok(Json(DraftView {
        draft: DraftRow::from(&d),
        content: message.to_json(),
    }))
}

async fn decide(
    s: Arc<ApiState>,
    (user, caller, token): (Option<String>, Caller, Option<Bearer>),
    id: String,
    approve: bool,
    reason: Option<String>,
) -> Result<Json<DraftRow>, ApiError> {
    let Some(user) = user else {
        return Err(ApiError::invalid(
            "a decision needs an account (rogatory user add)",
        ));
    };
    let st = Arc::clone(&s);
    let draft = blocking(move || find(&st, &id)).await?;
    let id: Sha256Digest = draft.id;
    // The approver signs it in their own name where the agency certified their key; a type
    // that needs validation waits, with that signature, for a validating authority.
    let mut officers = Vec::new();
    let mut issue = None;
    let kind = draft
        .kind
        .parse::<MessageType>()
        .map_err(|e| ApiError::invalid(format!("the draft's type: {e}")))?;
    if approve && s.validated.contains(&kind) {
        let Some(o) = own_officer(&s, &caller, token.as_ref()).await? else {
            return Err(ApiError::invalid(format!(
                "a {kind} is validated after its approval: the approver signs it with a key the agency certified (rogatory user certify)"
            )));
        };
        let of = (
            &draft.case_id,
            draft.to.as_slice(),
            draft.kind.as_str(),
            &draft.message[..],
        );
        issue = Some(Box::new(issue_signature(&s, &o, of)));
    } else if approve && let Some(o) = officer_signer(&s, &caller, token.as_ref(), kind).await? {
        officers.push(o);
    }
    let d = s
        .worker
        .ask(|reply| Job::Decide {
            id,
            approve,
            user,
            reason,
            officers,
            issue,
            reply,
        })
        .await?;
    tracing::info!(draft = %d.id.to_hex(), by = d.decided_by.as_deref().unwrap_or("?"), state = d.state.as_str(), "a draft was decided");
    Ok(Json(DraftRow::from(&d)))
}

/// The issuer's signature of a message (its deterministic CBOR `body`) of type `kind` in
/// `case` to `to`, over a message id fixed now (spec/PEOPLE.md §5, §6): what the validating
/// authority countersigns later.
pub(super) fn issue_signature(
    s: &ApiState,
    o: &crate::engine::OfficerSigner,
    (case_id, to, kind, body): (&rogatory_proto::ids::CaseId, &[AgencyId], &str, &[u8]),
) -> (
    rogatory_proto::ids::MessageId,
    rogatory_proto::officer::OfficerSignature,
) {
    let message_id = rogatory_proto::ids::MessageId::generate();
    let mut recipients = to.to_vec();
    recipients.sort();
    let signed = rogatory_proto::officer::Signed {
        from: s.me.card.id(),
        message_id: &message_id,
        case_id,
        kind,
        recipients: &recipients,
        body,
    };
    let officer = rogatory_proto::officer::Officer {
        role: o.role,
        key: &o.key,
    };
    (
        message_id,
        rogatory_proto::officer::sign_one(&[], &officer, &signed),
    )
}

/// A validating authority countersigns a draft waiting for validation: it is sealed and queued
/// now, with the issuer's signature and theirs.
#[utoipa::path(post, path = "/v1/drafts/{id}/validate", tag = "messages",
    params(("id" = String, Path, description = "The draft id, or at least its first 8 hex digits")),
    responses((status = 200, description = "The answer", body = DraftRow), (status = 403, description = "The caller may not validate", body = ErrorBody),
        (status = 409, description = "Not awaiting validation, or the case's state refuses it", body = ErrorBody), (status = 422, description = "Refused as given (the issuer's own draft, no certified key)", body = ErrorBody)))]
pub async fn validate(
    Authorized(user): Authorized,
    Extension(caller): Extension<Caller>,
    token: Option<Extension<Bearer>>,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<DraftRow>, ApiError> {
    let Some(user) = user else {
        return Err(ApiError::invalid(
            "a validation needs an account (rogatory user add)",
        ));
    };
    let Some(officer) = own_officer(&s, &caller, token.as_ref().map(|t| &t.0)).await? else {
        return Err(ApiError::invalid(
            "a validating authority countersigns with a key the agency certified (rogatory user certify)",
        ));
    };
    let st = Arc::clone(&s);
    let id = blocking(move || find(&st, &id)).await?.id;
    let d = s
        .worker
        .ask(|reply| Job::Validate {
            id,
            user,
            officer,
            reply,
        })
        .await?;
    tracing::info!(draft = %d.id.to_hex(), by = d.validated_by.as_deref().unwrap_or("?"), "a draft was validated and sent");
    Ok(Json(DraftRow::from(&d)))
}

/// Approves a draft: it is sealed and queued now, signed off by the caller (an issuing
/// authority other than its drafter). The case's machine decides as for any send; a refusal
/// leaves the draft waiting.
#[utoipa::path(post, path = "/v1/drafts/{id}/approve", tag = "messages",
    params(("id" = String, Path, description = "The draft id, or at least its first 8 hex digits")),
    responses((status = 200, description = "The answer", body = DraftRow), (status = 403, description = "The caller may not approve", body = ErrorBody),
        (status = 409, description = "Decided already, or the case's state refuses it", body = ErrorBody), (status = 422, description = "Refused as given (the drafter's own draft)", body = ErrorBody)))]
pub async fn approve(
    Authorized(user): Authorized,
    Extension(caller): Extension<Caller>,
    token: Option<Extension<Bearer>>,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<DraftRow>, ApiError> {
    decide(s, (user, caller, token.map(|t| t.0)), id, true, None).await
}

/// Rejects a draft, with the reason: it is never sent.
#[utoipa::path(post, path = "/v1/drafts/{id}/reject", tag = "messages", request_body = Reject,
    params(("id" = String, Path, description = "The draft id, or at least its first 8 hex digits")),
    responses((status = 200, description = "The answer", body = DraftRow), (status = 403, description = "The caller may not reject", body = ErrorBody),
        (status = 409, description = "Decided already", body = ErrorBody)))]
pub async fn reject(
    Authorized(user): Authorized,
    Extension(caller): Extension<Caller>,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Json(b): Json<Reject>,
) -> Result<Json<DraftRow>, ApiError> {
    let reason = b.reason.trim().chars().take(1000).collect::<String>();
    if reason.is_empty() {
        return Err(ApiError::invalid("give the reason for the rejection"));
    }
    decide(s, (user, caller, None), id, false, Some(reason)).await
}
