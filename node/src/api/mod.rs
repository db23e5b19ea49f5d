//! The local API: HTTP/JSON on a loopback address, for the command line on this machine.
//!
//! Every request must carry `Authorization: Bearer <token>`, the token the daemon keeps in
//! `api-token` (mode 0600) in the data directory: only the node's operating-system user can read
//! it. The address actually bound is written to `api.addr` while the node runs. `X-Rogatory-User`
//! names the local user, recorded in the audit entries of what they send and read.
//!
//! | method and path           | what                                                     |
//! |---------------------------|----------------------------------------------------------|
//! | `GET /v1/status`          | agency, addresses, partners, connections, queue depths    |
//! | `GET /v1/inbox`           | accepted envelopes, oldest first                          |
//! | `GET /v1/outbox`          | envelopes sealed here and where each stands; with         |
//! |                           | `?settled=N&wait=SECS`, answered once N are settled        |
//! | `GET /v1/outbox/{id}`     | one of them by full id; `?wait=SECS` (at most 300) waits  |
//! |                           | until it is settled (delivered or rejected)               |
//! | `POST /v1/send`           | seal a message for its addressees and queue it            |
//! | `POST /v1/messages/{id}/forward` | pass a received message on to other partners in its |
//! |                           | case; refused (and logged) if its handling code is H2       |
//! | `GET /v1/cases`           | every case: kind, side, partner, status, overdue deadlines |
//! | `POST /v1/cases`          | open a case before its first message: kind, partner, ref.  |
//! | `GET /v1/cases/{id}`      | one case: its timeline, messages, receipts and deadlines; |
//! |                           | `?wait=SECS`: once no proposal of this side is pending    |
//! | `GET /v1/deadlines`       | open deadlines; `?within=DAYS` (default 7) and overdue     |
//! | `GET /v1/evidence/{case}` | the case's evidence items: mode, size, hash, state        |
//! | `POST /v1/evidence/{case}`| add items (manifest entries; `send` items' sealed content |
//! |                           | staged in `evidence/staging/` with its key)               |
//! | `POST /v1/evidence/{case}/send` | send the manifest of the staged items to a partner  |
//! | `POST /v1/evidence/{case}/export` | write a verified item's content to a new file     |
//! |                           | (logged first as `evidence-exported`)                     |
//! | `POST /v1/evidence/{case}/verify` | re-read held content and check it                 |
//! | `GET /v1/messages/{id}`   | one message: metadata, receipt, audit entries, and (for a |
//! |                           | received one) its content — logged as `content-accessed`  |

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Json;
use axum::extract::{FromRequestParts, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rogatory_proto::card::AgencyCard;
use rogatory_proto::case::order::Entry;
use rogatory_proto::envelope::{self, Limits, Recipient};
use rogatory_proto::ids::{AgencyId, CaseId, Sha256Digest};
use rogatory_proto::message::{
    ExtraditionStatusUpdate, Message, MessageError, MessageType, MlaStatusUpdate,
};
use rogatory_proto::receipt::verify_receipt;
use rogatory_proto::time::format_unix;
use serde_json::{Value, json};

pub mod listen;

use crate::engine::{Job, SendRequest};
use crate::keydir::KeyDir;
use crate::store::{OutboxState, Store, StoreError};

/// File holding the API's bearer token (mode 0600).
pub const TOKEN_FILE: &str = "api-token";
/// File holding the address the API is bound to, while the node runs.
pub const ADDR_FILE: &str = "api.addr";
/// The header naming the local user.
pub const USER_HEADER: &str = "x-rogatory-user";

/// Shared state of the API handlers.
pub struct ApiState {
    /// The store (reads; writes go through the worker).
    pub store: Arc<Store>,
    /// The data directory (evidence content lives in `evidence/` there).
    pub data: PathBuf,
    /// This agency.
    pub me: Arc<KeyDir>,
    /// Pinned partners.
    pub trusted: Vec<AgencyCard>,
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
}

/// An API error: a status and a one-line message, as `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
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

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("API: {e}");
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// A request that carried the right token; holds the local user it names.
pub struct Authorized(Option<String>);

impl FromRequestParts<Arc<ApiState>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let given = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(t) if Sha256Digest::of(t.trim().as_bytes()) == state.token_hash => {
                let user = parts
                    .headers
                    .get(USER_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(|u| u.chars().take(64).collect());
                Ok(Authorized(user))
            }
            _ => {
                tracing::warn!(path = %parts.uri.path(), "API request refused: no valid bearer token");
                Err(ApiError(
                    StatusCode::UNAUTHORIZED,
                    format!("a bearer token is required (the node's {TOKEN_FILE} file)"),
                ))
            }
        }
    }
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

/// The router.
pub fn router(state: Arc<ApiState>) -> axum::Router {
    let heavy = Arc::new(tokio::sync::Semaphore::new(listen::HEAVY_AT_ONCE));
    axum::Router::new()
        .route("/v1/status", get(status))
        .route("/v1/inbox", get(inbox))
        .route("/v1/outbox", get(outbox))
        .route("/v1/outbox/{id}", get(outbox_one))
        .route("/v1/send", post(send))
        .route("/v1/messages/{id}", get(message))
        .route("/v1/messages/{id}/forward", post(forward))
        .route("/v1/cases", get(cases).post(new_case))
        .route("/v1/cases/{id}", get(case_one))
        .route("/v1/cases/{id}/export", post(case_export))
        .route("/v1/deadlines", get(deadlines))
        .route("/v1/alerts", get(alerts))
        .route("/v1/evidence/{case}", get(evidence_list).post(evidence_add))
        .route("/v1/evidence/{case}/send", post(evidence_send))
        .route("/v1/evidence/{case}/export", post(evidence_export))
        .route("/v1/evidence/{case}/verify", post(evidence_verify))
        .route("/v1/proof", get(proof))
        // Bodies are read whole, bounded in size and time, before any handler runs.
        .layer(axum::middleware::from_fn(move |req, next| {
            listen::bounded_body(Arc::clone(&heavy), req, next)
        }))
        .layer(axum::extract::DefaultBodyLimit::max(listen::LARGE_BODY))
        .with_state(state)
}

