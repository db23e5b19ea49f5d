//! Where and how the local API is served: a Unix-domain socket in the data directory (the
//! command line's transport: only the node's own operating-system user can connect, which the
//! server checks by the peer's credentials and the client by the socket's owner and the
//! directory's mode) and a TCP socket on loopback (for other local clients, which check the
//! node with [`proof`] before they send the token).
//!
//! Each listener holds at most [`MAX_CONNECTIONS`] connections; beyond them new ones wait in the
//! kernel's backlog, costing the node no descriptor, and the connection held longest is asked to
//! close after its next answer, which says `Connection: close` (every [`YIELD_AFTER`] another
//! one), so that clients that keep their connections open cannot keep a newcomer out. A connection that does not send a whole
//! request head within [`HEADER_TIMEOUT`] (including an idle one between requests) is closed; a
//! body must arrive within [`BODY_TIMEOUT`] and within the route's size ([`body_limit`]); at most
//! [`HEAVY_AT_ONCE`] bodies larger than [`SMALL_BODY`] are handled at a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{KeyInit, Mac};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Notify, Semaphore, watch};

use super::ApiError;

/// File name of the API's Unix socket in the data directory.
pub const SOCKET_FILE: &str = "api.sock";
/// Connections one listener holds at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send a whole request head (also the longest idle time between two
/// requests on one connection).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The body limit of most routes.
pub const SMALL_BODY: usize = 64 * 1024;
/// The body limit of the routes that take a message or evidence items.
pub const LARGE_BODY: usize = 2 * 1024 * 1024;
/// Bodies larger than [`SMALL_BODY`] handled at once (parsed JSON takes many times its size).
pub const HEAVY_AT_ONCE: usize = 4;
/// Bytes of a refused body read and thrown away so that the client, still sending, reads the
/// refusal instead of a reset connection (beyond them the connection is simply closed).
pub const DISCARD_AT_MOST: u64 = 64 * 1024 * 1024;
/// How long a stopping node waits for requests in progress.
const DRAIN: Duration = Duration::from_secs(5);
/// With every slot taken, how long a new connection waits for the connection asked to close
/// before the next one is asked too.
pub const YIELD_AFTER: Duration = Duration::from_millis(250);

/// The body limit of a route: messages and evidence items may be large, nothing else is.
pub fn body_limit(method: &axum::http::Method, path: &str) -> usize {
    let evidence_add = path.starts_with("/v1/evidence/") && path.matches('/').count() == 3;
    if method == axum::http::Method::POST
        && (path == "/v1/send" || path == "/v1/send/batch" || evidence_add)
    {
        LARGE_BODY
    } else {
        SMALL_BODY
    }
}

/// The context a proof is computed in.
const PROOF_CONTEXT: &[u8] = b"rogatory/api-proof/v1\0";

/// The node's answer to a client's challenge: HMAC-SHA256, keyed with the SHA-256 of the API
/// token, of a fixed context and the client's nonce. Only a process that can read the token
/// (the node, or its own user) can give it, so a server left on a stale `api.addr` cannot.
pub fn proof(token_hash: &[u8; 32], nonce: &[u8]) -> [u8; 32] {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(token_hash)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(PROOF_CONTEXT);
    mac.update(nonce);
    mac.finalize().into_bytes().into()
}

