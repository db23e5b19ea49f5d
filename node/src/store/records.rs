//! The records the store keeps, defined beneath it: what the node knows of a case, of an
//! evidence item, of an envelope it sealed or accepted, and the alerts it raised. Plain data
//! (serde, CBOR) with the accessors that need nothing but `rogatory-proto`; what acts on them
//! lives above the store (`cases`, `evidence`, `engine`).

use rogatory_proto::case::extradition::{self, ExtraditionCase};
use rogatory_proto::case::mla::MlaCase;
use rogatory_proto::case::order::Replica;
use rogatory_proto::case::{Day, Deadline, Side, preservation};
use rogatory_proto::ids::{AgencyId, CaseId, EnvelopeId};
use rogatory_proto::message::EvidenceItem;
use serde::{Deserialize, Serialize};

/// The case id of the node's own log (UUIDv7 with a zero timestamp and zero random bits): where
/// refusals are logged when the envelope's case cannot be read.
pub const NODE_LOG: CaseId = CaseId(uuid::Uuid::from_bytes([
    0, 0, 0, 0, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 0,
]));

/// Largest stored outbox entry (an envelope plus its metadata and receipt).
pub const MAX_OUTBOX_ENTRY: usize =
    rogatory_proto::envelope::DEFAULT_MAX_ENVELOPE_BYTES + 128 * 1024;

/// Where a sent envelope stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutboxState {
    /// Sealed, logged, not yet acknowledged.
    Queued,
    /// The addressee's verified receipt says accepted.
    Delivered,
    /// The addressee's verified receipt says rejected.
    Rejected,
}

/// An envelope sealed here, kept until (and after) its receipt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxEntry {
    /// The case.
    pub case_id: CaseId,
    /// The addressee.
    pub to: AgencyId,
    /// Unix seconds at sealing.
    pub sealed_at: u64,
    /// The envelope.
    #[serde(with = "serde_bytes")]
    pub envelope: Vec<u8>,
    /// Where it stands.
    pub state: OutboxState,
    /// The verified receipt, once received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<serde_bytes::ByteBuf>,
    /// Its place in the delivery queue (entries queued by the node; `None` for envelopes
    /// sealed offline, which `rogatory deliver` hands over). Emergencies have orders below
    /// [`ROUTINE`], so they are sent before everything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u64>,
    /// An emergency (risk to life or safety): it jumps the queue.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emergency: bool,
    /// The envelope's content key, wrapped under the node's storage key ([`wrap_envelope_key`]):
    /// kept so that the content can be disclosed to an auditor later (`case export
    /// --for-auditor`). Absent for envelopes sealed before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_key: Option<serde_bytes::ByteBuf>,
}

/// The context an envelope's content key is wrapped under at rest: bound to the envelope.
fn envelope_key_context(id: &rogatory_proto::ids::EnvelopeId) -> Vec<u8> {
    let mut c = b"rogatory/envelope-key/v1\0".to_vec();
    c.extend_from_slice(&id.0);
    c
}

/// Wraps a sent envelope's content key under the node's storage key, for its outbox record.
pub fn wrap_envelope_key(
    storage: &[u8; 32],
    id: &rogatory_proto::ids::EnvelopeId,
    key: &rogatory_proto::envelope::EnvelopeKey,
) -> serde_bytes::ByteBuf {
    let k = rogatory_proto::evidence::ContentKey::from_bytes(*key.as_bytes());
    serde_bytes::ByteBuf::from(rogatory_proto::evidence::wrap_key(
        storage,
        &envelope_key_context(id),
        &k,
    ))
}

/// Unwraps what [`wrap_envelope_key`] wrapped; `None` if it does not open (another node's
/// storage key, or a damaged record).
pub fn unwrap_envelope_key(
    storage: &[u8; 32],
    id: &rogatory_proto::ids::EnvelopeId,
    wrapped: &[u8],
) -> Option<rogatory_proto::envelope::EnvelopeKey> {
    rogatory_proto::evidence::unwrap_key(storage, &envelope_key_context(id), wrapped)
        .map(|k| rogatory_proto::envelope::EnvelopeKey::from_bytes(*k.as_bytes()))
}

