//! `rogatory card …`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use rogatory_proto::card::{KeyUse, Role};
use rogatory_proto::keyhist::{KeyHistory, KeyRecord};
use rogatory_proto::time::format_unix;

use crate::files;

/// `rogatory card` subcommands.
#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Check an agency's key history (or bare card) and show its current card, its root
    /// fingerprint, every key it ever listed with its state, and the C2SP verifier key of its
    /// audit checkpoints.
    Show {
        /// The file `card export` wrote, a bare card, or a data directory.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write this node's key history (its card, certified by its root) for partners (stdout, or
    /// --out), with the root fingerprint on stderr.
    Export {
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn role_name(r: &Role) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(crate) fn run(c: CardCommand) -> Result<ExitCode> {
    match c {
        CardCommand::Show { file, json } => {
            let history = if file.is_dir() {
                crate::keydir::own_history(&file)?
            } else {
                crate::keydir::load_history(&file)?
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&card_json(&history))?);
            } else {
                print_card(&history);
            }
            Ok(ExitCode::SUCCESS)
        }
        CardCommand::Export { data_dir, out } => export(data_dir, out),
    }
}

pub(crate) fn card_json(history: &KeyHistory) -> serde_json::Value {
    let card = history.current_card();
    let b = card.body();
    let (threshold, root) = history.root();
    serde_json::json!({
        "id": b.id.as_str(),
        "name": b.name,
        "country": b.country,
        "roles": b.roles.iter().map(role_name).collect::<Vec<_>>(),
        "issued_at": format_unix(b.issued_at),
        "fingerprint": history.fingerprint(),
        "root": {
            "threshold": threshold,
            "keys": root.iter().map(|k| hex::encode(k.id())).collect::<Vec<_>>(),
        },
        "key_history": if history.is_bare_card() {
            serde_json::Value::Null
        } else {
            serde_json::json!({
                "statements": history.statements().len(),
                "head": history.head().to_hex(),
            })
        },
        "keys": history.keys().iter().map(key_json).collect::<Vec<_>>(),
        "officers": history.officers().iter().map(officer_json).collect::<Vec<_>>(),
        "signing_key": {
            "algorithm": "Ed25519",
            "public_key": hex::encode(card.signing_key().as_bytes()),
            "key_id": hex::encode(card.signing_key().id()),
        },
        "encryption_key": {
            "algorithm": "X25519",
            "public_key": hex::encode(card.encryption_key().as_bytes()),
            "key_id": hex::encode(card.encryption_key().id()),
        },
        "addresses": b.addresses,
        "languages": b.languages,
        "legal_bases": b.legal_bases,
        "note_verifier_key": card.note_verifier_key(),
    })
}

/// One key of a history, as JSON.
pub(crate) fn key_json(k: &KeyRecord) -> serde_json::Value {
    serde_json::json!({
        "key_id": hex::encode(k.kid),
        "use": match k.usage { KeyUse::Sign => "sign", KeyUse::Encrypt => "encrypt" },
        "valid_from": format_unix(k.from),
        "valid_until": k.until.map(format_unix),
        "state": key_state(k),
        "revoked": k.revoked.as_ref().map(|r| serde_json::json!({
            "reason": r.reason.as_str(),
            "effective": format_unix(r.effective),
            "statement": r.seq,
        })),
    })
}

/// One official certified by a history, as JSON (spec/KEYS.md §4.7).
pub(crate) fn officer_json(o: &rogatory_proto::keyhist::OfficerRecord) -> serde_json::Value {
    serde_json::json!({
        "name": o.name,
        "role": o.role.as_str(),
        "key_id": hex::encode(o.key.id()),
        "valid_from": format_unix(o.from),
        "valid_until": format_unix(o.until),
        "state": if o.revoked.is_some() { "revoked" } else { "certified" },
        "revoked": o.revoked.as_ref().map(|r| serde_json::json!({
            "reason": r.reason.as_str(),
            "effective": format_unix(r.effective),
            "statement": r.seq,
        })),
    })
}

/// A key's state in words: current, replaced, revoked.
pub(crate) fn key_state(k: &KeyRecord) -> &'static str {
    match (&k.revoked, k.until) {
        (Some(_), _) => "revoked",
        (None, Some(_)) => "replaced",
        (None, None) => "current",
    }
}

fn print_card(history: &KeyHistory) {
    let card = history.current_card();
    let b = card.body();
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.join(", ")
        }
    };
    if history.is_bare_card() {
        println!("Agency card: signature OK (a bare card: no key history, its key is its root)");
    } else {
        let (threshold, root) = history.root();
        println!(
            "Key history: {} statement(s), every signature OK; root {threshold} of {} key(s)",
            history.statements().len(),
            root.len()
        );
    }
    println!("  Agency:          {}", b.id);
    println!("  Name:            {}", b.name);
    println!("  Country:         {}", b.country);
    println!(
        "  Roles:           {}",
        b.roles.iter().map(role_name).collect::<Vec<_>>().join(", ")
    );
    println!("  Issued:          {}", format_unix(b.issued_at));
    println!("  Fingerprint:     {} (of the root)", history.fingerprint());
    for k in history.keys() {
        let alg = match k.usage {
            KeyUse::Sign => "Ed25519 signing key   ",
            KeyUse::Encrypt => "X25519 encryption key ",
        };
        let until = k.until.map(format_unix).unwrap_or_else(|| "no end".into());
        let revoked = k
            .revoked
            .as_ref()
            .map(|r| {
                format!(
                    ", REVOKED ({}, effective {})",
                    r.reason.as_str(),
                    format_unix(r.effective)
                )
            })
            .unwrap_or_default();
        println!(
            "  {alg} id {}… valid {} – {until} [{}]{revoked}",
            &hex::encode(k.kid)[..16],
            format_unix(k.from),
            key_state(k)
        );
    }
    println!("  Addresses:       {}", list(&b.addresses));
    println!("  Languages:       {}", list(&b.languages));
    println!("  Legal bases:     {}", list(&b.legal_bases));
    println!("  Checkpoint verifier key (C2SP signed-note):");
    println!("    {}", card.note_verifier_key());
}

/// `rogatory card export`.
fn export(data_dir: Option<PathBuf>, out: Option<PathBuf>) -> Result<ExitCode> {
    let dir = super::init::data_dir(data_dir)?;
    let history = crate::keydir::own_history(&dir)?;
    let bytes = history.to_file();
    match out {
        Some(path) => {
            files::write_atomic(&path, &bytes, false, false)?;
            eprintln!(
                "Wrote the key history and card of {} to {}",
                history.agency(),
                path.display()
            );
        }
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    eprintln!(
        "Fingerprint (read it to the partner over a separate channel): {}",
        history.fingerprint()
    );
    Ok(ExitCode::SUCCESS)
}
