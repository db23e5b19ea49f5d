//! The local API: HTTP/JSON for the command line and other clients on this machine, on the
//! node's Unix socket and on a loopback TCP address ([`listen`]).
//!
//! Every request must carry `Authorization: Bearer <token>`: an official's own token (an
//! account, `rogatory user add`), or the token the daemon keeps in `api-token` (mode 0600) in
//! the data directory, which only the node's operating-system user can read. Each route needs a
//! permission (spec/PEOPLE.md §3, [`PERMISSIONS`]) that the account's roles give; the node's own
//! token has them all while no account exists, and only an administrator's once one does. The
//! account's name is recorded in the audit entries of what it sends and reads (with the node's
//! own token and no accounts, `X-Rogatory-User`, the local login name the client sends). The
//! address actually bound is written to `api.addr` while the node runs.
//!
//! The requests and answers are the types of [`wire`]; the OpenAPI 3.1 document generated from
//! them ([`openapi`]) is served at `GET /v1/openapi.json` and checked in as
//! `spec/openapi.json`. The routes, by resource:
//!
//! | module       | routes                                                                    |
//! |--------------|---------------------------------------------------------------------------|
//! | `status`     | `GET /v1/status`, `GET /v1/proof`                                          |
//! | `openapi`    | `GET /v1/openapi.json`                                                     |
//! | `messages`   | `GET /v1/inbox`, `GET /v1/outbox`, `GET /v1/outbox/{id}`,                  |
//! |              | `GET /v1/messages/{id}`, `POST /v1/messages/{id}/forward`                  |
//! | `send`       | `POST /v1/send`, `POST /v1/send/batch`                                     |
//! | `cases`      | `GET`/`POST /v1/cases`, `GET /v1/cases/{id}`, `POST /v1/cases/{id}/export`,|
//! |              | `GET /v1/deadlines`                                                        |
//! | `evidence`   | `GET`/`POST /v1/evidence/{case}`, `POST …/send`, `…/export`, `…/verify`    |
//! | `audit`      | `GET /v1/alerts`, `GET /v1/audit/{case}/log`, `…/checkpoint`, `…/prove`,   |
//! |              | `…/consistency`, `POST /v1/audit/verify-store`                             |
//! | `access`     | `GET /v1/me`                                                               |
//! | `drafts`     | `GET /v1/drafts`, `GET /v1/drafts/{id}`, `POST …/approve`, `…/reject`      |
//! | `backup`     | `POST /v1/backup`                                                          |
//! | `metrics`    | `GET /metrics` (Prometheus text format)                                    |
//!
//! Errors are `{"error": "…"}` with a status that says whose fault it is (see
//! [`wire::ErrorBody`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rogatory_proto::envelope::Limits;
use rogatory_proto::ids::{AgencyId, CaseId, Sha256Digest};

use crate::keydir::KeyDir;
use crate::store::StoreError;

pub mod access;
pub mod audit;
pub mod backup;
pub mod cases;
pub mod drafts;
pub mod evidence;
pub mod keys;
pub mod listen;
pub mod messages;
pub mod metrics;
mod openapi;
pub mod send;
pub mod stats;
pub mod status;
pub mod wire;

pub use access::{Authorized, PERMISSIONS, permission_for};
pub use openapi::openapi;

/// File holding the API's bearer token (mode 0600).
pub const TOKEN_FILE: &str = "api-token";
/// File holding the address the API is bound to, while the node runs.
pub const ADDR_FILE: &str = "api.addr";
/// The header naming the local user.
pub const USER_HEADER: &str = "x-rogatory-user";
/// The longest `?wait=` a request may ask for.
pub const MAX_WAIT_SECS: u64 = 300;