/// Binds the API (TCP on loopback, and the Unix socket in the data directory) and serves it
/// until `stop` turns true; writes `api.addr`.
pub async fn start(
    dir: &Path,
    bind: SocketAddr,
    state: Arc<ApiState>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listeners = listen::bind(dir, bind).await?;
    let addr = listeners.tcp.local_addr()?;
    crate::files::write_atomic(
        &dir.join(ADDR_FILE),
        addr.to_string().as_bytes(),
        false,
        true,
    )?;
    let app = router(state);
    let task = tokio::spawn(listen::serve(listeners, app, stop));
    Ok((addr, task))
}

/// `GET /v1/proof?nonce=HEX`: the node proves it holds the API token, without the client
/// sending it (a server left on a stale `api.addr` cannot answer).
#[derive(Debug, serde::Deserialize)]
pub struct ProofQuery {
    /// 16 to 64 random bytes, hex.
    pub nonce: String,
}

async fn proof(
    State(s): State<Arc<ApiState>>,
    axum::extract::Query(q): axum::extract::Query<ProofQuery>,
) -> Result<Json<Value>, ApiError> {
    let nonce = hex::decode(&q.nonce)
        .ok()
        .filter(|n| (16..=64).contains(&n.len()))
        .ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "nonce: 16 to 64 random bytes, hex".into(),
            )
        })?;
    Ok(Json(json!({
        "proof": hex::encode(listen::proof(&s.token_hash.0, &nonce)),
    })))
}

async fn status(_: Authorized, State(s): State<Arc<ApiState>>) -> Result<Json<Value>, ApiError> {
    let net = s.net.status().await.unwrap_or_default();
    let mut v = serde_json::to_value(&net).map_err(internal)?;
    v["agency"] = s.me.card.id().as_str().into();
    v["peer_id"] = s.peer_id.clone().into();
    let store = Arc::clone(&s.store);
    let (inbox, outbox) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let inbox = store.received().map_err(internal)?.len();
        let mut counts: HashMap<&'static str, usize> = HashMap::new();
        for e in store.outbox().map_err(internal)? {
            *counts.entry(state_name(e.state)).or_default() += 1;
        }
        Ok((inbox, counts))
    })
    .await
    .map_err(internal)??;
    v["inbox"] = inbox.into();
    v["outbox"] = json!(outbox);
    Ok(Json(v))
}

fn state_name(s: OutboxState) -> &'static str {
    match s {
        OutboxState::Queued => "queued",
        OutboxState::Delivered => "delivered",
        OutboxState::Rejected => "rejected",
    }
}

async fn inbox(_: Authorized, State(s): State<Arc<ApiState>>) -> Result<Json<Value>, ApiError> {
    let store = Arc::clone(&s.store);
    let list = tokio::task::spawn_blocking(move || store.received())
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(Json(Value::Array(
        list.into_iter()
            .map(|(id, r)| {
                json!({
                    "envelope_id": hex::encode(id),
                    "from": r.from.as_str(),
                    "case_id": r.case_id.to_string(),
                    "type": r.message_type,
                    "message_id": r.message_id.to_string(),
                    "sequence": r.sequence,
                    "emergency": r.emergency,
                    "arrival": r.arrival,
                    "sent_at": format_unix(r.sent_at),
                    "received_at": format_unix(r.received_at),
                })
            })
            .collect(),
    )))
}

/// The outbox with the live delivery state: `queued`, `sending`, `waiting-for-retry`,
/// `delivered`, `rejected` (with the reason).
/// `GET /v1/outbox?settled=N&wait=SECS`.
#[derive(Debug, serde::Deserialize)]
pub struct OutboxQuery {
    /// Answer once at least this many envelopes are settled (or the wait is over).
    #[serde(default)]
    pub settled: usize,
    /// Seconds to wait for that (at most 300).
    #[serde(default)]
    pub wait: u64,
}

async fn outbox(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    axum::extract::Query(q): axum::extract::Query<OutboxQuery>,
) -> Result<Json<Value>, ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.min(300));
    let list = loop {
        // Listening before reading, so a settlement in between is not missed.
        let woken = s.watch.anything();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let store = Arc::clone(&s.store);
        let list = tokio::task::spawn_blocking(move || store.outbox())
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let settled = list
            .iter()
            .filter(|e| e.state != OutboxState::Queued)
            .count();
        if settled >= q.settled || tokio::time::timeout_at(deadline, woken).await.is_err() {
            break list;
        }
    };
    let snap = s.net.status().await.unwrap_or_default();
    let sending: HashSet<[u8; 32]> = snap.sending.iter().copied().collect();
    let peers: HashMap<&str, &crate::net::PeerStatus> =
        snap.peers.iter().map(|p| (p.agency.as_str(), p)).collect();
    let rows = list
        .iter()
        .map(|e| {
            let id = Sha256Digest::of(&e.envelope);
            let mut row = outbox_row(e);
            if e.state == OutboxState::Queued {
                let peer = peers.get(e.to.as_str());
                let state = if sending.contains(&id.0) {
                    "sending"
                } else if let Some(p) = peer.filter(|p| p.retry_in_secs.is_some()) {
                    row["retry_in_secs"] = json!(p.retry_in_secs);
                    row["failures"] = p.failures.into();
                    row["last_error"] = json!(p.last_error);
                    "waiting-for-retry"
                } else {
                    "queued"
                };
                row["state"] = state.into();
            }
            row
        })
        .collect();
    Ok(Json(Value::Array(rows)))
}

/// `?wait=SECS`.
#[derive(Debug, serde::Deserialize)]
pub struct Wait {
    /// Seconds to wait for the envelope to be settled.
    #[serde(default)]
    pub wait: u64,
}

/// One outbox entry by full id; with `?wait=`, answered when it is settled or the time is up.
async fn outbox_one(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    axum::extract::Query(w): axum::extract::Query<Wait>,
) -> Result<Json<Value>, ApiError> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(&id, &mut key).map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "give the full envelope id (64 hex digits)".into(),
        )
    })?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(w.wait.min(300));
    loop {
        // Registered before reading, so a settlement in between is not missed.
        let mut woken = s.watch.envelope(key);
        let store = Arc::clone(&s.store);
        let entry = tokio::task::spawn_blocking(move || store.outbox_entry(&key))
            .await
            .map_err(internal)?
            .map_err(internal)?
            .ok_or_else(|| {
                ApiError(
                    StatusCode::NOT_FOUND,
                    "no such envelope in the outbox".into(),
                )
            })?;
        if entry.state != OutboxState::Queued || tokio::time::Instant::now() >= deadline {
            return Ok(Json(outbox_row(&entry)));
        }
        // Wait for this envelope (or the deadline), then read again; the interest is
        // forgotten when it goes out of scope, whatever happened.
        let _ = tokio::time::timeout_at(deadline, woken.settled()).await;
    }
}

