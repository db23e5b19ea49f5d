//! The event loop: the one task that owns the swarm. Commands come in (from the
//! [`NetHandle`](super::NetHandle), the store worker's [`Notice`]s, the evidence pool's
//! [`WriterEvent`]s); what arrives from partners goes out as jobs for the store worker. It
//! never reads or writes the disk, never blocks, and polls nothing: it sleeps until an event,
//! a command, or the earliest back-off it must end.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use libp2p::request_response::{self, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use rogatory_proto::card::AgencyCard;
use rogatory_proto::ids::{AgencyId, Sha256Digest};
use rogatory_proto::receipt::{ReceiptEvent, verify_receipt};
use tokio::sync::{mpsc, oneshot};

use super::keys::KeyExchange;
use super::outgoing::{DeliveryFailure, Outgoing, Sent};
use super::status::NetStatus;
use super::{Behaviour, BehaviourEvent, MAX_OPEN_BYTES, MAX_OPEN_BYTES_PER_PEER};
use crate::engine::{Cosignatures, Cosigned, Job, Notice, Opener, Worker};
use crate::evidence::fetch::{Fetcher, WriterEvent};
use crate::store::{OutboxState, Store};

/// What the loop is asked to do.
#[derive(Debug)]
pub(super) enum Command {
    /// Tell the network's state.
    Status(oneshot::Sender<NetStatus>),
    /// This node signed its key history again: serve this freshness note.
    Fresh(Vec<u8>),
    /// Stop.
    Stop,
}

/// What woke the loop (built and taken apart at once, on the stack: its size does not matter).
#[allow(clippy::large_enum_variant)]
enum Woke {
    Command(Option<Command>),
    Notice(Notice),
    Writer(WriterEvent),
    Served((ResponseChannel<Vec<u8>>, Vec<u8>)),
    /// A peer's key history, checked.
    Checked(super::keys::Checked),
    /// The worker's queue has room (`false`: the worker has stopped).
    Room(bool),
    Timer,
    Swarm(SwarmEvent<BehaviourEvent>),
}

/// Chunk requests served at once (each holds a response in memory).
const SERVING: usize = 4;
/// Envelopes read back from the store at once for one partner, beyond its window.
const LOAD_AHEAD: usize = 64;

/// A received envelope handed to the store worker, awaiting its receipt.
struct Open {
    channel: ResponseChannel<Vec<u8>>,
    size: usize,
    from: AgencyId,
}

/// The event loop's state.
pub struct EventLoop {
    pub(super) swarm: libp2p::Swarm<Behaviour>,
    pub(super) out: Outgoing,
    pub(super) worker: Worker,
    opener: Opener,
    limits: rogatory_proto::envelope::Limits,
    /// Partners' cosignatures of this node's checkpoints, checked as their receipts arrive.
    cosignatures: Cosignatures,
    /// Jobs the worker's queue had no room for that must not be lost (verified receipts): handed
    /// over, in order, as soon as there is room.
    pub(super) backlog: VecDeque<Job>,
    notices: mpsc::Receiver<Notice>,
    commands: mpsc::Receiver<Command>,
    writer_events: mpsc::Receiver<WriterEvent>,
    pub(super) fetcher: Fetcher,
    /// Envelopes received and not yet answered, by token.
    open: HashMap<u64, Open>,
    open_bytes: usize,
    open_by_peer: HashMap<AgencyId, usize>,
    next_token: u64,
    /// Chunk responses read off the loop, to send.
    served_tx: mpsc::Sender<(ResponseChannel<Vec<u8>>, Vec<u8>)>,
    served: mpsc::Receiver<(ResponseChannel<Vec<u8>>, Vec<u8>)>,
    serving: Arc<tokio::sync::Semaphore>,
    /// For serving chunks (read in blocking tasks, never on the loop).
    store: Arc<Store>,
    data: PathBuf,
    listening: Vec<String>,
    /// When to try again to hand the worker a read of queued envelopes (its queue was full).
    load_retry_at: Option<Instant>,
    /// Receipts that waited in `backlog`.
    receipts_waited: u64,
    /// Key histories: asked, served, checked.
    pub(super) keys: KeyExchange,
    checked: mpsc::Receiver<super::keys::Checked>,
    pub(super) trust: Arc<crate::trust::Trust>,
    /// `[trust]`: when partners' key histories are stale, and how often to refresh.
    pub(super) trust_config: crate::config::Trust,
    /// When to sign again and ask partners for their key histories.
    pub(super) next_refresh: Instant,
}

