//! Evidence transfer over `/rogatory/evidence/1` (spec/EVIDENCE.md §4).
//!
//! The receiver pulls: for each item a partner's manifest listed as `send`, it asks the holder
//! for its sealed chunks, a few at a time ([`MAX_CHUNKS_PER_REQUEST`]), with a bounded number
//! of requests in flight per item ([`WINDOW`]) and for all items together ([`MAX_IN_FLIGHT`]);
//! emergency cases first, then the items in turn. The holder serves chunks of items it listed
//! to that partner, straight from its sealed file: nothing to encrypt, no state per transfer.
//!
//! Each item being received has a writer thread. It takes the responses in chunk order, opens
//! every chunk (which checks it), hashes the plaintext, and appends the sealed chunk to
//! `evidence/partial/`; every `evidence.sync_every_mib` (configuration) it syncs the file and records how many chunks
//! are durable, where a transfer resumes after a restart of either node (the prefix is opened
//! and hashed again). At the end, a SHA-256 equal to the manifest's moves the file into place
//! (verified); another one moves it to `evidence/quarantine/`. Memory stays bounded whatever
//! the item's size: at most [`MAX_IN_FLIGHT`] responses are held, each at most
//! [`MAX_RESPONSE_BYTES`](rogatory_proto::evidence::MAX_RESPONSE_BYTES).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libp2p::request_response::OutboundRequestId;
use rogatory_proto::evidence::{self as stream, ChunkRequest, ChunkStatus, MAX_CHUNKS_PER_REQUEST};
use rogatory_proto::ids::{AgencyId, CaseId, Sha256Digest};

use crate::engine::Job;
use crate::evidence::{EvidenceRecord, EvidenceState};
use crate::store::Store;

use super::writer::Writer;

/// Requests in flight (or answered and not yet written) per item.
pub const WINDOW: usize = 4;
/// Requests in flight for all items together.
pub const MAX_IN_FLIGHT: usize = 8;
/// Times a chunk that does not open is asked for again before the item is quarantined.
pub(super) const REFETCHES: u32 = 2;
/// Identifies an item being received: its case and its record key (`partner/item`).
pub type ItemKey = (CaseId, String);

/// What a writer thread tells the event loop.
#[derive(Debug)]
pub enum WriterEvent {
    /// A response was written (or dropped as a duplicate): room for another request.
    Consumed(ItemKey),
    /// Ask again for chunks from this one on (a chunk did not open).
    Refetch(ItemKey, u64),
    /// More of the item is durable (for those waiting on progress).
    Progress(ItemKey),
    /// The item is done: verified, quarantined, or given up (the writer has ended).
    Ended(ItemKey),
}

/// One item being received.
struct Incoming {
    peer: AgencyId,
    item: String,
    chunks: u64,
    /// The next chunk not yet asked for.
    next: u64,
    /// Chunks to ask for again first (a failed request, a chunk that did not open).
    again: BTreeSet<u64>,
    /// Requests in flight plus responses not yet written.
    outstanding: usize,
    writer: SyncSender<(u64, Vec<u8>)>,
    retry_at: Option<Instant>,
    failures: u32,
    emergency: bool,
}

/// How long an item that does not fit in the free disk space waits before it is looked at
/// again.
const SPACE_RETRY: Duration = Duration::from_secs(60);

/// The receiving side of every evidence transfer. At most `max_active` items are received at
/// once, each with a writer thread and an open file; the others wait their turn (emergency
/// cases first), however many items the partners' manifests list.
pub struct Fetcher {
    data: PathBuf,
    store: Arc<Store>,
    jobs: SyncSender<Job>,
    storage: zeroize::Zeroizing<[u8; 32]>,
    events: tokio::sync::mpsc::Sender<WriterEvent>,
    sync_every: u64,
    max_active: usize,
    keep_free: u64,
    items: BTreeMap<ItemKey, Incoming>,
    /// Items expected and not started, in turn: emergencies at the front.
    waiting: std::collections::VecDeque<ItemKey>,
    /// The same, to tell at once whether an item waits.
    queued: BTreeSet<ItemKey>,
    /// While the next item does not fit in the free disk space: when to look again.
    space_retry_at: Option<Instant>,
    in_flight: HashMap<OutboundRequestId, (ItemKey, u64, u64)>,
    turn: usize,
}

