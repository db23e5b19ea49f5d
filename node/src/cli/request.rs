//! `rogatory request …`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use rogatory_proto::message::{Message, MessageError, MessageType};

use crate::api::wire::{DraftRow, DraftView};
use crate::files;

/// `rogatory request` subcommands.
#[derive(Debug, Subcommand)]
pub enum RequestCommand {
    /// Write a complete example request (or other message) to start from, and explain every
    /// field: the example as JSON (to --out, else standard output), the field guide on standard
    /// output (with --out) or with --guide.
    Template {
        /// The message type.
        #[arg(long = "type", default_value = "mla-request")]
        kind: MessageType,
        /// Write the example here (refuses to overwrite a file).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print only the field guide.
        #[arg(long)]
        guide: bool,
    },
    /// Send a request in a case opened with `rogatory case new`, to the case's partner
    /// (running node).
    Send(super::cases::RequestSendArgs),
    /// Drafts waiting for an issuing authority's approval (and those decided, with --all).
    Drafts {
        /// Also those approved or rejected.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        common: super::online::Common,
    },
    /// Show a draft and its message (reading it is logged).
    Draft {
        /// The draft id (at least its first 8 hex digits).
        id: String,
        #[command(flatten)]
        common: super::online::Common,
    },
    /// Approve a draft (an issuing authority other than its drafter): the node seals and
    /// queues it now.
    Approve {
        /// The draft id (at least its first 8 hex digits).
        id: String,
        #[command(flatten)]
        common: super::online::Common,
    },
    /// Countersign a draft awaiting validation (a validating authority other than its drafter
    /// and issuer): the node seals and queues it now, with both signatures.
    Countersign {
        /// The draft id (at least its first 8 hex digits).
        id: String,
        #[command(flatten)]
        common: super::online::Common,
    },
    /// Reject a draft, with the reason: it is never sent.
    Reject {
        /// The draft id (at least its first 8 hex digits).
        id: String,
        /// Why (shown with the draft).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: super::online::Common,
    },
    /// Check a request (or any message) written as JSON, and list everything that is missing
    /// or wrong. Exits 0 when it may be sent, 1 otherwise.
    Validate {
        /// The JSON file.
        file: PathBuf,
        /// The message type: mla-request, mla-status, evidence-manifest, extradition-status,
        /// liaison, preservation-request, evidence-status.
        #[arg(long = "type", default_value = "mla-request")]
        kind: MessageType,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The example message of each type (spec/examples/), the start of a new one.
fn example(kind: MessageType) -> &'static str {
    match kind {
        MessageType::MlaRequest => include_str!("../../../spec/examples/mla-request.json"),
        MessageType::MlaStatus => include_str!("../../../spec/examples/mla-status.json"),
        MessageType::EvidenceManifest => {
            include_str!("../../../spec/examples/evidence-manifest.json")
        }
        MessageType::ExtraditionStatus => {
            include_str!("../../../spec/examples/extradition-status.json")
        }
        MessageType::Liaison => include_str!("../../../spec/examples/liaison.json"),
        MessageType::PreservationRequest => {
            include_str!("../../../spec/examples/preservation-request.json")
        }
        MessageType::EvidenceStatus => {
            include_str!("../../../spec/examples/evidence-status.json")
        }
    }
}

/// The field guide of a type, where there is one.
fn guide(kind: MessageType) -> Option<&'static str> {
    match kind {
        MessageType::MlaRequest => {
            Some(include_str!("../../../spec/examples/mla-request.guide.md"))
        }
        _ => None,
    }
}

/// Reads a JSON message body of the given type. Validation is left to the caller.
pub(crate) fn read_body(path: &Path, kind: MessageType) -> Result<Result<Message, MessageError>> {
    let raw = files::read_limited(path, files::MAX_INPUT_BYTES)?;
    let json: serde_json::Value = serde_json::from_slice(&raw)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    Ok(Message::from_json(kind, &json))
}

