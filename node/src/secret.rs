//! Secret keys at rest: the agency's COSE_KeySet encrypted under a passphrase.
//!
//! The file `secret-keys.enc` is a tagged `COSE_Encrypt0` (RFC 9052 §5.2, tag 16):
//!
//! ```text
//! protected   {1: 24 (ChaCha20/Poly1305),
//!              -65560: {"kdf": "argon2id", "m": 65536, "t": 3, "p": 4, "salt": bstr .size 16}}
//! unprotected {5: bstr .size 12 (nonce)}
//! ciphertext  ChaCha20-Poly1305(key = Argon2id(passphrase, salt, m KiB, t, p, 32 bytes),
//!                               plaintext = the COSE_KeySet, aad = Enc_structure("Encrypt0", …))
//! ```
//!
//! Argon2id (RFC 9106) with its second recommended parameter set (64 MiB, 3 passes, 4 lanes) makes
//! each guess of a stolen file cost memory and time. The parameters are in the protected header, so
//! they can be raised later without stranding old files.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ciborium::Value;
use coset::{CoseEncrypt0, CoseEncrypt0Builder, HeaderBuilder, TaggedCborSerializable, iana};
use rogatory_proto::keys::AgencySecretKeys;
use zeroize::Zeroizing;

/// Private-use header label of the key-derivation parameters.
const LABEL_KDF: i64 = -65560;
/// Argon2id memory in KiB (RFC 9106 §4, second recommended option).
const M_KIB: u32 = 64 * 1024;
const T_COST: u32 = 3;
const P_LANES: u32 = 4;
/// Refuse files asking for more than this (a hostile file must not make us allocate gigabytes).
const MAX_M_KIB: u32 = 1024 * 1024;

