//! `rogatory directory …`: every agency this node knows, as its key histories say (spec/KEYS.md
//! §8): who it is, what it does, where it listens, its root, its keys and their freshness.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use rogatory_proto::ids::AgencyId;
use rogatory_proto::keyhist::KeyHistory;
use rogatory_proto::time::format_unix;

use crate::files;
use crate::keydir::{KeyDir, own_history};
use crate::trust::{Trust, Witnessed, own_witness_notes};

/// `rogatory directory` subcommands.
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// One line per agency this node knows (itself and its pinned partners): id, name, roles,
    /// root fingerprint, current keys, and when its key history was last confirmed.
    List {
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Everything known of one agency: its card, legal bases, languages, addresses, root,
    /// every statement of its key history and every key with its state.
    Show {
        /// The agency id.
        #[arg(value_parser = super::keygen::parse_agency)]
        id: AgencyId,
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Introduce a partner this node pinned to the others (spec/KEYS.md §7.7): sign, with this
    /// agency's current key, that ID's root is the one pinned here; give the file to ID, which
    /// serves it to nodes that take this agency's introductions (`trust.introducers`).
    Introduce {
        /// The agency introduced (pinned here).
        #[arg(value_parser = super::keygen::parse_agency)]
        id: AgencyId,
        /// Where to write the introduction (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Keep an introduction of this node's agency made by another (`directory introduce`), to
    /// serve it to nodes that have not pinned this agency; a running node restarts to serve it.
    AddIntroduction {
        /// The introduction file.
        file: PathBuf,
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Write the directory as JSON (for a case-management system, or another agency's
    /// records): every agency with its card and key state. Nothing secret is in it.
    Export {
        /// The file to write (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// One agency of the directory, as JSON.
fn entry(dir: &std::path::Path, h: &KeyHistory, own: bool, trust: &Trust) -> serde_json::Value {
    let mut v = super::card::card_json(h);
    let witnessed: Vec<Witnessed> = if own {
        own_witness_notes(dir, h, trust)
            .into_iter()
            .map(|(_, w)| Witnessed {
                witness: w.signer.to_string(),
                statements: w.size,
                at: w.at,
            })
            .collect()
    } else {
        trust.witnessed(h.agency())
    };
    v["witnessed_by"] = witnessed
        .iter()
        .map(|w| {
            serde_json::json!({
                "witness": w.witness,
                "statements": w.statements,
                "at": format_unix(w.at),
            })
        })
        .collect();
    v["this_node"] = own.into();
    v["introduced_by"] = trust
        .introduced_by(h.agency())
        .map(|by| serde_json::json!(by))
        .unwrap_or(serde_json::Value::Null);
    v["key_history_confirmed_at"] = if own {
        serde_json::Value::Null
    } else {
        trust.fresh_at(h.agency()).map(format_unix).into()
    };
    v
}

fn entries(dir: &std::path::Path) -> Result<Vec<serde_json::Value>> {
    let trust = Trust::load(dir)?;
    let mut out = vec![entry(dir, &own_history(dir)?, true, &trust)];
    for h in KeyDir::partners(dir)? {
        out.push(entry(dir, &h, false, &trust));
    }
    Ok(out)
}

pub(crate) fn run(c: DirectoryCommand) -> Result<ExitCode> {
    match c {
        DirectoryCommand::List { data_dir, json } => {
            let dir = super::init::data_dir(data_dir)?;
            let all = entries(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(ExitCode::SUCCESS);
            }
            for v in &all {
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                let roles: Vec<&str> = v["roles"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
                    .unwrap_or_default();
                let confirmed = if v["this_node"] == true {
                    "this node".to_string()
                } else {
                    v["key_history_confirmed_at"]
                        .as_str()
                        .map(|t| format!("confirmed {t}"))
                        .unwrap_or_else(|| "not confirmed since pinned".into())
                };
                let witnesses = v["witnessed_by"].as_array().map_or(0, Vec::len);
                println!(
                    "{:<20} {:<32} {:<36} {}  {}, witnessed by {witnesses}",
                    s("id"),
                    s("name"),
                    roles.join(","),
                    s("fingerprint"),
                    confirmed
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        DirectoryCommand::Show { id, data_dir, json } => {
            let dir = super::init::data_dir(data_dir)?;
            let all = entries(&dir)?;
            let Some(v) = all.iter().find(|v| v["id"] == id.as_str()) else {
                bail!(
                    "{id} is not in the directory of {} (pin it with `rogatory peer add`)",
                    dir.display()
                );
            };
            if json {
                println!("{}", serde_json::to_string_pretty(v)?);
            } else {
                let h = if v["this_node"] == true {
                    own_history(&dir)?
                } else {
                    KeyDir::partners(&dir)?
                        .into_iter()
                        .find(|h| h.agency() == &id)
                        .context("the partner's history")?
                };
                let list = |k: &str| {
                    v[k].as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default()
                };
                println!(
                    "{} ({})",
                    v["id"].as_str().unwrap_or_default(),
                    v["name"].as_str().unwrap_or_default()
                );
                println!("  roles:        {}", list("roles"));
                println!("  legal bases:  {}", list("legal_bases"));
                println!("  languages:    {}", list("languages"));
                println!("  addresses:    {}", list("addresses"));
                if let Some(t) = v["key_history_confirmed_at"].as_str() {
                    println!("  key history confirmed {t}");
                }
                if let Some(by) = v["introduced_by"].as_array() {
                    let by: Vec<&str> = by.iter().filter_map(|x| x.as_str()).collect();
                    println!("  pinned on the introductions of {}", by.join(", "));
                }
                let witnessed = v["witnessed_by"].as_array().cloned().unwrap_or_default();
                if witnessed.is_empty() {
                    println!("  key history witnessed by: no partner yet");
                }
                for w in witnessed {
                    println!(
                        "  key history witnessed by {}: {} statement(s), cosigned {}",
                        w["witness"].as_str().unwrap_or_default(),
                        w["statements"],
                        w["at"].as_str().unwrap_or_default(),
                    );
                }
                super::keys::print_history(&h);
            }
            Ok(ExitCode::SUCCESS)
        }
        DirectoryCommand::Introduce { id, out, data_dir } => {
            let dir = super::init::data_dir(data_dir)?;
            let kd = KeyDir::load(&dir)?;
            let h = KeyDir::partners(&dir)?
                .into_iter()
                .find(|h| h.agency() == &id)
                .with_context(|| {
                    format!(
                        "{id} is not pinned here: pin it (by fingerprint) before introducing it"
                    )
                })?;
            let bytes = rogatory_proto::keyhist::intro::introduce(
                &kd.history,
                &kd.keys.signing,
                &h,
                rogatory_proto::time::now_unix(),
            )?;
            files::write_atomic(&out, &bytes, false, false)?;
            println!(
                "{} introduces {id} (root fingerprint {}): written to {}; give it to {id}",
                kd.history.agency(),
                h.fingerprint(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        DirectoryCommand::AddIntroduction { file, data_dir } => {
            let dir = super::init::data_dir(data_dir)?;
            let own = own_history(&dir)?;
            let bytes = files::read_limited(
                &file,
                rogatory_proto::keyhist::intro::MAX_INTRODUCTION_BYTES as u64,
            )?;
            let i = rogatory_proto::keyhist::intro::read(&bytes)?;
            if &i.agency != own.agency() || i.root.as_slice() != own.root_id().as_slice() {
                bail!(
                    "{} introduces {}, not this agency with its root {}",
                    i.introducer,
                    i.agency,
                    own.fingerprint()
                );
            }
            let d = dir.join(crate::keydir::INTRODUCTIONS_DIR);
            files::create_private_dir(&d)?;
            files::write_atomic(
                &d.join(format!("{}.cose", i.introducer)),
                &bytes,
                false,
                true,
            )?;
            println!("Kept {}'s introduction of {}", i.introducer, i.agency);
            if let Ok(c) = crate::client::Client::connect(&dir) {
                let _: serde_json::Value = c.post("/v1/keys/reload", &serde_json::json!({}))?;
                println!("The running node restarts to serve it.");
            }
            Ok(ExitCode::SUCCESS)
        }
        DirectoryCommand::Export { out, data_dir } => {
            let dir = super::init::data_dir(data_dir)?;
            let all = entries(&dir)?;
            let doc = serde_json::json!({
                "exported_at": format_unix(rogatory_proto::time::now_unix()),
                "agencies": all,
            });
            files::write_atomic(
                &out,
                serde_json::to_string_pretty(&doc)?.as_bytes(),
                false,
                false,
            )?;
            println!("Wrote {} agencies to {}", all.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