/// The bit that places a routine envelope after every emergency in the delivery queue.
pub const ROUTINE: u64 = 1 << 62;

/// What the inbox lists about an accepted envelope (its content stays encrypted in the
/// envelope).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Received {
    /// The case.
    pub case_id: CaseId,
    /// The sending agency.
    pub from: AgencyId,
    /// The message type.
    pub message_type: String,
    /// The message id.
    pub message_id: rogatory_proto::ids::MessageId,
    /// Unix seconds at sealing, as the sender states.
    pub sent_at: u64,
    /// Unix seconds at acceptance here.
    pub received_at: u64,
    /// Position in the sender's chain for this case.
    pub sequence: u64,
    /// An emergency (risk to life or safety).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub emergency: bool,
    /// The order of arrival among all envelopes accepted here (0, 1, 2 …), assigned when stored.
    #[serde(default)]
    pub arrival: u64,
}

/// Something a check found wrong with a partner, kept until an operator looks at it
/// (`rogatory audit alerts`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// Unix seconds when it was raised.
    pub at: u64,
    /// The partner concerned.
    pub peer: AgencyId,
    /// The case.
    pub case_id: CaseId,
    /// A short name: `forked`, `rolled-back`, `no-proof`, `unverified`, `bad-cosignature`.
    pub kind: String,
    /// What was found, for people.
    pub detail: String,
    /// The envelope that carried it (or the receipt's envelope), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope_id: Option<rogatory_proto::ids::EnvelopeId>,
}

/// What a case is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseKind {
    /// Mutual legal assistance.
    Mla,
    /// Extradition.
    Extradition,
    /// Police-to-police liaison.
    Liaison,
    /// Preservation of data.
    Preservation,
}

/// What the node keeps beside each update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateMeta {
    /// Unix seconds when this node applied it (or, for a proposal, made it).
    pub at: u64,
    /// The envelope that carried it (for a confirmed proposal, the proposal's).
    pub envelope_id: EnvelopeId,
}

/// An MLA request's updates, as this node orders them (`rogatory_proto::case::order`).
pub type MlaReplica = Replica<MlaCase, UpdateMeta>;
/// An extradition's updates.
pub type ExtraditionReplica = Replica<ExtraditionCase, UpdateMeta>;

/// A preservation request's period (Budapest Convention Art. 29).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preservation {
    /// The day it was sent (days since 1970-01-01), from the envelope's `sent_at`.
    pub requested_day: i64,
    /// The period asked for, in days.
    pub period_days: u32,
    /// The day an MLA request followed in the same case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mla_request_day: Option<i64>,
}

/// A case as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// The case.
    pub case_id: CaseId,
    /// Its kind; a preservation case becomes an MLA case when the MLA request follows.
    pub kind: CaseKind,
    /// This agency's side.
    pub our_side: Side,
    /// The partner agency: the case's other party.
    pub peer: AgencyId,
    /// Agencies copied in the case: those this node addressed besides the partner, and those
    /// the partner named as co-addressees. They may answer with liaison messages and do nothing
    /// else (spec/PROTOCOL.md §5.4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copied: Vec<AgencyId>,
    /// Unix seconds when this node first saw it.
    pub opened_at: u64,
    /// Unix seconds of the last change this node recorded.
    #[serde(default)]
    pub updated_at: u64,
    /// An emergency (risk to life or safety).
    pub emergency: bool,
    /// This agency's own reference for the case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The MLA request's status updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mla: Option<MlaReplica>,
    /// The extradition's stage updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extradition: Option<ExtraditionReplica>,
    /// The preservation period, for a case that began with a preservation request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preservation: Option<Preservation>,
}

impl CaseRecord {
    /// A new case with no updates.
    pub fn new(case_id: CaseId, kind: CaseKind, our_side: Side, peer: AgencyId, now: u64) -> Self {
        Self {
            case_id,
            kind,
            our_side,
            peer,
            copied: Vec::new(),
            opened_at: now,
            updated_at: now,
            emergency: false,
            reference: None,
            mla: None,
            extradition: None,
            preservation: None,
        }
    }

