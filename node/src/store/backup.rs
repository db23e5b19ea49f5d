//! Backups of a data directory (spec/BACKUP.md): one POSIX tar file holding a consistent copy of
//! the store (every table as one read transaction saw it, so a running node's writer is never
//! stopped), every other file of the directory as it is (keys still encrypted under the
//! passphrase, the configuration, the key histories, the evidence), and last a manifest with
//! each file's size and SHA-256. [`restore`] unpacks one into a new directory, checks every
//! file against the manifest, and marks the directory as restored: the node does not run from
//! it until an operator says so (spec/BACKUP.md §3).

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use redb::{Database, ReadableTable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Store, StoreError};

/// The format a backup's manifest names.
pub const BACKUP_FORMAT: &str = "rogatory-backup/1";
/// The manifest: the archive's last member.
pub const MANIFEST: &str = "rogatory-backup.json";
/// Written into a restored directory: the node does not run from it while this is there.
pub const RESTORED_FILE: &str = "restored.json";
/// Most members of a backup (files and directories).
pub const MAX_MEMBERS: usize = 1_000_000;
/// Largest manifest read back.
const MAX_MANIFEST_BYTES: u64 = 256 * 1024 * 1024;

/// What a backup holds (its manifest).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`BACKUP_FORMAT`].
    pub format: String,
    /// When the store was copied (Unix seconds): what the backup holds is the node's state as
    /// of then.
    pub taken_at: u64,
    /// The store's format version.
    pub store_format: u64,
    /// Every file, in archive order.
    pub files: Vec<FileEntry>,
}

/// One file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Its path in the data directory.
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// The mark of a restored directory ([`RESTORED_FILE`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restored {
    /// When the backup was taken.
    pub taken_at: u64,
    /// When it was restored.
    pub restored_at: u64,
    /// The backup file.
    pub from: String,
}

/// Files of a data directory a backup leaves out: the store (copied through a transaction
/// instead), what only a running node has (its socket, its address, its log), the mark of a
/// restore, and files being written.
fn left_out(name: &str) -> bool {
    matches!(
        name,
        super::STORE_FILE | "api.addr" | "api.sock" | "node.log" | RESTORED_FILE
    ) || name.ends_with(".tmp")
        || name.ends_with(".part")
}

impl Store {
    /// A consistent copy of every table, as one read transaction sees them, into a new
    /// database in `file` (new and empty, made by the caller with the mode it must have). The
    /// writer goes on meanwhile.
    pub fn snapshot_to(&self, file: std::fs::File) -> Result<(), StoreError> {
        let rx = self.begin_read()?;
        let backend = redb::backends::FileBackend::new(file)
            .map_err(|e| StoreError::Db(format!("cannot use the new store file: {e}")))?;
        let out = Database::builder().create_with_backend(backend)?;
        let wx = out.begin_write()?;
        copy_tables!(
            rx,
            wx,
            super::META,
            super::CASES,
            super::LOG,
            super::INBOX,
            super::RECEIPTS,
            super::OUTBOX,
            super::QUEUE,
            super::RECEIVED,
            super::CHAIN_IN,
            super::CHAIN_OUT,
            super::CASE_RECORDS,
            super::EVIDENCE,
            super::WITNESSED,
            super::WITNESS_OUT,
            super::ALERTS,
            super::drafts::DRAFTS,
        );
        wx.commit()?;
        Ok(())
    }
}

/// A reader that hashes what it reads.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    read: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// A file being written: `files::write_atomic`'s `.NAME.tmp-…`, and `*.tmp`, `*.part`.
fn being_written(name: &str) -> bool {
    name.contains(".tmp-") || name.ends_with(".tmp") || name.ends_with(".part")
}

