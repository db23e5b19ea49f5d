//! Delivery of the outbox to partners: per partner, in queue order, a window of envelopes in
//! flight, exponential back-off with jitter after a failure.
//!
//! The loop holds the envelopes it is about to send in memory, up to [`MAX_HELD_BYTES`] in all;
//! beyond that (a partner down for a weekend while the queue grows) it keeps only their ids
//! and has the store worker read them back ([`crate::engine::Job::LoadQueued`]) when their turn
//! comes. The loop itself never reads the store.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use libp2p::request_response::OutboundRequestId;
use libp2p::{Multiaddr, PeerId};
use rogatory_proto::card::AgencyCard;
use rogatory_proto::ids::AgencyId;

use super::status::PeerStatus;

/// Bytes of queued envelopes (not yet on the wire) the loop holds in memory, all partners
/// together.
pub const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;

/// Why a delivery to a partner failed, and whose fault it is; the partner is retried after a
/// back-off in every case.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryFailure {
    /// The network's, or the partner node's: not reachable, the connection closed, no answer
    /// in time.
    #[error("{0}")]
    Unreachable(String),
    /// The partner's: its receipt does not verify.
    #[error("a receipt did not verify: {0}")]
    BadReceipt(String),
    /// This node's: the store worker could not read the outbox.
    #[error("this node cannot read its outbox")]
    Outbox,
}

/// A queued envelope not on the wire.
pub(super) struct Pending {
    pub(super) id: [u8; 32],
    /// The envelope, if held in memory.
    pub(super) envelope: Option<Vec<u8>>,
}

/// An envelope on the wire, or whose receipt is being recorded: kept whole, to send again if
/// that fails.
pub(super) struct Sent {
    pub(super) order: u64,
    pub(super) id: [u8; 32],
    pub(super) envelope: Vec<u8>,
}

/// The sending side for one partner.
pub(super) struct Partner {
    pub(super) card: AgencyCard,
    pub(super) peer: PeerId,
    /// The addresses on its card, given with every request: libp2p forgets an address after a
    /// failed dial, and a partner that was down for a weekend must still be found.
    pub(super) addrs: Vec<Multiaddr>,
    /// Queued envelopes not on the wire, by queue order.
    pub(super) pending: BTreeMap<u64, Pending>,
    /// A read of queued envelopes is with the store worker.
    pub(super) loading: bool,
    /// On the wire.
    pub(super) in_flight: HashMap<OutboundRequestId, Sent>,
    /// Receipt verified, its record not yet committed.
    pub(super) settling: HashMap<[u8; 32], Sent>,
    pub(super) failures: u32,
    pub(super) retry_at: Option<Instant>,
    pub(super) last_error: Option<DeliveryFailure>,
    pub(super) connections: usize,
    pub(super) settled: u64,
    /// Why messages to it wait: its key history was not confirmed for too long.
    pub(super) held: Option<String>,
    /// Its key history's freshness, in words, and its age in seconds (spec/KEYS.md §7.6).
    pub(super) key_state: &'static str,
    pub(super) key_age: Option<u64>,
}

impl Partner {
    pub(super) fn new(card: AgencyCard, peer: PeerId) -> Self {
        let addrs = card
            .body()
            .addresses
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect();
        Self {
            card,
            peer,
            addrs,
            pending: BTreeMap::new(),
            loading: false,
            in_flight: HashMap::new(),
            settling: HashMap::new(),
            failures: 0,
            retry_at: None,
            last_error: None,
            connections: 0,
            settled: 0,
            held: None,
            key_state: "unconfirmed",
            key_age: None,
        }
    }

    pub(super) fn busy(&self) -> usize {
        self.in_flight.len() + self.settling.len()
    }
}

/// Delivery of the outbox: per partner, in queue order, up to a window of envelopes in flight;
/// after a failure, exponential back-off with jitter, for as long as it takes.
pub(super) struct Outgoing {
    pub(super) partners: HashMap<AgencyId, Partner>,
    pub(super) by_peer: HashMap<PeerId, AgencyId>,
    pub(super) window: usize,
    pub(super) initial: Duration,
    pub(super) max: Duration,
    /// Bytes of pending envelopes held in memory.
    pub(super) held: usize,
    /// Rung when what the status shows of a partner changes (a failure, its key history's
    /// state), for `GET /v1/status?wait=`.
    pub(super) changes: tokio::sync::watch::Sender<u64>,
}

impl Outgoing {
    pub(super) fn new(
        window: usize,
        initial: Duration,
        max: Duration,
        changes: tokio::sync::watch::Sender<u64>,
    ) -> Self {
        Self {
            changes,
            partners: HashMap::new(),
            by_peer: HashMap::new(),
            window: window.max(1),
            initial,
            max,
            held: 0,
        }
    }

