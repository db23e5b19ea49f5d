//! A key directory: the agency's secret keys and its signed card, as `rogatory keygen` writes
//! them.
//!
//! ```text
//! DIR/secret-keys.enc    the COSE_KeySet encrypted under a passphrase (`rogatory init`), mode 0600
//! DIR/secret-keys.cose   or: the COSE_KeySet in clear (`rogatory keygen`, or `init
//!                        --insecure-plaintext-keys` for tests), mode 0600
//! DIR/card.cose          the signed agency card (COSE_Sign1)
//! DIR/peers/<ID>.cose    the cards of pinned partner agencies (`rogatory peer add`)
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rogatory_proto::card::{AgencyCard, CardDetails};
use rogatory_proto::keys::AgencySecretKeys;

use crate::files;

/// File name of the secret keys in clear.
pub const SECRET_KEYS_FILE: &str = "secret-keys.cose";
/// File name of the passphrase-encrypted secret keys.
pub const SECRET_KEYS_ENCRYPTED: &str = "secret-keys.enc";
/// Directory of pinned partner cards.
pub const PEERS_DIR: &str = "peers";

static PASSPHRASE_FILE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// Sets where commands read the passphrase of encrypted keys from (the global
/// `--passphrase-file`); without it, `ROGATORY_PASSPHRASE` or a terminal prompt.
pub fn set_passphrase_file(file: Option<PathBuf>) {
    let _ = PASSPHRASE_FILE.set(file);
}

fn passphrase_file() -> Option<&'static Path> {
    PASSPHRASE_FILE.get().and_then(|f| f.as_deref())
}

/// How the secret keys are kept on disk.
pub enum Protection {
    /// In clear (mode 0600): tests and offline tools only.
    Plaintext,
    /// Encrypted under this passphrase (Argon2id + ChaCha20-Poly1305).
    Passphrase(zeroize::Zeroizing<String>),
}
/// File name of the card.
pub const CARD_FILE: &str = "card.cose";

/// An agency's keys and card, loaded from a key directory.
pub struct KeyDir {
    /// The secret keys.
    pub keys: AgencySecretKeys,
    /// The card.
    pub card: AgencyCard,
}

impl KeyDir {
    /// Generates keys and a card, and writes both into `dir` (created if needed). Refuses to
    /// overwrite existing keys.
    pub fn create(dir: &Path, details: CardDetails) -> Result<Self> {
        Self::create_with(dir, details, Protection::Plaintext)
    }

    /// Generates keys and a card into `dir`, keeping the keys as `protection` says. Refuses a
    /// directory that already holds keys or a card.
    pub fn create_with(dir: &Path, details: CardDetails, protection: Protection) -> Result<Self> {
        let card_path = dir.join(CARD_FILE);
        for p in [
            dir.join(SECRET_KEYS_FILE),
            dir.join(SECRET_KEYS_ENCRYPTED),
            card_path.clone(),
        ] {
            if p.exists() {
                bail!(
                    "{} already exists: refusing to overwrite an agency's keys (choose another directory)",
                    p.display()
                );
            }
        }
        // Everything that can be refused is checked before anything is written.
        let keys = AgencySecretKeys::generate();
        let card = AgencyCard::issue(details, &keys).context("cannot issue the agency card")?;
        let (secret_path, secret) = match protection {
            Protection::Plaintext => (dir.join(SECRET_KEYS_FILE), keys.to_cose_key_set().to_vec()),
            Protection::Passphrase(p) => (
                dir.join(SECRET_KEYS_ENCRYPTED),
                crate::secret::seal(&keys, &p)?,
            ),
        };
        files::create_private_dir(dir)?;
        files::write_atomic(&card_path, card.as_bytes(), false, false)?;
        if let Err(e) = files::write_atomic(&secret_path, &secret, true, false) {
            // Without its secret keys the card is useless; leave the directory as it was.
            let _ = std::fs::remove_file(&card_path);
            return Err(e);
        }
        Ok(Self { keys, card })
    }

    /// Loads a key directory and checks that the keys and the card belong together.
    pub fn load(dir: &Path) -> Result<Self> {
        let encrypted = dir.join(SECRET_KEYS_ENCRYPTED);
        let keys = if encrypted.exists() {
            files::check_private(&encrypted)?;
            let raw = files::read_limited(&encrypted, 64 * 1024)?;
            let what = format!("the keys in {}", dir.display());
            let pass = crate::secret::passphrase(passphrase_file(), &what, false)?;
            crate::secret::open(&raw, &pass, &encrypted)?
        } else {
            let secret_path = dir.join(SECRET_KEYS_FILE);
            if !secret_path.exists() {
                bail!(
                    "{} holds no agency keys (create them with `rogatory init` or `rogatory keygen`)",
                    dir.display()
                );
            }
            files::check_private(&secret_path)?;
            let raw = zeroize::Zeroizing::new(files::read_limited(&secret_path, 64 * 1024)?);
            AgencySecretKeys::from_cose_key_set(&raw)
                .with_context(|| format!("{} is not a Rogatory key file", secret_path.display()))?
        };
        let card = load_card(&dir.join(CARD_FILE))?;
        if card.signing_key() != keys.signing.verifying_key()
            || card.encryption_key() != keys.encryption.public_key()
        {
            bail!(
                "the card in {} does not belong to the keys beside it",
                dir.display()
            );
        }
        Ok(Self { keys, card })
    }

    /// The cards of the partners pinned in `dir/peers/`.
    pub fn pinned(dir: &Path) -> Result<Vec<AgencyCard>> {
        let peers = dir.join(PEERS_DIR);
        if !peers.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for e in
            std::fs::read_dir(&peers).with_context(|| format!("cannot read {}", peers.display()))?
        {
            let path = e?.path();
            if path.extension().is_some_and(|x| x == "cose") {
                out.push(load_card(&path)?);
            }
        }
        out.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(out)
    }

    /// Where the card of a key directory is.
    pub fn card_path(dir: &Path) -> PathBuf {
        dir.join(CARD_FILE)
    }
}

/// Reads and verifies an agency card file.
pub fn load_card(path: &Path) -> Result<AgencyCard> {
    let bytes = files::read_limited(path, rogatory_proto::card::MAX_CARD_BYTES as u64)?;
    AgencyCard::from_bytes(&bytes)
        .with_context(|| format!("{} is not a valid agency card", path.display()))
}
