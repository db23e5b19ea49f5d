//! Trust over time: an agency's offline root of trust and the history of its keys
//! (spec/KEYS.md).
//!
//! An agency's identity is its **root**: one Ed25519 key, or k of n keys held by different
//! officials, kept off the node. Partners pin the root's fingerprint. The root signs
//! **statements**, numbered from 0 and chained by hash: the genesis (the root and the first
//! card), each new card (a rotation of the online keys, or new addresses, roles, languages), each
//! revocation of an online key, and each change of the root itself. The statements are the
//! **key history**; replaying it ([`KeyHistory`]) gives every online key the agency ever used,
//! the window in which it was valid, and whether it was revoked.
//!
//! A card without a history (what nodes made before key histories wrote) is read as a history
//! whose root is the card's own signing key ([`KeyHistory::from_card`]): its fingerprint is the
//! one partners already pinned, and it can never rotate.

pub mod fresh;
pub mod intro;
mod state;
pub mod statement;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cbor;
use crate::ids::{AgencyId, Sha256Digest};
use crate::keys::{KeyError, KeyId, VerifyingKey};

pub use state::{
    KeyHistory, KeyRecord, KeyRefusal, OfficerRecord, Relation, RevokedAt, StatementSummary,
};

/// The statement format version this crate writes and reads.
pub const STATEMENT_VERSION: u32 = 1;
/// How long after a new card replaced a signing key envelopes signed with it are still
/// accepted (by their `sent-at`): a node goes on sealing with its old key until it has restarted
/// on the new one, and partners may have envelopes of that moment in flight. A revocation ends
/// a key at once.
pub const ROTATION_GRACE_SECS: u64 = 600;
/// Most keys in a root set.
pub const MAX_ROOT_KEYS: usize = 16;
/// Most statements in one history.
pub const MAX_STATEMENTS: usize = 1024;
/// Largest history file this crate decodes.
pub const MAX_HISTORY_BYTES: usize = 4 * 1024 * 1024;

/// What a statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatementKind {
    /// Statement 0: the root set and the first card.
    Genesis,
    /// A new card: new online keys, or new details (addresses, roles, languages, legal bases).
    Card,
    /// An online key is revoked.
    Revoke,
    /// A new root set, signed by the old root and the new.
    Root,
    /// An official's key certified (spec/KEYS.md §4.7, PEOPLE.md §4).
    Officer,
}

/// What a certified official does (spec/PEOPLE.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OfficerRole {
    /// Issues requests in the agency's name.
    IssuingAuthority,
    /// Validates what an issuing authority issued.
    ValidatingAuthority,
    /// Police-to-police liaison.
    LiaisonOfficer,
}

impl OfficerRole {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IssuingAuthority => "issuing-authority",
            Self::ValidatingAuthority => "validating-authority",
            Self::LiaisonOfficer => "liaison-officer",
        }
    }
}

/// Longest validity of an officer's certificate: 366 days.
pub const MAX_OFFICER_VALIDITY_SECS: u64 = 366 * 86_400;

/// An official's key, certified by the root (spec/KEYS.md §4.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficerCert {
    /// The official's account name on the agency's node (1 to 32 of `a-z0-9._-`, starting
    /// with a letter).
    pub name: String,
    /// What the official does.
    pub role: OfficerRole,
    /// The official's Ed25519 public key, a COSE_Key (spec/PROTOCOL.md §2.2).
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// Unix seconds from which it is valid.
    pub valid_from: u64,
    /// Unix seconds until which it is valid (exclusive), at most 366 days after `valid_from`.
    pub valid_until: u64,
}

/// Whether `name` is an official's name as a certificate carries it.
pub fn officer_name_ok(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// Why a key was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationReason {
    /// The secret key is, or may be, known to someone else.
    Compromised,
    /// Replaced in a routine rotation and no longer to be trusted at all.
    Superseded,
    /// The node or machine holding it was taken out of service.
    Retired,
}

impl RevocationReason {
    /// The name used in statements and on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Compromised => "compromised",
            Self::Superseded => "superseded",
            Self::Retired => "retired",
        }
    }
}

impl std::str::FromStr for RevocationReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "compromised" => Ok(Self::Compromised),
            "superseded" => Ok(Self::Superseded),
            "retired" => Ok(Self::Retired),
            _ => Err(format!(
                "unknown reason {s:?} (compromised, superseded or retired)"
            )),
        }
    }
}

