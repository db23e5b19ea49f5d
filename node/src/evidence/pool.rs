//! The bounded pool that receives evidence items: `evidence.max_active_items` threads, started
//! with the node, each receiving one item at a time; the items expected wait their turn in a
//! queue (emergency cases first). The pool, not the event loop, reads the store and the disk:
//! which items are expected, their records, the free space, the partial files.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rogatory_proto::evidence as stream;
use rogatory_proto::ids::CaseId;

use super::transfer::{ItemKey, Recorder, WINDOW, WriterEvent};
use super::writer::Writer;
use crate::evidence::{EvidenceRecord, EvidenceState};
use crate::store::Store;

/// How long an item that does not fit in the free disk space waits before it is looked at
/// again.
const SPACE_RETRY: Duration = Duration::from_secs(60);

/// What the pool needs.
pub struct PoolConfig {
    /// The data directory.
    pub data: PathBuf,
    /// The store (read only: records are written by the worker).
    pub store: Arc<Store>,
    /// Where progress and arrivals are recorded (the store worker).
    pub recorder: Arc<dyn Recorder>,
    /// The node's storage key, under which content keys are wrapped.
    pub storage: zeroize::Zeroizing<[u8; 32]>,
    /// Bytes received between two syncs of a partial file.
    pub sync_every: u64,
    /// Items received at once (threads).
    pub max_active: usize,
    /// Bytes of disk space an item never takes.
    pub keep_free: u64,
}

#[derive(Default)]
struct State {
    /// Items expected and not started, in turn: emergencies at the front.
    waiting: VecDeque<ItemKey>,
    /// Every item waiting or being received, to queue each once.
    known: BTreeSet<ItemKey>,
    /// Cases to look for expected items in (`None`: every case).
    loads: VecDeque<Option<CaseId>>,
    /// While the next item does not fit in the free disk space: when to look again.
    space_retry_at: Option<Instant>,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// The event loop's handle on the pool's queue: asks for items to be looked for, never
/// waits for the disk.
#[derive(Clone)]
pub struct Queue(Arc<Shared>);

impl Queue {
    /// Queues a look for expected items in `case` (or every case).
    pub fn load(&self, case: Option<CaseId>) {
        if let Ok(mut s) = self.0.state.lock() {
            if !s.loads.contains(&case) {
                s.loads.push_back(case);
            }
            self.0.wake.notify_one();
        }
    }

    /// Items waiting for a thread.
    pub fn waiting(&self) -> usize {
        self.0.state.lock().map(|s| s.waiting.len()).unwrap_or(0)
    }
}

/// The pool's threads.
pub struct Pool {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

enum Task {
    Load(Option<CaseId>),
    Item(ItemKey),
}

impl Pool {
    /// Starts the threads; they report to the event loop on `events`. The returned queue is
    /// the loop's handle.
    pub fn start(
        config: PoolConfig,
        events: tokio::sync::mpsc::Sender<WriterEvent>,
    ) -> Result<(Pool, Queue)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let config = Arc::new(config);
        let mut threads = Vec::new();
        for _ in 0..config.max_active.max(1) {
            let (shared, config, events) =
                (Arc::clone(&shared), Arc::clone(&config), events.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("evidence-fetch".into())
                    .spawn(move || work(&shared, &config, &events))
                    .context("cannot start the evidence pool")?,
            );
        }
        Ok((
            Pool {
                shared: Arc::clone(&shared),
                threads,
            },
            Queue(shared),
        ))
    }

