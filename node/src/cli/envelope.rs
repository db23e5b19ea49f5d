//! `rogatory envelope …`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use rogatory_proto::audit::entry::{AuditEntry, AuditEvent};
use rogatory_proto::audit::note::{Checkpoint, Note};
use rogatory_proto::card::AgencyCard;
use rogatory_proto::envelope::{
    self, Addressee, ChainLink, EnvelopeInfo, Limits, Recipient, SealParams, Sender,
};
use rogatory_proto::ids::{AgencyId, CaseId, EnvelopeId, MessageId};
use rogatory_proto::message::MessageType;
use rogatory_proto::time::{format_unix, now_unix};

use crate::files;
use crate::keydir::{KeyDir, load_card};
use crate::store::{LogSigner, OutboxEntry, OutboxState, Store};

/// `rogatory envelope` subcommands.
#[derive(Debug, Subcommand)]
pub enum EnvelopeCommand {
    /// Sign, encrypt for each addressee, and sign again: one envelope file per addressee.
    Seal {
        /// The sender's key directory (from `rogatory keygen`).
        #[arg(long)]
        key: PathBuf,
        /// An addressee (repeatable): a pinned partner's agency id, or an agency card file. With
        /// several, --out is a directory and each envelope is named `<AGENCY-ID>.cose`.
        #[arg(long = "to", required = true)]
        to: Vec<PathBuf>,
        /// The case id (a UUID), or `new` for a fresh UUIDv7 (printed).
        #[arg(long)]
        case: String,
        /// The message type.
        #[arg(long = "type")]
        kind: MessageType,
        /// The message body as JSON (see spec/examples/).
        #[arg(long)]
        body: PathBuf,
        /// Output file (one addressee) or directory (several).
        #[arg(long)]
        out: PathBuf,
        /// Message id (a UUID); a fresh UUIDv7 by default.
        #[arg(long)]
        message_id: Option<MessageId>,
        /// Position in the chain of this case's envelopes to the addressee (1 = first).
        #[arg(long, default_value_t = 1)]
        sequence: u64,
        /// Envelope id (hex) of the previous envelope in that chain; required when --sequence > 1.
        #[arg(long)]
        previous: Option<EnvelopeId>,
        /// A file holding the checkpoint to carry instead of the sender's latest checkpoint of
        /// the case log (which is carried by default when the case has a log here).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Overwrite existing output files.
        #[arg(long)]
        force: bool,
    },
    /// Verify and decrypt an envelope addressed to you; print the message as JSON.
    Open {
        /// Your key directory.
        #[arg(long)]
        key: PathBuf,
        /// Agency cards you trust (repeatable); the sender's must be among them. Default: the
        /// partners pinned in the key directory (`rogatory peer add`).
        #[arg(long = "trust")]
        trust: Vec<PathBuf>,
        /// The envelope file.
        envelope: PathBuf,
        /// Largest envelope accepted, in bytes.
        #[arg(long, default_value_t = envelope::DEFAULT_MAX_ENVELOPE_BYTES)]
        max_bytes: usize,
    },
    /// Show an envelope's outer metadata without decrypting it; with --trust, also check the
    /// origin signature against the sender's card.
    Inspect {
        /// The sender's agency card, to verify the origin signature.
        #[arg(long)]
        trust: Option<PathBuf>,
        /// The envelope file.
        envelope: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Largest envelope accepted, in bytes.
        #[arg(long, default_value_t = envelope::DEFAULT_MAX_ENVELOPE_BYTES)]
        max_bytes: usize,
    },
}

