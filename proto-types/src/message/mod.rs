//! The message types an envelope carries, their shared parts, and validation.
//!
//! Every type decodes leniently (absent fields take their empty value) and is then checked by
//! [`Message::validate`], which returns *every* problem found, worded for the clerk who has to
//! fix the request, rather than stopping at the first. On the wire the decoder is strict as well
//! (deterministic CBOR, no unknown fields), and an envelope whose message has any problem is
//! refused with reason `invalid-schema`.

mod evidence;
mod extradition;
mod liaison;
mod mla;
mod preservation;
mod validate;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use evidence::{
    Acquisition, CustodyEntry, EvidenceItem, EvidenceManifest, EvidenceStatus, ItemState,
    ItemStatus, OutOfBandDelivery, PerceptualHash, TransferMode,
};
pub use extradition::{ExtraditionDecision, ExtraditionStage, ExtraditionStatusUpdate};
pub use liaison::LiaisonMessage;
pub use mla::{
    AGE_BANDS, AssistanceKind, ConfidentialityTerms, GENDERS, LegalBasis, LegalBasisKind, Measure,
    MlaRequest, MlaStatus, MlaStatusUpdate, Person, PersonRole, Proceedings, ProceedingsKind,
    RefusalGround, RelatedRequest, Target, TargetKind,
};
pub use preservation::{MIN_PRESERVATION_DAYS, PreservationRequest, PreservedData};
pub(crate) use validate::is_datetime;
pub use validate::{Problem, Problems, iccs_valid};

use crate::cbor;

/// Largest encoded message body accepted by default (the envelope limit is larger).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The kind of message an envelope carries; its text form is the wire and CLI name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageType {
    /// [`MlaRequest`].
    MlaRequest,
    /// [`MlaStatusUpdate`].
    MlaStatus,
    /// [`EvidenceManifest`].
    EvidenceManifest,
    /// [`ExtraditionStatusUpdate`].
    ExtraditionStatus,
    /// [`LiaisonMessage`].
    Liaison,
    /// [`PreservationRequest`].
    PreservationRequest,
    /// [`EvidenceStatus`].
    EvidenceStatus,
}

impl MessageType {
    /// Every type, in spec order.
    pub const ALL: [MessageType; 7] = [
        Self::MlaRequest,
        Self::MlaStatus,
        Self::EvidenceManifest,
        Self::ExtraditionStatus,
        Self::Liaison,
        Self::PreservationRequest,
        Self::EvidenceStatus,
    ];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::MlaRequest => "mla-request",
            Self::MlaStatus => "mla-status",
            Self::EvidenceManifest => "evidence-manifest",
            Self::ExtraditionStatus => "extradition-status",
            Self::Liaison => "liaison",
            Self::PreservationRequest => "preservation-request",
            Self::EvidenceStatus => "evidence-status",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown message type name.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error(
    "`{0}` is not a message type (expected one of: mla-request, mla-status, evidence-manifest, extradition-status, liaison, preservation-request, evidence-status)"
)]
pub struct UnknownMessageType(pub String);

impl FromStr for MessageType {
    type Err = UnknownMessageType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownMessageType(s.to_string()))
    }
}

/// A message of any type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// An MLA request.
    MlaRequest(Box<MlaRequest>),
    /// A status update on an MLA request.
    MlaStatus(MlaStatusUpdate),
    /// An evidence manifest.
    EvidenceManifest(EvidenceManifest),
    /// An extradition status update.
    ExtraditionStatus(ExtraditionStatusUpdate),
    /// A police-to-police liaison message.
    Liaison(LiaisonMessage),
    /// A preservation request.
    PreservationRequest(PreservationRequest),
    /// The receiving node's report on evidence items.
    EvidenceStatus(EvidenceStatus),
}

