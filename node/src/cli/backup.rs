//! `rogatory backup` and `rogatory restore` (spec/BACKUP.md): a backup of a data directory,
//! running or not, and its restoration into a new directory, which the node does not run from
//! until an operator has dealt with what happened after the backup.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::api::wire::{BackupReport, BackupRequest};
use crate::client::{Client, NotRunning};
use crate::store::backup::{RESTORED_FILE, Restored};

/// Arguments of `rogatory backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write (it must not exist; it appears only once complete). Outside the data
    /// directory.
    #[arg(long)]
    pub out: PathBuf,
    /// The node's data directory (default: `ROGATORY_DATA_DIR`, else the platform's data
    /// directory).
    #[arg(long, env = "ROGATORY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `rogatory restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file (`rogatory backup --out`).
    #[arg(required_unless_present = "resume")]
    pub file: Option<PathBuf>,
    /// The directory to restore into: it must not exist, or be empty.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Let the node run from a restored directory, once its partners have been told what the
    /// backup does not hold (spec/BACKUP.md §3).
    #[arg(long, conflicts_with = "file")]
    pub resume: bool,
}

/// Arguments of `rogatory migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The node's data directory (the node must be stopped).
    #[arg(long, env = "ROGATORY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where to write the backup taken first (default: beside the data directory, named after
    /// it, the store's format and the time).
    #[arg(long)]
    pub backup: Option<PathBuf>,
}

