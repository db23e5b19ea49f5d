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
    #[arg(long = "role", value_enum, default_values_t = [RoleArg::CentralAuthority])]
    pub roles: Vec<RoleArg>,
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

/// Roles on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// Central authority for mutual legal assistance.
    CentralAuthority,
    /// Police liaison office.
    PoliceLiaison,
    /// Prosecutor's office.
    Prosecutor,
    /// Court.
    Court,
    /// Extradition unit.
    Extradition,
    /// 24/7 contact point.
    ContactPoint247,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::CentralAuthority => Role::CentralAuthority,
            RoleArg::PoliceLiaison => Role::PoliceLiaison,
            RoleArg::Prosecutor => Role::Prosecutor,
            RoleArg::Court => Role::Court,
            RoleArg::Extradition => Role::Extradition,
            RoleArg::ContactPoint247 => Role::ContactPoint247,
        }
    }
}

impl std::fmt::Display for RoleArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        match self.to_possible_value() {
            Some(v) => f.write_str(v.get_name()),
            None => Ok(()),
        }
    }
}

pub(crate) fn parse_agency(s: &str) -> Result<AgencyId, String> {
    AgencyId::new(s).map_err(|e| e.to_string())
}

pub(crate) fn run(a: KeygenArgs) -> Result<ExitCode> {
    let mut roles: Vec<Role> = a.roles.into_iter().map(Role::from).collect();
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
