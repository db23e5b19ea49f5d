//! Partners witnessing each other's key histories (spec/KEYS.md §7.8).
//!
//! A node that takes a partner's freshness note cosigns its checkpoint and gives the
//! cosignature back; the partner keeps the latest of each witness (`key-witnesses/<ID>.note`)
//! and serves them with its history. A node also shows its own cosignatures of its partners'
//! key logs to each partner that asks. Whoever reads a cosignature compares its checkpoint with
//! the history of that agency it holds: one that names another history means that the agency
//! showed two partners two histories (a split view), which is raised as an alert. What each
//! witness saw is kept in `peers/<ID>.witnessed`, for the directory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rogatory_proto::ids::AgencyId;
use rogatory_proto::keyhist::fresh::{
    Agreement, KeyLogView, MAX_KEY_LOG_NOTE_BYTES, MAX_KEY_LOG_NOTES, key_log_note_parties,
    verify_key_log_note,
};
use rogatory_proto::keyhist::{KeyHistory, KeyHistoryError};

use super::{Partners, Refused, Trust};
use crate::keydir;

/// Where this node keeps its partners' cosignatures of its own key log.
pub const WITNESSES_DIR: &str = "key-witnesses";

/// What partners saw of one agency's key log, by partner.
pub(super) type Views = BTreeMap<AgencyId, Witnessed>;

/// What one partner saw of an agency's key log.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Witnessed {
    /// The partner.
    pub witness: String,
    /// How many statements of the history it saw.
    pub statements: u64,
    /// When it cosigned that.
    pub at: u64,
}

fn views_path(dir: &Path, id: &AgencyId) -> PathBuf {
    dir.join(keydir::PEERS_DIR).join(format!("{id}.witnessed"))
}

/// What was kept of the partners' views of each other.
pub(super) fn load(dir: &Path, partners: &Partners) -> HashMap<AgencyId, Views> {
    let mut out = HashMap::new();
    for id in partners.keys() {
        let Ok(bytes) = crate::files::read_limited(&views_path(dir, id), 256 * 1024) else {
            continue;
        };
        match serde_json::from_slice::<Vec<Witnessed>>(&bytes) {
            Ok(list) => {
                let views = list
                    .into_iter()
                    .filter_map(|w| Some((AgencyId::new(&w.witness).ok()?, w)))
                    .collect();
                out.insert(id.clone(), views);
            }
            Err(e) => tracing::warn!(partner = %id, "its witnesses' views are not readable: {e}"),
        }
    }
    out
}

fn future(at: u64) -> bool {
    at > rogatory_proto::time::now_unix().saturating_add(300)
}

impl Trust {
    /// A cosignature of an agency's key log shown by partner `via`: one of `via`'s own, or one
    /// of `via`'s key log by one of its witnesses. Verified with
    /// the signer's keys, compared with `owner`'s history as held, and, if it agrees, kept as
    /// what the witness saw. A view that names another history ([`Agreement::Split`]) is returned
    /// for the caller to raise. Blocking: it may write a file.
    pub fn observe(&self, via: &AgencyId, note: &[u8]) -> Result<KeyLogView, Refused> {
        let (owner, signer) = key_log_note_parties(note).ok_or_else(|| {
            Refused::Invalid(KeyHistoryError::Invalid(
                "not a note of a key log (origin rogatory.<agency>/keys, one signature line)"
                    .into(),
            ))
        })?;
        // A witness shows its own cosignatures; an agency serves its witnesses' ones.
        if signer == owner || (signer != *via && owner != *via) {
            return Err(Refused::NotPinned(format!(
                "{via} showed a note of {owner}'s key log signed by {signer}: neither its own cosignature nor one of its own key log"
            )));
        }
        let current = self.snapshot();
        let (Some(o), Some(s)) = (current.get(&owner), current.get(&signer)) else {
            return Err(Refused::NotPinned(format!(
                "a note of {owner}'s key log signed by {signer}: not both pinned here"
            )));
        };
        let view = verify_key_log_note(o, s, note)?;
        if future(view.at) {
            return Err(Refused::Invalid(KeyHistoryError::Invalid(format!(
                "a note of {owner}'s key log signed by {signer} is dated in the future"
            ))));
        }
        if matches!(view.agreement, Agreement::Same | Agreement::Prefix) {
            self.keep_view(&owner, &signer, &view)
                .map_err(Refused::Store)?;
        }
        Ok(view)
    }

