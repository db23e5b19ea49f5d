//! Evidence: a case's items, adding them, sending their manifest, exporting and re-checking
//! their content.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use rogatory_proto::ids::CaseId;
use rogatory_proto::message::Message;
use rogatory_proto::time::format_unix;

use super::wire::{
    AddEvidence, Added, CustodyReport, ErrorBody, EvidenceExported, EvidenceRow, EvidenceWait,
    ExportEvidence, ItemCheck, ManifestSent, QueuedRow, SendEvidence, VerifyEvidence,
};
use super::{ApiError, ApiState, Authorized, MAX_WAIT_SECS, blocking, case_id};
use crate::engine::Job;
use crate::evidence::{EvidenceRecord, EvidenceState};

/// An evidence record as the API shows it: never its key.
pub fn evidence_row(r: &EvidenceRecord) -> EvidenceRow {
    EvidenceRow {
        item_id: r.key(),
        description: r.item.description.clone(),
        media_type: r.item.media_type.clone(),
        size: r.item.size,
        sha256: r.item.sha256.map(|d| d.to_hex()),
        transfer: serde_json::to_value(r.item.transfer).unwrap_or_default(),
        direction: if r.outgoing { "outgoing" } else { "incoming" }.into(),
        state: r.state.as_str().into(),
        peer: r.peer.as_ref().map(|p| p.to_string()),
        manifest: r.manifest.map(|m| m.to_hex()),
        held_here: r.blob.is_some(),
        chunks: rogatory_proto::evidence::chunks(r.item.size),
        chunks_done: r.chunks_done,
        problem: r.problem.clone(),
        added_at: format_unix(r.added_at),
        added_by: r.added_by.clone(),
        acquisition: serde_json::to_value(&r.item.acquisition).unwrap_or_default(),
        custody: serde_json::to_value(&r.item.custody).unwrap_or_default(),
        // The partner's reports that extended the chain, with this node's time of receipt.
        custody_reports: r
            .reports
            .iter()
            .map(|p| CustodyReport {
                first: p.first,
                count: p.count,
                by: p.by.to_string(),
                recorded_at: format_unix(p.recorded_at),
                envelope_id: p.envelope.to_hex(),
            })
            .collect(),
        perceptual_hashes: serde_json::to_value(&r.item.perceptual_hashes).unwrap_or_default(),
    }
}

/// Adds evidence items to a case: validated as manifest entries; a `send` item's sealed content
/// is moved from staging into the evidence directory under its content name.
#[utoipa::path(post, path = "/v1/evidence/{case}", tag = "evidence", request_body = AddEvidence,
    params(("case" = String, Path, description = "The case id")),
    responses((status = 200, description = "The answer", body = Added), (status = 404, description = "No such thing here", body = ErrorBody),
        (status = 422, description = "Refused as given", body = ErrorBody), (status = 500, description = "The node's store failed; nothing was recorded", body = ErrorBody)))]
pub async fn add(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Json(b): Json<AddEvidence>,
) -> Result<Json<Added>, ApiError> {
    let case = case_id(&id)?;
    if b.items.is_empty() {
        return Err(ApiError::invalid("no item to add"));
    }
    let mut items = Vec::with_capacity(b.items.len());
    for (i, a) in b.items.iter().enumerate() {
        let mut item: rogatory_proto::message::EvidenceItem =
            serde_json::from_value(a.item.clone())
                .map_err(|e| ApiError::invalid(format!("item {i}: {e}")))?;
        // A stand-in id, unique, for validation; the worker gives the real one.
        item.item_id = format!("new-{i}");
        items.push(item);
    }
    let manifest = rogatory_proto::message::EvidenceManifest {
        request: None,
        items,
        note: None,
    };
    Message::EvidenceManifest(manifest.clone())
        .validate()
        .map_err(|e| super::send::refused_message("these items cannot be added", e))?;
    let mut new = Vec::with_capacity(b.items.len());
    for (item, a) in manifest.items.into_iter().zip(b.items) {
        let send = item.transfer == Some(rogatory_proto::message::TransferMode::Send);
        let content = match (send, a.staged, a.content_key) {
            (true, Some(staged), Some(key)) => {
                let mut k = [0u8; 32];
                hex::decode_to_slice(&key, &mut k)
                    .map_err(|_| ApiError::invalid("content_key: 64 hex digits"))?;
                let key = rogatory_proto::evidence::ContentKey::from_bytes(k);
                let sha = item
                    .sha256
                    .ok_or_else(|| ApiError::invalid("the item's SHA-256 is missing"))?;
                let name = crate::evidence::blob_name(&sha, &key);
                let (data, size, n) = (s.data.clone(), item.size, name.clone());
                blocking(move || {
                    crate::evidence::commit_staged(&data, &staged, &n, size)
                        .map_err(|e| ApiError::invalid(format!("{e:#}")))
                })
                .await?;
                Some((name, key))
            }
            (true, _, _) => {
                return Err(ApiError::invalid(
                    "a `send` item needs its sealed content (staged) and its content key",
                ));
            }
            (false, None, None) => None,
            (false, _, _) => {
                return Err(ApiError::invalid(
                    "only a `send` item's content is kept: hash-only and out-of-band items carry no content",
                ));
            }
        };
        new.push(crate::engine::NewEvidence { item, content });
    }
    let ids = s
        .worker
        .ask(|reply| Job::EvidenceAdd {
            case,
            items: new,
            user,
            reply,
        })
        .await?;
    Ok(Json(Added {
        case_id: case.to_string(),
        items: ids,
    }))
}

