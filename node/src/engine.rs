//! The store worker: the one thread that writes, with group commit.
//!
//! Everything that changes the store while the daemon runs — envelopes arriving, envelopes
//! sealed for sending, receipts coming back, content read by a local user — is a [`Job`] on one
//! bounded queue. The worker takes whatever jobs are waiting (up to [`MAX_BATCH`]), does them in
//! one write transaction, commits it (one fsync), and only then answers them: a receipt goes
//! back to a peer, a send is reported queued, a delivery is reported settled. A failed commit
//! answers every job of the batch with a failure and acknowledges nothing.
//!
//! Envelopes that arrive ahead of their sender's chain wait here, in memory, until the gap fills
//! (bounded by [`MAX_WAITING`] envelopes, [`MAX_WAITING_BYTES`] and [`MAX_WAITING_PER_SENDER`],
//! each for at most [`WAIT_LIMIT`]); one that waits too long, or finds no room, gets no answer,
//! and its sender sends it again.
//!
//! When a transaction fails, every job of the batch is answered with a failure, and for
//! [`SOLO_AFTER_FAILURE`] jobs are done one per transaction, so that a job that keeps failing
//! fails alone.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use rogatory_proto::audit::entry::{Actor, AuditEntry, AuditEvent, log_key_name};
use rogatory_proto::audit::note::{Checkpoint, Note};
use rogatory_proto::audit::witness::{self, CarriedProof};
use rogatory_proto::card::AgencyCard;
use rogatory_proto::envelope::{self, Addressee, ChainLink, Limits, SealParams, Sender};
use rogatory_proto::ids::{AgencyId, CaseId, EnvelopeId, MessageId, Sha256Digest};
use rogatory_proto::message::{CustodyEntry, EvidenceStatus, ItemState, ItemStatus, Message};
use rogatory_proto::receipt::ReceiptEvent;

use crate::inbox::{ChainSlot, Outcome};
use crate::keydir::KeyDir;
use crate::store::{Batch, LogSigner, OutboxEntry, OutboxState, Store};

/// Most jobs done in one transaction.
pub const MAX_BATCH: usize = 256;
/// Most envelopes waiting for an earlier one of their chain.
pub const MAX_WAITING: usize = 4096;
/// How long an envelope waits for the gap before it is dropped unanswered.
pub const WAIT_LIMIT: Duration = Duration::from_secs(20);
/// Most bytes of envelopes waiting for an earlier one of their chain, all senders together.
pub const MAX_WAITING_BYTES: usize = 64 * 1024 * 1024;
/// Most envelopes waiting from one sender.
pub const MAX_WAITING_PER_SENDER: usize = 1024;
/// After a failed transaction, how long jobs are done one per transaction.
pub const SOLO_AFTER_FAILURE: Duration = Duration::from_secs(30);
/// Most bytes of envelopes waiting from one sender.
pub const MAX_WAITING_BYTES_PER_SENDER: usize = 16 * 1024 * 1024;
/// Envelopes one partner may have refused within [`REFUSAL_WINDOW`]: beyond them, its envelopes
/// are set aside unanswered (its node retries later) until the window has room again, so that
/// a partner sending garbage cannot grow this node's logs without bound.
pub const MAX_REFUSALS: usize = 100;
/// The window of [`MAX_REFUSALS`].
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(600);

/// A message to send, as the local API takes it.
#[derive(Debug, Clone)]
pub struct SendRequest {
    /// Addressees (pinned partners).
    pub to: Vec<AgencyId>,
    /// The case.
    pub case: CaseId,
    /// The message (validated by the caller).
    pub message: Message,
    /// The local user who sends it, for the audit log.
    pub user: Option<String>,
    /// The node's own confirmation of a partner's proposal, already applied to the case
    /// (`cases::Effect::Confirm`); never set for a user's message.
    pub confirmation: bool,
}

/// One envelope queued by a send.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Queued {
    /// The envelope id.
    pub envelope_id: EnvelopeId,
    /// The addressee.
    pub to: AgencyId,
    /// Its place in the delivery queue.
    pub order: u64,
    /// Its position in the case's chain to the addressee.
    pub sequence: u64,
}

/// The outcome of sending a manifest: the queued envelope and the items it lists, or why not.
pub type ManifestSent = Result<(Vec<Queued>, Vec<String>), String>;

