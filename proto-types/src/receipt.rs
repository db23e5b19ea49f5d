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

pub use crate::reason::ReasonCode;

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

/// The id of the key a receipt names as its signer (not verified): which of the issuer's keys
/// to verify it with, once the issuer has rotated.
pub fn signer_key_id(bytes: &[u8]) -> Option<crate::keys::KeyId> {
    parse(bytes)
        .ok()
        .and_then(|s| s.header.key_id.as_slice().try_into().ok())
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