/// What the loop is built from.
pub struct Parts {
    /// The swarm, listening.
    pub swarm: libp2p::Swarm<Behaviour>,
    /// Pinned partners.
    pub partners: Vec<(libp2p::PeerId, AgencyCard)>,
    /// Envelopes queued when the node started (place, id, addressee).
    pub queued: Vec<(u64, [u8; 32], AgencyId)>,
    /// `delivery` configuration.
    pub delivery: crate::config::Delivery,
    /// The store worker.
    pub worker: Worker,
    /// The threads that open envelopes in front of the worker.
    pub opener: Opener,
    /// The limits envelopes are read under.
    pub limits: rogatory_proto::envelope::Limits,
    /// The store worker's notices.
    pub notices: mpsc::Receiver<Notice>,
    /// The evidence pool's events.
    pub writer_events: mpsc::Receiver<WriterEvent>,
    /// The loop's side of the evidence pool.
    pub fetcher: Fetcher,
    /// The store, for chunks served off the loop.
    pub store: Arc<Store>,
    /// The data directory.
    pub data: PathBuf,
    /// The partners' key histories.
    pub trust: Arc<crate::trust::Trust>,
    /// This node's freshness note, as signed at start.
    pub fresh: Vec<u8>,
    /// This node's keys and key history.
    pub me: Arc<crate::keydir::KeyDir>,
    /// Introductions of this node's agency by others, served with its history.
    pub introductions: Vec<Vec<u8>>,
    /// `[trust]`.
    pub trust_config: crate::config::Trust,
}

impl EventLoop {
    /// A loop and the handle that commands it.
    pub fn new(parts: Parts) -> (super::NetHandle, EventLoop) {
        let (changes, changed) = tokio::sync::watch::channel(0u64);
        let mut out = Outgoing::new(
            parts.delivery.in_flight,
            parts.delivery.initial(),
            parts.delivery.max(),
            changes,
        );
        for (peer, card) in parts.partners {
            out.add(card, peer);
        }
        let mut unroutable = 0usize;
        for (order, id, to) in parts.queued {
            if out.partners.contains_key(&to) {
                out.pend(&to, order, id, None);
            } else {
                unroutable += 1;
            }
        }
        if unroutable > 0 {
            tracing::warn!(
                "{unroutable} queued envelope(s) are for agencies no longer pinned; they wait until the partner is pinned again"
            );
        }
        let (keys, checked) = KeyExchange::new(
            Arc::clone(&parts.trust),
            parts.fresh,
            parts.introductions,
            crate::trust::Introducers {
                introducers: parts
                    .trust_config
                    .introducers
                    .iter()
                    .filter_map(|a| AgencyId::new(a).ok())
                    .collect(),
                needed: parts.trust_config.introductions_needed,
            },
            parts.me,
            &parts.data,
            parts.worker.clone(),
        );
        let (commands_tx, commands) = mpsc::channel(64);
        let (served_tx, served) = mpsc::channel(16);
        (
            super::NetHandle {
                commands: commands_tx,
                changed,
            },
            EventLoop {
                swarm: parts.swarm,
                out,
                worker: parts.worker,
                opener: parts.opener,
                limits: parts.limits,
                cosignatures: Cosignatures::default(),
                backlog: VecDeque::new(),
                notices: parts.notices,
                commands,
                writer_events: parts.writer_events,
                fetcher: parts.fetcher,
                open: HashMap::new(),
                open_bytes: 0,
                open_by_peer: HashMap::new(),
                next_token: 0,
                served_tx,
                served,
                serving: Arc::new(tokio::sync::Semaphore::new(SERVING)),
                store: parts.store,
                data: parts.data,
                listening: Vec::new(),
                load_retry_at: None,
                receipts_waited: 0,
                keys,
                checked,
                trust: parts.trust,
                next_refresh: Instant::now() + parts.trust_config.refresh(),
                trust_config: parts.trust_config,
            },
        )
    }

