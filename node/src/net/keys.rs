//! Key histories over the network (`/rogatory/keys/1`, spec/KEYS.md §7).
//!
//! A request is how many statements of the answerer's history the asker holds (CBOR uint); the
//! answer is a CBOR map: `history`, the whole history file (a bare card for a node without
//! one), or empty when the asker holds it all; and `fresh`, the answerer's latest freshness note
//! (§7.6). Any connected peer may ask: a history is what `card export` publishes.
//!
//! A node asks a partner when it connects (to learn rotations and revocations), and asks any
//! peer it does not know: a partner whose signing key changed has a new peer id, and is
//! accepted once its history, verified against the pinned root, names that key as current. A
//! peer on probation is served nothing else; at most [`MAX_PROBATION`] are held, each for at
//! most [`PROBATION`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::swarm::ConnectionId;
use rogatory_proto::ids::AgencyId;
use rogatory_proto::keyhist::fresh::{
    Agreement, MAX_KEY_LOG_NOTES, cosign_key_log, key_log_note_parties,
};
use tokio::sync::mpsc;

use crate::trust::{Offered, Refused, Trust};

/// Unknown peers given time to show their key history at once.
pub(crate) const MAX_PROBATION: usize = 8;
/// Peers remembered as reported for an old key; beyond, the memory starts again.
const MAX_REPORTED: usize = 1024;
/// Key histories being checked at once (each may verify up to 1,024 statements); an answer
/// that finds them all busy is dropped (the peer is asked again later, or its probation ends).
const CHECKS: usize = 2;
/// How long an unknown peer has to show it.
pub(crate) const PROBATION: Duration = Duration::from_secs(20);

/// What a history offered by a peer came to, verified off the loop.
pub(super) struct Checked {
    pub(super) peer: PeerId,
    pub(super) result: Result<Offered, Refused>,
    /// What its freshness note came to: its time (and whether it is newer than the one held),
    /// or why it was not taken.
    pub(super) fresh: Option<Result<(u64, bool), String>>,
    /// This node's cosignature of the partner's new freshness note, to give back (§7.8).
    pub(super) cosigned: Option<Vec<u8>>,
}

/// A request of `/rogatory/keys/1` that also gives the answerer a cosignature of its key log
/// (a request without one is the bare count, CBOR uint).
#[derive(serde::Serialize, serde::Deserialize)]
struct Ask {
    have: u64,
    #[serde(with = "serde_bytes")]
    witness: Vec<u8>,
}

/// The answer of `/rogatory/keys/1`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Answer {
    #[serde(with = "serde_bytes")]
    history: Vec<u8>,
    #[serde(with = "serde_bytes")]
    fresh: Vec<u8>,
    /// Introductions of the answerer by other agencies (§7.7), for nodes that have not pinned
    /// it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    intros: Vec<serde_bytes::ByteBuf>,
    /// The answerer's partners' cosignatures of its key log (§7.8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    witnesses: Vec<serde_bytes::ByteBuf>,
    /// The answerer's cosignatures of its other partners' key logs, for a partner that asks
    /// (§7.8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    witnessed: Vec<serde_bytes::ByteBuf>,
}

/// The loop's side of the key history exchange.
/// At most one request for a partner's history per this, prompted by its envelopes naming an
/// official unknown here (spec/PEOPLE.md §5.4).
pub(super) const WANTED_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

