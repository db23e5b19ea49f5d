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
/// Downloads waiting at once, across sessions.
const MAX_DOWNLOADS: usize = 32;

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
    /// Starts reading `body` (at most `limit` bytes are taken; more is an error).
    pub(super) fn new(body: Body, limit: u64) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            let mut frames = body.into_data_stream();
            while let Some(f) = frames.next().await {
                if tx.send(f.map_err(|e| e.to_string())).await.is_err() {
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
        d.retain(|_, x| {
            let keep = now.duration_since(x.made) < KEEP;
            if !keep {
                let _ = std::fs::remove_file(&x.path);
            }
            keep
        });
        if d.len() >= MAX_DOWNLOADS {
            let _ = std::fs::remove_file(&path);
            return Err(Failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many downloads are waiting: fetch or let expire the ones made".into(),
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

/// Streams a download to the browser and deletes the file once read.
pub(super) fn stream(d: Download) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let path = d.path.clone();
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
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
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