fn derive(passphrase: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Zeroizing<[u8; 32]>> {
    let params = argon2::Params::new(m, t, p, Some(32))
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    a.hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(key)
}

/// Encrypts the secret keys under `passphrase`.
pub fn seal(keys: &AgencySecretKeys, passphrase: &str) -> Result<Vec<u8>> {
    seal_bytes(&keys.to_cose_key_set(), passphrase)
}

/// Encrypts secret bytes (a key set, a root key) under `passphrase`, as `seal` does.
pub fn seal_bytes(plaintext: &[u8], passphrase: &str) -> Result<Vec<u8>> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rogatory_proto::keys::fill_random(&mut salt);
    rogatory_proto::keys::fill_random(&mut nonce);
    let key = derive(passphrase, &salt, M_KIB, T_COST, P_LANES)?;
    let cipher = chacha20poly1305::ChaCha20Poly1305::new_from_slice(key.as_ref())
        .map_err(|_| anyhow::anyhow!("key length"))?;
    let kdf = Value::Map(vec![
        (Value::Text("kdf".into()), Value::Text("argon2id".into())),
        (Value::Text("m".into()), Value::from(M_KIB)),
        (Value::Text("p".into()), Value::from(P_LANES)),
        (Value::Text("t".into()), Value::from(T_COST)),
        (Value::Text("salt".into()), Value::Bytes(salt.to_vec())),
    ]);
    let mut failed = false;
    let enc = CoseEncrypt0Builder::new()
        .protected(
            HeaderBuilder::new()
                .algorithm(iana::Algorithm::ChaCha20Poly1305)
                .value(LABEL_KDF, kdf)
                .build(),
        )
        .unprotected(HeaderBuilder::new().iv(nonce.to_vec()).build())
        .create_ciphertext(plaintext, &[], |pt, aad| {
            cipher
                .encrypt((&nonce).into(), Payload { msg: pt, aad })
                .unwrap_or_else(|_| {
                    failed = true;
                    Vec::new()
                })
        })
        .build();
    if failed {
        bail!("encryption failed");
    }
    enc.to_tagged_vec().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Decrypts a `secret-keys.enc` file. A wrong passphrase gives a one-line error.
pub fn open(bytes: &[u8], passphrase: &str, path: &Path) -> Result<AgencySecretKeys> {
    let plain = open_bytes(bytes, passphrase, path)?;
    AgencySecretKeys::from_cose_key_set(&plain)
        .with_context(|| format!("{} holds no usable keys", path.display()))
}

/// Decrypts a file written by [`seal_bytes`].
pub fn open_bytes(bytes: &[u8], passphrase: &str, path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    let bad = || anyhow::anyhow!("{} is not a Rogatory encrypted key file", path.display());
    let enc = CoseEncrypt0::from_tagged_slice(bytes).map_err(|_| bad())?;
    if enc.protected.header.alg
        != Some(coset::Algorithm::Assigned(
            iana::Algorithm::ChaCha20Poly1305,
        ))
    {
        return Err(bad());
    }
    let kdf = enc
        .protected
        .header
        .rest
        .iter()
        .find(|(l, _)| *l == coset::Label::Int(LABEL_KDF))
        .and_then(|(_, v)| v.as_map())
        .ok_or_else(bad)?;
    let get = |k: &str| {
        kdf.iter()
            .find(|(key, _)| key.as_text() == Some(k))
            .map(|(_, v)| v)
    };
    let num = |k: &str| -> Result<u32> {
        get(k)
            .and_then(|v| v.as_integer())
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(bad)
    };
    if get("kdf").and_then(|v| v.as_text()) != Some("argon2id") {
        return Err(bad());
    }
    let (m, t, p) = (num("m")?, num("t")?, num("p")?);
    if m > MAX_M_KIB || t > 16 || p > 16 {
        bail!(
            "{}: key-derivation parameters beyond the limits this software accepts",
            path.display()
        );
    }
    let salt = get("salt")
        .and_then(|v| v.as_bytes())
        .ok_or_else(bad)?
        .clone();
    let nonce: [u8; 12] = enc
        .unprotected
        .iv
        .as_slice()
        .try_into()
        .map_err(|_| bad())?;
    let key = derive(passphrase, &salt, m, t, p)?;
    let cipher = chacha20poly1305::ChaCha20Poly1305::new_from_slice(key.as_ref())
        .map_err(|_| anyhow::anyhow!("key length"))?;
    Ok(Zeroizing::new(enc.decrypt_ciphertext(
        &[],
        bad,
        |ct, aad| {
            cipher
                .decrypt((&nonce).into(), Payload { msg: ct, aad })
                .map_err(|_| anyhow::anyhow!("wrong passphrase for {}", path.display()))
        },
    )?))
}

/// Where the passphrase comes from: a file, `ROGATORY_PASSPHRASE`, or a prompt on the terminal.
pub fn passphrase(file: Option<&Path>, what: &str, confirm: bool) -> Result<Zeroizing<String>> {
    let p = if let Some(f) = file {
        let raw = crate::files::read_limited(f, 4096)?;
        let s = String::from_utf8(raw).with_context(|| format!("{} is not text", f.display()))?;
        Zeroizing::new(s.trim_end_matches(['\r', '\n']).to_string())
    } else if let Ok(p) = std::env::var("ROGATORY_PASSPHRASE") {
        Zeroizing::new(p)
    } else {
        use std::io::IsTerminal as _;
        if !std::io::stdin().is_terminal() {
            bail!(
                "a passphrase is needed for {what}: set ROGATORY_PASSPHRASE, give --passphrase-file, or run in a terminal"
            );
        }
        let p = Zeroizing::new(rpassword::prompt_password(format!(
            "Passphrase for {what}: "
        ))?);
        if confirm {
            let again = Zeroizing::new(rpassword::prompt_password("Repeat the passphrase: ")?);
            if *again != *p {
                bail!("the two passphrases differ");
            }
        }
        p
    };
    if p.is_empty() {
        bail!("the passphrase for {what} is empty");
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let keys = AgencySecretKeys::generate();
        let sealed = seal(&keys, "correct horse").unwrap();
        let back = open(&sealed, "correct horse", Path::new("k")).unwrap();
        assert_eq!(back.signing.verifying_key(), keys.signing.verifying_key());
        let err = open(&sealed, "wrong", Path::new("k")).unwrap_err();
        assert_eq!(err.to_string(), "wrong passphrase for k");
        let mut t = sealed.clone();
        let n = t.len() - 5;
        t[n] ^= 1;
        assert!(open(&t, "correct horse", Path::new("k")).is_err());
        // Nothing of the secret appears in the file.
        let seed = keys.signing.seed();
        assert!(!sealed.windows(32).any(|w| w == seed.as_slice()));
    }
}
