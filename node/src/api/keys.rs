//! `POST /v1/keys/reload`: the node takes up a key history that `rogatory keys` committed.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use rogatory_proto::keyhist::Relation;

use super::wire::{ErrorBody, Reload};
use super::{ApiError, ApiState, Authorized, blocking};

/// Checks that the key history in the data directory continues the one the node runs on,
/// then restarts the node on it (queued envelopes stay queued; nothing is lost).
#[utoipa::path(post, path = "/v1/keys/reload", tag = "status",
    responses((status = 202, description = "The node restarts on the new keys", body = Reload),
        (status = 409, description = "The history on disk does not continue the running one", body = ErrorBody),
        (status = 500, description = "The history cannot be read", body = ErrorBody)))]
pub async fn reload(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
) -> Result<(StatusCode, Json<Reload>), ApiError> {
    let dir = s.data.clone();
    let on_disk = blocking(move || {
        crate::keydir::own_history(&dir).map_err(|e| ApiError::internal(format!("{e:#}")))
    })
    .await?;
    match s.me.history.relation(on_disk.statements()) {
        Relation::Extends { .. } | Relation::Same
            if on_disk.root_id() == s.me.history.root_id() => {}
        _ => {
            return Err(ApiError(
                StatusCode::CONFLICT,
                "the key history on disk does not continue the one this node runs on; it was not taken up"
                    .into(),
            ));
        }
    }
    tracing::info!(
        statements = on_disk.statements().len(),
        "restarting on a new key history"
    );
    s.restart.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(Reload {
            statements: on_disk.statements().len() as u64,
        }),
    ))
}