/// An outbox entry as JSON, with what its receipt says.
pub fn outbox_row(e: &crate::store::OutboxEntry) -> Value {
    let id = Sha256Digest::of(&e.envelope);
    let mut row = json!({
        "envelope_id": id.to_hex(),
        "case_id": e.case_id.to_string(),
        "to": e.to.as_str(),
        "sealed_at": format_unix(e.sealed_at),
        "state": state_name(e.state),
        "emergency": e.emergency,
    });
    // Receipts are verified before they are stored (they settle nothing otherwise): listing
    // them decodes without verifying each signature again.
    if let Some(r) = &e.receipt
        && let Ok(v) = rogatory_proto::receipt::decode_verified_earlier(r)
        && v.receipt.envelope_id == id
    {
        row["receipt"] = json!({
            "event": serde_json::to_value(v.receipt.event).unwrap_or_default(),
            "received_at": format_unix(v.receipt.received_at),
            "reason": v.receipt.reason.map(|r| r.name()),
            "detail": v.receipt.detail,
            "receipt_hash": v.hash.to_hex(),
            // The time to acknowledgement, as the two clocks say (seconds).
            "ack_secs": v.receipt.received_at.saturating_sub(e.sealed_at),
            // The addressee's cosignature of the checkpoint the envelope carried (checked when
            // the receipt was recorded; a bad one raised an alert).
            "cosignature": v.receipt.cosignature.as_deref().map(String::from_utf8_lossy),
        });
    }
    row
}

/// The body of `POST /v1/send`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    /// Addressees.
    pub to: Vec<String>,
    /// A case id (UUIDv7), or `new`.
    pub case: String,
    /// The message type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The message, as JSON.
    pub body: Value,
}

async fn send(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    Json(b): Json<SendBody>,
) -> Result<Json<Value>, ApiError> {
    let bad = |m: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, m);
    if b.to.is_empty() {
        return Err(bad("no addressee".into()));
    }
    let mut to = Vec::with_capacity(b.to.len());
    for t in &b.to {
        let id = AgencyId::new(t).map_err(|e| bad(format!("addressee {t:?}: {e}")))?;
        if !s.trusted.iter().any(|c| c.id() == &id) {
            return Err(bad(format!(
                "{id} is not a pinned partner: pin its card first (rogatory peer add)"
            )));
        }
        to.push(id);
    }
    let case = if b.case == "new" {
        CaseId::generate()
    } else {
        let c: CaseId = b
            .case
            .parse()
            .map_err(|_| bad(format!("case {:?} is not a UUID (or `new`)", b.case)))?;
        if c.0.get_version_num() != 7 {
            return Err(bad(format!("case {c} is not a UUIDv7")));
        }
        if c == crate::store::NODE_LOG {
            return Err(bad(format!("case {c} is reserved for the node's own log")));
        }
        c
    };
    let kind: MessageType = b.kind.parse().map_err(|e| bad(format!("{e}")))?;
    if kind == MessageType::EvidenceManifest {
        return Err(bad(
            "an evidence manifest is sent with `rogatory evidence send` (POST /v1/evidence/{case}/send), which keeps the items it lists and their content keys".into(),
        ));
    }
    if kind == MessageType::EvidenceStatus {
        return Err(bad(
            "an evidence status is written by the node itself when an item arrives, is verified or quarantined, or is exported".into(),
        ));
    }
    let message = Message::from_json(kind, &b.body)
        .and_then(|m| m.validate().map(|()| m))
        .map_err(|e| match e {
            MessageError::Invalid { problems, .. } => bad(format!(
                "this {kind} cannot be sent: {}",
                problems
                    .0
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            other => bad(other.to_string()),
        })?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = Job::Send {
        request: Box::new(SendRequest {
            to,
            case,
            message,
            user,
            confirmation: false,
        }),
        reply: tx,
    };
    submit(&s, job).await?;
    let queued = rx
        .await
        .map_err(|_| ApiError::from(crate::engine::Error::Stopping))?
        .map_err(ApiError::from)?;
    Ok(Json(json!({
        "case_id": case.to_string(),
        "type": kind.as_str(),
        "queued": queued,
    })))
}

async fn submit(s: &ApiState, job: Job) -> Result<(), ApiError> {
    s.worker.give(job).await.map_err(ApiError::from)
}

/// Finds an envelope by id or unique hex prefix (at least 8 characters), among those received
/// and those sent.
fn find(store: &Store, id: &str) -> Result<Option<([u8; 32], bool)>, ApiError> {
    let id = id.to_ascii_lowercase();
    if id.len() < 8 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "give an envelope id, or at least its first 8 hex digits".into(),
        ));
    }
    let mut hits: Vec<([u8; 32], bool)> = Vec::new();
    for (k, _) in store.received().map_err(internal)? {
        if hex::encode(k).starts_with(&id) {
            hits.push((k, true));
        }
    }
    for e in store.outbox().map_err(internal)? {
        let k = Sha256Digest::of(&e.envelope).0;
        if hex::encode(k).starts_with(&id) {
            hits.push((k, false));
        }
    }
    match hits.len() {
        0 => Ok(None),
        1 => Ok(hits.pop()),
        n => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("{n} envelopes start with {id}: give more digits"),
        )),
    }
}

