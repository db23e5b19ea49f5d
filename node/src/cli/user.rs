//! `rogatory user …`: the officials' accounts on this node (spec/PEOPLE.md §2). They are files
//! in the data directory, so these commands work whether the node runs or not; a running node
//! takes a change up at its next request.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
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
    /// Certify an official's own key through the agency's key history (spec/PEOPLE.md §4): a
    /// statement signed by the root naming the official, their role and key, valid for --days.
    /// Partners learn it with the history; `rogatory keys revoke KEY` revokes it.
    Certify {
        /// The account (with a role that signs: issuing-authority, validating-authority,
        /// liaison-officer).
        name: String,
        /// Days the certificate is valid (1 to 366).
        #[arg(long, default_value_t = 365)]
        days: u64,
        #[command(flatten)]
        how: super::keys::Signing,
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
            let history = crate::keydir::own_history(&dir).ok();
            let officer = |a: &people::Account| -> Option<serde_json::Value> {
                let key = a.officer_public_key()?;
                let o = history
                    .as_ref()
                    .and_then(|h| h.officers().iter().find(|o| o.key.id() == key.id()));
                Some(serde_json::json!({
                    "key_id": hex::encode(key.id()),
                    "certificate": o.map(super::card::officer_json),
                }))
            };
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
                            "officer": officer(a),
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
        UserCommand::Certify { name, days, how } => certify(&name, days, &how),
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

/// `user certify`: the official's key certified by the root, in a statement of the agency's key
/// history (signed here, or prepared for the root's holders).
fn certify(name: &str, days: u64, how: &super::keys::Signing) -> Result<ExitCode> {
    use rogatory_proto::keyhist::{OfficerCert, statement};
    crate::keydir::remember_passphrase();
    let dir = super::init::data_dir(how.data_dir.clone())?;
    if let Some(file) = &how.apply {
        return super::keys::apply(&dir, file);
    }
    if !(1..=366).contains(&days) {
        anyhow::bail!("--days {days}: a certificate is valid for 1 to 366 days");
    }
    let account = people::list(&dir)?
        .into_iter()
        .find(|a| a.name == name)
        .with_context(|| format!("no account {name} in {}", dir.display()))?;
    if account.disabled_at.is_some() {
        anyhow::bail!("the account {name} is disabled: its key is not certified");
    }
    let (Some(key), Some(role)) = (account.officer_public_key(), account.officer_role()) else {
        anyhow::bail!(
            "{name} has no role that signs (issuing-authority, validating-authority, liaison-officer): nothing to certify"
        );
    };
    let h = crate::keydir::own_history(&dir)?;
    if h.is_bare_card() {
        anyhow::bail!(
            "{} has no key history (its card is its own root): it cannot certify officials",
            h.agency()
        );
    }
    if h.officers().iter().any(|o| o.key.id() == key.id()) {
        anyhow::bail!(
            "{name}'s key is certified already (a key is certified once; see `rogatory user list`)"
        );
    }
    super::keys::before_preparing(&dir, how)?;
    let now = rogatory_proto::time::now_unix();
    let cert = OfficerCert {
        name: name.to_string(),
        role,
        key: key.to_cose_key(),
        valid_from: now,
        valid_until: now + days * 86_400,
    };
    let body = h.next_officer(cert, now);
    println!(
        "Certifying {name} as {} with key {}… for {days} days",
        role.as_str(),
        &hex::encode(key.id())[..16]
    );
    super::keys::finish(&dir, h, vec![statement::sign(&body, &[])?], how)
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
