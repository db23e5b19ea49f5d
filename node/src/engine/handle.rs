//! How the other actors reach the store worker: a [`Worker`] handle on its bounded queue, and
//! the [`Watch`] the worker rings once a change is durable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::{Error, Job};

/// Where a job's outcome goes, once its batch is committed (or has failed).
pub type Responder<T> = oneshot::Sender<Result<T, Error>>;

/// The store worker's queue. Cloned by every actor that hands it jobs: the local API and the
/// evidence writers wait for room ([`Worker::ask`], [`Worker::ask_blocking`]); the event loop
/// never waits ([`Worker::try_give`], [`Worker::reserve`]).
#[derive(Clone, Debug)]
pub struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    pub(super) fn new(jobs: mpsc::Sender<Job>) -> Self {
        Self { jobs }
    }

    /// Hands the worker the job `make` builds around a reply slot, and waits for its outcome:
    /// sent after the commit that made it durable.
    pub async fn ask<T>(&self, make: impl FnOnce(Responder<T>) -> Job) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(make(tx))
            .await
            .map_err(|_| Error::Stopping)?;
        rx.await.map_err(|_| Error::Stopping)?
    }

    /// Hands over a job whose reply the caller awaits itself, waiting for room.
    pub async fn give(&self, job: Job) -> Result<(), Error> {
        self.jobs.send(job).await.map_err(|_| Error::Stopping)
    }

    /// [`Worker::ask`] from a thread outside the runtime (an evidence writer, a test).
    pub fn ask_blocking<T>(&self, make: impl FnOnce(Responder<T>) -> Job) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .blocking_send(make(tx))
            .map_err(|_| Error::Stopping)?;
        rx.blocking_recv().map_err(|_| Error::Stopping)?
    }

    /// Hands over a job that needs no answer here, waiting for room (from outside the runtime).
    pub fn give_blocking(&self, job: Job) -> Result<(), Error> {
        self.jobs.blocking_send(job).map_err(|_| Error::Stopping)
    }

    /// Hands over a job if the queue has room now; gives it back otherwise.
    pub fn try_give(&self, job: Job) -> Result<(), Job> {
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
        })
    }

    /// A place in the queue, once there is one (for the event loop's `select!`).
    pub async fn reserve(&self) -> Result<mpsc::Permit<'_, Job>, Error> {
        self.jobs.reserve().await.map_err(|_| Error::Stopping)
    }
}

impl crate::evidence::transfer::Recorder for Worker {
    fn progress(
        &self,
        case: rogatory_proto::ids::CaseId,
        key: String,
        done: u64,
    ) -> anyhow::Result<()> {
        Ok(self.ask_blocking(|reply| Job::EvidenceProgress {
            case,
            key,
            done,
            reply,
        })?)
    }

    fn arrived(
        &self,
        case: rogatory_proto::ids::CaseId,
        key: String,
        outcome: crate::evidence::transfer::Arrival,
    ) -> anyhow::Result<()> {
        Ok(self.ask_blocking(|reply| Job::EvidenceArrived {
            case,
            key,
            outcome,
            reply,
        })?)
    }
}

/// What the worker rings once a change is durable: those waiting for one envelope to be settled
/// (`GET /v1/outbox/{id}?wait=`) are woken by its id only; those waiting for anything
/// (`GET /v1/outbox?settled=N&wait=`, `GET /v1/cases/{id}?wait=`, the evidence list) by
/// [`Watch::anything`]. Nothing is kept for a waiter once it has given up.
#[derive(Default, Debug)]
pub struct Watch {
    envelopes: Mutex<HashMap<[u8; 32], Vec<oneshot::Sender<crate::store::OutboxState>>>>,
    anything: tokio::sync::Notify,
}

/// Interest in one envelope; dropping it forgets the interest.
#[derive(Debug)]
pub struct Interest {
    watch: Arc<Watch>,
    id: [u8; 32],
    rx: Option<oneshot::Receiver<crate::store::OutboxState>>,
}

impl Interest {
    /// Completes when the envelope is settled, with its state (`None` if the node stops, or
    /// if this interest was already answered).
    pub async fn settled(&mut self) -> Option<crate::store::OutboxState> {
        let rx = self.rx.as_mut()?;
        let state = rx.await.ok();
        self.rx = None;
        state
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        self.rx = None;
        if let Ok(mut m) = self.watch.envelopes.lock()
            && let Some(v) = m.get_mut(&self.id)
        {
            v.retain(|tx| !tx.is_closed());
            if v.is_empty() {
                m.remove(&self.id);
            }
        }
    }
}

impl Watch {
    /// Registers interest in an envelope before its state is read, so that a settlement in
    /// between is not missed.
    pub fn envelope(self: &Arc<Self>, id: [u8; 32]) -> Interest {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.envelopes.lock() {
            m.entry(id).or_default().push(tx);
        }
        Interest {
            watch: Arc::clone(self),
            id,
            rx: Some(rx),
        }
    }

    /// Waits for the next durable change of any kind; call [`tokio::sync::futures::Notified::enable`]
    /// on the future before reading, so a change in between is not missed.
    pub fn anything(&self) -> tokio::sync::futures::Notified<'_> {
        self.anything.notified()
    }

    /// Envelopes waited for (for tests of the bound).
    pub fn waited_for(&self) -> usize {
        self.envelopes.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub(super) fn settled(&self, id: &[u8; 32], state: crate::store::OutboxState) {
        let woken = self.envelopes.lock().ok().and_then(|mut m| m.remove(id));
        for tx in woken.into_iter().flatten() {
            let _ = tx.send(state);
        }
    }

    pub(super) fn changed(&self) {
        self.anything.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever became of the envelope waited for (settled, unknown, or the wait given up),
    /// nothing of the interest is kept once the request has ended.
    #[test]
    fn an_interest_is_forgotten_when_its_request_ends() {
        let watch = Arc::new(Watch::default());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        for i in 0..1000u32 {
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            let mut interest = watch.envelope(id);
            match i % 3 {
                // Settled while waited for.
                0 => {
                    watch.settled(&id, crate::store::OutboxState::Delivered);
                    rt.block_on(interest.settled());
                }
                // Waited for, and given up on.
                1 => {
                    let _ = rt.block_on(async {
                        tokio::time::timeout(
                            std::time::Duration::from_millis(1),
                            interest.settled(),
                        )
                        .await
                    });
                }
                // Unknown or already settled: never waited for.
                _ => {}
            }
            drop(interest);
        }
        assert_eq!(watch.waited_for(), 0);
        // Two waiting for one envelope are both woken, and then nothing is kept either.
        let (mut a, mut b) = (watch.envelope([7; 32]), watch.envelope([7; 32]));
        assert_eq!(watch.waited_for(), 1);
        watch.settled(&[7; 32], crate::store::OutboxState::Delivered);
        rt.block_on(async {
            a.settled().await;
            b.settled().await;
        });
        drop((a, b));
        assert_eq!(watch.waited_for(), 0);
    }
}