/// Work for the store worker.
pub enum Job {
    /// An envelope from a peer; `token` names the open request awaiting its receipt.
    Inbound {
        /// The request.
        token: u64,
        /// The agency the transport authenticated.
        from: AgencyId,
        /// The envelope.
        bytes: Vec<u8>,
    },
    /// A verified receipt for an envelope sent from here.
    Receipt {
        /// The envelope.
        id: [u8; 32],
        /// Who answered (the addressee, checked by the caller).
        by: AgencyId,
        /// The receipt bytes.
        receipt: Vec<u8>,
        /// Accepted or rejected.
        event: ReceiptEvent,
        /// The reason code of a rejection.
        reason: Option<u16>,
    },
    /// Seal and queue a message.
    Send {
        /// What to send.
        request: Box<SendRequest>,
        /// Where the outcome goes (after the commit).
        reply: tokio::sync::oneshot::Sender<Result<Vec<Queued>, String>>,
    },
    /// Open a case before its first message.
    NewCase {
        /// The case.
        record: Box<crate::cases::CaseRecord>,
        /// The local user.
        user: Option<String>,
        /// Answered after the commit.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// A local user tried to pass on a message its handling codes forbid passing on: log the
    /// refusal.
    Refused {
        /// The case.
        case: CaseId,
        /// The message's envelope.
        envelope: EnvelopeId,
        /// The agency it was to go to.
        to: AgencyId,
        /// The local user.
        user: Option<String>,
        /// Why.
        reason: rogatory_proto::receipt::ReasonCode,
        /// Answered after the commit.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// Add evidence items to a case (their sealed content already moved into place).
    EvidenceAdd {
        /// The case.
        case: CaseId,
        /// The items, without ids (given here: E1, E2 … in the case).
        items: Vec<NewEvidence>,
        /// The local user.
        user: Option<String>,
        /// The item ids given, after the commit.
        reply: tokio::sync::oneshot::Sender<Result<Vec<String>, String>>,
    },
    /// Send the manifest of a case's staged items to a partner.
    EvidenceSend {
        /// The case.
        case: CaseId,
        /// The partner.
        to: AgencyId,
        /// The local user.
        user: Option<String>,
        /// The queued envelope and the items it lists, after the commit.
        reply: tokio::sync::oneshot::Sender<ManifestSent>,
    },
    /// A transfer's durable progress: `done` chunks of the item are synced in its partial file.
    EvidenceProgress {
        /// The case.
        case: CaseId,
        /// The item's record key.
        key: String,
        /// Chunks durable.
        done: u64,
        /// Answered after the commit.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// An item's content arrived whole: verified (in place) or quarantined.
    EvidenceArrived {
        /// The case.
        case: CaseId,
        /// The item's record key.
        key: String,
        /// What became of it.
        outcome: Arrival,
        /// Answered after the commit.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// A local user exports an item's content: log it before the file is written
    /// (`written: false`), then, once it is written whole and checked, extend a received item's
    /// chain of custody and tell the holder (`written: true`).
    EvidenceExported {
        /// The case.
        case: CaseId,
        /// The item's record key.
        key: String,
        /// The local user.
        user: Option<String>,
        /// The file is written, synced and matched the manifest's SHA-256.
        written: bool,
        /// Answered after the commit.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// A local user exported the case's bundle: log it with the bundle's hash.
    BundleExported {
        /// The case.
        case: CaseId,
        /// SHA-256 of the bundle file.
        sha256: Sha256Digest,
        /// The local user.
        user: Option<String>,
        /// The auditor the content is disclosed to (`--for-auditor`).
        auditor: Option<AgencyId>,
        /// Answered after the commit.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// A local user read a message's content: log it before the content is shown.
    Access {
        /// The case.
        case: CaseId,
        /// The envelope.
        envelope: EnvelopeId,
        /// The peer it came from or went to.
        peer: AgencyId,
        /// The local user.
        user: String,
        /// Answered after the commit.
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
}

/// An evidence item to add: its manifest entry and, for a `send` item, the name of its sealed
/// content in the evidence directory and its key.
#[derive(Debug)]
pub struct NewEvidence {
    /// The manifest entry (its `item_id` is given by the worker).
    pub item: rogatory_proto::message::EvidenceItem,
    /// The sealed content's file name and key.
    pub content: Option<(String, rogatory_proto::evidence::ContentKey)>,
}

/// What became of an item's content when it had all arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// Its SHA-256 matched the manifest's; it is in `evidence/` under this name.
    Verified {
        /// The file name.
        blob: String,
    },
    /// It did not match; it is in `evidence/quarantine/`.
    Quarantined {
        /// Why.
        problem: String,
    },
}

/// What the worker tells the event loop.
#[derive(Debug)]
pub enum Notice {
    /// The answer to an inbound request: a receipt, or none (the sender will resend).
    Answer {
        /// The request.
        token: u64,
        /// The receipt, durable.
        receipt: Option<Vec<u8>>,
    },
    /// An envelope was queued for delivery.
    Queued {
        /// The addressee.
        to: AgencyId,
        /// Its place in the queue.
        order: u64,
        /// The envelope.
        id: [u8; 32],
    },
    /// A partner's evidence manifest was accepted in this case: its items are to be fetched.
    EvidenceListed {
        /// The case.
        case: CaseId,
    },
    /// A receipt was recorded (`None`: it could not be, the envelope stays queued).
    Settled {
        /// The envelope.
        id: [u8; 32],
        /// Its new state.
        state: Option<OutboxState>,
    },
}

/// An audit entry by this agency about one envelope.
pub fn audit_entry(
    us: &AgencyId,
    case: &CaseId,
    time: u64,
    event: AuditEvent,
    peer: &AgencyId,
    envelope: EnvelopeId,
) -> AuditEntry {
    AuditEntry {
        seq: 0,
        time,
        case_id: *case,
        event,
        actor: Actor {
            agency: us.clone(),
            user: None,
        },
        peer: Some(peer.clone()),
        envelope_id: Some(envelope),
        receipt_hash: None,
        transition: None,
        reason: None,
        commitment: None,
    }
}

struct Waiting {
    token: u64,
    from: AgencyId,
    bytes: Vec<u8>,
    since: Instant,
}

/// Replies held until the batch commits.
enum Reply {
    /// A slot reserved for an answer that turned out to wait.
    Nothing,
    Notice(Notice),
    Sent(
        tokio::sync::oneshot::Sender<Result<Vec<Queued>, String>>,
        Result<Vec<Queued>, String>,
    ),
    Accessed(
        tokio::sync::oneshot::Sender<Result<(), String>>,
        Result<(), String>,
    ),
    Items(
        tokio::sync::oneshot::Sender<Result<Vec<String>, String>>,
        Result<Vec<String>, String>,
    ),
    Manifest(tokio::sync::oneshot::Sender<ManifestSent>, ManifestSent),
}

/// The store worker's state.
pub struct Engine {
    store: Arc<Store>,
    me: Arc<KeyDir>,
    trusted: Vec<AgencyCard>,
    limits: Limits,
    quotas: crate::evidence::Quotas,
    waiting: HashMap<ChainSlot, Waiting>,
    waiting_bytes: usize,
    solo_until: Option<Instant>,
    /// When each partner's recent envelopes were refused (within [`REFUSAL_WINDOW`]).
    refusals: HashMap<AgencyId, std::collections::VecDeque<Instant>>,
    /// Partners over [`MAX_REFUSALS`] whose alert was raised.
    flooding: std::collections::HashSet<AgencyId>,
}

impl Engine {
    /// A worker over this store, for this agency and its pinned partners.
    pub fn new(
        store: Arc<Store>,
        me: Arc<KeyDir>,
        trusted: Vec<AgencyCard>,
        limits: Limits,
        quotas: crate::evidence::Quotas,
    ) -> Self {
        Self {
            store,
            me,
            trusted,
            limits,
            quotas,
            waiting: HashMap::new(),
            waiting_bytes: 0,
            solo_until: None,
            refusals: HashMap::new(),
            flooding: std::collections::HashSet::new(),
        }
    }

    /// Runs until the job queue closes; then answers what waits with nothing.
    pub fn run(mut self, jobs: Receiver<Job>, notices: tokio::sync::mpsc::Sender<Notice>) {
        loop {
            let first = match jobs.recv_timeout(Duration::from_secs(1)) {
                Ok(j) => j,
                Err(RecvTimeoutError::Timeout) => {
                    self.expire(&notices);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = vec![first];
            let solo = self.solo_until.is_some_and(|t| t > Instant::now());
            while !solo && batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            for reply in self.process(batch) {
                let sent = match reply {
                    Reply::Nothing => true,
                    Reply::Notice(n) => notices.blocking_send(n).is_ok(),
                    Reply::Sent(tx, r) => {
                        let _ = tx.send(r);
                        true
                    }
                    Reply::Accessed(tx, r) => {
                        let _ = tx.send(r);
                        true
                    }
                    Reply::Items(tx, r) => {
                        let _ = tx.send(r);
                        true
                    }
                    Reply::Manifest(tx, r) => {
                        let _ = tx.send(r);
                        true
                    }
                };
                if !sent {
                    return;
                }
            }
            self.expire(&notices);
        }
        for (_, w) in self.waiting.drain() {
            let _ = notices.blocking_send(Notice::Answer {
                token: w.token,
                receipt: None,
            });
        }
    }

    fn expire(&mut self, notices: &tokio::sync::mpsc::Sender<Notice>) {
        let old: Vec<ChainSlot> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.since.elapsed() > WAIT_LIMIT)
            .map(|(s, _)| s.clone())
            .collect();
        for slot in old {
            if let Some(w) = self.take_waiting(&slot) {
                tracing::warn!(
                    from = %w.from, sequence = slot.sequence,
                    "an envelope waited too long for an earlier one of its chain; its sender will resend it"
                );
                let _ = notices.blocking_send(Notice::Answer {
                    token: w.token,
                    receipt: None,
                });
            }
        }
    }

    /// Does a batch of jobs in one transaction and returns the replies to give once it is
    /// durable (or the failures, if it could not be made durable).
    fn process(&mut self, jobs: Vec<Job>) -> Vec<Reply> {
        let n = jobs.len();
        let mut replies = Vec::with_capacity(n);
        // Jobs whose work was undone by a failed commit, to answer with a failure.
        let mut jobs = jobs.into_iter();
        let result = (|| -> Result<()> {
            let store = Arc::clone(&self.store);
            let mut batch = store.batch().context("cannot start a transaction")?;
            // Each job puts its reply (a failure by default) in `replies` before it can fail.
            for job in jobs.by_ref() {
                self.job(&mut batch, job, &mut replies)?;
            }
            batch.commit().context("cannot commit")?;
            Ok(())
        })();
        // Jobs not reached because an earlier one failed: answered with a failure too.
        replies.extend(jobs.map(Reply::unreached));
        match result {
            Ok(()) => {
                if n > 1 {
                    tracing::trace!(jobs = n, "group commit");
                }
                replies
            }
            Err(e) => {
                tracing::error!(
                    "store failure, nothing in this batch of {n} was acknowledged: {e:#}"
                );
                // For a while, one job per transaction: a job that fails every time (a damaged
                // log, say) then fails alone instead of taking others with it.
                self.solo_until = Some(Instant::now() + SOLO_AFTER_FAILURE);
                replies.into_iter().filter_map(|r| r.failed(&e)).collect()
            }
        }
    }

    /// One job within the batch. An `Err` is a store failure: the whole batch is abandoned.
    fn job(&mut self, batch: &mut Batch<'_>, job: Job, replies: &mut Vec<Reply>) -> Result<()> {
        match job {
            Job::Inbound { token, from, bytes } => {
                replies.push(Reply::Notice(Notice::Answer {
                    token,
                    receipt: None,
                }));
                let at = replies.len() - 1;
                if self.over_refusals(batch, &from)? {
                    // Set aside unanswered: its sender retries later.
                    return Ok(());
                }
                let mut next = Some((token, from, bytes, at));
                // Applying one envelope may let the next of its chain through.
                while let Some((token, from, bytes, at)) = next.take() {
                    let now = rogatory_proto::time::now_unix();
                    let (outcome, advanced) = crate::inbox::receive_in(
                        batch,
                        &self.me,
                        &self.trusted,
                        &from,
                        &bytes,
                        now,
                        &self.limits,
                        &self.quotas,
                    )?;
                    let receipt = match outcome {
                        Outcome::Accepted {
                            envelope_id,
                            case_id,
                            receipt,
                            confirm,
                            evidence,
                            refused_items,
                        } => {
                            tracing::info!(%from, envelope = %envelope_id, case = %case_id, "accepted");
                            if !refused_items.is_empty() {
                                self.report_refused(batch, &case_id, &refused_items, replies)?;
                            }
                            if evidence {
                                replies
                                    .push(Reply::Notice(Notice::EvidenceListed { case: case_id }));
                            }
                            if let Some(message) = confirm {
                                self.confirm(batch, &from, case_id, *message, replies)?;
                            }
                            Some(receipt)
                        }
                        Outcome::Replay { receipt } => {
                            tracing::debug!(%from, "replay: the original receipt");
                            Some(receipt)
                        }
                        Outcome::Rejected { reason, receipt } => {
                            tracing::warn!(%from, reason = reason.name(), "rejected an envelope");
                            self.refusals
                                .entry(from.clone())
                                .or_default()
                                .push_back(Instant::now());
                            Some(receipt)
                        }
                        Outcome::Waiting { slot } => {
                            tracing::debug!(%from, sequence = slot.sequence, "ahead of its chain: waiting");
                            if let Some(old) = self.take_waiting(&slot) {
                                replies.push(Reply::Notice(Notice::Answer {
                                    token: old.token,
                                    receipt: None,
                                }));
                            }
                            let (from_sender, sender_bytes) = self
                                .waiting
                                .iter()
                                .filter(|(s, _)| s.from == slot.from)
                                .fold((0, 0), |(n, b), (_, w)| (n + 1, b + w.bytes.len()));
                            if self.waiting.len() < MAX_WAITING
                                && self.waiting_bytes + bytes.len() <= MAX_WAITING_BYTES
                                && from_sender < MAX_WAITING_PER_SENDER
                                && sender_bytes + bytes.len() <= MAX_WAITING_BYTES_PER_SENDER
                            {
                                self.waiting_bytes += bytes.len();
                                self.waiting.insert(
                                    slot,
                                    Waiting {
                                        token,
                                        from,
                                        bytes,
                                        since: Instant::now(),
                                    },
                                );
                                // Answered later, not now.
                                replies[at] = Reply::Nothing;
                            }
                            None
                        }
                    };
                    if receipt.is_some() {
                        replies[at] = Reply::Notice(Notice::Answer { token, receipt });
                    }
                    if let Some(slot) = advanced
                        && let Some(w) = self.take_waiting(&slot.next())
                    {
                        replies.push(Reply::Notice(Notice::Answer {
                            token: w.token,
                            receipt: None,
                        }));
                        next = Some((w.token, w.from, w.bytes, replies.len() - 1));
                    }
                }
                Ok(())
            }
            Job::Receipt {
                id,
                by,
                receipt,
                event,
                reason,
            } => {
                replies.push(Reply::Notice(Notice::Settled { id, state: None }));
                let at = replies.len() - 1;
                let state = self.settle(batch, id, &by, &receipt, event, reason)?;
                replies[at] = Reply::Notice(Notice::Settled { id, state });
                Ok(())
            }
            Job::Send { request, reply } => match self.seal(batch, &request) {
                Ok(Ok(queued)) => {
                    for q in &queued {
                        replies.push(Reply::Notice(Notice::Queued {
                            to: q.to.clone(),
                            order: q.order,
                            id: q.envelope_id.0,
                        }));
                    }
                    replies.push(Reply::Sent(reply, Ok(queued)));
                    Ok(())
                }
                Ok(Err(refused)) => {
                    replies.push(Reply::Sent(reply, Err(refused)));
                    Ok(())
                }
                Err(e) => {
                    let _ = reply.send(Err(format!("the store failed; nothing was queued: {e:#}")));
                    Err(e)
                }
            },
            Job::NewCase {
                record,
                user,
                reply,
            } => {
                replies.push(Reply::Accessed(reply, Err("not done".into())));
                let at = replies.len() - 1;
                let outcome = crate::cases::open(batch, &record)?;
                if outcome.is_ok() {
                    let mut e = AuditEntry {
                        seq: 0,
                        time: rogatory_proto::time::now_unix(),
                        case_id: record.case_id,
                        event: AuditEvent::CaseCreated,
                        actor: Actor {
                            agency: self.me.card.id().clone(),
                            user: None,
                        },
                        peer: Some(record.peer.clone()),
                        envelope_id: None,
                        receipt_hash: None,
                        transition: None,
                        reason: None,
                        commitment: None,
                    };
                    e.actor.user = user;
                    batch.append(&self.signer(), &record.case_id, &mut [e])?;
                }
                if let Reply::Accessed(tx, _) = std::mem::replace(&mut replies[at], Reply::Nothing)
                {
                    replies[at] = Reply::Accessed(tx, outcome);
                }
                Ok(())
            }
            Job::Refused {
                case,
                envelope,
                to,
                user,
                reason,
                reply,
            } => {
                replies.push(Reply::Accessed(reply, Ok(())));
                let event = AuditEvent::EnvelopeRejected;
                let reason = Some(u16::from(reason));
                self.log_user_act(batch, &case, event, &to, envelope, user, reason)
            }
            Job::EvidenceAdd {
                case,
                items,
                user,
                reply,
            } => {
                replies.push(Reply::Items(reply, Err("not done".into())));
                let at = replies.len() - 1;
                let outcome = self.add_evidence(batch, &case, items, user)?;
                if let Reply::Items(tx, _) = std::mem::replace(&mut replies[at], Reply::Nothing) {
                    replies[at] = Reply::Items(tx, outcome);
                }
                Ok(())
            }
            Job::EvidenceSend {
                case,
                to,
                user,
                reply,
            } => {
                replies.push(Reply::Manifest(reply, Err("not done".into())));
                let at = replies.len() - 1;
                let outcome = self.send_manifest(batch, &case, &to, user)?;
                if let Ok((queued, _)) = &outcome {
                    for q in queued {
                        replies.push(Reply::Notice(Notice::Queued {
                            to: q.to.clone(),
                            order: q.order,
                            id: q.envelope_id.0,
                        }));
                    }
                }
                if let Reply::Manifest(tx, _) = std::mem::replace(&mut replies[at], Reply::Nothing)
                {
                    replies[at] = Reply::Manifest(tx, outcome);
                }
                Ok(())
            }
            Job::EvidenceProgress {
                case,
                key,
                done,
                reply,
            } => {
                replies.push(Reply::Accessed(reply, Ok(())));
                if let Some(mut r) = batch.evidence_item(&case, &key)?
                    && r.state == crate::evidence::EvidenceState::Expected
                {
                    r.chunks_done = done;
                    batch.put_evidence(&r)?;
                }
                Ok(())
            }
            Job::EvidenceArrived {
                case,
                key,
                outcome,
                reply,
            } => {
                replies.push(Reply::Accessed(reply, Ok(())));
                self.evidence_arrived(batch, &case, &key, outcome, replies)
            }
            Job::EvidenceExported {
                case,
                key,
                user,
                written,
                reply,
            } => {
                replies.push(Reply::Accessed(reply, Ok(())));
                let Some(mut r) = batch.evidence_item(&case, &key)? else {
                    return Err(anyhow!("no evidence item {key} in case {case}"));
                };
                let now = rogatory_proto::time::now_unix();
                if written {
                    // A received item's chain of custody goes on here, and at the holder's.
                    if !r.outgoing {
                        let action =
                            "exported: decrypted to a file that matches the manifest's SHA-256";
                        let custody = vec![self.custody(now, user.as_deref(), action.into(), None)];
                        self.report_to_holder(
                            batch,
                            &mut r,
                            ItemState::Exported,
                            custody,
                            replies,
                        )?;
                    }
                    return Ok(());
                }
                let e = AuditEntry {
                    seq: 0,
                    time: now,
                    case_id: case,
                    event: AuditEvent::EvidenceExported,
                    actor: Actor {
                        agency: self.me.card.id().clone(),
                        user,
                    },
                    peer: None,
                    envelope_id: r.manifest,
                    receipt_hash: None,
                    transition: None,
                    reason: None,
                    commitment: r.item.sha256,
                };
                batch.append(&self.signer(), &case, &mut [e])?;
                Ok(())
            }
            Job::BundleExported {
                case,
                sha256,
                user,
                auditor,
                reply,
            } => {
                replies.push(Reply::Accessed(reply, Ok(())));
                let e = AuditEntry {
                    seq: 0,
                    time: rogatory_proto::time::now_unix(),
                    case_id: case,
                    event: AuditEvent::BundleExported,
                    actor: Actor {
                        agency: self.me.card.id().clone(),
                        user,
                    },
                    peer: auditor,
                    envelope_id: None,
                    receipt_hash: None,
                    transition: None,
                    reason: None,
                    commitment: Some(sha256),
                };
                batch.append(&self.signer(), &case, &mut [e])?;
                Ok(())
            }
            Job::Access {
                case,
                envelope,
                peer,
                user,
                reply,
            } => {
                // On failure, this reply becomes a failure with the whole batch.
                replies.push(Reply::Accessed(reply, Ok(())));
                let event = AuditEvent::ContentAccessed;
                self.log_user_act(batch, &case, event, &peer, envelope, Some(user), None)
            }
        }
    }

    /// Records new evidence items of a case, with their `evidence-added` entries. The inner
    /// `Err` is a refusal that wrote nothing.
    fn add_evidence(
        &self,
        batch: &mut Batch<'_>,
        case: &CaseId,
        items: Vec<NewEvidence>,
        user: Option<String>,
    ) -> Result<Result<Vec<String>, String>> {
        if batch.case_record(case)?.is_none() {
            return Ok(Err(format!(
                "there is no case {case} on this node (rogatory case new)"
            )));
        }
        let existing = batch.evidence(case)?;
        let mut next = existing
            .iter()
            .filter(|r| r.outgoing)
            .filter_map(|r| r.item.item_id.strip_prefix('E')?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        let storage = self.me.keys.storage_key();
        let now = rogatory_proto::time::now_unix();
        let mut ids = Vec::with_capacity(items.len());
        let mut entries = Vec::with_capacity(items.len());
        for NewEvidence { mut item, content } in items {
            next += 1;
            item.item_id = format!("E{next}");
            item.content_key = None;
            let action = match &content {
                Some(_) => "added: hashed (SHA-256) and sealed into the node's evidence store",
                None => "added: hashed (SHA-256); the content stays with this agency",
            };
            item.custody
                .push(self.custody(now, user.as_deref(), action.into(), None));
            let (blob, wrapped_key) = match content {
                Some((name, key)) => {
                    let context = crate::evidence::key_context(case, &item.item_id);
                    let wrapped = rogatory_proto::evidence::wrap_key(&storage, &context, &key);
                    (Some(name), Some(wrapped))
                }
                None => (None, None),
            };
            let e = AuditEntry {
                seq: 0,
                time: now,
                case_id: *case,
                event: AuditEvent::EvidenceAdded,
                actor: Actor {
                    agency: self.me.card.id().clone(),
                    user: user.clone(),
                },
                peer: None,
                envelope_id: None,
                receipt_hash: None,
                transition: None,
                reason: None,
                commitment: item.sha256,
            };
            entries.push(e);
            ids.push(item.item_id.clone());
            batch.put_evidence(&crate::evidence::EvidenceRecord {
                case_id: *case,
                item,
                outgoing: true,
                state: crate::evidence::EvidenceState::Staged,
                peer: None,
                manifest: None,
                blob,
                wrapped_key,
                chunks_done: 0,
                problem: None,
                added_at: now,
                added_by: user.clone(),
                announced_at: None,
                reports: Vec::new(),
            })?;
        }
        batch.append(&self.signer(), case, &mut entries)?;
        Ok(Ok(ids))
    }

    /// Seals the manifest of a case's staged items for a partner (content keys inside the
    /// encrypted envelope) and marks them announced, in one transaction.
    fn send_manifest(
        &self,
        batch: &mut Batch<'_>,
        case: &CaseId,
        to: &AgencyId,
        user: Option<String>,
    ) -> Result<ManifestSent> {
        let staged: Vec<_> = batch
            .evidence(case)?
            .into_iter()
            .filter(|r| r.outgoing && r.state == crate::evidence::EvidenceState::Staged)
            .collect();
        if staged.is_empty() {
            return Ok(Err(format!(
                "case {case} has no evidence staged to send (rogatory evidence add)"
            )));
        }
        let storage = self.me.keys.storage_key();
        let now = rogatory_proto::time::now_unix();
        let mut staged = staged;
        let mut items = Vec::with_capacity(staged.len());
        for r in &mut staged {
            // The hand-over is the chain's next link, in the manifest and here.
            let action = format!("handed over to {to} through Rogatory");
            r.item
                .custody
                .push(self.custody(now, user.as_deref(), action, None));
            let mut item = r.item.clone();
            if let Some(w) = &r.wrapped_key {
                let context = crate::evidence::key_context(case, &item.item_id);
                let key = rogatory_proto::evidence::unwrap_key(&storage, &context, w).ok_or_else(
                    || {
                        anyhow!(
                            "the content key of {} does not unwrap with this node's storage key",
                            item.item_id
                        )
                    },
                )?;
                item.content_key = Some(*key.as_bytes());
            }
            items.push(item);
        }
        let request = SendRequest {
            to: vec![to.clone()],
            case: *case,
            message: Message::EvidenceManifest(rogatory_proto::message::EvidenceManifest {
                request: None,
                items,
                note: None,
            }),
            user,
            confirmation: false,
        };
        let queued = match self.seal(batch, &request)? {
            Ok(q) => q,
            Err(e) => return Ok(Err(e)),
        };
        let envelope = queued.first().map(|q| q.envelope_id);
        let mut ids = Vec::with_capacity(staged.len());
        for mut r in staged {
            r.state = crate::evidence::EvidenceState::Announced;
            r.peer = Some(to.clone());
            r.manifest = envelope;
            r.announced_at = Some(now);
            ids.push(r.item.item_id.clone());
            batch.put_evidence(&r)?;
        }
        Ok(Ok((queued, ids)))
    }

    /// Records an item's content arrival: its state, file and the audit entries
    /// (`evidence-transferred`, then `evidence-verified` or `evidence-quarantined`, with the
    /// manifest's hash and the partner).
    fn evidence_arrived(
        &self,
        batch: &mut Batch<'_>,
        case: &CaseId,
        key: &str,
        outcome: Arrival,
        replies: &mut Vec<Reply>,
    ) -> Result<()> {
        let Some(mut r) = batch.evidence_item(case, key)? else {
            return Err(anyhow!("no evidence item {key} in case {case}"));
        };
        let now = rogatory_proto::time::now_unix();
        let verified = matches!(outcome, Arrival::Verified { .. });
        let from = r
            .peer
            .as_ref()
            .map_or_else(|| "the holder".into(), |p| p.to_string());
        let mut custody = vec![self.custody(
            now,
            None,
            format!("received from {from} through Rogatory"),
            None,
        )];
        let state = match outcome {
            Arrival::Verified { blob } => {
                r.state = crate::evidence::EvidenceState::Verified;
                r.blob = Some(blob);
                r.chunks_done = rogatory_proto::evidence::chunks(r.item.size);
                let action = "verified: the SHA-256 matches the manifest".into();
                custody.push(self.custody(now, None, action, None));
                ItemState::Verified
            }
            Arrival::Quarantined { problem } => {
                r.state = crate::evidence::EvidenceState::Quarantined;
                let action = "quarantined: the content does not match the manifest".into();
                custody.push(self.custody(now, None, action, Some(problem.clone())));
                r.problem = Some(problem);
                ItemState::Quarantined
            }
        };
        self.report_to_holder(batch, &mut r, state, custody, replies)?;
        let entry = |event| AuditEntry {
            seq: 0,
            time: now,
            case_id: *case,
            event,
            actor: Actor {
                agency: self.me.card.id().clone(),
                user: None,
            },
            peer: r.peer.clone(),
            envelope_id: r.manifest,
            receipt_hash: None,
            transition: None,
            reason: None,
            commitment: r.item.sha256,
        };
        let mut entries = vec![
            entry(AuditEvent::EvidenceTransferred),
            entry(if verified {
                AuditEvent::EvidenceVerified
            } else {
                AuditEvent::EvidenceQuarantined
            }),
        ];
        batch.append(&self.signer(), case, &mut entries)?;
        Ok(())
    }

    /// Tells the holder, in one `evidence-status` sealed in the batch that accepted its
    /// manifest, which items this node refused to fetch and why (spec/EVIDENCE.md §6), and
    /// writes the custody entry and the `evidence-refused` audit entry of each.
    fn report_refused(
        &self,
        batch: &mut Batch<'_>,
        case: &CaseId,
        keys: &[String],
        replies: &mut Vec<Reply>,
    ) -> Result<()> {
        let now = rogatory_proto::time::now_unix();
        let mut items = Vec::with_capacity(keys.len());
        let mut entries = Vec::with_capacity(keys.len());
        let mut holder = None;
        for key in keys {
            let Some(mut r) = batch.evidence_item(case, key)? else {
                return Err(anyhow!("no evidence item {key} in case {case}"));
            };
            let problem = r.problem.clone().unwrap_or_default();
            let custody = vec![self.custody(now, None, format!("refused: {problem}"), None)];
            r.item.custody.extend(custody.iter().cloned());
            batch.put_evidence(&r)?;
            holder.clone_from(&r.peer);
            entries.push(AuditEntry {
                seq: 0,
                time: now,
                case_id: *case,
                event: AuditEvent::EvidenceRefused,
                actor: Actor {
                    agency: self.me.card.id().clone(),
                    user: None,
                },
                peer: r.peer.clone(),
                envelope_id: r.manifest,
                receipt_hash: None,
                transition: None,
                reason: None,
                commitment: r.item.sha256,
            });
            items.push(ItemStatus {
                item_id: r.item.item_id.clone(),
                sha256: r.item.sha256,
                state: Some(ItemState::Refused),
                custody,
                problem: Some(problem),
            });
        }
        batch.append(&self.signer(), case, &mut entries)?;
        let Some(holder) = holder else {
            return Ok(());
        };
        let request = SendRequest {
            to: vec![holder.clone()],
            case: *case,
            message: Message::EvidenceStatus(EvidenceStatus { items }),
            user: None,
            confirmation: false,
        };
        match self.seal(batch, &request)? {
            Ok(queued) => {
                for q in queued {
                    tracing::info!(to = %holder, case = %case, items = keys.len(), "told the holder which items were refused");
                    replies.push(Reply::Notice(Notice::Queued {
                        to: q.to,
                        order: q.order,
                        id: q.envelope_id.0,
                    }));
                }
            }
            Err(e) => {
                tracing::error!(to = %holder, case = %case, "cannot tell the holder that items were refused: {e}");
            }
        }
        Ok(())
    }

    /// A custody entry by this agency (and local user) now.
    fn custody(
        &self,
        now: u64,
        user: Option<&str>,
        action: String,
        note: Option<String>,
    ) -> CustodyEntry {
        let agency = self.me.card.id();
        CustodyEntry {
            at: rogatory_proto::time::format_unix(now),
            actor: match user {
                Some(u) => format!("{agency}: {u}"),
                None => agency.to_string(),
            },
            action,
            note,
        }
    }

    /// Extends a received item's chain of custody with `custody`, stores the record, and seals
    /// an `evidence-status` telling the holder (spec/EVIDENCE.md §6), so that both sides keep
    /// the same chain. The holder no longer being a partner does not undo what happened here:
    /// it is logged and the report is not sent.
    fn report_to_holder(
        &self,
        batch: &mut Batch<'_>,
        r: &mut crate::evidence::EvidenceRecord,
        state: ItemState,
        custody: Vec<CustodyEntry>,
        replies: &mut Vec<Reply>,
    ) -> Result<()> {
        r.item.custody.extend(custody.iter().cloned());
        batch.put_evidence(r)?;
        let Some(holder) = r.peer.clone() else {
            return Ok(());
        };
        let problem = match state {
            ItemState::Quarantined => r.problem.clone(),
            _ => None,
        };
        let request = SendRequest {
            to: vec![holder.clone()],
            case: r.case_id,
            message: Message::EvidenceStatus(EvidenceStatus {
                items: vec![ItemStatus {
                    item_id: r.item.item_id.clone(),
                    sha256: r.item.sha256,
                    state: Some(state),
                    custody,
                    problem,
                }],
            }),
            user: None,
            confirmation: false,
        };
        match self.seal(batch, &request)? {
            Ok(queued) => {
                for q in queued {
                    tracing::info!(to = %holder, case = %r.case_id, item = %r.item.item_id, state = state.as_str(), "told the holder");
                    replies.push(Reply::Notice(Notice::Queued {
                        to: q.to,
                        order: q.order,
                        id: q.envelope_id.0,
                    }));
                }
            }
            Err(e) => {
                tracing::error!(to = %holder, case = %r.case_id, item = %r.item.item_id, "cannot tell the holder that the item was {}: {e}", state.as_str());
            }
        }
        Ok(())
    }

    /// Logs what a local user did (or tried) with a message.
    #[allow(clippy::too_many_arguments)]
    fn log_user_act(
        &self,
        batch: &mut Batch<'_>,
        case: &CaseId,
        event: AuditEvent,
        peer: &AgencyId,
        envelope: EnvelopeId,
        user: Option<String>,
        reason: Option<u16>,
    ) -> Result<()> {
        let now = rogatory_proto::time::now_unix();
        let mut e = audit_entry(self.me.card.id(), case, now, event, peer, envelope);
        e.actor.user = user;
        e.reason = reason;
        batch.append(&self.signer(), case, &mut [e])?;
        Ok(())
    }

    /// Whether `from` had more than [`MAX_REFUSALS`] envelopes refused within
    /// [`REFUSAL_WINDOW`]; the first time it has, an alert is raised (in `batch`).
    fn over_refusals(&mut self, batch: &mut Batch<'_>, from: &AgencyId) -> Result<bool> {
        let Some(times) = self.refusals.get_mut(from) else {
            return Ok(false);
        };
        while times.front().is_some_and(|t| t.elapsed() > REFUSAL_WINDOW) {
            times.pop_front();
        }
        if times.len() < MAX_REFUSALS {
            if times.is_empty() {
                self.refusals.remove(from);
            }
            self.flooding.remove(from);
            return Ok(false);
        }
        if self.flooding.insert(from.clone()) {
            let detail = format!(
                "{from} had {MAX_REFUSALS} envelopes refused within {} minutes; its envelopes are set aside unanswered (its node retries them) until fewer were refused in that time",
                REFUSAL_WINDOW.as_secs() / 60
            );
            tracing::error!(peer = %from, "ALERT: {detail}");
            batch.raise_alert(&crate::store::Alert {
                at: rogatory_proto::time::now_unix(),
                peer: from.clone(),
                case_id: crate::inbox::NODE_LOG,
                kind: "refusal-flood".into(),
                detail,
                envelope_id: None,
            })?;
        }
        Ok(true)
    }

    fn take_waiting(&mut self, slot: &ChainSlot) -> Option<Waiting> {
        let w = self.waiting.remove(slot)?;
        self.waiting_bytes -= w.bytes.len();
        Some(w)
    }

    fn signer(&self) -> LogSigner<'_> {
        LogSigner {
            agency: self.me.card.id(),
            key: &self.me.keys.signing,
        }
    }

    /// Seals and queues this node's confirmation of a partner's proposal, in the batch that
    /// applied the proposal (spec/CASES.md §4).
    fn confirm(
        &self,
        batch: &mut Batch<'_>,
        to: &AgencyId,
        case: CaseId,
        message: Message,
        replies: &mut Vec<Reply>,
    ) -> Result<()> {
        let request = SendRequest {
            to: vec![to.clone()],
            case,
            message,
            user: None,
            confirmation: true,
        };
        match self.seal(batch, &request)? {
            Ok(queued) => {
                for q in queued {
                    tracing::info!(%to, case = %case, envelope = %q.envelope_id, "confirmed the partner's update");
                    replies.push(Reply::Notice(Notice::Queued {
                        to: q.to,
                        order: q.order,
                        id: q.envelope_id.0,
                    }));
                }
                Ok(())
            }
            // The proposal was applied; without its confirmation the sides would differ, so
            // nothing of this batch may stand.
            Err(e) => Err(anyhow!("cannot confirm the partner's update: {e}")),
        }
    }

    /// Records a verified receipt: settles the outbox entry and logs `receipt-received`.
    /// Returns the entry's state (unchanged if it was settled already).
    fn settle(
        &self,
        batch: &mut Batch<'_>,
        id: [u8; 32],
        by: &AgencyId,
        receipt: &[u8],
        event: ReceiptEvent,
        reason: Option<u16>,
    ) -> Result<Option<OutboxState>> {
        let Some(entry) = batch.outbox_entry(&id)? else {
            tracing::warn!("a receipt for an envelope that is not in the outbox");
            return Ok(None);
        };
        if entry.state != OutboxState::Queued || &entry.to != by {
            return Ok(Some(entry.state));
        }
        let state = match event {
            ReceiptEvent::Accepted => OutboxState::Delivered,
            ReceiptEvent::Rejected => OutboxState::Rejected,
        };
        let case = entry.case_id;
        if state == OutboxState::Rejected {
            // A proposal the requested side refused is shown refused on both sides.
            let detail = rogatory_proto::receipt::decode_verified_earlier(receipt)
                .ok()
                .and_then(|r| r.receipt.detail)
                .unwrap_or_else(|| "refused by the partner".into());
            let now = rogatory_proto::time::now_unix();
            crate::cases::proposal_refused(batch, &case, &Sha256Digest(id), detail, now)?;
        }
        if state == OutboxState::Delivered {
            self.check_cosignature(batch, &entry, by, receipt)?;
        }
        let mut e = audit_entry(
            self.me.card.id(),
            &case,
            rogatory_proto::time::now_unix(),
            AuditEvent::ReceiptReceived,
            by,
            Sha256Digest(id),
        );
        e.receipt_hash = Some(Sha256Digest::of(receipt));
        e.reason = reason;
        batch.settle(entry, receipt, state)?;
        batch.append(&self.signer(), &case, &mut [e])?;
        Ok(Some(state))
    }

    /// Checks the addressee's cosignature in an accepted receipt against the checkpoint the
    /// envelope carried (spec/PROTOCOL.md §6.6). The receipt is verified and kept either way
    /// (it proves delivery); a cosignature that is missing where a checkpoint was carried, or
    /// that does not verify, raises an alert.
    fn check_cosignature(
        &self,
        batch: &mut Batch<'_>,
        entry: &crate::store::OutboxEntry,
        by: &AgencyId,
        receipt: &[u8],
    ) -> Result<()> {
        let Ok(info) = envelope::inspect(&entry.envelope, &self.limits) else {
            return Err(anyhow!("an envelope in the outbox does not parse"));
        };
        let Some(note) = info.checkpoint else {
            return Ok(());
        };
        let Some(card) = self.trusted.iter().find(|c| c.id() == by) else {
            return Ok(());
        };
        let cosignature = rogatory_proto::receipt::decode_verified_earlier(receipt)
            .ok()
            .and_then(|r| r.receipt.cosignature);
        let body = Note::parse(&note)
            .map(|n| n.text().to_string())
            .map_err(|e| anyhow!("this node's checkpoint in the outbox does not parse: {e}"))?;
        let problem = match cosignature {
            None => Some("the receipt carries no cosignature of our checkpoint".to_string()),
            Some(line) => {
                let witness = witness::witness_verifier(&log_key_name(by), card.signing_key())
                    .map_err(|e| anyhow!("{by}'s witness key: {e}"))?;
                match std::str::from_utf8(&line)
                    .map_err(|_| "the cosignature is not text".to_string())
                    .and_then(|l| {
                        witness::verify_cosignature(&body, l, &witness).map_err(|e| e.to_string())
                    }) {
                    Ok(_) => None,
                    Err(e) => Some(format!(
                        "the cosignature of our checkpoint does not verify: {e}"
                    )),
                }
            }
        };
        if let Some(detail) = problem {
            tracing::error!(peer = %by, case = %entry.case_id, "ALERT: {detail}");
            batch.raise_alert(&crate::store::Alert {
                at: rogatory_proto::time::now_unix(),
                peer: by.clone(),
                case_id: entry.case_id,
                kind: "bad-cosignature".into(),
                detail,
                envelope_id: Some(Sha256Digest::of(&entry.envelope)),
            })?;
        }
        Ok(())
    }

    /// Seals a message for each addressee at the next position of the case's chain to it, and
    /// queues the envelopes with their `envelope-sent` entries. The inner `Result` is a refusal
    /// that wrote nothing; the outer one a store failure.
    fn seal(&self, batch: &mut Batch<'_>, r: &SendRequest) -> Result<Result<Vec<Queued>, String>> {
        let mut cards = Vec::with_capacity(r.to.len());
        for to in &r.to {
            match self.trusted.iter().find(|c| c.id() == to) {
                Some(c) => cards.push(c),
                None => {
                    return Ok(Err(format!(
                        "{to} is not a pinned partner (rogatory peer add)"
                    )));
                }
            }
        }
        let now = rogatory_proto::time::now_unix();
        let checkpoint = batch.checkpoint(&r.case)?;
        // The size of the checkpoint carried, for the witnesses' consistency proofs.
        let size = match &checkpoint {
            Some(n) => Some(
                Note::parse(n)
                    .and_then(|n| Checkpoint::parse(n.text()))
                    .map_err(|e| anyhow!("this node's latest checkpoint does not parse: {e}"))?
                    .size,
            ),
            None => None,
        };
        let mut addressees = Vec::with_capacity(cards.len());
        for card in &cards {
            let chain = match batch.chain_out(&r.case, card.id())? {
                None => ChainLink::FIRST,
                Some((seq, id)) => ChainLink {
                    sequence: seq + 1,
                    previous: Some(Sha256Digest(id)),
                },
            };
            // From the checkpoint the previous envelope of this chain carried (what the
            // addressee witnessed last) to this one.
            let consistency = match (batch.witness_out(&r.case, card.id())?, size) {
                (Some(old), Some(new)) if old > 0 && old < new => {
                    let hashes = batch
                        .consistency(&r.case, old, new)?
                        .map_err(|e| anyhow!("cannot prove size {new} extends size {old}: {e}"))?;
                    Some(CarriedProof {
                        old_size: old,
                        hashes,
                    })
                }
                _ => None,
            };
            addressees.push(Addressee {
                card,
                chain,
                consistency,
            });
        }
        let params = SealParams {
            case_id: r.case,
            message_id: MessageId::generate(),
            sent_at: now,
            checkpoint,
        };
        let sealed = match envelope::seal(
            &Sender {
                card: &self.me.card,
                keys: &self.me.keys,
            },
            &addressees,
            &r.message,
            &params,
            &self.limits,
        ) {
            Ok(s) => s,
            Err(e) => return Ok(Err(format!("cannot seal the message: {e}"))),
        };
        // The case's machine must allow what the message says (once, whatever the addressees);
        // sealing wrote nothing, so a refusal leaves no trace.
        if let Some(first) = sealed.first()
            && !r.confirmation
        {
            let carried = crate::cases::Carried {
                message: &r.message,
                message_id: params.message_id,
                envelope_id: first.id,
                sent_at: now,
            };
            let direction = crate::cases::Direction::Sent {
                me: self.me.card.id(),
                to: &r.to,
            };
            if let Err(e) = crate::cases::apply(batch, &r.case, direction, carried, now)? {
                return Ok(Err(format!("refused: {e}")));
            }
        }
        let mut out = Vec::with_capacity(sealed.len());
        let mut entries = Vec::with_capacity(sealed.len());
        let storage = self.me.keys.storage_key();
        for (s, a) in sealed.into_iter().zip(&addressees) {
            let mut entry = OutboxEntry {
                content_key: Some(crate::store::wrap_envelope_key(&storage, &s.id, &s.key)),
                case_id: r.case,
                to: s.to.clone(),
                sealed_at: now,
                envelope: s.bytes,
                state: OutboxState::Queued,
                receipt: None,
                order: None,
                emergency: crate::cases::is_emergency(&r.message),
            };
            let order = batch
                .enqueue(&mut entry, true)?
                .ok_or_else(|| anyhow!("the queue gave no order"))?;
            batch.set_chain_out(&r.case, &s.to, a.chain.sequence, &s.id.0)?;
            if let Some(size) = size {
                batch.set_witness_out(&r.case, &s.to, size)?;
            }
            let mut e = audit_entry(
                self.me.card.id(),
                &r.case,
                now,
                AuditEvent::EnvelopeSent,
                &s.to,
                s.id,
            );
            e.actor.user = r.user.clone();
            entries.push(e);
            out.push(Queued {
                envelope_id: s.id,
                to: s.to,
                order,
                sequence: a.chain.sequence,
            });
        }
        batch.append(&self.signer(), &r.case, &mut entries)?;
        Ok(Ok(out))
    }
}

impl Reply {
    /// The failure reply of a job the batch never reached.
    fn unreached(job: Job) -> Reply {
        match job {
            Job::Inbound { token, .. } => Reply::Notice(Notice::Answer {
                token,
                receipt: None,
            }),
            Job::Receipt { id, .. } => Reply::Notice(Notice::Settled { id, state: None }),
            Job::Send { reply, .. } => Reply::Sent(reply, Err("not done".into())),
            Job::Access { reply, .. } => Reply::Accessed(reply, Err("not done".into())),
            Job::NewCase { reply, .. } => Reply::Accessed(reply, Err("not done".into())),
            Job::EvidenceAdd { reply, .. } => Reply::Items(reply, Err("not done".into())),
            Job::EvidenceSend { reply, .. } => Reply::Manifest(reply, Err("not done".into())),
            Job::EvidenceProgress { reply, .. } => Reply::Accessed(reply, Err("not done".into())),
            Job::EvidenceArrived { reply, .. } => Reply::Accessed(reply, Err("not done".into())),
            Job::EvidenceExported { reply, .. } => Reply::Accessed(reply, Err("not done".into())),
            Job::Refused { reply, .. } => Reply::Accessed(reply, Err("not done".into())),
            Job::BundleExported { reply, .. } => Reply::Accessed(reply, Err("not done".into())),
        }
    }

    /// The same reply, saying the batch failed.
    fn failed(self, e: &anyhow::Error) -> Option<Reply> {
        Some(match self {
            Reply::Nothing => return None,
            Reply::Notice(Notice::Answer { token, .. }) => Reply::Notice(Notice::Answer {
                token,
                receipt: None,
            }),
            // Nothing was queued or stored after all: the event loop must not hear of it.
            Reply::Notice(Notice::Queued { .. } | Notice::EvidenceListed { .. }) => return None,
            Reply::Notice(Notice::Settled { id, .. }) => {
                Reply::Notice(Notice::Settled { id, state: None })
            }
            Reply::Sent(tx, _) => Reply::Sent(
                tx,
                Err(format!("the store failed; nothing was queued: {e:#}")),
            ),
            Reply::Accessed(tx, _) => Reply::Accessed(tx, Err(format!("the store failed: {e:#}"))),
            Reply::Items(tx, _) => Reply::Items(tx, Err(format!("the store failed: {e:#}"))),
            Reply::Manifest(tx, _) => Reply::Manifest(
                tx,
                Err(format!("the store failed; nothing was queued: {e:#}")),
            ),
        })
    }
}

/// Starts the worker thread; returns the job queue.
pub fn spawn(
    engine: Engine,
    capacity: usize,
    notices: tokio::sync::mpsc::Sender<Notice>,
) -> Result<(SyncSender<Job>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
    let handle = std::thread::Builder::new()
        .name("store".into())
        .spawn(move || engine.run(rx, notices))
        .context("cannot start the store worker")?;
    Ok((tx, handle))
}
