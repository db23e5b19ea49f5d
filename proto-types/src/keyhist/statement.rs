//! Key statements on the wire: a tagged `COSE_Sign` (RFC 9052 §4.1, tag 98) with one
//! `COSE_Signature` per signer, in the one accepted encoding (spec/KEYS.md §3).
//!
//! ```text
//! 98([ h'',                    ; body protected header: empty
//!      {},                     ; body unprotected header: empty
//!      payload,                ; deterministic CBOR of the statement body
//!      [* [ h'{1: -8, 4: kid}', {}, signature ] ]   ; signers sorted by kid, each once
//! ])
//! ```
//!
//! Each signature is Ed25519 over `Sig_structure = ["Signature", h'', sign_protected, h'',
//! payload]`.

use crate::cbor;
use crate::cose::{put_bstr, put_head, take_bstr, take_head};
use crate::keys::{KeyId, SigningKey, VerifyingKey};

use super::{KeyHistoryError, StatementBody};

/// Largest statement this crate decodes (a card of at most 64 KiB and its signatures).
pub const MAX_STATEMENT_BYTES: usize = 80 * 1024;
/// Most signatures on one statement.
pub const MAX_SIGNERS: usize = 16;

const TAG_SIGN: [u8; 2] = [0xd8, 0x62];
const CONTEXT: &[u8] = b"\x69Signature";

/// One signature of a statement, as parsed (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEntry {
    /// The signer's key id.
    pub kid: KeyId,
    protected: Vec<u8>,
    signature: [u8; 64],
}

impl SignatureEntry {
    /// Does the signature verify with `key` over `payload`?
    pub fn verifies(&self, key: &VerifyingKey, payload: &[u8]) -> bool {
        key.id() == &self.kid && key.verify_strict(&tbs(&self.protected, payload), &self.signature)
    }
}

/// A statement parsed from its bytes: the body and the signatures it carries.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    /// The statement body.
    pub body: StatementBody,
    /// The payload bytes (what every signature covers).
    pub payload: Vec<u8>,
    /// The signatures, sorted by key id.
    pub signatures: Vec<SignatureEntry>,
}

fn signer_protected(kid: &KeyId) -> Vec<u8> {
    // {1: -8, 4: kid}: already in deterministic order.
    let mut out = Vec::with_capacity(40);
    out.extend_from_slice(&[0xa2, 0x01, 0x27, 0x04]);
    put_bstr(&mut out, kid);
    out
}

fn tbs(sign_protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + sign_protected.len() + 24);
    out.push(0x85);
    out.extend_from_slice(CONTEXT);
    out.push(0x40); // body protected: empty
    put_bstr(&mut out, sign_protected);
    out.push(0x40); // external_aad: empty
    put_bstr(&mut out, payload);
    out
}

fn encode(payload: &[u8], signatures: &[SignatureEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + signatures.len() * 110 + 16);
    out.extend_from_slice(&TAG_SIGN);
    out.push(0x84);
    out.push(0x40);
    out.push(0xa0);
    put_bstr(&mut out, payload);
    put_head(&mut out, 4, signatures.len() as u64);
    for s in signatures {
        out.push(0x83);
        put_bstr(&mut out, &s.protected);
        out.push(0xa0);
        put_bstr(&mut out, &s.signature);
    }
    out
}

/// Signs a statement body with each of `keys`. With none, the statement is *prepared*: it
/// carries no signature yet, and its signers add theirs with [`add_signature`] (a history
/// refuses it until they have).
pub fn sign(body: &StatementBody, keys: &[&SigningKey]) -> Result<Vec<u8>, KeyHistoryError> {
    super::check_body(body)?;
    let payload = cbor::to_vec(body).map_err(|e| KeyHistoryError::Invalid(e.to_string()))?;
    let mut out = encode(&payload, &[]);
    for k in keys {
        out = add_signature(&out, k)?;
    }
    Ok(out)
}

/// SHA-256 of a body's payload: what `prev` names and what identifies a statement whatever
/// signatures it carries.
pub fn body_hash(body: &StatementBody) -> Result<crate::ids::Sha256Digest, KeyHistoryError> {
    let payload = cbor::to_vec(body).map_err(|e| KeyHistoryError::Invalid(e.to_string()))?;
    Ok(crate::ids::Sha256Digest::of(&payload))
}

