//! `rogatory init`: an agency node's data directory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use rogatory_proto::card::{CardDetails, Role};
use rogatory_proto::ids::AgencyId;

use crate::files;
use crate::keydir::{KeyDir, PEERS_DIR, Protection};

/// File name of the node's configuration.
pub(crate) const CONFIG_FILE: &str = crate::config::CONFIG_FILE;

/// Arguments of `rogatory init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Agency id: ISO 3166-1 alpha-2 country code, a dot, the agency (e.g. FR.DACG).
    #[arg(long, value_parser = super::keygen::parse_agency)]
    pub agency: AgencyId,
    /// The agency's display name, as partners will see it.
    #[arg(long)]
    pub name: String,
    /// The data directory (default: `ROGATORY_DATA_DIR`, else `rogatory` under the user's data
    /// directory). It must not hold keys already.
    #[arg(long, env = "ROGATORY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// libp2p multiaddrs the node listens on (repeatable; TCP and QUIC); written on the card,
    /// where partners find them.
    #[arg(long = "listen", default_values_t = [
        "/ip4/0.0.0.0/tcp/4100".to_string(),
        "/ip4/0.0.0.0/udp/4100/quic-v1".to_string(),
    ])]
    pub listen: Vec<String>,
    /// Roles (repeatable).
    #[arg(long = "role", value_name = "ROLE", value_parser = super::keygen::parse_role, default_value = "central-authority")]
    pub roles: Vec<Role>,
    /// Languages accepted, BCP 47 (repeatable).
    #[arg(long = "language", default_values_t = ["en".to_string()])]
    pub languages: Vec<String>,
    /// Legal bases accepted (repeatable).
    #[arg(long = "legal-basis")]
    pub legal_bases: Vec<String>,
    /// Keep the secret keys unencrypted (mode 0600). For tests only: anyone who copies the file
    /// can act as the agency.
    #[arg(long)]
    pub insecure_plaintext_keys: bool,
    /// Write the agency's root key to this file (on removable media, say) instead of into the
    /// data directory; the node never needs it to run (spec/KEYS.md §2).
    #[arg(long, value_name = "FILE")]
    pub root_key_out: Option<PathBuf>,
}

/// The data directory: the flag or `ROGATORY_DATA_DIR`, else the user's data directory.
pub(crate) fn data_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(d) => Ok(d),
        None => dirs::data_dir()
            .map(|d| d.join("rogatory"))
            .context("no data directory: give --data-dir or set ROGATORY_DATA_DIR"),
    }
}

