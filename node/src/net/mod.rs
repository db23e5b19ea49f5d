//! The network: libp2p (TCP + Noise + Yamux, and QUIC; identify; ping) with the agency's
//! Ed25519 key as the node's identity, and the node's two request-response protocols:
//! `/rogatory/envelope/1` (envelope → receipt) and `/rogatory/evidence/1` (chunk request →
//! chunks).
//!
//! The folder: [`EventLoop`] (`event_loop`: the one task that owns the swarm) and its
//! [`NetHandle`]; `outgoing` (delivery of the outbox: order, window, back-off); `codec` (the
//! bounded codecs of both protocols); `status` (what the loop tells about the network).
//!
//! Only pinned partners are served: a connection from any other peer id gets 20 s (at most 8
//! such peers at once, each with the 3 connections any peer may hold, all closed when its
//! probation ends without it being accepted) to show, by its key history, that it is a pinned
//! partner's new key (spec/KEYS.md §7.4); its envelope and evidence requests get no answer
//! meanwhile. Every read is bounded by the message's limit and by byte budgets per connection
//! and in total.
//!
//! Sending: the outbox's queue, per partner, in order, with up to `delivery.in_flight`
//! envelopes on the wire; an envelope is settled only when its receipt has verified and been
//! committed. After a failure the partner is retried with exponential back-off and jitter,
//! forever; a connection from the partner ends the back-off at once.

mod behaviour;
mod codec;
mod event_loop;
mod keys;
mod liveness;
mod outgoing;
mod peer_keys;
mod status;

pub use behaviour::{Behaviour, BehaviourEvent};
pub use codec::{
    BoundedCodec, Budget, ENVELOPE_PROTOCOL, EVIDENCE_PROTOCOL, EnvelopeCodec, EvidenceCodec,
    KEYS_PROTOCOL, READ_BUDGET_PER_CONNECTION, READ_BUDGET_TOTAL,
};
pub use event_loop::{EventLoop, Parts};
pub use outgoing::{DeliveryFailure, MAX_HELD_BYTES};
pub use status::{NetStatus, PeerStatus};

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, connection_limits, identify, identity, noise, ping, tcp, yamux};
use rogatory_proto::card::AgencyCard;

use crate::keydir::KeyDir;

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

/// Each connection is pinged this often ...
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
/// ... and closed when pings are not answered within this (libp2p reports a connection's
/// second failure, so about 25 s after the last answer): a partner cut off, what was in flight
/// on it fails and is sent again over a new connection, instead of waiting for the old one's
/// TCP retransmissions once the network is back.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// Setting up a TCP connection (connect, Noise, Yamux) takes at most this.
pub const CONNECTION_SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The libp2p peer id of an agency: its card's Ed25519 signing key.
pub fn peer_id(card: &AgencyCard) -> Result<PeerId> {
    let pk = identity::ed25519::PublicKey::try_from_bytes(card.signing_key().as_bytes())
        .context("the card's signing key is not a libp2p Ed25519 key")?;
    Ok(identity::PublicKey::from(pk).to_peer_id())
}

/// The node's swarm, its agency's signing key as identity. Which peers are served is the
/// event loop's decision (pinned partners; a peer with a new key once its key history shows it
/// is one).
pub fn swarm(kd: &KeyDir) -> Result<libp2p::Swarm<Behaviour>> {
    let keypair = identity::Keypair::ed25519_from_bytes(*kd.keys.signing.seed())
        .context("the agency key as a libp2p identity")?;
    let cfg = request_response::Config::default()
        .with_request_timeout(Duration::from_secs(60))
        .with_max_concurrent_streams(256);
    Ok(libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_quic()
        .with_other_transport(|key| {
            use libp2p::Transport as _;
            // TCP as `with_tcp` builds it, with a bound on setting a connection up: without
            // one, a dial to a partner cut off waits out the kernel's SYN retries (about two
            // minutes), and no new dial is made meanwhile.
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                    .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default())
                    .timeout(CONNECTION_SETUP_TIMEOUT),
            )
        })?
        .with_behaviour(|key| Behaviour {
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
                    .with_max_pending_outgoing(Some(MAX_CONNECTIONS))
                    .with_max_established(Some(MAX_CONNECTIONS))
                    .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER)),
            ),
            envelope: request_response::Behaviour::with_codec(
                EnvelopeCodec::new(READ_BUDGET_TOTAL),
                [(ENVELOPE_PROTOCOL, ProtocolSupport::Full)],
                cfg.clone(),
            ),
            evidence: request_response::Behaviour::with_codec(
                BoundedCodec::EVIDENCE,
                [(EVIDENCE_PROTOCOL, ProtocolSupport::Full)],
                cfg.clone(),
            ),
            keys: request_response::Behaviour::with_codec(
                BoundedCodec::KEYS,
                [(KEYS_PROTOCOL, ProtocolSupport::Full)],
                cfg.with_request_timeout(Duration::from_secs(20)),
            ),
            identify: identify::Behaviour::new(identify::Config::new(
                "/rogatory/1".into(),
                key.public(),
            )),
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(PING_INTERVAL)
                    .with_timeout(PING_TIMEOUT),
            ),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build())
}

/// The pinned partners of a data directory, by peer id.
pub fn pinned_peers(dir: &Path) -> Result<HashMap<PeerId, AgencyCard>> {
    KeyDir::pinned(dir)?
        .into_iter()
        .map(|c| Ok((peer_id(&c)?, c)))
        .collect()
}

/// The handle on the event loop: asks it for the network's state, or to stop.
#[derive(Clone, Debug)]
pub struct NetHandle {
    commands: tokio::sync::mpsc::Sender<event_loop::Command>,
    /// Moves when what the status shows of a partner changes.
    changed: tokio::sync::watch::Receiver<u64>,
}

impl NetHandle {
    /// Interest in the next change of what the status shows of a partner (a failed delivery,
    /// its key history's state): [`tokio::sync::watch::Receiver::changed`] completes when one
    /// happens after this call.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        let mut rx = self.changed.clone();
        rx.mark_unchanged();
        rx
    }

    /// The network's state (`None`: the loop has stopped).
    pub async fn status(&self) -> Option<NetStatus> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands
            .send(event_loop::Command::Status(tx))
            .await
            .ok()?;
        rx.await.ok()
    }

    /// Hands the loop this node's new freshness note (spec/KEYS.md §7.6).
    pub async fn set_fresh(&self, note: Vec<u8>) {
        let _ = self.commands.send(event_loop::Command::Fresh(note)).await;
    }

    /// Tells the loop to stop.
    pub async fn stop(&self) {
        let _ = self.commands.send(event_loop::Command::Stop).await;
    }
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
    let mut swarm = swarm(kd)?;
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
                })) if request_id == request => {
                    if response.is_empty() {
                        bail!("{to} did not take the delivery: its node does not know this agency's current key (not pinned there, or not yet learnt), or it is busy");
                    }
                    return Ok(response);
                }
                SwarmEvent::Behaviour(BehaviourEvent::Envelope(request_response::Event::OutboundFailure {
                    error: request_response::OutboundFailure::ConnectionClosed, ..
                })) => {
                    bail!("{to} did not take the delivery: its node at {addr} closed the connection without answering (it does not know this agency's current key, or it stopped)")
                }
                SwarmEvent::Behaviour(BehaviourEvent::Envelope(request_response::Event::OutboundFailure { error, .. })) => {
                    bail!("delivery to {to} at {addr} failed: {error}")
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => bail!("cannot connect to {to} at {addr}: {error}"),
                _ => {}
            }
        }
    }
}
