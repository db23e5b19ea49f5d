//! The COSE structures Rogatory uses (RFC 9052), on top of `coset`: `COSE_Sign1` with EdDSA,
//! and the private-use header labels of spec/PROTOCOL.md §3.
//!
//! Every `COSE_Sign1` Rogatory accepts is tagged (18), has an empty unprotected header, a
//! protected header in deterministic encoding, and is itself the deterministic encoding of its
//! parts, so one signed content has exactly one accepted byte string and hence one id.

use ciborium::Value;
use coset::{CborSerializable, Header, Label};

use crate::keys::{SigningKey, VerifyingKey};

/// Private-use COSE header labels (RFC 9052 §11.1: integers below -65536).
pub mod label {
    /// Protocol version (uint).
    pub const VERSION: i64 = -65537;
    /// Sending agency id (tstr).
    pub const FROM: i64 = -65538;
    /// Addressee agency id of this envelope (tstr).
    pub const TO: i64 = -65539;
    /// Message id (bstr, 16).
    pub const MESSAGE_ID: i64 = -65540;
    /// Time the envelope was sealed, Unix seconds (uint).
    pub const SENT_AT: i64 = -65541;
    /// Case commitment (bstr, 32).
    pub const CASE_COMMITMENT: i64 = -65542;
    /// Sender's latest signed checkpoint of the case log (bstr, a C2SP signed note), optional.
    pub const CHECKPOINT: i64 = -65543;
    /// Position of this envelope in the sender's chain for (case, addressee), from 1 (uint).
    pub const SEQUENCE: i64 = -65544;
    /// Envelope id of the previous envelope in that chain (bstr, 32), absent for the first.
    pub const PREVIOUS: i64 = -65545;
    /// Case id (bstr, 16): inner layer only.
    pub const CASE_ID: i64 = -65546;
    /// Message type (tstr): inner layer only.
    pub const MESSAGE_TYPE: i64 = -65547;
    /// Every addressee of the message (array of tstr): inner layer only.
    pub const RECIPIENTS: i64 = -65548;
    /// Consistency proof from the checkpoint the previous envelope of the chain carried to the
    /// one this envelope carries (bstr: 8-byte big-endian old size, then 32-byte hashes),
    /// optional: outer layer only (`audit::witness::CarriedProof`).
    pub const CONSISTENCY: i64 = -65549;
    /// Officials' signatures of the message (array, spec/PEOPLE.md §5), optional: inner layer
    /// only.
    pub const OFFICERS: i64 = -65550;
}

/// A parse or check failure of a COSE structure. Always the producer's fault.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoseError {
    /// Not a COSE structure of the expected kind.
    #[error("{what} is not a tagged COSE structure: {detail}")]
    Structure {
        /// Which structure.
        what: &'static str,
        /// What coset said.
        detail: String,
    },
    /// Parsed, but not in the one accepted encoding.
    #[error("{what} is not in deterministic encoding, or carries an unprotected header")]
    NotDeterministic {
        /// Which structure.
        what: &'static str,
    },
    /// A header parameter is missing or of the wrong type.
    #[error("{what}: header parameter {param} {problem}")]
    Header {
        /// Which structure.
        what: &'static str,
        /// Which parameter.
        param: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// The algorithm is not the one the spec requires.
    #[error("{what} uses algorithm {got}, but the protocol requires {want}")]
    Algorithm {
        /// Which structure.
        what: &'static str,
        /// Found.
        got: String,
        /// Required.
        want: &'static str,
    },
}

/// A parsed `COSE_Sign1`, borrowing the bytes it was read from: signatures are checked over
/// exactly those bytes and the payload is not copied.
#[derive(Debug, Clone)]
pub(crate) struct Sign1<'a> {
    /// The protected header, parsed.
    pub header: Header,
    /// The protected header's bytes as received.
    pub protected: &'a [u8],
    /// The payload as received.
    pub payload: &'a [u8],
    /// The 64-byte Ed25519 signature.
    pub signature: &'a [u8],
}

const TAG_SIGN1: u8 = 0xd2; // tag 18

/// Largest protected header accepted (it carries at most a checkpoint besides fixed fields).
/// Checked before the header is parsed, so that unauthenticated input cannot make the parser
/// allocate in proportion to the envelope.
pub(crate) const MAX_PROTECTED_BYTES: usize = 16 * 1024;
const SIG_CONTEXT: &[u8] = b"\x6aSignature1";

/// Appends a CBOR head (major type and argument) in its shortest form.
pub(crate) fn put_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends a byte string.
pub(crate) fn put_bstr(out: &mut Vec<u8>, b: &[u8]) {
    put_head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}