    /// Runs until told to stop (or until every handle is gone).
    pub async fn run(mut self) {
        // Every partner is called once at start: each learns this node's key history (a
        // rotation or revocation made while it ran elsewhere) without waiting for a message.
        for p in self.out.partners.values() {
            let _ = self.swarm.dial(
                libp2p::swarm::dial_opts::DialOpts::peer_id(p.peer)
                    .addresses(p.addrs.clone())
                    .build(),
            );
        }
        self.fetcher.load(None);
        self.freshness();
        self.pump();
        loop {
            let wake = [
                self.out.next_retry(),
                self.fetcher.next_wake(),
                self.load_retry_at,
                self.keys.next_wake(),
                Some(self.next_refresh),
            ]
            .into_iter()
            .flatten()
            .min();
            let woke = tokio::select! {
                c = self.commands.recv() => Woke::Command(c),
                Some(n) = self.notices.recv() => Woke::Notice(n),
                Some(e) = self.writer_events.recv() => Woke::Writer(e),
                Some(s) = self.served.recv() => Woke::Served(s),
                Some(c) = self.checked.recv() => Woke::Checked(c),
                r = self.worker.reserve(), if !self.backlog.is_empty() => Woke::Room(r.is_ok()),
                () = sleep_until(wake), if wake.is_some() => Woke::Timer,
                event = self.swarm.select_next_some() => Woke::Swarm(event),
            };
            match woke {
                Woke::Command(Some(Command::Status(tx))) => {
                    let _ = tx.send(self.status());
                }
                Woke::Command(Some(Command::Fresh(note))) => self.keys.set_fresh(note),
                Woke::Command(Some(Command::Stop) | None) => break,
                Woke::Notice(n) => {
                    self.notice(n);
                    self.pump();
                }
                Woke::Writer(e) => {
                    self.fetcher.event(e);
                    self.fetch();
                }
                Woke::Served((channel, bytes)) => {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .evidence
                        .send_response(channel, bytes);
                }
                Woke::Room(open) => {
                    // Room in the worker's queue: hand over what waits, in order.
                    while let Some(job) = self.backlog.pop_front() {
                        if let Err(job) = self.worker.try_give(job) {
                            self.backlog.push_front(job);
                            break;
                        }
                    }
                    if !open {
                        self.backlog.clear();
                    }
                }
                Woke::Checked(c) => self.checked(c),
                Woke::Timer => {
                    for (peer, connection) in self.keys.expired(Instant::now()) {
                        tracing::warn!(%peer, "closed a connection: an unknown peer that showed no key history of a pinned partner in time");
                        self.swarm.close_connection(connection);
                        if !self.out.by_peer.contains_key(&peer) {
                            let _ = self.swarm.disconnect_peer_id(peer);
                        }
                    }
                    self.load_retry_at = None;
                    if Instant::now() >= self.next_refresh {
                        self.refresh();
                    }
                    self.pump();
                    self.fetch();
                }
                Woke::Swarm(event) => self.swarm_event(event),
            }
        }
        tracing::info!("the event loop stops");
    }

    fn status(&self) -> NetStatus {
        let (peers, sending) = self.out.status();
        NetStatus {
            listening: self.listening.clone(),
            inbound_pending: self.open.len(),
            peers,
            sending,
            evidence_active: self.fetcher.active(),
            evidence_waiting: self.fetcher.waiting(),
            receipts_waited: self.receipts_waited,
        }
    }