fn config_text(a: &InitArgs) -> String {
    let listen = a
        .listen
        .iter()
        .map(|l| format!("{l:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "# Rogatory node configuration for {agency}.\n\
         # Every setting is optional; the value shown is the default.\n\
         \n\
         [network]\n\
         # libp2p addresses the node listens on (also written on the agency card).\n\
         listen = [{listen}]\n\
         \n\
         [api]\n\
         # The local HTTP API, for the command line on this machine only: a loopback address.\n\
         # Port 0 takes any free port; the address bound is written to api.addr while the node\n\
         # runs, and the bearer token is in api-token (mode 0600).\n\
         bind = \"127.0.0.1:0\"\n\
         \n\
         [limits]\n\
         # Largest envelope accepted, in bytes.\n\
         max_envelope_bytes = {max}\n\
         # Jobs waiting for the store worker; beyond them a partner's envelope is left\n\
         # unanswered (its node sends it again) and local requests wait.\n\
         store_queue = 1024\n\
         # Threads that open partners' envelopes in front of the store worker (default: the\n\
         # machine's cores, at most 4; 0: the worker opens them itself).\n\
         # open_threads = 2\n\
         \n\
         [delivery]\n\
         # After a failed delivery the partner is retried after this many milliseconds, doubled\n\
         # at each further failure (with jitter), up to max_backoff_secs apart; a message is\n\
         # retried for as long as it takes.\n\
         initial_backoff_ms = 500\n\
         max_backoff_secs = 3600\n\
         # Envelopes on the wire to one partner at a time.\n\
         in_flight = 64\n\
         \n\
         [evidence]\n\
         # While evidence arrives its file is synced, and the progress recorded, every this\n\
         # many MiB; a transfer interrupted by a restart of either node resumes from there.\n\
         sync_every_mib = 64\n\
         # Items received at once (a writer thread and an open file each); the others wait.\n\
         max_active_items = 4\n\
         # A partner's manifest may list at most this many items, and a case hold this many\n\
         # (larger manifests are refused whole, as over-quota).\n\
         max_items_per_manifest = 1000\n\
         max_items_per_case = 10000\n\
         # Content fetched here per case and per partner (every case together), in GiB, and\n\
         # disk space evidence never takes, in MiB: items beyond them are refused and the\n\
         # holder is told why.\n\
         quota_per_case_gib = 512\n\
         quota_per_partner_gib = 2048\n\
         keep_free_mib = 1024\n\
         \n\
         [trust]\n\
         # A partner whose key history (spec/KEYS.md) was last confirmed longer ago than this is\n\
         # flagged as stale; past hold_after_secs, messages to it wait until it confirms it again.\n\
         # This node signs its own again, and asks its partners for theirs, every refresh_secs.\n\
         max_key_age_secs = 604800\n\
         hold_after_secs = 2592000\n\
         refresh_secs = 21600\n\
         # Partners whose introductions of a new agency this node takes, and how many must\n\
         # introduce it for it to be pinned without a fingerprint (none: fingerprints only).\n\
         introducers = []\n\
         introductions_needed = 0\n\
         \n\
         [approval]\n\
         # Message types an official without the issuing-authority role may only draft: an\n\
         # issuing authority other than the drafter approves them before they are sealed\n\
         # (rogatory request approve). Applies once officials have accounts (rogatory user add).\n\
         required = [\"mla-request\"]\n\
         # Types an official whose key the agency certified (rogatory user certify) signs in\n\
         # their own name; and types taken from partners only signed by one of their officials,\n\
         # or only validated by a validating authority too (refused otherwise: officer-not-valid).\n\
         signed = [\"mla-request\", \"preservation-request\"]\n\
         # Types that, once an issuing authority signed them, wait for a validating authority's\n\
         # countersignature before they are sent (rogatory request countersign).\n\
         validated = []\n\
         partners_signed = []\n\
         partners_validated = []\n\
         \n\
         [stats]\n\
         # Victim counts from 1 to threshold - 1 are never shown in statistics, nor any count\n\
         # from which one could be worked out (spec/STATS.md); a request may ask for more.\n\
         threshold = 5\n\
         \n\
         [log]\n\
         # \"human\" or \"json\" (one object per line), on standard error. The level is set\n\
         # with the ROGATORY_LOG environment variable, e.g. ROGATORY_LOG=debug.\n\
         format = \"human\"\n",
        agency = a.agency,
        max = rogatory_proto::envelope::DEFAULT_MAX_ENVELOPE_BYTES,
    )
}

pub(crate) fn run(a: InitArgs, passphrase_file: Option<&std::path::Path>) -> Result<ExitCode> {
    let dir = data_dir(a.data_dir.clone())?;
    if dir.join(CONFIG_FILE).exists() {
        anyhow::bail!(
            "{} already holds a node; refusing to overwrite it",
            dir.display()
        );
    }
    let mut roles = a.roles.clone();
    roles.sort();
    roles.dedup();
    let details = CardDetails {
        id: a.agency.clone(),
        name: a.name.clone(),
        roles,
        addresses: a.listen.clone(),
        languages: a.languages.clone(),
        legal_bases: a.legal_bases.clone(),
        issued_at: rogatory_proto::time::now_unix(),
    };
    let protection = if a.insecure_plaintext_keys {
        Protection::Plaintext
    } else {
        let what = format!("the new keys of {}", a.agency);
        Protection::Passphrase(crate::secret::passphrase(passphrase_file, &what, true)?)
    };
    let kd = KeyDir::create_with(&dir, details, protection, a.root_key_out.as_deref())
        .context("init failed")?;
    // A directory that existed before (made with the usual 0755, say) is closed to others too:
    // the store, the API socket and token live in it.
    if files::make_private(&dir)? {
        println!("  {} was open to other users: now mode 700", dir.display());
    }
    files::create_private_dir(&dir.join(PEERS_DIR))?;
    files::write_atomic(
        &dir.join(CONFIG_FILE),
        config_text(&a).as_bytes(),
        false,
        false,
    )?;
    println!(
        "Initialised the node of {} in {}",
        kd.card.id(),
        dir.display()
    );
    println!(
        "  secret keys:  {}",
        if a.insecure_plaintext_keys {
            "in clear (--insecure-plaintext-keys: for tests only)"
        } else {
            "encrypted under your passphrase"
        }
    );
    println!(
        "  agency card:  {} (`rogatory card export` for partners)",
        dir.join(crate::keydir::CARD_FILE).display()
    );
    println!("  config:       {}", dir.join(CONFIG_FILE).display());
    let root = match &a.root_key_out {
        Some(p) => p.display().to_string(),
        None => format!(
            "{} (move it off this machine: `rogatory keys root export`)",
            dir.join(if a.insecure_plaintext_keys {
                crate::keydir::ROOT_KEY_FILE
            } else {
                crate::keydir::ROOT_KEY_ENCRYPTED
            })
            .display()
        ),
    };
    println!("  root key:     {root}");
    println!("  fingerprint:  {} (of the root)", kd.history.fingerprint());
    Ok(ExitCode::SUCCESS)
}
