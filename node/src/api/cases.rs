//! Cases: the list, one case with its history and messages, opening one, exporting its bundle,
//! deadlines.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use rogatory_proto::case::order::Entry;
use rogatory_proto::ids::{AgencyId, CaseId, Sha256Digest};
use rogatory_proto::message::{ExtraditionStatusUpdate, MlaStatusUpdate};
use rogatory_proto::time::format_unix;

use super::messages::outbox_row;
use super::wire::{
    CaseSummary, CaseView, DeadlineRow, ErrorBody, ExportCase, Exported, NewCase, TimelineRow,
    UpdateRow, Wait, Within,
};
use super::{ApiError, ApiState, Authorized, MAX_WAIT_SECS, blocking, case_id};
use crate::cases::{CaseRecord, UpdateMeta};
use crate::engine::Job;

fn today() -> rogatory_proto::case::Day {
    rogatory_proto::case::Day::of_unix(rogatory_proto::time::now_unix())
}

fn json_name<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A deadline as the API shows it.
pub fn deadline_row(r: &CaseRecord, d: &rogatory_proto::case::Deadline) -> DeadlineRow {
    let today = today();
    DeadlineRow {
        case_id: r.case_id.to_string(),
        peer: r.peer.to_string(),
        rule: d.name.to_string(),
        what: d.what.to_string(),
        source: d.source.to_string(),
        started: d.started.to_string(),
        due: d.due.to_string(),
        met: d.met.map(|m| m.to_string()),
        overdue: d.overdue(today),
        days_left: d.met.is_none().then_some(d.due.0 - today.0),
    }
}

/// A case as the list shows it.
pub fn case_summary(r: &CaseRecord) -> CaseSummary {
    let today = today();
    let next_due = r
        .deadlines()
        .iter()
        .filter(|d| d.met.is_none())
        .map(|d| d.due)
        .min()
        .map(|d| d.to_string());
    CaseSummary {
        case_id: r.case_id.to_string(),
        kind: json_name(r.kind),
        our_side: json_name(r.our_side),
        peer: r.peer.to_string(),
        status: r.status(),
        opened_at: format_unix(r.opened_at),
        updated_at: format_unix(r.updated_at.max(r.opened_at)),
        pending: r.pending(),
        emergency: r.emergency,
        reference: r.reference.clone(),
        overdue: r.overdue(today),
        next_due,
    }
}

async fn records(s: &ApiState) -> Result<Vec<CaseRecord>, ApiError> {
    let store = Arc::clone(&s.store);
    blocking(move || Ok(store.case_records()?)).await
}

/// Every case, the most recently changed first.
#[utoipa::path(get, path = "/v1/cases", tag = "cases",
    responses((status = 200, description = "The answer", body = Vec<CaseSummary>), (status = 401, description = "No valid bearer token", body = ErrorBody)))]
pub async fn cases(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
) -> Result<Json<Vec<CaseSummary>>, ApiError> {
    let mut list = records(&s).await?;
    list.sort_by_key(|r| std::cmp::Reverse(r.updated_at.max(r.opened_at)));
    Ok(Json(list.iter().map(case_summary).collect()))
}

/// Opens a case before its first message (this side requesting).
#[utoipa::path(post, path = "/v1/cases", tag = "cases", request_body = NewCase,
    responses((status = 200, description = "The answer", body = CaseSummary), (status = 422, description = "Refused as given", body = ErrorBody),
        (status = 500, description = "The node's store failed; nothing was recorded", body = ErrorBody)))]
pub async fn new_case(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    Json(b): Json<NewCase>,
) -> Result<Json<CaseSummary>, ApiError> {
    let kind: crate::cases::CaseKind =
        serde_json::from_value(serde_json::Value::from(b.kind.as_str())).map_err(|_| {
            ApiError::invalid(format!(
                "kind {:?}: mla, extradition, liaison or preservation",
                b.kind
            ))
        })?;
    let peer = s.partner(&b.to)?;
    let mut record = CaseRecord::new(
        CaseId::generate(),
        kind,
        rogatory_proto::case::Side::Requesting,
        peer,
        rogatory_proto::time::now_unix(),
    );
    record.reference = b.reference.filter(|r| !r.trim().is_empty());
    let summary = case_summary(&record);
    s.worker
        .ask(|reply| Job::NewCase {
            record: Box::new(record),
            user,
            reply,
        })
        .await?;
    Ok(Json(summary))
}