/// Reads a request's body within the route's limit and [`BODY_TIMEOUT`], and hands the request
/// on with the body in memory; large bodies wait for one of [`HEAVY_AT_ONCE`] places.
pub async fn bounded_body(heavy: Arc<Semaphore>, req: Request, next: Next) -> Response {
    let limit = body_limit(req.method(), req.uri().path());
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than this route takes ({limit} bytes)"),
        )
        .into_response()
    };
    if declared.is_some_and(|n| n > limit as u64) {
        if declared.is_some_and(|n| n <= DISCARD_AT_MOST) {
            discard(req.into_body()).await;
        }
        return too_large();
    }
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return too_large(),
        Err(_) => {
            tracing::warn!(path = %parts.uri.path(), "API: a request body did not arrive in time");
            return ApiError(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {BODY_TIMEOUT:?}"),
            )
            .into_response();
        }
    };
    let _permit = if bytes.len() > SMALL_BODY {
        match heavy.acquire_owned().await {
            Ok(p) => Some(p),
            Err(_) => {
                return ApiError(StatusCode::SERVICE_UNAVAILABLE, "stopping".into())
                    .into_response();
            }
        }
    } else {
        None
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Reads and throws away what is left of a refused body, within [`DISCARD_AT_MOST`] bytes and
/// [`BODY_TIMEOUT`]; nothing of it is kept.
async fn discard(body: Body) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut seen = 0u64;
    let _ = tokio::time::timeout(BODY_TIMEOUT, async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > DISCARD_AT_MOST {
                    break;
                }
            }
        }
    })
    .await;
}

/// The listeners of one node's API.
pub struct Listeners {
    /// The TCP listener on loopback.
    pub tcp: tokio::net::TcpListener,
    /// The Unix socket in the data directory.
    pub unix: tokio::net::UnixListener,
    /// The socket's path (removed when the node stops).
    pub socket: PathBuf,
}

/// Binds the TCP listener to `bind` and the Unix socket in `dir` (a socket left by a node that
/// did not stop cleanly is replaced: the store's lock says no other node runs from `dir`).
pub async fn bind(dir: &Path, bind: std::net::SocketAddr) -> Result<Listeners> {
    let tcp = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot bind the local API to {bind} (is the port in use?)"))?;
    let socket = dir.join(SOCKET_FILE);
    match std::fs::symlink_metadata(&socket) {
        Ok(m) => {
            use std::os::unix::fs::FileTypeExt;
            if !m.file_type().is_socket() {
                anyhow::bail!(
                    "{} exists and is not a socket; remove it if it is not yours",
                    socket.display()
                );
            }
            std::fs::remove_file(&socket)
                .with_context(|| format!("cannot remove the stale {}", socket.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot look at {}", socket.display())),
    }
    let unix = tokio::net::UnixListener::bind(&socket)
        .with_context(|| format!("cannot bind the local API to {}", socket.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", socket.display()))?;
    }
    Ok(Listeners { tcp, unix, socket })
}

/// One accepted connection, whatever the listener.
trait Accept: Send + 'static {
    type Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl std::future::Future<Output = std::io::Result<Self::Stream>> + Send;
    /// Whether the peer may talk to the API at all.
    fn admit(&self, stream: &Self::Stream) -> bool;
    fn name(&self) -> &'static str;
}

impl Accept for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept(&self) -> std::io::Result<Self::Stream> {
        tokio::net::TcpListener::accept(self).await.map(|(s, _)| s)
    }
    fn admit(&self, _: &Self::Stream) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "tcp"
    }
}

impl Accept for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept(&self) -> std::io::Result<Self::Stream> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
    /// Only this node's own user (the socket is 0600 in a 0700 directory; this is the check
    /// that does not depend on modes).
    fn admit(&self, stream: &Self::Stream) -> bool {
        let me = rustix::process::geteuid().as_raw();
        match stream.peer_cred() {
            Ok(c) if c.uid() == me => true,
            Ok(c) => {
                tracing::warn!(uid = c.uid(), "API: refused a connection from another user");
                false
            }
            Err(e) => {
                tracing::warn!("API: cannot read a connection's credentials: {e}");
                false
            }
        }
    }
    fn name(&self) -> &'static str {
        "unix"
    }
}

