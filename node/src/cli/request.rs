//! `rogatory request …`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use rogatory_proto::message::{Message, MessageError, MessageType};

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