    fn keep_view(&self, owner: &AgencyId, via: &AgencyId, view: &KeyLogView) -> anyhow::Result<()> {
        let _writing = self.writing.lock();
        let mut all = match self.witnessed.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let views = all.entry(owner.clone()).or_default();
        if views
            .get(via)
            .is_some_and(|w| (w.statements, w.at) >= (view.size, view.at))
        {
            return Ok(());
        }
        views.insert(
            via.clone(),
            Witnessed {
                witness: via.to_string(),
                statements: view.size,
                at: view.at,
            },
        );
        if let Some(dir) = &self.dir {
            let list: Vec<&Witnessed> = views.values().collect();
            crate::files::write_atomic(
                &views_path(dir, owner),
                serde_json::to_string(&list)?.as_bytes(),
                false,
                true,
            )?;
        }
        Ok(())
    }

    /// What partners saw of `id`'s key log.
    pub fn witnessed(&self, id: &AgencyId) -> Vec<Witnessed> {
        self.witnessed
            .read()
            .ok()
            .and_then(|w| w.get(id).map(|v| v.values().cloned().collect()))
            .unwrap_or_default()
    }

    /// A partner's cosignature of this node's own key log (`own`): verified with the
    /// partner's keys and kept (`key-witnesses/<ID>.note`) if it names `own` or an earlier
    /// part of it and is newer than the one held from that partner. A cosignature of another
    /// history is returned as [`Agreement::Split`] (and not kept): someone showed that partner
    /// a key history of this agency that is not this node's. Blocking: it writes a file.
    pub fn witness_own(
        &self,
        own: &KeyHistory,
        witness: &AgencyId,
        note: &[u8],
    ) -> Result<KeyLogView, Refused> {
        let current = self.snapshot();
        let w = current
            .get(witness)
            .ok_or_else(|| Refused::NotPinned(format!("{witness} is not a pinned partner")))?;
        let view = verify_key_log_note(own, w, note)?;
        if future(view.at) {
            return Err(Refused::Invalid(KeyHistoryError::Invalid(format!(
                "the cosignature of this agency's key log by {witness} is dated in the future"
            ))));
        }
        if !matches!(view.agreement, Agreement::Same | Agreement::Prefix) {
            return Ok(view);
        }
        let Some(dir) = &self.dir else {
            return Ok(view);
        };
        let _writing = self.writing.lock();
        let path = dir.join(WITNESSES_DIR).join(format!("{witness}.note"));
        let held = crate::files::read_limited(&path, MAX_KEY_LOG_NOTE_BYTES as u64)
            .ok()
            .and_then(|b| verify_key_log_note(own, w, &b).ok());
        if held.is_some_and(|h| (h.size, h.at) >= (view.size, view.at)) {
            return Ok(view);
        }
        std::fs::create_dir_all(dir.join(WITNESSES_DIR))
            .map_err(|e| Refused::Store(anyhow::anyhow!("cannot create {WITNESSES_DIR}/: {e}")))?;
        crate::files::write_atomic(&path, note, false, true).map_err(Refused::Store)?;
        Ok(view)
    }
}

/// The partners' cosignatures of this node's own key log (`own`) kept in `dir`, each verified
/// with the partner's keys as `trust` holds them (those that no longer verify are left out),
/// the latest first, at most [`MAX_KEY_LOG_NOTES`].
pub fn own_witness_notes(
    dir: &Path,
    own: &KeyHistory,
    trust: &Trust,
) -> Vec<(Vec<u8>, KeyLogView)> {
    let Ok(entries) = std::fs::read_dir(dir.join(WITNESSES_DIR)) else {
        return Vec::new();
    };
    let partners = trust.snapshot();
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Some(id) = e
            .file_name()
            .to_str()
            .and_then(|n| n.strip_suffix(".note"))
            .and_then(|n| AgencyId::new(n).ok())
        else {
            continue;
        };
        let (Some(w), Ok(bytes)) = (
            partners.get(&id),
            crate::files::read_limited(&e.path(), MAX_KEY_LOG_NOTE_BYTES as u64),
        ) else {
            continue;
        };
        match verify_key_log_note(own, w, &bytes) {
            Ok(v) if matches!(v.agreement, Agreement::Same | Agreement::Prefix) => {
                out.push((bytes, v))
            }
            Ok(_) | Err(_) => {
                tracing::warn!(witness = %id, "a kept cosignature of this agency's key log no longer verifies; not served")
            }
        }
    }
    out.sort_by_key(|(_, v)| std::cmp::Reverse(v.at));
    out.truncate(MAX_KEY_LOG_NOTES);
    out
}
