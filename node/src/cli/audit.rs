//! `rogatory audit …`: the per-case audit logs of a data directory, proofs, and offline
//! verification.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use clap::Subcommand;
use rogatory_proto::audit::entry::{AuditEntry, case_origin};
use rogatory_proto::audit::merkle::{leaf_hash, verify_inclusion};
use rogatory_proto::audit::note::{NoteVerifier, Policy, TlogProof, verify_checkpoint};
use rogatory_proto::audit::witness::{CarriedProof, ConsistencyText};
use rogatory_proto::ids::CaseId;
use rogatory_proto::time::format_unix;

use crate::api::wire::{
    AlertRow, CheckpointText, Consistency, LogEntry, ProofText, StoreReport, VerifyStore,
};
use crate::client::{ApiFailure, Client, NotRunning};
use crate::files;

use crate::store::Store;

/// `rogatory audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List a case's audit entries (commitments only: ids and hashes, never content).
    Log {
        /// The case id.
        case: CaseId,
        /// The agency's data directory (its key directory).
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a case's latest signed checkpoint (C2SP signed note), byte for byte.
    Checkpoint {
        /// The case id.
        case: CaseId,
        /// The agency's data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: PathBuf,
        /// The checkpoint of an earlier tree size.
        #[arg(long)]
        size: Option<u64>,
    },
    /// Print a c2sp.org/tlog-proof@v1 proof that entry N is in the case's log (the entry itself
    /// travels as the proof's extra data).
    Prove {
        /// The case id.
        case: CaseId,
        /// The entry's index (its sequence number).
        #[arg(long)]
        index: u64,
        /// Prove against the checkpoint of this tree size (default: the latest).
        #[arg(long)]
        size: Option<u64>,
        /// The agency's data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Print a consistency proof between two sizes of a case's log, in the C2SP tlog-witness
    /// form: `old A`, the proof hashes, a blank line, the signed checkpoint of size B.
    Consistency {
        /// The case id.
        case: CaseId,
        /// The older size.
        #[arg(long)]
        from: u64,
        /// The newer size (default: the latest).
        #[arg(long)]
        to: Option<u64>,
        /// The agency's data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Verify a tlog-proof offline: the checkpoint's signature (with the agency's verifier key,
    /// or a tlog-policy) and the entry's inclusion. Needs no store and no secret.
    VerifyProof {
        /// The proof file.
        proof: PathBuf,
        /// The agency's checkpoint verifier key (`rogatory card show` prints it).
        #[arg(long, required_unless_present = "policy")]
        vkey: Option<String>,
        /// A tlog-policy file (logs, witnesses, quorum) instead of --vkey.
        #[arg(long, conflicts_with = "vkey")]
        policy: Option<PathBuf>,
        /// Require the proof to be about this case (its log's origin).
        #[arg(long)]
        case: Option<CaseId>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify offline that a case's log only grew: a consistency proof (the output of `audit
    /// consistency`) from an earlier checkpoint of the log, which you kept (`audit checkpoint
    /// --size N`, a bundle, a receipt), to the proof's newer checkpoint; both checkpoints'
    /// signatures are checked with the agency's verifier key. Needs no store and no secret.
    /// Exits 1 if anything does not hold.
    VerifyConsistency {
        /// The proof file (`audit consistency … > FILE`).
        proof: PathBuf,
        /// The earlier signed checkpoint, of the proof's older size.
        #[arg(long)]
        old: PathBuf,
        /// The agency's checkpoint verifier key (`rogatory card show` prints it).
        #[arg(long)]
        vkey: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-derive every case's tree from the stored entries and check it against the stored
    /// hashes and every signed checkpoint; report each changed, missing or reordered entry and
    /// any rolled-back checkpoint. Exits 1 if anything is wrong.
    VerifyStore {
        /// The agency's data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: PathBuf,
        /// The agency's checkpoint verifier key, obtained independently (an insider who rewrote
        /// the store could also have replaced the card beside it); default: the keys of the
        /// agency's key history beside it (every signing key it had).
        #[arg(long)]
        vkey: Option<String>,
    },
    /// Verify case export bundles offline (from `rogatory case export`; spec/BUNDLE.md): every
    /// signature, every receipt against its envelope, every inclusion proof, every checkpoint
    /// against the log, the partners' cosignatures against the policy, each sender's chain of
    /// envelopes, and — given both sides' bundles — that what one side sent the other holds
    /// with the same receipt and that both saw one history. Needs no node, no network and no
    /// secret. Prints what it proved, or exactly which check failed where, and the timeline.
    /// Exits 0 only if everything holds, 1 if a check fails, 2 if a file cannot be read.
    /// `--html FILE` also writes a self-contained report for a court clerk. `rogatory-verify`
    /// is the same check on its own.
    Verify(rogatory_proto::verify_cli::VerifyArgs),
    /// List the alerts this node raised: a partner whose log of a shared case forked or rolled
    /// back (its envelope was refused), or a receipt whose cosignature of this node's
    /// checkpoint is missing or does not verify. Exits 1 if there is any.
    Alerts {
        /// The agency's data directory (the running node is asked; a stopped node's store is
        /// read).
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The auditor's keys for `audit verify --key`: a key directory in clear (as for
/// `rogatory-verify`), or one whose keys are encrypted under a passphrase.
fn auditor_keys(
    args: &rogatory_proto::verify_cli::VerifyArgs,
) -> Result<Option<rogatory_proto::verify_cli::AuditorKeys>> {
    let Some(path) = &args.key else {
        return Ok(None);
    };
    if path.is_dir() && path.join(crate::keydir::SECRET_KEYS_ENCRYPTED).exists() {
        let kd = crate::keydir::KeyDir::load(path)?;
        return Ok(Some(rogatory_proto::verify_cli::AuditorKeys {
            keys: kd.keys,
            card: kd.card,
        }));
    }
    Ok(Some(rogatory_proto::verify_cli::load_auditor_keys(path)?))
}

fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn open_store(dir: &std::path::Path) -> Result<Store> {
    if !dir.join(crate::store::STORE_FILE).exists() {
        bail!(
            "{} holds no store ({}); nothing has been logged there yet",
            dir.display(),
            crate::store::STORE_FILE
        );
    }
    Store::open_read_only(dir)
        .with_context(|| format!("cannot open the store in {}", dir.display()))
}

pub(crate) fn run(c: AuditCommand) -> Result<ExitCode> {
    match c {
        AuditCommand::Log {
            case,
            data_dir,
            json,
        } => {
            let entries: Vec<LogEntry> = node_or_store(
                &data_dir,
                |c| c.get(&format!("/v1/audit/{case}/log")),
                |s| crate::api::audit::log_entries(s, &case),
            )?;
            if json {
                let list: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|e| {
                        let mut v = e.entry.clone();
                        v["leaf_hash"] = e.leaf_hash.clone().into();
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_log(&case, &entries)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoint {
            case,
            data_dir,
            size,
        } => {
            let query = size.map(|s| format!("?size={s}")).unwrap_or_default();
            let note: CheckpointText = node_or_store(
                &data_dir,
                |c| c.get(&format!("/v1/audit/{case}/checkpoint{query}")),
                |s| crate::api::audit::checkpoint_text(s, &case, size),
            )?;
            print!("{}", note.note);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prove {
            case,
            index,
            size,
            data_dir,
        } => {
            let query = size.map(|s| format!("&size={s}")).unwrap_or_default();
            let proof: ProofText = node_or_store(
                &data_dir,
                |c| c.get(&format!("/v1/audit/{case}/prove?index={index}{query}")),
                |s| crate::api::audit::proof_text(s, &case, index, size),
            )?;
            print!("{}", proof.proof);
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Consistency {
            case,
            from,
            to,
            data_dir,
        } => {
            let query = to.map(|t| format!("&to={t}")).unwrap_or_default();
            let p: Consistency = node_or_store(
                &data_dir,
                |c| c.get(&format!("/v1/audit/{case}/consistency?from={from}{query}")),
                |s| crate::api::audit::consistency_proof(s, &case, from, to),
            )?;
            let text = ConsistencyText {
                proof: CarriedProof {
                    old_size: p.from,
                    hashes: p
                        .hashes
                        .iter()
                        .map(|h| {
                            base64::engine::general_purpose::STANDARD
                                .decode(h)
                                .ok()
                                .and_then(|b| b.try_into().ok())
                                .context("the node answered a hash that is not base64 SHA-256")
                        })
                        .collect::<Result<_>>()?,
                },
                checkpoint: p.checkpoint.into_bytes(),
            };
            print!("{}", text.to_text());
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::VerifyProof {
            proof,
            vkey,
            policy,
            case,
            json,
        } => {
            let text = String::from_utf8(files::read_limited(&proof, 1 << 20)?)
                .with_context(|| format!("{} is not text", proof.display()))?;
            let p = TlogProof::parse(&text)
                .with_context(|| format!("{} is not a tlog-proof", proof.display()))?;
            let (checkpoint, witnesses) = match (&vkey, &policy) {
                (Some(v), _) => {
                    let v = NoteVerifier::parse(v).context("--vkey is not a verifier key")?;
                    (
                        verify_checkpoint(&p.checkpoint, &v, &[])
                            .context("the checkpoint does not verify")?
                            .0,
                        Vec::new(),
                    )
                }
                (None, Some(path)) => {
                    let text = String::from_utf8(files::read_limited(path, 1 << 20)?)
                        .with_context(|| format!("{} is not text", path.display()))?;
                    let pol = Policy::parse(&text)
                        .with_context(|| format!("{} is not a tlog-policy", path.display()))?;
                    pol.verify(&p.checkpoint)
                        .context("the checkpoint does not satisfy the policy")?
                }
                (None, None) => bail!("give --vkey or --policy"),
            };
            let extra = p.extra.as_deref().context(
                "the proof carries no entry (extra data), so there is nothing to check it against",
            )?;
            verify_inclusion(
                p.index,
                checkpoint.size,
                &leaf_hash(extra),
                &p.proof,
                &checkpoint.root,
            )
            .context("the inclusion proof does not verify")?;
            let entry =
                AuditEntry::from_cbor(extra).context("the proven entry is not an audit entry")?;
            if entry.seq != p.index {
                bail!(
                    "the proven entry says it is number {}, not {}",
                    entry.seq,
                    p.index
                );
            }
            // The entry must belong to the log the checkpoint is for.
            let own_origin = case_origin(&entry.actor.agency, &entry.case_id);
            if own_origin != checkpoint.origin {
                bail!(
                    "the proven entry belongs to {own_origin}, not to the log {} the checkpoint is for",
                    checkpoint.origin
                );
            }
            if let Some(c) = case
                && c != entry.case_id
            {
                bail!("the proof is about case {}, not case {c}", entry.case_id);
            }
            if json {
                let out = serde_json::json!({
                    "verified": true,
                    "origin": checkpoint.origin,
                    "tree_size": checkpoint.size,
                    "index": p.index,
                    "witnesses": witnesses,
                    "entry": entry,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "Proof VERIFIED: entry {} is in {} at tree size {}",
                    p.index, checkpoint.origin, checkpoint.size
                );
                if !witnesses.is_empty() {
                    println!("  cosigned by: {}", witnesses.join(", "));
                }
                println!("  entry: {}", serde_json::to_string(&entry)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::VerifyConsistency {
            proof,
            old,
            vkey,
            json,
        } => {
            let read = |p: &PathBuf| -> Result<String> {
                String::from_utf8(files::read_limited(p, 1 << 20)?)
                    .with_context(|| format!("{} is not text", p.display()))
            };
            let text = ConsistencyText::parse(&read(&proof)?)
                .with_context(|| format!("{} is not a consistency proof", proof.display()))?;
            let v = NoteVerifier::parse(&vkey).context("--vkey is not a verifier key")?;
            let (new, _) = verify_checkpoint(&text.checkpoint, &v, &[])
                .context("the proof's checkpoint does not verify")?;
            let (earlier, _) = verify_checkpoint(read(&old)?.as_bytes(), &v, &[])
                .with_context(|| format!("the checkpoint in {} does not verify", old.display()))?;
            text.verify(&earlier, &new)
                .context("the log did not only grow between the two checkpoints")?;
            if json {
                let out = serde_json::json!({
                    "verified": true,
                    "origin": new.origin,
                    "old_size": earlier.size,
                    "new_size": new.size,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "Consistency VERIFIED: {} only grew from size {} to size {} (both checkpoints signed by {})",
                    new.origin,
                    earlier.size,
                    new.size,
                    v.name()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify(args) => match auditor_keys(&args)
            .and_then(|k| rogatory_proto::verify_cli::run_as(&args, k.as_ref()).map_err(Into::into))
        {
            Ok(true) => Ok(ExitCode::SUCCESS),
            Ok(false) => Ok(ExitCode::FAILURE),
            Err(e) => {
                eprintln!("error: {e}");
                Ok(ExitCode::from(2))
            }
        },
        AuditCommand::Alerts { data_dir, json } => {
            let rows: Vec<AlertRow> = node_or_store(
                &data_dir,
                |c| c.get("/v1/alerts"),
                crate::api::audit::alert_rows,
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("No alerts: every partner checkpoint witnessed here was consistent.");
            } else {
                println!("{}:", count(rows.len() as u64, "ALERT", "ALERTS"));
                for a in &rows {
                    println!(
                        "  #{} {}  {}  case {}  {}: {}",
                        a.number, a.at, a.peer, a.case_id, a.kind, a.detail
                    );
                }
            }
            Ok(if rows.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::VerifyStore { data_dir, vkey } => {
            let (vkey, earlier) = match vkey {
                Some(v) => (
                    NoteVerifier::parse(&v)
                        .context("--vkey is not a verifier key")?
                        .vkey()
                        .to_string(),
                    Vec::new(),
                ),
                None => {
                    let h = crate::keydir::own_history(&data_dir)?;
                    let card = h.current_card();
                    let earlier: Vec<String> = h
                        .cards()
                        .iter()
                        .filter(|c| c.signing_key() != card.signing_key())
                        .map(|c| c.note_verifier_key())
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    (card.note_verifier_key(), earlier)
                }
            };
            println!("Checking against verifier key {vkey}");
            for e in &earlier {
                println!("  and, for what was signed before a rotation, {e}");
            }
            let report: StoreReport = node_or_store(
                &data_dir,
                |c| {
                    c.post(
                        "/v1/audit/verify-store",
                        &VerifyStore {
                            vkey: vkey.clone(),
                            earlier: earlier.clone(),
                        },
                    )
                },
                |s| crate::api::audit::store_report(s, &vkey, &earlier),
            )?;
            if report.findings.is_empty() {
                println!(
                    "Store intact: {}, {} and {} re-derived and verified; {} checked.",
                    count(report.cases as u64, "case log", "case logs"),
                    count(report.entries, "entry", "entries"),
                    count(
                        report.checkpoints,
                        "signed checkpoint",
                        "signed checkpoints"
                    ),
                    count(report.records, "sealed record", "sealed records")
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "Store DAMAGED or TAMPERED WITH: {} problem(s)",
                report.findings.len()
            );
            for f in &report.findings {
                match f.entry {
                    Some(e) => println!("  case {}, entry {e}: {}", f.case, f.problem),
                    None => println!("  case {}: {}", f.case, f.problem),
                }
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The running node's answer (through its API), or, when no node runs from `dir`, the same
/// computed on its store opened read-only: the command prints the same either way.
fn node_or_store<T>(
    dir: &std::path::Path,
    online: impl FnOnce(&Client) -> Result<T>,
    offline: impl FnOnce(&Store) -> Result<T, crate::api::ApiError>,
) -> Result<T> {
    // No socket: no node runs from there (a copy of a store, say); the directory need not be
    // private to be read.
    let asked = if dir.join(crate::api::listen::SOCKET_FILE).exists() {
        Client::connect(dir).and_then(|c| online(&c))
    } else {
        Err(NotRunning(format!("no node runs from {}", dir.display())).into())
    };
    match asked {
        Err(e) if e.is::<NotRunning>() => {
            let store = open_store(dir)?;
            offline(&store).map_err(|e| {
                ApiFailure {
                    status: e.0.as_u16(),
                    message: e.1,
                }
                .into()
            })
        }
        other => other,
    }
}

fn print_log(case: &CaseId, entries: &[LogEntry]) -> Result<()> {
    println!(
        "Audit log of case {case}: {}",
        count(entries.len() as u64, "entry", "entries")
    );
    println!(
        "{:>5}  {:<20}  {:<22}  {:<16}  {:<16}  commitment",
        "seq", "time (UTC)", "event", "actor", "peer"
    );
    for row in entries {
        let e: AuditEntry = serde_json::from_value(row.entry.clone())
            .context("an audit entry this client does not read")?;
        let event = serde_json::to_value(e.event)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let commitment = e
            .envelope_id
            .map(|h| format!("envelope {}", &h.to_hex()[..16]))
            .or_else(|| {
                e.receipt_hash
                    .map(|h| format!("receipt {}", &h.to_hex()[..16]))
            })
            .or_else(|| e.commitment.map(|h| format!("hash {}", &h.to_hex()[..16])))
            .unwrap_or_default();
        println!(
            "{:>5}  {:<20}  {:<22}  {:<16}  {:<16}  {commitment}",
            e.seq,
            format_unix(e.time),
            event,
            e.actor.agency.to_string(),
            e.peer.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        );
    }
    Ok(())
}