async fn message(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Value>, ApiError> {
    let st = Arc::clone(&s);
    let found = tokio::task::spawn_blocking(move || find(&st.store, &id))
        .await
        .map_err(internal)??;
    let Some((id, received)) = found else {
        return Err(ApiError(StatusCode::NOT_FOUND, "no such envelope".into()));
    };
    let st = Arc::clone(&s);
    let mut v = tokio::task::spawn_blocking(move || describe(&st, id, received))
        .await
        .map_err(internal)??;
    if received {
        // The content is shown only once its reading is logged.
        let case: CaseId = v["case_id"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| internal("no case"))?;
        let peer = AgencyId::new(v["from"].as_str().unwrap_or_default()).map_err(internal)?;
        let user = user.unwrap_or_else(|| "unknown".into());
        let (tx, rx) = tokio::sync::oneshot::channel();
        submit(
            &s,
            Job::Access {
                case,
                envelope: Sha256Digest(id),
                peer,
                user: user.clone(),
                reply: tx,
            },
        )
        .await?;
        rx.await
            .map_err(|_| ApiError::from(crate::engine::Error::Stopping))?
            .map_err(ApiError::from)?;
        v["accessed_by"] = user.into();
    } else {
        v.as_object_mut().map(|o| o.remove("content"));
    }
    Ok(Json(v))
}

fn describe(s: &ApiState, id: [u8; 32], received: bool) -> Result<Value, ApiError> {
    let eid = Sha256Digest(id);
    let (case, mut v) = if received {
        let bytes = s
            .store
            .inbox_envelope(&id)
            .map_err(internal)?
            .ok_or_else(|| internal("the envelope is missing from the inbox"))?;
        let opened = envelope::open(
            &bytes,
            &Recipient {
                card: &s.me.card,
                keys: &s.me.keys,
            },
            &s.trusted,
            &s.limits,
        )
        .map_err(|e| internal(format!("a stored envelope no longer opens: {e}")))?;
        let receipt = s
            .store
            .receipt_for(&id)
            .map_err(internal)?
            .and_then(|r| verify_receipt(&r, &s.me.card, Some(&eid)).ok())
            .map(|r| {
                json!({
                    "event": serde_json::to_value(r.receipt.event).unwrap_or_default(),
                    "received_at": format_unix(r.receipt.received_at),
                    "receipt_hash": r.hash.to_hex(),
                })
            });
        (
            opened.case_id,
            json!({
                "direction": "received",
                "envelope_id": eid.to_hex(),
                "case_id": opened.case_id.to_string(),
                "from": opened.info.from.as_str(),
                "to": opened.info.to.as_str(),
                "recipients": opened.recipients.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                "type": opened.message.kind().as_str(),
                "message_id": opened.info.message_id.to_string(),
                "sequence": opened.info.chain.sequence,
                "sent_at": format_unix(opened.info.sent_at),
                "receipt": receipt,
                "content": opened.message.to_json(),
            }),
        )
    } else {
        let e = s
            .store
            .outbox_entry(&id)
            .map_err(internal)?
            .ok_or_else(|| internal("the envelope is missing from the outbox"))?;
        let info = envelope::inspect(&e.envelope, &s.limits).map_err(internal)?;
        let mut row = outbox_row(&e);
        row["direction"] = "sent".into();
        row["from"] = info.from.as_str().into();
        row["message_id"] = info.message_id.to_string().into();
        row["sequence"] = info.chain.sequence.into();
        row["note"] =
            "the content of a sent envelope is encrypted to its addressee; it is not kept here in clear"
                .into();
        (e.case_id, row)
    };
    let audit: Vec<Value> = s
        .store
        .entries(&case)
        .map_err(internal)?
        .into_iter()
        .filter(|(e, _)| e.envelope_id == Some(eid))
        .map(|(e, _)| serde_json::to_value(e).unwrap_or_default())
        .collect();
    v["audit"] = audit.into();
    Ok(v)
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

fn today() -> rogatory_proto::case::Day {
    rogatory_proto::case::Day::of_unix(rogatory_proto::time::now_unix())
}

fn deadline_json(r: &crate::cases::CaseRecord, d: &rogatory_proto::case::Deadline) -> Value {
    let today = today();
    json!({
        "case_id": r.case_id.to_string(),
        "peer": r.peer.as_str(),
        "rule": d.name,
        "what": d.what,
        "source": d.source,
        "started": d.started.to_string(),
        "due": d.due.to_string(),
        "met": d.met.map(|m| m.to_string()),
        "overdue": d.overdue(today),
        "days_left": d.met.is_none().then_some(d.due.0 - today.0),
    })
}

fn case_summary(r: &crate::cases::CaseRecord) -> Value {
    let today = today();
    let next_due = r
        .deadlines()
        .iter()
        .filter(|d| d.met.is_none())
        .map(|d| d.due)
        .min()
        .map(|d| d.to_string());
    json!({
        "case_id": r.case_id.to_string(),
        "kind": serde_json::to_value(r.kind).unwrap_or_default(),
        "our_side": serde_json::to_value(r.our_side).unwrap_or_default(),
        "peer": r.peer.as_str(),
        "status": r.status(),
        "opened_at": format_unix(r.opened_at),
        "updated_at": format_unix(r.updated_at.max(r.opened_at)),
        "pending": r.pending(),
        "emergency": r.emergency,
        "reference": r.reference,
        "overdue": r.overdue(today),
        "next_due": next_due,
    })
}

async fn records(s: &ApiState) -> Result<Vec<crate::cases::CaseRecord>, ApiError> {
    let store = Arc::clone(&s.store);
    tokio::task::spawn_blocking(move || store.case_records())
        .await
        .map_err(internal)?
        .map_err(internal)
}

async fn cases(_: Authorized, State(s): State<Arc<ApiState>>) -> Result<Json<Value>, ApiError> {
    let mut list = records(&s).await?;
    list.sort_by_key(|r| std::cmp::Reverse(r.updated_at.max(r.opened_at)));
    Ok(Json(Value::Array(list.iter().map(case_summary).collect())))
}

/// The body of `POST /v1/cases/{id}/export`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportCase {
    /// The bundle file to write (absolute; a new file).
    pub out: PathBuf,
    /// An auditor's card file (absolute): the content is disclosed to that auditor.
    #[serde(default)]
    pub for_auditor: Option<PathBuf>,
}

/// Builds the case's export bundle, logs `bundle-exported` with its hash (and the auditor the
/// content is disclosed to, if any), then writes it to a new file: a disclosure is on record
/// before it exists.
async fn case_export(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Json(b): Json<ExportCase>,
) -> Result<Json<Value>, ApiError> {
    let case = case_id(&id)?;
    let bad = |m: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, m);
    if !b.out.is_absolute() {
        return Err(bad("give the bundle file as an absolute path".into()));
    }
    if b.out.exists() {
        return Err(bad(format!("{} exists already", b.out.display())));
    }
    let auditor = match &b.for_auditor {
        None => None,
        Some(p) if !p.is_absolute() => {
            return Err(bad("give the auditor's card as an absolute path".into()));
        }
        Some(p) => Some(crate::keydir::load_card(p).map_err(|e| bad(format!("{e:#}")))?),
    };
    let store = Arc::clone(&s.store);
    let me = Arc::clone(&s.me);
    let trusted = s.trusted.clone();
    let for_auditor = auditor.clone();
    let built = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let now = rogatory_proto::time::now_unix();
        let bundle = crate::export::bundle(&store, &me, &trusted, &case, now, for_auditor.as_ref())
            .map_err(|e| format!("{e:#}"))?;
        let mut bytes = Vec::new();
        bundle.write_to(&mut bytes).map_err(|e| e.to_string())?;
        let counts = json!({
            "entries": bundle.entries.len(),
            "envelopes": bundle.envelopes.len(),
            "checkpoints": bundle.checkpoints.len(),
            "proofs": bundle.proofs.len(),
            "disclosed": bundle.disclosures.len(),
        });
        Ok((bytes, counts))
    })
    .await
    .map_err(internal)?
    .map_err(bad)?;
    let (bytes, counts) = built;
    let sha256 = Sha256Digest::of(&bytes);
    let (tx, rx) = tokio::sync::oneshot::channel();
    submit(
        &s,
        Job::BundleExported {
            case,
            sha256,
            user,
            auditor: auditor.as_ref().map(|a| a.id().clone()),
            reply: tx,
        },
    )
    .await?;
    rx.await
        .map_err(|_| ApiError::from(crate::engine::Error::Stopping))?
        .map_err(ApiError::from)?;
    let out = b.out.clone();
    let size = bytes.len();
    tokio::task::spawn_blocking(move || crate::files::write_atomic(&out, &bytes, false, false))
        .await
        .map_err(internal)?
        .map_err(|e| bad(format!("{e:#}")))?;
    let mut r = json!({
        "case_id": case.to_string(),
        "out": b.out,
        "bytes": size,
        "sha256": sha256.to_hex(),
        "auditor": auditor.as_ref().map(|a| a.id().to_string()),
    });
    if let (Some(r), Some(c)) = (r.as_object_mut(), counts.as_object()) {
        r.extend(c.clone());
    }
    Ok(Json(r))
}

