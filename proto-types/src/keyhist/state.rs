//! Replaying a key history: what each statement may do, who must sign it, and the keys it
//! leaves valid (spec/KEYS.md §4).

use crate::card::{AgencyCard, KeyUse, fingerprint_of};
use crate::ids::{AgencyId, Sha256Digest};
use crate::keys::{KeyId, VerifyingKey};

use super::statement::{self, ParsedStatement};
use super::{
    KeyHistoryError, RevocationReason, StatementBody, StatementKind, encode_history, root_id,
};

/// When and why a key was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedAt {
    /// Why.
    pub reason: RevocationReason,
    /// From when, in the root's words (Unix seconds).
    pub effective: u64,
    /// The revoking statement.
    pub seq: u64,
    /// When that statement took effect.
    pub at: u64,
}

/// One online key of the agency, as the history leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key id.
    pub kid: KeyId,
    /// Signing or encryption.
    pub usage: KeyUse,
    /// Index (in [`KeyHistory::cards`]) of the first card that listed it.
    pub card: usize,
    /// The statement that introduced it.
    pub introduced: u64,
    /// Valid from (Unix seconds).
    pub from: u64,
    /// Valid until (exclusive), once a later card replaced it or its card limited it.
    pub until: Option<u64>,
    /// Set once it is revoked.
    pub revoked: Option<RevokedAt>,
}

/// An official's key, as the history leaves it (spec/KEYS.md §4.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficerRecord {
    /// The official's account name.
    pub name: String,
    /// What the official does.
    pub role: super::OfficerRole,
    /// The official's key.
    pub key: VerifyingKey,
    /// Valid from (Unix seconds): the later of the certificate's `valid_from` and the
    /// statement's `at`.
    pub from: u64,
    /// Valid until (exclusive).
    pub until: u64,
    /// The certifying statement.
    pub introduced: u64,
    /// Set once it is revoked.
    pub revoked: Option<RevokedAt>,
}

/// What one statement did, for people reading the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementSummary {
    /// Position.
    pub seq: u64,
    /// What it does.
    pub kind: StatementKind,
    /// When it takes effect.
    pub at: u64,
    /// SHA-256 of its payload (what the next statement's `prev` names).
    pub hash: Sha256Digest,
    /// Key ids of its signers.
    pub signers: Vec<KeyId>,
    /// A new card also signed by the signing key it replaces (a routine rotation).
    pub endorsed_by_previous_key: bool,
}

/// Why a key named by a signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRefusal {
    /// The history never listed it.
    Unknown,
    /// Revoked.
    Revoked(RevokedAt),
    /// Outside its window of validity (an official's certificate not yet or no longer valid).
    OutsideWindow {
        /// Valid from.
        from: u64,
        /// Valid until (exclusive).
        until: u64,
    },
}

/// How a history offered by a partner relates to the one held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// The same statements.
    Same,
    /// The held history is a prefix of the offered one: `new` statements more.
    Extends {
        /// How many statements are new.
        new: usize,
    },
    /// The offered history is a prefix of the held one (older).
    Behind,
    /// Statement `seq` differs: two histories.
    Fork {
        /// The first statement that differs.
        seq: u64,
    },
}

/// A verified key history.
#[derive(Debug, Clone)]
pub struct KeyHistory {
    agency: AgencyId,
    root_id: KeyId,
    threshold: u32,
    root: Vec<VerifyingKey>,
    cards: Vec<AgencyCard>,
    keys: Vec<KeyRecord>,
    statements: Vec<Vec<u8>>,
    summaries: Vec<StatementSummary>,
    last_at: u64,
    officers: Vec<OfficerRecord>,
}

impl KeyHistory {
    /// Verifies a history from its genesis.
    pub fn from_statements(statements: &[Vec<u8>]) -> Result<Self, KeyHistoryError> {
        let Some(first) = statements.first() else {
            return Err(KeyHistoryError::Malformed(
                "a key history starts with its genesis".into(),
            ));
        };
        if statements.len() > super::MAX_STATEMENTS {
            return Err(KeyHistoryError::Malformed(
                "a key history holds at most 1024 statements".into(),
            ));
        }
        let mut h = Self::genesis(first)?;
        for s in &statements[1..] {
            h.apply(s)?;
        }
        Ok(h)
    }