pub(super) struct KeyExchange {
    trust: Arc<Trust>,
    /// This node's own key history file, as served.
    own: Arc<Vec<u8>>,
    own_statements: u64,
    /// This node's latest freshness note.
    fresh: Vec<u8>,
    /// Introductions of this node's agency, served with its history.
    intros: Vec<serde_bytes::ByteBuf>,
    /// Whose introductions of a new agency this node takes.
    policy: crate::trust::Introducers,
    /// Unknown peers, by the time their probation ends.
    probation: HashMap<PeerId, (ConnectionId, Instant)>,
    /// Peers whose history is being checked (one request at a time per peer).
    asked: HashSet<PeerId>,
    /// Partners asked for their history because an envelope named an official unknown here,
    /// by when: at most one such request per partner every [`WANTED_EVERY`].
    wanted: HashMap<AgencyId, Instant>,
    checked_tx: mpsc::Sender<Checked>,
    /// Peers already reported for a superseded or revoked key (reported once per run).
    reported: HashSet<PeerId>,
    /// Permits for histories being checked off the loop.
    checking: Arc<tokio::sync::Semaphore>,
    /// Addresses dialled again without a peer id, by when (a partner that answered with
    /// another key), so that a window of failed requests makes one dial, not one each.
    redialled: HashMap<PeerId, Instant>,
    /// This node's keys and history: it cosigns its partners' key logs (§7.8).
    me: Arc<crate::keydir::KeyDir>,
    /// Partners' cosignatures of this node's key log, served with it (the latest of each).
    witnesses: Arc<std::sync::Mutex<BTreeMap<AgencyId, serde_bytes::ByteBuf>>>,
    /// This node's cosignatures of its partners' key logs (the latest of each), shown to
    /// partners.
    witnessed: Arc<std::sync::Mutex<BTreeMap<AgencyId, serde_bytes::ByteBuf>>>,
    /// Split views already raised this run (agency, witness).
    splits: Arc<std::sync::Mutex<HashSet<(AgencyId, AgencyId)>>>,
    /// The store worker, for alerts raised off the loop.
    worker: crate::engine::Worker,
}

impl KeyExchange {
    pub(super) fn new(
        trust: Arc<Trust>,
        fresh: Vec<u8>,
        intros: Vec<Vec<u8>>,
        policy: crate::trust::Introducers,
        me: Arc<crate::keydir::KeyDir>,
        data: &std::path::Path,
        worker: crate::engine::Worker,
    ) -> (Self, mpsc::Receiver<Checked>) {
        let (checked_tx, checked) = mpsc::channel(16);
        let witnesses = crate::trust::own_witness_notes(data, &me.history, &trust)
            .into_iter()
            .map(|(note, v)| (v.signer, serde_bytes::ByteBuf::from(note)))
            .collect();
        // What this node holds of its partners' key logs, cosigned as it starts.
        let now = rogatory_proto::time::now_unix();
        let witnessed = trust
            .fresh_notes()
            .into_iter()
            .filter_map(|(id, note)| {
                let c = cosign_key_log(&note, me.history.agency(), &me.keys.signing, now).ok()?;
                Some((id, serde_bytes::ByteBuf::from(c)))
            })
            .collect();
        (
            Self {
                trust,
                own: Arc::new(me.history.to_file()),
                own_statements: me.history.statements().len() as u64,
                fresh,
                intros: intros.into_iter().map(serde_bytes::ByteBuf::from).collect(),
                policy,
                probation: HashMap::new(),
                asked: HashSet::new(),
                wanted: HashMap::new(),
                checked_tx,
                reported: HashSet::new(),
                checking: Arc::new(tokio::sync::Semaphore::new(CHECKS)),
                redialled: HashMap::new(),
                me,
                witnesses: Arc::new(std::sync::Mutex::new(witnesses)),
                witnessed: Arc::new(std::sync::Mutex::new(witnessed)),
                splits: Arc::new(std::sync::Mutex::new(HashSet::new())),
                worker,
            },
            checked,
        )
    }

    /// The request to send `peer` (how many of its statements are held here, and this node's
    /// cosignature of its key log if one is to be given), unless one is already out.
    /// Whether to ask `agency` for its history now because one of its envelopes named an
    /// official unknown here: once per [`WANTED_EVERY`] per partner, whatever it sends.
    pub(super) fn wanted(&mut self, agency: &AgencyId) -> bool {
        let now = Instant::now();
        self.wanted
            .retain(|_, at| now.duration_since(*at) < WANTED_EVERY);
        if self.wanted.contains_key(agency) {
            return false;
        }
        self.wanted.insert(agency.clone(), now);
        true
    }

    pub(super) fn request(
        &mut self,
        peer: PeerId,
        agency: Option<&AgencyId>,
        witness: Option<Vec<u8>>,
    ) -> Option<Vec<u8>> {
        if !self.asked.insert(peer) {
            return None;
        }
        let have = match agency {
            None => 0,
            Some(a) => self
                .trust
                .snapshot()
                .get(a)
                .map_or(0, |h| h.statements().len()),
        } as u64;
        let mut out = Vec::with_capacity(16);
        let _ = match witness {
            Some(witness) => ciborium::into_writer(&Ask { have, witness }, &mut out),
            None => ciborium::into_writer(&have, &mut out),
        };
        Some(out)
    }