/// One case; with `?wait=SECS`, answered once none of this side's proposals awaits the
/// requested side's confirmation (or the time is up).
async fn case_one(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    axum::extract::Query(w): axum::extract::Query<Wait>,
) -> Result<Json<Value>, ApiError> {
    let case: CaseId = id
        .parse()
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "give a case id (a UUID)".into()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(w.wait.min(300));
    let r = loop {
        // Listening before reading, so a confirmation in between is not missed.
        let woken = s.watch.anything();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let store = Arc::clone(&s.store);
        let r = tokio::task::spawn_blocking(move || store.case_record(&case))
            .await
            .map_err(internal)?
            .map_err(internal)?
            .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "no such case here".into()))?;
        if r.pending() == 0 || tokio::time::timeout_at(deadline, woken).await.is_err() {
            break r;
        }
    };
    let store = Arc::clone(&s.store);
    let (received, sent) = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        Ok((store.received()?, store.outbox()?))
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    let me = s.me.card.id().clone();
    let mut timeline: Vec<(u64, Value)> = Vec::new();
    for (id, m) in received.iter().filter(|(_, m)| m.case_id == case) {
        timeline.push((
            m.received_at,
            json!({
                "at": format_unix(m.received_at),
                "direction": "received",
                "from": m.from.as_str(),
                "to": me.as_str(),
                "type": m.message_type,
                "envelope_id": hex::encode(id),
                "receipt": "accepted (sent by this node)",
            }),
        ));
    }
    for e in sent.iter().filter(|e| e.case_id == case) {
        let row = outbox_row(e);
        timeline.push((
            e.sealed_at,
            json!({
                "at": format_unix(e.sealed_at),
                "direction": "sent",
                "from": me.as_str(),
                "to": e.to.as_str(),
                "envelope_id": row["envelope_id"],
                "state": row["state"],
                "receipt": row["receipt"],
            }),
        ));
    }
    timeline.sort_by_key(|(t, _)| *t);
    let [updates, pending, refused] = update_rows(&r, &me);
    let mut v = case_summary(&r);
    v["updates"] = updates.into();
    v["pending"] = pending.into();
    v["refused"] = refused.into();
    v["messages"] = Value::Array(timeline.into_iter().map(|(_, v)| v).collect());
    v["deadlines"] = Value::Array(r.deadlines().iter().map(|d| deadline_json(&r, d)).collect());
    Ok(Json(v))
}

/// One item of `POST /v1/evidence/{case}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    /// The manifest entry, as JSON (its `item_id` is given by the node).
    pub item: Value,
    /// For a `send` item: the file in `evidence/staging/` holding its sealed content.
    #[serde(default)]
    pub staged: Option<String>,
    /// For a `send` item: the content key it is sealed under (hex).
    #[serde(default)]
    pub content_key: Option<String>,
}

/// The body of `POST /v1/evidence/{case}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddEvidence {
    /// The items.
    pub items: Vec<AddItem>,
}

fn case_id(id: &str) -> Result<CaseId, ApiError> {
    id.parse()
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, "give a case id (a UUID)".into()))
}

