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
    if !overwrite && path.exists() {
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
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
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
        if !overwrite && path.exists() {
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
}
