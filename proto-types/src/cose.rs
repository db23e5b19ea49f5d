//! The COSE structures Rogatory uses (RFC 9052), on top of `coset`: `COSE_Sign1` with EdDSA,
//! and the private-use header labels of spec/PROTOCOL.md §3.
//!
//! Every `COSE_Sign1` Rogatory accepts is tagged (18), has an empty unprotected header, a
//! protected header in deterministic encoding, and is itself the deterministic encoding of its
//! parts, so one signed content has exactly one accepted byte string and hence one id.

use ciborium::Value;
use coset::{CborSerializable, CoseSign1, Header, Label, TaggedCborSerializable};

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

/// Creates a tagged `COSE_Sign1` over `payload` with the given protected header; `alg` (EdDSA)
/// and `kid` are set here. The header's extra labels must be given in ascending encoded order.
pub(crate) fn sign1(mut protected: Header, payload: Vec<u8>, key: &SigningKey) -> Vec<u8> {
    protected.alg = Some(coset::Algorithm::Assigned(coset::iana::Algorithm::EdDSA));
    protected.key_id = key.verifying_key().id().to_vec();
    let s = coset::CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(&[], |tbs| key.sign(tbs).to_vec())
        .build();
    // A header of integers, byte and text strings always serializes.
    s.to_tagged_vec().unwrap_or_default()
}

/// Parses a tagged `COSE_Sign1`, requiring the one accepted encoding and alg EdDSA.
pub(crate) fn parse_sign1(bytes: &[u8], what: &'static str) -> Result<CoseSign1, CoseError> {
    let s = CoseSign1::from_tagged_slice(bytes).map_err(|e| CoseError::Structure {
        what,
        detail: e.to_string(),
    })?;
    if !s.unprotected.is_empty() || s.payload.is_none() {
        return Err(CoseError::NotDeterministic { what });
    }
    let protected_bytes = s.protected.original_data.clone().unwrap_or_default();
    let reencoded_header = s.protected.header.clone().to_vec().unwrap_or_default();
    if protected_bytes != reencoded_header || !is_sorted_header(&protected_bytes) {
        return Err(CoseError::NotDeterministic { what });
    }
    match &s.protected.header.alg {
        Some(coset::Algorithm::Assigned(coset::iana::Algorithm::EdDSA)) => {}
        other => {
            return Err(CoseError::Algorithm {
                what,
                got: format!("{other:?}"),
                want: "EdDSA (-8)",
            });
        }
    }
    if s.protected.header.key_id.len() != 32 {
        return Err(CoseError::Header {
            what,
            param: "kid",
            problem: "must be a 32-byte key thumbprint",
        });
    }
    let again = s.clone().to_tagged_vec().unwrap_or_default();
    if again != bytes {
        return Err(CoseError::NotDeterministic { what });
    }
    Ok(s)
}

/// Checks the signature of a parsed `COSE_Sign1` over the protected header bytes and payload
/// exactly as received.
pub(crate) fn verify_sign1(s: &CoseSign1, key: &VerifyingKey) -> bool {
    if s.protected.header.key_id.as_slice() != key.id() {
        return false;
    }
    s.verify_signature(&[], |sig, tbs| {
        if key.verify_strict(tbs, sig) {
            Ok(())
        } else {
            Err(())
        }
    })
    .is_ok()
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
