//! Introductions (spec/KEYS.md §7.7): a pinned partner vouches for a new agency's root.
//!
//! An introduction is a tagged `COSE_Sign1` made with the introducer's current online signing
//! key, whose payload names the introducer, the agency introduced and the id of that agency's
//! root as the introducer pinned it. A node whose `trust.introducers` policy is met (enough of
//! the partners it names vouch for the same root) pins the agency without a fingerprint typed.

use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::cose;
use crate::ids::AgencyId;
use crate::keys::SigningKey;

use super::{KeyHistory, KeyHistoryError};

/// Largest introduction read.
pub const MAX_INTRODUCTION_BYTES: usize = 4 * 1024;
/// Most introductions an agency presents at once.
pub const MAX_INTRODUCTIONS: usize = 16;

/// What an introduction says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Introduction {
    /// Format version (1).
    pub version: u32,
    /// Who vouches.
    pub introducer: AgencyId,
    /// The agency vouched for.
    pub agency: AgencyId,
    /// The id of that agency's root, as the introducer pinned it.
    #[serde(with = "serde_bytes")]
    pub root: Vec<u8>,
    /// Unix seconds when it was made.
    pub at: u64,
}

/// The introducer's (`me`, its history and current signing key) introduction of `agency`.
pub fn introduce(
    me: &KeyHistory,
    key: &SigningKey,
    agency: &KeyHistory,
    at: u64,
) -> Result<Vec<u8>, KeyHistoryError> {
    if key.verifying_key() != me.current_card().signing_key() {
        return Err(KeyHistoryError::Invalid(
            "an introduction is signed with the introducer's current signing key".into(),
        ));
    }
    let body = Introduction {
        version: 1,
        introducer: me.agency().clone(),
        agency: agency.agency().clone(),
        root: agency.root_id().to_vec(),
        at,
    };
    let payload = cbor::to_vec(&body).map_err(|e| KeyHistoryError::Invalid(e.to_string()))?;
    Ok(cose::sign1(coset::Header::default(), &payload, key))
}

/// Reads an introduction without checking its signature (to find its introducer).
pub fn read(bytes: &[u8]) -> Result<Introduction, KeyHistoryError> {
    let bad = |m: String| KeyHistoryError::Malformed(format!("introduction: {m}"));
    if bytes.len() > MAX_INTRODUCTION_BYTES {
        return Err(bad("larger than 4 KiB".into()));
    }
    let s = cose::parse_sign1(bytes, "introduction").map_err(|e| bad(e.to_string()))?;
    cose::only_labels(&s.header, &[], "introduction").map_err(|e| bad(e.to_string()))?;
    let body: Introduction = cbor::from_slice(s.payload, MAX_INTRODUCTION_BYTES, "introduction")
        .map_err(|e| bad(e.to_string()))?;
    if body.version != 1 || body.root.len() != 32 {
        return Err(bad("version 1, and a root id of 32 bytes".into()));
    }
    Ok(body)
}

/// Verifies an introduction made by the agency of `introducer` (its history as held): signed
/// by a signing key of that history that is not revoked.
pub fn verify(bytes: &[u8], introducer: &KeyHistory) -> Result<Introduction, KeyHistoryError> {
    let body = read(bytes)?;
    let bad =
        |m: String| KeyHistoryError::Invalid(format!("introduction by {}: {m}", body.introducer));
    if &body.introducer != introducer.agency() {
        return Err(bad(format!("not made by {}", introducer.agency())));
    }
    let s = cose::parse_sign1(bytes, "introduction").map_err(|e| bad(e.to_string()))?;
    let kid: [u8; 32] = s
        .header
        .key_id
        .as_slice()
        .try_into()
        .map_err(|_| bad("a 32-byte kid".into()))?;
    let (card, _) = introducer.signer(&kid).map_err(|_| {
        bad("signed with a key that is not one of its current or replaced keys".into())
    })?;
    if !cose::verify_sign1(&s, card.signing_key()) {
        return Err(bad("the signature does not verify".into()));
    }
    Ok(body)
}