pub(crate) fn run(c: EnvelopeCommand) -> Result<ExitCode> {
    match c {
        EnvelopeCommand::Seal {
            key,
            to,
            case,
            kind,
            body,
            out,
            message_id,
            sequence,
            previous,
            checkpoint,
            force,
        } => {
            if to.len() > 1 && sequence > 1 {
                bail!(
                    "--sequence and --previous describe the chain to one addressee; seal for each \
                     addressee separately when the envelope is not the first of the case"
                );
            }
            let sender = KeyDir::load(&key)?;
            let pinned = KeyDir::pinned(&key)?;
            let mut cards = Vec::with_capacity(to.len());
            for t in to {
                // An agency id names a pinned partner; anything else is a card file.
                match (
                    t.exists(),
                    rogatory_proto::ids::AgencyId::new(&t.to_string_lossy()),
                ) {
                    (false, Ok(id)) => cards.push(
                        pinned
                            .iter()
                            .find(|c| c.id() == &id)
                            .cloned()
                            .with_context(|| {
                                format!(
                                    "{id} is not pinned in {} (rogatory peer add)",
                                    key.display()
                                )
                            })?,
                    ),
                    _ => cards.extend(load_cards(vec![t])?),
                }
            }
            let case_id = if case == "new" {
                let id = CaseId::generate();
                eprintln!("new case id: {id}");
                id
            } else {
                case.parse().context("--case must be a UUID or `new`")?
            };
            let message = super::request::read_body(&body, kind)?
                .with_context(|| format!("{} cannot be sent", body.display()))?;
            // The envelope carries the sender's latest checkpoint of the case log (if the case
            // has one here), unless one is given explicitly, and for each addressee the proof
            // that it extends the one the previous envelope to it carried (spec/PROTOCOL.md
            // §6.6). Read, sealed and recorded in one transaction.
            let store = Store::open(&key).context("cannot open the audit store")?;
            let mut batch = store.batch().context("cannot open the audit store")?;
            let checkpoint = match checkpoint {
                Some(p) => Some(files::read_limited(&p, 16 * 1024)?),
                None => batch.checkpoint(&case_id)?,
            };
            let size = checkpoint
                .as_deref()
                .map(|n| {
                    Note::parse(n)
                        .and_then(|n| Checkpoint::parse(n.text()))
                        .map(|c| c.size)
                        .context("the checkpoint to carry is not a signed checkpoint")
                })
                .transpose()?;
            let chain = ChainLink { sequence, previous };
            let mut addressees: Vec<Addressee<'_>> = Vec::with_capacity(cards.len());
            for card in &cards {
                let consistency = batch
                    .carried_proof(&case_id, card.id(), size)?
                    .map_err(|e| anyhow::anyhow!("cannot prove the case's log only grew: {e}"))?;
                addressees.push(Addressee {
                    card,
                    chain,
                    consistency,
                });
            }
            let params = SealParams {
                case_id,
                message_id: message_id.unwrap_or_else(MessageId::generate),
                sent_at: now_unix(),
                checkpoint,
            };
            let sealed = envelope::seal(
                &Sender {
                    card: &sender.card,
                    keys: &sender.keys,
                },
                &addressees,
                &message,
                &params,
                &Limits::default(),
            )
            .context("cannot seal the envelope")?;
            let several = sealed.len() > 1;
            let paths: Vec<PathBuf> = sealed
                .iter()
                .map(|s| {
                    if several {
                        out.join(format!("{}.cose", s.to))
                    } else {
                        out.clone()
                    }
                })
                .collect();
            if !force && let Some(p) = paths.iter().find(|p| p.exists()) {
                bail!(
                    "{} already exists (give --force to replace it); nothing was written",
                    p.display()
                );
            }
            // Log before writing: an envelope file that exists is always in the sender's log.
            let now = now_unix();
            let mut entries: Vec<AuditEntry> = sealed
                .iter()
                .map(|s| {
                    audit_entry(
                        &sender.card,
                        &params.case_id,
                        now,
                        AuditEvent::EnvelopeSent,
                        &s.to,
                        s.id,
                    )
                })
                .collect();
            let queued: Vec<OutboxEntry> = sealed
                .iter()
                .map(|s| OutboxEntry {
                    content_key: Some(crate::store::wrap_envelope_key(
                        &sender.keys.storage_key(),
                        &s.id,
                        &s.key,
                    )),
                    case_id: params.case_id,
                    to: s.to.clone(),
                    sealed_at: now,
                    envelope: s.bytes.clone(),
                    state: OutboxState::Queued,
                    receipt: None,
                    order: None,
                    emergency: false,
                })
                .collect();
            (|| -> Result<(), crate::store::StoreError> {
                for (e, s) in queued.iter().zip(&sealed) {
                    batch.enqueue(&mut e.clone(), false)?;
                    if let Some(size) = size {
                        batch.set_witness_out(&params.case_id, &s.to, size)?;
                    }
                }
                batch.append(&signer(&sender), &params.case_id, &mut entries)?;
                batch.commit()
            })()
            .context(
                "cannot record the envelopes in the outbox and the case's audit log; nothing was written",
            )?;
            if several {
                files::create_private_dir(&out)?;
            }
            for (s, path) in sealed.iter().zip(&paths) {
                files::write_atomic(path, &s.bytes, false, force)?;
                println!("{}  {}  -> {}", s.id, s.to, path.display());
            }
            eprintln!(
                "sealed {kind} {} of case {} for {} addressee(s)",
                params.message_id,
                params.case_id,
                sealed.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        EnvelopeCommand::Open {
            key,
            trust,
            envelope: path,
            max_bytes,
        } => {
            let me = KeyDir::load(&key)?;
            // Partners' key histories: an envelope signed with a key a rotation replaced opens.
            let trusted: crate::trust::Partners = if trust.is_empty() {
                let pinned = KeyDir::partners(&key)?;
                if pinned.is_empty() {
                    bail!(
                        "no trusted cards: give --trust CARD, or pin partners with `rogatory peer add`"
                    );
                }
                pinned
                    .into_iter()
                    .map(|h| (h.agency().clone(), h))
                    .collect()
            } else {
                let cards = load_cards(trust.clone())?;
                let mut partners = crate::trust::partners_of(cards);
                for p in trust {
                    let h = crate::keydir::load_history(&super::card_path(p))?;
                    if !h.is_bare_card() {
                        partners.insert(h.agency().clone(), h);
                    }
                }
                partners
            };
            let bytes = files::read_limited(&path, max_bytes as u64)?;
            let limits = Limits {
                max_envelope_bytes: max_bytes,
                ..Limits::default()
            };
            let opened = envelope::open(
                &bytes,
                &Recipient {
                    card: &me.card,
                    keys: &me.keys,
                },
                &trusted,
                &limits,
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e} (reason code {}, {})",
                    path.display(),
                    u16::from(e.reason_code()),
                    e.reason_code().name()
                )
            })?;
            let store = Store::open(&key).context("cannot open the audit store")?;
            let mut entries = vec![audit_entry(
                &me.card,
                &opened.case_id,
                now_unix(),
                AuditEvent::EnvelopeReceived,
                &opened.info.from,
                opened.info.id,
            )];
            store
                .append(&signer(&me), &opened.case_id, &mut entries)
                .context("cannot record the envelope in the case's audit log")?;
            let mut out = info_json(&opened.info);
            out["audit_seq"] = entries[0].seq.into();
            out["case_id"] = opened.case_id.to_string().into();
            out["message_type"] = opened.message.kind().as_str().into();
            out["recipients"] = opened
                .recipients
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .into();
            out["message"] = opened.message.to_json();
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        EnvelopeCommand::Inspect {
            trust,
            envelope: path,
            json,
            max_bytes,
        } => {
            let bytes = files::read_limited(&path, max_bytes as u64)?;
            let limits = Limits {
                max_envelope_bytes: max_bytes,
                ..Limits::default()
            };
            let info = envelope::inspect(&bytes, &limits)
                .with_context(|| format!("{} is not a Rogatory envelope", path.display()))?;
            let origin = match &trust {
                None => None,
                Some(card) => {
                    let card = load_card(&super::card_path(card.clone()))?;
                    Some(
                        envelope::verify_origin(&bytes, &card, &limits)
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                    )
                }
            };
            if json {
                let mut out = info_json(&info);
                out["origin_signature"] = match &origin {
                    None => "not checked".into(),
                    Some(Ok(())) => "valid".into(),
                    Some(Err(e)) => format!("INVALID: {e}").into(),
                };
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print_info(&info);
                match &origin {
                    None => println!(
                        "  Origin:        not checked (give --trust SENDER-CARD to verify the signature)"
                    ),
                    Some(Ok(())) => {
                        println!("  Origin:        signature VALID: sent by {}", info.from)
                    }
                    Some(Err(e)) => println!("  Origin:        signature INVALID: {e}"),
                }
            }
            match origin {
                Some(Err(_)) => bail!("the origin signature of {} does not verify", path.display()),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
    }
}

pub(crate) fn signer(kd: &KeyDir) -> LogSigner<'_> {
    LogSigner {
        agency: kd.card.id(),
        key: &kd.keys.signing,
    }
}

pub(crate) fn audit_entry(
    us: &AgencyCard,
    case: &CaseId,
    time: u64,
    event: AuditEvent,
    peer: &AgencyId,
    envelope: EnvelopeId,
) -> AuditEntry {
    crate::engine::audit_entry(us.id(), case, time, event, peer, envelope)
}

/// Loads agency cards, refusing two cards for the same agency (which one to trust would be a
/// guess).
fn load_cards(paths: Vec<PathBuf>) -> Result<Vec<AgencyCard>> {
    let mut cards: Vec<AgencyCard> = Vec::with_capacity(paths.len());
    for p in paths {
        let path = super::card_path(p);
        let card = load_card(&path)?;
        if cards.iter().any(|c| c.id() == card.id()) {
            bail!(
                "{} is a second card for {}; give only the card you trust",
                path.display(),
                card.id()
            );
        }
        cards.push(card);
    }
    Ok(cards)
}

fn info_json(i: &EnvelopeInfo) -> serde_json::Value {
    serde_json::json!({
        "envelope_id": i.id.to_hex(),
        "size": i.size,
        "protocol_version": i.version,
        "from": i.from.as_str(),
        "to": i.to.as_str(),
        "message_id": i.message_id.to_string(),
        "sent_at": format_unix(i.sent_at),
        "case_commitment": i.case_commitment.to_hex(),
        "sequence": i.chain.sequence,
        "previous": i.chain.previous.map(|p| p.to_hex()),
        "checkpoint": i.checkpoint.as_ref().map(|c| String::from_utf8_lossy(c).into_owned()),
        "consistency": i.consistency.as_ref().map(|p| serde_json::json!({
            "old_size": p.old_size,
            "hashes": p.hashes.iter().map(hex::encode).collect::<Vec<_>>(),
        })),
        "signer_key_id": hex::encode(i.signer_key_id),
    })
}

fn print_info(i: &EnvelopeInfo) {
    println!(
        "Envelope {} ({} bytes, protocol v{})",
        i.id, i.size, i.version
    );
    println!("  From:          {}", i.from);
    println!("  To:            {}", i.to);
    println!("  Message id:    {}", i.message_id);
    println!(
        "  Sent at:       {} (as stated by the sender)",
        format_unix(i.sent_at)
    );
    println!("  Case:          commitment {}", i.case_commitment);
    match i.chain.previous {
        Some(p) => println!("  Chain:         #{} after {p}", i.chain.sequence),
        None => println!(
            "  Chain:         #{} (first to this addressee)",
            i.chain.sequence
        ),
    }
    println!(
        "  Checkpoint:    {}",
        match (&i.checkpoint, &i.consistency) {
            (None, _) => "none".to_string(),
            (Some(_), None) => "carried".to_string(),
            (Some(_), Some(p)) => format!(
                "carried, with a consistency proof from size {} ({} hashes)",
                p.old_size,
                p.hashes.len()
            ),
        }
    );
    println!("  Signing key:   {}", hex::encode(i.signer_key_id));
}
