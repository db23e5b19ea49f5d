//! What the store worker is asked to do ([`Job`]), and what it tells the event loop
//! ([`Notice`]).

use rogatory_proto::ids::{AgencyId, CaseId, EnvelopeId, Sha256Digest};
use rogatory_proto::message::Message;
use rogatory_proto::receipt::ReceiptEvent;

use super::Responder;
pub use crate::evidence::transfer::Arrival;
use crate::store::OutboxState;

/// A message to send, as the local API takes it.
#[derive(Debug, Clone)]
pub struct SendRequest {
    /// Addressees (pinned partners).
    pub to: Vec<AgencyId>,
    /// The case.
    pub case: CaseId,
    /// The message (validated by the caller).
    pub message: Message,
    /// The local user who sends it, for the audit log.
    pub user: Option<String>,
    /// The node's own confirmation of a partner's proposal, already applied to the case
    /// (`cases::Effect::Confirm`); never set for a user's message.
    pub confirmation: bool,
    /// The officials who sign it in their own names (spec/PEOPLE.md §5): their certified role
    /// and key, opened with their token for this request only.
    pub officers: Vec<OfficerSigner>,
    /// Officials' signatures made earlier (an issuer's, before a validating authority signs).
    pub made: Vec<rogatory_proto::officer::OfficerSignature>,
    /// The message id, when it was fixed earlier (the issuer signed it).
    pub message_id: Option<rogatory_proto::ids::MessageId>,
}

/// An official who signs a message: their certified role and their key (never printed).
#[derive(Clone)]
pub struct OfficerSigner {
    /// The role they are certified with.
    pub role: rogatory_proto::keyhist::OfficerRole,
    /// Their key.
    pub key: std::sync::Arc<rogatory_proto::keys::SigningKey>,
}

impl std::fmt::Debug for OfficerSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.role.as_str(),
            hex::encode(self.key.verifying_key().id())
        )
    }
}

/// One envelope queued by a send.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Queued {
    /// The envelope id.
    pub envelope_id: EnvelopeId,
    /// The addressee.
    pub to: AgencyId,
    /// Its place in the delivery queue.
    pub order: u64,
    /// Its position in the case's chain to the addressee.
    pub sequence: u64,
}

/// A manifest sent: the queued envelope and the items it lists.
pub type ManifestSent = (Vec<Queued>, Vec<String>);

