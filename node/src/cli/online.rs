//! The message commands and the status: clients of the running node's local API (`rogatory
//! send`, `inbox`, `outbox`, `message show`, `status`); the case, evidence and audit commands
//! are in their own modules.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::api::wire::{
    Forward, Forwarded, InboxRow, MessageView, OutboxRow, SendBody, Sent, Status,
};
use crate::client::Client;
use crate::files;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};

/// The data directory and output format every online command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// The data directory of the running node.
    #[arg(long, env = "ROGATORY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON (for scripts).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `rogatory send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// An addressee: a pinned partner's agency id (repeatable; one envelope each).
    #[arg(long = "to", required = true)]
    pub to: Vec<String>,
    /// The case id (a UUIDv7), or `new` to open a case (its id is printed).
    #[arg(long)]
    pub case: String,
    /// The message type: mla-request, mla-status, extradition-status, liaison,
    /// preservation-request (evidence-manifest and evidence-status are written by the node:
    /// rogatory evidence send).
    #[arg(long = "type")]
    pub kind: String,
    /// The message as JSON (see spec/examples/ and `rogatory request validate`).
    #[arg(long)]
    pub body: PathBuf,
    /// Wait up to SECS seconds for each envelope to be delivered (the partner's receipt
    /// verified and recorded) or rejected, and print where each stands; 0 (the default) answers
    /// once the envelopes are queued. Exits 1 if one was rejected or is still queued.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub wait: u64,
    #[command(flatten)]
    pub common: Common,
}

/// `rogatory message` subcommands.
#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// Show one message, sent or received: metadata, receipt, audit entries, and the decrypted
    /// content of a received one. Reading the content is itself logged in the case's audit log
    /// ("content-accessed", with the local user's name).
    Show {
        /// The envelope id, or at least its first 8 hex digits.
        id: String,
        #[command(flatten)]
        common: Common,
    },
    /// Pass a received message on to other pinned partners, in the same case. Refused, and the
    /// attempt logged, when its handling code is H2 (no onward sharing without the originator's
    /// permission).
    Forward {
        /// The envelope id, or at least its first 8 hex digits.
        id: String,
        /// A partner to pass it on to (repeatable).
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
}

pub(crate) fn client(c: &Common) -> Result<Client> {
    Client::connect(&super::init::data_dir(c.data_dir.clone())?)
}

/// Says that a message waits for approval (spec/PEOPLE.md §6).
pub(crate) fn print_held(case: &str, d: &crate::api::wire::DraftRow) {
    if d.state == "awaiting-validation" {
        println!(
            "case {case}: {} signed by you and kept as draft {} for a validating authority; nothing was sent.",
            d.kind,
            &d.id[..16]
        );
        println!(
            "A validating authority countersigns it with `rogatory request countersign {}`.",
            &d.id[..16]
        );
        return;
    }
    println!(
        "case {case}: {} kept as draft {} for an issuing authority's approval; nothing was sent.",
        d.kind,
        &d.id[..16]
    );
    println!(
        "An issuing authority approves it with `rogatory request approve {}` (or rejects it).",
        &d.id[..16]
    );
}

/// Prints a value as pretty JSON (for `--json`).
pub(crate) fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn short(s: &str) -> &str {
    &s[..s.len().min(16)]
}

