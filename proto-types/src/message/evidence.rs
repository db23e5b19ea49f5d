//! Evidence manifests: what is handed over, how it travels, and its chain of custody.

use serde::{Deserialize, Serialize};

use super::{Handling, Problems};
use crate::ids::{MessageId, Sha256Digest};

/// How an item's content reaches the requesting side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferMode {
    /// Encrypted through the node over `/rogatory/evidence/1`.
    Send,
    /// Delivered out of band (courier, diplomatic bag); only the hash travels here.
    OutOfBand,
    /// Never leaves the holding state (e.g. child sexual abuse material): only hashes travel,
    /// so the recipient can match them against its own holdings.
    HashOnly,
}

/// How and when an item was acquired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Acquisition {
    /// Method, e.g. "production order to provider", "forensic image".
    pub method: String,
    /// From whom or where it was seized or obtained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seized_from: Option<String>,
    /// When (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seized_at: Option<String>,
    /// By whom (officer, unit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acquired_by: Option<String>,
    /// Tool and version used, for images and extractions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
}

/// One entry in an item's chain of custody.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CustodyEntry {
    /// When (UTC).
    pub at: String,
    /// Who (person, unit or agency).
    pub actor: String,
    /// What happened: seized, sealed, imaged, stored, transferred, received, verified …
    pub action: String,
    /// Remarks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A perceptual hash supplied by the holder (e.g. PhotoDNA, PDQ), as text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PerceptualHash {
    /// Algorithm name.
    pub algorithm: String,
    /// Value, in the algorithm's usual text form.
    pub value: String,
}

/// Details of an out-of-band delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutOfBandDelivery {
    /// How it travels, e.g. "courier", "diplomatic bag".
    pub carrier: String,
    /// Tracking or seal reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// One item of evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvidenceItem {
    /// Item id, unique within the manifest.
    pub item_id: String,
    /// What it is.
    pub description: String,
    /// Media type of the content.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the plaintext content.
    pub sha256: Option<Sha256Digest>,
    /// How the content travels.
    pub transfer: Option<TransferMode>,
    /// Acquisition.
    pub acquisition: Acquisition,
    /// Chain of custody, oldest first.
    pub custody: Vec<CustodyEntry>,
    /// Handling restrictions for this item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handling: Option<Handling>,
    /// Perceptual hashes (hash-only items, typically).
    pub perceptual_hashes: Vec<PerceptualHash>,
    /// Content key for `send` items (set by the sending node; travels only inside the
    /// encrypted envelope).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "serde_bytes_opt32",
        default
    )]
    pub content_key: Option<[u8; 32]>,
    /// Out-of-band delivery details (with `out-of-band`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_of_band: Option<OutOfBandDelivery>,
}

/// An evidence manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvidenceManifest {
    /// The request this answers, by message id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<MessageId>,
    /// The items (at least one).
    pub items: Vec<EvidenceItem>,
    /// Remarks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl EvidenceManifest {
    pub(crate) fn check(&self, p: &mut Problems) {
        if self.items.is_empty() {
            p.push("items", "the manifest lists no item");
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, it) in self.items.iter().enumerate() {
            let f = format!("items[{i}]");
            p.text(&format!("{f}.item_id"), &it.item_id, "the item has no id");
            if !it.item_id.is_empty() && !ids.insert(it.item_id.as_str()) {
                p.push(&format!("{f}.item_id"), "two items share this id");
            }
            p.text(
                &format!("{f}.description"),
                &it.description,
                "describe the item",
            );
            p.text(
                &format!("{f}.media_type"),
                &it.media_type,
                "the media type is missing",
            );
            if it.sha256.is_none() {
                p.push(
                    &format!("{f}.sha256"),
                    "the SHA-256 of the content is missing",
                );
            }
            p.text(
                &format!("{f}.acquisition.method"),
                &it.acquisition.method,
                "say how the item was acquired",
            );
            p.opt_datetime(
                &format!("{f}.acquisition.seized_at"),
                &it.acquisition.seized_at,
            );
            check_custody(p, &f, &it.custody);
            if let Some(h) = &it.handling {
                p.handling(&format!("{f}.handling"), h);
            }
            for (j, ph) in it.perceptual_hashes.iter().enumerate() {
                p.text(
                    &format!("{f}.perceptual_hashes[{j}].algorithm"),
                    &ph.algorithm,
                    "name the algorithm",
                );
                p.text(
                    &format!("{f}.perceptual_hashes[{j}].value"),
                    &ph.value,
                    "the value is missing",
                );
            }
            match it.transfer {
                None => p.push(
                    &format!("{f}.transfer"),
                    "choose how the content travels: send, out-of-band or hash-only",
                ),
                Some(TransferMode::Send) => {
                    if it.out_of_band.is_some() {
                        p.push(
                            &format!("{f}.out_of_band"),
                            "only out-of-band items carry delivery details",
                        );
                    }
                }
                Some(TransferMode::OutOfBand) => {
                    if it.content_key.is_some() {
                        p.push(
                            &format!("{f}.content_key"),
                            "only items sent through the node carry a content key",
                        );
                    }
                    match &it.out_of_band {
                        None => {
                            p.push(&format!("{f}.out_of_band"), "say how the item is delivered")
                        }
                        Some(d) => p.text(
                            &format!("{f}.out_of_band.carrier"),
                            &d.carrier,
                            "say who carries the item",
                        ),
                    }
                }
                Some(TransferMode::HashOnly) => {
                    if it.content_key.is_some() {
                        p.push(&format!("{f}.content_key"), "a hash-only item's content never leaves the node, so it has no content key");
                    }
                    if it.out_of_band.is_some() {
                        p.push(
                            &format!("{f}.out_of_band"),
                            "a hash-only item is not delivered at all",
                        );
                    }
                }
            }
        }
    }
}