/// Adds evidence items to a case: validated as manifest entries; a `send` item's sealed content
/// is moved from staging into the evidence directory under its content name.
async fn evidence_add(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Json(b): Json<AddEvidence>,
) -> Result<Json<Value>, ApiError> {
    let case = case_id(&id)?;
    let bad = |m: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, m);
    if b.items.is_empty() {
        return Err(bad("no item to add".into()));
    }
    let mut items = Vec::with_capacity(b.items.len());
    for (i, a) in b.items.iter().enumerate() {
        let mut item: rogatory_proto::message::EvidenceItem =
            serde_json::from_value(a.item.clone()).map_err(|e| bad(format!("item {i}: {e}")))?;
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
        .map_err(|e| match e {
            MessageError::Invalid { problems, .. } => bad(format!(
                "these items cannot be added: {}",
                problems
                    .0
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            other => bad(other.to_string()),
        })?;
    let mut new = Vec::with_capacity(b.items.len());
    for (item, a) in manifest.items.into_iter().zip(b.items) {
        let send = item.transfer == Some(rogatory_proto::message::TransferMode::Send);
        let content = match (send, a.staged, a.content_key) {
            (true, Some(staged), Some(key)) => {
                let mut k = [0u8; 32];
                hex::decode_to_slice(&key, &mut k)
                    .map_err(|_| bad("content_key: 64 hex digits".into()))?;
                let key = rogatory_proto::evidence::ContentKey::from_bytes(k);
                let sha = item
                    .sha256
                    .ok_or_else(|| bad("the item's SHA-256 is missing".into()))?;
                let name = crate::evidence::blob_name(&sha, &key);
                let (data, size, n) = (s.data.clone(), item.size, name.clone());
                tokio::task::spawn_blocking(move || {
                    crate::evidence::commit_staged(&data, &staged, &n, size)
                })
                .await
                .map_err(internal)?
                .map_err(|e| bad(format!("{e:#}")))?;
                Some((name, key))
            }
            (true, _, _) => {
                return Err(bad(
                    "a `send` item needs its sealed content (staged) and its content key".into(),
                ));
            }
            (false, None, None) => None,
            (false, _, _) => {
                return Err(bad(
                    "only a `send` item's content is kept: hash-only and out-of-band items carry no content".into(),
                ));
            }
        };
        new.push(crate::engine::NewEvidence { item, content });
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    submit(
        &s,
        Job::EvidenceAdd {
            case,
            items: new,
            user,
            reply: tx,
        },
    )
    .await?;
    let ids = rx
        .await
        .map_err(|_| ApiError::from(crate::engine::Error::Stopping))?
        .map_err(ApiError::from)?;
    Ok(Json(json!({ "case_id": case.to_string(), "items": ids })))
}

/// An evidence record as JSON: never its key.
pub fn evidence_row(r: &crate::evidence::EvidenceRecord) -> Value {
    json!({
        "item_id": r.key(),
        "description": r.item.description,
        "media_type": r.item.media_type,
        "size": r.item.size,
        "sha256": r.item.sha256.map(|d| d.to_hex()),
        "transfer": serde_json::to_value(r.item.transfer).unwrap_or_default(),
        "direction": if r.outgoing { "outgoing" } else { "incoming" },
        "state": r.state.as_str(),
        "peer": r.peer.as_ref().map(|p| p.as_str()),
        "manifest": r.manifest.map(|m| m.to_hex()),
        "held_here": r.blob.is_some(),
        "chunks": rogatory_proto::evidence::chunks(r.item.size),
        "chunks_done": r.chunks_done,
        "problem": r.problem,
        "added_at": format_unix(r.added_at),
        "added_by": r.added_by,
        "acquisition": serde_json::to_value(&r.item.acquisition).unwrap_or_default(),
        "custody": serde_json::to_value(&r.item.custody).unwrap_or_default(),
        // The partner's reports that extended the chain, with this node's time of receipt.
        "custody_reports": r.reports.iter().map(|p| json!({
            "first": p.first,
            "count": p.count,
            "by": p.by.as_str(),
            "recorded_at": format_unix(p.recorded_at),
            "envelope_id": p.envelope.to_hex(),
        })).collect::<Vec<_>>(),
        "perceptual_hashes": serde_json::to_value(&r.item.perceptual_hashes).unwrap_or_default(),
    })
}

/// `GET /v1/evidence/{case}?wait=SECS&done=N`.
#[derive(Debug, serde::Deserialize)]
pub struct EvidenceWait {
    /// Seconds to wait (at most 300) until no item is still expected, or until `done` chunks of
    /// the case's incoming items are durable.
    #[serde(default)]
    pub wait: u64,
    /// Answer once at least this many chunks have arrived (all items together).
    #[serde(default)]
    pub done: Option<u64>,
}

/// A case's evidence items; with `?wait=`, once the transfers are over (or `done` chunks in).
async fn evidence_list(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    axum::extract::Query(w): axum::extract::Query<EvidenceWait>,
) -> Result<Json<Value>, ApiError> {
    let case = case_id(&id)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(w.wait.min(300));
    let list = loop {
        // Listening before reading, so an arrival in between is not missed.
        let woken = s.watch.anything();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let list = case_evidence(&s, case).await?;
        let incoming = list.iter().filter(|r| !r.outgoing);
        let reached = match w.done {
            Some(n) => incoming.map(|r| r.chunks_done).sum::<u64>() >= n,
            None => !incoming
                .clone()
                .any(|r| r.state == crate::evidence::EvidenceState::Expected),
        };
        if reached || tokio::time::timeout_at(deadline, woken).await.is_err() {
            break list;
        }
    };
    Ok(Json(Value::Array(list.iter().map(evidence_row).collect())))
}

/// A case's evidence records, read off the async threads.
async fn case_evidence(
    s: &ApiState,
    case: CaseId,
) -> Result<Vec<crate::evidence::EvidenceRecord>, ApiError> {
    let store = Arc::clone(&s.store);
    tokio::task::spawn_blocking(move || store.evidence(&case))
        .await
        .map_err(internal)?
        .map_err(internal)
}

/// Finds a case's evidence item by its record key (`E1`, `XB.DOJ-CA/E1`), or by an item id
/// that names one item only.
async fn evidence_item(
    s: &ApiState,
    case: CaseId,
    item: &str,
) -> Result<crate::evidence::EvidenceRecord, ApiError> {
    let list = case_evidence(s, case).await?;
    let mut by_id = list.iter().filter(|r| r.item.item_id == item);
    if let Some(r) = list.iter().find(|r| r.key() == item) {
        return Ok(r.clone());
    }
    match (by_id.next(), by_id.next()) {
        (Some(r), None) => Ok(r.clone()),
        (Some(_), Some(_)) => Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("several items are called {item}: give PARTNER/{item}"),
        )),
        _ => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no evidence item {item} in case {case}"),
        )),
    }
}