pub(crate) fn run(c: RequestCommand) -> Result<ExitCode> {
    match c {
        RequestCommand::Send(a) => super::cases::request_send(a),
        RequestCommand::Drafts { all, common } => {
            let rows: Vec<DraftRow> = super::online::client(&common)?.get("/v1/drafts")?;
            let rows: Vec<&DraftRow> = rows
                .iter()
                .filter(|d| all || d.state == "awaiting-approval")
                .collect();
            if common.json {
                return super::online::print_json(&rows).map(|_| ExitCode::SUCCESS);
            }
            if rows.is_empty() {
                println!("No draft waits for approval.");
            }
            for d in rows {
                println!(
                    "{}  {:<18} {:<20} case {}  drafted by {} {}{}",
                    &d.id[..16],
                    d.state,
                    d.kind,
                    d.case_id,
                    d.drafted_by,
                    d.drafted_at,
                    match (&d.decided_by, &d.reason) {
                        (Some(by), Some(r)) => format!("; rejected by {by}: {r}"),
                        (Some(by), None) => format!("; approved by {by}"),
                        _ => String::new(),
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RequestCommand::Draft { id, common } => {
            let v: DraftView = super::online::client(&common)?.get(&format!("/v1/drafts/{id}"))?;
            if common.json {
                return super::online::print_json(&v).map(|_| ExitCode::SUCCESS);
            }
            let d = &v.draft;
            println!(
                "Draft {} ({}), {} to {} in case {}",
                d.id,
                d.state,
                d.kind,
                d.to.join(", "),
                d.case_id
            );
            println!("  drafted by {} at {}", d.drafted_by, d.drafted_at);
            if let Some(by) = &d.decided_by {
                println!(
                    "  {} by {by} at {}",
                    d.state,
                    d.decided_at.as_deref().unwrap_or_default()
                );
            }
            println!("{}", serde_json::to_string_pretty(&v.content)?);
            Ok(ExitCode::SUCCESS)
        }
        RequestCommand::Approve { id, common } => {
            let d: DraftRow = super::online::client(&common)?
                .post(&format!("/v1/drafts/{id}/approve"), &serde_json::json!({}))?;
            if common.json {
                return super::online::print_json(&d).map(|_| ExitCode::SUCCESS);
            }
            if d.state == "awaiting-validation" {
                println!(
                    "Approved and signed draft {}: it waits for a validating authority (rogatory request countersign {}).",
                    &d.id[..16],
                    &d.id[..16]
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "Approved draft {}: {} sealed for {} and queued (envelope {}).",
                &d.id[..16],
                d.kind,
                d.to.join(", "),
                d.envelopes
                    .iter()
                    .map(|e| &e[..16])
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        RequestCommand::Countersign { id, common } => {
            let d: DraftRow = super::online::client(&common)?
                .post(&format!("/v1/drafts/{id}/validate"), &serde_json::json!({}))?;
            if common.json {
                return super::online::print_json(&d).map(|_| ExitCode::SUCCESS);
            }
            println!(
                "Validated draft {}: {} sealed for {} and queued, issued by {} and validated by {}.",
                &d.id[..16],
                d.kind,
                d.to.join(", "),
                d.decided_by.as_deref().unwrap_or(d.drafted_by.as_str()),
                d.validated_by.as_deref().unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        RequestCommand::Reject { id, reason, common } => {
            let d: DraftRow = super::online::client(&common)?.post(
                &format!("/v1/drafts/{id}/reject"),
                &crate::api::wire::Reject { reason },
            )?;
            if common.json {
                return super::online::print_json(&d).map(|_| ExitCode::SUCCESS);
            }
            println!("Rejected draft {}: it will not be sent.", &d.id[..16]);
            Ok(ExitCode::SUCCESS)
        }
        RequestCommand::Template {
            kind,
            out,
            guide: only_guide,
        } => {
            let text = guide(kind).unwrap_or(
                "No field guide for this type yet: spec/PROTOCOL.md §5 and `rogatory request validate` say what each field needs.\n",
            );
            if only_guide {
                print!("{text}");
                return Ok(ExitCode::SUCCESS);
            }
            match out {
                Some(path) => {
                    files::write_atomic(&path, example(kind).as_bytes(), false, false)?;
                    eprintln!(
                        "Wrote an example {kind} to {}: replace every value with your case's, then `rogatory request validate {} --type {kind}`.",
                        path.display(),
                        path.display()
                    );
                    print!("{text}");
                }
                None => {
                    print!("{}", example(kind));
                    eprintln!("(the field guide: rogatory request template --type {kind} --guide)");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RequestCommand::Validate { file, kind, json } => {
            let result = read_body(&file, kind)?.and_then(|m| m.validate().map(|()| m));
            let problems = match &result {
                Ok(_) => Vec::new(),
                Err(MessageError::Invalid { problems, .. }) => problems.0.clone(),
                Err(e) => vec![rogatory_proto::message::Problem {
                    field: "(file)".into(),
                    message: e.to_string(),
                }],
            };
            if json {
                let out = serde_json::json!({
                    "file": file.display().to_string(),
                    "type": kind.as_str(),
                    "valid": problems.is_empty(),
                    "problems": problems,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else if problems.is_empty() {
                println!("{}: a valid {kind}; it may be sent.", file.display());
            } else {
                println!(
                    "{}: this {kind} cannot be sent yet. {} problem(s) to fix:",
                    file.display(),
                    problems.len()
                );
                for p in &problems {
                    println!("  - {}: {}", p.field, p.message);
                }
            }
            Ok(if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