/// What became of an item on the receiving side, as reported to the holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemState {
    /// Its content arrived whole and matched the manifest's SHA-256.
    Verified,
    /// Its content arrived but did not match the manifest; kept apart, never counted as received.
    Quarantined,
    /// A local user of the receiving side decrypted it to a file.
    Exported,
    /// The receiving node refused to fetch it (a quota, the free disk space); `problem` says
    /// why. Its content never travelled.
    Refused,
}

impl ItemState {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Quarantined => "quarantined",
            Self::Exported => "exported",
            Self::Refused => "refused",
        }
    }
}

/// One item's news in an [`EvidenceStatus`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ItemStatus {
    /// The item id, as the holder's manifest gave it.
    pub item_id: String,
    /// The manifest's SHA-256 of the item: the report is about that content.
    pub sha256: Option<Sha256Digest>,
    /// What became of it.
    pub state: Option<ItemState>,
    /// The custody entries the receiving side added, oldest first (at least one): the holder
    /// appends them to the item's chain of custody.
    pub custody: Vec<CustodyEntry>,
    /// Why it was quarantined (with `quarantined` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The receiving node's report to the holder on items of its manifests: arrived and verified,
/// quarantined, exported. Written by the node, never by a user (spec/EVIDENCE.md §6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvidenceStatus {
    /// The items reported on (at least one).
    pub items: Vec<ItemStatus>,
}

impl EvidenceStatus {
    pub(crate) fn check(&self, p: &mut Problems) {
        if self.items.is_empty() {
            p.push("items", "the report names no item");
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, it) in self.items.iter().enumerate() {
            let f = format!("items[{i}]");
            p.text(&format!("{f}.item_id"), &it.item_id, "the item has no id");
            if !it.item_id.is_empty() && !ids.insert(it.item_id.as_str()) {
                p.push(&format!("{f}.item_id"), "the report names this item twice");
            }
            if it.sha256.is_none() {
                p.push(&format!("{f}.sha256"), "the SHA-256 of the item is missing");
            }
            if it.custody.is_empty() {
                p.push(&format!("{f}.custody"), "the report adds no custody entry");
            }
            check_custody(p, &f, &it.custody);
            match it.state {
                None => p.push(
                    &format!("{f}.state"),
                    "say what became of the item: verified, quarantined, exported or refused",
                ),
                Some(s @ (ItemState::Quarantined | ItemState::Refused)) => {
                    let why = format!("say why the item was {}", s.as_str());
                    match &it.problem {
                        None => p.push(&format!("{f}.problem"), &why),
                        Some(t) => p.text(&format!("{f}.problem"), t, &why),
                    }
                }
                Some(_) => {
                    if it.problem.is_some() {
                        p.push(
                            &format!("{f}.problem"),
                            "only a quarantined or refused item has a problem",
                        );
                    }
                }
            }
        }
    }
}

/// The rules of a chain of custody (or a part of one): complete entries, in time order.
fn check_custody(p: &mut Problems, f: &str, custody: &[CustodyEntry]) {
    for (j, c) in custody.iter().enumerate() {
        let g = format!("{f}.custody[{j}]");
        p.datetime(&format!("{g}.at"), &c.at);
        p.text(&format!("{g}.actor"), &c.actor, "who handled the item");
        p.text(&format!("{g}.action"), &c.action, "what was done");
    }
    if custody.windows(2).any(|w| w[0].at > w[1].at) {
        p.push(
            &format!("{f}.custody"),
            "custody entries must be in time order",
        );
    }
}

mod serde_bytes_opt32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(k) if s.is_human_readable() => s.serialize_str(&hex::encode(k)),
            Some(k) => s.serialize_bytes(k),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 32]>, D::Error> {
        let bytes = if d.is_human_readable() {
            let s = String::deserialize(d)?;
            hex::decode(s).map_err(serde::de::Error::custom)?
        } else {
            serde_bytes::ByteBuf::deserialize(d)?.into_vec()
        };
        bytes
            .try_into()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("a content key is 32 bytes"))
    }
}
