//! The local API's requests and answers, as the node and its clients (the command line, a
//! case-management system through a client generated from `spec/openapi.json`) both see them.
//!
//! Ids are strings: envelope ids, hashes and keys in lowercase hex, case ids as UUIDs, agency
//! ids as written on their cards; times are RFC 3339 UTC strings. Fields that may be absent
//! are left out rather than `null` unless said otherwise. Messages, manifest items and audit
//! entries are the objects spec/PROTOCOL.md defines (§5 messages, §6.1 audit entries).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Every error: a status code and one line saying what went wrong and, where it helps, what to
/// do. 400: the request is malformed; 401: no valid token; 404: no such thing; 409: it
/// conflicts with the state of the case or item; 413: the body is too large; 422: refused as
/// given; 500: the node's store failed (nothing was recorded); 503: the node is stopping.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

/// `GET /v1/proof?nonce=HEX`: the node's proof that it holds the API token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Proof {
    /// HMAC-SHA256, keyed with the SHA-256 of the token, of a fixed context and the nonce (hex).
    pub proof: String,
}

/// An official who signed a message (spec/PEOPLE.md §5).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OfficialView {
    /// Their account name at the sending agency, as its key history certifies it.
    pub name: String,
    /// `issuing-authority`, `validating-authority` or `liaison-officer`.
    pub role: String,
    /// Their key id.
    pub key_id: String,
}

/// `GET /v1/me`: who the caller is (spec/PEOPLE.md §3).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The name recorded for what the caller does (none: the node's own token with no login
    /// name given).
    pub name: Option<String>,
    /// An official's account (`false`: the node's own token).
    pub account: bool,
    /// The caller's roles.
    pub roles: Vec<crate::people::Role>,
    /// What it may do.
    pub permissions: Vec<crate::people::Permission>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// This agency.
    pub agency: String,
    /// Its libp2p peer id.
    pub peer_id: String,
    /// How many statements of this agency's key history the node runs on (spec/KEYS.md §5.3).
    #[serde(default)]
    pub key_history_statements: u64,
    /// Addresses it listens on.
    pub listening: Vec<String>,
    /// Envelopes received and not yet answered.
    pub inbound_pending: usize,
    /// Per partner.
    pub peers: Vec<PeerStatus>,
    /// Evidence items being received.
    pub evidence_active: usize,
    /// Evidence items waiting for their turn.
    pub evidence_waiting: usize,
    /// Verified receipts that waited for room in the store worker's queue since the node
    /// started (a sign the store is the bottleneck; none is ever dropped).
    pub receipts_waited: u64,
    /// Envelopes accepted here.
    pub inbox: u64,
    /// Envelopes sealed here.
    pub outbox: OutboxCounts,
}

/// Envelopes sealed here, by where they stand.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutboxCounts {
    /// Not yet settled.
    pub queued: u64,
    /// Delivered or rejected: a receipt is recorded.
    pub settled: u64,
}

/// One partner, as the sender sees it.
pub type PeerStatus = crate::net::PeerStatus;

/// One envelope accepted here (`GET /v1/inbox`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InboxRow {
    /// The envelope id.
    pub envelope_id: String,
    /// The sending agency.
    pub from: String,
    /// The case.
    pub case_id: String,
    /// The message type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The message id.
    pub message_id: String,
    /// Its position in the sender's chain for the case.
    pub sequence: u64,
    /// An emergency (risk to life or safety).
    pub emergency: bool,
    /// The order of arrival here.
    pub arrival: u64,
    /// When it was sealed, as the sender states.
    pub sent_at: String,
    /// When it was accepted here.
    pub received_at: String,
}

/// `?peer=AGENCY&key_state=STATE&failures=N&wait=SECS` of `GET /v1/status`: answered once that
/// partner's key history is in that state and it has had at least that many failed deliveries
/// (or the wait is over).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// The partner the conditions are about.
    #[serde(default)]
    pub peer: Option<String>,
    /// Its key history's state to wait for: `fresh`, `stale`, `held` or `unconfirmed`.
    #[serde(default)]
    pub key_state: Option<String>,
    /// At least this many failed deliveries to it since the last success.
    #[serde(default)]
    pub failures: Option<u32>,
    /// Seconds to wait for that (at most 300).
    #[serde(default)]
    pub wait: u64,
}