    /// The MLA state both sides agree on.
    pub fn mla(&self) -> MlaCase {
        self.mla.as_ref().map(|r| r.state()).unwrap_or_default()
    }

    /// The extradition state both sides agree on.
    pub fn extradition(&self) -> ExtraditionCase {
        self.extradition
            .as_ref()
            .map(|r| r.state())
            .unwrap_or_default()
    }

    /// The current status (MLA) or stage (extradition), by name; `open` for the other kinds.
    pub fn status(&self) -> String {
        match self.kind {
            CaseKind::Mla => self.mla().status.as_str().to_string(),
            CaseKind::Extradition => self
                .extradition()
                .stage()
                .map(|(s, _)| s.as_str().to_string())
                .unwrap_or_else(|| "opened".into()),
            CaseKind::Liaison | CaseKind::Preservation => "open".into(),
        }
    }

    /// This side's proposals the requested side has not confirmed yet.
    pub fn pending(&self) -> usize {
        self.mla.as_ref().map_or(0, |r| r.pending.len())
            + self.extradition.as_ref().map_or(0, |r| r.pending.len())
    }

    /// The case's deadlines: an extradition's under the default (ECE) rules, and a preservation
    /// period.
    pub fn deadlines(&self) -> Vec<Deadline> {
        let mut out = Vec::new();
        if let Some(p) = &self.preservation {
            out.push(preservation::deadline(
                Day(p.requested_day),
                p.period_days,
                p.mla_request_day.map(Day),
            ));
        }
        if self.extradition.is_some() {
            out.extend(self.extradition().deadlines(extradition::ECE));
        }
        out
    }

    /// Open deadlines past due on `today`.
    pub fn overdue(&self, today: Day) -> usize {
        self.deadlines().iter().filter(|d| d.overdue(today)).count()
    }
}

/// Where an item stands on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceState {
    /// Added here; its manifest has not been sent yet.
    Staged,
    /// Its manifest was sent (`manifest` names the envelope).
    Announced,
    /// Listed in a manifest received here; its content is to come over the network.
    Expected,
    /// Listed in a manifest received here; its content does not travel (hash-only, out of band).
    Listed,
    /// Its content arrived and matched the manifest's SHA-256 (for an item handed over from
    /// here: the partner reported so).
    Verified,
    /// Its content arrived but did not match the manifest (see `problem`); kept apart in
    /// `evidence/quarantine/`, never counted as received (for an item handed over from here: the
    /// partner reported so).
    Quarantined,
    /// Listed to be fetched, and refused by the receiving node (a quota, the free disk space;
    /// see `problem`): its content did not travel (for an item handed over from here: the
    /// partner reported so).
    Refused,
}

impl EvidenceState {
    /// The text form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Staged => "staged",
            Self::Announced => "announced",
            Self::Expected => "expected",
            Self::Listed => "listed",
            Self::Verified => "verified",
            Self::Quarantined => "quarantined",
            Self::Refused => "refused",
        }
    }
}

/// One evidence item as this node keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// The case.
    pub case_id: CaseId,
    /// The item as the manifest lists it (never with its content key).
    pub item: EvidenceItem,
    /// Added on this node to be handed over (`true`), or listed by a partner's manifest.
    pub outgoing: bool,
    /// Where it stands.
    pub state: EvidenceState,
    /// The partner it went to or came from, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<AgencyId>,
    /// The envelope that carried its manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<EnvelopeId>,
    /// The file of its sealed content in the evidence directory, once held here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
    /// The content key, wrapped under the node's storage key (context: the case and the item id).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub wrapped_key: Option<Vec<u8>>,
    /// Chunks of an expected item received, synced and recorded: the transfer resumes there.
    #[serde(default)]
    pub chunks_done: u64,
    /// Why it was quarantined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Unix seconds when it was added or listed here.
    pub added_at: u64,
    /// The local user who added it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by: Option<String>,
    /// Unix seconds when its manifest was sealed here (an item handed over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced_at: Option<u64>,
    /// The partner's reports that extended its chain of custody, each with the time this node
    /// received it (an item handed over).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<Reported>,
}