/// Shared state of the API handlers.
pub struct ApiState {
    /// The store (reads; writes go through the worker).
    pub store: Arc<crate::store::Store>,
    /// The data directory (evidence content lives in `evidence/` there).
    pub data: PathBuf,
    /// This agency.
    pub me: Arc<KeyDir>,
    /// Pinned partners, as their key histories stand.
    pub trust: Arc<crate::trust::Trust>,
    /// Limits.
    pub limits: Limits,
    /// The store worker.
    pub worker: crate::engine::Worker,
    /// The event loop.
    pub net: crate::net::NetHandle,
    /// This node's libp2p peer id.
    pub peer_id: String,
    /// Rung by the worker once a change is durable (`?wait=`).
    pub watch: Arc<crate::engine::Watch>,
    /// SHA-256 of the token: compared instead of the token, so the comparison's timing says
    /// nothing about the token.
    pub token_hash: Sha256Digest,
    /// Rung to have the node restart (on new keys).
    pub restart: Arc<tokio::sync::Notify>,
    /// The officials' accounts (spec/PEOPLE.md).
    pub accounts: crate::people::Accounts,
    /// What the store worker decided, for `GET /metrics`.
    pub counters: Arc<crate::engine::counters::Counters>,
    /// The message types that need an issuing authority's approval (`[approval] required`).
    pub approval: Vec<rogatory_proto::message::MessageType>,
    /// The message types officials sign in their own names (`[approval] signed`).
    pub signed: Vec<rogatory_proto::message::MessageType>,
    /// The message types a validating authority countersigns before they are sealed
    /// (`[approval] validated`).
    pub validated: Vec<rogatory_proto::message::MessageType>,
    /// The least suppression threshold of statistics (`[stats] threshold`).
    pub stats_threshold: u64,
}

impl ApiState {
    /// The partner `id` names, if it is pinned.
    fn partner(&self, id: &str) -> Result<AgencyId, ApiError> {
        let a = AgencyId::new(id).map_err(|e| ApiError::invalid(format!("{id:?}: {e}")))?;
        if !self.trust.snapshot().contains_key(&a) {
            return Err(ApiError::invalid(format!(
                "{a} is not a pinned partner: pin its card first (rogatory peer add)"
            )));
        }
        Ok(a)
    }
}

/// An API error: a status and a one-line message, as `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    /// The request is refused as given (422).
    pub fn invalid(m: impl Into<String>) -> Self {
        Self(StatusCode::UNPROCESSABLE_ENTITY, m.into())
    }

    /// The request is malformed (400).
    pub fn bad(m: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, m.into())
    }

    /// No such thing (404).
    pub fn not_found(m: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, m.into())
    }

    /// The node failed (500): logged.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("API: {e}");
        Self(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(wire::ErrorBody { error: self.1 })).into_response()
    }
}

impl From<crate::engine::Error> for ApiError {
    /// Whose fault it is, as a status: the request's (422, 404, 409), the store's (500), a stop
    /// in progress (503).
    fn from(e: crate::engine::Error) -> Self {
        use crate::engine::Error as E;
        let status = match &e {
            E::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Conflict(_) => StatusCode::CONFLICT,
            E::Store(_) => {
                tracing::error!("API: {e}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            E::Stopping => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    /// A read that failed: the store's fault (500), unless it asked for what does not exist
    /// (422).
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Request(m) => ApiError::invalid(m),
            other => ApiError::internal(other),
        }
    }
}

/// Runs a blocking read off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// A case id from a path.
fn case_id(id: &str) -> Result<CaseId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad("give a case id (a UUID)"))
}

/// Writes a fresh token (mode 0600) for this run of the node; returns it. A new token at every
/// start means a token read from a stale `api.addr` after a crash (by whoever took the old port)
/// is worthless against the restarted node.
pub fn new_token(dir: &Path) -> Result<String> {
    let path = dir.join(TOKEN_FILE);
    let mut b = [0u8; 32];
    rogatory_proto::keys::fill_random(&mut b);
    let t = hex::encode(b);
    crate::files::write_atomic(&path, t.as_bytes(), true, true)?;
    crate::files::check_private(&path)?;
    Ok(t)
}

