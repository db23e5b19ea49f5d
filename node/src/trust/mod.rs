//! The partners this node trusts, as their key histories stand now (spec/KEYS.md §7).
//!
//! One [`Trust`] is shared by the threads that open envelopes, the store worker, the API and
//! the event loop. It changes only when a partner shows a longer key history that starts with
//! the one held (a rotation, a revocation, new addresses): [`Trust::offer`] verifies it against
//! the pinned root, writes it to `peers/<ID>.keys`, then publishes it. Readers take a snapshot
//! ([`Trust::snapshot`]): an `Arc`, so a reader never waits on a writer for long and never sees
//! half an update.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Result;
use rogatory_proto::card::AgencyCard;
use rogatory_proto::ids::AgencyId;
use rogatory_proto::keyhist::fresh::{MAX_FRESH_BYTES, verify_fresh};
use rogatory_proto::keyhist::{KeyHistory, KeyHistoryError, Relation};
use rogatory_proto::keys::KeyId;

use crate::keydir::{self, KeyDir};

mod witness;
pub use witness::{WITNESSES_DIR, Witnessed, own_witness_notes};

/// The trusted partners, by agency.
pub type Partners = BTreeMap<AgencyId, KeyHistory>;

/// A partner's latest freshness note taken: its time, and the note.
type FreshNote = (u64, Arc<[u8]>);

/// The partners' key histories, shared and updatable.
#[derive(Debug)]
pub struct Trust {
    /// Where the histories are kept (`None`: in memory only, for tests and offline tools).
    dir: Option<PathBuf>,
    current: RwLock<Arc<Partners>>,
    /// Serialises offers: two histories of one agency are never written at once.
    writing: std::sync::Mutex<()>,
    /// When each partner last confirmed its key history: the time of its latest freshness
    /// note (spec/KEYS.md §7.6), and the note, kept in `peers/<ID>.fresh`.
    fresh: RwLock<std::collections::HashMap<AgencyId, FreshNote>>,
    /// What partners saw of each partner's key log (§7.8), kept in `peers/<ID>.witnessed`.
    witnessed: RwLock<std::collections::HashMap<AgencyId, witness::Views>>,
}

/// A `trust.introducers` policy: `needed` of `introducers` must vouch.
#[derive(Debug, Clone, Default)]
pub struct Introducers {
    /// The partners whose introductions count.
    pub introducers: Vec<AgencyId>,
    /// How many must introduce an agency.
    pub needed: usize,
}

/// What an offered history changed.
#[derive(Debug)]
pub enum Offered {
    /// An agency not pinned here, pinned now on the introductions of these partners.
    Introduced {
        /// The agency.
        agency: AgencyId,
        /// Who introduced it.
        by: Vec<AgencyId>,
    },
    /// Nothing new (the same history, or an older one).
    Unchanged(AgencyId),
    /// `new` statements more: the partner's current card may have changed.
    Extended {
        /// The partner.
        agency: AgencyId,
        /// Statements added.
        new: usize,
        /// Its current card now.
        card: Box<AgencyCard>,
    },
}

/// Why an offered history was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The history does not verify.
    #[error(transparent)]
    Invalid(#[from] KeyHistoryError),
    /// Of an agency not pinned here, or of another root than the one pinned.
    #[error("{0}")]
    NotPinned(String),
    /// Two different histories for one agency: the one held is kept.
    #[error(
        "{agency} showed a key history that differs from the one held here at statement {seq}: two histories for one agency; the one held is kept"
    )]
    Fork {
        /// The partner.
        agency: AgencyId,
        /// The first statement that differs.
        seq: u64,
    },
    /// The new history could not be written.
    #[error("cannot keep the new key history: {0:#}")]
    Store(anyhow::Error),
}