/// Why a message body could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The CBOR body is malformed, not deterministic, or does not fit the type.
    #[error(transparent)]
    Cbor(#[from] cbor::DecodeError),
    /// The JSON body does not fit the type.
    #[error("the {kind} is not valid JSON of that type: {detail}")]
    Json {
        /// The type expected.
        kind: MessageType,
        /// serde_json's message.
        detail: String,
    },
    /// The body decoded but breaks the rules of its type: every problem found.
    #[error("the {kind} is incomplete or inconsistent:\n{problems}")]
    Invalid {
        /// The type.
        kind: MessageType,
        /// Everything wrong with it.
        problems: Problems,
    },
    /// Encoding failed (a bug).
    #[error(transparent)]
    Encode(#[from] cbor::EncodeError),
}

macro_rules! per_type {
    ($self:ident, $m:ident => $e:expr) => {
        match $self {
            Message::MlaRequest($m) => $e,
            Message::MlaStatus($m) => $e,
            Message::EvidenceManifest($m) => $e,
            Message::ExtraditionStatus($m) => $e,
            Message::Liaison($m) => $e,
            Message::PreservationRequest($m) => $e,
            Message::EvidenceStatus($m) => $e,
        }
    };
}

macro_rules! per_kind {
    ($kind:expr, |$t:ident| $build:expr) => {
        match $kind {
            MessageType::MlaRequest => {
                type $t = MlaRequest;
                Message::MlaRequest(Box::new($build))
            }
            MessageType::MlaStatus => {
                type $t = MlaStatusUpdate;
                Message::MlaStatus($build)
            }
            MessageType::EvidenceManifest => {
                type $t = EvidenceManifest;
                Message::EvidenceManifest($build)
            }
            MessageType::ExtraditionStatus => {
                type $t = ExtraditionStatusUpdate;
                Message::ExtraditionStatus($build)
            }
            MessageType::Liaison => {
                type $t = LiaisonMessage;
                Message::Liaison($build)
            }
            MessageType::PreservationRequest => {
                type $t = PreservationRequest;
                Message::PreservationRequest($build)
            }
            MessageType::EvidenceStatus => {
                type $t = EvidenceStatus;
                Message::EvidenceStatus($build)
            }
        }
    };
}

impl Message {
    /// An emergency (risk to life or safety): a request or liaison message whose urgency is
    /// `emergency` (spec/CASES.md §6).
    pub fn is_emergency(&self) -> bool {
        match self {
            Message::MlaRequest(r) => r.urgency.level == UrgencyLevel::Emergency,
            Message::Liaison(l) => l.priority == UrgencyLevel::Emergency,
            Message::PreservationRequest(p) => p.urgency.level == UrgencyLevel::Emergency,
            _ => false,
        }
    }

    /// The message's type.
    pub fn kind(&self) -> MessageType {
        match self {
            Message::MlaRequest(_) => MessageType::MlaRequest,
            Message::MlaStatus(_) => MessageType::MlaStatus,
            Message::EvidenceManifest(_) => MessageType::EvidenceManifest,
            Message::ExtraditionStatus(_) => MessageType::ExtraditionStatus,
            Message::Liaison(_) => MessageType::Liaison,
            Message::PreservationRequest(_) => MessageType::PreservationRequest,
            Message::EvidenceStatus(_) => MessageType::EvidenceStatus,
        }
    }

    /// Every problem with the message; empty when it may be sent.
    pub fn problems(&self) -> Problems {
        let mut p = Problems::default();
        per_type!(self, m => m.check(&mut p));
        p
    }

    /// `Ok` when the message may be sent, otherwise the complete list of problems.
    pub fn validate(&self) -> Result<(), MessageError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(MessageError::Invalid {
                kind: self.kind(),
                problems,
            })
        }
    }

    /// The deterministic CBOR encoding of the body.
    pub fn to_cbor(&self) -> Result<Vec<u8>, MessageError> {
        Ok(per_type!(self, m => cbor::to_vec(m))?)
    }

    /// Decodes a CBOR body of the given type strictly, then validates it.
    pub fn from_cbor(kind: MessageType, bytes: &[u8], limit: usize) -> Result<Self, MessageError> {
        let what = "message body";
        let msg = per_kind!(kind, |T| cbor::from_slice::<T>(bytes, limit, what)?);
        msg.validate()?;
        Ok(msg)
    }

    /// The body as JSON (the human-facing form of spec/examples/).
    pub fn to_json(&self) -> serde_json::Value {
        per_type!(self, m => serde_json::to_value(m).unwrap_or(serde_json::Value::Null))
    }

    /// Reads a JSON body of the given type. Missing fields are reported by [`Self::validate`],
    /// not here; fields the type does not have are refused here, all of them at once.
    pub fn from_json(kind: MessageType, json: &serde_json::Value) -> Result<Self, MessageError> {
        let json_err = |e: serde_json::Error| MessageError::Json {
            kind,
            detail: e.to_string(),
        };
        // Deserialized from the borrowed value: no copy of the request's tree.
        let msg = per_kind!(kind, |T| <T as Deserialize>::deserialize(json)
            .map_err(json_err)?);
        let mut unknown = Vec::new();
        validate::unknown_fields(json, &msg.to_json(), "", &mut unknown);
        if !unknown.is_empty() {
            let mut problems = Problems::default();
            for f in unknown {
                problems.push(&f, "is not a field of this message type (misspelt?)");
            }
            return Err(MessageError::Invalid { kind, problems });
        }
        Ok(msg)
    }
}

