//! The online commands: clients of the running node's local API (`rogatory send`, `inbox`,
//! `outbox`, `message show`, `status`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::client::Client;
use crate::files;

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

fn client(c: &Common) -> Result<Client> {
    Client::connect(&super::init::data_dir(c.data_dir.clone())?)
}

fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn short(v: &Value) -> &str {
    let s = v.as_str().unwrap_or_default();
    &s[..s.len().min(16)]
}

pub(crate) fn send(a: SendArgs) -> Result<ExitCode> {
    let raw = files::read_limited(&a.body, files::MAX_INPUT_BYTES)?;
    let body: Value = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not valid JSON", a.body.display()))?;
    let c = client(&a.common)?;
    let r = c.post(
        "/v1/send",
        &json!({ "to": a.to, "case": a.case, "type": a.kind, "body": body }),
    )?;
    if a.common.json {
        print_json(&r)?;
    } else {
        println!(
            "case {}: {} queued",
            r["case_id"].as_str().unwrap_or_default(),
            r["type"].as_str().unwrap_or_default()
        );
        for q in r["queued"].as_array().into_iter().flatten() {
            println!(
                "  {}  to {:<20} #{} in the case's chain",
                q["envelope_id"].as_str().unwrap_or_default(),
                q["to"].as_str().unwrap_or_default(),
                q["sequence"]
            );
        }
        println!("The node delivers it and records the receipt; follow it with `rogatory outbox`.");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn inbox(a: Common) -> Result<ExitCode> {
    let r = client(&a)?.get("/v1/inbox")?;
    if a.json {
        print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    let list = r.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("The inbox is empty.");
    }
    for m in &list {
        println!(
            "{}  {}  from {:<20} {:<20} case {} #{}{}",
            short(&m["envelope_id"]),
            m["received_at"].as_str().unwrap_or_default(),
            m["from"].as_str().unwrap_or_default(),
            m["type"].as_str().unwrap_or_default(),
            m["case_id"].as_str().unwrap_or_default(),
            m["sequence"],
            if m["emergency"] == true {
                "  EMERGENCY"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `rogatory outbox`: from the running node (with live delivery states), else from the store.
pub(crate) fn outbox(a: Common) -> Result<ExitCode> {
    let dir = super::init::data_dir(a.data_dir.clone())?;
    let rows = match Client::connect(&dir).and_then(|c| c.get("/v1/outbox")) {
        Ok(r) => r,
        Err(e) if !dir.join(crate::api::ADDR_FILE).exists() => {
            // Not running: read the store directly.
            let _ = e;
            let store =
                crate::store::Store::open_read_only(&dir).context("cannot open the store")?;
            Value::Array(store.outbox()?.iter().map(crate::api::outbox_row).collect())
        }
        Err(e) => return Err(e),
    };
    if a.json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let list = rows.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("The outbox of {} is empty.", dir.display());
    }
    for r in &list {
        let mut state = r["state"].as_str().unwrap_or_default().to_string();
        if let Some(reason) = r["receipt"]["reason"].as_str() {
            state = format!("{state} ({reason})");
        }
        if let Some(t) = r["retry_in_secs"].as_f64() {
            state = format!("{state} in {t:.0}s");
        }
        if r["emergency"] == true {
            state = format!("EMERGENCY {state}");
        }
        println!(
            "{}  {:<24} {:<20} {}  case {}",
            short(&r["envelope_id"]),
            state,
            r["to"].as_str().unwrap_or_default(),
            r["sealed_at"].as_str().unwrap_or_default(),
            r["case_id"].as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn message(c: MessageCommand) -> Result<ExitCode> {
    let (id, common) = match c {
        MessageCommand::Show { id, common } => (id, common),
        MessageCommand::Forward { id, to, common } => {
            let r = client(&common)?
                .post(&format!("/v1/messages/{id}/forward"), &json!({ "to": to }))?;
            if common.json {
                print_json(&r)?;
            } else {
                for q in r["queued"].as_array().into_iter().flatten() {
                    println!(
                        "passed on to {} in case {} (envelope {}), queued",
                        q["to"].as_str().unwrap_or_default(),
                        r["case_id"].as_str().unwrap_or_default(),
                        q["envelope_id"].as_str().unwrap_or_default()
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let r = client(&common)?.get(&format!("/v1/messages/{id}"))?;
    if common.json {
        print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Envelope  {}",
        r["envelope_id"].as_str().unwrap_or_default()
    );
    println!(
        "  direction:  {}",
        r["direction"].as_str().unwrap_or_default()
    );
    println!(
        "  case:       {}",
        r["case_id"].as_str().unwrap_or_default()
    );
    println!(
        "  from → to:  {} → {}",
        r["from"].as_str().unwrap_or_default(),
        r["to"].as_str().unwrap_or_default()
    );
    if let Some(t) = r["type"].as_str() {
        println!("  type:       {t}");
    }
    println!(
        "  message id: {}",
        r["message_id"].as_str().unwrap_or_default()
    );
    println!("  chain:      #{}", r["sequence"]);
    if let Some(s) = r["state"].as_str() {
        println!("  state:      {s}");
    }
    match r["receipt"].as_object() {
        Some(rc) => println!(
            "  receipt:    {} at {}{}",
            rc.get("event").and_then(Value::as_str).unwrap_or_default(),
            rc.get("received_at")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            rc.get("reason")
                .and_then(Value::as_str)
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        None => println!("  receipt:    none yet"),
    }
    println!("  audit entries:");
    for e in r["audit"].as_array().into_iter().flatten() {
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
    match r.get("content") {
        Some(content) => {
            println!(
                "  content (this reading is logged as accessed by {}):",
                r["accessed_by"].as_str().unwrap_or_default()
            );
            for line in serde_json::to_string_pretty(content)?.lines() {
                println!("    {line}");
            }
        }
        None => println!("  {}", r["note"].as_str().unwrap_or_default()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `rogatory status`: exits 1 when the node is not running.
pub(crate) fn status(a: Common) -> Result<ExitCode> {
    let dir = super::init::data_dir(a.data_dir.clone())?;
    let r = match Client::connect(&dir).and_then(|c| c.get("/v1/status")) {
        Ok(r) => r,
        Err(e) => {
            if a.json {
                print_json(&json!({ "running": false, "error": format!("{e:#}") }))?;
            } else {
                eprintln!("error: {e:#}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if a.json {
        let mut r = r;
        r["running"] = true.into();
        print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} is running (peer {})",
        r["agency"].as_str().unwrap_or_default(),
        r["peer_id"].as_str().unwrap_or_default()
    );
    for l in r["listening"].as_array().into_iter().flatten() {
        println!("  listening on {}", l.as_str().unwrap_or_default());
    }
    println!(
        "  inbox: {} message(s); envelopes being received: {}",
        r["inbox"], r["inbound_pending"]
    );
    println!("  outbox: {}", r["outbox"]);
    println!("  partners:");
    for p in r["peers"].as_array().into_iter().flatten() {
        let mut line = format!(
            "    {:<20} {} connection(s), {} queued, {} in flight, {} settled",
            p["agency"].as_str().unwrap_or_default(),
            p["connections"],
            p["queued"],
            p["in_flight"],
            p["settled"]
        );
        if let Some(t) = p["retry_in_secs"].as_f64() {
            line.push_str(&format!(
                "; {} failure(s), next try in {t:.0}s: {}",
                p["failures"],
                p["last_error"].as_str().unwrap_or_default()
            ));
        }
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
