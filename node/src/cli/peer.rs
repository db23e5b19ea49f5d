//! `rogatory peer …` and `rogatory card export`: pinning partner agencies.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use rogatory_proto::card::normalize_fingerprint;
use rogatory_proto::ids::AgencyId;

use crate::files;
use crate::keydir::{CARD_FILE, KeyDir, PEERS_DIR, load_card};

/// `rogatory peer` subcommands.
#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Pin a partner's card after comparing its fingerprint with the one the partner read out
    /// to you over a separate channel; a mismatch refuses.
    Add {
        /// The partner's card file.
        card: PathBuf,
        /// The fingerprint the partner gave you (case, spaces and dashes do not matter).
        #[arg(long)]
        fingerprint: String,
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// List pinned partners.
    List {
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Unpin a partner: it can no longer be sent to or trusted.
    Remove {
        /// The agency id.
        #[arg(value_parser = super::keygen::parse_agency)]
        id: AgencyId,
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

pub(crate) fn run(c: PeerCommand) -> Result<ExitCode> {
    match c {
        PeerCommand::Add {
            card,
            fingerprint,
            data_dir,
        } => {
            let dir = super::init::data_dir(data_dir)?;
            let card = load_card(&super::card_path(card))?;
            let own = load_card(&dir.join(CARD_FILE))?;
            if card.id() == own.id() {
                bail!("{} is this node's own agency", card.id());
            }
            let given = normalize_fingerprint(&fingerprint);
            let actual = normalize_fingerprint(&card.fingerprint());
            if given.len() < 32 || !actual.starts_with(&given) {
                bail!(
                    "fingerprint mismatch for {}: the card's fingerprint is {}, not {fingerprint}; the card was not pinned (check with the partner over a separate channel)",
                    card.id(),
                    card.fingerprint()
                );
            }
            let path = dir.join(PEERS_DIR).join(format!("{}.cose", card.id()));
            if path.exists() {
                let old = load_card(&path)?;
                if old.signing_key() != card.signing_key() {
                    bail!(
                        "{} is already pinned with another key (fingerprint {}); remove it first if the partner really changed keys",
                        card.id(),
                        old.fingerprint()
                    );
                }
            }
            files::create_private_dir(&dir.join(PEERS_DIR))?;
            files::write_atomic(&path, card.as_bytes(), false, true)?;
            println!(
                "Pinned {} ({}), fingerprint {}",
                card.id(),
                card.body().name,
                card.fingerprint()
            );
            Ok(ExitCode::SUCCESS)
        }
        PeerCommand::List { data_dir, json } => {
            let dir = super::init::data_dir(data_dir)?;
            let peers = KeyDir::pinned(&dir)?;
            if json {
                let list: Vec<_> = peers.iter().map(super::card::card_json).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if peers.is_empty() {
                println!("No partner is pinned in {}.", dir.display());
            } else {
                for p in &peers {
                    println!(
                        "{:<20} {:<40} {}  {}",
                        p.id().to_string(),
                        p.body().name,
                        p.fingerprint(),
                        p.body().addresses.join(" ")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PeerCommand::Remove { id, data_dir } => {
            let dir = super::init::data_dir(data_dir)?;
            let path = dir.join(PEERS_DIR).join(format!("{id}.cose"));
            if !path.exists() {
                bail!("{id} is not pinned in {}", dir.display());
            }
            std::fs::remove_file(&path)?;
            println!("Unpinned {id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
