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
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rogatory_proto::audit::entry::{Actor, AuditEntry, AuditEvent};
use rogatory_proto::card::AgencyCard;
use rogatory_proto::envelope::Limits;
use rogatory_proto::ids::{AgencyId, CaseId, EnvelopeId};
use rogatory_proto::message::ItemState;

pub mod counters;
mod custody;
mod drafts;
mod error;
mod handle;
mod inbound;
mod jobs;
pub mod open;
mod policy;
mod receipts;
pub mod receive;
mod seal;
mod settle;

use crate::keydir::KeyDir;
use crate::store::{Batch, LogSigner, Store};
pub use error::Error;
pub use handle::{Interest, Responder, Watch, Worker};
pub use jobs::{
    Arrival, Job, ManifestSent, NewEvidence, Notice, OfficerSigner, Queued, SendRequest,
};
pub use open::{OpenPool, Opener};
use receive::{ChainSlot, Cosigns};
pub use settle::{Cosignatures, Cosigned};

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
    Answer(Box<dyn Answer>),
}

/// A job's outcome, held until its batch is committed.
trait Answer: Send {
    /// Sends it.
    fn send(self: Box<Self>);
    /// The batch failed: the outcome becomes that failure.
    fn fail(self: Box<Self>, e: Error) -> Box<dyn Answer>;
}

struct Held<T> {
    tx: Responder<T>,
    value: Result<T, Error>,
}

impl<T: Send + 'static> Answer for Held<T> {
    fn send(self: Box<Self>) {
        let _ = self.tx.send(self.value);
    }

    fn fail(mut self: Box<Self>, e: Error) -> Box<dyn Answer> {
        self.value = Err(e);
        self
    }
}

impl Reply {
    fn answer<T: Send + 'static>(tx: Responder<T>, value: Result<T, Error>) -> Self {
        Reply::Answer(Box::new(Held { tx, value }))
    }
}

/// Holds a job's outcome: `r` is a store failure (`Err`, which abandons the batch; the reply
/// becomes that failure) or the job's own outcome.
fn hold<T: Send + 'static>(
    replies: &mut Vec<Reply>,
    tx: Responder<T>,
    r: Result<Result<T, Error>>,
) -> Result<()> {
    match r {
        Ok(value) => {
            replies.push(Reply::answer(tx, value));
            Ok(())
        }
        Err(e) => {
            replies.push(Reply::answer(tx, Err(Error::store(&e))));
            Err(e)
        }
    }
}

/// The store worker's state.
pub struct Engine {
    store: Arc<Store>,
    me: Arc<KeyDir>,
    trust: Arc<crate::trust::Trust>,
    limits: Limits,
    quotas: crate::evidence::Quotas,
    waiting: HashMap<ChainSlot, Waiting>,
    waiting_bytes: usize,
    solo_until: Option<Instant>,
    /// When each partner's recent envelopes were refused (within [`REFUSAL_WINDOW`]).
    refusals: HashMap<AgencyId, std::collections::VecDeque<Instant>>,
    /// Partners over [`MAX_REFUSALS`] whose alert was raised.
    flooding: std::collections::HashSet<AgencyId>,
    /// Cosignatures made, reused within the second.
    cosigns: Cosigns,
    /// Partners' cosignatures of this node's checkpoints already verified (hash of the
    /// witness, the checkpoint's body and the cosignature).
    cosignatures: settle::Cosignatures,
    /// Which partners' messages must carry officials' signatures.
    policy: receive::SignaturePolicy,
    /// What it decided, for `GET /metrics`.
    counters: Arc<counters::Counters>,
    /// Answers of this batch whose receipt is signed just before it commits: (reply, envelope).
    unsigned_answers: Vec<(usize, [u8; 32])>,
}

impl Engine {
    /// A worker over this store, for this agency and its pinned partners.
    pub fn new(
        store: Arc<Store>,
        me: Arc<KeyDir>,
        trust: Arc<crate::trust::Trust>,
        limits: Limits,
        quotas: crate::evidence::Quotas,
    ) -> Self {
        Self {
            store,
            me,
            trust,
            limits,
            quotas,
            waiting: HashMap::new(),
            waiting_bytes: 0,
            solo_until: None,
            refusals: HashMap::new(),
            flooding: std::collections::HashSet::new(),
            cosigns: Cosigns::default(),
            cosignatures: settle::Cosignatures::default(),
            policy: receive::SignaturePolicy::default(),
            counters: Arc::default(),
            unsigned_answers: Vec::new(),
        }
    }

