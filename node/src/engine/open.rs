//! Opening in front of the writer: envelopes from partners are opened (both signatures
//! verified, the content decrypted and validated) by a few threads before they reach the store
//! worker, so that the one thread that writes spends its time on what only it can do (the
//! chain, the case, the log, the receipt, the commit).
//!
//! Order is kept: the event loop hands envelopes to the threads in turn ([`Opener::try_give`]),
//! and one collector takes their results back in the same turn, so the worker sees envelopes
//! in the order they arrived, as it did when it opened them itself. Opening reads nothing of
//! the store: the node's keys, the pinned cards and the limits are fixed while it runs. The
//! worker checks everything that depends on the store (a replay, the chain, the case) itself.
//!
//! Bounded: each thread holds at most [`QUEUE`] envelopes waiting and [`QUEUE`] opened; when
//! they are full the event loop drops a new envelope unanswered and its sender sends it again,
//! as when the worker's own queue is full.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use rogatory_proto::envelope::{self, Limits, Recipient};
use rogatory_proto::ids::AgencyId;

use super::{Job, Worker};
use crate::keydir::KeyDir;

/// What opening an envelope gave.
pub type Opening = Result<envelope::Opened, envelope::OpenError>;

/// Envelopes waiting for each opening thread, and opened envelopes waiting for the collector.
pub const QUEUE: usize = 32;
/// Most opening threads.
pub const MAX_THREADS: usize = crate::config::MAX_OPEN_THREADS;

struct Arrived {
    token: u64,
    from: AgencyId,
    bytes: Vec<u8>,
}

/// The event loop's end: hands envelopes to the opening threads in turn (or, with none, to the
/// worker, which opens them itself).
#[derive(Debug)]
pub struct Opener {
    inputs: Vec<SyncSender<Arrived>>,
    next: usize,
    direct: Option<Worker>,
}

impl Opener {
    /// Hands an envelope to the next opening thread if it has room; gives the bytes back
    /// otherwise (the caller drops the envelope unanswered: its sender sends it again).
    pub fn try_give(&mut self, token: u64, from: AgencyId, bytes: Vec<u8>) -> Result<(), Vec<u8>> {
        if let Some(worker) = &self.direct {
            let job = Job::Inbound {
                token,
                from,
                bytes,
                opened: None,
            };
            return worker.try_give(job).map_err(|job| match job {
                Job::Inbound { bytes, .. } => bytes,
                _ => Vec::new(),
            });
        }
        let input = &self.inputs[self.next];
        match input.try_send(Arrived { token, from, bytes }) {
            Ok(()) => {
                // Only a handed-over envelope takes a turn: the collector expects each turn's
                // result from that thread.
                self.next = (self.next + 1) % self.inputs.len();
                Ok(())
            }
            Err(TrySendError::Full(a) | TrySendError::Disconnected(a)) => Err(a.bytes),
        }
    }
}

impl std::fmt::Debug for Arrived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arrived")
            .field("token", &self.token)
            .field("from", &self.from)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// The opening threads and their collector; they end once the [`Opener`] is dropped and what
/// it handed over has reached the worker.
pub struct OpenPool {
    threads: Vec<JoinHandle<()>>,
}

impl OpenPool {
    /// Starts `threads` opening threads (at most [`MAX_THREADS`]) and the collector that hands
    /// their results to `worker`, in order; with 0, none: the worker opens envelopes itself.
    pub fn start(
        threads: usize,
        me: Arc<KeyDir>,
        trust: Arc<crate::trust::Trust>,
        limits: Limits,
        worker: Worker,
    ) -> Result<(Opener, OpenPool)> {
        if threads == 0 {
            let opener = Opener {
                inputs: Vec::new(),
                next: 0,
                direct: Some(worker),
            };
            return Ok((
                opener,
                OpenPool {
                    threads: Vec::new(),
                },
            ));
        }
        let n = threads.min(MAX_THREADS);
        let mut inputs = Vec::with_capacity(n);
        let mut outputs = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n + 1);
        for i in 0..n {
            let (in_tx, in_rx) = sync_channel::<Arrived>(QUEUE);
            let (out_tx, out_rx) = sync_channel::<Job>(QUEUE);
            let (me, trust) = (Arc::clone(&me), Arc::clone(&trust));
            let handle = std::thread::Builder::new()
                .name(format!("open-{i}"))
                .spawn(move || open_all(&in_rx, &out_tx, &me, &trust, &limits))
                .context("cannot start an opening thread")?;
            inputs.push(in_tx);
            outputs.push(out_rx);
            handles.push(handle);
        }
        let collector = std::thread::Builder::new()
            .name("open-collect".into())
            .spawn(move || collect(&outputs, &worker))
            .context("cannot start the opening threads' collector")?;
        handles.push(collector);
        let opener = Opener {
            inputs,
            next: 0,
            direct: None,
        };
        Ok((opener, OpenPool { threads: handles }))
    }

    /// Waits for the threads to end (after the [`Opener`] was dropped).
    pub fn close(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn open_all(
    input: &Receiver<Arrived>,
    output: &SyncSender<Job>,
    me: &KeyDir,
    trust: &crate::trust::Trust,
    limits: &Limits,
) {
    let recipient = Recipient {
        card: &me.card,
        keys: &me.keys,
    };
    while let Ok(Arrived { token, from, bytes }) = input.recv() {
        let opened = envelope::open(&bytes, &recipient, &*trust.snapshot(), limits);
        let job = Job::Inbound {
            token,
            from,
            bytes,
            opened: Some(Box::new(opened)),
        };
        if output.send(job).is_err() {
            return;
        }
    }
}

/// Takes the threads' results in the turn the envelopes were handed out, and gives them to the
/// worker, waiting for room in its queue.
fn collect(outputs: &[Receiver<Job>], worker: &Worker) {
    let mut turn = 0usize;
    loop {
        let Ok(job) = outputs[turn].recv() else {
            return;
        };
        if worker.give_blocking(job).is_err() {
            return;
        }
        turn = (turn + 1) % outputs.len();
    }
}