    /// Verifies a history file ([`super::encode_history`]) or, for an agency without a
    /// history, a bare card (see [`Self::from_card`]).
    pub fn from_file(bytes: &[u8]) -> Result<Self, KeyHistoryError> {
        if bytes.first() == Some(&0xd2) {
            let card = AgencyCard::from_bytes(bytes)
                .map_err(|e| KeyHistoryError::Invalid(e.to_string()))?;
            return Ok(Self::from_card(card));
        }
        Self::from_statements(&super::decode_history(bytes)?)
    }

    /// The history of an agency that has none: its card alone, whose own signing key is its
    /// root. Its fingerprint is the card's, and it can never be extended.
    pub fn from_card(card: AgencyCard) -> Self {
        let root = vec![card.signing_key().clone()];
        let keys = card_keys(&card, 0, 0, 0);
        Self {
            agency: card.id().clone(),
            root_id: *card.signing_key().id(),
            threshold: 1,
            root,
            last_at: card.body().issued_at,
            officers: Vec::new(),
            cards: vec![card],
            keys,
            statements: Vec::new(),
            summaries: Vec::new(),
        }
    }

    fn genesis(bytes: &[u8]) -> Result<Self, KeyHistoryError> {
        let p = statement::parse(bytes)?;
        let b = &p.body;
        if b.kind != StatementKind::Genesis {
            return Err(KeyHistoryError::Invalid(
                "a key history starts with its genesis".into(),
            ));
        }
        let set = b
            .root
            .as_ref()
            .ok_or_else(|| KeyHistoryError::Invalid("the genesis names the root".into()))?;
        let root = set.parse()?;
        let card = certified_card(b)?;
        let mut h = Self {
            agency: b.agency.clone(),
            root_id: root_id(set.threshold, &root),
            threshold: set.threshold,
            root,
            cards: Vec::new(),
            keys: Vec::new(),
            statements: Vec::new(),
            summaries: Vec::new(),
            last_at: b.at,
            officers: Vec::new(),
        };
        let signers = h.check_signatures(&p, &[], None)?;
        h.keys = card_keys(&card, 0, 0, b.at);
        h.cards.push(card);
        h.push(bytes, &p, signers, false);
        Ok(h)
    }

    /// Verifies one more statement and applies it; on an error the history is as it was.
    pub fn apply(&mut self, bytes: &[u8]) -> Result<(), KeyHistoryError> {
        let mut next = self.clone();
        next.apply_in_place(bytes)?;
        *self = next;
        Ok(())
    }

