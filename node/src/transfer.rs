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
//! [`MAX_RESPONSE_BYTES`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{AsyncRead, AsyncWrite};
use libp2p::StreamProtocol;
use libp2p::request_response::{self, OutboundRequestId};
use rogatory_proto::evidence::{
    self as stream, ChunkRequest, ChunkStatus, ContentKey, MAX_CHUNKS_PER_REQUEST,
    MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES,
};
use rogatory_proto::ids::{AgencyId, CaseId, Sha256Digest};
use sha2::Digest;

use crate::engine::Job;
use crate::evidence::{EvidenceRecord, EvidenceState};
use crate::store::Store;

/// The evidence protocol.
pub const EVIDENCE_PROTOCOL: StreamProtocol = StreamProtocol::new("/rogatory/evidence/1");
/// Requests in flight (or answered and not yet written) per item.
pub const WINDOW: usize = 4;
/// Requests in flight for all items together.
pub const MAX_IN_FLIGHT: usize = 8;
/// Times a chunk that does not open is asked for again before the item is quarantined.
const REFETCHES: u32 = 2;

/// Codec of `/rogatory/evidence/1`: a request is a [`ChunkRequest`], a response a status byte
/// and the sealed chunks; each read to the end of its stream with a hard limit.
#[derive(Debug, Clone, Default)]
pub struct EvidenceCodec;

impl request_response::Codec for EvidenceCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        crate::net::read_bounded(io, MAX_REQUEST_BYTES, false).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        crate::net::read_bounded(io, MAX_RESPONSE_BYTES, true).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> std::io::Result<()> {
        crate::net::write_closed(io, &req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> std::io::Result<()> {
        crate::net::write_closed(io, &res).await
    }
}

/// Answers a chunk request from `from` (blocking: call it off the event loop). Only items this
/// node listed to `from` in a manifest are served, from their sealed file.
pub fn serve(store: &Store, data: &Path, from: &AgencyId, request: &[u8]) -> Vec<u8> {
    let status = |s: ChunkStatus| vec![s as u8];
    let r = match ChunkRequest::decode(request) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(%from, "a chunk request does not parse: {e}");
            return status(ChunkStatus::BadRequest);
        }
    };
    // One lookup by key: this runs for every request of a transfer.
    let record = match store.evidence_item(&r.case, &r.item) {
        Ok(found) => found.filter(|e| {
            e.outgoing && e.peer.as_ref() == Some(from) && e.state == EvidenceState::Announced
        }),
        Err(e) => {
            tracing::error!("cannot read the evidence records: {e}");
            return status(ChunkStatus::Unavailable);
        }
    };
    let Some((record, blob)) = record.and_then(|r| r.blob.clone().map(|b| (r, b))) else {
        tracing::warn!(%from, case = %r.case, item = %r.item, "asked for evidence not listed to it");
        return status(ChunkStatus::Unknown);
    };
    let size = record.item.size;
    let chunks = stream::chunks(size);
    if r.first >= chunks || r.first + r.count > chunks {
        return status(ChunkStatus::OutOfRange);
    }
    let mut len = 0usize;
    for i in r.first..r.first + r.count {
        len += stream::plain_len(size, i).unwrap_or(0) + stream::TAG;
    }
    let mut out = vec![0u8; 1 + len];
    out[0] = ChunkStatus::Ok as u8;
    let read = (|| -> std::io::Result<()> {
        let mut f = File::open(data.join(crate::evidence::DIR).join(&blob))?;
        f.seek(SeekFrom::Start(stream::sealed_offset(r.first)))?;
        f.read_exact(&mut out[1..])
    })();
    match read {
        Ok(()) => out,
        Err(e) => {
            tracing::error!(case = %r.case, item = %r.item, "cannot read evidence content: {e}");
            status(ChunkStatus::Unavailable)
        }
    }
}

/// How far a response of `len` bytes starting at chunk `first` reaches (the chunk after its
/// last whole one).
fn span(size: u64, first: u64, len: usize) -> Result<u64> {
    let mut i = first;
    let mut at = 0usize;
    while i < stream::chunks(size) {
        let n = stream::plain_len(size, i)? + stream::TAG;
        if at + n > len {
            break;
        }
        at += n;
        i += 1;
    }
    Ok(i)
}

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