/// `?settled=N&wait=SECS` of `GET /v1/outbox`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// Answer once at least this many envelopes are settled (or the wait is over).
    #[serde(default)]
    pub settled: usize,
    /// Seconds to wait for that (at most 300).
    #[serde(default)]
    pub wait: u64,
}

/// `?wait=SECS`: how long to wait for the answer to change (at most 300).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Wait {
    /// Seconds.
    #[serde(default)]
    pub wait: u64,
}

/// One envelope sealed here (`GET /v1/outbox`, `GET /v1/outbox/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OutboxRow {
    /// The envelope id.
    pub envelope_id: String,
    /// The case.
    pub case_id: String,
    /// The addressee.
    pub to: String,
    /// When it was sealed.
    pub sealed_at: String,
    /// `queued`, `sending` (on the wire or its receipt being recorded), `waiting-for-retry`
    /// (the partner is backing off), `delivered`, `rejected` (with the receipt's reason).
    pub state: String,
    /// An emergency.
    pub emergency: bool,
    /// The addressee's receipt, once recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ReceiptView>,
    /// While waiting for a retry: seconds until it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_secs: Option<f64>,
    /// While waiting for a retry: failed attempts since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u32>,
    /// While waiting for a retry: the last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What a receipt says.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReceiptView {
    /// `accepted` or `rejected`.
    pub event: String,
    /// When the addressee received the envelope, by its clock.
    pub received_at: String,
    /// A rejection's reason code name (spec/PROTOCOL.md §6.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A rejection's detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// SHA-256 of the receipt.
    pub receipt_hash: String,
    /// Seconds from sealing to receipt, as the two clocks say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack_secs: Option<u64>,
    /// The addressee's cosignature of the checkpoint the envelope carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosignature: Option<String>,
}

/// `POST /v1/send`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    /// Addressees: pinned partners (one envelope each).
    pub to: Vec<String>,
    /// A case id (UUIDv7), or `new` to open one.
    pub case: String,
    /// The message type: `mla-request`, `mla-status`, `extradition-status`, `liaison`,
    /// `preservation-request`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The message, as spec/PROTOCOL.md §5 defines it for the type.
    #[schema(value_type = Object)]
    pub body: Value,
}

/// One envelope queued by a send.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueuedRow {
    /// The envelope id.
    pub envelope_id: String,
    /// The addressee.
    pub to: String,
    /// Its place in the delivery queue.
    pub order: u64,
    /// Its position in the case's chain to the addressee.
    pub sequence: u64,
    /// With `?wait=SECS`: where it stands when the answer was given (`delivered`, `rejected`,
    /// or still `queued` when the time ran out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl From<&crate::engine::Queued> for QueuedRow {
    fn from(q: &crate::engine::Queued) -> Self {
        Self {
            envelope_id: q.envelope_id.to_hex(),
            to: q.to.to_string(),
            order: q.order,
            sequence: q.sequence,
            state: None,
        }
    }
}

/// `POST /v1/send/batch`: messages sent as `POST /v1/send` sends each (1 to 64).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBatch {
    /// The messages, each as the body of `POST /v1/send`.
    pub messages: Vec<SendBody>,
}

/// The answer to `POST /v1/send/batch`: one result per message, in the order given.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SentBatch {
    /// The results.
    pub results: Vec<BatchResult>,
}

/// What became of one message of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchResult {
    /// The status `POST /v1/send` would have answered for it (200: sent or kept as a draft).
    pub status: u16,
    /// With 200: what was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<Sent>,
    /// Otherwise: why it was refused (nothing of it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer to `POST /v1/send`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Sent {
    /// The case (a new one's id, for `case: new`).
    pub case_id: String,
    /// The message type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The envelopes queued, one per addressee (none while the message waits for approval).
    pub queued: Vec<QueuedRow>,
    /// The draft the message was kept as, when it waits for an issuing authority's approval
    /// (spec/PEOPLE.md §6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<DraftRow>,
}