/// A person or office to contact about a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Contact {
    /// Name or function.
    pub name: String,
    /// E-mail address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Telephone number, international format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A requesting or requested authority.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Authority {
    /// The authority's Rogatory agency id, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency: Option<crate::ids::AgencyId>,
    /// Full name of the authority.
    pub name: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// Its function, e.g. "investigating judge", "public prosecutor".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// People to contact.
    pub contacts: Vec<Contact>,
    /// Languages it works in (BCP 47).
    pub languages: Vec<String>,
}

/// An offence, with its legal classification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Offence {
    /// The offence in plain words.
    pub description: String,
    /// The provision of national law, e.g. "Code pénal art. 227-23".
    pub legal_classification: String,
    /// The ICCS code (UNODC International Classification of Crime for Statistical Purposes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iccs: Option<String>,
    /// The maximum penalty provided by law.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum_penalty: Option<String>,
}

/// A document attached by reference: its content travels separately; the hash binds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttachmentRef {
    /// File name.
    pub name: String,
    /// Media type, e.g. "application/pdf".
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: Option<crate::ids::Sha256Digest>,
}

/// Handling codes in the manner of Europol's: what the recipient may do with the information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HandlingCode {
    /// Use only for the purpose for which it was provided.
    H0,
    /// Not to be used in judicial proceedings without the provider's permission.
    H1,
    /// Not to be shared onward without the provider's permission.
    H2,
    /// Other restrictions, stated in [`Handling::restrictions`].
    H3,
}

/// Handling instructions attached to a message or evidence item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Handling {
    /// The codes that apply (at least one).
    pub codes: Vec<HandlingCode>,
    /// The stated purpose (with H0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Other restrictions, required with H3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restrictions: Option<String>,
}

/// How urgent a request is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UrgencyLevel {
    /// Normal handling.
    #[default]
    Routine,
    /// Faster than routine; a reason is required.
    Urgent,
    /// Risk to life or physical safety (Second Additional Protocol Art. 9–10); jumps every queue.
    Emergency,
}

/// Urgency, with its reason and deadline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Urgency {
    /// The level.
    pub level: UrgencyLevel,
    /// Why (required unless routine), e.g. "risk to a child's life".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Date by which an answer is needed (YYYY-MM-DD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
}

#[cfg(test)]
mod tests;