    /// A partner's card changed (its key history grew): its keys, peer id and addresses are
    /// the new card's from now on; what is queued for it stays queued. Returns the new peer id.
    pub(super) fn rekey(&mut self, card: AgencyCard) -> Option<PeerId> {
        let peer = super::peer_id(&card).ok()?;
        let id = card.id().clone();
        let p = self.partners.get_mut(&id)?;
        let fresh = Partner::new(card, peer);
        p.card = fresh.card;
        p.addrs = fresh.addrs;
        if p.peer != peer {
            self.by_peer.remove(&p.peer);
            p.peer = peer;
            p.connections = 0;
            self.by_peer.insert(peer, id.clone());
            // What was on the wire to the old peer id would never be answered here (its events
            // no longer map to the partner): it is sent again to the new one.
            let stranded: Vec<Sent> = p.in_flight.drain().map(|(_, s)| s).collect();
            for s in stranded {
                self.pend(&id, s.order, s.id, Some(s.envelope));
            }
        }
        Some(peer)
    }

    /// Adds a pinned partner.
    pub(super) fn add(&mut self, card: AgencyCard, peer: PeerId) {
        self.by_peer.insert(peer, card.id().clone());
        self.partners
            .insert(card.id().clone(), Partner::new(card, peer));
    }

    /// Puts an envelope (back) in its partner's queue, holding its bytes if there is room.
    pub(super) fn pend(
        &mut self,
        to: &AgencyId,
        order: u64,
        id: [u8; 32],
        envelope: Option<Vec<u8>>,
    ) {
        let Some(p) = self.partners.get_mut(to) else {
            return;
        };
        let envelope = envelope.filter(|e| self.held + e.len() <= MAX_HELD_BYTES);
        self.held += envelope.as_ref().map_or(0, Vec::len);
        if let Some(old) = p.pending.insert(order, Pending { id, envelope }) {
            self.held -= old.envelope.as_ref().map_or(0, Vec::len);
        }
    }

    /// Takes the first pending envelope of a partner if its bytes are held.
    pub(super) fn take_ready(&mut self, to: &AgencyId) -> Option<(u64, [u8; 32], Vec<u8>)> {
        let p = self.partners.get_mut(to)?;
        let first = p.pending.first_entry()?;
        first.get().envelope.as_ref()?;
        let order = *first.key();
        let Pending { id, envelope } = first.remove();
        let envelope = envelope?;
        self.held -= envelope.len();
        Some((order, id, envelope))
    }

    /// The delay before retry number `failures` (1 = after the first failure): the initial
    /// delay doubled per failure, capped, then a uniformly random part of its second half
    /// ("equal jitter"), so partners coming back are not hit by every sender at once.
    pub(super) fn backoff(&self, failures: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
            .min(self.max);
        let mut r = [0u8; 8];
        rogatory_proto::keys::fill_random(&mut r);
        let frac = (u64::from_le_bytes(r) >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(0.5 + 0.5 * frac)
    }

    /// A delivery to `to` failed: back off (once per round of failures).
    pub(super) fn failed(&mut self, to: &AgencyId, error: DeliveryFailure) {
        let now = Instant::now();
        let delay = match self.partners.get(to) {
            Some(p) if p.retry_at.is_some_and(|t| t > now) => return,
            Some(p) => self.backoff(p.failures + 1),
            None => return,
        };
        if let Some(p) = self.partners.get_mut(to) {
            p.failures += 1;
            p.retry_at = Some(now + delay);
            tracing::warn!(
                partner = %to, failures = p.failures, retry_in = ?delay,
                "delivery failed: {error}"
            );
            p.last_error = Some(error);
            self.changed();
        }
    }

    /// What the status shows of a partner changed.
    pub(super) fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// When the earliest back-off of a partner with envelopes waiting ends (the pump clears a
    /// back-off that has ended, so a time past means "now", once).
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.partners
            .values()
            .filter(|p| !p.pending.is_empty())
            .filter_map(|p| p.retry_at)
            .min()
    }

    /// What the local API shows of each partner, and the envelopes on the wire or settling.
    pub(super) fn status(&self) -> (Vec<PeerStatus>, Vec<[u8; 32]>) {
        let now = Instant::now();
        let mut sending = Vec::new();
        let mut peers: Vec<PeerStatus> = self
            .partners
            .values()
            .map(|p| {
                sending.extend(p.in_flight.values().map(|s| s.id));
                sending.extend(p.settling.keys().copied());
                PeerStatus {
                    agency: p.card.id().to_string(),
                    peer_id: p.peer.to_string(),
                    connections: p.connections,
                    queued: p.pending.len(),
                    in_flight: p.busy(),
                    settling: p.settling.len(),
                    failures: p.failures,
                    retry_in_secs: p
                        .retry_at
                        .filter(|t| *t > now)
                        .map(|t| (t - now).as_secs_f64()),
                    last_error: p
                        .held
                        .clone()
                        .or_else(|| p.last_error.as_ref().map(ToString::to_string)),
                    settled: p.settled,
                    key_state: p.key_state.to_string(),
                    key_age_secs: p.key_age,
                }
            })
            .collect();
        peers.sort_by(|a, b| a.agency.cmp(&b.agency));
        (peers, sending)
    }
}
