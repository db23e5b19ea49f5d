//! Receipts: the recipient's signed statement that it accepted or rejected an envelope
//! (non-repudiation of receipt, after ETSI EN 319 522 evidence).
//!
//! A receipt is a tagged `COSE_Sign1` (EdDSA) by the recipient over the deterministic CBOR of
//! [`Receipt`]. Rejections are receipts too, with a [`ReasonCode`].

use serde::{Deserialize, Serialize};

use crate::card::AgencyCard;
use crate::cbor;
use crate::cose::{self, CoseError};
use crate::ids::{AgencyId, EnvelopeId, Sha256Digest};
use crate::keys::AgencySecretKeys;

/// Largest receipt accepted.
pub const MAX_RECEIPT_BYTES: usize = 64 * 1024;

/// Why an envelope was rejected. The numbers are stable wire values (spec/PROTOCOL.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "u16", into = "u16")]
pub enum ReasonCode {
    /// 1: not well-formed CBOR/COSE, or not in the one accepted encoding.
    Malformed,
    /// 2: larger than the recipient's limit.
    Oversized,
    /// 3: a protocol version the recipient does not speak.
    UnsupportedVersion,
    /// 4: the sender has no trusted card at the recipient.
    UnknownSender,
    /// 5: signed or encrypted with a key that is not on the relevant card.
    KeyMismatch,
    /// 6: the signing key was expired or not yet valid at the stated time.
    KeyNotValid,
    /// 7: a signature does not verify.
    BadSignature,
    /// 8: the envelope is addressed to another agency.
    NotAddressee,
    /// 9: the content cannot be decrypted.
    Undecryptable,
    /// 10: the inner message was signed by someone else or does not name the recipient.
    Forwarded,
    /// 11: the layers' headers disagree.
    HeaderMismatch,
    /// 12: the message does not fit its schema or its rules.
    InvalidSchema,
    /// 13: the message asks for a state transition that is not allowed.
    IllegalTransition,
    /// 14: a replay of an envelope already processed.
    Replay,
    /// 15: the sender's key or card is revoked.
    RevokedSender,
    /// 16: the message breaks the handling codes of the message it refers to.
    HandlingViolation,
    /// 17: the chain link does not fit the recipient's record (wrong previous envelope).
    ChainBroken,
    /// 18: the sender's checkpoint does not extend the last one the recipient witnessed for the
    /// case (a forked or rolled-back log, or a missing or bad consistency proof).
    LogInconsistent,
    /// 19: the sender may not send this message in this case (spec/PROTOCOL.md §5.4: not a
    /// party to the case, a party acting beyond its part, or a report on another's acts).
    Unauthorized,
    /// 20: accepting it would exceed a limit the recipient sets (items in a manifest, evidence
    /// quotas, free disk space).
    OverQuota,
    /// 21: dated further in the future than the recipient's clock allows (spec/PROTOCOL.md
    /// §3.8, "Clock").
    FutureDated,
    /// 99: the recipient failed internally; the sender may retry.
    InternalError,
    /// A code this software does not know (from a newer version).
    Unknown(u16),
}

impl From<u16> for ReasonCode {
    fn from(n: u16) -> Self {
        use ReasonCode::*;
        match n {
            1 => Malformed,
            2 => Oversized,
            3 => UnsupportedVersion,
            4 => UnknownSender,
            5 => KeyMismatch,
            6 => KeyNotValid,
            7 => BadSignature,
            8 => NotAddressee,
            9 => Undecryptable,
            10 => Forwarded,
            11 => HeaderMismatch,
            12 => InvalidSchema,
            13 => IllegalTransition,
            14 => Replay,
            15 => RevokedSender,
            16 => HandlingViolation,
            17 => ChainBroken,
            18 => LogInconsistent,
            19 => Unauthorized,
            20 => OverQuota,
            21 => FutureDated,
            99 => InternalError,
            other => Unknown(other),
        }
    }
}

