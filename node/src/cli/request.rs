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
    /// Check a request (or any message) written as JSON, and list everything that is missing
    /// or wrong. Exits 0 when it may be sent, 1 otherwise.
    Validate {
        /// The JSON file.
        file: PathBuf,
        /// The message type: mla-request, mla-status, evidence-manifest, extradition-status,
        /// liaison, preservation-request.
        #[arg(long = "type", default_value = "mla-request")]
        kind: MessageType,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
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
