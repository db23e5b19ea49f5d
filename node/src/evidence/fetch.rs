//! The event loop's side of evidence transfer over `/rogatory/evidence/1` (spec/EVIDENCE.md
//! §4): which chunks to ask for, of which items, when.
//!
//! The receiver pulls: for each item a partner's manifest listed as `send`, it asks the holder
//! for its sealed chunks, a few at a time ([`MAX_CHUNKS_PER_REQUEST`]), with a bounded number of
//! requests in flight per item ([`WINDOW`]) and for all items together ([`MAX_IN_FLIGHT`]);
//! emergency cases first, then the items in turn. The items themselves are received by the
//! bounded pool of threads of [`super::pool`], which tells this side when one starts
//! ([`WriterEvent::Started`]) and ends. Memory stays bounded whatever the item's size: at most
//! [`MAX_IN_FLIGHT`] responses are held, each at most
//! [`MAX_RESPONSE_BYTES`](rogatory_proto::evidence::MAX_RESPONSE_BYTES).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use libp2p::request_response::OutboundRequestId;
use rogatory_proto::evidence::{ChunkRequest, ChunkStatus, MAX_CHUNKS_PER_REQUEST};
use rogatory_proto::ids::{AgencyId, CaseId};

pub use super::transfer::{ItemKey, MAX_IN_FLIGHT, WINDOW, WriterEvent};

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

/// The event loop's side of every evidence transfer: the items being received (started by
/// the pool) and their requests in flight.
pub struct Fetcher {
    pool: super::pool::Queue,
    items: BTreeMap<ItemKey, Incoming>,
    in_flight: HashMap<OutboundRequestId, (ItemKey, u64, u64)>,
    turn: usize,
}

impl Fetcher {
    /// The loop's side of `pool`.
    pub fn new(pool: super::pool::Queue) -> Self {
        Self {
            pool,
            items: BTreeMap::new(),
            in_flight: HashMap::new(),
            turn: 0,
        }
    }

    /// Has the pool queue every item of `case` (or of every case) that is expected and
    /// neither being received nor waiting (the pool reads the store, not the loop).
    pub fn load(&mut self, case: Option<CaseId>) {
        self.pool.load(case);
    }

    /// Sends chunk requests, emergency cases first, the items in turn, within the windows.
    /// `send` puts a request on the wire to a partner and returns its id (`None`: no route).
    pub fn pump(&mut self, mut send: impl FnMut(&AgencyId, Vec<u8>) -> Option<OutboundRequestId>) {
        let now = Instant::now();
        for inc in self.items.values_mut() {
            if inc.retry_at.is_some_and(|t| t <= now) {
                // The pause has ended.
                inc.retry_at = None;
            }
        }
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
                if inc.retry_at.is_some() {
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

    /// A pool thread's report.
    pub fn event(&mut self, e: WriterEvent) {
        match e {
            WriterEvent::Started {
                key,
                peer,
                item,
                chunks,
                next,
                emergency,
                writer,
            } => {
                self.items.insert(
                    key,
                    Incoming {
                        peer,
                        item,
                        chunks,
                        next,
                        again: BTreeSet::new(),
                        outstanding: 0,
                        writer,
                        retry_at: None,
                        failures: 0,
                        emergency,
                    },
                );
            }
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
                self.in_flight.retain(|_, (key, _, _)| *key != k);
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
        self.pool.waiting()
    }

    /// When the earliest paused item may be asked for again ([`Fetcher::pump`] clears a pause
    /// that has ended, so a time past means "now", once).
    pub fn next_wake(&self) -> Option<Instant> {
        self.items.values().filter_map(|i| i.retry_at).min()
    }
}
