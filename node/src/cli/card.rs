//! `rogatory card …`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use rogatory_proto::card::{AgencyCard, KeyUse, Role};
use rogatory_proto::time::format_unix;

use crate::files;
use crate::keydir::{CARD_FILE, load_card};

/// `rogatory card` subcommands.
#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Check an agency card's signature and show its content, fingerprint and the C2SP
    /// verifier key of its audit checkpoints.
    Show {
        /// The card file (or a key directory).
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write this node's card for partners (stdout, or --out), with its fingerprint on stderr.
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
            let card = load_card(&super::card_path(file))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&card_json(&card))?);
            } else {
                print_card(&card);
            }
            Ok(ExitCode::SUCCESS)
        }
        CardCommand::Export { data_dir, out } => export(data_dir, out),
    }
}

pub(crate) fn card_json(card: &AgencyCard) -> serde_json::Value {
    let b = card.body();
    serde_json::json!({
        "id": b.id.as_str(),
        "name": b.name,
        "country": b.country,
        "roles": b.roles.iter().map(role_name).collect::<Vec<_>>(),
        "issued_at": format_unix(b.issued_at),
        "fingerprint": card.fingerprint(),
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

fn print_card(card: &AgencyCard) {
    let b = card.body();
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.join(", ")
        }
    };
    println!("Agency card: signature OK");
    println!("  Agency:          {}", b.id);
    println!("  Name:            {}", b.name);
    println!("  Country:         {}", b.country);
    println!(
        "  Roles:           {}",
        b.roles.iter().map(role_name).collect::<Vec<_>>().join(", ")
    );
    println!("  Issued:          {}", format_unix(b.issued_at));
    println!("  Fingerprint:     {}", card.fingerprint());
    for k in &b.keys {
        let (alg, id) = match k.usage {
            KeyUse::Sign => ("Ed25519 signing key   ", card.signing_key().id()),
            KeyUse::Encrypt => ("X25519 encryption key ", card.encryption_key().id()),
        };
        let until = k
            .valid_until
            .map(format_unix)
            .unwrap_or_else(|| "no end".into());
        println!(
            "  {alg} id {}… valid {} – {until}",
            &hex::encode(id)[..16],
            format_unix(k.valid_from)
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
    let card = load_card(&dir.join(CARD_FILE))?;
    match out {
        Some(path) => {
            files::write_atomic(&path, card.as_bytes(), false, false)?;
            eprintln!("Wrote the card of {} to {}", card.id(), path.display());
        }
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(card.as_bytes())?;
        }
    }
    eprintln!(
        "Fingerprint (read it to the partner over a separate channel): {}",
        card.fingerprint()
    );
    Ok(ExitCode::SUCCESS)
}