/// Every file and directory under `dir` a backup holds, relative to it, each directory before
/// what it holds.
fn members(dir: &Path) -> Result<Vec<(PathBuf, bool)>> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let mut names: Vec<_> = std::fs::read_dir(dir.join(&rel))
            .with_context(|| format!("cannot read {}", dir.join(&rel).display()))?
            .collect::<Result<_, _>>()?;
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let name = e.file_name().to_string_lossy().into_owned();
            if rel.as_os_str().is_empty() && left_out(&name) || being_written(&name) {
                continue;
            }
            let t = e.file_type()?;
            let path = rel.join(&name);
            if t.is_dir() {
                out.push((path.clone(), true));
                todo.push(path);
            } else if t.is_file() {
                out.push((path, false));
            }
            // Sockets, links and the like are not data.
        }
        if out.len() > MAX_MEMBERS {
            bail!("more than {MAX_MEMBERS} files in {}", dir.display());
        }
    }
    Ok(out)
}

fn header(path: &Path, size: u64, mode: u32, dir: bool) -> Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    h.set_size(size);
    h.set_mode(mode);
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mtime(0);
    h.set_cksum();
    Ok(h)
}

/// Writes a backup of the data directory `dir`, whose store is `store`, to `out` (which must
/// not exist; it appears only once complete). Returns its manifest.
pub fn write(dir: &Path, store: &Store, out: &Path) -> Result<Manifest> {
    write_with(dir, out, super::STORE_FORMAT, |f| {
        store
            .snapshot_to(f)
            .map_err(|e| anyhow::anyhow!("cannot copy the store: {e}"))
    })
}

/// [`write()`] for a directory no node runs from, whose store is of `format` (this release's or
/// an earlier one, before a migration): the store file is copied as it is.
pub fn write_stopped(dir: &Path, format: u64, out: &Path) -> Result<Manifest> {
    write_with(dir, out, format, |mut to| {
        let mut from =
            std::fs::File::open(dir.join(super::STORE_FILE)).context("cannot read the store")?;
        std::io::copy(&mut from, &mut to).context("cannot copy the store")?;
        to.sync_all()?;
        Ok(())
    })
}

