//! `rogatory keygen`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use rogatory_proto::card::{CardDetails, Role};
use rogatory_proto::ids::AgencyId;

use crate::keydir::{self, KeyDir};

/// Arguments of `rogatory keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Agency id: ISO 3166-1 alpha-2 country code, a dot, the agency (e.g. FR.DACG).
    #[arg(long, value_parser = parse_agency)]
    pub agency: AgencyId,
    /// The agency's display name, as partners will see it.
    #[arg(long)]
    pub name: String,
    /// Directory to create for the keys and the card (refused if it already holds keys).
    #[arg(long)]
    pub out: PathBuf,
    /// Roles (repeatable): central-authority, police-liaison, prosecutor, court, extradition,
    /// contact-point247.
    #[arg(long = "role", value_name = "ROLE", value_parser = parse_role, default_value = "central-authority")]
    pub roles: Vec<Role>,
    /// libp2p multiaddrs the agency's node will listen on (repeatable).
    #[arg(long = "address")]
    pub addresses: Vec<String>,
    /// Languages accepted, BCP 47 (repeatable).
    #[arg(long = "language", default_values_t = ["en".to_string()])]
    pub languages: Vec<String>,
    /// Legal bases accepted (repeatable), e.g. "UNTOC", "reciprocity".
    #[arg(long = "legal-basis")]
    pub legal_bases: Vec<String>,
}

/// Parses a role by its wire name (the card format's own names, so the two cannot drift).
pub(crate) fn parse_role(s: &str) -> Result<Role, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        format!(
            "`{s}` is not a role (central-authority, police-liaison, prosecutor, court, \
             extradition, contact-point247)"
        )
    })
}

pub(crate) fn parse_agency(s: &str) -> Result<AgencyId, String> {
    AgencyId::new(s).map_err(|e| e.to_string())
}

pub(crate) fn run(a: KeygenArgs) -> Result<ExitCode> {
    let mut roles = a.roles;
    roles.sort();
    roles.dedup();
    let details = CardDetails {
        id: a.agency,
        name: a.name,
        roles,
        addresses: a.addresses,
        languages: a.languages,
        legal_bases: a.legal_bases,
        issued_at: rogatory_proto::time::now_unix(),
    };
    let kd = KeyDir::create(&a.out, details).context("keygen failed")?;
    println!("Created keys for {} in {}", kd.card.id(), a.out.display());
    println!(
        "  secret keys:  {} (mode 0600; keep it secret)",
        a.out.join(keydir::SECRET_KEYS_FILE).display()
    );
    println!(
        "  agency card:  {} (give this to partner agencies)",
        a.out.join(keydir::CARD_FILE).display()
    );
    println!("  fingerprint:  {}", kd.card.fingerprint());
    println!(
        "Read the fingerprint out to each partner over a separate channel (telephone, in person)."
    );
    Ok(ExitCode::SUCCESS)
}