/// A case's evidence items; with `?wait=SECS`, once the transfers are over (or `done` chunks
/// in).
#[utoipa::path(get, path = "/v1/evidence/{case}", tag = "evidence",
    params(("case" = String, Path, description = "The case id"), EvidenceWait),
    responses((status = 200, description = "The answer", body = Vec<EvidenceRow>), (status = 401, description = "No valid bearer token", body = ErrorBody)))]
pub async fn list(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Query(w): Query<EvidenceWait>,
) -> Result<Json<Vec<EvidenceRow>>, ApiError> {
    let case = case_id(&id)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(w.wait.min(MAX_WAIT_SECS));
    let list = loop {
        // Listening before reading, so an arrival in between is not missed.
        let woken = s.watch.anything();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let list = case_evidence(&s, case).await?;
        let incoming = list.iter().filter(|r| !r.outgoing);
        let reached = match w.done {
            Some(n) => incoming.map(|r| r.chunks_done).sum::<u64>() >= n,
            None => !incoming.clone().any(|r| r.state == EvidenceState::Expected),
        };
        if reached || tokio::time::timeout_at(deadline, woken).await.is_err() {
            break list;
        }
    };
    Ok(Json(list.iter().map(evidence_row).collect()))
}

/// A case's evidence records, read off the async threads.
async fn case_evidence(s: &ApiState, case: CaseId) -> Result<Vec<EvidenceRecord>, ApiError> {
    let store = Arc::clone(&s.store);
    blocking(move || Ok(store.evidence(&case)?)).await
}

/// Finds a case's evidence item by its record key (`E1`, `XB.DOJ-CA/E1`), or by an item id
/// that names one item only.
async fn item(s: &ApiState, case: CaseId, item: &str) -> Result<EvidenceRecord, ApiError> {
    let list = case_evidence(s, case).await?;
    let mut by_id = list.iter().filter(|r| r.item.item_id == item);
    if let Some(r) = list.iter().find(|r| r.key() == item) {
        return Ok(r.clone());
    }
    match (by_id.next(), by_id.next()) {
        (Some(r), None) => Ok(r.clone()),
        (Some(_), Some(_)) => Err(ApiError::invalid(format!(
            "several items are called {item}: give PARTNER/{item}"
        ))),
        _ => Err(ApiError::not_found(format!(
            "no evidence item {item} in case {case}"
        ))),
    }
}

/// Why an item's held content could not be read back whole.
#[derive(Debug, thiserror::Error)]
enum ContentError {
    /// The request's: the item's content is not held here, or the file given cannot be made.
    #[error("{0}")]
    Refused(String),
    /// The store's: the key does not unwrap, or the content does not match (quarantine it).
    #[error("{0}")]
    Damaged(String),
}

impl From<ContentError> for ApiError {
    fn from(e: ContentError) -> Self {
        match e {
            ContentError::Refused(m) => ApiError::invalid(m),
            ContentError::Damaged(m) => ApiError::internal(m),
        }
    }
}

/// Reads a held item's content through its key: checks every chunk and the SHA-256, and writes
/// the plaintext to `out` if given.
async fn read_item(
    s: &ApiState,
    r: &EvidenceRecord,
    out: Option<PathBuf>,
) -> Result<(), ContentError> {
    let blob = r
        .blob
        .clone()
        .ok_or_else(|| ContentError::Refused("its content is not held on this node".into()))?;
    let damaged = |m: &str| ContentError::Damaged(m.into());
    let wrapped = r
        .wrapped_key
        .clone()
        .ok_or_else(|| damaged("no content key on record"))?;
    let context = crate::evidence::key_context(&r.case_id, &r.key());
    let key = rogatory_proto::evidence::unwrap_key(&s.me.keys.storage_key(), &context, &wrapped)
        .ok_or_else(|| damaged("the content key does not unwrap with this node's storage key"))?;
    let (data, size, want) = (s.data.clone(), r.item.size, r.item.sha256);
    tokio::task::spawn_blocking(move || -> Result<(), ContentError> {
        let mut file = match &out {
            Some(p) => Some(crate::files::create_new(p, true).map_err(|e| {
                ContentError::Refused(format!("cannot create {}: {e}", p.display()))
            })?),
            None => None,
        };
        let result = crate::evidence::read_blob(
            &data,
            &blob,
            &key,
            size,
            file.as_mut().map(|f| f as &mut dyn std::io::Write),
            &|_| {},
        )
        .map_err(|e| ContentError::Damaged(format!("{e:#}")))
        .and_then(|sha| {
            if Some(sha) == want {
                Ok(())
            } else {
                Err(ContentError::Damaged(format!(
                    "the stored content's SHA-256 is {}, not the manifest's",
                    sha.to_hex()
                )))
            }
        })
        .and_then(|()| match &file {
            Some(f) => f
                .sync_all()
                .map_err(|e| ContentError::Refused(format!("cannot sync the export: {e}"))),
            None => Ok(()),
        });
        if result.is_err()
            && let Some(p) = &out
        {
            let _ = std::fs::remove_file(p);
        }
        result
    })
    .await
    .map_err(|e| ContentError::Damaged(e.to_string()))?
}

