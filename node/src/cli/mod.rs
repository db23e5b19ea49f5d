//! The `rogatory` command line.
//!
//! Most commands work offline, without a running node: useful on air-gapped machines, and for
//! anyone who wants to check Rogatory's claims with the files alone. The commands that change
//! or read what a running node holds (`send`, `inbox`, `outbox`, `message`, `status`, `case`,
//! `extradition`, `deadlines`, `evidence`, `request send`) are clients of its local API (`outbox`
//! reads the store when the node is stopped); the `audit` commands use the API when the node
//! runs and the store when it does not.

mod audit;
mod backup;
mod card;
mod cases;
mod console;
mod daemon;
mod demo;
mod directory;
mod envelope;
mod evidence;
mod init;
mod keygen;
mod keys;
mod online;
mod peer;
mod reference;
mod request;
mod stats;
pub mod supervise;
mod user;

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
    /// Run a throw-away network of three agencies on this machine (three `rogatory run`
    /// processes on loopback) and narrate a real exchange between them.
    Demo(demo::DemoArgs),
    /// Set up an agency node's data directory: encrypted keys, the agency card, a commented
    /// configuration file.
    Init(init::InitArgs),
    /// Run the node: listen, and answer envelopes from pinned partners with signed receipts
    /// (until SIGINT or SIGTERM).
    Run(daemon::RunArgs),
    /// Seal a message for pinned partners and queue it; the running node delivers it, retrying
    /// until each addressee's signed receipt is recorded.
    Send(online::SendArgs),
    /// List the messages received (running node).
    Inbox(online::Common),
    /// List the envelopes sealed here and where each stands: queued, sending,
    /// waiting-for-retry, delivered, rejected (with the reason).
    Outbox(online::Common),
    /// Show a message: metadata, receipt, audit entries, content (reading it is logged).
    #[command(subcommand)]
    Message(online::MessageCommand),
    /// Cases: list, show as a timeline, update an MLA request's status (running node).
    #[command(subcommand)]
    Case(cases::CaseCommand),
    /// Extradition cases: report a stage (running node).
    #[command(subcommand)]
    Extradition(cases::ExtraditionCommand),
    /// Deadlines due soon, and overdue ones (running node).
    Deadlines(cases::DeadlinesArgs),
    /// Statistics of a period, computed from the node's cases: counts by direction, partner,
    /// kind, offence (ICCS), measure, urgency, outcome and refusal ground; victims by age band
    /// and gender with small counts suppressed; times to acknowledgement, registration,
    /// execution and closing; extradition deadlines met and missed (running node;
    /// spec/STATS.md).
    Stats(stats::StatsArgs),
    /// Evidence: add items to a case (hashed, and sealed if they are to be sent), send their
    /// manifest, list them (running node).
    #[command(subcommand)]
    Evidence(evidence::EvidenceCommand),
    /// Where the running node's console is (the web interface for clerks, officers and
    /// auditors, on the local API's loopback address), and open it in a browser where there is
    /// one.
    Console(console::ConsoleArgs),
    /// Is the node running? Partners, connections, queue depths. Exits 1 when it is not running.
    Status(online::Common),
    /// Deliver one envelope sealed offline to a pinned partner's node and verify the receipt
    /// (without a running node of one's own).
    Deliver(daemon::DeliverArgs),
    /// Pin, list and unpin partner agencies.
    #[command(subcommand)]
    Peer(peer::PeerCommand),
    /// Every agency this node knows: roles, legal bases, languages, addresses, root, keys and
    /// their freshness.
    #[command(subcommand)]
    Directory(directory::DirectoryCommand),
    /// Generate an agency's keys (in clear, mode 0600) and signed card into a new directory, for
    /// offline use and tests; an agency node uses `init`.
    Keygen(keygen::KeygenArgs),
    /// Show and check agency cards.
    #[command(subcommand)]
    Card(card::CardCommand),
    /// The agency's root of trust and key history: rotate and revoke online keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The officials' accounts: their roles and their own tokens for the local API.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Seal, open and inspect envelopes.
    #[command(subcommand)]
    Envelope(envelope::EnvelopeCommand),
    /// Check requests and other messages before sending them.
    #[command(subcommand)]
    Request(request::RequestCommand),
    /// Per-case audit logs: entries, signed checkpoints, proofs, and their verification.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Write a backup of a node's data directory, running or not, to one file: a consistent
    /// copy of the store, the keys still encrypted, the configuration and the evidence
    /// (spec/BACKUP.md).
    Backup(backup::BackupArgs),
    /// Restore a backup into a new data directory, check every file against its manifest and
    /// verify the store; the node does not run from it until `restore --resume`.
    Restore(backup::RestoreArgs),
    /// Move a stopped node's store from the previous format to this release's, after a backup,
    /// in one transaction, and verify it (spec/BACKUP.md §4).
    Migrate(backup::MigrateArgs),
    /// Print the local API's OpenAPI 3.1 document (as `spec/openapi.json` and the running node's
    /// `GET /v1/openapi.json`), from which a case-management system can generate its client.
    Openapi,
    /// Print the reference of every command (its `--help`) in Markdown, as `docs/cli.md` holds
    /// it.
    Reference,
    /// Write the manual pages, one per command (`rogatory.1`, `rogatory-send.1`,
    /// `rogatory-case-export.1`, …), into a directory, as `deploy/man/` holds them.
    Manpages(reference::ManpagesArgs),
    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell), as
    /// `deploy/completions/` holds those of bash, zsh and fish.
    Completions(reference::CompletionsArgs),
}

