//! Evidence items, their transfer and custody (`/v1/evidence/…`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::QueuedRow;

/// One evidence item of a case (`GET /v1/evidence/{case}`); never its key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvidenceRow {
    /// Its record key: `E1` for an item of this node, `PARTNER/E1` for a partner's.
    pub item_id: String,
    /// What it is.
    pub description: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its content.
    #[serde(default)]
    pub sha256: Option<String>,
    /// `send`, `hash-only` or `out-of-band`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub transfer: Value,
    /// `outgoing` or `incoming`.
    pub direction: String,
    /// `staged`, `announced`, `listed`, `expected`, `verified`, `quarantined`, `refused`, …
    pub state: String,
    /// The partner it goes to or comes from.
    #[serde(default)]
    pub peer: Option<String>,
    /// The manifest's envelope.
    #[serde(default)]
    pub manifest: Option<String>,
    /// Its content is held on this node.
    pub held_here: bool,
    /// Chunks of its content.
    pub chunks: u64,
    /// Chunks durable here (incoming items).
    pub chunks_done: u64,
    /// Why it was quarantined or refused.
    #[serde(default)]
    pub problem: Option<String>,
    /// When it was added or listed here.
    pub added_at: String,
    /// The local user who added it.
    #[serde(default)]
    pub added_by: Option<String>,
    /// How it was acquired (spec/EVIDENCE.md §2).
    #[schema(value_type = Object)]
    pub acquisition: Value,
    /// Its chain of custody.
    #[schema(value_type = Vec<Object>)]
    pub custody: Value,
    /// The partner's reports that extended the chain.
    pub custody_reports: Vec<CustodyReport>,
    /// Perceptual hashes.
    #[schema(value_type = Object)]
    pub perceptual_hashes: Value,
}

/// A partner's report that extended an item's chain of custody.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustodyReport {
    /// The first custody entry it added.
    pub first: usize,
    /// How many it added.
    pub count: usize,
    /// The partner.
    pub by: String,
    /// When this node received it.
    pub recorded_at: String,
    /// Its envelope.
    pub envelope_id: String,
}

/// `?wait=SECS&done=N` of `GET /v1/evidence/{case}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvidenceWait {
    /// Seconds to wait (at most 300) until no item is still expected, or until `done` chunks
    /// of the case's incoming items are durable.
    #[serde(default)]
    pub wait: u64,
    /// Answer once at least this many chunks have arrived (all items together).
    #[serde(default)]
    pub done: Option<u64>,
}

/// One item of `POST /v1/evidence/{case}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    /// The manifest entry (spec/EVIDENCE.md), its `item_id` given by the node.
    #[schema(value_type = Object)]
    pub item: Value,
    /// For a `send` item: the file in `evidence/staging/` holding its sealed content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<String>,
    /// For a `send` item: the content key it is sealed under (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_key: Option<String>,
}

/// `POST /v1/evidence/{case}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddEvidence {
    /// The items.
    pub items: Vec<AddItem>,
}

/// The answer to `POST /v1/evidence/{case}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Added {
    /// The case.
    pub case_id: String,
    /// The item ids given, in order.
    pub items: Vec<String>,
}

/// `POST /v1/evidence/{case}/send`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendEvidence {
    /// The partner.
    pub to: String,
}

/// The answer to `POST /v1/evidence/{case}/send`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ManifestSent {
    /// The case.
    pub case_id: String,
    /// The manifest's envelope.
    pub queued: Vec<QueuedRow>,
    /// The items it lists.
    pub items: Vec<String>,
}

/// `POST /v1/evidence/{case}/export`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportEvidence {
    /// The item.
    pub item: String,
    /// Where to write the content (absolute; a new file).
    #[schema(value_type = String)]
    pub out: std::path::PathBuf,
}

/// The answer to `POST /v1/evidence/{case}/export`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EvidenceExported {
    /// The case.
    pub case_id: String,
    /// The item.
    pub item_id: String,
    /// The file written.
    #[schema(value_type = String)]
    pub out: std::path::PathBuf,
    /// Its size.
    pub size: u64,
    /// Its SHA-256 (the manifest's).
    #[serde(default)]
    pub sha256: Option<String>,
}

/// `POST /v1/evidence/{case}/verify`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEvidence {
    /// One item (default: every item whose content is held here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

/// One item re-read (`POST /v1/evidence/{case}/verify`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemCheck {
    /// The item.
    pub item_id: String,
    /// Its size.
    pub size: u64,
    /// Its SHA-256 (the manifest's).
    #[serde(default)]
    pub sha256: Option<String>,
    /// Every chunk opened and the SHA-256 matched.
    pub ok: bool,
    /// What did not.
    #[serde(default)]
    pub problem: Option<String>,
}
