//! `rogatory peer …` and `rogatory card export`: pinning partner agencies.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use rogatory_proto::ids::AgencyId;

use crate::keydir::{KeyDir, PEERS_DIR, load_history, own_history, save_partner};
use rogatory_proto::keyhist::Relation;

/// `rogatory peer` subcommands.
#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Pin a partner after comparing the fingerprint of its root with the one the partner read
    /// out to you over a separate channel; a mismatch refuses. Later keys of the partner are
    /// learnt over the network, checked against this root.
    Add {
        /// The file the partner's `card export` wrote (its key history; a bare card also works).
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
            let history = load_history(&card)?;
            let own = own_history(&dir)?;
            if history.agency() == own.agency() {
                bail!("{} is this node's own agency", history.agency());
            }
            if history.check_fingerprint(&fingerprint).is_err() {
                bail!(
                    "fingerprint mismatch for {}: its root's fingerprint is {}, not {fingerprint}; it was not pinned (check with the partner over a separate channel)",
                    history.agency(),
                    history.fingerprint()
                );
            }
            if let Some(old) = KeyDir::partners(&dir)?
                .into_iter()
                .find(|h| h.agency() == history.agency())
            {
                if old.root_id() != history.root_id() {
                    bail!(
                        "{} is already pinned with another root (fingerprint {}); remove it first if the partner really changed its root",
                        history.agency(),
                        old.fingerprint()
                    );
                }
                // Never back: an older history (before a revocation, say) or another one.
                match old.relation(history.statements()) {
                    Relation::Extends { .. } => {}
                    Relation::Same => {
                        println!(
                            "{} is already pinned with this key history",
                            history.agency()
                        );
                        return Ok(ExitCode::SUCCESS);
                    }
                    Relation::Behind => bail!(
                        "{} is pinned with a longer key history than this file's ({} statements, not {}): the file is older; nothing was changed",
                        history.agency(),
                        old.statements().len(),
                        history.statements().len()
                    ),
                    Relation::Fork { seq } => bail!(
                        "the file's key history of {} differs from the one pinned at statement {seq}: two histories for one agency; nothing was changed (ask the partner)",
                        history.agency()
                    ),
                }
            }
            save_partner(&dir, &history)?;
            let card = history.current_card();
            println!(
                "Pinned {} ({}), fingerprint {}{}",
                card.id(),
                card.body().name,
                history.fingerprint(),
                if history.is_bare_card() {
                    " (a bare card: it cannot rotate its keys)"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        PeerCommand::List { data_dir, json } => {
            let dir = super::init::data_dir(data_dir)?;
            let peers = KeyDir::partners(&dir)?;
            if json {
                let trust = crate::trust::Trust::load(&dir)?;
                let list: Vec<_> = peers
                    .iter()
                    .map(|h| {
                        let mut v = super::card::card_json(h);
                        v["key_history_confirmed_at"] = trust
                            .fresh_at(h.agency())
                            .map(rogatory_proto::time::format_unix)
                            .into();
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if peers.is_empty() {
                println!("No partner is pinned in {}.", dir.display());
            } else {
                let trust = crate::trust::Trust::load(&dir)?;
                for h in &peers {
                    let p = h.current_card();
                    let confirmed = trust
                        .fresh_at(p.id())
                        .map(|t| {
                            format!(
                                "key history confirmed {}",
                                rogatory_proto::time::format_unix(t)
                            )
                        })
                        .unwrap_or_else(|| "key history not confirmed since pinned".into());
                    println!(
                        "{:<20} {:<40} {}  {}  {confirmed}",
                        p.id().to_string(),
                        p.body().name,
                        h.fingerprint(),
                        p.body().addresses.join(" ")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PeerCommand::Remove { id, data_dir } => {
            let dir = super::init::data_dir(data_dir)?;
            let paths: Vec<_> = ["keys", "cose", "fresh", "introduced"]
                .iter()
                .map(|x| dir.join(PEERS_DIR).join(format!("{id}.{x}")))
                .filter(|p| p.exists())
                .collect();
            if paths.is_empty() {
                bail!("{id} is not pinned in {}", dir.display());
            }
            for p in paths {
                std::fs::remove_file(&p)?;
            }
            println!("Unpinned {id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