impl From<ReasonCode> for u16 {
    fn from(r: ReasonCode) -> u16 {
        use ReasonCode::*;
        match r {
            Malformed => 1,
            Oversized => 2,
            UnsupportedVersion => 3,
            UnknownSender => 4,
            KeyMismatch => 5,
            KeyNotValid => 6,
            BadSignature => 7,
            NotAddressee => 8,
            Undecryptable => 9,
            Forwarded => 10,
            HeaderMismatch => 11,
            InvalidSchema => 12,
            IllegalTransition => 13,
            Replay => 14,
            RevokedSender => 15,
            HandlingViolation => 16,
            ChainBroken => 17,
            LogInconsistent => 18,
            Unauthorized => 19,
            OverQuota => 20,
            FutureDated => 21,
            InternalError => 99,
            Unknown(n) => n,
        }
    }
}

impl ReasonCode {
    /// The stable name, as in the spec.
    pub fn name(&self) -> &'static str {
        use ReasonCode::*;
        match self {
            Malformed => "malformed",
            Oversized => "oversized",
            UnsupportedVersion => "unsupported-version",
            UnknownSender => "unknown-sender",
            KeyMismatch => "key-mismatch",
            KeyNotValid => "key-not-valid",
            BadSignature => "bad-signature",
            NotAddressee => "not-addressee",
            Undecryptable => "undecryptable",
            Forwarded => "forwarded",
            HeaderMismatch => "header-mismatch",
            InvalidSchema => "invalid-schema",
            IllegalTransition => "illegal-transition",
            Replay => "replay",
            RevokedSender => "revoked-sender",
            HandlingViolation => "handling-violation",
            ChainBroken => "chain-broken",
            LogInconsistent => "log-inconsistent",
            Unauthorized => "unauthorized",
            OverQuota => "over-quota",
            FutureDated => "future-dated",
            InternalError => "internal-error",
            Unknown(_) => "unknown",
        }
    }
}

/// Accepted or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiptEvent {
    /// The envelope was verified, stored durably and applied.
    Accepted,
    /// The envelope was refused; `reason` says why. Nothing was applied.
    Rejected,
}

/// The signed content of a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Protocol version.
    pub version: u64,
    /// The envelope answered.
    pub envelope_id: EnvelopeId,
    /// The agency issuing the receipt (the envelope's addressee).
    pub from: AgencyId,
    /// The agency the receipt answers (the envelope's sender, when known).
    pub to: AgencyId,
    /// Accepted or rejected.
    pub event: ReceiptEvent,
    /// Why, when rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ReasonCode>,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Unix seconds when the recipient committed the envelope (or refused it).
    pub received_at: u64,
    /// The recipient's latest signed checkpoint of the case log.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub checkpoint: Option<Vec<u8>>,
    /// The recipient's cosignature (C2SP tlog-cosignature) of the sender's checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub cosignature: Option<Vec<u8>>,
}

/// A receipt with its signed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReceipt {
    /// The content.
    pub receipt: Receipt,
    /// The `COSE_Sign1` bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`: the receipt hash recorded in audit logs.
    pub hash: Sha256Digest,
}