/// Serves `app` on both listeners until `stop` turns true; then takes no more connections and
/// gives those in progress a few seconds to finish.
pub async fn serve(listeners: Listeners, app: axum::Router, stop: watch::Receiver<bool>) {
    let Listeners { tcp, unix, socket } = listeners;
    let a = tokio::spawn(serve_one(tcp, app.clone(), stop.clone()));
    let b = tokio::spawn(serve_one(unix, app, stop));
    let _ = a.await;
    let _ = b.await;
    let _ = std::fs::remove_file(socket);
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn serve_one<L: Accept>(listener: L, app: axum::Router, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Asked of the connection held longest when every slot is taken: close after the next
    // answer. A client that keeps its connection open (the command line does) reconnects behind
    // the one waiting, so a newcomer waits for one request, not for a busy client to finish.
    let yield_slot = Arc::new(Notify::new());
    let service = TowerToHyperService::new(app);
    loop {
        // Beyond the cap, connections wait in the kernel's backlog: the listener accepts one
        // more only once this one has a slot.
        let stream = tokio::select! {
            r = listener.accept() => r,
            _ = stopped(&mut stop) => break,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, say: keep the listener, try again shortly.
                tracing::warn!(
                    listener = listener.name(),
                    "API: cannot accept a connection: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !listener.admit(&stream) {
            continue;
        }
        let permit = loop {
            if let Ok(p) = Arc::clone(&slots).try_acquire_owned() {
                break Some(p);
            }
            yield_slot.notify_one();
            tokio::select! {
                p = Arc::clone(&slots).acquire_owned() => break p.ok(),
                // The connection asked may be in a long request: ask the next one.
                () = tokio::time::sleep(YIELD_AFTER) => {}
                _ = stopped(&mut stop) => break None,
            }
        };
        let Some(permit) = permit else { break };
        // Once asked to yield its slot, the connection's next answer says `Connection: close`:
        // it closes after that answer, and the client, told so, does not send on it again.
        let closing = Arc::new(AtomicBool::new(false));
        let service = {
            let (inner, closing) = (service.clone(), Arc::clone(&closing));
            hyper::service::service_fn(move |req| {
                let (inner, closing) = (inner.clone(), Arc::clone(&closing));
                async move {
                    let mut resp = hyper::service::Service::call(&inner, req).await?;
                    if closing.load(Ordering::Relaxed) {
                        resp.headers_mut().insert(
                            axum::http::header::CONNECTION,
                            axum::http::HeaderValue::from_static("close"),
                        );
                    }
                    Ok::<_, std::convert::Infallible>(resp)
                }
            })
        };
        let mut stop = stop.clone();
        let yield_slot = Arc::clone(&yield_slot);
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(64 * 1024);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!("API connection: {e}");
                    }
                }
                () = yield_slot.notified() => {
                    // Closed after its next answer (or, idle, at the header timeout).
                    closing.store(true, Ordering::Relaxed);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stopped(&mut stop) => {
                            let _ = tokio::time::timeout(DRAIN, conn).await;
                        }
                    }
                }
                _ = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN, conn).await;
                }
            }
        });
    }
    // Connections in progress get their time to finish.
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(MAX_CONNECTIONS as u32)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_that_carry_messages_take_large_bodies_and_no_other() {
        use axum::http::Method;
        assert_eq!(body_limit(&Method::POST, "/v1/send"), LARGE_BODY);
        assert_eq!(body_limit(&Method::POST, "/v1/send/batch"), LARGE_BODY);
        assert_eq!(body_limit(&Method::POST, "/v1/evidence/x"), LARGE_BODY);
        assert_eq!(body_limit(&Method::POST, "/v1/evidence/x/send"), SMALL_BODY);
        assert_eq!(body_limit(&Method::POST, "/v1/cases"), SMALL_BODY);
        assert_eq!(body_limit(&Method::GET, "/v1/send"), SMALL_BODY);
        let a = proof(&[1; 32], b"nonce");
        assert_eq!(a, proof(&[1; 32], b"nonce"));
        assert_ne!(a, proof(&[2; 32], b"nonce"));
        assert_ne!(a, proof(&[1; 32], b"other"));
    }
}