    /// The same worker, requiring officials' signatures of partners' messages as `policy` says.
    pub fn with_policy(mut self, policy: receive::SignaturePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The same engine, counting what it decides into `counters` (`GET /metrics`).
    pub fn with_counters(mut self, counters: Arc<counters::Counters>) -> Self {
        self.counters = counters;
        self
    }

    /// Runs until the job queue closes; then answers what waits with nothing.
    pub fn run(
        mut self,
        mut jobs: tokio::sync::mpsc::Receiver<Job>,
        notices: tokio::sync::mpsc::Sender<Notice>,
        watch: &Watch,
    ) {
        // The worker's own clock, to wake for envelopes that waited too long.
        let Ok(clock) = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        else {
            tracing::error!("the store worker cannot start its clock");
            return;
        };
        loop {
            let first = match clock
                .block_on(async { tokio::time::timeout(Duration::from_secs(1), jobs.recv()).await })
            {
                Ok(Some(j)) => j,
                Err(_) => {
                    self.expire(&notices);
                    continue;
                }
                Ok(None) => break,
            };
            let mut batch = vec![first];
            let solo = self.solo_until.is_some_and(|t| t > Instant::now());
            while !solo && batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            // An alert raised on its own is a change too (`GET /v1/alerts?wait=`).
            let mut changed = batch.iter().any(|j| matches!(j, Job::Alert(_)));
            for reply in self.process(batch) {
                match reply {
                    Reply::Nothing => {}
                    Reply::Notice(n) => {
                        match &n {
                            Notice::Settled {
                                id,
                                state: Some(state),
                            } => {
                                watch.settled(id, *state);
                                changed = true;
                            }
                            Notice::Answer {
                                receipt: Some(_), ..
                            }
                            | Notice::EvidenceListed { .. } => changed = true,
                            _ => {}
                        }
                        if notices.blocking_send(n).is_err() {
                            // The event loop has stopped: so does the worker.
                            watch.changed();
                            return;
                        }
                    }
                    Reply::Answer(a) => {
                        a.send();
                        changed = true;
                    }
                }
            }
            if changed {
                watch.changed();
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
        self.unsigned_answers.clear();
        // Jobs whose work was undone by a failed commit, to answer with a failure.
        let mut jobs = jobs.into_iter();
        let result = (|| -> Result<(Duration, Duration)> {
            let store = Arc::clone(&self.store);
            let mut batch = store.batch().context("cannot start a transaction")?;
            // Each job puts its reply (a failure by default) in `replies` before it can fail.
            let started = Instant::now();
            for job in jobs.by_ref() {
                self.job(&mut batch, job, &mut replies)?;
            }
            // The batch's checkpoints, then the receipts that carry them.
            let signed = receive::sign_receipts(&mut batch, &self.me)?;
            for (at, id) in self.unsigned_answers.drain(..) {
                if let Some(Reply::Notice(Notice::Answer { receipt, .. })) = replies.get_mut(at) {
                    *receipt = signed.get(&id).cloned();
                }
            }
            let done = Instant::now();
            batch.commit().context("cannot commit")?;
            Ok((done - started, done.elapsed()))
        })();
        // Jobs not reached because an earlier one failed: answered with a failure too.
        replies.extend(jobs.map(Reply::unreached));
        match result {
            Ok((work, commit)) => {
                tracing::trace!(
                    jobs = n,
                    work_us = work.as_micros() as u64,
                    commit_us = commit.as_micros() as u64,
                    "group commit"
                );
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
            Job::Inbound {
                token,
                from,
                bytes,
                opened,
            } => self.inbound(batch, token, from, bytes, opened, replies),
            Job::Receipt {
                id,
                by,
                receipt,
                event,
                reason,
                cosigned,
            } => {
                replies.push(Reply::Notice(Notice::Settled { id, state: None }));
                let at = replies.len() - 1;
                let state = self.settle(batch, id, &by, &receipt, event, reason, cosigned)?;
                replies[at] = Reply::Notice(Notice::Settled { id, state });
                Ok(())
            }
            Job::LoadQueued { to, ids } => {
                replies.push(Reply::Notice(self.load_queued(to, ids)));
                Ok(())
            }
            Job::Alert(alert) => {
                batch.raise_alert(&alert)?;
                Ok(())
            }
            Job::Send { request, reply } => {
                let r = self.seal(batch, &request, replies);
                hold(replies, reply, r)
            }
            Job::Draft { request, reply } => {
                let r = self.draft(batch, &request);
                hold(replies, reply, r)
            }
            Job::DraftRead { id, user, reply } => {
                let r = self.draft_read(batch, &id, user);
                hold(replies, reply, r)
            }
            Job::Decide {
                id,
                approve,
                user,
                reason,
                officers,
                issue,
                reply,
            } => {
                let r = match issue {
                    Some(issue) if approve => self.issue(batch, &id, &user, *issue),
                    _ => self.decide(batch, &id, approve, (&user, officers), reason, replies),
                };
                hold(replies, reply, r)
            }
            Job::Validate {
                id,
                user,
                officer,
                reply,
            } => {
                let r = self.validate(batch, &id, &user, officer, replies);
                hold(replies, reply, r)
            }
            Job::NewCase {
                record,
                user,
                reply,
            } => {
                let r = self.new_case(batch, &record, user);
                hold(replies, reply, r)
            }
            Job::Refused {
                case,
                envelope,
                to,
                user,
                reason,
                reply,
            } => {
                let event = AuditEvent::EnvelopeRejected;
                let reason = Some(u16::from(reason));
                let r = self.log_user_act(batch, &case, event, &to, envelope, user, reason);
                hold(replies, reply, r.map(Ok))
            }
            Job::EvidenceAdd {
                case,
                items,
                user,
                reply,
            } => {
                let r = self.add_evidence(batch, &case, items, user);
                hold(replies, reply, r)
            }
            Job::EvidenceSend {
                case,
                to,
                user,
                reply,
            } => {
                let r = self.send_manifest(batch, &case, &to, user, replies);
                hold(replies, reply, r)
            }
            Job::EvidenceProgress {
                case,
                key,
                done,
                reply,
            } => {
                let r = (|| {
                    if let Some(mut r) = batch.evidence_item(&case, &key)?
                        && r.state == crate::evidence::EvidenceState::Expected
                    {
                        r.chunks_done = done;
                        batch.put_evidence(&r)?;
                    }
                    Ok(Ok(()))
                })();
                hold(replies, reply, r)
            }
            Job::EvidenceArrived {
                case,
                key,
                outcome,
                reply,
            } => {
                let r = self.evidence_arrived(batch, &case, &key, outcome, replies);
                hold(replies, reply, r.map(Ok))
            }
            Job::EvidenceExported {
                case,
                key,
                user,
                written,
                reply,
            } => {
                let r = self.evidence_exported(batch, &case, &key, user, written, replies);
                hold(replies, reply, r)
            }
            Job::BundleExported {
                case,
                sha256,
                user,
                auditor,
                reply,
            } => {
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
                let r = batch.append(&self.signer(), &case, &mut [e]);
                hold(replies, reply, r.map(|_| Ok(())).map_err(Into::into))
            }
            Job::Access {
                case,
                envelope,
                peer,
                user,
                reply,
            } => {
                let event = AuditEvent::ContentAccessed;
                let r = self.log_user_act(batch, &case, event, &peer, envelope, Some(user), None);
                hold(replies, reply, r.map(Ok))
            }
        }
    }

    /// Reads queued envelopes for the event loop (outside the transaction: they were queued by
    /// batches already committed).
    fn load_queued(&self, to: AgencyId, ids: Vec<(u64, [u8; 32])>) -> Notice {
        let mut entries = Vec::with_capacity(ids.len());
        for (order, id) in ids {
            match self.store.outbox_entry(&id) {
                Ok(Some(e)) if e.state == crate::store::OutboxState::Queued => {
                    entries.push((order, id, Some(e.envelope)));
                }
                Ok(_) => entries.push((order, id, None)),
                Err(e) => {
                    tracing::error!(partner = %to, "cannot read the outbox: {e}");
                    return Notice::Loaded {
                        to,
                        entries: Vec::new(),
                        failed: true,
                    };
                }
            }
        }
        Notice::Loaded {
            to,
            entries,
            failed: false,
        }
    }

    /// Opens a case before its first message, with its `case-created` entry.
    fn new_case(
        &self,
        batch: &mut Batch<'_>,
        record: &crate::cases::CaseRecord,
        user: Option<String>,
    ) -> Result<Result<(), Error>> {
        if let Err(e) = crate::cases::open(batch, record)? {
            return Ok(Err(Error::Conflict(e)));
        }
        let e = AuditEntry {
            seq: 0,
            time: rogatory_proto::time::now_unix(),
            case_id: record.case_id,
            event: AuditEvent::CaseCreated,
            actor: Actor {
                agency: self.me.card.id().clone(),
                user,
            },
            peer: Some(record.peer.clone()),
            envelope_id: None,
            receipt_hash: None,
            transition: None,
            reason: None,
            commitment: None,
        };
        batch.append(&self.signer(), &record.case_id, &mut [e])?;
        Ok(Ok(()))
    }

    /// A local user exports an item's content: logged before the file is written; once it is
    /// written and checked, a received item's chain of custody goes on, here and at the holder.
    fn evidence_exported(
        &self,
        batch: &mut Batch<'_>,
        case: &CaseId,
        key: &str,
        user: Option<String>,
        written: bool,
        replies: &mut Vec<Reply>,
    ) -> Result<Result<(), Error>> {
        let Some(mut r) = batch.evidence_item(case, key)? else {
            return Ok(Err(Error::NotFound(format!(
                "no evidence item {key} in case {case}"
            ))));
        };
        let now = rogatory_proto::time::now_unix();
        if written {
            if !r.outgoing {
                let action = "exported: decrypted to a file that matches the manifest's SHA-256";
                let custody = vec![self.custody(now, user.as_deref(), action.into(), None)];
                self.report_to_holder(batch, &mut r, ItemState::Exported, custody, replies)?;
            }
            return Ok(Ok(()));
        }
        let e = AuditEntry {
            seq: 0,
            time: now,
            case_id: *case,
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
        batch.append(&self.signer(), case, &mut [e])?;
        Ok(Ok(()))
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
                case_id: crate::store::NODE_LOG,
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
}

impl Reply {
    /// The failure reply of a job the batch never reached.
    fn unreached(job: Job) -> Reply {
        fn e<T>() -> Result<T, Error> {
            Err(Error::Store(
                "not done: an earlier job of its batch failed".into(),
            ))
        }
        match job {
            Job::Inbound { token, .. } => Reply::Notice(Notice::Answer {
                token,
                receipt: None,
            }),
            Job::Receipt { id, .. } => Reply::Notice(Notice::Settled { id, state: None }),
            Job::Alert(_) => Reply::Nothing,
            Job::LoadQueued { to, ids } => Reply::Notice(Notice::Loaded {
                to,
                entries: ids.into_iter().map(|(o, id)| (o, id, None)).collect(),
                failed: true,
            }),
            Job::Send { reply, .. } => Reply::answer(reply, e()),
            Job::Access { reply, .. }
            | Job::DraftRead { reply, .. }
            | Job::NewCase { reply, .. }
            | Job::EvidenceProgress { reply, .. }
            | Job::EvidenceArrived { reply, .. }
            | Job::EvidenceExported { reply, .. }
            | Job::Refused { reply, .. }
            | Job::BundleExported { reply, .. } => Reply::answer(reply, e()),
            Job::EvidenceAdd { reply, .. } => Reply::answer(reply, e()),
            Job::Draft { reply, .. } | Job::Decide { reply, .. } | Job::Validate { reply, .. } => {
                Reply::answer(reply, e())
            }
            Job::EvidenceSend { reply, .. } => Reply::answer(reply, e()),
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
            // Read outside the transaction: true whatever became of it.
            Reply::Notice(n @ (Notice::Loaded { .. } | Notice::KeysWanted { .. })) => {
                Reply::Notice(n)
            }
            Reply::Notice(Notice::Settled { id, .. }) => {
                Reply::Notice(Notice::Settled { id, state: None })
            }
            Reply::Answer(a) => Reply::Answer(a.fail(Error::store(e))),
        })
    }
}

/// Starts the worker thread, with a queue of `capacity` jobs; the worker tells the event loop
/// what it did on `notices` and rings `watch` once a change is durable.
pub fn spawn(
    engine: Engine,
    capacity: usize,
    notices: tokio::sync::mpsc::Sender<Notice>,
    watch: Arc<Watch>,
) -> Result<(Worker, std::thread::JoinHandle<()>)> {
    let (tx, rx) = tokio::sync::mpsc::channel(capacity);
    let handle = std::thread::Builder::new()
        .name("store".into())
        .spawn(move || engine.run(rx, notices, &watch))
        .context("cannot start the store worker")?;
    Ok((Worker::new(tx), handle))
}
