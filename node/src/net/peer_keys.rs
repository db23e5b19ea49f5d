//! What the event loop does with key histories (spec/KEYS.md §7): asks for them, serves its
//! own, and acts on what a checked history says (a partner's new key taken up, a connection
//! made with a replaced key refused and reported, two histories for one agency raised as an
//! alert). The bookkeeping is [`super::keys::KeyExchange`]'s.

use libp2p::PeerId;
use rogatory_proto::ids::AgencyId;

use super::event_loop::EventLoop;
use super::keys::Checked;
use crate::trust::{Offered, Refused};

impl EventLoop {
    /// Asks `peer` for its key history (`agency`: the partner it is known as, if any).
    pub(super) fn ask_keys(&mut self, peer: PeerId, agency: Option<&AgencyId>) {
        self.ask_keys_witnessing(peer, agency, None);
    }

    /// Asks `peer` for its key history, giving it this node's cosignature of its key log.
    fn ask_keys_witnessing(
        &mut self,
        peer: PeerId,
        agency: Option<&AgencyId>,
        witness: Option<Vec<u8>>,
    ) {
        if let Some(request) = self.keys.request(peer, agency, witness) {
            self.swarm.behaviour_mut().keys.send_request(&peer, request);
        }
    }

    pub(super) fn keys_event(&mut self, e: libp2p::request_response::Event<Vec<u8>, Vec<u8>>) {
        use libp2p::request_response::{Event, Message};
        match e {
            Event::Message { peer, message, .. } => match message {
                Message::Request {
                    request, channel, ..
                } => {
                    let asker = self.out.by_peer.get(&peer);
                    let answer = self.keys.answer(&request, asker);
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .keys
                        .send_response(channel, answer);
                }
                Message::Response { response, .. } => {
                    let known = self.out.by_peer.get(&peer).cloned();
                    if let Some(c) = self.keys.received(peer, known, response) {
                        self.checked(c);
                    }
                }
            },
            Event::OutboundFailure { peer, error, .. } => {
                self.keys.done(&peer);
                if self.keys.on_probation(&peer) && self.swarm.is_connected(&peer) {
                    // The request went over a connection that closed while another stays
                    // (a peer dialling TCP and QUIC at once): ask over that one.
                    if let libp2p::request_response::OutboundFailure::ConnectionClosed = error {
                        self.ask_keys(peer, None);
                        return;
                    }
                }
                if let Some(c) = self.keys.release(&peer) {
                    tracing::warn!(%peer, "closed a connection: an unknown peer did not show its key history ({error})");
                    self.swarm.close_connection(c);
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
            Event::InboundFailure { .. } | Event::ResponseSent { .. } => {}
        }
    }

    /// What a peer's key history came to.
    pub(super) fn checked(&mut self, c: Checked) {
        self.keys.done(&c.peer);
        let peer = c.peer;
        match &c.fresh {
            Some(Ok((t, _))) => {
                tracing::debug!(%peer, at = t, "a partner confirmed its key history")
            }
            Some(Err(e)) => tracing::warn!(%peer, "a freshness note was not taken: {e}"),
            None => {}
        }
        if c.fresh.as_ref().is_some_and(Result::is_ok) {
            self.freshness();
        }
        // This node's cosignature of the partner's new note goes back to it (§7.8).
        if let Some(witness) = c.cosigned
            && let Some(agency) = self.out.by_peer.get(&peer).cloned()
        {
            self.ask_keys_witnessing(peer, Some(&agency), Some(witness));
        }
        match c.result {
            Ok(Offered::Introduced { agency, by }) => {
                let names: Vec<&str> = by.iter().map(AgencyId::as_str).collect();
                tracing::info!(partner = %agency, introduced_by = %names.join(", "), "pinned a new partner on the introductions of partners (trust.introducers)");
                if let Some(card) = self.trust.card(&agency)
                    && let Ok(id) = super::peer_id(&card)
                {
                    self.out.add(card, id);
                    if id == peer && self.keys.release(&peer).is_some() {
                        if let Some(p) = self.out.partners.get_mut(&agency) {
                            p.connections += 1;
                        }
                        self.fetcher.reachable(&agency);
                    }
                }
                self.freshness();
                self.pump();
            }
            Ok(Offered::Extended { agency, new, .. }) => {
                tracing::info!(partner = %agency, statements = new, "learnt a longer key history of a partner: its current keys are now used");
                // The card as the trust holds it now (another check may have moved it on since).
                let current = self.trust.card(&agency).and_then(|c| self.out.rekey(c));
                if current == Some(peer) {
                    if self.keys.release(&peer).is_some() {
                        if let Some(p) = self.out.partners.get_mut(&agency) {
                            p.connections += 1;
                            p.retry_at = None;
                        }
                        self.fetcher.reachable(&agency);
                    }
                    self.pump();
                    self.fetch();
                } else {
                    self.refuse_old_key(peer, &agency);
                }
            }
            Ok(Offered::Unchanged(agency)) => {
                if self.keys.on_probation(&peer) {
                    if self.out.by_peer.get(&peer) == Some(&agency) {
                        // Became the partner's current key through another check meanwhile.
                        self.keys.release(&peer);
                    } else {
                        self.refuse_old_key(peer, &agency);
                    }
                }
            }
            Err(e) => {
                let fork = matches!(e, Refused::Fork { .. });
                if let Refused::Fork { agency, .. } = &e {
                    tracing::error!(partner = %agency, "ALERT: {e}");
                    self.alert(agency.clone(), "key-history-forked", e.to_string());
                } else {
                    tracing::warn!(%peer, "refused a key history: {e}");
                }
                if let Some(connection) = self.keys.release(&peer) {
                    self.swarm.close_connection(connection);
                    let _ = self.swarm.disconnect_peer_id(peer);
                } else if fork {
                    // A partner showing a second history is disconnected; if it connects again
                    // it is asked again, and refused again, until an operator looks.
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
        }
    }

    /// A peer that showed `agency`'s history but is not its current key: closed. If its peer
    /// id is one of the agency's earlier signing keys (superseded or revoked), someone holds
    /// that key: logged and reported once as an alert. Any other peer merely replayed the
    /// public history: closed quietly.
    fn refuse_old_key(&mut self, peer: PeerId, agency: &AgencyId) {
        if let Some(connection) = self.keys.release(&peer) {
            self.swarm.close_connection(connection);
        }
        let _ = self.swarm.disconnect_peer_id(peer);
        let old_key = self.trust.snapshot().get(agency).is_some_and(|h| {
            h.cards()
                .iter()
                .any(|c| super::peer_id(c).ok() == Some(peer))
        });
        if !old_key {
            tracing::debug!(%peer, partner = %agency, "closed a connection that showed a partner's key history without holding any of its keys");
            return;
        }
        tracing::warn!(%peer, partner = %agency, "refused a connection made with a key of the partner that is no longer its current one (superseded or revoked)");
        if self.keys.report(peer) {
            self.alert(
                agency.clone(),
                "old-key-in-use",
                format!(
                    "a peer ({peer}) connected with a key of {agency} that its key history no longer names as current; refused"
                ),
            );
        }
    }

    fn alert(&mut self, peer: AgencyId, kind: &str, detail: String) {
        let job = super::keys::alert_job(peer, kind, detail);
        if let Err(job) = self.worker.try_give(job) {
            self.backlog.push_back(job);
        }
    }

    /// Every `trust.refresh_secs`: this node's partners are asked for their key histories
    /// (those connected), or called (those not confirmed for half the flagging age, so that a
    /// held partner that came back is heard of); then each partner's freshness is re-judged.
    pub(super) fn refresh(&mut self) {
        self.next_refresh = std::time::Instant::now() + self.trust_config.refresh();
        let now = rogatory_proto::time::now_unix();
        let half = self.trust_config.max_key_age_secs / 2;
        let partners: Vec<(AgencyId, PeerId, usize, Vec<libp2p::Multiaddr>)> = self
            .out
            .partners
            .values()
            .map(|p| (p.card.id().clone(), p.peer, p.connections, p.addrs.clone()))
            .collect();
        for (agency, peer, connections, addrs) in partners {
            if connections > 0 {
                self.ask_keys(peer, Some(&agency));
            } else if self
                .trust
                .fresh_at(&agency)
                .is_none_or(|t| now.saturating_sub(t) > half)
            {
                let _ = self.swarm.dial(
                    libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
                        .addresses(addrs)
                        .build(),
                );
            }
        }
        self.freshness();
    }

    /// Judges each partner's key history by when it last confirmed it: `fresh`, `stale`
    /// (flagged), or `held` (messages to it wait); logs each change, and sends what waited
    /// once a held partner is fresh again.
    pub(super) fn freshness(&mut self) {
        let now = rogatory_proto::time::now_unix();
        let (max, hold) = (
            self.trust_config.max_key_age_secs,
            self.trust_config.hold_after_secs,
        );
        let mut released = false;
        let mut changed = false;
        for p in self.out.partners.values_mut() {
            let id = p.card.id().clone();
            let age = self.trust.fresh_at(&id).map(|t| now.saturating_sub(t));
            let state = match age {
                None => "unconfirmed",
                Some(a) if a > hold => "held",
                Some(a) if a > max => "stale",
                Some(_) => "fresh",
            };
            if state != p.key_state {
                changed = true;
                match state {
                    "held" => {
                        tracing::error!(partner = %id, age_secs = age, "a partner's key history was not confirmed for longer than trust.hold_after_secs: messages to it wait until it is")
                    }
                    "stale" => {
                        tracing::warn!(partner = %id, age_secs = age, "a partner's key history was not confirmed for longer than trust.max_key_age_secs: flagged stale")
                    }
                    _ => tracing::info!(partner = %id, state, "a partner's key history is {state}"),
                }
            }
            p.key_state = state;
            p.key_age = age;
            let held = (state == "held").then(|| {
                format!(
                    "held: {id} has not confirmed its key history for {} s (more than trust.hold_after_secs); messages to it wait until it does",
                    age.unwrap_or_default()
                )
            });
            released |= p.held.is_some() && held.is_none();
            p.held = held;
        }
        if changed {
            self.out.changed();
        }
        if released {
            self.pump();
        }
    }
}
