//! A key directory: the agency's secret keys and its signed card, as `rogatory keygen` writes
//! them.
//!
//! ```text
//! DIR/secret-keys.cose   COSE_KeySet (RFC 9052 §7) with both secret keys, mode 0600
//! DIR/card.cose          the signed agency card (COSE_Sign1)
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rogatory_proto::card::{AgencyCard, CardDetails};
use rogatory_proto::keys::AgencySecretKeys;

use crate::files;

/// File name of the secret keys.
pub const SECRET_KEYS_FILE: &str = "secret-keys.cose";
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
        let secret_path = dir.join(SECRET_KEYS_FILE);
        let card_path = dir.join(CARD_FILE);
        for p in [&secret_path, &card_path] {
            if p.exists() {
                bail!(
                    "{} already exists: refusing to overwrite an agency's keys (choose another --out)",
                    p.display()
                );
            }
        }
        // Everything that can be refused is checked before anything is written.
        let keys = AgencySecretKeys::generate();
        let card = AgencyCard::issue(details, &keys).context("cannot issue the agency card")?;
        files::create_private_dir(dir)?;
        files::write_atomic(&card_path, card.as_bytes(), false, false)?;
        if let Err(e) = files::write_atomic(&secret_path, &keys.to_cose_key_set(), true, false) {
            // Without its secret keys the card is useless; leave the directory as it was.
            let _ = std::fs::remove_file(&card_path);
            return Err(e);
        }
        Ok(Self { keys, card })
    }

    /// Loads a key directory and checks that the keys and the card belong together.
    pub fn load(dir: &Path) -> Result<Self> {
        let secret_path = dir.join(SECRET_KEYS_FILE);
        check_private(&secret_path)?;
        let raw = zeroize::Zeroizing::new(files::read_limited(&secret_path, 64 * 1024)?);
        let keys = AgencySecretKeys::from_cose_key_set(&raw)
            .with_context(|| format!("{} is not a Rogatory key file", secret_path.display()))?;
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

/// Refuses a secret key file that others can read.
fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by other users (mode {mode:o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
    Ok(())
}