/// Reads a held item's content through its key: checks every chunk and the SHA-256, and writes
/// the plaintext to `out` if given.
async fn read_item(
    s: &ApiState,
    r: &crate::evidence::EvidenceRecord,
    out: Option<PathBuf>,
) -> Result<(), String> {
    let blob = r
        .blob
        .clone()
        .ok_or("its content is not held on this node")?;
    let wrapped = r.wrapped_key.clone().ok_or("no content key on record")?;
    let context = crate::evidence::key_context(&r.case_id, &r.key());
    let key = rogatory_proto::evidence::unwrap_key(&s.me.keys.storage_key(), &context, &wrapped)
        .ok_or("the content key does not unwrap with this node's storage key")?;
    let (data, size, want) = (s.data.clone(), r.item.size, r.item.sha256);
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        let mut file = match &out {
            Some(p) => Some(
                crate::files::create_new(p, true)
                    .map_err(|e| format!("cannot create {}: {e}", p.display()))?,
            ),
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
        .map_err(|e| format!("{e:#}"))
        .and_then(|sha| {
            if Some(sha) == want {
                Ok(())
            } else {
                Err(format!(
                    "the stored content's SHA-256 is {}, not the manifest's",
                    sha.to_hex()
                ))
            }
        })
        .and_then(|()| match &file {
            Some(f) => f
                .sync_all()
                .map_err(|e| format!("cannot sync the export: {e}")),
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
    .map_err(|e| e.to_string())?
}

/// The body of `POST /v1/evidence/{case}/export`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportEvidence {
    /// The item.
    pub item: String,
    /// Where to write the content (a new file).
    pub out: PathBuf,
}

/// Writes a verified item's content, decrypted, to a new file; logged first as
/// `evidence-exported` with the local user.
async fn evidence_export(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Json(b): Json<ExportEvidence>,
) -> Result<Json<Value>, ApiError> {
    let case = case_id(&id)?;
    let bad = |m: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, m);
    let r = evidence_item(&s, case, &b.item).await?;
    let exportable =
        r.blob.is_some() && (r.outgoing || r.state == crate::evidence::EvidenceState::Verified);
    if !exportable {
        return Err(bad(format!(
            "item {} is {}: only content that arrived and matched its manifest's SHA-256 (verified) can be exported",
            r.key(),
            r.state.as_str()
        )));
    }
    if !b.out.is_absolute() {
        return Err(bad("give the output file as an absolute path".into()));
    }
    if b.out.exists() {
        return Err(bad(format!("{} exists already", b.out.display())));
    }
    let logged = |written| {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Job::EvidenceExported {
            case,
            key: r.key(),
            user: user.clone(),
            written,
            reply: tx,
        };
        (job, rx)
    };
    let (job, rx) = logged(false);
    submit(&s, job).await?;
    rx.await
        .map_err(|_| ApiError::from(crate::engine::Error::Stopping))?
        .map_err(ApiError::from)?;
    read_item(&s, &r, Some(b.out.clone())).await.map_err(bad)?;
    let (job, rx) = logged(true);
    submit(&s, job).await?;
    rx.await
        .map_err(|_| ApiError::from(crate::engine::Error::Stopping))?
        .map_err(ApiError::from)?;
    Ok(Json(json!({
        "case_id": case.to_string(),
        "item_id": r.key(),
        "out": b.out,
        "size": r.item.size,
        "sha256": r.item.sha256.map(|d| d.to_hex()),
    })))
}

/// The body of `POST /v1/evidence/{case}/verify`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyEvidence {
    /// One item (default: every item whose content is held here).
    #[serde(default)]
    pub item: Option<String>,
}

/// Re-reads the held content of a case's items and checks it against the manifest.
async fn evidence_verify(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Json(b): Json<VerifyEvidence>,
) -> Result<Json<Value>, ApiError> {
    let case = case_id(&id)?;
    let items = match &b.item {
        Some(i) => vec![evidence_item(&s, case, i).await?],
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
        out.push(json!({
            "item_id": r.key(),
            "size": r.item.size,
            "sha256": r.item.sha256.map(|d| d.to_hex()),
            "ok": result.is_ok(),
            "problem": result.err(),
        }));
    }
    Ok(Json(Value::Array(out)))
}

/// The body of `POST /v1/evidence/{case}/send`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendEvidence {
    /// The partner.
    pub to: String,
}

/// Sends the manifest of a case's staged items to a partner.
async fn evidence_send(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Json(b): Json<SendEvidence>,
) -> Result<Json<Value>, ApiError> {
    let case = case_id(&id)?;
    let bad = |m: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, m);
    let to = AgencyId::new(&b.to).map_err(|e| bad(format!("{:?}: {e}", b.to)))?;
    if !s.trusted.iter().any(|c| c.id() == &to) {
        return Err(bad(format!(
            "{to} is not a pinned partner: pin its card first (rogatory peer add)"
        )));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    submit(
        &s,
        Job::EvidenceSend {
            case,
            to,
            user,
            reply: tx,
        },
    )
    .await?;
    let (queued, items) = rx
        .await
        .map_err(|_| ApiError::from(crate::engine::Error::Stopping))?
        .map_err(ApiError::from)?;
    Ok(Json(json!({
        "case_id": case.to_string(),
        "queued": queued,
        "items": items,
    })))
}