    /// The answer to a request from `peer` (`asker`: the partner it is, if it is a partner's
    /// current key). A cosignature of this node's key log it gives is checked and kept off the
    /// loop; a partner is also given the freshness notes of the other partners (§7.8).
    pub(super) fn answer(&self, request: &[u8], asker: Option<&AgencyId>) -> Vec<u8> {
        let (held, witness) = match ciborium::from_reader::<u64, _>(request) {
            Ok(n) => (Some(n), Vec::new()),
            Err(_) => match ciborium::de::from_reader_with_recursion_limit::<Ask, _>(request, 4) {
                Ok(a) => (Some(a.have), a.witness),
                Err(_) => (None, Vec::new()),
            },
        };
        if let (Some(w), false) = (asker, witness.is_empty()) {
            self.take_witness(w.clone(), witness);
        }
        let history = if held == Some(self.own_statements) && self.own_statements > 0 {
            Vec::new()
        } else {
            self.own.to_vec()
        };
        let witnesses = match self.witnesses.lock() {
            Ok(w) => w.values().cloned().collect(),
            Err(_) => Vec::new(),
        };
        let witnessed = match (asker, self.witnessed.lock()) {
            (Some(a), Ok(w)) => w
                .iter()
                .filter(|(id, _)| *id != a)
                .take(MAX_KEY_LOG_NOTES)
                .map(|(_, n)| n.clone())
                .collect(),
            _ => Vec::new(),
        };
        let mut out = Vec::with_capacity(history.len() + self.fresh.len() + 1024);
        let _ = ciborium::into_writer(
            &Answer {
                history,
                fresh: self.fresh.clone(),
                intros: self.intros.clone(),
                witnesses,
                witnessed,
            },
            &mut out,
        );
        out
    }

