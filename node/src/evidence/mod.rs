//! Evidence content on disk (spec/EVIDENCE.md §3): content-addressed files beside the database,
//! sealed in the STREAM form of `rogatory_proto::evidence`, and the records that describe them.
//!
//! ```text
//! DATA/evidence/<sha256>-<key id>      an item's sealed content (the chunks one after another):
//!                                      named by the SHA-256 of its plaintext and the id of the
//!                                      key it is sealed under; complete and checked
//! DATA/evidence/staging/…              being written; never counts as anything, removed freely
//! ```
//!
//! A file enters `evidence/` only by a rename once complete and synced, so a half-written file
//! never counts as held. Content is never kept in clear: the content key is wrapped under the
//! node's storage key in the item's record (`evidence` table).
//!
//! Reading and hashing stream through one chunk at a time: memory stays constant whatever the
//! file size.
//!
//! The folder: [`manifest`] (what a partner's manifest and status reports may record, within
//! the quotas), [`serve`] (chunks served to partners), [`fetch`] (items fetched from partners,
//! the event loop's side), [`pool`] (the bounded pool of threads that receive them),
//! `writer` (one item received to disk) and [`transfer`] (what those share, and the
//! [`Recorder`](transfer::Recorder) the store worker implements).

pub mod fetch;
pub mod manifest;
pub mod pool;
pub mod serve;
pub mod transfer;
mod writer;

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rogatory_proto::evidence::{self as stream, CHUNK, ContentKey};
use rogatory_proto::ids::{CaseId, Sha256Digest};
use sha2::Digest;

/// Directory of evidence content, in the data directory.
pub const DIR: &str = "evidence";

/// Sealed evidence bytes served to partners since the process started (`GET /metrics`).
pub static BYTES_SERVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Sealed evidence bytes fetched from partners, each chunk authenticated, since the process
/// started (`GET /metrics`).
pub static BYTES_FETCHED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Directory of content being written, inside [`DIR`].
pub const STAGING: &str = "staging";
/// Directory of content being received, inside [`DIR`]: `<case>-<record key>` per item.
pub const PARTIAL: &str = "partial";
/// Directory of content that arrived and did not match its manifest, inside [`DIR`].
pub const QUARANTINE: &str = "quarantine";

pub use crate::store::records::{EvidenceRecord, EvidenceState, Reported};
pub use manifest::{Quotas, record_manifest, record_status};

/// Bytes free for this node's user on the file system holding `dir`.
pub fn free_space(dir: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// A binary size for people.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// What a wrapped content key is bound to: the case and the item.
pub fn key_context(case: &CaseId, item_id: &str) -> Vec<u8> {
    let mut c = b"rogatory evidence key\0".to_vec();
    c.extend_from_slice(case.as_bytes());
    c.extend_from_slice(item_id.as_bytes());
    c
}

/// The file name of an item's sealed content.
pub fn blob_name(sha256: &Sha256Digest, key: &ContentKey) -> String {
    format!("{}-{}", sha256.to_hex(), hex::encode(key.id()))
}

/// Whether `name` is a blob name this module writes (no path separators, no dots).
pub fn is_blob_name(name: &str) -> bool {
    let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    name.len() == 64 + 1 + 16
        && name.as_bytes()[64] == b'-'
        && lower_hex(&name[..64])
        && lower_hex(&name[65..])
}

/// The evidence directory of a data directory (created if needed, mode 0700).
pub fn dir(data: &Path) -> Result<PathBuf> {
    let d = data.join(DIR);
    crate::files::create_private_dir(&d.join(STAGING))?;
    Ok(d)
}

/// A file hashed, and sealed if asked.
#[derive(Debug)]
pub struct Hashed {
    /// SHA-256 of the plaintext.
    pub sha256: Sha256Digest,
    /// Its size.
    pub size: u64,
    /// The sealed copy in the staging directory, and its key (for `send` items).
    pub sealed: Option<(String, ContentKey)>,
}

/// Reads `src` once, in chunks: hashes it and, with `seal`, writes its sealed form under a
/// fresh key into `data`'s staging directory (synced). `progress` is told the bytes read.
pub fn hash_and_seal(
    src: &Path,
    data: Option<&Path>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Hashed> {
    let file = File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", src.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", src.display());
    }
    let mut reader = BufReader::with_capacity(CHUNK, file);
    hash_and_seal_from(&mut reader, meta.len(), data, progress)
        .with_context(|| format!("{} changed while it was read", src.display()))
}