/// A new file (never an existing one or a link), readable and writable by its owner only: the
/// store's copy, which redb reads as it writes.
fn new_read_write(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Whether `out` would be inside the data directory `dir`.
pub fn inside(dir: &Path, out: &Path) -> bool {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    matches!(
        (parent.canonicalize(), dir.canonicalize()),
        (Ok(p), Ok(d)) if p.starts_with(&d)
    )
}

fn write_with(
    dir: &Path,
    out: &Path,
    format: u64,
    snapshot: impl FnOnce(std::fs::File) -> Result<()>,
) -> Result<Manifest> {
    if out.exists() {
        bail!("{} exists: a backup never replaces a file", out.display());
    }
    if inside(dir, out) {
        bail!(
            "{} is inside the data directory {}: put the backup elsewhere",
            out.display(),
            dir.display()
        );
    }
    let beside = |suffix: String| {
        let mut name = out.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let part = beside(".part".into());
    let snapshot_file = beside(format!(".{}.redb.part", std::process::id()));
    // Both made here, new (never someone else's file); removed whatever happens.
    let file = crate::files::create_new(&part, true)
        .with_context(|| format!("cannot create {}", part.display()))?;
    let result = new_read_write(&snapshot_file)
        .with_context(|| format!("cannot create {}", snapshot_file.display()))
        .and_then(|snap| {
            let r = write_parts(dir, format, snapshot, file, &snapshot_file, snap);
            let _ = std::fs::remove_file(&snapshot_file);
            r
        });
    let done = result.and_then(|m| {
        // A link never replaces a file that appeared meanwhile, as a rename would.
        std::fs::hard_link(&part, out)
            .with_context(|| format!("cannot put the backup at {}", out.display()))?;
        Ok(m)
    });
    let _ = std::fs::remove_file(&part);
    let m = done?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::files::sync_dir(parent)?;
    }
    Ok(m)
}

fn write_parts(
    dir: &Path,
    format: u64,
    take: impl FnOnce(std::fs::File) -> Result<()>,
    file: std::fs::File,
    snapshot: &Path,
    snapshot_file: std::fs::File,
) -> Result<Manifest> {
    let taken_at = rogatory_proto::time::now_unix();
    take(snapshot_file)?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let mut files = Vec::new();
    let mut add = |tar: &mut tar::Builder<_>, from: &Path, name: &Path, mode: u32| -> Result<()> {
        let f = match std::fs::File::open(from) {
            Ok(f) => f,
            // Gone since it was listed (a partial evidence file completed and renamed): what
            // took its place is listed under its own name, or will be in the next backup.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", from.display())),
        };
        // A file that grows meanwhile (evidence being fetched) is taken as long as it was.
        let size = f.metadata()?.len();
        let mut r = Hashing {
            inner: f.take(size),
            hash: Sha256::new(),
            read: 0,
        };
        tar.append(&header(name, size, mode, false)?, &mut r)
            .with_context(|| format!("cannot write {} into the backup", name.display()))?;
        if r.read != size {
            bail!("{} shrank while it was copied", from.display());
        }
        files.push(FileEntry {
            path: name.to_string_lossy().into_owned(),
            bytes: size,
            sha256: hex::encode(r.hash.finalize()),
        });
        Ok(())
    };
    add(&mut tar, snapshot, Path::new(super::STORE_FILE), 0o600)?;
    for (rel, is_dir) in members(dir)? {
        if is_dir {
            tar.append(&header(&rel, 0, 0o700, true)?, std::io::empty())?;
        } else {
            add(&mut tar, &dir.join(&rel), &rel, 0o600)?;
        }
    }
    let manifest = Manifest {
        format: BACKUP_FORMAT.into(),
        taken_at,
        store_format: format,
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    tar.append(
        &header(Path::new(MANIFEST), json.len() as u64, 0o600, false)?,
        json.as_slice(),
    )?;
    let mut w = tar.into_inner()?;
    w.flush()?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all().context("cannot sync the backup")?;
    Ok(manifest)
}

/// A member's path, if it is a plain relative one (no `..`, not absolute).
fn safe(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Restores the backup `file` into `dir` (which must not exist, or be empty): every file
/// unpacked into a directory beside it, checked against the manifest (size and SHA-256, none
/// missing, none extra), then moved into place and marked restored ([`RESTORED_FILE`]).
pub fn restore(file: &Path, dir: &Path) -> Result<Manifest> {
    let dir = std::path::absolute(dir)
        .with_context(|| format!("cannot name {} absolutely", dir.display()))?;
    let existing = dir.exists();
    if existing && std::fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "{} exists and is not empty: a backup is restored into a new directory",
            dir.display()
        );
    }
    // Into a directory beside the one asked for, moved into place once checked; into the
    // (empty) directory itself when it exists already (a mount point cannot be replaced).
    let into = if existing {
        dir.clone()
    } else {
        let parent = dir.parent().context("restore into a directory, not /")?;
        let name = dir
            .file_name()
            .context("restore into a named directory")?
            .to_string_lossy()
            .into_owned();
        parent.join(format!(".{name}.restoring-{}", std::process::id()))
    };
    if !existing {
        if into.exists() {
            std::fs::remove_dir_all(&into)?;
        }
        crate::files::create_private_dir(&into)?;
    }
    let cleanup = |into: &Path| {
        if existing {
            // Empty it again: nothing of a refused backup is left.
            if let Ok(entries) = std::fs::read_dir(into) {
                for e in entries.flatten() {
                    let p = e.path();
                    let _ = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(into);
        }
    };
    let done = unpack(file, &into).and_then(|manifest| {
        let restored = Restored {
            taken_at: manifest.taken_at,
            restored_at: rogatory_proto::time::now_unix(),
            from: file.display().to_string(),
        };
        crate::files::write_atomic(
            &into.join(RESTORED_FILE),
            &serde_json::to_vec_pretty(&restored)?,
            false,
            false,
        )?;
        if !existing {
            std::fs::rename(&into, &dir)
                .with_context(|| format!("cannot move the restored files to {}", dir.display()))?;
        }
        Ok(manifest)
    });
    match done {
        Ok(manifest) => {
            if let Some(parent) = dir.parent() {
                crate::files::sync_dir(parent)?;
            }
            Ok(manifest)
        }
        Err(e) => {
            cleanup(&into);
            Err(e)
        }
    }
}

fn unpack(file: &Path, into: &Path) -> Result<Manifest> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(f));
    let mut got: Vec<FileEntry> = Vec::new();
    let mut manifest = None;
    for (n, entry) in archive
        .entries()
        .context("not a backup (a tar file)")?
        .enumerate()
    {
        // The files, the store and the manifest.
        if n >= MAX_MEMBERS + 2 {
            bail!("more than {MAX_MEMBERS} files: not a backup this node made");
        }
        let mut entry = entry.context("the backup is damaged or cut short")?;
        let raw = entry.path()?.into_owned();
        let path = safe(&raw).with_context(|| {
            format!("the backup names {}, outside its directory", raw.display())
        })?;
        if manifest.is_some() {
            bail!("the backup goes on after its manifest");
        }
        if path == Path::new(RESTORED_FILE) {
            bail!("the backup holds {}, which no backup holds", path.display());
        }
        match entry.header().entry_type() {
            tar::EntryType::Directory => crate::files::create_private_dir(&into.join(&path))?,
            tar::EntryType::Regular if path == Path::new(MANIFEST) => {
                let mut json = Vec::new();
                (&mut entry)
                    .take(MAX_MANIFEST_BYTES)
                    .read_to_end(&mut json)?;
                let m: Manifest =
                    serde_json::from_slice(&json).context("the backup's manifest is not valid")?;
                manifest = Some(m);
            }
            tar::EntryType::Regular => {
                let target = into.join(&path);
                let mut out = crate::files::create_new(&target, true)
                    .with_context(|| format!("cannot create {}", target.display()))?;
                let mut r = Hashing {
                    inner: &mut entry,
                    hash: Sha256::new(),
                    read: 0,
                };
                std::io::copy(&mut r, &mut out)
                    .with_context(|| format!("cannot restore {}", path.display()))?;
                out.sync_all()?;
                got.push(FileEntry {
                    path: path.to_string_lossy().into_owned(),
                    bytes: r.read,
                    sha256: hex::encode(r.hash.finalize()),
                });
            }
            other => bail!(
                "the backup holds {} ({other:?}), not a file",
                path.display()
            ),
        }
    }
    let m = manifest.context("the backup has no manifest: it is cut short or not a backup")?;
    if m.format != BACKUP_FORMAT {
        bail!("a backup of format {}, not {BACKUP_FORMAT}", m.format);
    }
    if m.store_format != super::STORE_FORMAT
        && !super::migrate::MIGRATES_FROM.contains(&m.store_format)
    {
        bail!(
            "the backup's store is of format {}; this release reads {} and migrates from {:?} (spec/BACKUP.md §4)",
            m.store_format,
            super::STORE_FORMAT,
            super::migrate::MIGRATES_FROM
        );
    }
    let listed: std::collections::BTreeMap<&str, &FileEntry> =
        m.files.iter().map(|f| (f.path.as_str(), f)).collect();
    for g in &got {
        match listed.get(g.path.as_str()) {
            None => bail!("{} is in the backup but not in its manifest", g.path),
            Some(f) if f.bytes != g.bytes || f.sha256 != g.sha256 => bail!(
                "{} is not what the manifest says ({} bytes, SHA-256 {}…): the backup was altered or damaged",
                g.path,
                f.bytes,
                f.sha256.get(..16).unwrap_or(&f.sha256)
            ),
            Some(_) => {}
        }
    }
    if got.len() != m.files.len() {
        bail!(
            "the manifest lists {} files, the backup holds {}",
            m.files.len(),
            got.len()
        );
    }
    Ok(m)
}