/// Receives one item: in chunk order, checked, hashed, appended, synced now and then.
struct Writer {
    data: PathBuf,
    jobs: SyncSender<Job>,
    events: tokio::sync::mpsc::Sender<WriterEvent>,
    record: EvidenceRecord,
    key: ContentKey,
    sync_every: u64,
}

impl Writer {
    fn item_key(&self) -> ItemKey {
        (self.record.case_id, self.record.key())
    }

    fn partial_path(&self) -> Result<PathBuf> {
        let d = crate::evidence::dir(&self.data)?.join(crate::evidence::PARTIAL);
        crate::files::create_private_dir(&d)?;
        Ok(d.join(partial_name(&self.record.case_id, &self.record.key())))
    }

    fn run(self, rx: std::sync::mpsc::Receiver<(u64, Vec<u8>)>) {
        let key = self.item_key();
        if let Err(e) = self.receive(&rx) {
            tracing::error!(case = %key.0, item = %key.1, "evidence transfer stopped: {e:#}");
        }
        let _ = self.events.blocking_send(WriterEvent::Ended(key));
    }

    /// Opens and hashes the durable prefix of the partial file; returns the hasher, the file
    /// positioned at its end, and the chunks it holds.
    fn resume(&self, size: u64) -> Result<(sha2::Sha256, File, u64)> {
        let path = self.partial_path()?;
        let mut f = crate::files::open_no_follow(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let len = f.metadata()?.len();
        let mut done = self
            .record
            .chunks_done
            .min(len / stream::SEALED_CHUNK as u64)
            .min(stream::chunks(size));
        let mut hasher = sha2::Sha256::new();
        let mut buf = Vec::with_capacity(stream::SEALED_CHUNK);
        f.seek(SeekFrom::Start(0))?;
        for i in 0..done {
            let n = stream::plain_len(size, i)? + stream::TAG;
            buf.truncate(n);
            if buf.len() < n {
                buf.resize(n, 0);
            }
            f.read_exact(&mut buf)?;
            if stream::open_chunk(&self.key, size, i, &mut buf).is_err() {
                tracing::warn!(case = %self.record.case_id, chunk = i, "a stored chunk of a partial transfer does not open: fetching it again");
                done = i;
                break;
            }
            hasher.update(&buf);
        }
        f.set_len(stream::sealed_offset(done))?;
        f.seek(SeekFrom::Start(stream::sealed_offset(done)))?;
        Ok((hasher, f, done))
    }

    fn receive(&self, rx: &std::sync::mpsc::Receiver<(u64, Vec<u8>)>) -> Result<()> {
        let size = self.record.item.size;
        let chunks = stream::chunks(size);
        let key = self.item_key();
        let (mut hasher, mut file, mut next) = self.resume(size)?;
        if next != self.record.chunks_done {
            self.progress(next)?;
        }
        let mut held: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut unsynced = 0u64;
        let mut failed_at: HashMap<u64, u32> = HashMap::new();
        while next < chunks {
            let (first, bytes) = rx
                .recv()
                .context("the node is stopping; the transfer resumes at its next start")?;
            if first < next {
                let _ = self
                    .events
                    .blocking_send(WriterEvent::Consumed(key.clone()));
                continue;
            }
            held.insert(first, bytes);
            // Take responses in chunk order. A response asked for again (after a chunk that did
            // not open) may overlap others: chunks already written are skipped.
            loop {
                // Drop what is wholly behind.
                while let Some((&f, b)) = held.first_key_value() {
                    if f < next && span(size, f, b.len())? <= next {
                        held.remove(&f);
                        let _ = self
                            .events
                            .blocking_send(WriterEvent::Consumed(key.clone()));
                    } else {
                        break;
                    }
                }
                let Some((&f, _)) = held.range(..=next).next_back() else {
                    break;
                };
                let Some(bytes) = held.remove(&f) else {
                    break;
                };
                let _ = self
                    .events
                    .blocking_send(WriterEvent::Consumed(key.clone()));
                let mut at = 0usize;
                for i in f..next {
                    at += stream::plain_len(size, i)? + stream::TAG;
                }
                let mut broken = None;
                while at < bytes.len() && next < chunks {
                    let n = stream::plain_len(size, next)? + stream::TAG;
                    if bytes.len() < at + n {
                        broken = Some(next);
                        break;
                    }
                    let mut c = bytes[at..at + n].to_vec();
                    file.write_all(&c)?;
                    if stream::open_chunk(&self.key, size, next, &mut c).is_err() {
                        broken = Some(next);
                        break;
                    }
                    hasher.update(&c);
                    at += n;
                    next += 1;
                    unsynced += n as u64;
                }
                if broken.is_none() && at != bytes.len() {
                    broken = Some(next);
                }
                if let Some(b) = broken {
                    // Undo the chunk written, and ask for it again; a chunk that keeps failing
                    // quarantines the item.
                    file.set_len(stream::sealed_offset(b))?;
                    file.seek(SeekFrom::Start(stream::sealed_offset(b)))?;
                    let n = failed_at.entry(b).or_insert(0);
                    *n += 1;
                    tracing::warn!(case = %key.0, item = %key.1, chunk = b, times = *n, "a chunk from the holder does not open");
                    if *n > REFETCHES {
                        return self.quarantine(
                            file,
                            format!("chunk {b} from the holder does not verify (asked {n} times)"),
                        );
                    }
                    let _ = self
                        .events
                        .blocking_send(WriterEvent::Refetch(key.clone(), b));
                    break;
                }
                if unsynced >= self.sync_every {
                    file.sync_data()?;
                    self.progress(next)?;
                    let _ = self
                        .events
                        .blocking_send(WriterEvent::Progress(key.clone()));
                    unsynced = 0;
                }
            }
        }
        file.sync_all()?;
        let sha = Sha256Digest(hasher.finalize().into());
        if Some(sha) != self.record.item.sha256 {
            return self.quarantine(
                file,
                format!(
                    "the content's SHA-256 is {}, not the manifest's",
                    sha.to_hex()
                ),
            );
        }
        drop(file);
        let name = crate::evidence::blob_name(&sha, &self.key);
        let dir = crate::evidence::dir(&self.data)?;
        std::fs::rename(self.partial_path()?, dir.join(&name))?;
        File::open(&dir)?.sync_all()?;
        self.arrived(crate::engine::Arrival::Verified { blob: name })?;
        tracing::info!(case = %key.0, item = %key.1, size, "evidence received and verified");
        Ok(())
    }

    fn quarantine(&self, file: File, problem: String) -> Result<()> {
        drop(file);
        let d = crate::evidence::dir(&self.data)?.join(crate::evidence::QUARANTINE);
        crate::files::create_private_dir(&d)?;
        let from = self.partial_path()?;
        let to = d.join(from.file_name().context("partial file name")?);
        std::fs::rename(&from, &to)?;
        tracing::error!(case = %self.record.case_id, item = %self.record.key(), "evidence quarantined: {problem}");
        self.arrived(crate::engine::Arrival::Quarantined { problem })
    }

    fn progress(&self, done: u64) -> Result<()> {
        self.ask("the progress", |reply| Job::EvidenceProgress {
            case: self.record.case_id,
            key: self.record.key(),
            done,
            reply,
        })
    }

    fn arrived(&self, outcome: crate::engine::Arrival) -> Result<()> {
        self.ask("the arrival", |reply| Job::EvidenceArrived {
            case: self.record.case_id,
            key: self.record.key(),
            outcome,
            reply,
        })
    }

    /// Hands the store worker a job and waits until it is committed.
    fn ask(
        &self,
        what: &str,
        job: impl FnOnce(tokio::sync::oneshot::Sender<Result<(), String>>) -> Job,
    ) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(job(tx))
            .ok()
            .context("the store worker stopped")?;
        match rx.blocking_recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => bail!("cannot record {what}: {e}"),
            Err(_) => bail!("the store worker stopped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rogatory_proto::message::{EvidenceItem, EvidenceManifest, TransferMode};

    fn item(id: &str, size: u64, mode: TransferMode) -> EvidenceItem {
        EvidenceItem {
            item_id: id.into(),
            description: "records".into(),
            media_type: "text/csv".into(),
            size,
            sha256: Some(Sha256Digest([1; 32])),
            transfer: Some(mode),
            ..Default::default()
        }
    }

    /// Only the partner an item was listed to gets its chunks, only within the item, and a
    /// request that does not parse gets a status, never a panic.
    #[test]
    fn chunks_are_served_only_to_the_partner_the_item_was_listed_to() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path())
            .unwrap()
            .with_record_keys(crate::store::RecordKeys::new(
                &rogatory_proto::keys::AgencySecretKeys::generate(),
            ));
        let case = CaseId::from_bytes([3; 16]);
        let partner = AgencyId::new("XA.MOJ-CA").unwrap();
        let other = AgencyId::new("XC.POLICE").unwrap();
        let size = stream::CHUNK as u64 + 10;
        let blob = format!("{}-{}", "a".repeat(64), "b".repeat(16));
        let dir = crate::evidence::dir(t.path()).unwrap();
        let sealed = vec![0x42u8; stream::sealed_len(size) as usize];
        std::fs::write(dir.join(&blob), &sealed).unwrap();
        let record = |state| EvidenceRecord {
            case_id: case,
            item: item("E1", size, TransferMode::Send),
            outgoing: true,
            state,
            peer: Some(partner.clone()),
            manifest: None,
            blob: Some(blob.clone()),
            wrapped_key: None,
            chunks_done: 0,
            problem: None,
            added_at: 0,
            added_by: None,
            announced_at: None,
            reports: Vec::new(),
        };
        let put = |r: &EvidenceRecord| {
            let mut b = store.batch().unwrap();
            b.put_evidence(r).unwrap();
            b.commit().unwrap();
        };
        let ask = |from: &AgencyId, item: &str, first, count| {
            serve(
                &store,
                t.path(),
                from,
                &ChunkRequest {
                    case,
                    item: item.into(),
                    first,
                    count,
                }
                .encode(),
            )
        };
        // Staged: its manifest has not gone out, so nobody may fetch it.
        put(&record(EvidenceState::Staged));
        assert_eq!(ask(&partner, "E1", 0, 1), [ChunkStatus::Unknown as u8]);
        put(&record(EvidenceState::Announced));
        let ok = ask(&partner, "E1", 0, 2);
        assert_eq!(ok[0], ChunkStatus::Ok as u8);
        assert_eq!(&ok[1..], &sealed[..]);
        assert_eq!(ask(&other, "E1", 0, 1), [ChunkStatus::Unknown as u8]);
        assert_eq!(ask(&partner, "E9", 0, 1), [ChunkStatus::Unknown as u8]);
        assert_eq!(ask(&partner, "E1", 1, 2), [ChunkStatus::OutOfRange as u8]);
        assert_eq!(ask(&partner, "E1", 2, 1), [ChunkStatus::OutOfRange as u8]);
        assert_eq!(
            serve(&store, t.path(), &partner, b"\xa1\x00"),
            [ChunkStatus::BadRequest as u8]
        );
        // The file gone (a disk problem): unavailable, not a crash.
        std::fs::remove_file(dir.join(&blob)).unwrap();
        assert_eq!(ask(&partner, "E1", 0, 1), [ChunkStatus::Unavailable as u8]);
    }

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

