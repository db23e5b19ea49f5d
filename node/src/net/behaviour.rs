//! The node's libp2p behaviours, one struct (the derive writes `BehaviourEvent`, one variant
//! per field, without documentation: hence the module's `allow`).
#![allow(missing_docs)]

use libp2p::swarm::NetworkBehaviour;
use libp2p::{allow_block_list, connection_limits, identify, ping, request_response};

use super::codec::{EnvelopeCodec, EvidenceCodec};

/// The node's behaviours.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Connections bounded: handshakes under way, per peer, in total (descriptors and memory
    /// under a flood of connections).
    pub(super) limits: connection_limits::Behaviour,
    /// Only pinned partners: any other peer's connection is denied as soon as the handshake
    /// has authenticated it, before any protocol runs.
    pub(super) allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    pub(super) envelope: request_response::Behaviour<EnvelopeCodec>,
    pub(super) evidence: request_response::Behaviour<EvidenceCodec>,
    pub(super) identify: identify::Behaviour,
    pub(super) ping: ping::Behaviour,
}
