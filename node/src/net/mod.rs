//! The network: libp2p (TCP + Noise + Yamux, ping) with the agency's Ed25519 key as the node's
//! identity, and the request-response protocol `/rogatory/envelope/1` (envelope → receipt).
//!
//! One event loop owns the swarm (TCP + Noise + Yamux and QUIC; identify; ping). The store
//! worker ([`crate::engine`]) does every write, in group commits, behind a bounded queue; the
//! event loop never waits for the disk. Only pinned partners are served: a connection from any
//! other peer id is closed as soon as it is authenticated, and a request from one is dropped.
//! Every read is bounded by the envelope limit; receipts by the receipt limit.
//!
//! Sending: the outbox's queue, per partner, in order, with up to `delivery.in_flight`
//! envelopes on the wire; an envelope is settled only when its receipt has verified and been
//! committed. After a failure the partner is retried with exponential back-off and jitter,
//! forever; a connection from the partner ends the back-off at once.

mod codec;
mod outgoing;

pub use codec::{
    Budget, ENVELOPE_PROTOCOL, EVIDENCE_PROTOCOL, EnvelopeCodec, EvidenceCodec,
    READ_BUDGET_PER_CONNECTION, READ_BUDGET_TOTAL,
};
use outgoing::{Outgoing, Partner};

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, allow_block_list, connection_limits, identify, identity, noise, ping, tcp,
    yamux,
};
use rogatory_proto::card::AgencyCard;
use rogatory_proto::envelope::Limits;
use rogatory_proto::ids::AgencyId;
use rogatory_proto::receipt::verify_receipt;

use crate::engine::{self, Engine, Job, Notice};
use crate::keydir::KeyDir;
use crate::store::{OutboxState, Store};

/// Capacity of the store worker's queue.
const QUEUE: usize = 1024;
/// Most bytes of received envelopes handed to the store worker and not yet answered.
const MAX_OPEN_BYTES: usize = 256 * 1024 * 1024;
/// Connections one partner may hold to this node (both directions together).
pub const MAX_CONNECTIONS_PER_PEER: u32 = 3;
/// Incoming connections whose handshake is under way (beyond them, new ones are closed at once:
/// a flood of raw connections holds at most this many descriptors).
pub const MAX_PENDING_INCOMING: u32 = 32;
/// Established connections, every peer together.
pub const MAX_CONNECTIONS: u32 = 128;
/// Bytes of received envelopes one partner may have waiting for the store worker.
pub const MAX_OPEN_BYTES_PER_PEER: usize = 64 * 1024 * 1024;

/// The node's behaviours.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Connections bounded: handshakes under way, per peer, in total (descriptors and memory
    /// under a flood of connections).
    limits: connection_limits::Behaviour,
    /// Only pinned partners: any other peer's connection is denied as soon as the handshake
    /// has authenticated it, before any protocol runs.
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    envelope: request_response::Behaviour<EnvelopeCodec>,
    evidence: request_response::Behaviour<EvidenceCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// The libp2p peer id of an agency: its card's Ed25519 signing key.
pub fn peer_id(card: &AgencyCard) -> Result<PeerId> {
    let pk = identity::ed25519::PublicKey::try_from_bytes(card.signing_key().as_bytes())
        .context("the card's signing key is not a libp2p Ed25519 key")?;
    Ok(identity::PublicKey::from(pk).to_peer_id())
}