/// Reads a CBOR head at `*pos`, requiring the shortest form and a definite length.
pub(crate) fn take_head(bytes: &[u8], pos: &mut usize) -> Option<(u8, u64)> {
    let first = *bytes.get(*pos)?;
    *pos += 1;
    let (major, info) = (first >> 5, first & 0x1f);
    let n = match info {
        0..=23 => u64::from(info),
        24..=27 => {
            let len = 1usize << (info - 24);
            let raw = bytes.get(*pos..*pos + len)?;
            *pos += len;
            let n = raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            let min = match info {
                24 => 24,
                25 => 0x100,
                26 => 0x1_0000,
                _ => 0x1_0000_0000,
            };
            if n < min {
                return None;
            }
            n
        }
        _ => return None,
    };
    Some((major, n))
}

/// Reads a byte string at `*pos`, borrowing it.
pub(crate) fn take_bstr<'a>(bytes: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let (major, n) = take_head(bytes, pos)?;
    if major != 2 {
        return None;
    }
    let n = usize::try_from(n).ok()?;
    let end = pos.checked_add(n)?;
    let b = bytes.get(*pos..end)?;
    *pos = end;
    Some(b)
}

/// The `Sig_structure` prefix for `COSE_Sign1` (RFC 9052 §4.4) up to the payload's content:
/// `["Signature1", protected, h'', payload]` with the payload's head but not its bytes.
fn sig_structure_prefix(protected: &[u8], payload_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(protected.len() + 24);
    out.push(0x84);
    out.extend_from_slice(SIG_CONTEXT);
    put_bstr(&mut out, protected);
    out.push(0x40); // external_aad: empty
    put_head(&mut out, 2, payload_len as u64);
    out
}

/// Serializes a protected header map deterministically.
pub(crate) fn protected_bytes(h: Header) -> Vec<u8> {
    use coset::AsCborValue;
    // A header of integers, byte and text strings always serializes.
    h.to_cbor_value()
        .ok()
        .and_then(|v| crate::cbor::value_to_vec(v).ok())
        .unwrap_or_default()
}

/// Creates a tagged `COSE_Sign1` over `payload` with the given protected header; `alg` (EdDSA)
/// and `kid` are set here.
pub(crate) fn sign1(mut protected: Header, payload: &[u8], key: &SigningKey) -> Vec<u8> {
    protected.alg = Some(coset::Algorithm::Assigned(coset::iana::Algorithm::EdDSA));
    protected.key_id = key.verifying_key().id().to_vec();
    let protected = protected_bytes(protected);
    let prefix = sig_structure_prefix(&protected, payload.len());
    let sig = key.sign_parts(&[&prefix, payload]);
    let mut out = Vec::with_capacity(payload.len() + protected.len() + 96);
    out.push(TAG_SIGN1);
    out.push(0x84);
    put_bstr(&mut out, &protected);
    out.push(0xa0); // unprotected: empty map
    put_bstr(&mut out, payload);
    put_bstr(&mut out, &sig);
    out
}

/// Parses a tagged `COSE_Sign1` in the one accepted encoding (tag 18, definite shortest
/// lengths, deterministic protected header, empty unprotected header, 64-byte signature, nothing
/// after it), with alg EdDSA and a 32-byte kid.
pub(crate) fn parse_sign1<'a>(bytes: &'a [u8], what: &'static str) -> Result<Sign1<'a>, CoseError> {
    let structure = |detail: &str| CoseError::Structure {
        what,
        detail: detail.to_string(),
    };
    if bytes.first() != Some(&TAG_SIGN1) || bytes.get(1) != Some(&0x84) {
        return Err(structure(
            "expected a tagged COSE_Sign1 (tag 18, array of 4)",
        ));
    }
    let mut pos = 2;
    let protected = take_bstr(bytes, &mut pos).ok_or_else(|| structure("bad protected header"))?;
    if protected.len() > MAX_PROTECTED_BYTES {
        return Err(structure("the protected header is larger than 16 KiB"));
    }
    if bytes.get(pos) != Some(&0xa0) {
        return Err(CoseError::NotDeterministic { what });
    }
    pos += 1;
    let payload = take_bstr(bytes, &mut pos).ok_or_else(|| structure("bad or detached payload"))?;
    let signature = take_bstr(bytes, &mut pos).ok_or_else(|| structure("bad signature"))?;
    if signature.len() != 64 {
        return Err(structure("an Ed25519 signature is 64 bytes"));
    }
    if pos != bytes.len() {
        return Err(structure("unexpected bytes after the signature"));
    }
    if protected.is_empty() || !is_sorted_header(protected) {
        return Err(CoseError::NotDeterministic { what });
    }
    let header = Header::from_slice(protected).map_err(|e| structure(&e.to_string()))?;
    match &header.alg {
        Some(coset::Algorithm::Assigned(coset::iana::Algorithm::EdDSA)) => {}
        other => {
            return Err(CoseError::Algorithm {
                what,
                got: format!("{other:?}"),
                want: "EdDSA (-8)",
            });
        }
    }
    if header.key_id.len() != 32 {
        return Err(CoseError::Header {
            what,
            param: "kid",
            problem: "must be a 32-byte key thumbprint",
        });
    }
    Ok(Sign1 {
        header,
        protected,
        payload,
        signature,
    })
}

