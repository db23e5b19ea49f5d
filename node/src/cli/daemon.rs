//! `rogatory run` and `rogatory deliver`: the node on the network.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use libp2p::Multiaddr;
use rogatory_proto::ids::AgencyId;
use rogatory_proto::receipt::{ReceiptEvent, verify_receipt};

use crate::files;
use crate::keydir::KeyDir;

/// Arguments of `rogatory run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The data directory.
    #[arg(long, env = "ROGATORY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Addresses to listen on (repeatable; default: `network.listen` in the configuration,
    /// else the addresses on the agency card).
    #[arg(long)]
    pub listen: Vec<Multiaddr>,
    /// Log format on standard error (default: `log.format` in the configuration, else human).
    /// The level is set with `ROGATORY_LOG` (e.g. `debug`, `info,libp2p=debug`).
    #[arg(long, value_enum)]
    pub log_format: Option<crate::config::LogFormat>,
}

/// Arguments of `rogatory deliver`.
#[derive(Debug, Args)]
pub struct DeliverArgs {
    /// The envelope file (from `rogatory envelope seal`).
    pub envelope: PathBuf,
    /// The pinned partner it is addressed to.
    #[arg(long, value_parser = super::keygen::parse_agency)]
    pub to: AgencyId,
    /// The partner's address (default: the first address on its card).
    #[arg(long)]
    pub addr: Option<Multiaddr>,
    /// The data directory.
    #[arg(long, env = "ROGATORY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// The allocator's setting the daemon runs with: mimalloc returns the memory it no longer uses
/// to the system at once (its default delay kept the 64 MiB that unlocking the keys with
/// Argon2id takes, for as long as the node ran). mimalloc reads it from the environment when
/// the process starts, so the daemon starts itself again with it when it is not set.
const ALLOCATOR_SETTING: (&str, &str) = ("MIMALLOC_PURGE_DELAY", "0");

/// Before the daemon starts: a node started with `ROGATORY_PASSPHRASE` would keep the
/// passphrase in its environment (readable in `/proc/PID/environ`, inherited by anything it
/// starts) for as long as it runs, and one started without [`ALLOCATOR_SETTING`] would keep
/// memory it no longer needs. So the command starts itself again in its place (exec: the same
/// process id) without the variable, handing it the passphrase through a pipe on standard input
/// (`--passphrase-file /dev/stdin`), and with the allocator's setting. Returns only if there was
/// nothing to do.
pub(crate) fn prepare_process(passphrase_file: Option<&std::path::Path>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    const VAR: &str = "ROGATORY_PASSPHRASE";
    let pass = std::env::var_os(VAR).filter(|_| passphrase_file.is_none());
    let allocator_set = std::env::var_os(ALLOCATOR_SETTING.0).is_some();
    if pass.is_none() && allocator_set {
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find this program to start it again")?;
    let mut command = std::process::Command::new(exe);
    if !allocator_set {
        command.env(ALLOCATOR_SETTING.0, ALLOCATOR_SETTING.1);
    }
    match pass {
        Some(pass) => {
            let pass = zeroize::Zeroizing::new(pass.into_encoded_bytes());
            if pass.len() > 4096 {
                bail!("{VAR} is longer than a passphrase may be (4096 bytes)");
            }
            // The pipe holds the passphrase until the new program reads it (well within its
            // buffer).
            let (reader, mut writer) =
                std::io::pipe().context("cannot make a pipe for the passphrase")?;
            writer
                .write_all(&pass)
                .context("cannot hand the passphrase over")?;
            drop(writer);
            command
                .arg("--passphrase-file")
                .arg("/dev/stdin")
                .env_remove(VAR)
                .stdin(reader);
        }
        None => {
            // An interactive prompt or a passphrase file: the terminal and standard input stay.
            command.env_remove(VAR);
        }
    }
    let err = command.args(std::env::args_os().skip(1)).exec();
    Err(err).context("cannot start the node again in its place")
}

pub(crate) fn run(a: RunArgs) -> Result<ExitCode> {
    let dir = super::init::data_dir(a.data_dir)?;
    super::backup::refuse_restored(&dir)?;
    let config = crate::config::Config::load(&dir)?;
    init_logs(a.log_format.unwrap_or(config.log.format));
    let parse = |list: &[String], whence: &str| {
        list.iter()
            .map(|s| {
                s.parse::<Multiaddr>()
                    .with_context(|| format!("bad address {s} in {whence}"))
            })
            .collect::<Result<Vec<_>>>()
    };
    let listen = if !a.listen.is_empty() {
        a.listen
    } else if !config.network.listen.is_empty() {
        parse(&config.network.listen, "the configuration")?
    } else {
        let card = crate::keydir::load_card(&dir.join(crate::keydir::CARD_FILE))?;
        parse(&card.body().addresses, "the agency card")?
    };
    if listen.is_empty() {
        bail!("nothing to listen on: give --listen, or set network.listen in the configuration");
    }
    // A restart on new keys reads the keys again: the passphrase given at start is kept.
    crate::keydir::remember_passphrase();
    let mut config = config;
    loop {
        // A runtime per run: dropping it ends every task of the run (and what they hold).
        let outcome = runtime()?.block_on(crate::daemon::run(
            &dir,
            crate::daemon::RunOptions {
                listen: listen.clone(),
                config,
            },
        ))?;
        if outcome == crate::daemon::Outcome::Stopped {
            return Ok(ExitCode::SUCCESS);
        }
        println!("restarting on new keys");
        config = crate::config::Config::load(&dir)?;
    }
}

/// Logs to standard error, human-readable or JSON; the filter comes from `ROGATORY_LOG`.
fn init_logs(format: crate::config::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ROGATORY_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,libp2p=warn,libp2p_swarm=warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        crate::config::LogFormat::Human => b.with_ansi(false).try_init(),
        crate::config::LogFormat::Json => b.json().try_init(),
    };
}

pub(crate) fn deliver(a: DeliverArgs) -> Result<ExitCode> {
    let dir = super::init::data_dir(a.data_dir)?;
    let bytes = files::read_limited(
        &a.envelope,
        rogatory_proto::envelope::DEFAULT_MAX_ENVELOPE_BYTES as u64,
    )?;
    let card = KeyDir::pinned(&dir)?
        .into_iter()
        .find(|c| c.id() == &a.to)
        .with_context(|| format!("{} is not pinned in {}", a.to, dir.display()))?;
    let addr = match a.addr {
        Some(addr) => addr,
        None => card
            .body()
            .addresses
            .first()
            .with_context(|| format!("{}'s card lists no address; give --addr", a.to))?
            .parse()
            .context("bad address on the card")?,
    };
    let id = rogatory_proto::ids::Sha256Digest::of(&bytes);
    // The keys are unlocked once (one passphrase), for the connection and for the records.
    let kd = KeyDir::load(&dir)?;
    let receipt = runtime()?.block_on(crate::net::deliver(&kd, &card, addr, bytes))?;
    let verified =
        verify_receipt(&receipt, &card, Some(&id)).context("the receipt does not verify")?;
    // An envelope sealed here is in the outbox: record the verified receipt durably, with its
    // audit entry; only then is it delivered.
    let store = crate::store::Store::open(&dir).context("cannot open the store")?;
    if let Some(entry) = store
        .outbox_entry(&id.0)?
        // Only the addressee's own receipt settles an envelope: a refusal by another agency
        // it was (wrongly) delivered to leaves it queued.
        .filter(|e| e.state == crate::store::OutboxState::Queued && e.to == a.to)
    {
        let state = match verified.receipt.event {
            ReceiptEvent::Accepted => crate::store::OutboxState::Delivered,
            ReceiptEvent::Rejected => crate::store::OutboxState::Rejected,
        };
        let mut audit = vec![super::envelope::audit_entry(
            &kd.card,
            &entry.case_id,
            rogatory_proto::time::now_unix(),
            rogatory_proto::audit::entry::AuditEvent::ReceiptReceived,
            &a.to,
            id,
        )];
        audit[0].receipt_hash = Some(verified.hash);
        audit[0].reason = verified.receipt.reason.map(u16::from);
        store.record_receipt(
            &super::envelope::signer(&kd),
            entry,
            &receipt,
            state,
            &mut audit,
        )?;
    }
    let path = a.envelope.with_extension("receipt");
    files::write_atomic(&path, &receipt, false, true)?;
    match verified.receipt.event {
        ReceiptEvent::Accepted => {
            println!(
                "delivered: {} accepted envelope {id}; receipt in {}",
                a.to,
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        ReceiptEvent::Rejected => {
            let reason = verified
                .receipt
                .reason
                .map(|r| r.name())
                .unwrap_or("unknown");
            println!(
                "rejected by {}: {reason} ({}); receipt in {}",
                a.to,
                verified.receipt.detail.unwrap_or_default(),
                path.display()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