fn sign_payload(
    payload: &[u8],
    existing: &[SignatureEntry],
    key: &SigningKey,
) -> Result<Vec<u8>, KeyHistoryError> {
    let kid = *key.verifying_key().id();
    if existing.iter().any(|s| s.kid == kid) {
        return Err(KeyHistoryError::Invalid(format!(
            "the statement is already signed by key {}",
            hex::encode(&kid[..8])
        )));
    }
    if existing.len() >= MAX_SIGNERS {
        return Err(KeyHistoryError::Invalid(format!(
            "a statement carries at most {MAX_SIGNERS} signatures"
        )));
    }
    let protected = signer_protected(&kid);
    let signature = key.sign(&tbs(&protected, payload));
    let mut all = existing.to_vec();
    all.push(SignatureEntry {
        kid,
        protected,
        signature,
    });
    all.sort_by_key(|a| a.kid);
    Ok(encode(payload, &all))
}

/// Adds `key`'s signature to a statement signed by others: what a root key holder does with a
/// statement the node prepared (`rogatory keys root sign`). The existing signatures are kept
/// as they are, not checked here.
pub fn add_signature(bytes: &[u8], key: &SigningKey) -> Result<Vec<u8>, KeyHistoryError> {
    let p = parse(bytes)?;
    sign_payload(&p.payload, &p.signatures, key)
}

/// Parses a statement in the one accepted encoding; the signatures are not verified here
/// (which keys must sign depends on the history, see [`super::KeyHistory`]).
pub fn parse(bytes: &[u8]) -> Result<ParsedStatement, KeyHistoryError> {
    let bad = |d: &str| KeyHistoryError::Malformed(d.to_string());
    if bytes.len() > MAX_STATEMENT_BYTES {
        return Err(bad("the statement is larger than 80 KiB"));
    }
    if bytes.get(..3) != Some(&[TAG_SIGN[0], TAG_SIGN[1], 0x84])
        || bytes.get(3..5) != Some(&[0x40, 0xa0])
    {
        return Err(bad(
            "expected a tagged COSE_Sign (tag 98) with empty body headers",
        ));
    }
    let mut pos = 5;
    let payload = take_bstr(bytes, &mut pos).ok_or_else(|| bad("bad payload"))?;
    let (major, n) = take_head(bytes, &mut pos).ok_or_else(|| bad("bad signatures"))?;
    // Zero signatures: a prepared statement, which no history accepts as it is.
    if major != 4 || n > MAX_SIGNERS as u64 {
        return Err(bad("expected an array of at most 16 signatures"));
    }
    let mut signatures: Vec<SignatureEntry> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        if bytes.get(pos) != Some(&0x83) {
            return Err(bad("a COSE_Signature is an array of 3"));
        }
        pos += 1;
        let protected = take_bstr(bytes, &mut pos).ok_or_else(|| bad("bad signer header"))?;
        if bytes.get(pos) != Some(&0xa0) {
            return Err(bad("a signer's unprotected header must be empty"));
        }
        pos += 1;
        let sig = take_bstr(bytes, &mut pos).ok_or_else(|| bad("bad signature"))?;
        let signature: [u8; 64] = sig
            .try_into()
            .map_err(|_| bad("an Ed25519 signature is 64 bytes"))?;
        if protected.len() != 38 || protected[..6] != [0xa2, 0x01, 0x27, 0x04, 0x58, 0x20] {
            return Err(bad(
                "a signer's protected header is exactly {1: -8, 4: 32-byte kid}",
            ));
        }
        let mut kid = [0u8; 32];
        kid.copy_from_slice(&protected[6..]);
        if signatures.last().is_some_and(|s| s.kid >= kid) {
            return Err(bad("signatures must be sorted by key id, each signer once"));
        }
        signatures.push(SignatureEntry {
            kid,
            protected: protected.to_vec(),
            signature,
        });
    }
    if pos != bytes.len() {
        return Err(bad("unexpected bytes after the signatures"));
    }
    let body: StatementBody = cbor::from_slice(payload, MAX_STATEMENT_BYTES, "key statement")
        .map_err(|e| KeyHistoryError::Malformed(e.to_string()))?;
    super::check_body(&body)?;
    Ok(ParsedStatement {
        body,
        payload: payload.to_vec(),
        signatures,
    })
}