impl Trust {
    /// The partners pinned in `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let partners: Partners = KeyDir::partners(dir)?
            .into_iter()
            .map(|h| (h.agency().clone(), h))
            .collect();
        let mut fresh = std::collections::HashMap::new();
        for (id, h) in &partners {
            let path = fresh_path(dir, id);
            let Ok(note) = crate::files::read_limited(&path, MAX_FRESH_BYTES as u64) else {
                continue;
            };
            match verify_fresh(h, &note) {
                Ok(t) => {
                    fresh.insert(id.clone(), (t, Arc::from(note)));
                }
                Err(e) => tracing::warn!(partner = %id, "{}: not taken: {e}", path.display()),
            }
        }
        let witnessed = witness::load(dir, &partners);
        let t = Self::new(dir, partners);
        if let Ok(mut f) = t.fresh.write() {
            *f = fresh;
        }
        if let Ok(mut w) = t.witnessed.write() {
            *w = witnessed;
        }
        Ok(t)
    }

    /// A history of an agency not pinned here, shown with introductions: pinned if the
    /// policy is met (enough of the named partners, each pinned here, introduced that agency
    /// with the root the history starts from). Blocking: it writes files.
    pub fn introduce(
        &self,
        statements: &[Vec<u8>],
        introductions: &[Vec<u8>],
        policy: &Introducers,
    ) -> Result<Offered, Refused> {
        use rogatory_proto::keyhist::intro;
        if policy.introducers.is_empty() || introductions.is_empty() {
            return Err(Refused::NotPinned(
                "not a pinned partner, and no introduction this node takes".into(),
            ));
        }
        let offered = KeyHistory::from_statements(statements)?;
        let agency = offered.agency().clone();
        let _writing = self.writing.lock();
        let current = self.snapshot();
        if current.contains_key(&agency) {
            return Err(Refused::NotPinned(format!("{agency} is pinned already")));
        }
        let mut by: Vec<AgencyId> = Vec::new();
        for bytes in introductions.iter().take(intro::MAX_INTRODUCTIONS) {
            let Ok(said) = intro::read(bytes) else {
                continue;
            };
            let (Some(introducer), true) = (
                current.get(&said.introducer),
                policy.introducers.contains(&said.introducer),
            ) else {
                continue;
            };
            match intro::verify(bytes, introducer) {
                Ok(i)
                    if i.agency == agency
                        && i.root.as_slice() == offered.root_id().as_slice()
                        && !by.contains(&i.introducer) =>
                {
                    by.push(i.introducer)
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%agency, "an introduction was not taken: {e}"),
            }
        }
        if by.len() < policy.needed {
            return Err(Refused::NotPinned(format!(
                "{agency} is introduced by {} of the {} partners this node requires ({}); not pinned",
                by.len(),
                policy.needed,
                by.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        if let Some(dir) = &self.dir {
            keydir::save_partner(dir, &offered).map_err(Refused::Store)?;
            let record = serde_json::json!({
                "introduced_by": by.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                "at": rogatory_proto::time::format_unix(rogatory_proto::time::now_unix()),
            });
            crate::files::write_atomic(
                &dir.join(keydir::PEERS_DIR)
                    .join(format!("{agency}.introduced")),
                record.to_string().as_bytes(),
                false,
                true,
            )
            .map_err(Refused::Store)?;
        }
        let mut next = (*current).clone();
        next.insert(agency.clone(), offered);
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(next),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
        }
        Ok(Offered::Introduced { agency, by })
    }

    /// The partners whose introductions pinned `id`, if it was pinned so.
    pub fn introduced_by(&self, id: &AgencyId) -> Option<Vec<String>> {
        let dir = self.dir.as_ref()?;
        let path = dir.join(keydir::PEERS_DIR).join(format!("{id}.introduced"));
        let text = crate::files::read_limited(&path, 4096).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
        v["introduced_by"].as_array().map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
    }

    /// When `id` last confirmed its key history (Unix seconds), if it did since it was pinned.
    pub fn fresh_at(&self, id: &AgencyId) -> Option<u64> {
        self.fresh
            .read()
            .ok()
            .and_then(|f| f.get(id).map(|(t, _)| *t))
    }

    /// The latest freshness note taken of each partner.
    pub fn fresh_notes(&self) -> Vec<(AgencyId, Vec<u8>)> {
        self.fresh
            .read()
            .map(|f| {
                f.iter()
                    .map(|(id, (_, n))| (id.clone(), n.to_vec()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A partner's freshness note: checked against its key history as held, kept, and its
    /// time remembered (the latest wins). Its time, and whether it is newer than the one held.
    /// Blocking: it writes a file.
    pub fn confirm(&self, id: &AgencyId, note: &[u8]) -> Result<(u64, bool), Refused> {
        let current = self.snapshot();
        let h = current
            .get(id)
            .ok_or_else(|| Refused::NotPinned(format!("{id} is not a pinned partner")))?;
        let t = verify_fresh(h, note)?;
        let _writing = self.writing.lock();
        if t > rogatory_proto::time::now_unix().saturating_add(300) {
            return Err(Refused::Invalid(KeyHistoryError::Invalid(format!(
                "the freshness note of {id} is dated in the future"
            ))));
        }
        if self.fresh_at(id).is_some_and(|old| old >= t) {
            return Ok((t, false));
        }
        if let Some(dir) = &self.dir {
            crate::files::write_atomic(&fresh_path(dir, id), note, false, true)
                .map_err(Refused::Store)?;
        }
        if let Ok(mut f) = self.fresh.write() {
            f.insert(id.clone(), (t, Arc::from(note)));
        }
        Ok((t, true))
    }

    /// Trust in `partners`, kept in `dir`.
    pub fn new(dir: &Path, partners: Partners) -> Self {
        Self {
            dir: Some(dir.to_path_buf()),
            current: RwLock::new(Arc::new(partners)),
            writing: std::sync::Mutex::new(()),
            fresh: RwLock::new(Default::default()),
            witnessed: RwLock::new(Default::default()),
        }
    }

    /// Trust in partners pinned by bare cards, kept in memory only (tests, offline tools).
    pub fn of_cards(cards: impl IntoIterator<Item = AgencyCard>) -> Arc<Self> {
        Arc::new(Self {
            dir: None,
            current: RwLock::new(Arc::new(partners_of(cards))),
            writing: std::sync::Mutex::new(()),
            fresh: RwLock::new(Default::default()),
            witnessed: RwLock::new(Default::default()),
        })
    }

    /// The partners as they stand.
    pub fn snapshot(&self) -> Arc<Partners> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The current card of a partner.
    pub fn card(&self, id: &AgencyId) -> Option<AgencyCard> {
        self.snapshot().get(id).map(|h| h.current_card().clone())
    }

    /// The card that listed `kid` of partner `id`, if the key is not revoked.
    pub fn card_for_key(&self, id: &AgencyId, kid: &KeyId) -> Option<AgencyCard> {
        let s = self.snapshot();
        s.get(id)?.signer(kid).ok().map(|(c, _)| c.clone())
    }

    /// A history shown by a peer: verified; if it continues a pinned partner's history (same
    /// root, the held statements first), written to `peers/` and published. Blocking: it
    /// writes a file.
    pub fn offer(&self, statements: &[Vec<u8>]) -> Result<Offered, Refused> {
        // Before verifying all of it: its genesis must be of a partner pinned here, from the
        // root pinned (a stranger's long history costs one parse and one signature).
        let first = statements
            .first()
            .ok_or_else(|| Refused::NotPinned("an empty key history".into()))?;
        let genesis = KeyHistory::from_statements(std::slice::from_ref(first))?;
        match self.snapshot().get(genesis.agency()) {
            Some(held) if held.root_id() == genesis.root_id() => {}
            Some(_) | None => {
                return Err(Refused::NotPinned(format!(
                    "{} is not a partner pinned here with root {}",
                    genesis.agency(),
                    genesis.fingerprint()
                )));
            }
        }
        let offered = KeyHistory::from_statements(statements)?;
        let agency = offered.agency().clone();
        let _writing = self.writing.lock();
        let current = self.snapshot();
        let Some(held) = current.get(&agency) else {
            return Err(Refused::NotPinned(format!(
                "{agency} is not a pinned partner"
            )));
        };
        if held.root_id() != offered.root_id() {
            return Err(Refused::NotPinned(format!(
                "the key history offered for {agency} starts from another root (fingerprint {}) than the one pinned ({})",
                offered.fingerprint(),
                held.fingerprint()
            )));
        }
        if held.is_bare_card() {
            return Err(Refused::NotPinned(format!(
                "{agency} is pinned by a bare card, which cannot rotate; pin its key history (rogatory peer add)"
            )));
        }
        match held.relation(statements) {
            Relation::Same | Relation::Behind => Ok(Offered::Unchanged(agency)),
            Relation::Fork { seq } => Err(Refused::Fork { agency, seq }),
            Relation::Extends { new } => {
                if let Some(dir) = &self.dir {
                    keydir::save_partner(dir, &offered).map_err(Refused::Store)?;
                }
                let card = Box::new(offered.current_card().clone());
                let mut next = (*current).clone();
                next.insert(agency.clone(), offered);
                match self.current.write() {
                    Ok(mut g) => *g = Arc::new(next),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
                }
                Ok(Offered::Extended { agency, new, card })
            }
        }
    }
}

/// Where a partner's latest freshness note is kept.
pub fn fresh_path(dir: &Path, id: &AgencyId) -> PathBuf {
    dir.join(keydir::PEERS_DIR).join(format!("{id}.fresh"))
}

/// Partners pinned by bare cards (each card its own root), by agency.
pub fn partners_of(cards: impl IntoIterator<Item = AgencyCard>) -> Partners {
    cards
        .into_iter()
        .map(|c| (c.id().clone(), KeyHistory::from_card(c)))
        .collect()
}

/// The partners' keys as they were when their envelopes were received: an envelope accepted
/// before its key was revoked is still opened from the store (for reading, export, audit).
/// Never for what arrives now.
pub struct AsReceived<'a>(pub &'a Partners);

impl rogatory_proto::envelope::TrustedCards for AsReceived<'_> {
    fn card(&self, id: &AgencyId) -> Option<&AgencyCard> {
        self.0.get(id).map(|h| h.current_card())
    }

    /// An official's key as it was: certified for that role, whether or not revoked since (a
    /// message accepted before the revocation still reads as signed by them).
    fn officer(
        &self,
        id: &AgencyId,
        kid: &KeyId,
        role: rogatory_proto::keyhist::OfficerRole,
        _at: u64,
    ) -> Result<rogatory_proto::keys::VerifyingKey, rogatory_proto::officer::Refused> {
        self.0
            .get(id)
            .and_then(|h| {
                h.officers()
                    .iter()
                    .find(|o| o.key.id() == kid && o.role == role)
            })
            .map(|o| o.key.clone())
            .ok_or_else(|| {
                rogatory_proto::officer::Refused::NotValid(format!(
                    "{id} never certified that official"
                ))
            })
    }

    fn signer(
        &self,
        id: &AgencyId,
        kid: &KeyId,
    ) -> Result<rogatory_proto::envelope::SignerKey<'_>, rogatory_proto::envelope::OpenError> {
        use rogatory_proto::envelope::{OpenError, SignerKey};
        let h = self
            .0
            .get(id)
            .ok_or_else(|| OpenError::UnknownSender(id.clone()))?;
        let rec = h
            .record(kid)
            .filter(|r| r.usage == rogatory_proto::card::KeyUse::Sign)
            .ok_or_else(|| OpenError::KeyMismatch(id.clone()))?;
        Ok(SignerKey {
            card: h
                .cards()
                .get(rec.card)
                .ok_or_else(|| OpenError::KeyMismatch(id.clone()))?,
            valid_from: rec.from,
            valid_until: rec
                .until
                .map(|u| u.saturating_add(rogatory_proto::keyhist::ROTATION_GRACE_SECS)),
        })
    }
}