    /// A partner's cosignature of this node's key log: checked and kept off the loop (dropped
    /// when the checks are all busy: the partner cosigns the next freshness note again).
    fn take_witness(&self, witness: AgencyId, note: Vec<u8>) {
        let Ok(permit) = Arc::clone(&self.checking).try_acquire_owned() else {
            tracing::debug!(partner = %witness, "key histories are being checked: a cosignature of this node's key log is dropped");
            return;
        };
        let (trust, me, served) = (
            Arc::clone(&self.trust),
            Arc::clone(&self.me),
            Arc::clone(&self.witnesses),
        );
        let (worker, splits) = (self.worker.clone(), Arc::clone(&self.splits));
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            match trust.witness_own(&me.history, &witness, &note) {
                Ok(v) if v.agreement == Agreement::Split || v.agreement == Agreement::Ahead => {
                    let detail = format!(
                        "{witness} cosigned a key history of this agency of {} statements that is not this node's ({} statements): someone showed it another history of this agency",
                        v.size,
                        me.history.statements().len()
                    );
                    raise(
                        &worker,
                        &splits,
                        &witness,
                        &witness,
                        "own-key-history-split",
                        detail,
                    );
                }
                Ok(v) => {
                    tracing::debug!(partner = %witness, statements = v.size, "a partner cosigned this node's key history");
                    if let Ok(mut s) = served.lock() {
                        s.insert(witness, serde_bytes::ByteBuf::from(note));
                    }
                }
                Err(e) => {
                    tracing::warn!(partner = %witness, "a cosignature of this node's key log was not taken: {e}")
                }
            }
        });
    }

    /// This node signed its key history again.
    pub(super) fn set_fresh(&mut self, note: Vec<u8>) {
        self.fresh = note;
    }

    /// Puts an unknown peer's connection on probation; `false`: too many are (close it).
    /// A peer on probation keeps its other connections (at most 3 per peer, as for anyone):
    /// when its probation ends without it being accepted, all of them are closed.
    pub(super) fn probation(&mut self, peer: PeerId, connection: ConnectionId) -> bool {
        if self.probation.contains_key(&peer) {
            return true;
        }
        if self.probation.len() >= MAX_PROBATION {
            return false;
        }
        self.probation
            .insert(peer, (connection, Instant::now() + PROBATION));
        true
    }

    /// Is the peer on probation?
    pub(super) fn on_probation(&self, peer: &PeerId) -> bool {
        self.probation.contains_key(peer)
    }

    /// Ends a peer's probation (accepted, refused or gone): its connection, if it had one.
    pub(super) fn release(&mut self, peer: &PeerId) -> Option<ConnectionId> {
        self.probation.remove(peer).map(|(c, _)| c)
    }

    /// The earliest end of a probation.
    pub(super) fn next_wake(&self) -> Option<Instant> {
        self.probation.values().map(|(_, t)| *t).min()
    }

    /// The connections whose probation ran out.
    pub(super) fn expired(&mut self, now: Instant) -> Vec<(PeerId, ConnectionId)> {
        let gone: Vec<_> = self
            .probation
            .iter()
            .filter(|(_, (_, t))| *t <= now)
            .map(|(p, (c, _))| (*p, *c))
            .collect();
        for (p, _) in &gone {
            self.probation.remove(p);
            self.asked.remove(p);
        }
        gone
    }

    /// An answer from `peer` (known as `known`, if it is a partner's current key): its history
    /// and its freshness note checked and kept off the loop (the outcome comes back as a
    /// [`Checked`]). An answer that shows no history proves nothing of a peer on probation
    /// (returned at once).
    pub(super) fn received(
        &mut self,
        peer: PeerId,
        known: Option<AgencyId>,
        response: Vec<u8>,
    ) -> Option<Checked> {
        let answer: Option<Answer> =
            ciborium::de::from_reader_with_recursion_limit(response.as_slice(), 4).ok();
        let Some(answer) = answer else {
            self.asked.remove(&peer);
            return Some(Checked {
                peer,
                result: Err(Refused::NotPinned("its answer is not a key history".into())),
                fresh: None,
                cosigned: None,
            });
        };
        if answer.history.is_empty() && known.is_none() {
            self.asked.remove(&peer);
            return Some(Checked {
                peer,
                result: Err(Refused::NotPinned("it showed no key history".into())),
                fresh: None,
                cosigned: None,
            });
        }
        let Ok(permit) = Arc::clone(&self.checking).try_acquire_owned() else {
            tracing::debug!(%peer, "key histories are being checked: this answer waits for the next ask");
            self.asked.remove(&peer);
            return None;
        };
        let (trust, tx) = (Arc::clone(&self.trust), self.checked_tx.clone());
        let policy = self.policy.clone();
        let (me, worker, splits, mine) = (
            Arc::clone(&self.me),
            self.worker.clone(),
            Arc::clone(&self.splits),
            Arc::clone(&self.witnessed),
        );
        tokio::spawn(async move {
            let checked = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let intros: Vec<Vec<u8>> = answer.intros.iter().map(|b| b.to_vec()).collect();
                let result = match offer(&trust, &answer.history, known.clone()) {
                    // Not a partner here: pinned if enough named partners introduced it.
                    Err(Refused::NotPinned(_)) if known.is_none() && !intros.is_empty() => {
                        rogatory_proto::keyhist::decode_history(&answer.history)
                            .map_err(Refused::Invalid)
                            .and_then(|s| trust.introduce(&s, &intros, &policy))
                    }
                    other => other,
                };
                let agency = match &result {
                    Ok(
                        Offered::Extended { agency, .. }
                        | Offered::Unchanged(agency)
                        | Offered::Introduced { agency, .. },
                    ) => Some(agency.clone()),
                    Err(_) => known,
                };
                let fresh = match &agency {
                    Some(a) if !answer.fresh.is_empty() => {
                        Some(trust.confirm(a, &answer.fresh).map_err(|e| e.to_string()))
                    }
                    _ => None,
                };
                // A new note of a partner is cosigned, to be given back (§7.8).
                let cosigned = match (&agency, &fresh) {
                    (Some(_), Some(Ok((_, true)))) => cosign_key_log(
                        &answer.fresh,
                        me.history.agency(),
                        &me.keys.signing,
                        rogatory_proto::time::now_unix(),
                    )
                    .inspect_err(|e| tracing::warn!("cannot cosign a partner's key log: {e}"))
                    .ok(),
                    _ => None,
                };
                if let (Some(a), Some(c), Ok(mut m)) = (&agency, &cosigned, mine.lock()) {
                    m.insert(a.clone(), serde_bytes::ByteBuf::from(c.clone()));
                }
                if let (Some(a), Ok(_)) = (&agency, &result) {
                    let notes = answer.witnesses.iter().take(MAX_KEY_LOG_NOTES);
                    let relayed = answer.witnessed.iter().take(MAX_KEY_LOG_NOTES);
                    for note in notes.chain(relayed) {
                        compare(&trust, a, note, &worker, &splits);
                    }
                }
                Checked {
                    peer,
                    result,
                    fresh,
                    cosigned,
                }
            })
            .await;
            let c = checked.unwrap_or_else(|e| Checked {
                peer,
                result: Err(Refused::Store(anyhow::anyhow!("the check failed: {e}"))),
                fresh: None,
                cosigned: None,
            });
            let _ = tx.send(c).await;
        });
        None
    }

    /// The request to `peer` is over (answered and checked, or failed).
    pub(super) fn done(&mut self, peer: &PeerId) {
        self.asked.remove(peer);
    }

    /// Whether to dial a peer that answered a partner's address with another key (not if it
    /// was dialled in the last [`PROBATION`]).
    pub(super) fn redial(&mut self, obtained: PeerId) -> bool {
        let now = Instant::now();
        self.redialled.retain(|_, t| *t > now);
        if self.redialled.contains_key(&obtained) || self.probation.contains_key(&obtained) {
            return false;
        }
        self.redialled.insert(obtained, now + PROBATION);
        true
    }

    /// Whether a use of a superseded or revoked key by `peer` is reported now (once per peer;
    /// the memory of who was reported is bounded).
    pub(super) fn report(&mut self, peer: PeerId) -> bool {
        if self.reported.len() >= MAX_REPORTED {
            self.reported.clear();
        }
        self.reported.insert(peer)
    }
}

