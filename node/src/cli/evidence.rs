//! `rogatory evidence`: add evidence items to a case, send their manifest, list them.
//!
//! `add` reads each file once, here, in parallel (as many files at a time as there are cores):
//! it hashes it (SHA-256) and, for a `send` item, seals it under a fresh content key into the
//! node's `evidence/staging/` directory; then the running node records the items, moves the
//! sealed content into place and logs `evidence-added`. Hash-only and out-of-band items leave
//! nothing on disk but their record.

use std::path::PathBuf;
use std::process::ExitCode;

use super::cases::{client, parse_enum};
use super::online::{Common, print_json};
use crate::api::wire::{
    AddEvidence, AddItem, Added, EvidenceExported, EvidenceRow, ExportEvidence, ItemCheck,
    ManifestSent, SendEvidence, VerifyEvidence,
};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rogatory_proto::message::{Acquisition, EvidenceItem, PerceptualHash};

/// `rogatory evidence …`
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Hash files (SHA-256, streaming, in parallel) and add them to a case as evidence items,
    /// ready to be listed in a manifest; `send` items are sealed into the node's store.
    Add(Box<AddArgs>),
    /// Send the manifest of the case's items added since the last one to a partner.
    Send {
        /// The case.
        case: String,
        /// The partner (a pinned agency id).
        #[arg(long)]
        to: String,
        #[command(flatten)]
        common: Common,
    },
    /// Decrypt a verified item's content to a new file; the export is logged with the local
    /// user (`evidence-exported`) before the file is written, and the content is checked
    /// against the manifest's SHA-256 as it is written.
    Export {
        /// The case.
        case: String,
        /// The item (`E1`, or `PARTNER/E1` where several partners listed an `E1`).
        item: String,
        /// The file to write (must not exist).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Re-read the content held on this node for a case's items (or one item) and check every
    /// chunk and the SHA-256; exits 1 if any does not verify.
    Verify {
        /// The case.
        case: String,
        /// One item (default: all held here).
        item: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// The case's evidence items: mode, size, SHA-256, where each stands (receiving: how far).
    List {
        /// The case.
        case: String,
        /// Wait up to this many seconds until no item is still being received.
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        wait: u64,
        /// Also print each item's chain of custody (both sides keep the same chain: the
        /// receiving node reports arrival, verification and exports to the holder).
        #[arg(long)]
        custody: bool,
        #[command(flatten)]
        common: Common,
    },
}

/// Arguments of `rogatory evidence add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The case (from `rogatory case new`, or a case this node received).
    pub case: String,
    /// The files (one item each).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// What the items are (default: the file name).
    #[arg(long)]
    pub description: Option<String>,
    /// From whom or where they were seized or obtained.
    #[arg(long)]
    pub seized_from: Option<String>,
    /// When they were seized (UTC, YYYY-MM-DDTHH:MM:SSZ).
    #[arg(long)]
    pub seized_at: Option<String>,
    /// How they were acquired (e.g. "production order to provider", "forensic image").
    #[arg(long, default_value = "copy held by this agency")]
    pub method: String,
    /// How the content reaches the partner: `send` (encrypted through the nodes),
    /// `out-of-band` (courier; only the hash travels) or `hash-only` (never leaves this
    /// agency, e.g. child sexual abuse material: only hashes travel, for matching).
    #[arg(long, default_value = "send")]
    pub mode: String,
    /// The media type (default: from the file name's extension).
    #[arg(long)]
    pub media_type: Option<String>,
    /// A perceptual hash supplied by the holder, as ALGORITHM:VALUE (e.g. PDQ:f8f8…);
    /// repeatable; applies to every file given.
    #[arg(long = "perceptual-hash", value_name = "ALGORITHM:VALUE")]
    pub perceptual_hashes: Vec<String>,
    /// For `out-of-band` items: how the content travels (e.g. "courier", "diplomatic bag").
    #[arg(long)]
    pub carrier: Option<String>,
    /// For `out-of-band` items: the tracking or seal reference.
    #[arg(long)]
    pub tracking: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

pub(crate) fn run(c: EvidenceCommand) -> Result<ExitCode> {
    match c {
        EvidenceCommand::Add(a) => add(*a),
        EvidenceCommand::Send { case, to, common } => {
            let r: ManifestSent = client(&common)?.post(
                &format!("/v1/evidence/{case}/send"),
                &SendEvidence { to: to.clone() },
            )?;
            if common.json {
                print_json(&r)?;
            } else {
                println!(
                    "case {}: manifest of {} sealed for {to} and queued (envelope {})",
                    r.case_id,
                    r.items.join(", "),
                    r.queued
                        .first()
                        .map(|q| q.envelope_id.as_str())
                        .unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::Export {
            case,
            item,
            out,
            common,
        } => {
            let out = std::path::absolute(&out)
                .with_context(|| format!("{}: not a usable path", out.display()))?;
            let r: EvidenceExported = client(&common)?.post(
                &format!("/v1/evidence/{case}/export"),
                &ExportEvidence {
                    item,
                    out: out.clone(),
                },
            )?;
            if common.json {
                print_json(&r)?;
            } else {
                println!(
                    "{} exported to {} ({} B, SHA-256 {} checked)",
                    r.item_id,
                    out.display(),
                    r.size,
                    r.sha256.as_deref().unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        EvidenceCommand::Verify { case, item, common } => {
            let rows: Vec<ItemCheck> = client(&common)?.post(
                &format!("/v1/evidence/{case}/verify"),
                &VerifyEvidence { item },
            )?;
            let ok = rows.iter().all(|r| r.ok);
            if common.json {
                print_json(&rows)?;
            } else {
                if rows.is_empty() {
                    println!("No evidence content is held on this node for case {case}.");
                }
                for r in &rows {
                    if r.ok {
                        println!(
                            "{:<16} ok: every chunk opens, SHA-256 {}",
                            r.item_id,
                            r.sha256.as_deref().unwrap_or_default()
                        );
                    } else {
                        println!(
                            "{:<16} DOES NOT VERIFY: {}",
                            r.item_id,
                            r.problem.as_deref().unwrap_or_default()
                        );
                    }
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        EvidenceCommand::List {
            case,
            wait,
            custody,
            common,
        } => {
            let rows: Vec<EvidenceRow> =
                client(&common)?.get(&format!("/v1/evidence/{case}?wait={wait}"))?;
            if common.json {
                return print_json(&rows).map(|()| ExitCode::SUCCESS);
            }
            if rows.is_empty() {
                println!("No evidence in case {case} yet.");
            }
            for r in &rows {
                list_row(r, custody);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list_row(r: &EvidenceRow, custody: bool) {
    let mut state = r.state.clone();
    if state == "expected" {
        state = format!("receiving {}%", r.chunks_done * 100 / r.chunks.max(1));
    }
    let sha = r.sha256.as_deref().unwrap_or_default();
    println!(
        "{:<16} {:<10} {:<11} {:>14} B  {:<14} {}  {}",
        r.item_id,
        r.direction,
        r.transfer.as_str().unwrap_or_default(),
        r.size,
        state,
        &sha[..16.min(sha.len())],
        r.description,
    );
    if let Some(p) = &r.problem {
        println!("{:<16} {state}: {p}", "");
    }
    if !custody {
        return;
    }
    // Entries a partner reported carry this node's time of receipt too.
    for (i, c) in r.custody.as_array().into_iter().flatten().enumerate() {
        let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
        let note = c["note"]
            .as_str()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let recorded = r
            .custody_reports
            .iter()
            .find(|p| (p.first..p.first.saturating_add(p.count)).contains(&i))
            .map(|p| format!("  [reported by {}, recorded here {}]", p.by, p.recorded_at))
            .unwrap_or_default();
        println!(
            "{:<16} {}  {}  {}{note}{recorded}",
            "",
            text("at"),
            text("actor"),
            text("action")
        );
    }
}

/// A progress bar on the terminal (none when stdout is not one).
fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:24!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    ) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(what.to_string());
    b
}

fn add(a: AddArgs) -> Result<ExitCode> {
    let mode: rogatory_proto::message::TransferMode =
        parse_enum(&a.mode, "mode (send, out-of-band or hash-only)")?;
    let send = mode == rogatory_proto::message::TransferMode::Send;
    let out_of_band = match (mode, &a.carrier) {
        (rogatory_proto::message::TransferMode::OutOfBand, Some(carrier)) => {
            Some(rogatory_proto::message::OutOfBandDelivery {
                carrier: carrier.clone(),
                reference: a.tracking.clone(),
            })
        }
        (rogatory_proto::message::TransferMode::OutOfBand, None) => {
            bail!("an out-of-band item needs --carrier (e.g. courier, diplomatic bag)")
        }
        (_, Some(_)) => bail!("--carrier is for out-of-band items only"),
        _ => None,
    };
    let mut perceptual = Vec::new();
    for p in &a.perceptual_hashes {
        let Some((algorithm, value)) = p.split_once(':') else {
            bail!("--perceptual-hash {p}: give ALGORITHM:VALUE");
        };
        perceptual.push(PerceptualHash {
            algorithm: algorithm.to_string(),
            value: value.to_string(),
        });
    }
    let data = super::init::data_dir(a.common.data_dir.clone())?;
    let c = client(&a.common)?;
    // The case must exist before anything is hashed.
    c.get::<serde_json::Value>(&format!("/v1/cases/{}", a.case))
        .with_context(|| format!("case {}", a.case))?;
    let bars = indicatif::MultiProgress::new();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<crate::evidence::Hashed>>>> = a
        .paths
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..cores.min(a.paths.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = a.paths.get(i) else { break };
                    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default();
                    let b = bars.add(bar(len, &name));
                    let r = crate::evidence::hash_and_seal(
                        path,
                        send.then_some(data.as_path()),
                        &|done| b.set_position(done),
                    );
                    b.finish();
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let mut items = Vec::with_capacity(a.paths.len());
    for (path, slot) in a.paths.iter().zip(results) {
        let h = slot
            .into_inner()
            .ok()
            .flatten()
            .with_context(|| format!("{} was not read", path.display()))?
            .with_context(|| format!("cannot add {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let item = EvidenceItem {
            item_id: String::new(),
            description: a.description.clone().unwrap_or_else(|| name.clone()),
            media_type: a
                .media_type
                .clone()
                .unwrap_or_else(|| crate::evidence::media_type(path).to_string()),
            size: h.size,
            sha256: Some(h.sha256),
            transfer: Some(mode),
            acquisition: Acquisition {
                method: a.method.clone(),
                seized_from: a.seized_from.clone(),
                seized_at: a.seized_at.clone(),
                acquired_by: None,
                tool: None,
            },
            // The node adds the entry for this addition, with the agency and the user.
            custody: Vec::new(),
            handling: None,
            perceptual_hashes: perceptual.clone(),
            content_key: None,
            out_of_band: out_of_band.clone(),
        };
        let (staged, content_key) = match &h.sealed {
            Some((staged, key)) => (Some(staged.clone()), Some(hex::encode(key.as_bytes()))),
            None => (None, None),
        };
        let add = AddItem {
            item: serde_json::to_value(&item)?,
            staged,
            content_key,
        };
        items.push((path.clone(), h.sha256, h.size, add));
    }
    let r: Added = c.post(
        &format!("/v1/evidence/{}", a.case),
        &AddEvidence {
            items: items.iter().map(|(_, _, _, b)| b.clone()).collect(),
        },
    )?;
    if a.common.json {
        return print_json(&r).map(|()| ExitCode::SUCCESS);
    }
    for ((path, sha, size, _), id) in items.iter().zip(&r.items) {
        println!(
            "{id}  {}  {size} B  sha256 {}  ({})",
            path.display(),
            sha.to_hex(),
            a.mode
        );
    }
    Ok(ExitCode::SUCCESS)
}