    fn apply_in_place(&mut self, bytes: &[u8]) -> Result<(), KeyHistoryError> {
        if self.statements.is_empty() {
            return Err(KeyHistoryError::Invalid(format!(
                "{} has no key history: its card is its own root and cannot be extended",
                self.agency
            )));
        }
        if self.statements.len() >= super::MAX_STATEMENTS {
            return Err(KeyHistoryError::Invalid(
                "a key history holds at most 1024 statements".into(),
            ));
        }
        let p = statement::parse(bytes)?;
        let b = &p.body;
        let seq = self.statements.len() as u64;
        let fail = |m: String| KeyHistoryError::Invalid(format!("statement {}: {m}", b.seq));
        if b.agency != self.agency {
            return Err(fail(format!(
                "names {}, but the history is {}'s",
                b.agency, self.agency
            )));
        }
        if b.seq != seq {
            return Err(fail(format!("expected statement {seq}")));
        }
        if b.prev != Some(self.head()) {
            return Err(fail(
                "`prev` is not the hash of the previous statement".into(),
            ));
        }
        if b.at < self.last_at {
            return Err(fail("takes effect before the previous statement".into()));
        }
        match b.kind {
            StatementKind::Genesis => Err(fail("only statement 0 is a genesis".into())),
            StatementKind::Card => {
                let card = certified_card(b)?;
                let old = self.current_card().signing_key().clone();
                let old_revoked = self.record(old.id()).is_some_and(|r| r.revoked.is_some());
                let extra = if old_revoked {
                    vec![]
                } else {
                    vec![old.clone()]
                };
                let signers = self.check_signatures(&p, &extra, None)?;
                let endorsed = signers.contains(old.id());
                self.replace_card(card, seq, b.at)?;
                self.push(bytes, &p, signers, endorsed);
                Ok(())
            }
            StatementKind::Revoke => {
                let r = b
                    .revoke
                    .as_ref()
                    .ok_or_else(|| fail("no revocation".into()))?;
                let signers = self.check_signatures(&p, &[], None)?;
                let at = b.at;
                let revoked = if let Some(rec) = self
                    .keys
                    .iter_mut()
                    .find(|k| k.kid.as_slice() == r.kid.as_slice())
                {
                    &mut rec.revoked
                } else if let Some(o) = self
                    .officers
                    .iter_mut()
                    .find(|o| o.key.id().as_slice() == r.kid.as_slice())
                {
                    &mut o.revoked
                } else {
                    return Err(fail("revokes a key the history never listed".into()));
                };
                if revoked.is_some() {
                    return Err(fail("revokes a key already revoked".into()));
                }
                *revoked = Some(RevokedAt {
                    reason: r.reason,
                    effective: r.effective,
                    seq,
                    at,
                });
                self.push(bytes, &p, signers, false);
                Ok(())
            }
            StatementKind::Officer => {
                let o = b
                    .officer
                    .as_ref()
                    .ok_or_else(|| fail("no officer's certificate".into()))?;
                let key = VerifyingKey::from_cose_key(&o.key)?;
                let kid = *key.id();
                if self.keys.iter().any(|k| k.kid == kid)
                    || self.officers.iter().any(|x| x.key.id() == &kid)
                {
                    return Err(fail(
                        "certifies a key the history already holds: an official's key is new"
                            .into(),
                    ));
                }
                // The root alone certifies an official.
                let signers = self.check_signatures(&p, &[], None)?;
                self.officers.push(OfficerRecord {
                    name: o.name.clone(),
                    role: o.role,
                    key,
                    from: o.valid_from.max(b.at),
                    until: o.valid_until,
                    introduced: seq,
                    revoked: None,
                });
                self.push(bytes, &p, signers, false);
                Ok(())
            }
            StatementKind::Root => {
                let set = b.root.as_ref().ok_or_else(|| fail("no root set".into()))?;
                let new_root = set.parse()?;
                let signers = self.check_signatures(&p, &[], Some((set.threshold, &new_root)))?;
                self.root = new_root;
                self.threshold = set.threshold;
                self.push(bytes, &p, signers, false);
                Ok(())
            }
        }
    }

    /// Checks every signature of `p`: each by a key allowed to sign it (the current root,
    /// `extra`, and for a new root its keys), each verifying, and at least the threshold of the
    /// current root (and of the new root). Returns the signers' key ids.
    fn check_signatures(
        &self,
        p: &ParsedStatement,
        extra: &[VerifyingKey],
        new_root: Option<(u32, &[VerifyingKey])>,
    ) -> Result<Vec<KeyId>, KeyHistoryError> {
        let sig_err = |detail: String| KeyHistoryError::Signature {
            agency: p.body.agency.clone(),
            seq: p.body.seq,
            detail,
        };
        let mut root_count = 0u32;
        let mut new_count = 0u32;
        let mut signers = Vec::with_capacity(p.signatures.len());
        for s in &p.signatures {
            let in_root = self.root.iter().find(|k| k.id() == &s.kid);
            let in_new = new_root.and_then(|(_, keys)| keys.iter().find(|k| k.id() == &s.kid));
            let in_extra = extra.iter().find(|k| k.id() == &s.kid);
            let Some(key) = in_root.or(in_new).or(in_extra) else {
                return Err(sig_err(format!(
                    "signed by key {}, which may not sign it",
                    hex::encode(&s.kid[..8])
                )));
            };
            if !s.verifies(key, &p.payload) {
                return Err(sig_err(format!(
                    "the signature of key {} does not verify",
                    hex::encode(&s.kid[..8])
                )));
            }
            root_count += u32::from(in_root.is_some());
            new_count += u32::from(in_new.is_some());
            signers.push(s.kid);
        }
        if root_count < self.threshold {
            return Err(sig_err(format!(
                "signed by {root_count} root key(s); the root threshold is {}",
                self.threshold
            )));
        }
        if let Some((t, _)) = new_root
            && new_count < t
        {
            return Err(sig_err(format!(
                "signed by {new_count} key(s) of the new root; its threshold is {t}"
            )));
        }
        Ok(signers)
    }