/// Work for the store worker.
pub enum Job {
    /// An envelope from a peer; `token` names the open request awaiting its receipt.
    Inbound {
        /// The request.
        token: u64,
        /// The agency the transport authenticated.
        from: AgencyId,
        /// The envelope.
        bytes: Vec<u8>,
        /// What opening it gave, when it was opened in front of the worker (`engine::open`);
        /// `None`: the worker opens it.
        opened: Option<Box<super::open::Opening>>,
    },
    /// A verified receipt for an envelope sent from here.
    Receipt {
        /// The envelope.
        id: [u8; 32],
        /// Who answered (the addressee, checked by the caller).
        by: AgencyId,
        /// The receipt bytes.
        receipt: Vec<u8>,
        /// Accepted or rejected.
        event: ReceiptEvent,
        /// The reason code of a rejection.
        reason: Option<u16>,
        /// The partner's cosignature of the checkpoint the envelope carried, if the event loop
        /// checked it.
        cosigned: super::Cosigned,
    },
    /// Raise an alert found outside any envelope's processing (two key histories for one
    /// partner, a revoked key in use).
    Alert(Box<crate::store::Alert>),
    /// Read queued envelopes for the event loop, which holds only some in memory (answered
    /// at once with [`Notice::Loaded`], outside any transaction).
    LoadQueued {
        /// Their addressee.
        to: AgencyId,
        /// Their places in the queue and ids.
        ids: Vec<(u64, [u8; 32])>,
    },
    /// Seal and queue a message.
    Send {
        /// What to send.
        request: Box<SendRequest>,
        /// Where the outcome goes (after the commit).
        reply: Responder<Vec<Queued>>,
    },
    /// Open a case before its first message.
    NewCase {
        /// The case.
        record: Box<crate::cases::CaseRecord>,
        /// The local user.
        user: Option<String>,
        /// Answered after the commit.
        reply: Responder<()>,
    },
    /// A local user tried to pass on a message its handling codes forbid passing on: log the
    /// refusal.
    Refused {
        /// The case.
        case: CaseId,
        /// The message's envelope.
        envelope: EnvelopeId,
        /// The agency it was to go to.
        to: AgencyId,
        /// The local user.
        user: Option<String>,
        /// Why.
        reason: rogatory_proto::receipt::ReasonCode,
        /// Answered after the commit.
        reply: Responder<()>,
    },
    /// Add evidence items to a case (their sealed content already moved into place).
    EvidenceAdd {
        /// The case.
        case: CaseId,
        /// The items, without ids (given here: E1, E2 … in the case).
        items: Vec<NewEvidence>,
        /// The local user.
        user: Option<String>,
        /// The item ids given, after the commit.
        reply: Responder<Vec<String>>,
    },
    /// Send the manifest of a case's staged items to a partner.
    EvidenceSend {
        /// The case.
        case: CaseId,
        /// The partner.
        to: AgencyId,
        /// The local user.
        user: Option<String>,
        /// The queued envelope and the items it lists, after the commit.
        reply: Responder<ManifestSent>,
    },
    /// A transfer's durable progress: `done` chunks of the item are synced in its partial file.
    EvidenceProgress {
        /// The case.
        case: CaseId,
        /// The item's record key.
        key: String,
        /// Chunks durable.
        done: u64,
        /// Answered after the commit.
        reply: Responder<()>,
    },
    /// An item's content arrived whole: verified (in place) or quarantined.
    EvidenceArrived {
        /// The case.
        case: CaseId,
        /// The item's record key.
        key: String,
        /// What became of it.
        outcome: Arrival,
        /// Answered after the commit.
        reply: Responder<()>,
    },
    /// A local user exports an item's content: log it before the file is written
    /// (`written: false`), then, once it is written whole and checked, extend a received item's
    /// chain of custody and tell the holder (`written: true`).
    EvidenceExported {
        /// The case.
        case: CaseId,
        /// The item's record key.
        key: String,
        /// The local user.
        user: Option<String>,
        /// The file is written, synced and matched the manifest's SHA-256.
        written: bool,
        /// Answered after the commit.
        reply: Responder<()>,
    },
    /// A local user exported the case's bundle: log it with the bundle's hash.
    BundleExported {
        /// The case.
        case: CaseId,
        /// SHA-256 of the bundle file.
        sha256: Sha256Digest,
        /// The local user.
        user: Option<String>,
        /// The auditor the content is disclosed to (`--for-auditor`).
        auditor: Option<AgencyId>,
        /// Answered after the commit.
        reply: Responder<()>,
    },
    /// A message that waits for an issuing authority's approval (spec/PEOPLE.md §6): kept as a
    /// draft, nothing sealed.
    Draft {
        /// The message, its addressees and case, and its drafter (`user`); with an issuer's
        /// signature made (`made`, `message_id`), the draft waits for a validating authority.
        request: Box<SendRequest>,
        /// Answered after the commit.
        reply: Responder<crate::store::Draft>,
    },
    /// An issuing authority approves (the draft is sealed and queued) or rejects a draft.
    Decide {
        /// The draft.
        id: Sha256Digest,
        /// Approve (`true`) or reject.
        approve: bool,
        /// Who decides.
        user: String,
        /// Why, for a rejection.
        reason: Option<String>,
        /// The approver signing the message in their own name, if they do.
        officers: Vec<OfficerSigner>,
        /// For a type that needs validation: the message id and the approver's signature made
        /// now; the draft then waits for a validating authority.
        issue: Option<
            Box<(
                rogatory_proto::ids::MessageId,
                rogatory_proto::officer::OfficerSignature,
            )>,
        >,
        /// Answered after the commit.
        reply: Responder<crate::store::Draft>,
    },
    /// A validating authority countersigns a draft waiting for validation: it is sealed and
    /// queued.
    Validate {
        /// The draft.
        id: Sha256Digest,
        /// Who validates.
        user: String,
        /// Their key.
        officer: OfficerSigner,
        /// Answered after the commit.
        reply: Responder<crate::store::Draft>,
    },
    /// A local user reads a draft's message: logged (in the node's log) before it is shown.
    DraftRead {
        /// The draft.
        id: Sha256Digest,
        /// The local user.
        user: Option<String>,
        /// Answered after the commit.
        reply: Responder<()>,
    },
    /// A local user read a message's content: log it before the content is shown.
    Access {
        /// The case.
        case: CaseId,
        /// The envelope.
        envelope: EnvelopeId,
        /// The peer it came from or went to.
        peer: AgencyId,
        /// The local user.
        user: String,
        /// Answered after the commit.
        reply: Responder<()>,
    },
}

/// An evidence item to add: its manifest entry and, for a `send` item, the name of its sealed
/// content in the evidence directory and its key.
#[derive(Debug)]
pub struct NewEvidence {
    /// The manifest entry (its `item_id` is given by the worker).
    pub item: rogatory_proto::message::EvidenceItem,
    /// The sealed content's file name and key.
    pub content: Option<(String, rogatory_proto::evidence::ContentKey)>,
}

/// What the worker tells the event loop.
#[derive(Debug)]
pub enum Notice {
    /// The answer to an inbound request: a receipt, or none (the sender will resend).
    Answer {
        /// The request.
        token: u64,
        /// The receipt, durable.
        receipt: Option<Vec<u8>>,
    },
    /// An envelope was queued for delivery (durably).
    Queued {
        /// The addressee.
        to: AgencyId,
        /// Its place in the queue.
        order: u64,
        /// The envelope's id.
        id: [u8; 32],
        /// The envelope.
        envelope: Vec<u8>,
    },
    /// Queued envelopes read for the event loop ([`Job::LoadQueued`]).
    Loaded {
        /// Their addressee.
        to: AgencyId,
        /// Place, id, and the envelope if it is still queued (`None`: settled meanwhile).
        entries: Vec<(u64, [u8; 32], Option<Vec<u8>>)>,
        /// The store could not be read: the event loop asks again later.
        failed: bool,
    },
    /// A partner's envelope is signed by an official its key history, as held here, does not
    /// name: the event loop asks the partner for its key history (spec/PEOPLE.md §5.4).
    KeysWanted {
        /// The partner.
        agency: AgencyId,
    },
    /// A partner's evidence manifest was accepted in this case: its items are to be fetched.
    EvidenceListed {
        /// The case.
        case: CaseId,
    },
    /// A receipt was recorded (`None`: it could not be, the envelope stays queued).
    Settled {
        /// The envelope.
        id: [u8; 32],
        /// Its new state.
        state: Option<OutboxState>,
    },
}
