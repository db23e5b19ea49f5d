//! Audit: alerts, and a case's log, checkpoints and proofs, and the check of the whole store —
//! the same answers whether the node runs (through these routes) or not (the command line calls
//! the functions below on the store it opens itself).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use base64::Engine as _;
use rogatory_proto::audit::merkle::leaf_hash;
use rogatory_proto::audit::note::NoteVerifier;
use rogatory_proto::ids::CaseId;

use super::wire::{
    AlertRow, AlertsQuery, CheckpointText, Consistency, ConsistencyQuery, ErrorBody, Finding,
    LogEntry, ProofText, ProveQuery, Size, StoreReport, VerifyStore,
};
use super::{ApiError, ApiState, Authorized, blocking, case_id};
use crate::store::Store;

/// Every alert raised on a node, oldest first.
pub fn alert_rows(store: &Store) -> Result<Vec<AlertRow>, ApiError> {
    Ok(store
        .alerts()?
        .iter()
        .map(|(n, a)| AlertRow::new(*n, a))
        .collect())
}

/// A case's audit entries with their leaf hashes (404 if it has no log).
pub fn log_entries(store: &Store, case: &CaseId) -> Result<Vec<LogEntry>, ApiError> {
    let entries = store.entries(case)?;
    if entries.is_empty() {
        return Err(ApiError::not_found(format!(
            "case {case} has no audit log here"
        )));
    }
    Ok(entries
        .iter()
        .map(|(e, bytes)| LogEntry {
            entry: serde_json::to_value(e).unwrap_or_default(),
            leaf_hash: hex::encode(leaf_hash(bytes)),
        })
        .collect())
}

/// A case's signed checkpoint at `size` (default: the latest).
pub fn checkpoint_text(
    store: &Store,
    case: &CaseId,
    size: Option<u64>,
) -> Result<CheckpointText, ApiError> {
    let note = store.checkpoint(case, size)?;
    Ok(CheckpointText {
        note: String::from_utf8(note).map_err(ApiError::internal)?,
    })
}

/// A tlog-proof that entry `index` is in a case's log at `size` (default: the latest).
pub fn proof_text(
    store: &Store,
    case: &CaseId,
    index: u64,
    size: Option<u64>,
) -> Result<ProofText, ApiError> {
    Ok(ProofText {
        proof: store.prove(case, index, size)?.to_text(),
    })
}

/// A consistency proof from size `from` to `to` (default: the latest), with the newer
/// checkpoint.
pub fn consistency_proof(
    store: &Store,
    case: &CaseId,
    from: u64,
    to: Option<u64>,
) -> Result<Consistency, ApiError> {
    let (to, proof) = store.consistency(case, from, to)?;
    let checkpoint = store.checkpoint(case, Some(to))?;
    Ok(Consistency {
        from,
        to,
        hashes: proof
            .iter()
            .map(|h| base64::engine::general_purpose::STANDARD.encode(h))
            .collect(),
        checkpoint: String::from_utf8(checkpoint).map_err(ApiError::internal)?,
    })
}

