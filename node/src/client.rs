//! The local API's client: what the command line's online commands use to talk to the running
//! node of a data directory (see [`crate::api`]).
//!
//! It talks over the node's Unix socket (`api.sock` in the data directory), and only after
//! checking that the directory is its own user's and closed to others, that the socket is its
//! user's, and that the process at the other end runs as its user: a server left by someone else
//! on a stale address never receives the token or a message. [`Client::connect_tcp`] talks over
//! the loopback address in `api.addr` instead, and first has the node prove that it holds the
//! token (`GET /v1/proof`), before it sends the token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The longest a request may take: the API's longest wait (`?wait=` is at most 300 s), and some.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(330);
/// Largest answer read from the node.
const MAX_ANSWER: usize = 256 * 1024 * 1024;

/// The node answered with an error status: whose fault it was (the status) and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiFailure {
    /// The HTTP status.
    pub status: u16,
    /// The node's message.
    pub message: String,
}

/// No node runs from the data directory (nothing answers on its socket).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NotRunning(pub String);

/// A connection to a running node's local API. It keeps its connection open between
/// requests (the node closes an idle one after 10 s; a new one is made then).
pub struct Client {
    transport: Transport,
    token: String,
    dir: PathBuf,
    user: String,
    runtime: tokio::runtime::Runtime,
    /// The connection kept from the last request, and when that request ended.
    open: std::sync::Mutex<Option<(Sender, std::time::Instant)>>,
}

/// A kept connection idle longer than this is not used again: the node closes connections idle
/// for [`crate::api::listen::HEADER_TIMEOUT`], and a request sent as it does would be lost.
const KEEP_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

enum Transport {
    Unix(PathBuf),
    Tcp(String),
}

/// The local user's name, recorded in the audit entries of what they send and read:
/// `ROGATORY_USER`, else the login name.
pub fn local_user() -> String {
    ["ROGATORY_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// Refuses a data directory this user does not own, or that others may enter: the socket and
/// the token in it are trusted only there.
fn check_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("no data directory at {}", dir.display()))?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        bail!(
            "{} belongs to another user (uid {}); the node's API is trusted only in a data directory of your own",
            dir.display(),
            meta.uid()
        );
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is open to other users (mode {mode:o}); run `chmod 700 {}`",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the client's runtime")
}

/// The environment variable naming the file of an official's own token (spec/PEOPLE.md §2).
pub const TOKEN_FILE_ENV: &str = "ROGATORY_TOKEN_FILE";

/// The caller's token: the official's own (`ROGATORY_TOKEN_FILE`), else the node's.
fn read_token(dir: &Path) -> Result<String> {
    let path = match std::env::var_os(TOKEN_FILE_ENV).filter(|v| !v.is_empty()) {
        Some(own) => PathBuf::from(own),
        None => dir.join(crate::api::TOKEN_FILE),
    };
    crate::files::check_private(&path)?;
    let token = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the API token {}", path.display()))?;
    Ok(token.trim().to_string())
}

impl Client {
    /// The API of the node running from `dir`, over its Unix socket; an error if it is not
    /// running, or if the directory or the socket is not this user's own.
    pub fn connect(dir: &Path) -> Result<Self> {
        check_private_dir(dir)?;
        let socket = dir.join(crate::api::listen::SOCKET_FILE);
        let not_running = || {
            anyhow::Error::new(NotRunning(format!(
                "the node in {} is not running (start it with `rogatory run`)",
                dir.display()
            )))
        };
        let meta = std::fs::symlink_metadata(&socket).map_err(|_| not_running())?;
        {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            if !meta.file_type().is_socket() {
                bail!("{} is not a socket", socket.display());
            }
            if meta.uid() != rustix::process::geteuid().as_raw() {
                bail!(
                    "{} belongs to another user (uid {}); refusing to talk to it",
                    socket.display(),
                    meta.uid()
                );
            }
        }
        Ok(Self {
            transport: Transport::Unix(socket),
            token: read_token(dir)?,
            dir: dir.to_path_buf(),
            user: local_user(),
            runtime: runtime()?,
            open: std::sync::Mutex::new(None),
        })
    }

    /// The API of the node running from `dir`, over the loopback address in `api.addr`, once
    /// the node has proved it holds the token (a fresh nonce, `GET /v1/proof`): a server on a
    /// stale address gets a nonce, never the token.
    pub fn connect_tcp(dir: &Path) -> Result<Self> {
        check_private_dir(dir)?;
        let (addr, token) = crate::api::locate(dir)?;
        let client = Self {
            transport: Transport::Tcp(addr),
            token,
            dir: dir.to_path_buf(),
            user: local_user(),
            runtime: runtime()?,
            open: std::sync::Mutex::new(None),
        };
        let mut nonce = [0u8; 32];
        rogatory_proto::keys::fill_random(&mut nonce);
        let (status, body) = client.request(
            "GET",
            &format!("/v1/proof?nonce={}", hex::encode(nonce)),
            None,
            false,
        )?;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let want = crate::api::listen::proof(
            &rogatory_proto::ids::Sha256Digest::of(client.token.as_bytes()).0,
            &nonce,
        );
        let given = v["proof"].as_str().and_then(|p| hex::decode(p).ok());
        if !status.is_success() || given.as_deref() != Some(&want[..]) {
            bail!(
                "the server at {} is not the node of {} (it cannot prove it holds the node's token); nothing was sent to it",
                client.base(),
                dir.display()
            );
        }
        Ok(client)
    }