    fn replace_card(&mut self, card: AgencyCard, seq: u64, at: u64) -> Result<(), KeyHistoryError> {
        let fail = |m: &str| KeyHistoryError::Invalid(format!("statement {seq}: {m}"));
        let current: Vec<KeyId> = [
            *self.current_card().signing_key().id(),
            *self.current_card().encryption_key().id(),
        ]
        .to_vec();
        let index = self.cards.len();
        for new in card_keys(&card, index, seq, at) {
            match self.keys.iter().position(|k| k.kid == new.kid) {
                Some(i) if current.contains(&new.kid) => {
                    if self.keys[i].revoked.is_some() {
                        return Err(fail("a new card keeps a revoked key"));
                    }
                    // Kept from the previous card: its window goes on, as the new card says.
                    self.keys[i].until = new.until;
                }
                Some(_) => return Err(fail("a new card brings back a key already replaced")),
                None => self.keys.push(new),
            }
        }
        let listed = [*card.signing_key().id(), *card.encryption_key().id()];
        for k in self.keys.iter_mut() {
            if current.contains(&k.kid) && !listed.contains(&k.kid) {
                k.until = Some(k.until.map_or(at, |u| u.min(at)));
            }
        }
        self.cards.push(card);
        Ok(())
    }

    fn push(&mut self, bytes: &[u8], p: &ParsedStatement, signers: Vec<KeyId>, endorsed: bool) {
        self.last_at = p.body.at;
        self.summaries.push(StatementSummary {
            seq: p.body.seq,
            kind: p.body.kind,
            at: p.body.at,
            hash: Sha256Digest::of(&p.payload),
            signers,
            endorsed_by_previous_key: endorsed,
        });
        self.statements.push(bytes.to_vec());
    }

    fn next(&self, kind: StatementKind, at: u64) -> StatementBody {
        StatementBody {
            version: super::STATEMENT_VERSION,
            agency: self.agency.clone(),
            seq: self.statements.len() as u64,
            prev: Some(self.head()),
            at: at.max(self.last_at),
            kind,
            root: None,
            card: None,
            revoke: None,
            officer: None,
        }
    }

    /// The body of the next statement: a new card (to be signed by the root, and by the
    /// current signing key in a routine rotation).
    pub fn next_card(&self, card: &AgencyCard, at: u64) -> StatementBody {
        StatementBody {
            card: Some(card.as_bytes().to_vec()),
            ..self.next(StatementKind::Card, at)
        }
    }

    /// The body of the next statement: a revocation (to be signed by the root).
    pub fn next_revoke(
        &self,
        kid: &KeyId,
        reason: RevocationReason,
        effective: u64,
        at: u64,
    ) -> StatementBody {
        StatementBody {
            revoke: Some(super::Revocation {
                kid: kid.to_vec(),
                reason,
                effective,
            }),
            ..self.next(StatementKind::Revoke, at)
        }
    }

    /// The body of the next statement: an official's key certified (to be signed by the root).
    pub fn next_officer(&self, officer: super::OfficerCert, at: u64) -> StatementBody {
        StatementBody {
            officer: Some(officer),
            ..self.next(StatementKind::Officer, at)
        }
    }