/// Builds the case's export bundle, logs `bundle-exported` with its hash (and the auditor the
/// content is disclosed to, if any), then writes it to a new file: a disclosure is on record
/// before it exists.
#[utoipa::path(post, path = "/v1/cases/{id}/export", tag = "cases", request_body = ExportCase,
    params(("id" = String, Path, description = "The case id")),
    responses((status = 200, description = "The answer", body = Exported), (status = 422, description = "Refused as given", body = ErrorBody),
        (status = 500, description = "The node's store failed; nothing was recorded", body = ErrorBody)))]
pub async fn case_export(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Json(b): Json<ExportCase>,
) -> Result<Json<Exported>, ApiError> {
    let case = case_id(&id)?;
    if !b.out.is_absolute() {
        return Err(ApiError::invalid(
            "give the bundle file as an absolute path",
        ));
    }
    if b.out.exists() {
        return Err(ApiError::invalid(format!(
            "{} exists already",
            b.out.display()
        )));
    }
    let auditor = match &b.for_auditor {
        None => None,
        Some(p) if !p.is_absolute() => {
            return Err(ApiError::invalid(
                "give the auditor's card as an absolute path",
            ));
        }
        Some(p) => {
            Some(crate::keydir::load_card(p).map_err(|e| ApiError::invalid(format!("{e:#}")))?)
        }
    };
    let trusted = s.trust.snapshot();
    let (store, me) = (Arc::clone(&s.store), Arc::clone(&s.me));
    let for_auditor = auditor.clone();
    let out = b.out.clone();
    let (bytes, mut answer) = blocking(move || {
        let now = rogatory_proto::time::now_unix();
        let bundle = crate::export::bundle(&store, &me, &trusted, &case, now, for_auditor.as_ref())
            .map_err(|e| ApiError::invalid(format!("{e:#}")))?;
        let mut bytes = Vec::new();
        bundle.write_to(&mut bytes).map_err(ApiError::internal)?;
        let answer = Exported {
            case_id: case.to_string(),
            out,
            bytes: bytes.len(),
            sha256: Sha256Digest::of(&bytes).to_hex(),
            auditor: for_auditor.as_ref().map(|a| a.id().to_string()),
            entries: bundle.entries.len(),
            envelopes: bundle.envelopes.len(),
            checkpoints: bundle.checkpoints.len(),
            proofs: bundle.proofs.len(),
            disclosed: bundle.disclosures.len(),
        };
        Ok((bytes, answer))
    })
    .await?;
    let sha256 = Sha256Digest::of(&bytes);
    s.worker
        .ask(|reply| Job::BundleExported {
            case,
            sha256,
            user,
            auditor: auditor.as_ref().map(|a| a.id().clone()),
            reply,
        })
        .await?;
    let out = b.out.clone();
    blocking(move || {
        crate::files::write_atomic(&out, &bytes, false, false)
            .map_err(|e| ApiError::invalid(format!("{e:#}")))
    })
    .await?;
    answer.out = b.out;
    Ok(Json(answer))
}

/// One case: its summary, updates, messages and deadlines; with `?wait=SECS`, answered once
/// none of this side's proposals awaits the requested side's confirmation (or the time is up).
#[utoipa::path(get, path = "/v1/cases/{id}", tag = "cases",
    params(("id" = String, Path, description = "The case id"), Wait),
    responses((status = 200, description = "The answer", body = CaseView), (status = 404, description = "No such thing here", body = ErrorBody)))]