/// Parses the command line (exiting with clap's message and code 2 on a usage error, or with
/// the help): the help never shows the values of the environment variables options read.
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let matches = reference::without_env_values(Cli::command()).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Runs a parsed command line. `Ok` carries the exit code (a failed validation is not an error
/// of the program, but it exits non-zero).
pub fn run(cli: Cli) -> Result<ExitCode> {
    crate::keydir::set_passphrase_file(cli.passphrase_file.clone());
    match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Init(a) => init::run(a, cli.passphrase_file.as_deref()),
        Command::Peer(c) => peer::run(c),
        Command::Directory(c) => directory::run(c),
        Command::Run(a) => {
            daemon::prepare_process(cli.passphrase_file.as_deref())?;
            daemon::run(a)
        }
        Command::Deliver(a) => daemon::deliver(a),
        Command::Send(a) => online::send(a),
        Command::Inbox(a) => online::inbox(a),
        Command::Outbox(a) => online::outbox(a),
        Command::Message(c) => online::message(c),
        Command::Status(a) => online::status(a),
        Command::Console(a) => console::run(a),
        Command::Case(c) => cases::case(c),
        Command::Extradition(c) => cases::extradition(c),
        Command::Deadlines(a) => cases::deadlines(a),
        Command::Stats(a) => stats::run(a),
        Command::Evidence(c) => evidence::run(c),
        Command::Keygen(a) => keygen::run(a),
        Command::Card(c) => card::run(c),
        Command::Keys(c) => keys::run(c),
        Command::User(c) => user::run(c),
        Command::Envelope(c) => envelope::run(c),
        Command::Request(c) => request::run(c),
        Command::Audit(c) => audit::run(c),
        Command::Backup(a) => backup::backup(a),
        Command::Restore(a) => backup::restore(a),
        Command::Migrate(a) => backup::migrate(a),
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&crate::api::openapi())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Reference => {
            print!("{}", reference::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Manpages(a) => reference::manpages(a),
        Command::Completions(a) => reference::completions(a),
    }
}

/// The exit code of a command that failed with `e`: whose fault it was, as scripts need to
/// tell. 1: the command failed (a check that did not hold, a file that cannot be read, …);
/// 2: the command line is wrong (clap's own); 3: the node refused the request as given (400,
/// 403, 404, 409, 413, 422); 4: the node's store failed, nothing was recorded (500);
/// 5: no node runs from the data directory, or it is stopping (503): try again.
pub fn exit_code(e: &anyhow::Error) -> ExitCode {
    for cause in e.chain() {
        if cause.is::<crate::client::NotRunning>() {
            return ExitCode::from(5);
        }
        if let Some(f) = cause.downcast_ref::<crate::client::ApiFailure>() {
            return ExitCode::from(match f.status {
                500 => 4,
                503 => 5,
                400..=499 => 3,
                _ => 1,
            });
        }
    }
    ExitCode::FAILURE
}

/// A path argument that may be a card file or a key directory holding `card.cose`.
fn card_path(p: PathBuf) -> PathBuf {
    if p.is_dir() {
        crate::keydir::KeyDir::card_path(&p)
    } else {
        p
    }
}