    /// The officials certified, in the order the history certified them.
    pub fn officers(&self) -> &[OfficerRecord] {
        &self.officers
    }

    /// The official whose key is `kid`, if it is certified, not revoked, and valid at `at`.
    pub fn officer(&self, kid: &KeyId, at: u64) -> Result<&OfficerRecord, KeyRefusal> {
        let o = self
            .officers
            .iter()
            .find(|o| o.key.id() == kid)
            .ok_or(KeyRefusal::Unknown)?;
        if let Some(r) = &o.revoked {
            return Err(KeyRefusal::Revoked(r.clone()));
        }
        if at < o.from || at >= o.until {
            return Err(KeyRefusal::OutsideWindow {
                from: o.from,
                until: o.until,
            });
        }
        Ok(o)
    }

    /// The official whose key is `kid`, as an auditor judges a signature dated `at` after the
    /// fact (spec/PEOPLE.md §5): certified and valid at `at`, and, if revoked since, revoked
    /// with an effective time after `at`. A node receiving a message refuses any revoked
    /// official's signature whatever time it claims ([`KeyHistory::officer`]).
    pub fn officer_when_signed(&self, kid: &KeyId, at: u64) -> Result<&OfficerRecord, KeyRefusal> {
        let o = self
            .officers
            .iter()
            .find(|o| o.key.id() == kid)
            .ok_or(KeyRefusal::Unknown)?;
        if let Some(r) = &o.revoked
            && r.effective <= at
        {
            return Err(KeyRefusal::Revoked(r.clone()));
        }
        if at < o.from || at >= o.until {
            return Err(KeyRefusal::OutsideWindow {
                from: o.from,
                until: o.until,
            });
        }
        Ok(o)
    }

    /// The body of the next statement: a new root set (to be signed by the old root and the
    /// new).
    pub fn next_root(&self, root: super::RootSet, at: u64) -> StatementBody {
        StatementBody {
            root: Some(root),
            ..self.next(StatementKind::Root, at)
        }
    }

    /// The agency.
    pub fn agency(&self) -> &AgencyId {
        &self.agency
    }

    /// The id of the root the history starts from: what partners pin.
    pub fn root_id(&self) -> &KeyId {
        &self.root_id
    }