    /// Stops the threads once their items have ended (call it after the event loop, which
    /// holds the items' channels, has stopped) and waits for them.
    pub fn close(self) {
        if let Ok(mut s) = self.shared.state.lock() {
            s.closed = true;
        }
        self.shared.wake.notify_all();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// One pool thread: takes looks and items in turn until the pool is closed.
fn work(shared: &Shared, config: &PoolConfig, events: &tokio::sync::mpsc::Sender<WriterEvent>) {
    loop {
        let task = {
            let Ok(mut s) = shared.state.lock() else {
                return;
            };
            loop {
                if s.closed {
                    return;
                }
                if let Some(l) = s.loads.pop_front() {
                    break Task::Load(l);
                }
                let now = Instant::now();
                if let Some(t) = s.space_retry_at.filter(|t| *t > now) {
                    s = match shared.wake.wait_timeout(s, t - now) {
                        Ok((s, _)) => s,
                        Err(_) => return,
                    };
                    continue;
                }
                s.space_retry_at = None;
                if let Some(k) = s.waiting.pop_front() {
                    break Task::Item(k);
                }
                s = match shared.wake.wait(s) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
        };
        match task {
            Task::Load(case) => {
                let found = expected(&config.store, case);
                if let Ok(mut s) = shared.state.lock() {
                    for (key, emergency) in found {
                        if !s.known.insert(key.clone()) {
                            continue;
                        }
                        if emergency {
                            s.waiting.push_front(key);
                        } else {
                            s.waiting.push_back(key);
                        }
                    }
                }
                shared.wake.notify_all();
            }
            Task::Item(key) => {
                let waits_for_space = match receive(shared, config, events, &key) {
                    Ok(w) => w,
                    Err(e) => {
                        tracing::error!(case = %key.0, item = %key.1, "cannot receive evidence: {e:#}");
                        false
                    }
                };
                // Waiting again for disk space keeps its place; anything else is done.
                if !waits_for_space && let Ok(mut s) = shared.state.lock() {
                    s.known.remove(&key);
                }
            }
        }
    }
}

/// The items of `case` (or of every case) expected from partners, with whether their case is
/// an emergency.
fn expected(store: &Store, case: Option<CaseId>) -> Vec<(ItemKey, bool)> {
    let cases = match case {
        Some(c) => vec![c],
        None => match store.case_ids_with_evidence() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("cannot list the cases with evidence: {e}");
                return Vec::new();
            }
        },
    };
    let mut out = Vec::new();
    for case in cases {
        let emergency = store
            .case_record(&case)
            .ok()
            .flatten()
            .is_some_and(|r| r.emergency);
        let records = match store.evidence(&case) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(%case, "cannot read the evidence records: {e}");
                continue;
            }
        };
        for r in records {
            if !r.outgoing && r.state == EvidenceState::Expected {
                out.push(((case, r.key()), emergency));
            }
        }
    }
    out
}

/// Receives one item, if it is still expected and fits on the disk; returns when it has ended
/// (`true`: it waits again, for disk space).
fn receive(
    shared: &Shared,
    config: &PoolConfig,
    events: &tokio::sync::mpsc::Sender<WriterEvent>,
    key: &ItemKey,
) -> Result<bool> {
    let record: EvidenceRecord = match config.store.evidence_item(&key.0, &key.1)? {
        Some(r) if r.state == EvidenceState::Expected => r,
        _ => return Ok(false),
    };
    let remaining = stream::sealed_len(record.item.size)
        .saturating_sub(stream::sealed_offset(record.chunks_done));
    let fits = match crate::evidence::free_space(&config.data) {
        Ok(free) if free >= remaining.saturating_add(config.keep_free) => true,
        Ok(free) => {
            tracing::warn!(case = %key.0, item = %key.1, free = %crate::evidence::human_size(free), needed = %crate::evidence::human_size(remaining), "evidence waits for free disk space");
            false
        }
        Err(e) => {
            tracing::error!("cannot read the free disk space: {e}");
            false
        }
    };
    if !fits {
        if let Ok(mut s) = shared.state.lock() {
            s.waiting.push_front(key.clone());
            s.space_retry_at = Some(Instant::now() + SPACE_RETRY);
        }
        return Ok(true);
    }
    let emergency = config
        .store
        .case_record(&key.0)
        .ok()
        .flatten()
        .is_some_and(|r| r.emergency);
    let peer = record.peer.clone().context("no partner on record")?;
    let context = crate::evidence::key_context(&record.case_id, &record.key());
    let wrapped = record
        .wrapped_key
        .as_deref()
        .context("no content key on record")?;
    let content_key = stream::unwrap_key(&config.storage, &context, wrapped)
        .context("the content key does not unwrap with this node's storage key")?;
    let item = record.item.item_id.clone();
    let chunks = stream::chunks(record.item.size);
    let size = record.item.size;
    let w = Writer {
        data: config.data.clone(),
        recorder: Arc::clone(&config.recorder),
        events: events.clone(),
        record,
        key: content_key,
        sync_every: config.sync_every.max(1),
    };
    // The durable prefix is checked before the loop asks for anything after it.
    let opened = match w.open() {
        Ok(o) => o,
        Err(e) => {
            let _ = events.blocking_send(WriterEvent::Ended(key.clone()));
            return Err(e);
        }
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(WINDOW + 4);
    tracing::info!(case = %key.0, item = %key.1, size, from_chunk = opened.next, "receiving evidence");
    if events
        .blocking_send(WriterEvent::Started {
            key: key.clone(),
            peer,
            item,
            chunks,
            next: opened.next,
            emergency,
            writer: tx,
        })
        .is_err()
    {
        // The event loop has stopped.
        return Ok(false);
    }
    w.run(opened, rx);
    Ok(false)
}