/// Checks the signature of a parsed `COSE_Sign1` over the protected header bytes and payload
/// exactly as received.
pub(crate) fn verify_sign1(s: &Sign1<'_>, key: &VerifyingKey) -> bool {
    if s.header.key_id.as_slice() != key.id() {
        return false;
    }
    let mut tbs = sig_structure_prefix(s.protected, s.payload.len());
    tbs.reserve_exact(s.payload.len());
    tbs.extend_from_slice(s.payload);
    key.verify_strict(&tbs, s.signature)
}

/// True when a header map's keys are in deterministic (bytewise encoded) order.
pub(crate) fn is_sorted_header(bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    match crate::cbor::parse_value(bytes, bytes.len(), "header") {
        Ok(v) => crate::cbor::value_to_vec(v).is_ok_and(|c| c == bytes),
        Err(_) => false,
    }
}

/// Reads one of the private-use labels from a header.
pub(crate) fn get(h: &Header, label: i64) -> Option<&Value> {
    h.rest
        .iter()
        .find(|(l, _)| *l == Label::Int(label))
        .map(|(_, v)| v)
}

pub(crate) fn get_text<'a>(
    h: &'a Header,
    label: i64,
    what: &'static str,
    param: &'static str,
) -> Result<&'a str, CoseError> {
    match get(h, label) {
        Some(Value::Text(t)) => Ok(t),
        Some(_) => Err(CoseError::Header {
            what,
            param,
            problem: "must be a text string",
        }),
        None => Err(CoseError::Header {
            what,
            param,
            problem: "is missing",
        }),
    }
}

pub(crate) fn get_bytes<'a>(
    h: &'a Header,
    label: i64,
    what: &'static str,
    param: &'static str,
) -> Result<Option<&'a [u8]>, CoseError> {
    match get(h, label) {
        Some(Value::Bytes(b)) => Ok(Some(b)),
        Some(_) => Err(CoseError::Header {
            what,
            param,
            problem: "must be a byte string",
        }),
        None => Ok(None),
    }
}

pub(crate) fn get_fixed<const N: usize>(
    h: &Header,
    label: i64,
    what: &'static str,
    param: &'static str,
) -> Result<[u8; N], CoseError> {
    get_bytes(h, label, what, param)?
        .ok_or(CoseError::Header {
            what,
            param,
            problem: "is missing",
        })?
        .try_into()
        .map_err(|_| CoseError::Header {
            what,
            param,
            problem: "has the wrong length",
        })
}

pub(crate) fn get_uint(
    h: &Header,
    label: i64,
    what: &'static str,
    param: &'static str,
) -> Result<u64, CoseError> {
    match get(h, label) {
        Some(Value::Integer(i)) => u64::try_from(*i).map_err(|_| CoseError::Header {
            what,
            param,
            problem: "must be an unsigned integer",
        }),
        Some(_) => Err(CoseError::Header {
            what,
            param,
            problem: "must be an unsigned integer",
        }),
        None => Err(CoseError::Header {
            what,
            param,
            problem: "is missing",
        }),
    }
}

/// Only these labels may appear in a header of the given layer; anything else is refused so
/// that a header has one meaning.
pub(crate) fn only_labels(
    h: &Header,
    allowed: &[i64],
    what: &'static str,
) -> Result<(), CoseError> {
    let extra_std = !h.crit.is_empty()
        || h.content_type.is_some()
        || !h.iv.is_empty()
        || !h.partial_iv.is_empty()
        || !h.counter_signatures.is_empty();
    let unknown = h.rest.iter().any(|(l, _)| match l {
        Label::Int(i) => !allowed.contains(i),
        Label::Text(_) => true,
    });
    if extra_std || unknown {
        return Err(CoseError::Header {
            what,
            param: "(unknown)",
            problem: "is not defined for this layer by the protocol",
        });
    }
    Ok(())
}
