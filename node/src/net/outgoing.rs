//! Delivery of the outbox to partners: per partner, in queue order, a window of envelopes in
//! flight, exponential back-off with jitter after a failure.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use libp2p::request_response::{self};
use libp2p::{Multiaddr, PeerId};
use rogatory_proto::card::AgencyCard;
use rogatory_proto::ids::AgencyId;

/// The sending side for one partner.
pub(super) struct Partner {
    pub(super) card: AgencyCard,
    pub(super) peer: PeerId,
    /// The addresses on its card, given with every request: libp2p forgets an address after a
    /// failed dial, and a partner that was down for a weekend must still be found.
    pub(super) addrs: Vec<Multiaddr>,
    /// Queued envelopes not on the wire, by queue order.
    pub(super) pending: BTreeMap<u64, [u8; 32]>,
    /// On the wire.
    pub(super) in_flight: HashMap<request_response::OutboundRequestId, (u64, [u8; 32])>,
    /// Receipt verified, its record not yet committed.
    pub(super) settling: HashMap<[u8; 32], u64>,
    pub(super) failures: u32,
    pub(super) retry_at: Option<Instant>,
    pub(super) last_error: Option<String>,
    pub(super) connections: usize,
    pub(super) settled: u64,
}

impl Partner {
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
}

impl Outgoing {
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

    pub(super) fn failed(&mut self, to: &AgencyId, error: String) {
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
        }
    }

    pub(super) fn snapshot(&self, snap: &mut crate::api::Snapshot) {
        let now = Instant::now();
        snap.sending.clear();
        snap.peers = self
            .partners
            .values()
            .map(|p| {
                snap.sending.extend(p.in_flight.values().map(|(_, id)| *id));
                snap.sending.extend(p.settling.keys().copied());
                crate::api::PeerStatus {
                    agency: p.card.id().to_string(),
                    peer_id: p.peer.to_string(),
                    connections: p.connections,
                    queued: p.pending.len(),
                    in_flight: p.busy(),
                    failures: p.failures,
                    retry_in_secs: p
                        .retry_at
                        .filter(|t| *t > now)
                        .map(|t| (t - now).as_secs_f64()),
                    last_error: p.last_error.clone(),
                    settled: p.settled,
                }
            })
            .collect();
        snap.peers.sort_by(|a, b| a.agency.cmp(&b.agency));
    }
}
