//! `POST /v1/backup`: a backup of the running node's data directory (spec/BACKUP.md), made
//! off the event loop and beside the writer: the store is copied through one read transaction,
//! so the node goes on taking and sending messages meanwhile.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use super::wire::{BackupReport, BackupRequest};
use super::{ApiError, ApiState, Authorized, blocking};

/// Writes a backup of the node's data directory to a file the node's user can create.
#[utoipa::path(post, path = "/v1/backup", tag = "operations", request_body = BackupRequest,
    responses((status = 200, description = "The backup is complete and synced", body = BackupReport),
        (status = 422, description = "Refused as given (a relative path, a file that exists, a place inside the data directory)", body = super::wire::ErrorBody),
        (status = 500, description = "The backup could not be written; no file is left under its name", body = super::wire::ErrorBody)))]
pub async fn backup(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    Json(b): Json<BackupRequest>,
) -> Result<Json<BackupReport>, ApiError> {
    let out = std::path::PathBuf::from(&b.out);
    if !out.is_absolute() {
        return Err(ApiError::invalid(format!(
            "{}: the node writes the backup, so give an absolute path",
            b.out
        )));
    }
    if out.exists() {
        return Err(ApiError::invalid(format!(
            "{} exists: a backup never replaces a file",
            b.out
        )));
    }
    if crate::store::backup::inside(&s.data, &out) {
        return Err(ApiError::invalid(format!(
            "{} is inside the data directory: put the backup elsewhere",
            b.out
        )));
    }
    let (store, dir) = (Arc::clone(&s.store), s.data.clone());
    let started = std::time::Instant::now();
    let m = blocking(move || {
        crate::store::backup::write(&dir, &store, &out).map_err(|e| {
            tracing::error!("a backup failed: {e:#}");
            ApiError::internal(format!("{e:#}"))
        })
    })
    .await?;
    tracing::info!(file = %b.out, files = m.files.len(), "a backup was written");
    Ok(Json(BackupReport::of(&b.out, &m, started.elapsed())))
}
