//! `rogatory user …`: the officials' accounts on this node (spec/PEOPLE.md §2). They are files
//! in the data directory, so these commands work whether the node runs or not; a running node
//! takes a change up at its next request.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::files;
use crate::people::{self, Role};

/// `rogatory user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Make an account: its token is printed once (or written to --token-out), and the official
    /// gives it to the command line as ROGATORY_TOKEN_FILE. Once any account exists, the node's
    /// own token only administers the node.
    Add {
        /// The official's name, recorded in the audit log (lower-case letters, digits, . _ -).
        name: String,
        /// A role (repeatable): clerk, issuing-authority, validating-authority,
        /// liaison-officer, auditor, administrator.
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
        /// Let the account read content although its roles do not (an auditor granted it).
        #[arg(long)]
        grant_content: bool,
        /// Write the token to this file (mode 0600, must not exist) instead of printing it.
        #[arg(long)]
        token_out: Option<PathBuf>,
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Every account: name, roles, what it may do, when made, whether disabled.
    List {
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Who the running node takes you for (your ROGATORY_TOKEN_FILE, else the node's own
    /// token), and what you may do.
    Whoami {
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Disable an account (a leaver, a lost token): its token is refused from the next request
    /// on; the account stays, so the audit log's names keep their meaning.
    Disable {
        /// The account.
        name: String,
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

pub(crate) fn run(c: UserCommand) -> Result<ExitCode> {
    match c {
        UserCommand::Add {
            name,
            roles,
            grant_content,
            token_out,
            data_dir,
        } => {
            let dir = super::init::data_dir(data_dir)?;
            if let Some(out) = &token_out
                && std::fs::symlink_metadata(out).is_ok()
            {
                anyhow::bail!("{} already exists; nothing was made", out.display());
            }
            let first = people::list(&dir)?.is_empty();
            let (account, token) = people::add(&dir, &name, &roles, grant_content)?;
            match &token_out {
                Some(out) => {
                    files::write_atomic(out, token.as_bytes(), true, false)?;
                    println!("Made the account {name}; its token is in {}", out.display());
                }
                None => {
                    println!("Made the account {name}. Its token, shown once:");
                    println!("{token}");
                }
            }
            println!("  roles: {}", roles_text(&account.roles));
            if first {
                println!(
                    "This is the first account: the node's own token ({}) now only administers the node.",
                    crate::api::TOKEN_FILE
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::List { data_dir, json } => {
            let dir = super::init::data_dir(data_dir)?;
            let all = people::list(&dir)?;
            if json {
                let v: Vec<serde_json::Value> = all
                    .iter()
                    .map(|a| {
                        serde_json::json!({
                            "name": a.name,
                            "roles": a.roles,
                            "permissions": a.permissions(),
                            "content_granted": a.content,
                            "created_at": rogatory_proto::time::format_unix(a.created_at),
                            "disabled_at": a.disabled_at.map(rogatory_proto::time::format_unix),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            if all.is_empty() {
                println!(
                    "No accounts: the node's own token ({}) may do everything.",
                    crate::api::TOKEN_FILE
                );
            }
            for a in &all {
                println!(
                    "{:<20} {:<40} {}{}",
                    a.name,
                    roles_text(&a.roles),
                    if a.content { "content granted, " } else { "" },
                    match a.disabled_at {
                        Some(t) => format!("disabled {}", rogatory_proto::time::format_unix(t)),
                        None =>
                            format!("since {}", rogatory_proto::time::format_unix(a.created_at)),
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::Whoami { data_dir, json } => {
            let dir = super::init::data_dir(data_dir)?;
            let me: crate::api::wire::Me = crate::client::Client::connect(&dir)?.get("/v1/me")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&me)?);
            } else {
                println!(
                    "{}{}: {}; may {}",
                    me.name.as_deref().unwrap_or("(no name)"),
                    if me.account {
                        ""
                    } else {
                        " (the node's own token)"
                    },
                    roles_text(&me.roles),
                    serde_json::to_string(&me.permissions)?
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::Disable { name, data_dir } => {
            let dir = super::init::data_dir(data_dir)?;
            let a = people::disable(&dir, &name)?;
            println!(
                "The account {} is disabled (since {}); its token is refused.",
                a.name,
                rogatory_proto::time::format_unix(a.disabled_at.unwrap_or_default())
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