fn swarm(kd: &KeyDir, allowed: &[PeerId]) -> Result<libp2p::Swarm<Behaviour>> {
    let keypair = identity::Keypair::ed25519_from_bytes(*kd.keys.signing.seed())
        .context("the agency key as a libp2p identity")?;
    let cfg = request_response::Config::default()
        .with_request_timeout(Duration::from_secs(60))
        .with_max_concurrent_streams(256);
    Ok(libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic()
        .with_behaviour(|key| Behaviour {
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
                    .with_max_pending_outgoing(Some(MAX_CONNECTIONS))
                    .with_max_established(Some(MAX_CONNECTIONS))
                    .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER)),
            ),
            allow: {
                let mut a = allow_block_list::Behaviour::default();
                for p in allowed {
                    a.allow_peer(*p);
                }
                a
            },
            envelope: request_response::Behaviour::with_codec(
                EnvelopeCodec::new(READ_BUDGET_TOTAL),
                [(ENVELOPE_PROTOCOL, ProtocolSupport::Full)],
                cfg.clone(),
            ),
            evidence: request_response::Behaviour::new(
                [(EVIDENCE_PROTOCOL, ProtocolSupport::Full)],
                cfg,
            ),
            identify: identify::Behaviour::new(identify::Config::new(
                "/rogatory/1".into(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build())
}

fn pinned_peers(dir: &Path) -> Result<HashMap<PeerId, AgencyCard>> {
    KeyDir::pinned(dir)?
        .into_iter()
        .map(|c| Ok((peer_id(&c)?, c)))
        .collect()
}

/// What `rogatory run` needs besides the data directory.
pub struct RunOptions {
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// The configuration.
    pub config: crate::config::Config,
}

/// Runs the node until SIGINT or SIGTERM: listens, answers envelopes from pinned partners,
/// delivers the outbox, and serves the local API.
pub async fn run(dir: &Path, opts: RunOptions) -> Result<()> {
    let kd = Arc::new(KeyDir::load(dir)?);
    let store = Arc::new(
        Store::open(dir)
            .context("cannot open the store")?
            .with_record_keys(crate::store::RecordKeys::new(&kd.keys)),
    );
    let pinned = pinned_peers(dir)?;
    let trusted: Vec<AgencyCard> = pinned.values().cloned().collect();
    let limits = Limits {
        max_envelope_bytes: opts.config.limits.max_envelope_bytes,
        ..Limits::default()
    };
    let mut swarm = swarm(&kd, &pinned.keys().copied().collect::<Vec<_>>())?;
    let me = kd.card.id().clone();

    // The store worker, and what it tells the event loop.
    let (notice_tx, mut notices) = tokio::sync::mpsc::channel::<Notice>(4096);
    let (jobs, worker) = engine::spawn(
        Engine::new(
            Arc::clone(&store),
            Arc::clone(&kd),
            trusted.clone(),
            limits,
            crate::evidence::Quotas::from_config(&opts.config.evidence, dir),
        ),
        QUEUE,
        notice_tx,
    )?;

    for addr in &opts.listen {
        swarm.listen_on(addr.clone()).map_err(|e| {
            anyhow::anyhow!("cannot listen on {addr}: {e} (is the port in use by another node?)")
        })?;
    }

    // The outbox, in queue order, per partner.
    let delivery = &opts.config.delivery;
    let mut out = Outgoing {
        partners: HashMap::new(),
        by_peer: HashMap::new(),
        window: delivery.in_flight,
        initial: delivery.initial(),
        max: delivery.max(),
    };
    for (peer, card) in &pinned {
        let addrs: Vec<Multiaddr> = card
            .body()
            .addresses
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        out.by_peer.insert(*peer, card.id().clone());
        out.partners.insert(
            card.id().clone(),
            Partner {
                card: card.clone(),
                peer: *peer,
                addrs,
                pending: BTreeMap::new(),
                in_flight: HashMap::new(),
                settling: HashMap::new(),
                failures: 0,
                retry_at: None,
                last_error: None,
                connections: 0,
                settled: 0,
            },
        );
    }
    let mut unroutable = 0usize;
    for (order, id) in store.queued()? {
        let Some(entry) = store.outbox_entry(&id)? else {
            continue;
        };
        match out.partners.get_mut(&entry.to) {
            Some(p) => {
                p.pending.insert(order, id);
            }
            None => unroutable += 1,
        }
    }
    if unroutable > 0 {
        tracing::warn!(
            "{unroutable} queued envelope(s) are for agencies no longer pinned; they wait until the partner is pinned again"
        );
    }

    // The local API.
    let token = crate::api::new_token(dir)?;
    let status = Arc::new(std::sync::Mutex::new(crate::api::Snapshot {
        agency: me.to_string(),
        peer_id: swarm.local_peer_id().to_string(),
        ..Default::default()
    }));
    let waiters = Arc::new(crate::api::Waiters::default());
    let api_state = Arc::new(crate::api::ApiState {
        data: dir.to_path_buf(),
        waiters: Arc::clone(&waiters),
        store: Arc::clone(&store),
        me: Arc::clone(&kd),
        trusted: trusted.clone(),
        limits,
        jobs: jobs.clone(),
        status: Arc::clone(&status),
        token_hash: rogatory_proto::ids::Sha256Digest::of(token.as_bytes()),
    });
    drop(token);
    let (stop_api, api_stopped) = tokio::sync::watch::channel(false);
    let (api_addr, api_task) =
        crate::api::start(dir, opts.config.api.bind, api_state, api_stopped).await?;
    // Evidence: chunks served to partners from sealed files (read off the event loop, a few at
    // a time), and items listed by partners fetched, resuming where the last run stopped.
    let (served_tx, mut served) =
        tokio::sync::mpsc::channel::<(request_response::ResponseChannel<Vec<u8>>, Vec<u8>)>(16);
    let serving = Arc::new(tokio::sync::Semaphore::new(4));
    let (writer_tx, mut writer_events) = tokio::sync::mpsc::channel(256);
    let mut fetcher = crate::evidence::fetch::Fetcher::new(
        dir.to_path_buf(),
        Arc::clone(&store),
        jobs.clone(),
        kd.keys.storage_key(),
        writer_tx,
        opts.config.evidence.sync_every_mib << 20,
        opts.config.evidence.max_active_items,
        opts.config.evidence.keep_free_mib << 20,
    );
    fetcher.load(None);

    // Deadlines passed or near, in the log before anything else happens.
    crate::cases::log_deadlines(&store);
    let deadline_watch = tokio::spawn(crate::cases::watch_deadlines(Arc::clone(&store)));
    // Signals are taken over before the node says it is up: a SIGTERM right after `api on`
    // stops it cleanly instead of killing it.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    println!("api on {api_addr}");
    println!("{me} running as peer {}", swarm.local_peer_id());
    tracing::info!(agency = %me, peer = %swarm.local_peer_id(), api = %api_addr, "node started");

    // Requests handed to the worker and not yet answered, with their sizes.
    let mut open: HashMap<u64, (request_response::ResponseChannel<Vec<u8>>, usize, AgencyId)> =
        HashMap::new();
    let mut open_bytes = 0usize;
    let mut open_by_peer: HashMap<AgencyId, usize> = HashMap::new();
    let mut next_token = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut listening: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = term.recv() => break,
            Some(e) = writer_events.recv() => {
                if matches!(e, crate::evidence::fetch::WriterEvent::Progress(_) | crate::evidence::fetch::WriterEvent::Ended(_)) {
                    // Those waiting on the evidence list (`?wait=`) read it again.
                    waiters.1.notify_waiters();
                }
                fetcher.event(e);
                fetch(&mut swarm, &out, &mut fetcher);
            }
            Some((channel, bytes)) = served.recv() => {
                let _ = swarm.behaviour_mut().evidence.send_response(channel, bytes);
            }
            _ = tick.tick() => {
                pump(&mut swarm, &mut out, &store);
                fetch(&mut swarm, &out, &mut fetcher);
                if let Ok(mut s) = status.lock() {
                    out.snapshot(&mut s);
                    s.inbound_pending = open.len();
                    s.listening.clone_from(&listening);
                }
            }
            Some(n) = notices.recv() => {
                match n {
                    Notice::Answer { token, receipt } => {
                        if let Some((channel, size, from)) = open.remove(&token) {
                            open_bytes -= size;
                            if let Some(n) = open_by_peer.get_mut(&from) {
                                *n = n.saturating_sub(size);
                            }
                            if let Some(r) = receipt {
                                let _ = swarm.behaviour_mut().envelope.send_response(channel, r);
                                // A case may have changed (a confirmation, an update).
                                waiters.1.notify_waiters();
                            }
                        }
                    }
                    Notice::EvidenceListed { case } => {
                        fetcher.load(Some(case));
                        fetch(&mut swarm, &out, &mut fetcher);
                    }
                    Notice::Queued { to, order, id } => {
                        if let Some(p) = out.partners.get_mut(&to) {
                            p.pending.insert(order, id);
                        }
                    }
                    Notice::Settled { id, state } => {
                        for p in out.partners.values_mut() {
                            if let Some(order) = p.settling.remove(&id) {
                                match state {
                                    Some(s) => {
                                        p.settled += 1;
                                        waiters.notify(&id);
                                        if s == OutboxState::Rejected {
                                            tracing::warn!(partner = %p.card.id(), envelope = %hex::encode(id), "the partner rejected an envelope");
                                        } else {
                                            tracing::info!(partner = %p.card.id(), envelope = %hex::encode(id), "delivered");
                                        }
                                    }
                                    None => {
                                        p.pending.insert(order, id);
                                    }
                                }
                                break;
                            }
                        }
                    }
                }
                pump(&mut swarm, &mut out, &store);
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    println!("listening on {address}");
                    tracing::info!(%address, "listening");
                    listening.push(address.to_string());
                }
                SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                    tracing::warn!(from = %send_back_addr, "refused a connection: {error}");
                }
                SwarmEvent::ListenerError { error, .. } => {
                    tracing::error!("a listener failed: {error}");
                }
                SwarmEvent::ConnectionEstablished { peer_id, connection_id, .. } => {
                    match out.by_peer.get(&peer_id).cloned() {
                        None => {
                            tracing::warn!(peer = %peer_id, "refused a connection: not a pinned partner");
                            swarm.close_connection(connection_id);
                        }
                        Some(agency) => {
                            if let Some(p) = out.partners.get_mut(&agency) {
                                p.connections += 1;
                                // The partner is reachable again: no need to wait out the back-off.
                                p.retry_at = None;
                            }
                            tracing::debug!(partner = %agency, "connected");
                            fetcher.reachable(&agency);
                            pump(&mut swarm, &mut out, &store);
                            fetch(&mut swarm, &out, &mut fetcher);
                        }
                    }
                }
                SwarmEvent::ConnectionClosed { peer_id, .. } => {
                    if let Some(p) = out.by_peer.get(&peer_id).cloned().and_then(|a| out.partners.get_mut(&a)) {
                        p.connections = p.connections.saturating_sub(1);
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Envelope(request_response::Event::Message {
                    peer,
                    message,
                    ..
                })) => match message {
                    request_response::Message::Request { request, channel, .. } => {
                        let Some(from) = out.by_peer.get(&peer).cloned() else {
                            continue;
                        };
                        let size = request.len();
                        let peer_open = open_by_peer.get(&from).copied().unwrap_or(0);
                        if open_bytes + size > MAX_OPEN_BYTES || peer_open + size > MAX_OPEN_BYTES_PER_PEER {
                            tracing::warn!(%from, "busy: too many bytes awaiting the store; its sender will resend");
                            continue;
                        }
                        let token = next_token;
                        next_token += 1;
                        match jobs.try_send(Job::Inbound { token, from: from.clone(), bytes: request }) {
                            Ok(()) => {
                                *open_by_peer.entry(from.clone()).or_default() += size;
                                open.insert(token, (channel, size, from));
                                open_bytes += size;
                            }
                            Err(_) => {
                                tracing::warn!(%from, "busy: an envelope was not taken; its sender will resend it");
                            }
                        }
                    }
                    request_response::Message::Response { request_id, response } => {
                        let Some(agency) = out.by_peer.get(&peer).cloned() else {
                            continue;
                        };
                        let Some(p) = out.partners.get_mut(&agency) else {
                            continue;
                        };
                        let Some((order, id)) = p.in_flight.remove(&request_id) else {
                            continue;
                        };
                        match verify_receipt(&response, &p.card, Some(&rogatory_proto::ids::Sha256Digest(id))) {
                            Ok(v) => {
                                p.failures = 0;
                                p.last_error = None;
                                let job = Job::Receipt {
                                    id,
                                    by: agency.clone(),
                                    receipt: response,
                                    event: v.receipt.event,
                                    reason: v.receipt.reason.map(u16::from),
                                };
                                if jobs.try_send(job).is_ok() {
                                    p.settling.insert(id, order);
                                } else {
                                    p.pending.insert(order, id);
                                }
                            }
                            Err(e) => {
                                p.pending.insert(order, id);
                                tracing::error!(partner = %agency, "a receipt does not verify: {e}");
                                out.failed(&agency, format!("a receipt did not verify: {e}"));
                            }
                        }
                        pump(&mut swarm, &mut out, &store);
                    }
                },
                SwarmEvent::Behaviour(BehaviourEvent::Envelope(request_response::Event::OutboundFailure {
                    peer, request_id, error, ..
                })) => {
                    if let Some(agency) = out.by_peer.get(&peer).cloned() {
                        if let Some(p) = out.partners.get_mut(&agency)
                            && let Some((order, id)) = p.in_flight.remove(&request_id)
                        {
                            p.pending.insert(order, id);
                        }
                        out.failed(&agency, error.to_string());
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Evidence(request_response::Event::Message {
                    peer,
                    message,
                    ..
                })) => match message {
                    request_response::Message::Request { request, channel, .. } => {
                        let Some(from) = out.by_peer.get(&peer).cloned() else {
                            continue;
                        };
                        let (store, data, tx) = (Arc::clone(&store), dir.to_path_buf(), served_tx.clone());
                        let permits = Arc::clone(&serving);
                        tokio::spawn(async move {
                            // A few reads at a time: each holds a response in memory.
                            let Ok(_permit) = permits.acquire_owned().await else {
                                return;
                            };
                            let bytes = tokio::task::spawn_blocking(move || {
                                crate::evidence::serve::serve(&store, &data, &from, &request)
                            })
                            .await
                            .unwrap_or_else(|_| vec![rogatory_proto::evidence::ChunkStatus::Unavailable as u8]);
                            let _ = tx.send((channel, bytes)).await;
                        });
                    }
                    request_response::Message::Response { request_id, response } => {
                        fetcher.response(request_id, response);
                        fetch(&mut swarm, &out, &mut fetcher);
                    }
                },
                SwarmEvent::Behaviour(BehaviourEvent::Evidence(request_response::Event::OutboundFailure {
                    request_id, error, ..
                })) => {
                    fetcher.failure(request_id, error.to_string());
                }
                SwarmEvent::Behaviour(BehaviourEvent::Envelope(request_response::Event::InboundFailure {
                    peer, error, ..
                })) => {
                    tracing::debug!(%peer, "an inbound request failed: {error}");
                }
                _ => {}
            }
        }
    }
    tracing::info!("stopping");
    // Stop taking API requests, then let the worker finish the batch in hand: it commits, then
    // finds nobody to answer. Receipts not sent are safe: a resend gets the stored one.
    // Nobody reads notices any more: the worker must not wait for room to post them.
    drop(notices);
    let _ = std::fs::remove_file(dir.join(crate::api::ADDR_FILE));
    deadline_watch.abort();
    let _ = stop_api.send(true);
    let _ = api_task.await;
    // Evidence writers end when their fetcher goes (what they synced is recorded; the rest is
    // fetched again at the next start); then nothing but this function holds the job queue.
    drop(fetcher);
    drop(writer_events);
    drop(jobs);
    let _ = worker.join();
    println!("{me} stopped");
    Ok(())
}