/// Custody entries a partner reported (spec/EVIDENCE.md §6), as the holder recorded them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported {
    /// The index of the first of them in the item's chain of custody.
    pub first: usize,
    /// How many.
    pub count: usize,
    /// The partner that reported them.
    pub by: AgencyId,
    /// Unix seconds when this node received the report (its own clock, beside the partner's).
    pub recorded_at: u64,
    /// The `evidence-status` envelope that carried them.
    pub envelope: EnvelopeId,
}

impl EvidenceRecord {
    /// Its key in the `evidence` table: the item id for an item added here, the partner's id
    /// and the item id for one a partner listed (item ids are unique per sender and case).
    pub fn key(&self) -> String {
        match (&self.peer, self.outgoing) {
            (Some(p), false) => format!("{p}/{}", self.item.item_id),
            _ => self.item.item_id.clone(),
        }
    }
}

/// Where a draft stands (spec/PEOPLE.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DraftState {
    /// Waits for an issuing authority.
    AwaitingApproval,
    /// Approved: sealed and queued.
    Approved,
    /// Rejected: never sent.
    Rejected,
    /// Approved and signed by an issuing authority; waits for a validating authority's
    /// countersignature before it is sealed.
    AwaitingValidation,
}

impl DraftState {
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            DraftState::AwaitingApproval => "awaiting-approval",
            DraftState::Approved => "approved",
            DraftState::Rejected => "rejected",
            DraftState::AwaitingValidation => "awaiting-validation",
        }
    }
}

/// A message drafted by an official that waits for an issuing authority's approval before the
/// node seals it (spec/PEOPLE.md §6). Kept sealed at rest, like the case records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// Its id: the commitment its audit entries carry.
    pub id: rogatory_proto::ids::Sha256Digest,
    /// The case (a new case's id is fixed when it is drafted).
    pub case_id: CaseId,
    /// The addressees.
    pub to: Vec<AgencyId>,
    /// The message type.
    pub kind: String,
    /// The message, as its deterministic CBOR.
    #[serde(with = "serde_bytes")]
    pub message: Vec<u8>,
    /// Who drafted it (an account name).
    pub drafted_by: String,
    /// When (Unix seconds).
    pub drafted_at: u64,
    /// Where it stands.
    pub state: DraftState,
    /// Who approved or rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<u64>,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The envelopes sealed when it was approved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub envelopes: Vec<EnvelopeId>,
    /// The message id its issuer signed, once an issuer signed it (awaiting validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<rogatory_proto::ids::MessageId>,
    /// The issuer's signature (awaiting validation): role, key id, signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<IssuerSignature>,
    /// The validating authority who countersigned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated_by: Option<String>,
}

/// An issuer's signature kept with a draft until a validating authority countersigns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerSignature {
    /// `issuing-authority` or `liaison-officer`.
    pub role: String,
    /// The issuer's key id.
    #[serde(with = "serde_bytes")]
    pub kid: Vec<u8>,
    /// The signature.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl IssuerSignature {
    /// As the envelope carries it.
    pub fn to_signature(&self) -> Option<rogatory_proto::officer::OfficerSignature> {
        use rogatory_proto::keyhist::OfficerRole;
        Some(rogatory_proto::officer::OfficerSignature {
            role: match self.role.as_str() {
                "issuing-authority" => OfficerRole::IssuingAuthority,
                "liaison-officer" => OfficerRole::LiaisonOfficer,
                _ => return None,
            },
            kid: self.kid.as_slice().try_into().ok()?,
            signature: self.signature.as_slice().try_into().ok()?,
        })
    }

    /// What an envelope carries, kept.
    pub fn of(s: &rogatory_proto::officer::OfficerSignature) -> Self {
        Self {
            role: s.role.as_str().to_string(),
            kid: s.kid.to_vec(),
            signature: s.signature.to_vec(),
        }
    }
}