/// Where a node's API is, from its data directory.
pub fn locate(dir: &Path) -> Result<(String, String)> {
    let addr_path: PathBuf = dir.join(ADDR_FILE);
    let addr = match std::fs::read_to_string(&addr_path) {
        Ok(a) => a.trim().to_string(),
        Err(_) => anyhow::bail!(
            "the node in {} is not running (start it with `rogatory run`)",
            dir.display()
        ),
    };
    let token_path = dir.join(TOKEN_FILE);
    let token = std::fs::read_to_string(&token_path)
        .with_context(|| format!("cannot read the API token {}", token_path.display()))?;
    Ok((addr, token.trim().to_string()))
}

/// The router.
pub fn router(state: Arc<ApiState>) -> axum::Router {
    let heavy = Arc::new(tokio::sync::Semaphore::new(listen::HEAVY_AT_ONCE));
    axum::Router::new()
        .route("/v1/status", get(status::status))
        .route("/v1/proof", get(status::proof))
        .route("/v1/openapi.json", get(openapi::document))
        .route("/v1/inbox", get(messages::inbox))
        .route("/v1/outbox", get(messages::outbox))
        .route("/v1/outbox/{id}", get(messages::outbox_one))
        .route("/v1/send", post(send::send))
        .route("/v1/send/batch", post(send::send_batch))
        .route("/v1/messages/{id}", get(messages::message))
        .route("/v1/messages/{id}/forward", post(messages::forward))
        .route("/v1/cases", get(cases::cases).post(cases::new_case))
        .route("/v1/cases/{id}", get(cases::case_one))
        .route("/v1/cases/{id}/export", post(cases::case_export))
        .route("/v1/deadlines", get(cases::deadlines))
        .route("/v1/stats", get(stats::stats))
        .route(
            "/v1/evidence/{case}",
            get(evidence::list).post(evidence::add),
        )
        .route("/v1/evidence/{case}/send", post(evidence::send))
        .route("/v1/evidence/{case}/export", post(evidence::export))
        .route("/v1/evidence/{case}/verify", post(evidence::verify))
        .route("/v1/alerts", get(audit::alerts))
        .route("/v1/audit/{case}/log", get(audit::log))
        .route("/v1/audit/{case}/checkpoint", get(audit::checkpoint))
        .route("/v1/audit/{case}/prove", get(audit::prove))
        .route("/v1/audit/{case}/consistency", get(audit::consistency))
        .route("/v1/audit/verify-store", post(audit::verify_store))
        .route("/v1/keys/reload", post(keys::reload))
        .route("/v1/backup", post(backup::backup))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/me", get(access::me))
        .route("/v1/drafts", get(drafts::list))
        .route("/v1/drafts/{id}", get(drafts::one))
        .route("/v1/drafts/{id}/approve", post(drafts::approve))
        .route("/v1/drafts/{id}/reject", post(drafts::reject))
        .route("/v1/drafts/{id}/validate", post(drafts::validate))
        // Bodies are read whole, bounded in size and time, before any handler runs.
        .layer(axum::middleware::from_fn(move |req, next| {
            listen::bounded_body(Arc::clone(&heavy), req, next)
        }))
        .layer(axum::extract::DefaultBodyLimit::max(listen::LARGE_BODY))
        .with_state(state)
}

/// Binds the API (TCP on loopback, and the Unix socket in the data directory) and serves it
/// until `stop` turns true; writes `api.addr`. `beside` adds what is served with the API (the
/// console), given the API's router and the address bound.
pub async fn start(
    dir: &Path,
    bind: SocketAddr,
    state: Arc<ApiState>,
    stop: tokio::sync::watch::Receiver<bool>,
    beside: impl FnOnce(axum::Router, SocketAddr) -> axum::Router,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listeners = listen::bind(dir, bind).await?;
    let addr = listeners.tcp.local_addr()?;
    crate::files::write_atomic(
        &dir.join(ADDR_FILE),
        addr.to_string().as_bytes(),
        false,
        true,
    )?;
    let app = beside(router(state), addr);
    let task = tokio::spawn(listen::serve(listeners, app, stop));
    Ok((addr, task))
}
