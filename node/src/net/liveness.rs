//! Liveness of connections: a connection that stops answering pings (a partition, a peer gone
//! without a word) is closed, so that what was in flight on it fails at once and is sent again
//! on a new connection once the partner can be reached ([`super::PING_TIMEOUT`]).

use super::event_loop::EventLoop;

impl EventLoop {
    pub(super) fn ping_event(&mut self, e: libp2p::ping::Event) {
        match e.result {
            // A peer that does not speak ping is not thereby dead.
            Ok(_) | Err(libp2p::ping::Failure::Unsupported) => {}
            Err(why) => {
                tracing::info!(peer = %e.peer, "closed a connection that did not answer a ping: {why}");
                self.swarm.close_connection(e.connection);
            }
        }
    }
}
