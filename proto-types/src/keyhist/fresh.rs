//! Freshness of a key history (spec/KEYS.md §7.6).
//!
//! A key history is also a C2SP log: origin `rogatory.<agency>/keys`, one leaf per statement
//! (its payload), so a checkpoint names the whole history by its size and root. An agency's
//! node says, again and again (at start and every few hours), "this is my key history now":
//! that checkpoint with a C2SP `cosignature/v1` line by its current signing key, whose
//! timestamp is the time it said so. A partner that last heard it long ago knows its copy may
//! be stale (a revocation it has not heard of): it flags the partner, then holds what it sends
//! it, as an X-Road security server does past its directory's expiry.

use crate::audit::entry::log_key_name;
use crate::audit::merkle::MemoryTree;
use crate::audit::note::{Checkpoint, Note};
use crate::audit::witness::{cosign, verify_cosignature, witness_verifier};
use crate::ids::AgencyId;
use crate::keys::SigningKey;

use super::statement;
use super::{KeyHistory, KeyHistoryError};

/// Largest freshness note read.
pub const MAX_FRESH_BYTES: usize = 4 * 1024;

/// The origin of an agency's key history as a log.
pub fn key_log_origin(agency: &AgencyId) -> String {
    format!("rogatory.{agency}/keys")
}

impl KeyHistory {
    /// The history as a C2SP log checkpoint: one leaf per statement, its payload.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut tree = MemoryTree::new();
        for s in self.statements() {
            // Every held statement parsed when it was applied.
            if let Ok(p) = statement::parse(s) {
                tree.push(&p.payload);
            }
        }
        Checkpoint {
            origin: key_log_origin(self.agency()),
            size: tree.size(),
            root: tree.root(),
            extensions: Vec::new(),
        }
    }
}

/// The agency's freshness note of `h` at `time`: the checkpoint, and a cosignature/v1 line by
/// `key` (the current card's signing key) under the agency's key name.
pub fn sign_fresh(h: &KeyHistory, key: &SigningKey, time: u64) -> Result<Vec<u8>, KeyHistoryError> {
    if key.verifying_key() != h.current_card().signing_key() {
        return Err(KeyHistoryError::Invalid(
            "a freshness note is signed with the current card's signing key".into(),
        ));
    }
    let body = h.checkpoint().body();
    let line = cosign(&body, &log_key_name(h.agency()), key, time)
        .map_err(|e| KeyHistoryError::Invalid(e.to_string()))?;
    Ok(format!("{body}\n{line}").into_bytes())
}

/// Checks a freshness note against `h` (the partner's history as held, after taking up what it
/// sent): it names exactly that history and is signed by its current signing key. Returns the
/// time it was made.
pub fn verify_fresh(h: &KeyHistory, note: &[u8]) -> Result<u64, KeyHistoryError> {
    let bad =
        |m: String| KeyHistoryError::Invalid(format!("freshness note of {}: {m}", h.agency()));
    if note.len() > MAX_FRESH_BYTES {
        return Err(bad("larger than 4 KiB".into()));
    }
    let n = Note::parse(note).map_err(|e| bad(e.to_string()))?;
    let cp = Checkpoint::parse(n.text()).map_err(|e| bad(e.to_string()))?;
    let want = h.checkpoint();
    if cp.origin != want.origin || cp.size != want.size || cp.root != want.root {
        return Err(bad(format!(
            "it names {} statements with another root than the history held ({})",
            cp.size, want.size
        )));
    }
    if n.signatures().len() != 1 {
        return Err(bad("exactly one signature line".into()));
    }
    let w = witness_verifier(&log_key_name(h.agency()), h.current_card().signing_key())
        .map_err(|e| bad(e.to_string()))?;
    let text = n.to_text();
    let line = &text[n.text().len() + 1..];
    verify_cosignature(n.text(), line, &w).map_err(|e| bad(e.to_string()))
}
