//! A key directory: the agency's secret keys, its key history and card, and the partners it
//! pinned, as `rogatory init` and `rogatory keygen` write them (spec/KEYS.md §8).
//!
//! ```text
//! DIR/secret-keys.enc       the online COSE_KeySet encrypted under a passphrase (`rogatory
//!                           init`), mode 0600
//! DIR/secret-keys.cose      or: the COSE_KeySet in clear (`rogatory keygen`, or `init
//!                           --insecure-plaintext-keys` for tests), mode 0600
//! DIR/secret-keys.next.*    the keys of a rotation prepared but not yet applied
//! DIR/root-key.enc|.cose    the root key, until `rogatory keys root export` takes it away
//! DIR/key-history.cbor      the agency's key history (statements signed by the root)
//! DIR/card.cose             the current agency card (COSE_Sign1), the history's last
//! DIR/peers/<ID>.keys       the key histories of pinned partners (`rogatory peer add`)
//! DIR/peers/<ID>.cose       a partner pinned by a bare card (no history)
//! ```
//!
//! A rotation writes the new keys beside the old (`secret-keys.next.*`), then the history (the
//! moment it takes effect), then moves the new keys into place and rewrites the card; loading
//! finishes a rotation interrupted after the history was written.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rogatory_proto::card::{AgencyCard, CardDetails};
use rogatory_proto::keyhist::{KeyHistory, RootSet, StatementBody, statement};
use rogatory_proto::keys::{AgencySecretKeys, SigningKey};
use zeroize::Zeroizing;

use crate::files;

/// File name of the secret keys in clear.
pub const SECRET_KEYS_FILE: &str = "secret-keys.cose";
/// File name of the passphrase-encrypted secret keys.
pub const SECRET_KEYS_ENCRYPTED: &str = "secret-keys.enc";
/// File names of the keys of a prepared rotation, in clear and encrypted.
pub const NEXT_KEYS_FILE: &str = "secret-keys.next.cose";
/// See [`NEXT_KEYS_FILE`].
pub const NEXT_KEYS_ENCRYPTED: &str = "secret-keys.next.enc";
/// File name of the root key in clear.
pub const ROOT_KEY_FILE: &str = "root-key.cose";
/// File name of the passphrase-encrypted root key.
pub const ROOT_KEY_ENCRYPTED: &str = "root-key.enc";
/// File name of the agency's key history.
pub const HISTORY_FILE: &str = "key-history.cbor";
/// Directory of pinned partners.
pub const PEERS_DIR: &str = "peers";
/// File name of the card.
pub const CARD_FILE: &str = "card.cose";

static PASSPHRASE_FILE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// Sets where commands read the passphrase of encrypted keys from (the global
/// `--passphrase-file`); without it, `ROGATORY_PASSPHRASE` or a terminal prompt.
pub fn set_passphrase_file(file: Option<PathBuf>) {
    let _ = PASSPHRASE_FILE.set(file);
}

/// The passphrase file given to this process, if any.
pub fn passphrase_file() -> Option<&'static Path> {
    PASSPHRASE_FILE.get().and_then(|f| f.as_deref())
}

/// The passphrase, once read, when the process keeps it (a node restarting on new keys reads
/// them again, and its passphrase file may have been a pipe).
static REMEMBERED: std::sync::Mutex<Option<Option<Zeroizing<String>>>> =
    std::sync::Mutex::new(None);

/// From now on the passphrase is read once and kept in memory (the running node: it holds the
/// decrypted keys anyway).
pub fn remember_passphrase() {
    if let Ok(mut r) = REMEMBERED.lock()
        && r.is_none()
    {
        *r = Some(None);
    }
}

/// The passphrase of the keys in `dir`: the one kept, else asked for (and kept if asked to).
fn key_passphrase(dir: &Path) -> Result<Zeroizing<String>> {
    if let Ok(r) = REMEMBERED.lock()
        && let Some(Some(p)) = r.as_ref()
    {
        return Ok(p.clone());
    }
    let what = format!("the keys in {}", dir.display());
    let p = crate::secret::passphrase(passphrase_file(), &what, false)?;
    if let Ok(mut r) = REMEMBERED.lock()
        && r.is_some()
    {
        *r = Some(Some(p.clone()));
    }
    Ok(p)
}

/// How the secret keys are kept on disk.
pub enum Protection {
    /// In clear (mode 0600): tests and offline tools only.
    Plaintext,
    /// Encrypted under this passphrase (Argon2id + ChaCha20-Poly1305).
    Passphrase(Zeroizing<String>),
}