impl Fetcher {
    /// A fetcher for this node; writer threads report on `events`. At most `max_active` items
    /// are received at once, and an item starts only when its remaining content fits in the
    /// free disk space with `keep_free` bytes to spare.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        data: PathBuf,
        store: Arc<Store>,
        jobs: SyncSender<Job>,
        storage: zeroize::Zeroizing<[u8; 32]>,
        events: tokio::sync::mpsc::Sender<WriterEvent>,
        sync_every: u64,
        max_active: usize,
        keep_free: u64,
    ) -> Self {
        Self {
            data,
            store,
            jobs,
            storage,
            events,
            sync_every: sync_every.max(1),
            max_active: max_active.max(1),
            keep_free,
            items: BTreeMap::new(),
            waiting: std::collections::VecDeque::new(),
            queued: BTreeSet::new(),
            space_retry_at: None,
            in_flight: HashMap::new(),
            turn: 0,
        }
    }

    /// Queues every item of `case` (or of every case) that is expected and neither being
    /// received nor waiting, then starts as many as the pool allows.
    pub fn load(&mut self, case: Option<CaseId>) {
        let cases = match case {
            Some(c) => vec![c],
            None => match self.store.case_ids_with_evidence() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("cannot list the cases with evidence: {e}");
                    return;
                }
            },
        };
        for case in cases {
            let emergency = self
                .store
                .case_record(&case)
                .ok()
                .flatten()
                .is_some_and(|r| r.emergency);
            let records = match self.store.evidence(&case) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(%case, "cannot read the evidence records: {e}");
                    continue;
                }
            };
            for r in records {
                if r.outgoing || r.state != EvidenceState::Expected {
                    continue;
                }
                let key = (case, r.key());
                if self.items.contains_key(&key) || !self.queued.insert(key.clone()) {
                    continue;
                }
                if emergency {
                    self.waiting.push_front(key);
                } else {
                    self.waiting.push_back(key);
                }
            }
        }
        self.fill();
    }

    /// Starts waiting items while the pool has room and the next one fits on the disk.
    fn fill(&mut self) {
        if self.space_retry_at.is_some_and(|t| t > Instant::now()) {
            return;
        }
        self.space_retry_at = None;
        while self.items.len() < self.max_active {
            let Some(key) = self.waiting.pop_front() else {
                return;
            };
            let record = match self.store.evidence_item(&key.0, &key.1) {
                Ok(Some(r)) if r.state == EvidenceState::Expected => r,
                Ok(_) => {
                    self.queued.remove(&key);
                    continue;
                }
                Err(e) => {
                    tracing::error!(case = %key.0, item = %key.1, "cannot read the evidence record: {e}");
                    self.queued.remove(&key);
                    continue;
                }
            };
            let remaining = stream::sealed_len(record.item.size)
                .saturating_sub(stream::sealed_offset(record.chunks_done));
            match crate::evidence::free_space(&self.data) {
                Ok(free) if free >= remaining.saturating_add(self.keep_free) => {}
                Ok(free) => {
                    tracing::warn!(case = %key.0, item = %key.1, free = %crate::evidence::human_size(free), needed = %crate::evidence::human_size(remaining), "evidence waits for free disk space");
                    self.waiting.push_front(key);
                    self.space_retry_at = Some(Instant::now() + SPACE_RETRY);
                    return;
                }
                Err(e) => {
                    tracing::error!("cannot read the free disk space: {e}");
                    self.waiting.push_front(key);
                    self.space_retry_at = Some(Instant::now() + SPACE_RETRY);
                    return;
                }
            }
            self.queued.remove(&key);
            let emergency = self
                .store
                .case_record(&key.0)
                .ok()
                .flatten()
                .is_some_and(|r| r.emergency);
            match self.start(&record, emergency) {
                Ok(inc) => {
                    tracing::info!(case = %key.0, item = %key.1, size = record.item.size, from_chunk = record.chunks_done, "receiving evidence");
                    self.items.insert(key, inc);
                }
                Err(e) => {
                    tracing::error!(case = %key.0, item = %key.1, "cannot receive evidence: {e:#}")
                }
            }
        }
    }

    fn start(&self, r: &EvidenceRecord, emergency: bool) -> Result<Incoming> {
        let peer = r.peer.clone().context("no partner on record")?;
        let context = crate::evidence::key_context(&r.case_id, &r.key());
        let wrapped = r
            .wrapped_key
            .as_deref()
            .context("no content key on record")?;
        let key = stream::unwrap_key(&self.storage, &context, wrapped)
            .context("the content key does not unwrap with this node's storage key")?;
        let (tx, rx) = std::sync::mpsc::sync_channel(WINDOW + 4);
        let w = Writer {
            data: self.data.clone(),
            jobs: self.jobs.clone(),
            events: self.events.clone(),
            record: r.clone(),
            key,
            sync_every: self.sync_every,
        };
        let done = r.chunks_done;
        std::thread::Builder::new()
            .name("evidence-writer".into())
            .spawn(move || w.run(rx))
            .context("cannot start a writer thread")?;
        Ok(Incoming {
            peer,
            item: r.item.item_id.clone(),
            chunks: stream::chunks(r.item.size),
            // The writer starts where the durable prefix ends; anything before is a duplicate.
            next: done,
            again: BTreeSet::new(),
            outstanding: 0,
            writer: tx,
            retry_at: None,
            failures: 0,
            emergency,
        })
    }

    /// Sends chunk requests, emergency cases first, the items in turn, within the windows.
    /// `send` puts a request on the wire to a partner and returns its id (`None`: no route).
    pub fn pump(&mut self, mut send: impl FnMut(&AgencyId, Vec<u8>) -> Option<OutboundRequestId>) {
        if !self.waiting.is_empty() && self.items.len() < self.max_active {
            self.fill();
        }
        let now = Instant::now();
        let mut keys: Vec<ItemKey> = self.items.keys().cloned().collect();
        if keys.is_empty() {
            return;
        }
        let turn = self.turn % keys.len();
        keys.rotate_left(turn);
        self.turn = self.turn.wrapping_add(1);
        keys.sort_by_key(|k| !self.items[k].emergency);
        let mut progress = true;
        while progress && self.in_flight.len() < MAX_IN_FLIGHT {
            progress = false;
            for k in &keys {
                if self.in_flight.len() >= MAX_IN_FLIGHT {
                    break;
                }
                let Some(inc) = self.items.get_mut(k) else {
                    continue;
                };
                if inc.retry_at.is_some_and(|t| t > now) {
                    continue;
                }
                // Chunks asked for again go first, even beyond the window: the writer waits
                // for them, holding what came after.
                let first = if let Some(f) = inc.again.pop_first() {
                    f
                } else if inc.outstanding < WINDOW && inc.next < inc.chunks {
                    inc.next
                } else {
                    continue;
                };
                let count = MAX_CHUNKS_PER_REQUEST.min(inc.chunks - first);
                let req = ChunkRequest {
                    case: k.0,
                    item: inc.item.clone(),
                    first,
                    count,
                }
                .encode();
                match send(&inc.peer, req) {
                    Some(id) => {
                        if first == inc.next {
                            inc.next += count;
                        }
                        inc.outstanding += 1;
                        self.in_flight.insert(id, (k.clone(), first, count));
                        progress = true;
                    }
                    None => {
                        inc.again.insert(first);
                    }
                }
            }
        }
    }

    /// Whether `id` is one of this fetcher's requests.
    pub fn owns(&self, id: &OutboundRequestId) -> bool {
        self.in_flight.contains_key(id)
    }

    /// A response arrived.
    pub fn response(&mut self, id: OutboundRequestId, mut bytes: Vec<u8>) {
        let Some((key, first, _count)) = self.in_flight.remove(&id) else {
            return;
        };
        let Some(inc) = self.items.get_mut(&key) else {
            return;
        };
        match bytes.first().copied().and_then(ChunkStatus::from_byte) {
            Some(ChunkStatus::Ok) => {
                bytes.remove(0);
                inc.failures = 0;
                if inc.writer.try_send((first, bytes)).is_err() {
                    // The writer has ended (or is behind by more than it should be).
                    inc.outstanding = inc.outstanding.saturating_sub(1);
                    inc.again.insert(first);
                }
            }
            other => {
                inc.outstanding = inc.outstanding.saturating_sub(1);
                inc.again.insert(first);
                let why = format!("the holder answered {other:?}");
                Self::back_off(inc, &key, &why);
            }
        }
    }

    /// A request failed (no connection, a timeout): ask again after a pause.
    pub fn failure(&mut self, id: OutboundRequestId, error: String) {
        let Some((key, first, _)) = self.in_flight.remove(&id) else {
            return;
        };
        if let Some(inc) = self.items.get_mut(&key) {
            inc.outstanding = inc.outstanding.saturating_sub(1);
            inc.again.insert(first);
            Self::back_off(inc, &key, &error);
        }
    }

    fn back_off(inc: &mut Incoming, key: &ItemKey, why: &str) {
        let now = Instant::now();
        // The requests of one round fail together: count the round once.
        if inc.retry_at.is_some_and(|t| t > now) {
            return;
        }
        inc.failures += 1;
        let secs = 1u64 << inc.failures.min(5);
        inc.retry_at = Some(now + Duration::from_secs(secs));
        tracing::warn!(case = %key.0, item = %key.1, failures = inc.failures, retry_in_secs = secs, "evidence transfer paused: {why}");
    }

    /// A writer's report.
    pub fn event(&mut self, e: WriterEvent) {
        match e {
            WriterEvent::Consumed(k) => {
                if let Some(inc) = self.items.get_mut(&k) {
                    inc.outstanding = inc.outstanding.saturating_sub(1);
                }
            }
            WriterEvent::Refetch(k, from) => {
                if let Some(inc) = self.items.get_mut(&k) {
                    inc.again.insert(from);
                }
            }
            WriterEvent::Progress(_) => {}
            WriterEvent::Ended(k) => {
                self.items.remove(&k);
                self.fill();
            }
        }
    }

    /// A partner is reachable again: its items need not wait out their back-off.
    pub fn reachable(&mut self, peer: &AgencyId) {
        for inc in self.items.values_mut().filter(|i| &i.peer == peer) {
            inc.retry_at = None;
        }
    }

    /// Items being received (for the status snapshot).
    pub fn active(&self) -> usize {
        self.items.len()
    }

    /// Items waiting for their turn (for the status snapshot).
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// The name of an item's partial file: its case and a hash of its record key, so that two item
/// ids (`a.b`, `a-b`) never share a file, and no id reaches the file system as it was given.
pub fn partial_name(case: &CaseId, key: &str) -> String {
    let name = Sha256Digest::of(key.as_bytes()).to_hex();
    format!("{case}-{}", &name[..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_item_ids_never_share_a_partial_file() {
        let case = CaseId::from_bytes([2; 16]);
        let names: BTreeSet<String> = [
            "XB.DOJ-CA/a.b",
            "XB.DOJ-CA/a-b",
            "XB.DOJ-CA/a_b",
            "XC.POLICE/a.b",
        ]
        .iter()
        .map(|k| partial_name(&case, k))
        .collect();
        assert_eq!(names.len(), 4);
        assert!(names.iter().all(|n| !n.contains(['/', '.'])));
    }
}