/// A root set: `threshold` of `keys` must sign what the root signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootSet {
    /// How many of the keys must sign (1 ≤ threshold ≤ keys).
    pub threshold: u32,
    /// The root public keys as COSE_Keys (spec/PROTOCOL.md §2.2), sorted by key id.
    pub keys: Vec<serde_bytes::ByteBuf>,
}

/// A revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// The id of the revoked key (an online signing or encryption key of the agency).
    #[serde(with = "serde_bytes")]
    pub kid: Vec<u8>,
    /// Why.
    pub reason: RevocationReason,
    /// Unix seconds from which the key is to be treated as no longer the agency's (for
    /// auditors; a node refuses anything new signed by a revoked key whatever time it claims).
    pub effective: u64,
}

/// The signed content of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementBody {
    /// Statement format version ([`STATEMENT_VERSION`]).
    pub version: u32,
    /// The agency whose history this is.
    pub agency: AgencyId,
    /// Position in the history, from 0.
    pub seq: u64,
    /// SHA-256 of the previous statement's payload; absent exactly for statement 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<Sha256Digest>,
    /// Unix seconds when the statement takes effect; never before the previous one's.
    pub at: u64,
    /// What the statement does.
    pub kind: StatementKind,
    /// The root set (genesis, root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<RootSet>,
    /// The certified agency card, a `COSE_Sign1` (genesis, card).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub card: Option<Vec<u8>>,
    /// The revocation (revoke).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke: Option<Revocation>,
    /// The official's certificate (officer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<OfficerCert>,
}

impl StatementBody {
    /// The body of statement 0: the root set and the first card.
    pub fn genesis(root: RootSet, card: &crate::card::AgencyCard, at: u64) -> Self {
        Self {
            version: STATEMENT_VERSION,
            agency: card.id().clone(),
            seq: 0,
            prev: None,
            at,
            kind: StatementKind::Genesis,
            root: Some(root),
            card: Some(card.as_bytes().to_vec()),
            revoke: None,
            officer: None,
        }
    }
}

/// Why a statement or a history was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyHistoryError {
    /// Not a statement or history in the accepted encoding.
    #[error("key history: {0}")]
    Malformed(String),
    /// A key in it is unusable.
    #[error("key history: {0}")]
    Key(#[from] KeyError),
    /// The content breaks a rule of spec/KEYS.md.
    #[error("key history: {0}")]
    Invalid(String),
    /// A signature does not verify, or the required signers did not all sign.
    #[error("key history of {agency}, statement {seq}: {detail}")]
    Signature {
        /// The agency.
        agency: AgencyId,
        /// The statement.
        seq: u64,
        /// What is wrong.
        detail: String,
    },
    /// Statement `seq` differs from the one already known: two histories for one agency.
    #[error(
        "two different key histories for {agency}: statement {seq} differs from the one already known"
    )]
    Fork {
        /// The agency.
        agency: AgencyId,
        /// The first statement that differs.
        seq: u64,
    },
    /// The root does not match the pinned fingerprint.
    #[error("the key history of {agency} has root fingerprint {actual}, not the pinned {pinned}")]
    WrongRoot {
        /// The agency.
        agency: AgencyId,
        /// What was pinned.
        pinned: String,
        /// What the history names.
        actual: String,
    },
}

/// The id of a root set, which its fingerprint shows: for one key with threshold 1, the key's
/// RFC 9679 thumbprint (so a card without history keeps its fingerprint); otherwise SHA-256 of
/// `"rogatory/root/v1" ‖ 0x00 ‖ CBOR([threshold, [kid, …]])` with the key ids sorted.
pub fn root_id(threshold: u32, keys: &[VerifyingKey]) -> KeyId {
    if threshold == 1 && keys.len() == 1 {
        return *keys[0].id();
    }
    let mut kids: Vec<&KeyId> = keys.iter().map(|k| k.id()).collect();
    kids.sort();
    let value = ciborium::Value::Array(vec![
        ciborium::Value::from(threshold),
        ciborium::Value::Array(
            kids.iter()
                .map(|k| ciborium::Value::Bytes(k.to_vec()))
                .collect(),
        ),
    ]);
    let enc = cbor::value_to_vec(value).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(b"rogatory/root/v1\x00");
    h.update(&enc);
    h.finalize().into()
}

impl RootSet {
    /// The root set of `keys` with `threshold`, keys sorted by id.
    pub fn new(threshold: u32, keys: &[VerifyingKey]) -> Self {
        let mut keys: Vec<&VerifyingKey> = keys.iter().collect();
        keys.sort_by(|a, b| a.id().cmp(b.id()));
        Self {
            threshold,
            keys: keys
                .iter()
                .map(|k| serde_bytes::ByteBuf::from(k.to_cose_key()))
                .collect(),
        }
    }