/// A draft waiting for approval, approved or rejected (spec/PEOPLE.md §6): `GET /v1/drafts`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DraftRow {
    /// The draft's id (the commitment of its audit entries).
    pub id: String,
    /// The case.
    pub case_id: String,
    /// The addressees.
    pub to: Vec<String>,
    /// The message type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Who drafted it.
    pub drafted_by: String,
    /// When (UTC).
    pub drafted_at: String,
    /// `awaiting-approval`, `awaiting-validation`, `approved` or `rejected`.
    pub state: String,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
    /// When (UTC).
    pub decided_at: Option<String>,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// The validating authority who countersigned it.
    #[serde(default)]
    pub validated_by: Option<String>,
    /// The envelopes sealed when it was approved.
    pub envelopes: Vec<String>,
}

impl From<&crate::store::Draft> for DraftRow {
    fn from(d: &crate::store::Draft) -> Self {
        use rogatory_proto::time::format_unix;
        Self {
            id: d.id.to_hex(),
            case_id: d.case_id.to_string(),
            to: d.to.iter().map(|a| a.to_string()).collect(),
            kind: d.kind.clone(),
            drafted_by: d.drafted_by.clone(),
            drafted_at: format_unix(d.drafted_at),
            state: d.state.as_str().to_string(),
            decided_by: d.decided_by.clone(),
            decided_at: d.decided_at.map(format_unix),
            reason: d.reason.clone(),
            validated_by: d.validated_by.clone(),
            envelopes: d.envelopes.iter().map(|e| e.to_hex()).collect(),
        }
    }
}

/// `GET /v1/drafts/{id}`: a draft and its message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DraftView {
    /// The draft.
    #[serde(flatten)]
    pub draft: DraftRow,
    /// The message, as JSON.
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
}

/// `POST /v1/drafts/{id}/reject`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    /// Why (shown to the drafter).
    pub reason: String,
}

/// `POST /v1/messages/{id}/forward`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    /// The partners to pass it on to.
    pub to: Vec<String>,
}

/// The answer to `POST /v1/messages/{id}/forward`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Forwarded {
    /// The case.
    pub case_id: String,
    /// The envelope passed on.
    pub forwarded: String,
    /// The envelopes queued.
    pub queued: Vec<QueuedRow>,
}

/// One message (`GET /v1/messages/{id}`): a received one with its content (that reading is
/// logged as `content-accessed`), a sent one without (it is kept only encrypted to its
/// addressee).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    /// `received` or `sent`.
    pub direction: String,
    /// The envelope id.
    pub envelope_id: String,
    /// The case.
    pub case_id: String,
    /// The sender.
    pub from: String,
    /// The addressee.
    pub to: String,
    /// Everyone the sender addressed the message to (received messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<String>>,
    /// The message type (received messages).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The message id.
    pub message_id: String,
    /// Its position in the sender's chain for the case.
    pub sequence: u64,
    /// When it was sealed (received messages: as the sender states).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    /// When it was sealed here (sent messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_at: Option<String>,
    /// Where it stands (sent messages; as in the outbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The receipt: this node's (received) or the addressee's (sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ReceiptView>,
    /// The message (received messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub content: Option<Value>,
    /// The officials who signed it in their own names, in order (received messages; spec/PEOPLE.md
    /// §5): "issued by …, validated by …".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signed_by: Vec<OfficialView>,
    /// The local user this reading was logged for (received messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessed_by: Option<String>,
    /// Why there is no content (sent messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The case's audit entries about this envelope.
    #[schema(value_type = Vec<Object>)]
    pub audit: Vec<Value>,
}

/// `POST /v1/cases`: a case opened before its first message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    /// `mla`, `extradition`, `liaison` or `preservation`.
    pub kind: String,
    /// The partner agency.
    pub to: String,
    /// This agency's own reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A case, in the list (`GET /v1/cases`) and as opened (`POST /v1/cases`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CaseSummary {
    /// The case id.
    pub case_id: String,
    /// `mla`, `extradition`, `liaison` or `preservation`.
    pub kind: String,
    /// `requesting` or `requested`.
    pub our_side: String,
    /// The partner agency.
    pub peer: String,
    /// The agreed status (MLA) or stage (extradition).
    pub status: String,
    /// When it was opened here.
    pub opened_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// This side's proposals awaiting the requested side's confirmation.
    pub pending: usize,
    /// An emergency.
    pub emergency: bool,
    /// This agency's reference.
    #[serde(default)]
    pub reference: Option<String>,
    /// Deadlines passed and not met.
    pub overdue: usize,
    /// The earliest open deadline (a date).
    #[serde(default)]
    pub next_due: Option<String>,
}