    fn notice(&mut self, n: Notice) {
        match n {
            Notice::Answer { token, receipt } => {
                if let Some(o) = self.open.remove(&token) {
                    self.open_bytes -= o.size;
                    if let Some(n) = self.open_by_peer.get_mut(&o.from) {
                        *n = n.saturating_sub(o.size);
                    }
                    if let Some(r) = receipt {
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .envelope
                            .send_response(o.channel, r);
                    }
                }
            }
            Notice::EvidenceListed { case } => {
                self.fetcher.load(Some(case));
            }
            Notice::KeysWanted { agency } => {
                if let Some(peer) = self.out.partners.get(&agency).map(|p| p.peer)
                    && self.keys.wanted(&agency)
                {
                    tracing::info!(partner = %agency, "an envelope names an official its key history here does not: asking for its key history");
                    self.ask_keys(peer, Some(&agency));
                }
            }
            Notice::Queued {
                to,
                order,
                id,
                envelope,
            } => self.out.pend(&to, order, id, Some(envelope)),
            Notice::Loaded {
                to,
                entries,
                failed,
            } => {
                if let Some(p) = self.out.partners.get_mut(&to) {
                    p.loading = false;
                }
                if failed {
                    self.out.failed(&to, DeliveryFailure::Outbox);
                }
                for (order, id, envelope) in entries {
                    match envelope {
                        Some(e) => {
                            let waiting = self
                                .out
                                .partners
                                .get(&to)
                                .is_some_and(|p| p.pending.contains_key(&order));
                            if waiting {
                                self.out.pend(&to, order, id, Some(e));
                            }
                        }
                        // Settled since it was queued here: nothing to send.
                        None if !failed => {
                            if let Some(p) = self.out.partners.get_mut(&to) {
                                p.pending.remove(&order);
                            }
                        }
                        None => {}
                    }
                }
            }
            Notice::Settled { id, state } => {
                for p in self.out.partners.values_mut() {
                    if let Some(sent) = p.settling.remove(&id) {
                        match state {
                            Some(s) => {
                                p.settled += 1;
                                if s == OutboxState::Rejected {
                                    tracing::warn!(partner = %p.card.id(), envelope = %hex::encode(id), "the partner rejected an envelope");
                                } else {
                                    tracing::info!(partner = %p.card.id(), envelope = %hex::encode(id), "delivered");
                                }
                            }
                            None => {
                                // Not recorded (a store failure): sent again later; the
                                // partner answers a resend with the receipt it stored.
                                let to = p.card.id().clone();
                                self.out.pend(&to, sent.order, sent.id, Some(sent.envelope));
                            }
                        }
                        break;
                    }
                }
            }
        }
    }

    /// Puts queued envelopes on the wire, per partner, in order, up to the window, unless the
    /// partner is backing off; asks the worker for those not held in memory.
    pub(super) fn pump(&mut self) {
        let now = Instant::now();
        let partners: Vec<AgencyId> = self.out.partners.keys().cloned().collect();
        for to in partners {
            if let Some(p) = self.out.partners.get_mut(&to)
                && p.retry_at.is_some_and(|t| t <= now)
            {
                // The back-off has ended.
                p.retry_at = None;
            }
            while let Some(p) = self.out.partners.get(&to) {
                if p.retry_at.is_some() || p.busy() >= self.out.window || p.held.is_some() {
                    break;
                }
                if let Some((order, id, envelope)) = self.out.take_ready(&to) {
                    let Some(p) = self.out.partners.get_mut(&to) else {
                        break;
                    };
                    let r = self
                        .swarm
                        .behaviour_mut()
                        .envelope
                        .send_request_with_addresses(&p.peer, envelope.clone(), p.addrs.clone());
                    p.in_flight.insert(
                        r,
                        Sent {
                            order,
                            id,
                            envelope,
                        },
                    );
                    continue;
                }
                let Some(p) = self.out.partners.get(&to) else {
                    break;
                };
                // The next envelope is not in memory (or there is none).
                if p.loading || p.pending.is_empty() {
                    break;
                }
                let ids: Vec<(u64, [u8; 32])> = p
                    .pending
                    .iter()
                    .filter(|(_, e)| e.envelope.is_none())
                    .take(self.out.window + LOAD_AHEAD)
                    .map(|(o, e)| (*o, e.id))
                    .collect();
                match self.worker.try_give(Job::LoadQueued {
                    to: to.clone(),
                    ids,
                }) {
                    Ok(()) => {
                        if let Some(p) = self.out.partners.get_mut(&to) {
                            p.loading = true;
                        }
                    }
                    Err(_) => {
                        self.load_retry_at = Some(now + std::time::Duration::from_millis(50));
                    }
                }
                break;
            }
        }
    }

    /// Puts evidence chunk requests on the wire, to each partner at the addresses on its card.
    pub(super) fn fetch(&mut self) {
        let (swarm, out) = (&mut self.swarm, &self.out);
        self.fetcher.pump(|to, request| {
            let p = out.partners.get(to)?;
            Some(swarm.behaviour_mut().evidence.send_request_with_addresses(
                &p.peer,
                request,
                p.addrs.clone(),
            ))
        });
    }

    fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                println!("listening on {address}");
                tracing::info!(%address, "listening");
                self.listening.push(address.to_string());
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                tracing::warn!(from = %send_back_addr, "refused a connection: {error}");
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::error!("a listener failed: {error}");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            } => match self.out.by_peer.get(&peer_id).cloned() {
                None => {
                    // Perhaps a partner with a new key: it has a while to show its history.
                    if self.keys.probation(peer_id, connection_id) {
                        tracing::debug!(peer = %peer_id, "an unknown peer: asking for its key history");
                        self.ask_keys(peer_id, None);
                    } else {
                        tracing::debug!(peer = %peer_id, "refused a connection: not a pinned partner (one connection each, and a few unknown peers at once)");
                        self.swarm.close_connection(connection_id);
                    }
                }
                Some(agency) => {
                    if self
                        .out
                        .partners
                        .get(&agency)
                        .is_some_and(|p| p.connections == 0)
                    {
                        // Newly reachable: has its key history grown meanwhile?
                        self.ask_keys(peer_id, Some(&agency));
                    }
                    if let Some(p) = self.out.partners.get_mut(&agency) {
                        p.connections += 1;
                        // The partner is reachable again: no need to wait out the back-off.
                        p.retry_at = None;
                    }
                    tracing::debug!(partner = %agency, "connected");
                    self.fetcher.reachable(&agency);
                    self.pump();
                    self.fetch();
                }
            },
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(expected),
                error: libp2p::swarm::DialError::WrongPeerId { obtained, address },
                ..
            } if self.out.by_peer.contains_key(&expected) && self.keys.redial(obtained) => {
                // The partner's node answers with another key: ask whoever is there for its
                // key history (a rotation this node has not heard of yet).
                tracing::info!(expected = %expected, %obtained, "a partner's address answers with another key: asking for its key history");
                // The address as dialled names the expected peer id: without it, whoever is
                // there is taken (and put on probation).
                let address: libp2p::Multiaddr = address
                    .iter()
                    .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
                    .collect();
                let _ = self.swarm.dial(
                    libp2p::swarm::dial_opts::DialOpts::unknown_peer_id()
                        .address(address)
                        .build(),
                );
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } if self.keys.on_probation(&peer_id) && num_established == 0 => {
                // Its probation ends with its last connection.
                self.keys.release(&peer_id);
                self.keys.done(&peer_id);
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => {
                if let Some(p) = self
                    .out
                    .by_peer
                    .get(&peer_id)
                    .cloned()
                    .and_then(|a| self.out.partners.get_mut(&a))
                {
                    p.connections = p.connections.saturating_sub(1);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Envelope(e)) => self.envelope_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Evidence(e)) => self.evidence_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Keys(e)) => self.keys_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.ping_event(e),
            _ => {}
        }
    }

    fn envelope_event(&mut self, e: request_response::Event<Vec<u8>, Vec<u8>>) {
        match e {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let Some(from) = self.out.by_peer.get(&peer).cloned() else {
                        return;
                    };
                    self.inbound(from, request, channel);
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let Some(agency) = self.out.by_peer.get(&peer).cloned() else {
                        return;
                    };
                    self.receipt(&agency, request_id, response);
                    self.pump();
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(agency) = self.out.by_peer.get(&peer).cloned() {
                    let sent = self
                        .out
                        .partners
                        .get_mut(&agency)
                        .and_then(|p| p.in_flight.remove(&request_id));
                    if let Some(s) = sent {
                        self.out.pend(&agency, s.order, s.id, Some(s.envelope));
                    }
                    self.out
                        .failed(&agency, DeliveryFailure::Unreachable(error.to_string()));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "an inbound request failed: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// An envelope from a partner: handed to the store worker, within the bytes this node lets
    /// wait for it (per partner and in all); otherwise dropped unanswered (its sender resends).
    fn inbound(&mut self, from: AgencyId, request: Vec<u8>, channel: ResponseChannel<Vec<u8>>) {
        let size = request.len();
        let peer_open = self.open_by_peer.get(&from).copied().unwrap_or(0);
        if self.open_bytes + size > MAX_OPEN_BYTES || peer_open + size > MAX_OPEN_BYTES_PER_PEER {
            tracing::warn!(%from, "busy: too many bytes awaiting the store; its sender will resend");
            return;
        }
        let token = self.next_token;
        self.next_token += 1;
        match self.opener.try_give(token, from.clone(), request) {
            Ok(()) => {
                *self.open_by_peer.entry(from.clone()).or_default() += size;
                self.open.insert(
                    token,
                    Open {
                        channel,
                        size,
                        from,
                    },
                );
                self.open_bytes += size;
            }
            Err(_) => {
                tracing::warn!(%from, "busy: an envelope was not taken; its sender will resend it");
            }
        }
    }

    /// A partner's receipt for an envelope sent from here: verified, then recorded by the
    /// worker; never dropped (held here while the worker's queue is full).
    fn receipt(
        &mut self,
        agency: &AgencyId,
        request_id: request_response::OutboundRequestId,
        response: Vec<u8>,
    ) {
        let Some(p) = self.out.partners.get_mut(agency) else {
            return;
        };
        let Some(sent) = p.in_flight.remove(&request_id) else {
            return;
        };
        if response.is_empty() {
            // No receipt: the partner did not take the envelope (busy, or it does not know
            // this node's current key yet). Sent again after the back-off.
            self.out
                .pend(agency, sent.order, sent.id, Some(sent.envelope));
            self.out.failed(
                agency,
                DeliveryFailure::Unreachable(
                    "the partner did not take the envelope (busy, or it does not know this node's current key yet)".into(),
                ),
            );
            return;
        }
        // Signed with the partner's key of the time: the current one, or one a rotation
        // replaced since (never a revoked one: then the current card, which it fails).
        let kid = rogatory_proto::receipt::signer_key_id(&response).unwrap_or_default();
        let issuer = self
            .trust
            .card_for_key(agency, &kid)
            .or_else(|| self.trust.card(agency))
            .unwrap_or_else(|| p.card.clone());
        match verify_receipt(&response, &issuer, Some(&Sha256Digest(sent.id))) {
            Ok(v) => {
                p.failures = 0;
                p.last_error = None;
                // The cosignature is checked here, off the worker (what it needs is in hand).
                let cosigned = match v.receipt.event {
                    ReceiptEvent::Accepted => {
                        match self.cosignatures.check(
                            &sent.envelope,
                            v.receipt.cosignature.as_deref(),
                            &issuer,
                            &self.limits,
                        ) {
                            Ok(Ok(())) => Cosigned::Fine,
                            Ok(Err(problem)) => Cosigned::Problem(problem),
                            Err(_) => Cosigned::Unchecked,
                        }
                    }
                    ReceiptEvent::Rejected => Cosigned::Unchecked,
                };
                let job = Job::Receipt {
                    id: sent.id,
                    by: agency.clone(),
                    receipt: response,
                    event: v.receipt.event,
                    reason: v.receipt.reason.map(u16::from),
                    cosigned,
                };
                p.settling.insert(sent.id, sent);
                // Behind receipts already waiting, or in the worker's queue if it has room.
                if !self.backlog.is_empty() {
                    self.backlog.push_back(job);
                    self.receipts_waited += 1;
                } else if let Err(job) = self.worker.try_give(job) {
                    self.backlog.push_back(job);
                    self.receipts_waited += 1;
                }
            }
            Err(e) => {
                tracing::error!(partner = %agency, "a receipt does not verify: {e}");
                self.out
                    .pend(agency, sent.order, sent.id, Some(sent.envelope));
                self.out
                    .failed(agency, DeliveryFailure::BadReceipt(e.to_string()));
            }
        }
    }

    fn evidence_event(&mut self, e: request_response::Event<Vec<u8>, Vec<u8>>) {
        match e {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let Some(from) = self.out.by_peer.get(&peer).cloned() else {
                        return;
                    };
                    let (store, data, tx) = (
                        Arc::clone(&self.store),
                        self.data.clone(),
                        self.served_tx.clone(),
                    );
                    let permits = Arc::clone(&self.serving);
                    tokio::spawn(async move {
                        // A few reads at a time: each holds a response in memory.
                        let Ok(_permit) = permits.acquire_owned().await else {
                            return;
                        };
                        let bytes = tokio::task::spawn_blocking(move || {
                            crate::evidence::serve::serve(&store, &data, &from, &request)
                        })
                        .await
                        .unwrap_or_else(|_| {
                            vec![rogatory_proto::evidence::ChunkStatus::Unavailable as u8]
                        });
                        let _ = tx.send((channel, bytes)).await;
                    });
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.fetcher.response(request_id, response);
                    self.fetch();
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                self.fetcher.failure(request_id, error.to_string());
            }
            _ => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}
