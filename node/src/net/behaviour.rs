//! The node's libp2p behaviours, one struct (the derive writes `BehaviourEvent`, one variant
//! per field, without documentation: hence the module's `allow`).
#![allow(missing_docs)]

use libp2p::swarm::NetworkBehaviour;
use libp2p::{connection_limits, identify, ping, request_response};

use super::codec::{BoundedCodec, EnvelopeCodec};

/// The node's behaviours.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Connections bounded: handshakes under way, per peer, in total (descriptors and memory
    /// under a flood of connections).
    pub(super) limits: connection_limits::Behaviour,
    pub(super) envelope: request_response::Behaviour<EnvelopeCodec>,
    pub(super) evidence: request_response::Behaviour<BoundedCodec>,
    /// Key histories: how a partner whose keys changed shows that it still is who was pinned.
    pub(super) keys: request_response::Behaviour<BoundedCodec>,
    pub(super) identify: identify::Behaviour,
    pub(super) ping: ping::Behaviour,
}