/// Puts queued envelopes on the wire, per partner, in order, up to the window, unless the
/// partner is backing off.
fn pump(swarm: &mut libp2p::Swarm<Behaviour>, out: &mut Outgoing, store: &Store) {
    let now = Instant::now();
    for p in out.partners.values_mut() {
        if p.retry_at.is_some_and(|t| t > now) {
            continue;
        }
        while p.busy() < out.window {
            let Some((order, id)) = p.pending.pop_first() else {
                break;
            };
            match store.outbox_entry(&id) {
                Ok(Some(e)) if e.state == OutboxState::Queued => {
                    let r = swarm.behaviour_mut().envelope.send_request_with_addresses(
                        &p.peer,
                        e.envelope,
                        p.addrs.clone(),
                    );
                    p.in_flight.insert(r, (order, id));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("cannot read the outbox: {e}");
                    p.pending.insert(order, id);
                    break;
                }
            }
        }
    }
}

/// Puts evidence chunk requests on the wire, to each partner at the addresses on its card.
fn fetch(
    swarm: &mut libp2p::Swarm<Behaviour>,
    out: &Outgoing,
    fetcher: &mut crate::evidence::fetch::Fetcher,
) {
    fetcher.pump(|to, request| {
        let p = out.partners.get(to)?;
        Some(swarm.behaviour_mut().evidence.send_request_with_addresses(
            &p.peer,
            request,
            p.addrs.clone(),
        ))
    });
}

/// Delivers one envelope to the partner whose card is given, at `addr`, and returns its receipt.
pub async fn deliver(
    kd: &KeyDir,
    card: &AgencyCard,
    addr: Multiaddr,
    envelope: Vec<u8>,
) -> Result<Vec<u8>> {
    let to = card.id();
    let peer = peer_id(card)?;
    let mut swarm = swarm(kd, &[peer])?;
    swarm.add_peer_address(peer, addr.clone());
    swarm
        .dial(peer)
        .with_context(|| format!("cannot dial {to} at {addr}"))?;
    let request = swarm.behaviour_mut().envelope.send_request(&peer, envelope);
    let deadline = tokio::time::sleep(Duration::from_secs(90));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => bail!("no receipt from {to} within 90 s"),
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(BehaviourEvent::Envelope(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response }, ..
                })) if request_id == request => return Ok(response),
                SwarmEvent::Behaviour(BehaviourEvent::Envelope(request_response::Event::OutboundFailure { error, .. })) => {
                    bail!("delivery to {to} at {addr} failed: {error}")
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => bail!("cannot connect to {to} at {addr}: {error}"),
                _ => {}
            }
        }
    }
}