    /// The fingerprint partners compare ([`crate::card::fingerprint_of`] of the root id).
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.root_id)
    }

    /// The current root set: threshold and keys.
    pub fn root(&self) -> (u32, &[VerifyingKey]) {
        (self.threshold, &self.root)
    }

    /// The current card.
    pub fn current_card(&self) -> &AgencyCard {
        // A history always has at least one card (the genesis, or the bare card).
        &self.cards[self.cards.len() - 1]
    }

    /// Every card the history certified, oldest first.
    pub fn cards(&self) -> &[AgencyCard] {
        &self.cards
    }

    /// Every online key, in the order the history introduced them.
    pub fn keys(&self) -> &[KeyRecord] {
        &self.keys
    }

    /// The record of key `kid`.
    pub fn record(&self, kid: &KeyId) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| &k.kid == kid)
    }

    /// The statements' bytes.
    pub fn statements(&self) -> &[Vec<u8>] {
        &self.statements
    }

    /// What each statement did.
    pub fn summaries(&self) -> &[StatementSummary] {
        &self.summaries
    }

    /// No history: a bare card ([`Self::from_card`]).
    pub fn is_bare_card(&self) -> bool {
        self.statements.is_empty()
    }

    /// SHA-256 of the last statement's payload.
    pub fn head(&self) -> Sha256Digest {
        self.summaries
            .last()
            .map(|s| s.hash)
            .unwrap_or_else(|| Sha256Digest::of(self.current_card().as_bytes()))
    }

    /// The history file ([`super::encode_history`]), or the bare card.
    pub fn to_file(&self) -> Vec<u8> {
        if self.statements.is_empty() {
            return self.current_card().as_bytes().to_vec();
        }
        encode_history(&self.statements)
    }

    /// The signing key `kid` and the card that listed it, if it is the agency's and not
    /// revoked; its window is in the [`KeyRecord`].
    pub fn signer(&self, kid: &KeyId) -> Result<(&AgencyCard, &KeyRecord), KeyRefusal> {
        let rec = self
            .keys
            .iter()
            .find(|k| &k.kid == kid && k.usage == KeyUse::Sign)
            .ok_or(KeyRefusal::Unknown)?;
        if let Some(r) = &rec.revoked {
            return Err(KeyRefusal::Revoked(r.clone()));
        }
        let card = self.cards.get(rec.card).ok_or(KeyRefusal::Unknown)?;
        Ok((card, rec))
    }

    /// How `other` (offered by a partner) relates to this history, statement by statement
    /// (by payload: the same statement with other signatures is the same). Both must be of the
    /// same agency and root.
    pub fn relation(&self, other: &[Vec<u8>]) -> Relation {
        for (i, (a, b)) in self.summaries.iter().zip(other).enumerate() {
            let same = statement::parse(b).is_ok_and(|p| Sha256Digest::of(&p.payload) == a.hash);
            if !same {
                return Relation::Fork { seq: i as u64 };
            }
        }
        match other.len().cmp(&self.statements.len()) {
            std::cmp::Ordering::Equal => Relation::Same,
            std::cmp::Ordering::Greater => Relation::Extends {
                new: other.len() - self.statements.len(),
            },
            std::cmp::Ordering::Less => Relation::Behind,
        }
    }

    /// Applies the statements of `other` that this history lacks, after checking that it
    /// starts with this one. Returns how many were added.
    pub fn extend_from(&mut self, other: &[Vec<u8>]) -> Result<usize, KeyHistoryError> {
        match self.relation(other) {
            Relation::Same | Relation::Behind => Ok(0),
            Relation::Fork { seq } => Err(KeyHistoryError::Fork {
                agency: self.agency.clone(),
                seq,
            }),
            Relation::Extends { new } => {
                let mut next = self.clone();
                for s in &other[other.len() - new..] {
                    next.apply(s)?;
                }
                *self = next;
                Ok(new)
            }
        }
    }

    /// Checks the root against a fingerprint given by a person (any case and separators; at
    /// least its first 32 hex digits).
    pub fn check_fingerprint(&self, given: &str) -> Result<(), KeyHistoryError> {
        let given = crate::card::normalize_fingerprint(given);
        let actual = crate::card::normalize_fingerprint(&self.fingerprint());
        if given.len() < 32 || !actual.starts_with(&given) {
            return Err(KeyHistoryError::WrongRoot {
                agency: self.agency.clone(),
                pinned: given,
                actual: self.fingerprint(),
            });
        }
        Ok(())
    }
}

/// The card a genesis or card statement certifies: well-formed, self-signed, of the agency.
fn certified_card(b: &StatementBody) -> Result<AgencyCard, KeyHistoryError> {
    let bytes = b
        .card
        .as_deref()
        .ok_or_else(|| KeyHistoryError::Invalid("the statement carries no card".into()))?;
    let card = AgencyCard::from_bytes(bytes)
        .map_err(|e| KeyHistoryError::Invalid(format!("statement {}: {e}", b.seq)))?;
    if card.id() != &b.agency {
        return Err(KeyHistoryError::Invalid(format!(
            "statement {}: certifies a card of {}",
            b.seq,
            card.id()
        )));
    }
    Ok(card)
}

/// The two keys of a card as records: valid from the later of the card's own start and the
/// statement's time.
fn card_keys(card: &AgencyCard, index: usize, seq: u64, at: u64) -> Vec<KeyRecord> {
    card.body()
        .keys
        .iter()
        .map(|k| {
            let kid = match k.usage {
                KeyUse::Sign => *card.signing_key().id(),
                KeyUse::Encrypt => *card.encryption_key().id(),
            };
            KeyRecord {
                kid,
                usage: k.usage,
                card: index,
                introduced: seq,
                from: k.valid_from.max(at),
                until: k.valid_until,
                revoked: None,
            }
        })
        .collect()
}