/// One case (`GET /v1/cases/{id}`): its summary, its history, its messages and deadlines.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CaseView {
    /// What the list shows.
    #[serde(flatten)]
    pub summary: CaseSummary,
    /// The updates, in the order both sides agree on.
    pub updates: Vec<UpdateRow>,
    /// This side's proposals awaiting the requested side.
    pub proposals: Vec<UpdateRow>,
    /// Proposals the requested side refused.
    pub refused: Vec<UpdateRow>,
    /// The messages of the case, sent and received, oldest first.
    pub messages: Vec<TimelineRow>,
    /// Its deadlines.
    pub deadlines: Vec<DeadlineRow>,
}

/// One update of a case's status or stage.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UpdateRow {
    /// When it was made.
    pub at: String,
    /// The agency that made it.
    pub by: String,
    /// Its side.
    pub side: String,
    /// The message that carried it.
    pub message_id: String,
    /// Its envelope.
    pub envelope_id: String,
    /// The new status (MLA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The new stage (extradition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The update as the message carried it.
    #[schema(value_type = Object)]
    pub update: Value,
    /// Why it was refused (refused proposals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One message in a case's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimelineRow {
    /// When it was received or sealed here.
    pub at: String,
    /// `received` or `sent`.
    pub direction: String,
    /// The sender.
    pub from: String,
    /// The addressee.
    pub to: String,
    /// The message type (received messages).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The envelope id.
    pub envelope_id: String,
    /// `accepted` (received here), or where a sent one stands.
    pub state: String,
    /// The addressee's receipt (sent messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ReceiptView>,
}

/// A deadline of a case.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeadlineRow {
    /// The case.
    pub case_id: String,
    /// The partner.
    pub peer: String,
    /// The rule's name.
    pub rule: String,
    /// What must happen.
    pub what: String,
    /// The legal source.
    pub source: String,
    /// The day it started.
    pub started: String,
    /// The last day allowed.
    pub due: String,
    /// The day it was met.
    #[serde(default)]
    pub met: Option<String>,
    /// Passed and not met.
    pub overdue: bool,
    /// Days left (open deadlines; negative when overdue).
    #[serde(default)]
    pub days_left: Option<i64>,
}

/// The period and threshold of `GET /v1/stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// The period's first day (`YYYY-MM-DD`) or second (`YYYY-MM-DDTHH:MM:SSZ`); default: the
    /// beginning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Its last day or second; default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Victim counts below it (and above 0) are suppressed; default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
}

/// `?within=DAYS` of `GET /v1/deadlines`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Within {
    /// Days ahead (default 7).
    #[serde(default = "seven")]
    pub within: i64,
}

fn seven() -> i64 {
    7
}

/// `POST /v1/cases/{id}/export`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportCase {
    /// The bundle file to write (absolute; a new file).
    #[schema(value_type = String)]
    pub out: std::path::PathBuf,
    /// An auditor's card file (absolute): the content is disclosed to that auditor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub for_auditor: Option<std::path::PathBuf>,
}

/// The answer to `POST /v1/cases/{id}/export`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Exported {
    /// The case.
    pub case_id: String,
    /// The bundle file written.
    #[schema(value_type = String)]
    pub out: std::path::PathBuf,
    /// Its size.
    pub bytes: usize,
    /// Its SHA-256 (logged as `bundle-exported`).
    pub sha256: String,
    /// The auditor the content is disclosed to.
    #[serde(default)]
    pub auditor: Option<String>,
    /// Audit entries in it.
    pub entries: usize,
    /// Envelopes in it.
    pub envelopes: usize,
    /// Signed checkpoints in it.
    pub checkpoints: usize,
    /// Inclusion proofs in it.
    pub proofs: usize,
    /// Envelope keys disclosed to the auditor.
    pub disclosed: usize,
}

mod audit;
mod evidence;
pub use audit::*;
pub use evidence::*;