/// [`hash_and_seal`] of content read from `reader`, which must give exactly `size` bytes (a
/// file, or a browser's upload streamed through the console: the plaintext is never written
/// to the node's disk). A staged copy left by a failure is removed.
pub fn hash_and_seal_from(
    reader: &mut dyn Read,
    size: u64,
    data: Option<&Path>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Hashed> {
    let mut hasher = sha2::Sha256::new();
    let mut out = match data {
        Some(d) => {
            let staging = dir(d)?.join(STAGING);
            let key = ContentKey::generate();
            let mut rnd = [0u8; 8];
            rogatory_proto::keys::fill_random(&mut rnd);
            let name = format!("add-{}", hex::encode(rnd));
            let path = staging.join(&name);
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            Some((f, name, key, path))
        }
        None => None,
    };
    let result = (|| -> Result<()> {
        let mut buf = Vec::with_capacity(CHUNK + stream::TAG);
        let mut done = 0u64;
        for index in 0..stream::chunks(size) {
            let want = stream::plain_len(size, index)?;
            // Reused: only the first chunk (or a shorter last one) changes its length.
            buf.truncate(want);
            if buf.len() < want {
                buf.resize(want, 0);
            }
            reader
                .read_exact(&mut buf)
                .with_context(|| format!("the content ended before its {size} bytes"))?;
            hasher.update(&buf);
            if let Some((f, _, key, _)) = out.as_mut() {
                stream::seal_chunk(key, size, index, &mut buf)?;
                f.write_all(&buf).context("cannot write the sealed copy")?;
            }
            done += want as u64;
            progress(done);
        }
        let mut extra = [0u8; 1];
        if reader.read(&mut extra)? != 0 {
            bail!("the content is longer than its {size} bytes");
        }
        if let Some((f, ..)) = out.as_ref() {
            f.sync_all().context("cannot sync the sealed copy")?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        if let Some((_, _, _, path)) = out {
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    let sha256 = Sha256Digest(hasher.finalize().into());
    Ok(Hashed {
        sha256,
        size,
        sealed: out.map(|(_, name, key, _)| (name, key)),
    })
}

/// Moves a staged sealed copy into the evidence directory under its content name, after
/// checking its length; the rename is synced. An identical blob already there is kept.
pub fn commit_staged(data: &Path, staged: &str, name: &str, size: u64) -> Result<()> {
    if !staged.starts_with("add-") || staged.contains(['/', '\\', '.']) || !is_blob_name(name) {
        bail!("not a staged evidence file: {staged}");
    }
    let d = dir(data)?;
    let from = d.join(STAGING).join(staged);
    let len = fs::metadata(&from)
        .with_context(|| format!("the staged file {staged} is missing"))?
        .len();
    if len != stream::sealed_len(size) {
        bail!(
            "the staged file {staged} is {len} bytes; {} were expected",
            stream::sealed_len(size)
        );
    }
    fs::rename(&from, d.join(name)).with_context(|| format!("cannot move {staged} into place"))?;
    File::open(&d)
        .and_then(|f| f.sync_all())
        .context("cannot sync the evidence directory")?;
    Ok(())
}

/// Reads a stored item's sealed content, opening every chunk, and returns the SHA-256 of the
/// plaintext; with `out`, also writes the plaintext there. Fails on the first chunk that does
/// not open.
pub fn read_blob(
    data: &Path,
    name: &str,
    key: &ContentKey,
    size: u64,
    mut out: Option<&mut dyn Write>,
    progress: &dyn Fn(u64),
) -> Result<Sha256Digest> {
    if !is_blob_name(name) {
        bail!("not an evidence file name: {name}");
    }
    let path = data.join(DIR).join(name);
    let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata()?.len();
    if len != stream::sealed_len(size) {
        bail!(
            "{} is {len} bytes; {} were expected",
            path.display(),
            stream::sealed_len(size)
        );
    }
    let mut reader = BufReader::with_capacity(stream::SEALED_CHUNK, file);
    let mut hasher = sha2::Sha256::new();
    let mut buf = Vec::with_capacity(stream::SEALED_CHUNK);
    let mut done = 0u64;
    for index in 0..stream::chunks(size) {
        let n = stream::plain_len(size, index)? + stream::TAG;
        buf.truncate(n);
        if buf.len() < n {
            buf.resize(n, 0);
        }
        reader.read_exact(&mut buf)?;
        stream::open_chunk(key, size, index, &mut buf)?;
        hasher.update(&buf);
        if let Some(w) = out.as_mut() {
            w.write_all(&buf)?;
        }
        done += buf.len() as u64;
        progress(done);
    }
    Ok(Sha256Digest(hasher.finalize().into()))
}

/// A media type from a file name's extension (the user may give one instead).
pub fn media_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "eml" => "message/rfc822",
        "html" | "htm" => "text/html",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_hashed_sealed_and_read_back_and_a_changed_byte_is_found() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("records.csv");
        let content: Vec<u8> = (0..(2 * CHUNK + 100)).map(|i| (i % 251) as u8).collect();
        fs::write(&src, &content).unwrap();
        let data = t.path().join("data");
        let h = hash_and_seal(&src, Some(&data), &|_| {}).unwrap();
        assert_eq!(h.size, content.len() as u64);
        assert_eq!(h.sha256, Sha256Digest::of(&content));
        let (staged, key) = h.sealed.unwrap();
        let name = blob_name(&h.sha256, &key);
        assert!(is_blob_name(&name));
        commit_staged(&data, &staged, &name, h.size).unwrap();
        let stored = fs::read(data.join(DIR).join(&name)).unwrap();
        assert_eq!(stored.len() as u64, stream::sealed_len(h.size));
        assert!(
            !stored.windows(64).any(|w| w == &content[1000..1064]),
            "the content is not kept in clear"
        );
        let mut out = Vec::new();
        let d = read_blob(&data, &name, &key, h.size, Some(&mut out), &|_| {}).unwrap();
        assert_eq!(d, h.sha256);
        assert_eq!(out, content);
        // One bit changed on disk: the chunk that holds it does not open.
        let mut bad = stored.clone();
        bad[CHUNK + 40] ^= 1;
        fs::write(data.join(DIR).join(&name), &bad).unwrap();
        let e = read_blob(&data, &name, &key, h.size, None, &|_| {}).unwrap_err();
        assert!(
            format!("{e:#}").contains("chunk 1 does not verify"),
            "{e:#}"
        );
        // Truncated: refused by its length.
        fs::write(data.join(DIR).join(&name), &stored[..stored.len() - 1]).unwrap();
        assert!(read_blob(&data, &name, &key, h.size, None, &|_| {}).is_err());
        // Hash only: nothing is written.
        let h = hash_and_seal(&src, None, &|_| {}).unwrap();
        assert!(h.sealed.is_none());
        assert_eq!(h.sha256, Sha256Digest::of(&content));
        assert!(commit_staged(&data, "../x", &name, 1).is_err());
    }
}