    /// A partner's manifest that repeats an item id, or lists a `send` item without its key,
    /// is refused and records nothing.
    #[test]
    fn a_manifest_that_repeats_an_item_or_lacks_a_key_is_refused_whole() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path())
            .unwrap()
            .with_record_keys(crate::store::RecordKeys::new(
                &rogatory_proto::keys::AgencySecretKeys::generate(),
            ));
        let case = CaseId::from_bytes([4; 16]);
        let from = AgencyId::new("XB.DOJ-CA").unwrap();
        let storage = [9u8; 32];
        let env = Sha256Digest([5; 32]);
        let mut send = item("E1", 10, TransferMode::Send);
        send.content_key = Some([7; 32]);
        let manifest = |items| EvidenceManifest {
            request: None,
            items,
            note: None,
        };
        let quotas = crate::evidence::Quotas {
            max_items_per_manifest: 3,
            max_items_per_case: 5,
            per_case: stream::sealed_len(100) + stream::sealed_len(10),
            ..Default::default()
        };
        let record = |m: &EvidenceManifest| {
            let mut b = store.batch().unwrap();
            let r = crate::evidence::record_manifest(
                &mut b, &case, &from, env, m, &storage, &quotas, 0,
            )
            .unwrap();
            b.commit().unwrap();
            r.map_err(|e| e.to_string())
        };
        let keyless = item("E2", 10, TransferMode::Send);
        assert!(
            record(&manifest(vec![keyless]))
                .unwrap_err()
                .contains("no content key")
        );
        assert!(store.evidence(&case).unwrap().is_empty());
        // Too many items: refused whole.
        let many = (0..4)
            .map(|i| item(&format!("H{i}"), 1, TransferMode::HashOnly))
            .collect();
        assert!(record(&manifest(many)).unwrap_err().contains("at most 3"));
        assert!(record(&manifest(vec![send.clone()])).unwrap().is_empty());
        let again = record(&manifest(vec![item("E3", 1, TransferMode::HashOnly), send]));
        assert!(again.unwrap_err().contains("earlier manifest"));
        // Beyond the case's quota: listed, refused, keyless, and returned to tell the holder.
        let mut big = item("E4", 101, TransferMode::Send);
        big.content_key = Some([8; 32]);
        let mut fits = item("E5", 100, TransferMode::Send);
        fits.content_key = Some([8; 32]);
        assert_eq!(
            record(&manifest(vec![big, fits])).unwrap(),
            ["XB.DOJ-CA/E4"]
        );
        let e4 = store.evidence_item(&case, "XB.DOJ-CA/E4").unwrap().unwrap();
        assert_eq!(e4.state, EvidenceState::Refused);
        assert!(e4.problem.unwrap().contains("quota"));
        assert!(e4.wrapped_key.is_none());
        let e5 = store.evidence_item(&case, "XB.DOJ-CA/E5").unwrap().unwrap();
        assert_eq!(e5.state, EvidenceState::Expected);
        // The case holds 3 items; 3 more would be 6, beyond 5.
        let three = (0..3)
            .map(|i| item(&format!("H{i}"), 1, TransferMode::HashOnly))
            .collect();
        assert!(record(&manifest(three)).unwrap_err().contains("at most 5"));
        for k in ["XB.DOJ-CA/E4", "XB.DOJ-CA/E5"] {
            let mut b = store.batch().unwrap();
            let mut r = b.evidence_item(&case, k).unwrap().unwrap();
            r.state = EvidenceState::Listed;
            b.put_evidence(&r).unwrap();
            b.commit().unwrap();
        }
        let held = store.evidence(&case).unwrap();
        let keys: Vec<String> = held.iter().map(EvidenceRecord::key).collect();
        assert_eq!(
            keys,
            ["XB.DOJ-CA/E1", "XB.DOJ-CA/E4", "XB.DOJ-CA/E5"],
            "nothing of the refused manifests was kept"
        );
        assert_eq!(held[0].state, EvidenceState::Expected);
        // Its key is kept wrapped, and unwraps under the storage key only.
        let w = held[0].wrapped_key.clone().unwrap();
        let ctx = crate::evidence::key_context(&case, &held[0].key());
        assert_eq!(
            stream::unwrap_key(&storage, &ctx, &w).unwrap().as_bytes(),
            &[7; 32]
        );
    }

    /// A partner's report on evidence is applied only to items handed over to that partner, with
    /// their SHA-256, in order (verified or quarantined once, exported after verified); a refused
    /// report changes nothing, not even its other items.
    #[test]
    fn an_evidence_report_must_name_an_item_handed_to_its_sender_in_order() {
        use rogatory_proto::audit::entry::AuditEvent;
        use rogatory_proto::message::{CustodyEntry, EvidenceStatus, ItemState, ItemStatus};
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path())
            .unwrap()
            .with_record_keys(crate::store::RecordKeys::new(
                &rogatory_proto::keys::AgencySecretKeys::generate(),
            ));
        let case = CaseId::from_bytes([6; 16]);
        let partner = AgencyId::new("XA.MOJ-CA").unwrap();
        let other = AgencyId::new("XC.POLICE").unwrap();
        let mut b = store.batch().unwrap();
        for (id, mode, state) in [
            ("E1", TransferMode::Send, EvidenceState::Announced),
            ("E2", TransferMode::HashOnly, EvidenceState::Announced),
            ("E3", TransferMode::Send, EvidenceState::Staged),
        ] {
            b.put_evidence(&EvidenceRecord {
                case_id: case,
                item: item(id, 10, mode),
                outgoing: true,
                state,
                peer: (state != EvidenceState::Staged).then(|| partner.clone()),
                manifest: None,
                blob: None,
                wrapped_key: None,
                chunks_done: 0,
                problem: None,
                added_at: 0,
                added_by: None,
                announced_at: None,
                reports: Vec::new(),
            })
            .unwrap();
        }
        b.commit().unwrap();
        let news = |id: &str, state, sha| ItemStatus {
            item_id: id.into(),
            sha256: Some(Sha256Digest([sha; 32])),
            state: Some(state),
            custody: vec![CustodyEntry {
                at: "2026-12-04T10:00:00Z".into(),
                actor: "XA.MOJ-CA".into(),
                action: state.as_str().into(),
                note: None,
            }],
            problem: None,
        };
        let report = |from: &AgencyId, items: Vec<ItemStatus>| {
            let mut b = store.batch().unwrap();
            let r = crate::evidence::record_status(
                &mut b,
                &case,
                from,
                &EvidenceStatus { items },
                Sha256Digest([9; 32]),
                rogatory_proto::time::parse_utc("2026-12-04T12:00:00Z").unwrap(),
            )
            .unwrap();
            b.commit().unwrap();
            r
        };
        for (from, items, says) in [
            (
                &other,
                vec![news("E1", ItemState::Verified, 1)],
                "not handed over to XC.POLICE",
            ),
            (
                &partner,
                vec![news("E9", ItemState::Verified, 1)],
                "not handed over",
            ),
            (
                &partner,
                vec![news("E3", ItemState::Verified, 1)],
                "not handed over",
            ),
            (
                &partner,
                vec![news("E1", ItemState::Verified, 2)],
                "another SHA-256",
            ),
            (
                &partner,
                vec![news("E1", ItemState::Exported, 1)],
                "announced here",
            ),
            (
                &partner,
                vec![news("E2", ItemState::Verified, 1)],
                "announced here",
            ),
            (
                &partner,
                vec![
                    news("E1", ItemState::Verified, 1),
                    news("E2", ItemState::Verified, 1),
                ],
                "item E2",
            ),
        ] {
            let e = report(from, items).unwrap_err();
            assert!(e.to_string().contains(says), "{says}: {e}");
        }
        let untouched = store.evidence(&case).unwrap();
        assert!(untouched.iter().all(|r| r.item.custody.is_empty()));
        assert_eq!(untouched[0].state, EvidenceState::Announced);

        let events = report(&partner, vec![news("E1", ItemState::Verified, 1)]).unwrap();
        assert_eq!(
            events,
            [(Sha256Digest([1; 32]), AuditEvent::EvidenceVerified)]
        );
        let e = report(&partner, vec![news("E1", ItemState::Quarantined, 1)]).unwrap_err();
        assert!(e.to_string().contains("verified here"), "{e}");
        let events = report(&partner, vec![news("E1", ItemState::Exported, 1)]).unwrap();
        assert_eq!(
            events,
            [(Sha256Digest([1; 32]), AuditEvent::EvidenceExported)]
        );
        let r = store.evidence_item(&case, "E1").unwrap().unwrap();
        assert_eq!(r.state, EvidenceState::Verified);
        let actions: Vec<_> = r.item.custody.iter().map(|c| c.action.as_str()).collect();
        assert_eq!(actions, ["verified", "exported"]);
    }
}