    /// Names the local user differently from the environment's.
    pub fn as_user(mut self, user: &str) -> Self {
        self.user = user.to_string();
        self
    }

    fn base(&self) -> String {
        match &self.transport {
            Transport::Unix(p) => p.display().to_string(),
            Transport::Tcp(a) => format!("http://{a}"),
        }
    }

    /// One request; `authorized` adds the token and the user. Returns the status and the body.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        authorized: bool,
    ) -> Result<(hyper::StatusCode, Bytes)> {
        let bytes = Bytes::from(body.unwrap_or_default());
        let make = || {
            let mut req = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, "localhost")
                .header(hyper::header::CONTENT_TYPE, "application/json");
            if authorized {
                req = req
                    .header(
                        hyper::header::AUTHORIZATION,
                        format!("Bearer {}", self.token),
                    )
                    .header(crate::api::USER_HEADER, &self.user);
            }
            req.body(Full::new(bytes.clone()))
                .context("cannot build the request")
        };
        let req = make()?;
        let not_running = |e: &std::io::Error| {
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            )
        };
        let kept = self
            .open
            .lock()
            .ok()
            .and_then(|mut o| o.take())
            .filter(|(_, at)| at.elapsed() < KEEP_IDLE)
            .map(|(sender, _)| sender);
        let exchange = async {
            // The connection kept from the last request, if the node has not closed it; a
            // request it did not take is sent again on a new one, and so is a GET on a
            // connection that closed before any answer began (reading twice changes nothing).
            let req = match kept {
                Some(mut sender) => {
                    if sender.ready().await.is_ok() {
                        match sender.try_send_request(req).await {
                            Ok(resp) => return self.answer(sender, resp).await,
                            Err(mut e) => match e.take_message() {
                                Some(req) => req,
                                None => {
                                    let e = e.into_error();
                                    if method != "GET" || !e.is_incomplete_message() {
                                        return Err(e.into());
                                    }
                                    make()?
                                }
                            },
                        }
                    } else {
                        req
                    }
                }
                None => req,
            };
            let mut sender = match &self.transport {
                Transport::Unix(p) => {
                    let s = tokio::net::UnixStream::connect(p).await?;
                    let cred = s.peer_cred()?;
                    if cred.uid() != rustix::process::geteuid().as_raw() {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::PermissionDenied,
                            format!(
                                "the process at {} runs as another user (uid {})",
                                p.display(),
                                cred.uid()
                            ),
                        )
                        .into());
                    }
                    handshake(s).await?
                }
                Transport::Tcp(a) => handshake(tokio::net::TcpStream::connect(a).await?).await?,
            };
            let resp = sender.send_request(req).await?;
            self.answer(sender, resp).await
        };
        match self
            .runtime
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, exchange).await })
        {
            Err(_) => bail!(
                "the node at {} did not answer within {REQUEST_TIMEOUT:?}",
                self.base()
            ),
            Ok(Err(e)) => {
                if let Some(io) = e.downcast_ref::<std::io::Error>()
                    && not_running(io)
                {
                    return Err(NotRunning(format!(
                        "the node in {} is not running (nothing answers at {}; start it with `rogatory run`)",
                        self.dir.display(),
                        self.base()
                    ))
                    .into());
                }
                Err(e).with_context(|| format!("cannot reach the node at {}", self.base()))
            }
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// Reads an answer whole (bounded), and keeps the connection for the next request.
    async fn answer(
        &self,
        sender: Sender,
        resp: hyper::Response<hyper::body::Incoming>,
    ) -> Result<(hyper::StatusCode, Bytes)> {
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the answer: {e}"))?
            .to_bytes();
        if let Ok(mut o) = self.open.lock() {
            *o = Some((sender, std::time::Instant::now()));
        }
        Ok((status, body))
    }

    /// One authorized request; its answer as `T`, or an [`ApiFailure`].
    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let (status, body) = self.request(method, path, body, true)?;
        if !status.is_success() {
            let message = serde_json::from_slice::<crate::api::wire::ErrorBody>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| format!("the node answered {status}"));
            return Err(ApiFailure {
                status: status.as_u16(),
                message,
            }
            .into());
        }
        serde_json::from_slice(&body).with_context(|| {
            format!("the node answered {method} {path} with a body this client does not read")
        })
    }

    /// `GET path`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call("GET", path, None)
    }

    /// `GET path`, whose answer is text (`/metrics`).
    pub fn get_text(&self, path: &str) -> Result<String> {
        let (status, body) = self.request("GET", path, None, true)?;
        if !status.is_success() {
            bail!("the node answered GET {path} with {status}");
        }
        String::from_utf8(body.to_vec()).context("the answer is not UTF-8 text")
    }

    /// `POST path` with a JSON body.
    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.call("POST", path, Some(serde_json::to_vec(body)?))
    }
}

/// Opens an HTTP/1.1 connection on `stream`; it runs as a task of the client's runtime.
async fn handshake<S>(stream: S) -> Result<Sender>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}