impl Protection {
    /// The secret `plain` as written: in clear, or sealed under the passphrase.
    pub fn wrap(&self, plain: &[u8]) -> Result<Vec<u8>> {
        match self {
            Protection::Plaintext => Ok(plain.to_vec()),
            Protection::Passphrase(p) => crate::secret::seal_bytes(plain, p),
        }
    }

    fn names(&self, plain: &'static str, encrypted: &'static str) -> &'static str {
        match self {
            Protection::Plaintext => plain,
            Protection::Passphrase(_) => encrypted,
        }
    }
}

/// An agency's keys, key history and card, loaded from a key directory.
pub struct KeyDir {
    /// The secret keys.
    pub keys: AgencySecretKeys,
    /// The current card (the history's last).
    pub card: AgencyCard,
    /// The agency's key history (for a directory made before histories: its bare card).
    pub history: KeyHistory,
}

impl KeyDir {
    /// Generates keys and a card, and writes both into `dir` (created if needed). Refuses to
    /// overwrite existing keys.
    pub fn create(dir: &Path, details: CardDetails) -> Result<Self> {
        Self::create_with(dir, details, Protection::Plaintext, None)
    }

    /// Generates a root key, the online keys, a card and the genesis of the key history into
    /// `dir`, keeping the secrets as `protection` says; the root key goes to `root_out` if
    /// given (another disk), else into `dir`. Refuses a directory that already holds keys.
    pub fn create_with(
        dir: &Path,
        details: CardDetails,
        protection: Protection,
        root_out: Option<&Path>,
    ) -> Result<Self> {
        let root_path = match root_out {
            Some(p) => p.to_path_buf(),
            None => dir.join(protection.names(ROOT_KEY_FILE, ROOT_KEY_ENCRYPTED)),
        };
        let card_path = dir.join(CARD_FILE);
        for p in [
            dir.join(SECRET_KEYS_FILE),
            dir.join(SECRET_KEYS_ENCRYPTED),
            dir.join(HISTORY_FILE),
            card_path.clone(),
            root_path.clone(),
        ] {
            if std::fs::symlink_metadata(&p).is_ok() {
                bail!(
                    "{} already exists: refusing to overwrite an agency's keys (choose another directory)",
                    p.display()
                );
            }
        }
        // Everything that can be refused is checked before anything is written.
        let at = details.issued_at;
        let keys = AgencySecretKeys::generate();
        let card = AgencyCard::issue(details, &keys).context("cannot issue the agency card")?;
        let root = SigningKey::generate();
        let genesis = StatementBody::genesis(
            RootSet::new(1, std::slice::from_ref(root.verifying_key())),
            &card,
            at,
        );
        let genesis = statement::sign(&genesis, &[&root]).context("cannot sign the genesis")?;
        let history = KeyHistory::from_statements(&[genesis])?;
        let secret_path = dir.join(protection.names(SECRET_KEYS_FILE, SECRET_KEYS_ENCRYPTED));
        let secret = protection.wrap(&keys.to_cose_key_set())?;
        let root_secret = protection.wrap(&root.to_cose_key_secret())?;
        files::create_private_dir(dir)?;
        let written = [
            (card_path, card.as_bytes().to_vec(), false),
            (dir.join(HISTORY_FILE), history.to_file(), false),
            (root_path, root_secret, true),
            (secret_path, secret, true),
        ];
        for (i, (path, bytes, secret)) in written.iter().enumerate() {
            if let Err(e) = files::write_atomic(path, bytes, *secret, false) {
                // Leave the directory as it was.
                for (p, _, _) in &written[..i] {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
        }
        Ok(Self {
            keys,
            card,
            history,
        })
    }

    /// Loads a key directory and checks that the keys, the history and the card belong
    /// together; finishes a rotation interrupted after its history was written.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut pass = None;
        let keys = read_keys(dir, SECRET_KEYS_FILE, SECRET_KEYS_ENCRYPTED, &mut pass)?.ok_or_else(
            || {
                anyhow::anyhow!(
                    "{} holds no agency keys (create them with `rogatory init` or `rogatory keygen`)",
                    dir.display()
                )
            },
        )?;
        let history = own_history(dir)?;
        let card = history.current_card().clone();
        let matches = |k: &AgencySecretKeys| {
            card.signing_key() == k.signing.verifying_key()
                && card.encryption_key() == k.encryption.public_key()
        };
        let keys = if matches(&keys) {
            keys
        } else {
            // The history moved on to keys prepared beside the old ones: take them up now.
            match read_keys(dir, NEXT_KEYS_FILE, NEXT_KEYS_ENCRYPTED, &mut pass)? {
                Some(next) if matches(&next) => {
                    promote_next_keys(dir)?;
                    tracing::info!("finished a key rotation that was interrupted");
                    next
                }
                _ => bail!(
                    "the card in {} does not belong to the keys beside it",
                    dir.display()
                ),
            }
        };
        let card_path = dir.join(CARD_FILE);
        if std::fs::read(&card_path).ok().as_deref() != Some(card.as_bytes()) {
            files::write_atomic(&card_path, card.as_bytes(), false, true)?;
        }
        Ok(Self {
            keys,
            card,
            history,
        })
    }

    /// The key histories (or bare cards) of the partners pinned in `dir/peers/`, by agency.
    pub fn partners(dir: &Path) -> Result<Vec<KeyHistory>> {
        let peers = dir.join(PEERS_DIR);
        if !peers.exists() {
            return Ok(Vec::new());
        }
        let mut out: std::collections::BTreeMap<String, (bool, KeyHistory)> = Default::default();
        for e in
            std::fs::read_dir(&peers).with_context(|| format!("cannot read {}", peers.display()))?
        {
            let path = e?.path();
            let history = match path.extension().and_then(|x| x.to_str()) {
                Some("keys") => true,
                Some("cose") => false,
                _ => continue,
            };
            let h = load_history(&path)?;
            let id = h.agency().to_string();
            // A history wins over a bare card left from before it.
            if history || !out.contains_key(&id) {
                out.insert(id, (history, h));
            }
        }
        Ok(out.into_values().map(|(_, h)| h).collect())
    }

    /// The current cards of the partners pinned in `dir/peers/`.
    pub fn pinned(dir: &Path) -> Result<Vec<AgencyCard>> {
        Ok(Self::partners(dir)?
            .into_iter()
            .map(|h| h.current_card().clone())
            .collect())
    }

    /// Where the card of a key directory is.
    pub fn card_path(dir: &Path) -> PathBuf {
        dir.join(CARD_FILE)
    }
}

/// Writes a partner's key history into `dir/peers/` (replacing what was pinned for it).
pub fn save_partner(dir: &Path, history: &KeyHistory) -> Result<()> {
    let peers = dir.join(PEERS_DIR);
    files::create_private_dir(&peers)?;
    let id = history.agency();
    let (keep, drop) = if history.is_bare_card() {
        ("cose", "keys")
    } else {
        ("keys", "cose")
    };
    files::write_atomic(
        &peers.join(format!("{id}.{keep}")),
        &history.to_file(),
        false,
        true,
    )?;
    let other = peers.join(format!("{id}.{drop}"));
    if other.exists() {
        std::fs::remove_file(&other)
            .with_context(|| format!("cannot remove {}", other.display()))?;
    }
    Ok(())
}

/// The agency's own key history: the history file, or for a directory made before histories,
/// its bare card.
pub fn own_history(dir: &Path) -> Result<KeyHistory> {
    let path = dir.join(HISTORY_FILE);
    if path.exists() {
        return load_history(&path);
    }
    Ok(KeyHistory::from_card(load_card(&dir.join(CARD_FILE))?))
}

fn read_keys(
    dir: &Path,
    plain: &str,
    encrypted: &str,
    pass: &mut Option<Zeroizing<String>>,
) -> Result<Option<AgencySecretKeys>> {
    let enc = dir.join(encrypted);
    if enc.exists() {
        files::check_private(&enc)?;
        let raw = files::read_limited(&enc, 64 * 1024)?;
        if pass.is_none() {
            *pass = Some(key_passphrase(dir)?);
        }
        let p = pass.as_deref().map(String::as_str).unwrap_or_default();
        return crate::secret::open(&raw, p, &enc).map(Some);
    }
    let path = dir.join(plain);
    if !path.exists() {
        return Ok(None);
    }
    files::check_private(&path)?;
    let raw = Zeroizing::new(files::read_limited(&path, 64 * 1024)?);
    AgencySecretKeys::from_cose_key_set(&raw)
        .map(Some)
        .with_context(|| format!("{} is not a Rogatory key file", path.display()))
}

fn promote_next_keys(dir: &Path) -> Result<()> {
    for (next, current, other) in [
        (NEXT_KEYS_ENCRYPTED, SECRET_KEYS_ENCRYPTED, SECRET_KEYS_FILE),
        (NEXT_KEYS_FILE, SECRET_KEYS_FILE, SECRET_KEYS_ENCRYPTED),
    ] {
        let from = dir.join(next);
        if from.exists() {
            std::fs::rename(&from, dir.join(current))
                .with_context(|| format!("cannot move {} into place", from.display()))?;
            let _ = std::fs::remove_file(dir.join(other));
            files::sync_dir(dir)?;
            return Ok(());
        }
    }
    Ok(())
}

/// Writes the keys of a prepared rotation beside the current ones, protected as they are.
pub fn write_next_keys(dir: &Path, keys: &AgencySecretKeys) -> Result<()> {
    let (name, bytes) = if dir.join(SECRET_KEYS_ENCRYPTED).exists() {
        let p = key_passphrase(dir)?;
        (
            NEXT_KEYS_ENCRYPTED,
            crate::secret::seal_bytes(&keys.to_cose_key_set(), &p)?,
        )
    } else {
        (NEXT_KEYS_FILE, keys.to_cose_key_set().to_vec())
    };
    files::write_atomic(&dir.join(name), &bytes, true, true)
}

/// Removes the keys of a prepared rotation whose statement was refused (never committed).
pub fn discard_next_keys(dir: &Path) {
    for n in [NEXT_KEYS_FILE, NEXT_KEYS_ENCRYPTED] {
        let _ = std::fs::remove_file(dir.join(n));
    }
}

/// The keys of a prepared rotation, if any.
pub fn read_next_keys(dir: &Path) -> Result<Option<AgencySecretKeys>> {
    read_keys(dir, NEXT_KEYS_FILE, NEXT_KEYS_ENCRYPTED, &mut None)
}

/// Commits a new key history: the moment a rotation or revocation takes effect. If new keys
/// were prepared for it, they are then moved into place and the card rewritten.
pub fn commit_history(dir: &Path, history: &KeyHistory) -> Result<()> {
    files::write_atomic(&dir.join(HISTORY_FILE), &history.to_file(), false, true)?;
    let card = history.current_card();
    let next = read_next_keys(dir)?;
    if next.as_ref().is_some_and(|k| {
        k.signing.verifying_key() == card.signing_key()
            && k.encryption.public_key() == card.encryption_key()
    }) {
        promote_next_keys(dir)?;
    }
    files::write_atomic(&dir.join(CARD_FILE), card.as_bytes(), false, true)
}

/// Directory of introductions of this node's agency by others (`rogatory keys introductions
/// add`), served to nodes that have not pinned it (spec/KEYS.md §7.7).
pub const INTRODUCTIONS_DIR: &str = "introductions";

/// The introductions of this node's agency it holds (at most 16, each at most 4 KiB).
pub fn own_introductions(dir: &Path) -> Result<Vec<Vec<u8>>> {
    use rogatory_proto::keyhist::intro::{MAX_INTRODUCTION_BYTES, MAX_INTRODUCTIONS};
    let d = dir.join(INTRODUCTIONS_DIR);
    if !d.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(&d)
        .with_context(|| format!("cannot read {}", d.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cose"))
        .collect();
    names.sort();
    for p in names.into_iter().take(MAX_INTRODUCTIONS) {
        out.push(files::read_limited(&p, MAX_INTRODUCTION_BYTES as u64)?);
    }
    Ok(out)
}

/// Reads a root key file (encrypted or in clear).
pub fn load_root_key(path: &Path) -> Result<SigningKey> {
    files::check_private(path)?;
    let raw = Zeroizing::new(files::read_limited(path, 64 * 1024)?);
    // An encrypted file is a tagged COSE_Encrypt0 (tag 16).
    let plain = if raw.first() == Some(&0xd0) {
        let what = format!("the root key {}", path.display());
        let p = crate::secret::passphrase(passphrase_file(), &what, false)?;
        crate::secret::open_bytes(&raw, &p, path)?
    } else {
        raw
    };
    SigningKey::from_cose_key_secret(&plain)
        .with_context(|| format!("{} is not a Rogatory root key file", path.display()))
}

/// Reads a key history file, or a bare card.
pub fn load_history(path: &Path) -> Result<KeyHistory> {
    let bytes = files::read_limited(path, rogatory_proto::keyhist::MAX_HISTORY_BYTES as u64)?;
    KeyHistory::from_file(&bytes).with_context(|| {
        format!(
            "{} is not a valid key history or agency card",
            path.display()
        )
    })
}

/// Reads and verifies an agency card file; given a key history, its current card.
pub fn load_card(path: &Path) -> Result<AgencyCard> {
    let bytes = files::read_limited(path, rogatory_proto::keyhist::MAX_HISTORY_BYTES as u64)?;
    if bytes.first() == Some(&0xd2) {
        return AgencyCard::from_bytes(&bytes)
            .with_context(|| format!("{} is not a valid agency card", path.display()));
    }
    Ok(load_history(path)?.current_card().clone())
}