/// Why a receipt was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// Bad CBOR.
    #[error("receipt: {0}")]
    Cbor(#[from] cbor::DecodeError),
    /// Bad COSE.
    #[error("receipt: {0}")]
    Cose(#[from] CoseError),
    /// Content rules broken (e.g. a rejection without a reason).
    #[error("receipt: {0}")]
    Invalid(String),
    /// Signed by someone other than the expected agency, or the signature fails.
    #[error("receipt: the signature is not {0}'s")]
    BadSignature(AgencyId),
    /// Signed by one agency but naming another as its issuer.
    #[error("receipt names {named} as its issuer but is signed by {signer}")]
    WrongIssuer {
        /// The issuer named in the receipt.
        named: AgencyId,
        /// The agency whose key signed it.
        signer: AgencyId,
    },
    /// It answers another envelope.
    #[error("receipt answers envelope {got}, not {want}")]
    WrongEnvelope {
        /// Named in the receipt.
        got: EnvelopeId,
        /// Expected.
        want: EnvelopeId,
    },
    /// Encoding failed (a bug).
    #[error("receipt: {0}")]
    Encode(#[from] cbor::EncodeError),
}

impl Receipt {
    fn check(&self) -> Result<(), ReceiptError> {
        if self.version != crate::envelope::PROTOCOL_VERSION {
            return Err(ReceiptError::Invalid(format!(
                "protocol version {} is not supported",
                self.version
            )));
        }
        match (self.event, self.reason) {
            (ReceiptEvent::Accepted, Some(_)) => Err(ReceiptError::Invalid(
                "an acceptance carries no reason code".into(),
            )),
            (ReceiptEvent::Rejected, None) => Err(ReceiptError::Invalid(
                "a rejection must carry a reason code".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Signs the receipt with the issuing agency's key.
    pub fn sign(&self, keys: &AgencySecretKeys) -> Result<SignedReceipt, ReceiptError> {
        self.check()?;
        let payload = cbor::to_vec(self)?;
        let bytes = cose::sign1(coset::Header::default(), &payload, &keys.signing);
        Ok(SignedReceipt {
            receipt: self.clone(),
            hash: Sha256Digest::of(&bytes),
            bytes,
        })
    }
}

/// Decodes a receipt and checks its structure, **without** checking its signature: for receipts
/// a node verified before storing them (listing its own outbox), never for bytes from a peer.
pub fn decode_verified_earlier(bytes: &[u8]) -> Result<SignedReceipt, ReceiptError> {
    let s = parse(bytes)?;
    let receipt = body(&s)?;
    Ok(SignedReceipt {
        receipt,
        hash: Sha256Digest::of(bytes),
        bytes: bytes.to_vec(),
    })
}

fn parse(bytes: &[u8]) -> Result<cose::Sign1<'_>, ReceiptError> {
    if bytes.len() > MAX_RECEIPT_BYTES {
        return Err(ReceiptError::Cbor(cbor::DecodeError::TooLarge {
            what: "receipt",
            size: bytes.len(),
            limit: MAX_RECEIPT_BYTES,
        }));
    }
    let s = cose::parse_sign1(bytes, "receipt")?;
    cose::only_labels(&s.header, &[], "receipt")?;
    Ok(s)
}

fn body(s: &cose::Sign1<'_>) -> Result<Receipt, ReceiptError> {
    let receipt: Receipt = cbor::from_slice(s.payload, MAX_RECEIPT_BYTES, "receipt body")?;
    receipt.check()?;
    Ok(receipt)
}

/// Verifies a receipt: its structure, that `issuer`'s signing key signed it, that it names
/// `issuer`, and (when given) that it answers `envelope`.
pub fn verify_receipt(
    bytes: &[u8],
    issuer: &AgencyCard,
    envelope: Option<&EnvelopeId>,
) -> Result<SignedReceipt, ReceiptError> {
    let s = parse(bytes)?;
    // The body is decoded only once the signature holds.
    if !cose::verify_sign1(&s, issuer.signing_key()) {
        return Err(ReceiptError::BadSignature(issuer.id().clone()));
    }
    let receipt = body(&s)?;
    if &receipt.from != issuer.id() {
        return Err(ReceiptError::WrongIssuer {
            named: receipt.from,
            signer: issuer.id().clone(),
        });
    }
    if let Some(want) = envelope
        && &receipt.envelope_id != want
    {
        return Err(ReceiptError::WrongEnvelope {
            got: receipt.envelope_id,
            want: *want,
        });
    }
    Ok(SignedReceipt {
        receipt,
        hash: Sha256Digest::of(bytes),
        bytes: bytes.to_vec(),
    })
}
