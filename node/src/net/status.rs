//! What the event loop tells about the network when asked ([`super::NetHandle::status`]).

use serde::{Deserialize, Serialize};

/// The network's state, as the event loop has it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetStatus {
    /// Addresses the node listens on.
    pub listening: Vec<String>,
    /// Envelopes received and not yet answered.
    pub inbound_pending: usize,
    /// Per partner.
    pub peers: Vec<PeerStatus>,
    /// Envelopes on the wire or being recorded (hex ids).
    #[serde(skip)]
    pub sending: Vec<[u8; 32]>,
    /// Evidence items being received.
    pub evidence_active: usize,
    /// Evidence items waiting for their turn.
    pub evidence_waiting: usize,
    /// Verified receipts that waited in the event loop for room in the store worker's queue,
    /// since the node started (none is ever dropped).
    pub receipts_waited: u64,
}

/// One partner, as the sender sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PeerStatus {
    /// Agency id.
    pub agency: String,
    /// libp2p peer id.
    pub peer_id: String,
    /// Open connections.
    pub connections: usize,
    /// Envelopes queued for it, not on the wire.
    pub queued: usize,
    /// Envelopes on the wire or awaiting the record of their receipt.
    pub in_flight: usize,
    /// Of those, envelopes whose receipt came back and was verified, awaiting its record in
    /// the store.
    pub settling: usize,
    /// Failed attempts since the last success.
    pub failures: u32,
    /// Seconds until the next attempt, while backing off.
    pub retry_in_secs: Option<f64>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Envelopes settled (delivered or rejected) since the node started.
    pub settled: u64,
    /// Its key history (spec/KEYS.md §7.6): `fresh`, `stale` (flagged), `held` (messages to it
    /// wait), or `unconfirmed` (not confirmed since it was pinned or this node started).
    #[serde(default)]
    pub key_state: String,
    /// Seconds since it last confirmed its key history.
    #[serde(default)]
    pub key_age_secs: Option<u64>,
}