pub async fn case_one(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Query(w): Query<Wait>,
) -> Result<Json<CaseView>, ApiError> {
    let case = case_id(&id)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(w.wait.min(MAX_WAIT_SECS));
    let r = loop {
        // Listening before reading, so a confirmation in between is not missed.
        let woken = s.watch.anything();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let store = Arc::clone(&s.store);
        let r = blocking(move || Ok(store.case_record(&case)?))
            .await?
            .ok_or_else(|| ApiError::not_found("no such case here"))?;
        if r.pending() == 0 || tokio::time::timeout_at(deadline, woken).await.is_err() {
            break r;
        }
    };
    let store = Arc::clone(&s.store);
    let (received, sent) = blocking(move || Ok((store.received()?, store.outbox()?))).await?;
    let me = s.me.card.id().clone();
    let mut timeline: Vec<(u64, TimelineRow)> = Vec::new();
    for (id, m) in received.iter().filter(|(_, m)| m.case_id == case) {
        timeline.push((
            m.received_at,
            TimelineRow {
                at: format_unix(m.received_at),
                direction: "received".into(),
                from: m.from.to_string(),
                to: me.to_string(),
                kind: Some(m.message_type.clone()),
                envelope_id: hex::encode(id),
                state: "accepted".into(),
                receipt: None,
            },
        ));
    }
    for e in sent.iter().filter(|e| e.case_id == case) {
        let row = outbox_row(e);
        timeline.push((
            e.sealed_at,
            TimelineRow {
                at: row.sealed_at,
                direction: "sent".into(),
                from: me.to_string(),
                to: row.to,
                kind: None,
                envelope_id: row.envelope_id,
                state: row.state,
                receipt: row.receipt,
            },
        ));
    }
    timeline.sort_by_key(|(t, _)| *t);
    let [updates, proposals, refused] = update_rows(&r, &me);
    Ok(Json(CaseView {
        summary: case_summary(&r),
        updates,
        proposals,
        refused,
        messages: timeline.into_iter().map(|(_, v)| v).collect(),
        deadlines: r.deadlines().iter().map(|d| deadline_row(&r, d)).collect(),
    }))
}

/// One update of a case: `status` (MLA) or `stage` (extradition).
fn update_row<U: serde::Serialize>(
    r: &CaseRecord,
    me: &AgencyId,
    e: &Entry<U, UpdateMeta>,
    (key, name): (&str, Option<&'static str>),
) -> UpdateRow {
    let by = if e.side == r.our_side {
        me.to_string()
    } else {
        r.peer.to_string()
    };
    let name = name.map(str::to_string);
    UpdateRow {
        at: format_unix(e.meta.at),
        by,
        side: json_name(e.side),
        message_id: e.message.to_string(),
        envelope_id: e.meta.envelope_id.to_hex(),
        status: if key == "status" { name.clone() } else { None },
        stage: if key == "stage" { name } else { None },
        update: serde_json::to_value(&e.update).unwrap_or_default(),
        reason: None,
    }
}

/// Rows for one replica: its history, pending proposals and refused proposals.
fn replica_rows<M: rogatory_proto::case::order::Machine>(
    r: &CaseRecord,
    me: &AgencyId,
    replica: &rogatory_proto::case::order::Replica<M, UpdateMeta>,
    what: impl Fn(&M::Update) -> (&'static str, Option<&'static str>),
    rows: &mut [Vec<UpdateRow>; 3],
) where
    M::Update: serde::Serialize,
{
    let row = |e: &Entry<M::Update, UpdateMeta>| update_row(r, me, e, what(&e.update));
    rows[0].extend(replica.history.iter().map(row));
    rows[1].extend(replica.pending.iter().map(row));
    rows[2].extend(replica.refused.iter().map(|f| {
        let mut v = row(&f.entry);
        v.reason = Some(f.reason.clone());
        v
    }));
}

/// A case's updates (in the order both sides agree on), this side's proposals awaiting the
/// requested side, and the proposals the requested side refused.
fn update_rows(r: &CaseRecord, me: &AgencyId) -> [Vec<UpdateRow>; 3] {
    let mut rows = [Vec::new(), Vec::new(), Vec::new()];
    if let Some(m) = &r.mla {
        let what = |u: &MlaStatusUpdate| ("status", u.status.map(|s| s.as_str()));
        replica_rows(r, me, m, what, &mut rows);
    }
    if let Some(x) = &r.extradition {
        let what = |u: &ExtraditionStatusUpdate| ("stage", u.stage.map(|s| s.as_str()));
        replica_rows(r, me, x, what, &mut rows);
    }
    rows
}

/// Open deadlines due within `?within=DAYS` (default 7), and those overdue, soonest first.
#[utoipa::path(get, path = "/v1/deadlines", tag = "cases", params(Within),
    responses((status = 200, description = "The answer", body = Vec<DeadlineRow>), (status = 401, description = "No valid bearer token", body = ErrorBody)))]
pub async fn deadlines(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    Query(w): Query<Within>,
) -> Result<Json<Vec<DeadlineRow>>, ApiError> {
    let today = today();
    let mut out: Vec<(rogatory_proto::case::Day, DeadlineRow)> = Vec::new();
    for r in records(&s).await? {
        for d in r.deadlines() {
            if d.due_within(today, w.within) {
                out.push((d.due, deadline_row(&r, &d)));
            }
        }
    }
    out.sort_by_key(|(d, _)| *d);
    Ok(Json(out.into_iter().map(|(_, v)| v).collect()))
}