/// `rogatory migrate`: a backup first, then the store moved to this release's format in one
/// transaction, then verified.
pub(crate) fn migrate(a: MigrateArgs) -> Result<ExitCode> {
    use crate::store::{STORE_FORMAT, migrate};
    let dir = super::init::data_dir(a.data_dir)?;
    if dir.join(crate::api::listen::SOCKET_FILE).exists() && Client::connect(&dir).is_ok() {
        bail!(
            "the node in {} is running: stop it, then migrate",
            dir.display()
        );
    }
    let found = migrate::format_of(&dir)
        .with_context(|| format!("cannot read the store in {}", dir.display()))?;
    if found == STORE_FORMAT {
        println!(
            "The store in {} is of format {found}, this release's: nothing to migrate.",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !migrate::MIGRATES_FROM.contains(&found) {
        bail!(
            "the store in {} is of format {found}; this release migrates from {:?} to {STORE_FORMAT} only",
            dir.display(),
            migrate::MIGRATES_FROM
        );
    }
    let backup = match a.backup {
        Some(b) => b,
        None => {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "node".into());
            dir.with_file_name(format!(
                "{name}.format-{found}.{}.backup",
                rogatory_proto::time::now_unix()
            ))
        }
    };
    // The keys first: without them nothing is done, not even the backup.
    let kd = crate::keydir::KeyDir::load(&dir)?;
    let m = crate::store::backup::write_stopped(&dir, found, &backup)?;
    println!(
        "Backup first: {} ({} files), restorable with `rogatory restore`.",
        backup.display(),
        m.files.len()
    );
    let done = migrate::migrate(&dir, &crate::store::RecordKeys::new(&kd.keys))
        .with_context(|| format!("the store in {} was not changed", dir.display()))?;
    println!(
        "Migrated the store in {} from format {} to {}: {} records sealed at rest.",
        dir.display(),
        done.from,
        done.to,
        done.sealed
    );
    let verified = super::audit::run(super::audit::AuditCommand::VerifyStore {
        data_dir: dir.clone(),
        vkey: None,
    })?;
    if verified != ExitCode::SUCCESS {
        bail!(
            "the migrated store does not verify (above); the backup {} holds it as it was",
            backup.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `rogatory backup`: through the running node's API, else on its store directly.
pub(crate) fn backup(a: BackupArgs) -> Result<ExitCode> {
    let dir = super::init::data_dir(a.data_dir)?;
    let out = std::path::absolute(&a.out)
        .with_context(|| format!("cannot name {} absolutely", a.out.display()))?;
    let running = if dir.join(crate::api::listen::SOCKET_FILE).exists() {
        Client::connect(&dir).and_then(|c| {
            c.post::<BackupReport>(
                "/v1/backup",
                &BackupRequest {
                    out: out.display().to_string(),
                },
            )
        })
    } else {
        Err(NotRunning(format!("no node runs from {}", dir.display())).into())
    };
    let report = match running {
        Ok(r) => r,
        Err(e) if e.is::<NotRunning>() => {
            let store = crate::store::Store::open_read_only(&dir)
                .with_context(|| format!("cannot open the store in {}", dir.display()))?;
            let started = std::time::Instant::now();
            let m = crate::store::backup::write(&dir, &store, &out)?;
            BackupReport::of(&out.display().to_string(), &m, started.elapsed())
        }
        Err(e) => return Err(e),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "Backup of {} as of {}: {} ({} files, {} bytes, the store {} bytes) in {} ms.",
            dir.display(),
            report.taken_at,
            report.file,
            report.files,
            report.bytes,
            report.store_bytes,
            report.millis
        );
        println!(
            "Keep it apart from the passphrase: the keys in it are encrypted under it. Restore with `rogatory restore {} --data-dir NEW-DIR`.",
            report.file
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `rogatory restore`: unpack and check a backup, then verify the store; or `--resume`.
pub(crate) fn restore(a: RestoreArgs) -> Result<ExitCode> {
    let dir = a.data_dir;
    if a.resume {
        let mark = dir.join(RESTORED_FILE);
        let r = read_mark(&dir)?
            .with_context(|| format!("{} was not restored from a backup", dir.display()))?;
        std::fs::remove_file(&mark).with_context(|| format!("cannot remove {}", mark.display()))?;
        println!(
            "{} may run again. It holds the agency's state as of {}; its partners hold what came after.",
            dir.display(),
            rogatory_proto::time::format_unix(r.taken_at)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(file) = a.file else {
        bail!("give the backup file to restore");
    };
    let m = crate::store::backup::restore(&file, &dir)?;
    println!(
        "Restored {} files ({} bytes) into {}, each as the backup's manifest lists it; the node's state as of {}.",
        m.files.len(),
        m.files.iter().map(|f| f.bytes).sum::<u64>(),
        dir.display(),
        rogatory_proto::time::format_unix(m.taken_at)
    );
    if m.store_format != crate::store::STORE_FORMAT {
        println!(
            "Its store is of format {}: run `rogatory migrate --data-dir {}` before anything else.",
            m.store_format,
            dir.display()
        );
    } else {
        let verified = super::audit::run(super::audit::AuditCommand::VerifyStore {
            data_dir: dir.clone(),
            vkey: None,
        })?;
        if verified != ExitCode::SUCCESS {
            bail!(
                "the restored store does not verify (above): do not run a node from {}",
                dir.display()
            );
        }
    }
    println!("{}", held_because(&dir, m.taken_at));
    Ok(ExitCode::SUCCESS)
}

fn read_mark(dir: &Path) -> Result<Option<Restored>> {
    let mark = dir.join(RESTORED_FILE);
    if !mark.exists() {
        return Ok(None);
    }
    let bytes = crate::files::read_limited(&mark, 64 * 1024)?;
    Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
        format!("{} is not a restore mark", mark.display())
    })?))
}

fn held_because(dir: &Path, taken_at: u64) -> String {
    format!(
        "The node does not run from {dir} yet. It holds the agency's state as of {at}: what it sent and received after that is held by its partners, not here, so its case chains and audit logs are behind what they have witnessed, and they would refuse what it sends in those cases (chain-broken, log-inconsistent) and raise alerts. Tell each partner the node was restored from a backup of {at} (spec/BACKUP.md §3), then run `rogatory restore --resume --data-dir {dir}`.",
        dir = dir.display(),
        at = rogatory_proto::time::format_unix(taken_at)
    )
}

/// Refuses to run a node from a restored directory until `restore --resume`.
pub(crate) fn refuse_restored(dir: &Path) -> Result<()> {
    match read_mark(dir)? {
        None => Ok(()),
        Some(r) => bail!("{}", held_because(dir, r.taken_at)),
    }
}