/// Re-derives every case's tree and checks every signature of the store against `vkey` (or,
/// for what was signed before a rotation, one of `earlier`).
pub fn store_report(
    store: &Store,
    vkey: &str,
    earlier: &[String],
) -> Result<StoreReport, ApiError> {
    let verifiers = std::iter::once(vkey)
        .chain(earlier.iter().map(String::as_str))
        .map(|v| {
            NoteVerifier::parse(v).map_err(|e| ApiError::invalid(format!("the verifier key: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let r = store.verify_with(&verifiers)?;
    Ok(StoreReport {
        cases: r.cases,
        entries: r.entries,
        checkpoints: r.checkpoints,
        records: r.records,
        findings: r
            .findings
            .iter()
            .map(|f| Finding {
                case: f.case.to_string(),
                entry: f.entry,
                problem: f.problem.clone(),
            })
            .collect(),
    })
}

/// Every alert raised on this node (spec/PROTOCOL.md §6.6, spec/KEYS.md §7), oldest first;
/// with `?count=N&wait=SECS`, answered once at least N are raised (or the time is up); with
/// `?kind=K`, only alerts of that kind.
#[utoipa::path(get, path = "/v1/alerts", tag = "audit", params(AlertsQuery),
    responses((status = 200, description = "The answer", body = Vec<AlertRow>), (status = 401, description = "No valid bearer token", body = ErrorBody)))]
pub async fn alerts(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    Query(q): Query<AlertsQuery>,
) -> Result<Json<Vec<AlertRow>>, ApiError> {
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_secs(q.wait.min(super::MAX_WAIT_SECS));
    loop {
        // Listening before reading, so an alert raised in between is not missed.
        let woken = s.watch.anything();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let store = Arc::clone(&s.store);
        let mut rows = blocking(move || alert_rows(&store)).await?;
        if let Some(kind) = &q.kind {
            rows.retain(|r| &r.kind == kind);
        }
        if rows.len() >= q.count || tokio::time::timeout_at(deadline, woken).await.is_err() {
            return Ok(Json(rows));
        }
    }
}

/// A case's audit entries (commitments only: ids and hashes, never content).
#[utoipa::path(get, path = "/v1/audit/{case}/log", tag = "audit",
    params(("case" = String, Path, description = "The case id")),
    responses((status = 200, description = "The answer", body = Vec<LogEntry>), (status = 404, description = "No such thing here", body = ErrorBody)))]
pub async fn log(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Vec<LogEntry>>, ApiError> {
    let case = case_id(&id)?;
    let store = Arc::clone(&s.store);
    Ok(Json(blocking(move || log_entries(&store, &case)).await?))
}

/// A case's signed checkpoint (C2SP signed note).
#[utoipa::path(get, path = "/v1/audit/{case}/checkpoint", tag = "audit",
    params(("case" = String, Path, description = "The case id"), Size),
    responses((status = 200, description = "The answer", body = CheckpointText), (status = 422, description = "Refused as given", body = ErrorBody)))]
pub async fn checkpoint(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<Size>,
) -> Result<Json<CheckpointText>, ApiError> {
    let case = case_id(&id)?;
    let store = Arc::clone(&s.store);
    Ok(Json(
        blocking(move || checkpoint_text(&store, &case, q.size)).await?,
    ))
}

/// A c2sp.org/tlog-proof@v1 proof that an entry is in a case's log.
#[utoipa::path(get, path = "/v1/audit/{case}/prove", tag = "audit",
    params(("case" = String, Path, description = "The case id"), ProveQuery),
    responses((status = 200, description = "The answer", body = ProofText), (status = 422, description = "Refused as given", body = ErrorBody)))]
pub async fn prove(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<ProveQuery>,
) -> Result<Json<ProofText>, ApiError> {
    let case = case_id(&id)?;
    let store = Arc::clone(&s.store);
    Ok(Json(
        blocking(move || proof_text(&store, &case, q.index, q.size)).await?,
    ))
}

/// A consistency proof between two sizes of a case's log.
#[utoipa::path(get, path = "/v1/audit/{case}/consistency", tag = "audit",
    params(("case" = String, Path, description = "The case id"), ConsistencyQuery),
    responses((status = 200, description = "The answer", body = Consistency), (status = 422, description = "Refused as given", body = ErrorBody)))]
pub async fn consistency(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<Consistency>, ApiError> {
    let case = case_id(&id)?;
    let store = Arc::clone(&s.store);
    Ok(Json(
        blocking(move || consistency_proof(&store, &case, q.from, q.to)).await?,
    ))
}

/// Re-derives every case's tree from the stored entries and checks it, every signed
/// checkpoint and every sealed record against the verifier key given.
#[utoipa::path(post, path = "/v1/audit/verify-store", tag = "audit", request_body = VerifyStore,
    responses((status = 200, description = "The answer", body = StoreReport), (status = 422, description = "Refused as given", body = ErrorBody),
        (status = 500, description = "The node's store failed; nothing was recorded", body = ErrorBody)))]
pub async fn verify_store(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    Json(b): Json<VerifyStore>,
) -> Result<Json<StoreReport>, ApiError> {
    let store = Arc::clone(&s.store);
    Ok(Json(
        blocking(move || store_report(&store, &b.vkey, &b.earlier)).await?,
    ))
}
