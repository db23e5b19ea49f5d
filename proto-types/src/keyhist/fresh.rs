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
        self.checkpoint_of(self.statements())
    }

    /// The checkpoint of the history's first `size` statements (`None` if it has fewer).
    pub fn checkpoint_at(&self, size: u64) -> Option<Checkpoint> {
        let size = usize::try_from(size).ok()?;
        self.statements().get(..size).map(|s| self.checkpoint_of(s))
    }

    fn checkpoint_of(&self, statements: &[Vec<u8>]) -> Checkpoint {
        let mut tree = MemoryTree::new();
        for s in statements {
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

/// Largest note about another agency's key log read (a witness's cosignature, or a partner's
/// freshness note relayed): a checkpoint and one signature line.
pub const MAX_KEY_LOG_NOTE_BYTES: usize = 1024;
/// Most notes of each kind (witnesses' cosignatures, partners' notes relayed) in one answer.
pub const MAX_KEY_LOG_NOTES: usize = 64;

/// How a checkpoint of an agency's key log, seen by someone else, compares with the history
/// of that agency held here (spec/KEYS.md §7.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// It names exactly the history held.
    Same,
    /// It names the history held up to an earlier statement.
    Prefix,
    /// It names more statements than are held here: this node may be behind.
    Ahead,
    /// It names a history that is not the one held here: two histories of one agency.
    Split,
}

/// What a verified note about an agency's key log says.
#[derive(Debug, Clone)]
pub struct KeyLogView {
    /// Who signed it: the witness, or the agency itself for its own freshness note.
    pub signer: AgencyId,
    /// How many statements it names.
    pub size: u64,
    /// The time in its signature line.
    pub at: u64,
    /// How it compares with the history held.
    pub agreement: Agreement,
}

/// A witness's cosignature of a partner's key log: the checkpoint of `note` (the partner's
/// freshness note, already checked with [`verify_fresh`]) with one `cosignature/v1` line by the
/// witness's current signing key under its key name `rogatory.<witness>`, at `time`.
pub fn cosign_key_log(
    note: &[u8],
    witness: &AgencyId,
    key: &SigningKey,
    time: u64,
) -> Result<Vec<u8>, KeyHistoryError> {
    let bad = |m: String| KeyHistoryError::Invalid(format!("cannot cosign a key log: {m}"));
    let n = Note::parse(note).map_err(|e| bad(e.to_string()))?;
    let cp = Checkpoint::parse(n.text()).map_err(|e| bad(e.to_string()))?;
    let body = cp.body();
    let line = cosign(&body, &log_key_name(witness), key, time).map_err(|e| bad(e.to_string()))?;
    Ok(format!("{body}\n{line}").into_bytes())
}

/// Checks a note about `owner`'s key log signed by `signer` (a witness's cosignature from
/// [`cosign_key_log`], or the owner's own freshness note relayed by a partner, with `signer`
/// the owner): one signature line, made under the signer's key name with one of its signing
/// keys that is not revoked. Says how the checkpoint compares with `owner` as held here.
pub fn verify_key_log_note(
    owner: &KeyHistory,
    signer: &KeyHistory,
    note: &[u8],
) -> Result<KeyLogView, KeyHistoryError> {
    let bad = |m: String| {
        KeyHistoryError::Invalid(format!(
            "a note of {}'s key log signed by {}: {m}",
            owner.agency(),
            signer.agency()
        ))
    };
    if note.len() > MAX_KEY_LOG_NOTE_BYTES {
        return Err(bad(format!("larger than {MAX_KEY_LOG_NOTE_BYTES} bytes")));
    }
    let n = Note::parse(note).map_err(|e| bad(e.to_string()))?;
    let cp = Checkpoint::parse(n.text()).map_err(|e| bad(e.to_string()))?;
    if cp.origin != key_log_origin(owner.agency()) {
        return Err(bad(format!("its origin is {}", cp.origin)));
    }
    if n.signatures().len() != 1 {
        return Err(bad("exactly one signature line".into()));
    }
    let text = n.to_text();
    let line = &text[n.text().len() + 1..];
    let name = log_key_name(signer.agency());
    let mut keys: Vec<&crate::keys::VerifyingKey> = Vec::new();
    for c in signer.cards() {
        let k = c.signing_key();
        if !keys.contains(&k) && signer.signer(k.id()).is_ok() {
            keys.push(k);
        }
    }
    let at = keys
        .iter()
        .find_map(|k| {
            let w = witness_verifier(&name, k).ok()?;
            verify_cosignature(n.text(), line, &w).ok()
        })
        .ok_or_else(|| {
            bad("its signature is not by a signing key of the signer's that is not revoked".into())
        })?;
    let agreement = match owner.checkpoint_at(cp.size) {
        None => Agreement::Ahead,
        Some(held) if held.root != cp.root => Agreement::Split,
        Some(_) if cp.size == owner.statements().len() as u64 => Agreement::Same,
        Some(_) => Agreement::Prefix,
    };
    Ok(KeyLogView {
        signer: signer.agency().clone(),
        size: cp.size,
        at,
        agreement,
    })
}

/// Whose key log a note is about (its origin `rogatory.<agency>/keys`) and who signed it (the
/// key name `rogatory.<agency>` of its one signature line), read before verifying it, to find
/// the histories to verify it with.
pub fn key_log_note_parties(note: &[u8]) -> Option<(AgencyId, AgencyId)> {
    if note.len() > MAX_KEY_LOG_NOTE_BYTES {
        return None;
    }
    let n = Note::parse(note).ok()?;
    let cp = Checkpoint::parse(n.text()).ok()?;
    let owner = cp.origin.strip_prefix("rogatory.")?.strip_suffix("/keys")?;
    let signer = n.signatures().first()?.name.strip_prefix("rogatory.")?;
    Some((AgencyId::new(owner).ok()?, AgencyId::new(signer).ok()?))
}
