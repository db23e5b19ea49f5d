//! The `rogatory` command line.
//!
//! Every command here works offline, without a running node: useful on air-gapped machines,
//! and for anyone who wants to check Rogatory's claims with the files alone.

mod audit;
mod card;
mod daemon;
mod envelope;
mod init;
mod keygen;
mod peer;
mod request;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Rogatory: signed, end-to-end encrypted messages between agencies cooperating on criminal
/// cases (mutual legal assistance, extradition, police liaison, preservation).
#[derive(Debug, Parser)]
#[command(
    name = "rogatory",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Read the passphrase of encrypted keys from this file (else `ROGATORY_PASSPHRASE`, else
    /// a prompt on the terminal).
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up an agency node's data directory: encrypted keys, the agency card, a commented
    /// configuration file.
    Init(init::InitArgs),
    /// Run the node: listen, and answer envelopes from pinned partners with signed receipts
    /// (until SIGINT or SIGTERM).
    Run(daemon::RunArgs),
    /// Deliver one sealed envelope to a pinned partner's node and verify the receipt.
    Deliver(daemon::DeliverArgs),
    /// List the envelopes sealed here and where each stands (queued, delivered, rejected).
    Outbox(daemon::OutboxArgs),
    /// Pin, list and unpin partner agencies.
    #[command(subcommand)]
    Peer(peer::PeerCommand),
    /// Generate an agency's keys (in clear, mode 0600) and signed card into a new directory, for
    /// offline use and tests; an agency node uses `init`.
    Keygen(keygen::KeygenArgs),
    /// Show and check agency cards.
    #[command(subcommand)]
    Card(card::CardCommand),
    /// Seal, open and inspect envelopes.
    #[command(subcommand)]
    Envelope(envelope::EnvelopeCommand),
    /// Check requests and other messages before sending them.
    #[command(subcommand)]
    Request(request::RequestCommand),
    /// Per-case audit logs: entries, signed checkpoints, proofs, and their verification.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

/// Runs a parsed command line. `Ok` carries the exit code (a failed validation is not an error
/// of the program, but it exits non-zero).
pub fn run(cli: Cli) -> Result<ExitCode> {
    crate::keydir::set_passphrase_file(cli.passphrase_file.clone());
    match cli.command {
        Command::Init(a) => init::run(a, cli.passphrase_file.as_deref()),
        Command::Peer(c) => peer::run(c),
        Command::Run(a) => daemon::run(a),
        Command::Deliver(a) => daemon::deliver(a),
        Command::Outbox(a) => daemon::outbox(a),
        Command::Keygen(a) => keygen::run(a),
        Command::Card(c) => card::run(c),
        Command::Envelope(c) => envelope::run(c),
        Command::Request(c) => request::run(c),
        Command::Audit(c) => audit::run(c),
    }
}

/// A path argument that may be a card file or a key directory holding `card.cose`.
fn card_path(p: PathBuf) -> PathBuf {
    if p.is_dir() {
        crate::keydir::KeyDir::card_path(&p)
    } else {
        p
    }
}
