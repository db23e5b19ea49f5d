//! The audit entry: one leaf of a case log. Commitments only — ids and hashes — never message
//! content (spec/PROTOCOL.md §6.1, `cddl/audit-entry.cddl`).

use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::ids::{AgencyId, CaseId, Sha256Digest};

/// Largest encoded audit entry accepted.
pub const MAX_ENTRY_BYTES: usize = 4096;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditEvent {
    /// The case was opened on this node.
    CaseCreated,
    /// An envelope was sealed and queued for an addressee.
    EnvelopeSent,
    /// An envelope was received and accepted.
    EnvelopeReceived,
    /// An envelope was received and rejected (see `reason`).
    EnvelopeRejected,
    /// This node signed and returned a receipt.
    ReceiptSent,
    /// A receipt from the addressee was verified and stored.
    ReceiptReceived,
    /// The case's state changed (see `transition`).
    StatusChanged,
    /// An evidence item was transferred (see `commitment`: the item's hash).
    EvidenceTransferred,
    /// A local user read the content of a message or an evidence item.
    ContentAccessed,
    /// An export bundle of the case was written.
    BundleExported,
    /// A peer's checkpoint of the case was verified and cosigned (see `commitment`: its hash).
    PeerCheckpointWitnessed,
    /// A local user added an evidence item to the case on this node (see `commitment`: the
    /// SHA-256 of its content).
    EvidenceAdded,
    /// An evidence item's content arrived and its SHA-256 matched the manifest's (see
    /// `commitment`).
    EvidenceVerified,
    /// An evidence item's content arrived but did not match the manifest: it was quarantined
    /// (see `commitment`: the manifest's hash).
    EvidenceQuarantined,
    /// A local user exported an evidence item's content (decrypted) from the node.
    EvidenceExported,
    /// A peer's checkpoint of the case did not extend the last one witnessed (a forked or
    /// rolled-back log): the envelope was refused and an alert raised (see `commitment`: the
    /// hash of the offending checkpoint; `peer`: the agency).
    PeerLogInconsistent,
    /// An evidence item listed to be fetched was refused by the receiving node (a quota, the
    /// free disk space): its content did not travel (see `commitment`: the manifest's hash).
    EvidenceRefused,
    /// A local user drafted a message that waits for an issuing authority's approval
    /// (spec/PEOPLE.md §6; see `commitment`: the draft's id; `peer`: its first addressee). In
    /// the node's own log.
    DraftCreated,
    /// An issuing authority approved a draft, which was sealed and queued (see `commitment`:
    /// the draft's id). In the node's own log and in the case's, before its `envelope-sent`.
    DraftApproved,
    /// An issuing authority rejected a draft (see `commitment`: the draft's id). In the node's
    /// own log.
    DraftRejected,
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The agency.
    pub agency: AgencyId,
    /// The local user (an account name, not a person's name), when a user acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A state transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// State before.
    pub from: String,
    /// State after.
    pub to: String,
}

/// One entry of a case's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 0; equal to the leaf index.
    pub seq: u64,
    /// Unix seconds when the event was recorded.
    pub time: u64,
    /// The case.
    pub case_id: CaseId,
    /// What happened.
    pub event: AuditEvent,
    /// Who did it.
    pub actor: Actor,
    /// The other agency involved (addressee, sender, witness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<AgencyId>,
    /// The envelope concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope_id: Option<Sha256Digest>,
    /// The receipt concerned (SHA-256 of its bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_hash: Option<Sha256Digest>,
    /// The state transition, for `status-changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
    /// The rejection reason code, for `envelope-rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<u16>,
    /// Another commitment: an evidence item's hash, a peer checkpoint's hash, a bundle's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment: Option<Sha256Digest>,
}

/// Why an entry was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Bad CBOR.
    #[error("audit entry: {0}")]
    Cbor(#[from] cbor::DecodeError),
    /// Encoding failed (a bug).
    #[error("audit entry: {0}")]
    Encode(#[from] cbor::EncodeError),
    /// A user name that could carry content.
    #[error("audit entry: {0}")]
    Invalid(String),
}

impl AuditEntry {
    /// The deterministic CBOR encoding: the leaf data.
    pub fn to_cbor(&self) -> Result<Vec<u8>, EntryError> {
        self.check()?;
        Ok(cbor::to_vec(self)?)
    }

    /// Decodes an entry strictly.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, EntryError> {
        let e: Self = cbor::from_slice(bytes, MAX_ENTRY_BYTES, "audit entry")?;
        e.check()?;
        Ok(e)
    }

    fn check(&self) -> Result<(), EntryError> {
        if let Some(u) = &self.actor.user
            && (u.is_empty() || u.len() > 64 || u.chars().any(char::is_control))
        {
            return Err(EntryError::Invalid(
                "a user is an account name of 1 to 64 characters".into(),
            ));
        }
        if let Some(t) = &self.transition
            && (t.from.len() > 64 || t.to.len() > 64)
        {
            return Err(EntryError::Invalid(
                "a state name is at most 64 characters".into(),
            ));
        }
        Ok(())
    }
}

/// The origin of a case log: `rogatory.<agency-id>/case/<case-id>`.
pub fn case_origin(agency: &AgencyId, case: &CaseId) -> String {
    format!("rogatory.{agency}/case/{case}")
}

/// The name of an agency's checkpoint signing key: `rogatory.<agency-id>`.
pub fn log_key_name(agency: &AgencyId) -> String {
    format!("rogatory.{agency}")
}