/// A cosignature of a key log shown by partner `via` (one it made, or one of its key log),
/// compared with the history held here: a split is raised (§7.8).
fn compare(
    trust: &Trust,
    via: &AgencyId,
    note: &[u8],
    worker: &crate::engine::Worker,
    splits: &std::sync::Mutex<HashSet<(AgencyId, AgencyId)>>,
) {
    let v = match trust.observe(via, note) {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(partner = %via, "a note of a key log it showed is not taken: {e}");
            return;
        }
    };
    let Some((owner, witness)) = key_log_note_parties(note) else {
        return;
    };
    match v.agreement {
        Agreement::Split => {
            let held = trust
                .snapshot()
                .get(&owner)
                .map_or(0, |h| h.statements().len());
            let detail = format!(
                "{witness} cosigned a key history of {owner} of {} statements that is not the one held here ({held} statements): {owner} showed two partners two histories",
                v.size
            );
            raise(
                worker,
                splits,
                &owner,
                &witness,
                "key-history-split",
                detail,
            );
        }
        Agreement::Ahead => {
            tracing::info!(partner = %owner, %witness, statements = v.size, "a partner cosigned a longer key history of an agency than the one held here; it is asked for at the next refresh")
        }
        Agreement::Same | Agreement::Prefix => {}
    }
}

/// Raises a split view as an alert, once per run for an agency and a witness.
fn raise(
    worker: &crate::engine::Worker,
    splits: &std::sync::Mutex<HashSet<(AgencyId, AgencyId)>>,
    agency: &AgencyId,
    witness: &AgencyId,
    kind: &str,
    detail: String,
) {
    let first = splits.lock().is_ok_and(|mut s| {
        if s.len() >= MAX_REPORTED {
            s.clear();
        }
        s.insert((agency.clone(), witness.clone()))
    });
    if !first {
        return;
    }
    tracing::error!(partner = %agency, "ALERT: {detail}");
    let job = alert_job(agency.clone(), kind, detail);
    if let Err(e) = worker.give_blocking(job) {
        tracing::error!("the alert could not be recorded: {e}");
    }
}

/// The job that records an alert about `peer` in the node's log.
pub(super) fn alert_job(peer: AgencyId, kind: &str, detail: String) -> crate::engine::Job {
    crate::engine::Job::Alert(Box::new(crate::store::Alert {
        at: rogatory_proto::time::now_unix(),
        peer,
        case_id: crate::store::NODE_LOG,
        kind: kind.into(),
        detail,
        envelope_id: None,
    }))
}

/// A history shown by a peer, offered to the trust (an empty one, or a bare card, changes
/// nothing of a known partner).
fn offer(trust: &Trust, history: &[u8], known: Option<AgencyId>) -> Result<Offered, Refused> {
    if history.is_empty() || history.first() == Some(&0xd2) {
        return match known {
            Some(a) => Ok(Offered::Unchanged(a)),
            None => Err(Refused::NotPinned(
                "it showed a bare card, which cannot change keys".into(),
            )),
        };
    }
    let statements = rogatory_proto::keyhist::decode_history(history).map_err(Refused::Invalid)?;
    trust.offer(&statements)
}