/// One update of a case, for `case show`: `key` is `status` or `stage`, `name` its value.
fn update_row<U: serde::Serialize>(
    r: &crate::cases::CaseRecord,
    me: &AgencyId,
    e: &Entry<U, crate::cases::UpdateMeta>,
    (key, name): (&str, Option<&'static str>),
) -> Value {
    let who = if e.side == r.our_side {
        me.as_str().to_string()
    } else {
        r.peer.to_string()
    };
    let mut v = json!({
        "at": format_unix(e.meta.at),
        "by": who,
        "side": serde_json::to_value(e.side).unwrap_or_default(),
        "message_id": e.message.to_string(),
        "envelope_id": e.meta.envelope_id.to_hex(),
        "update": serde_json::to_value(&e.update).unwrap_or_default(),
    });
    v[key] = name.into();
    v
}

/// Rows for one replica: its history, pending proposals and refused proposals.
fn replica_rows<M: rogatory_proto::case::order::Machine>(
    r: &crate::cases::CaseRecord,
    me: &AgencyId,
    replica: &rogatory_proto::case::order::Replica<M, crate::cases::UpdateMeta>,
    what: impl Fn(&M::Update) -> (&'static str, Option<&'static str>),
    rows: &mut [Vec<Value>; 3],
) where
    M::Update: serde::Serialize,
{
    let row =
        |e: &Entry<M::Update, crate::cases::UpdateMeta>| update_row(r, me, e, what(&e.update));
    rows[0].extend(replica.history.iter().map(row));
    rows[1].extend(replica.pending.iter().map(row));
    rows[2].extend(replica.refused.iter().map(|f| {
        let mut v = row(&f.entry);
        v["reason"] = f.reason.clone().into();
        v
    }));
}

/// A case's updates (in the order both sides agree on), this side's proposals awaiting the
/// requested side, and the proposals the requested side refused.
fn update_rows(r: &crate::cases::CaseRecord, me: &AgencyId) -> [Vec<Value>; 3] {
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

/// `?within=DAYS`.
#[derive(Debug, serde::Deserialize)]
pub struct Within {
    /// Days ahead (default 7).
    #[serde(default = "seven")]
    pub within: i64,
}

fn seven() -> i64 {
    7
}

/// An alert as JSON.
pub fn alert_json(n: u64, a: &crate::store::Alert) -> Value {
    json!({
        "number": n,
        "at": format_unix(a.at),
        "peer": a.peer.as_str(),
        "case_id": a.case_id.to_string(),
        "kind": a.kind,
        "detail": a.detail,
        "envelope_id": a.envelope_id.map(|e| e.to_hex()),
    })
}

/// Every alert raised on this node (spec/PROTOCOL.md §6.6), oldest first.
async fn alerts(_: Authorized, State(s): State<Arc<ApiState>>) -> Result<Json<Value>, ApiError> {
    let store = Arc::clone(&s.store);
    let list = tokio::task::spawn_blocking(move || store.alerts())
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(Json(Value::Array(
        list.iter().map(|(n, a)| alert_json(*n, a)).collect(),
    )))
}

async fn deadlines(
    _: Authorized,
    State(s): State<Arc<ApiState>>,
    axum::extract::Query(w): axum::extract::Query<Within>,
) -> Result<Json<Value>, ApiError> {
    let today = today();
    let mut out: Vec<(rogatory_proto::case::Day, Value)> = Vec::new();
    for r in records(&s).await? {
        for d in r.deadlines() {
            if d.due_within(today, w.within) {
                out.push((d.due, deadline_json(&r, &d)));
            }
        }
    }
    out.sort_by_key(|(d, _)| *d);
    Ok(Json(Value::Array(
        out.into_iter().map(|(_, v)| v).collect(),
    )))
}

/// The body of `POST /v1/cases`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    /// `mla`, `extradition`, `liaison` or `preservation`.
    pub kind: String,
    /// The partner agency.
    pub to: String,
    /// This agency's own reference.
    #[serde(default)]
    pub reference: Option<String>,
}

async fn new_case(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    Json(b): Json<NewCase>,
) -> Result<Json<Value>, ApiError> {
    let bad = |m: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, m);
    let kind: crate::cases::CaseKind = serde_json::from_value(Value::from(b.kind.as_str()))
        .map_err(|_| {
            bad(format!(
                "kind {:?}: mla, extradition, liaison or preservation",
                b.kind
            ))
        })?;
    let peer = AgencyId::new(&b.to).map_err(|e| bad(format!("{:?}: {e}", b.to)))?;
    if !s.trusted.iter().any(|c| c.id() == &peer) {
        return Err(bad(format!(
            "{peer} is not a pinned partner: pin its card first (rogatory peer add)"
        )));
    }
    let mut record = crate::cases::CaseRecord::new(
        CaseId::generate(),
        kind,
        rogatory_proto::case::Side::Requesting,
        peer,
        rogatory_proto::time::now_unix(),
    );
    record.reference = b.reference.filter(|r| !r.trim().is_empty());
    let (tx, rx) = tokio::sync::oneshot::channel();
    submit(
        &s,
        Job::NewCase {
            record: Box::new(record.clone()),
            user,
            reply: tx,
        },
    )
    .await?;
    rx.await
        .map_err(|_| ApiError::from(crate::engine::Error::Stopping))?
        .map_err(ApiError::from)?;
    Ok(Json(case_summary(&record)))
}

/// The body of `POST /v1/messages/{id}/forward`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    /// The partners to pass it on to.
    pub to: Vec<String>,
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

async fn forward(
    Authorized(user): Authorized,
    State(s): State<Arc<ApiState>>,
    UrlPath(id): UrlPath<String>,
    Json(b): Json<Forward>,
) -> Result<Json<Value>, ApiError> {
    let bad = |m: String| ApiError(StatusCode::UNPROCESSABLE_ENTITY, m);
    let st = Arc::clone(&s);
    let found = tokio::task::spawn_blocking(move || find(&st.store, &id))
        .await
        .map_err(internal)??;
    let Some((id, true)) = found else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "no such received message (only messages received here can be passed on)".into(),
        ));
    };
    let mut to = Vec::new();
    for t in &b.to {
        let a = AgencyId::new(t).map_err(|e| bad(format!("{t:?}: {e}")))?;
        if !s.trusted.iter().any(|c| c.id() == &a) {
            return Err(bad(format!("{a} is not a pinned partner")));
        }
        to.push(a);
    }
    if to.is_empty() {
        return Err(bad("no addressee".into()));
    }
    let st = Arc::clone(&s);
    let opened = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let bytes = st
            .store
            .inbox_envelope(&id)
            .map_err(internal)?
            .ok_or_else(|| internal("the envelope is missing from the inbox"))?;
        envelope::open(
            &bytes,
            &Recipient {
                card: &st.me.card,
                keys: &st.me.keys,
            },
            &st.trusted,
            &st.limits,
        )
        .map_err(|e| internal(format!("a stored envelope no longer opens: {e}")))
    })
    .await
    .map_err(internal)??;
    if no_onward_sharing(&opened.message) {
        for a in &to {
            let (tx, rx) = tokio::sync::oneshot::channel();
            submit(
                &s,
                Job::Refused {
                    case: opened.case_id,
                    envelope: Sha256Digest(id),
                    to: a.clone(),
                    user: user.clone(),
                    reason: rogatory_proto::receipt::ReasonCode::HandlingViolation,
                    reply: tx,
                },
            )
            .await?;
            rx.await
                .map_err(|_| ApiError::from(crate::engine::Error::Stopping))?
                .map_err(ApiError::from)?;
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
    let (tx, rx) = tokio::sync::oneshot::channel();
    submit(
        &s,
        Job::Send {
            request: Box::new(SendRequest {
                to,
                case: opened.case_id,
                message: opened.message,
                user,
                confirmation: false,
            }),
            reply: tx,
        },
    )
    .await?;
    let queued = rx
        .await
        .map_err(|_| ApiError::from(crate::engine::Error::Stopping))?
        .map_err(ApiError::from)?;
    Ok(Json(json!({
        "case_id": opened.case_id.to_string(),
        "forwarded": hex::encode(id),
        "queued": queued,
    })))
}