pub(crate) fn send(a: SendArgs) -> Result<ExitCode> {
    let raw = files::read_limited(&a.body, files::MAX_INPUT_BYTES)?;
    let body: serde_json::Value = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not valid JSON", a.body.display()))?;
    let c = client(&a.common)?;
    let r: Sent = c.post(
        &format!("/v1/send?wait={}", a.wait),
        &SendBody {
            to: a.to,
            case: a.case,
            kind: a.kind,
            body,
        },
    )?;
    if a.common.json {
        print_json(&r)?;
    } else if let Some(d) = &r.draft {
        print_held(&r.case_id, d);
    } else {
        println!("case {}: {} queued", r.case_id, r.kind);
        for q in &r.queued {
            println!(
                "  {}  to {:<20} #{} in the case's chain{}",
                q.envelope_id,
                q.to,
                q.sequence,
                q.state
                    .as_ref()
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            );
        }
        if a.wait == 0 {
            println!(
                "The node delivers it and records the receipt; follow it with `rogatory outbox`."
            );
        }
    }
    let unsettled = r
        .queued
        .iter()
        .any(|q| q.state.as_deref().is_some_and(|s| s != "delivered"));
    Ok(if unsettled {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn inbox(a: Common) -> Result<ExitCode> {
    let list: Vec<InboxRow> = client(&a)?.get("/v1/inbox")?;
    if a.json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("The inbox is empty.");
    }
    for m in &list {
        println!(
            "{}  {}  from {:<20} {:<20} case {} #{}{}",
            short(&m.envelope_id),
            m.received_at,
            m.from,
            m.kind,
            m.case_id,
            m.sequence,
            if m.emergency { "  EMERGENCY" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `rogatory outbox`: from the running node (with live delivery states), else from the store.
pub(crate) fn outbox(a: Common) -> Result<ExitCode> {
    let dir = super::init::data_dir(a.data_dir.clone())?;
    let list: Vec<OutboxRow> = match Client::connect(&dir).and_then(|c| c.get("/v1/outbox")) {
        Ok(r) => r,
        Err(e) if e.is::<crate::client::NotRunning>() => {
            // Not running: read the store directly.
            let store =
                crate::store::Store::open_read_only(&dir).context("cannot open the store")?;
            store
                .outbox()?
                .iter()
                .map(crate::api::messages::outbox_row)
                .collect()
        }
        Err(e) => return Err(e),
    };
    if a.json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("The outbox of {} is empty.", dir.display());
    }
    for r in &list {
        let mut state = r.state.clone();
        if let Some(reason) = r.receipt.as_ref().and_then(|r| r.reason.as_deref()) {
            state = format!("{state} ({reason})");
        }
        if let Some(t) = r.retry_in_secs {
            state = format!("{state} in {t:.0}s");
        }
        if r.emergency {
            state = format!("EMERGENCY {state}");
        }
        println!(
            "{}  {:<24} {:<20} {}  case {}",
            short(&r.envelope_id),
            state,
            r.to,
            r.sealed_at,
            r.case_id
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn message(c: MessageCommand) -> Result<ExitCode> {
    let (id, common) = match c {
        MessageCommand::Show { id, common } => (id, common),
        MessageCommand::Forward { id, to, common } => {
            let r: Forwarded =
                client(&common)?.post(&format!("/v1/messages/{id}/forward"), &Forward { to })?;
            if common.json {
                print_json(&r)?;
            } else {
                for q in &r.queued {
                    println!(
                        "passed on to {} in case {} (envelope {}), queued",
                        q.to, r.case_id, q.envelope_id
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let r: MessageView = client(&common)?.get(&format!("/v1/messages/{id}"))?;
    if common.json {
        print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("Envelope  {}", r.envelope_id);
    println!("  direction:  {}", r.direction);
    println!("  case:       {}", r.case_id);
    println!("  from → to:  {} → {}", r.from, r.to);
    if let Some(t) = &r.kind {
        println!("  type:       {t}");
    }
    println!("  message id: {}", r.message_id);
    println!("  chain:      #{}", r.sequence);
    if let Some(s) = &r.state {
        println!("  state:      {s}");
    }
    match &r.receipt {
        Some(rc) => println!(
            "  receipt:    {} at {}{}",
            rc.event,
            rc.received_at,
            rc.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        None => println!("  receipt:    none yet"),
    }
    if !r.signed_by.is_empty() {
        let who: Vec<String> = r
            .signed_by
            .iter()
            .map(|o| {
                let verb = match o.role.as_str() {
                    "validating-authority" => "validated by",
                    "liaison-officer" => "sent by liaison officer",
                    _ => "issued by",
                };
                format!("{verb} {} of {}", o.name, r.from)
            })
            .collect();
        println!("  signed:     {}", who.join(", "));
    }
    println!("  audit entries:");
    for e in &r.audit {
        println!(
            "    #{} {} {}{}",
            e["seq"],
            e["event"].as_str().unwrap_or_default(),
            e["time"],
            e["actor"]["user"]
                .as_str()
                .map(|u| format!(" by {u}"))
                .unwrap_or_default()
        );
    }
    match &r.content {
        Some(content) => {
            println!(
                "  content (this reading is logged as accessed by {}):",
                r.accessed_by.as_deref().unwrap_or_default()
            );
            for line in serde_json::to_string_pretty(content)?.lines() {
                println!("    {line}");
            }
        }
        None => println!("  {}", r.note.as_deref().unwrap_or_default()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `rogatory status`: exits 1 when the node is not running.
pub(crate) fn status(a: Common) -> Result<ExitCode> {
    let dir = super::init::data_dir(a.data_dir.clone())?;
    let r: Status = match Client::connect(&dir).and_then(|c| c.get("/v1/status")) {
        Ok(r) => r,
        Err(e) => {
            if a.json {
                print_json(&serde_json::json!({ "running": false, "error": format!("{e:#}") }))?;
            } else {
                eprintln!("error: {e:#}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if a.json {
        let mut v = serde_json::to_value(&r)?;
        v["running"] = true.into();
        print_json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} is running (peer {})", r.agency, r.peer_id);
    for l in &r.listening {
        println!("  listening on {l}");
    }
    println!(
        "  inbox: {} message(s); envelopes being received: {}",
        r.inbox, r.inbound_pending
    );
    println!(
        "  outbox: {} queued, {} settled",
        r.outbox.queued, r.outbox.settled
    );
    if r.evidence_active + r.evidence_waiting > 0 {
        println!(
            "  evidence: {} item(s) being received, {} waiting",
            r.evidence_active, r.evidence_waiting
        );
    }
    println!("  partners:");
    for p in &r.peers {
        let mut line = format!(
            "    {:<20} {} connection(s), {} queued, {} in flight ({} receipted, being recorded), {} settled",
            p.agency, p.connections, p.queued, p.in_flight, p.settling, p.settled
        );
        line.push_str(&format!(
            "; key history {}{}",
            p.key_state,
            p.key_age_secs
                .map(|a| format!(" (confirmed {a} s ago)"))
                .unwrap_or_default()
        ));
        if let Some(t) = p.retry_in_secs {
            line.push_str(&format!(
                "; {} failure(s), next try in {t:.0}s: {}",
                p.failures,
                p.last_error.as_deref().unwrap_or_default()
            ));
        } else if p.key_state == "held"
            && let Some(e) = &p.last_error
        {
            line.push_str(&format!("; {e}"));
        }
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
