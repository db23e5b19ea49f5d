//! Files through the console: uploads streamed from the browser (evidence hashed and sealed on
//! the fly, never written in clear; an auditor's card; bundles to verify) and downloads streamed
//! to it (an exported evidence item, an export bundle), each single-use and bound to the session
//! that asked for it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::{Console, Failure, Who, same};

/// A download not fetched within this is deleted.
const KEEP: Duration = Duration::from_secs(600);
/// Files waiting at once, across sessions.
const MAX_DOWNLOADS: usize = 32;
/// Files waiting at once for one session.
const PER_SESSION: usize = 4;
/// An upload or a download that moves no byte for this long is abandoned.
const STALL: Duration = Duration::from_secs(60);
/// Free space an upload must leave on the data directory's disk.
const RESERVE: u64 = 1 << 30;

/// A file waiting to be fetched once.
pub(super) struct Download {
    session: String,
    path: PathBuf,
    name: String,
    media_type: &'static str,
    made: Instant,
}

impl Download {
    /// The file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

/// Checks the CSRF token a page's script sends with a request whose body is a file
/// (`x-csrf-token`).
pub(super) fn csrf_header(who: &Who, headers: &HeaderMap) -> Result<(), Failure> {
    let given = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if same(given, &who.csrf) {
        Ok(())
    } else {
        tracing::warn!(user = %who.user, "console: an upload without this session's CSRF token refused");
        Err(Failure(
            StatusCode::FORBIDDEN,
            "this upload does not come from your session's pages (CSRF token)".into(),
        ))
    }
}

/// A request body read as a blocking `Read`, fed by the async side through a bounded channel:
/// at most a few frames are in memory at once, whatever the size.
pub(super) struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
    limit: u64,
    read: u64,
}

impl BodyReader {
    /// Starts reading `body` (at most `limit` bytes are taken; more is an error; a body that
    /// sends nothing for a minute is abandoned).
    pub(super) fn new(body: Body, limit: u64) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            let mut frames = body.into_data_stream();
            loop {
                let f = match tokio::time::timeout(STALL, frames.next()).await {
                    Ok(Some(f)) => f.map_err(|e| e.to_string()),
                    Ok(None) => break,
                    Err(_) => Err(format!("the upload stalled for {STALL:?}")),
                };
                let stop = f.is_err();
                if tx.send(f).await.is_err() || stop {
                    break;
                }
            }
        });
        Self {
            rx,
            current: Bytes::new(),
            limit,
            read: 0,
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other(format!(
                "the upload is larger than {} bytes",
                self.limit
            )));
        }
        Ok(n)
    }
}

/// The console's working directory in the data directory (`console/`, owner only).
pub(super) fn work_dir(data: &Path) -> Result<PathBuf, Failure> {
    let d = data.join("console");
    crate::files::create_private_dir(&d)
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    Ok(d)
}

/// A fresh file name in the console's working directory (not created).
pub(super) fn fresh(data: &Path, what: &str) -> Result<PathBuf, Failure> {
    Ok(work_dir(data)?.join(format!("{what}-{}", &super::random_hex()[..16])))
}

/// Checks an upload's announced size (`Content-Length`, required) against `limit` and against
/// the free space of the data directory's disk, which must keep 1 GiB free.
pub(super) fn room(headers: &HeaderMap, data: &Path, limit: u64) -> Result<u64, Failure> {
    let size = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            Failure(
                StatusCode::LENGTH_REQUIRED,
                "give the upload's length".into(),
            )
        })?;
    if size > limit {
        return Err(Failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("larger than {limit} bytes"),
        ));
    }
    let free = crate::evidence::free_space(data).unwrap_or(0);
    if size.saturating_add(RESERVE) > free {
        tracing::warn!(
            size,
            free,
            "console: an upload refused: the disk is nearly full"
        );
        return Err(Failure(
            StatusCode::INSUFFICIENT_STORAGE,
            "the node's disk has no room for this upload".into(),
        ));
    }
    Ok(size)
}

/// Writes an uploaded body to a new file (at most `limit` bytes, synced); returns its size.
pub(super) async fn save(body: Body, path: PathBuf, limit: u64) -> Result<u64, Failure> {
    let mut reader = BodyReader::new(body, limit);
    tokio::task::spawn_blocking(move || -> Result<u64, Failure> {
        let bad = |e: std::io::Error| Failure(StatusCode::UNPROCESSABLE_ENTITY, e.to_string());
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(bad)?;
        let n = std::io::copy(&mut reader, &mut f).map_err(|e| {
            let _ = std::fs::remove_file(&path);
            bad(e)
        })?;
        f.sync_all().map_err(bad)?;
        Ok(n)
    })
    .await
    .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

impl Console {
    /// Offers `path` to the session for one download, as `name`; returns its address.
    pub(super) fn offer(
        &self,
        who: &Who,
        path: PathBuf,
        name: &str,
        media_type: &'static str,
    ) -> Result<String, Failure> {
        let mut d = self.downloads.lock().map_err(|_| {
            Failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                "downloads poisoned".into(),
            )
        })?;
        let now = Instant::now();
        sweep(&mut d, now);
        let mine = d.values().filter(|x| x.session == who.id).count();
        if d.len() >= MAX_DOWNLOADS || mine >= PER_SESSION {
            let _ = std::fs::remove_file(&path);
            return Err(Failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many files are waiting: fetch or let expire the ones made".into(),
            ));
        }
        let id = super::random_hex();
        let name = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        d.insert(
            id.clone(),
            Download {
                session: who.id.clone(),
                path,
                name,
                media_type,
                made: now,
            },
        );
        Ok(format!("/download/{id}"))
    }

    /// Deletes the files not fetched in time.
    pub(super) fn sweep(&self) {
        if let Ok(mut d) = self.downloads.lock() {
            sweep(&mut d, Instant::now());
        }
    }

    /// Takes a download of this session (it can be fetched once).
    pub(super) fn take(&self, who: &Who, id: &str) -> Option<Download> {
        let mut d = self.downloads.lock().ok()?;
        if d.get(id).is_some_and(|x| x.session == who.id) {
            d.remove(id)
        } else {
            None
        }
    }
}

fn sweep(d: &mut std::collections::HashMap<String, Download>, now: Instant) {
    d.retain(|_, x| {
        let keep = now.duration_since(x.made) < KEEP;
        if !keep {
            let _ = std::fs::remove_file(&x.path);
        }
        keep
    });
}

/// Streams a download to the browser and deletes the file once read (or once the browser
/// stops reading for a minute).
pub(super) fn stream(d: Download) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let path = d.path.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let result = (|| -> std::io::Result<()> {
            let mut f = std::fs::File::open(&path)?;
            loop {
                let mut buf = vec![0u8; 1 << 20];
                let n = f.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                let sent =
                    handle.block_on(tokio::time::timeout(STALL, tx.send(Ok(Bytes::from(buf)))));
                if !matches!(sent, Ok(Ok(()))) {
                    return Ok(());
                }
            }
        })();
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
        let _ = std::fs::remove_file(&path);
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|x| (x, rx))
    }));
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(d.media_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", d.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