    /// The keys, parsed and checked: sorted, distinct, valid points, threshold in range.
    pub fn parse(&self) -> Result<Vec<VerifyingKey>, KeyHistoryError> {
        if self.keys.is_empty() || self.keys.len() > MAX_ROOT_KEYS {
            return Err(KeyHistoryError::Invalid(format!(
                "a root set has 1 to {MAX_ROOT_KEYS} keys"
            )));
        }
        if self.threshold == 0 || self.threshold as usize > self.keys.len() {
            return Err(KeyHistoryError::Invalid(
                "a root threshold is between 1 and the number of root keys".into(),
            ));
        }
        let keys = self
            .keys
            .iter()
            .map(|k| VerifyingKey::from_cose_key(k))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.windows(2).any(|w| w[0].id() >= w[1].id()) {
            return Err(KeyHistoryError::Invalid(
                "root keys are sorted by key id, each once".into(),
            ));
        }
        Ok(keys)
    }

    /// Its id ([`root_id`]).
    pub fn id(&self) -> Result<KeyId, KeyHistoryError> {
        Ok(root_id(self.threshold, &self.parse()?))
    }
}

/// The rules of a body that need no history: which fields each kind carries.
pub(crate) fn check_body(b: &StatementBody) -> Result<(), KeyHistoryError> {
    let bad = |m: &str| Err(KeyHistoryError::Invalid(m.to_string()));
    if b.version != STATEMENT_VERSION {
        return Err(KeyHistoryError::Invalid(format!(
            "statement version {} is not supported (this software reads version {STATEMENT_VERSION})",
            b.version
        )));
    }
    if (b.seq == 0) != (b.kind == StatementKind::Genesis) {
        return bad("statement 0, and only it, is the genesis");
    }
    if (b.seq == 0) != b.prev.is_none() {
        return bad("`prev` is absent exactly in statement 0");
    }
    let (root, card, revoke, officer) = match b.kind {
        StatementKind::Genesis => (true, true, false, false),
        StatementKind::Card => (false, true, false, false),
        StatementKind::Revoke => (false, false, true, false),
        StatementKind::Root => (true, false, false, false),
        StatementKind::Officer => (false, false, false, true),
    };
    if b.root.is_some() != root
        || b.card.is_some() != card
        || b.revoke.is_some() != revoke
        || b.officer.is_some() != officer
    {
        return bad("a statement carries exactly the fields of its kind");
    }
    if let Some(o) = &b.officer {
        if !officer_name_ok(&o.name) {
            return bad(
                "an officer's name is 1 to 32 of a-z, 0-9, '.', '_', '-', starting with a letter",
            );
        }
        if o.valid_until <= o.valid_from || o.valid_until - o.valid_from > MAX_OFFICER_VALIDITY_SECS
        {
            return bad("an officer's certificate is valid for more than 0 and at most 366 days");
        }
    }
    if let Some(r) = &b.revoke
        && r.kid.len() != 32
    {
        return bad("a revoked key id is 32 bytes");
    }
    Ok(())
}

/// Encodes a history file: a CBOR array of the statements' bytes.
pub fn encode_history(statements: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(statements.iter().map(|s| s.len() + 5).sum::<usize>() + 5);
    crate::cose::put_head(&mut out, 4, statements.len() as u64);
    for s in statements {
        crate::cose::put_bstr(&mut out, s);
    }
    out
}

/// Decodes a history file into the statements' bytes (not yet verified).
pub fn decode_history(bytes: &[u8]) -> Result<Vec<Vec<u8>>, KeyHistoryError> {
    let bad = |d: &str| KeyHistoryError::Malformed(d.to_string());
    if bytes.len() > MAX_HISTORY_BYTES {
        return Err(bad("the history is larger than 4 MiB"));
    }
    let mut pos = 0;
    let (major, n) = crate::cose::take_head(bytes, &mut pos)
        .ok_or_else(|| bad("expected a CBOR array of statements"))?;
    if major != 4 || n == 0 || n > MAX_STATEMENTS as u64 {
        return Err(bad("expected an array of 1 to 1024 statements"));
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let s = crate::cose::take_bstr(bytes, &mut pos)
            .ok_or_else(|| bad("a statement is a byte string"))?;
        out.push(s.to_vec());
    }
    if pos != bytes.len() {
        return Err(bad("unexpected bytes after the statements"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
