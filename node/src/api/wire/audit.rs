//! Audit logs, proofs, store checks, alerts and keys (`/v1/audit/…`, `/v1/alerts`, `/v1/keys/…`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// An alert raised on this node (spec/PROTOCOL.md §6.6).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlertRow {
    /// Its number, in order of raising.
    pub number: u64,
    /// When it was raised.
    pub at: String,
    /// The partner concerned.
    pub peer: String,
    /// The case (the node's own log for alerts about no case).
    pub case_id: String,
    /// What kind: `fork`, `rollback`, `cosignature`, `refusal-flood`, …
    pub kind: String,
    /// What was found.
    pub detail: String,
    /// The envelope concerned.
    #[serde(default)]
    pub envelope_id: Option<String>,
}

impl AlertRow {
    /// An alert as the API shows it.
    pub fn new(number: u64, a: &crate::store::Alert) -> Self {
        Self {
            number,
            at: rogatory_proto::time::format_unix(a.at),
            peer: a.peer.to_string(),
            case_id: a.case_id.to_string(),
            kind: a.kind.clone(),
            detail: a.detail.clone(),
            envelope_id: a.envelope_id.map(|e| e.to_hex()),
        }
    }
}

/// One entry of a case's audit log (`GET /v1/audit/{case}/log`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogEntry {
    /// The entry (spec/PROTOCOL.md §6.1).
    #[schema(value_type = Object)]
    pub entry: Value,
    /// Its leaf hash in the log's Merkle tree (hex).
    pub leaf_hash: String,
}

/// `?size=N`: a tree size of a case's log (default: the latest).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Size {
    /// The tree size.
    #[serde(default)]
    pub size: Option<u64>,
}

/// A signed checkpoint (C2SP signed note), byte for byte.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckpointText {
    /// The note.
    pub note: String,
}

/// `?index=N&size=M` of `GET /v1/audit/{case}/prove`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProveQuery {
    /// The entry's index.
    pub index: u64,
    /// The tree size to prove against (default: the latest).
    #[serde(default)]
    pub size: Option<u64>,
}

/// A c2sp.org/tlog-proof@v1 proof.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProofText {
    /// The proof, as text.
    pub proof: String,
}

/// `?from=A&to=B` of `GET /v1/audit/{case}/consistency`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older size.
    pub from: u64,
    /// The newer size (default: the latest).
    #[serde(default)]
    pub to: Option<u64>,
}

/// A consistency proof between two sizes of a case's log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Consistency {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The proof's hashes (base64).
    pub hashes: Vec<String>,
    /// The signed checkpoint of the newer size.
    pub checkpoint: String,
}

/// `POST /v1/audit/verify-store`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyStore {
    /// The agency's checkpoint verifier key (C2SP note verifier), obtained independently.
    pub vkey: String,
    /// Verifier keys of the agency's earlier signing keys (after rotations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<String>,
}

/// What `verify-store` found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoreReport {
    /// Case logs re-derived.
    pub cases: usize,
    /// Entries re-derived.
    pub entries: u64,
    /// Signed checkpoints verified.
    pub checkpoints: u64,
    /// Sealed records checked.
    pub records: u64,
    /// What is wrong (nothing, for an intact store).
    pub findings: Vec<Finding>,
}

/// One problem `verify-store` found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    /// The case (or the table, for a sealed record).
    pub case: String,
    /// The entry, if about one.
    #[serde(default)]
    pub entry: Option<u64>,
    /// What is wrong.
    pub problem: String,
}

/// What `POST /v1/keys/reload` did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Reload {
    /// Statements of the agency's key history the node restarts on.
    pub statements: u64,
}

/// `?count=N&wait=SECS` of `GET /v1/alerts`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Answer once at least this many alerts are raised (or the wait is over).
    #[serde(default)]
    pub count: usize,
    /// Seconds to wait for that (at most 300).
    #[serde(default)]
    pub wait: u64,
    /// Only alerts of this kind (e.g. `key-history-split`), counted and answered.
    #[serde(default)]
    pub kind: Option<String>,
}

/// `POST /v1/backup`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// Where the node writes the backup: an absolute path, not inside the data directory, that
    /// does not exist yet.
    pub out: String,
}

/// A backup written (spec/BACKUP.md).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupReport {
    /// The file.
    pub file: String,
    /// When the store was copied: the backup holds the node as of then.
    pub taken_at: String,
    /// How many files it holds (the store among them).
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The store's size in it.
    pub store_bytes: u64,
    /// How long writing it took, in milliseconds.
    pub millis: u64,
}

impl BackupReport {
    /// The report of a backup written to `file` with manifest `m` in `took`.
    pub fn of(file: &str, m: &crate::store::backup::Manifest, took: std::time::Duration) -> Self {
        Self {
            file: file.to_string(),
            taken_at: rogatory_proto::time::format_unix(m.taken_at),
            files: m.files.len(),
            bytes: m.files.iter().map(|f| f.bytes).sum(),
            store_bytes: m
                .files
                .iter()
                .find(|f| f.path == crate::store::STORE_FILE)
                .map_or(0, |f| f.bytes),
            millis: took.as_millis() as u64,
        }
    }
}