/// Writes a verified item's content, decrypted, to a new file; logged first as
/// `evidence-exported` with the local user.
#[utoipa::path(post, path = "/v1/evidence/{case}/export", tag = "evidence",
    request_body = ExportEvidence,
    params(("case" = String, Path, description = "The case id")),
    responses((status = 200, description = "The answer", body = EvidenceExported), (status = 404, description = "No such thing here", body = ErrorBody),
        (status = 422, description = "Refused as given", body = ErrorBody)))]
pub async fn export(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Json(b): Json<ExportEvidence>,
) -> Result<Json<EvidenceExported>, ApiError> {
    let case = case_id(&id)?;
    let r = item(&s, case, &b.item).await?;
    let exportable = r.blob.is_some() && (r.outgoing || r.state == EvidenceState::Verified);
    if !exportable {
        return Err(ApiError::invalid(format!(
            "item {} is {}: only content that arrived and matched its manifest's SHA-256 (verified) can be exported",
            r.key(),
            r.state.as_str()
        )));
    }
    if !b.out.is_absolute() {
        return Err(ApiError::invalid(
            "give the output file as an absolute path",
        ));
    }
    if b.out.exists() {
        return Err(ApiError::invalid(format!(
            "{} exists already",
            b.out.display()
        )));
    }
    let logged = |written| {
        let (key, user) = (r.key(), user.clone());
        move |reply| Job::EvidenceExported {
            case,
            key,
            user,
            written,
            reply,
        }
    };
    s.worker.ask(logged(false)).await?;
    read_item(&s, &r, Some(b.out.clone())).await?;
    s.worker.ask(logged(true)).await?;
    Ok(Json(EvidenceExported {
        case_id: case.to_string(),
        item_id: r.key(),
        out: b.out,
        size: r.item.size,
        sha256: r.item.sha256.map(|d| d.to_hex()),
    }))
}

/// Re-reads the held content of a case's items and checks it against the manifest.
#[utoipa::path(post, path = "/v1/evidence/{case}/verify", tag = "evidence",
    request_body = VerifyEvidence,
    params(("case" = String, Path, description = "The case id")),
    responses((status = 200, description = "The answer", body = Vec<ItemCheck>), (status = 404, description = "No such thing here", body = ErrorBody)))]
pub async fn verify(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Json(b): Json<VerifyEvidence>,
) -> Result<Json<Vec<ItemCheck>>, ApiError> {
    let case = case_id(&id)?;
    let items = match &b.item {
        Some(i) => vec![item(&s, case, i).await?],
        None => case_evidence(&s, case)
            .await?
            .into_iter()
            .filter(|r| r.blob.is_some())
            .collect(),
    };
    let mut out = Vec::with_capacity(items.len());
    for r in &items {
        let result = read_item(&s, r, None).await;
        if let Err(e) = &result {
            tracing::error!(case = %case, item = %r.key(), "evidence does not verify: {e}");
        }
        out.push(ItemCheck {
            item_id: r.key(),
            size: r.item.size,
            sha256: r.item.sha256.map(|d| d.to_hex()),
            ok: result.is_ok(),
            problem: result.err().map(|e| e.to_string()),
        });
    }
    Ok(Json(out))
}

/// Sends the manifest of a case's staged items to a partner.
#[utoipa::path(post, path = "/v1/evidence/{case}/send", tag = "evidence",
    request_body = SendEvidence,
    params(("case" = String, Path, description = "The case id")),
    responses((status = 200, description = "The answer", body = ManifestSent), (status = 409, description = "Conflicts with the state of the case or item", body = ErrorBody),
        (status = 422, description = "Refused as given", body = ErrorBody)))]
pub async fn send(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Json(b): Json<SendEvidence>,
) -> Result<Json<ManifestSent>, ApiError> {
    let case = case_id(&id)?;
    let to = s.partner(&b.to)?;
    let (queued, items) = s
        .worker
        .ask(|reply| Job::EvidenceSend {
            case,
            to,
            user,
            reply,
        })
        .await?;
    Ok(Json(ManifestSent {
        case_id: case.to_string(),
        queued: queued.iter().map(QueuedRow::from).collect(),
        items,
    }))
}
