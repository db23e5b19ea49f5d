//! Writing files so that a crash or a full disk never leaves a half-written file in place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Largest input file the offline commands read (envelopes, cards, JSON bodies).
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a whole file, refusing one larger than `limit` before reading it.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len > limit {
        bail!(
            "{} is {len} bytes, more than the limit of {limit} bytes",
            path.display()
        );
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if buf.len() as u64 > limit {
        bail!("{} grew beyond the limit while being read", path.display());
    }
    Ok(buf)
}

/// Writes `data` to `path` atomically: a temporary file in the same directory, flushed to disk,
/// then renamed over the target. With `secret`, the file is created readable by its owner
/// only (0600). With `overwrite` false, an existing target is refused.
pub fn write_atomic(path: &Path, data: &[u8], secret: bool, overwrite: bool) -> Result<()> {
    // A symbolic link counts as existing, wherever it points.
    let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    if !overwrite && exists(path) {
        bail!(
            "{} already exists; refusing to overwrite it",
            path.display()
        );
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    // A new file under a random name, created exclusively: a link planted there is never
    // followed (O_CREAT|O_EXCL), and the rename replaces a link at `path` rather than writing
    // through it.
    let mut rnd = [0u8; 8];
    rogatory_proto::keys::fill_random(&mut rnd);
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        hex::encode(rnd)
    ));
    let result = (|| -> io::Result<()> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if secret { 0o600 } else { 0o644 });
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        if !overwrite && exists(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "target appeared",
            ));
        }
        fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// Flushes a directory's entries (a rename in it) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// Opens an existing file, or creates it, for reading and writing, refusing a symbolic link at
/// `path` (O_NOFOLLOW): for files a node keeps writing, such as a partial evidence transfer.
pub fn open_no_follow(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    opts.open(path)
}

/// Creates a new file for writing, refusing any existing file or link at `path`
/// (O_CREAT|O_EXCL), readable by its owner only when `secret`.
pub fn create_new(path: &Path, secret: bool) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    opts.open(path)
}

/// Creates a directory (and parents) readable by its owner only.
pub fn create_private_dir(path: &Path) -> Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
        .with_context(|| format!("cannot create directory {}", path.display()))
}

/// Makes a file readable and writable by its owner only (mode 0600), if it is not already.
pub fn restrict(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot restrict {} to its owner", path.display()))?;
        }
    }
    Ok(())
}

/// Closes a directory to other users (mode 0700) if it is open to them; returns whether it was.
pub fn make_private(dir: &Path) -> Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(dir).with_context(|| format!("cannot open {}", dir.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot close {} to other users", dir.display()))?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Refuses a secret file (keys, the API token) that others can read.
pub fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by other users (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_refuses_overwrite_and_keeps_old_content() {
        let dir = std::env::temp_dir().join(format!("rogatory-files-{}", std::process::id()));
        create_private_dir(&dir).unwrap();
        let p = dir.join("x");
        write_atomic(&p, b"one", true, false).unwrap();
        assert!(write_atomic(&p, b"two", true, false).is_err());
        assert_eq!(fs::read(&p).unwrap(), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(read_limited(&p, 2).is_err());
        assert_eq!(read_limited(&p, 3).unwrap(), b"one");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_link_is_replaced_never_written_through() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        fs::write(&victim, b"not yours").unwrap();
        let target = t.path().join("out");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        // A link counts as an existing file.
        assert!(write_atomic(&target, b"x", false, false).is_err());
        write_atomic(&target, b"report", false, true).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"not yours");
        assert!(!fs::symlink_metadata(&target).unwrap().is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"report");
        // A file kept open for writing refuses a link; a new file refuses anything there.
        let link = t.path().join("partial");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(open_no_follow(&link).is_err());
        assert!(create_new(&link, true).is_err());
        assert_eq!(fs::read(&victim).unwrap(), b"not yours");
    }
}
