//! `GET /v1/status`, `GET /v1/proof`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::wire::{OutboxCounts, Proof, Status, StatusQuery};
use super::{ApiError, ApiState, Authorized, blocking, listen};

/// The node, its network, and its queues; with `?peer=…&key_state=…&failures=…&wait=SECS`,
/// answered once that partner is so (or the time is up).
#[utoipa::path(get, path = "/v1/status", tag = "status", params(StatusQuery),
    responses((status = 200, description = "The answer", body = Status), (status = 401, description = "No valid bearer token", body = super::wire::ErrorBody)))]
pub async fn status(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    Query(q): Query<StatusQuery>,
) -> Result<Json<Status>, ApiError> {
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_secs(q.wait.min(super::MAX_WAIT_SECS));
    let holds = |p: &crate::net::PeerStatus| {
        q.key_state.as_ref().is_none_or(|k| &p.key_state == k)
            && q.failures.is_none_or(|f| p.failures >= f)
    };
    let net = loop {
        // Listening before reading, so a change in between is not missed.
        let mut changes = s.net.changes();
        let net = s.net.status().await.unwrap_or_default();
        let met = match &q.peer {
            None => true,
            Some(a) => net.peers.iter().any(|p| &p.agency == a && holds(p)),
        };
        // The wait ends at the deadline, or when the event loop has stopped.
        if met
            || !matches!(
                tokio::time::timeout_at(deadline, changes.changed()).await,
                Ok(Ok(()))
            )
        {
            break net;
        }
    };
    let store = Arc::clone(&s.store);
    let counts = blocking(move || Ok(store.counts()?)).await?;
    Ok(Json(Status {
        agency: s.me.card.id().to_string(),
        peer_id: s.peer_id.clone(),
        key_history_statements: s.me.history.statements().len() as u64,
        listening: net.listening,
        inbound_pending: net.inbound_pending,
        peers: net.peers,
        evidence_active: net.evidence_active,
        evidence_waiting: net.evidence_waiting,
        receipts_waited: net.receipts_waited,
        inbox: counts.received,
        outbox: OutboxCounts {
            queued: counts.queued,
            settled: counts.sent.saturating_sub(counts.queued),
        },
    }))
}

/// `?nonce=HEX` of `GET /v1/proof`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProofQuery {
    /// 16 to 64 random bytes, hex.
    pub nonce: String,
}

/// The node proves it holds the API token, without the client sending it (a server left on a
/// stale `api.addr` cannot answer). Needs no token.
#[utoipa::path(get, path = "/v1/proof", tag = "status", params(ProofQuery), security(()),
    responses((status = 200, description = "The answer", body = Proof), (status = 400, description = "The request is malformed", body = super::wire::ErrorBody)))]
pub async fn proof(
    State(s): State<Arc<ApiState>>,
    Query(q): Query<ProofQuery>,
) -> Result<Json<Proof>, ApiError> {
    let nonce = hex::decode(&q.nonce)
        .ok()
        .filter(|n| (16..=64).contains(&n.len()))
        .ok_or_else(|| ApiError::bad("nonce: 16 to 64 random bytes, hex"))?;
    Ok(Json(Proof {
        proof: hex::encode(listen::proof(&s.token_hash.0, &nonce)),
    }))
}
