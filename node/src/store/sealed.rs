//! Records sealed at rest: case records, evidence records and inbox records hold what a case is
//! about (status notes, references, grounds, evidence descriptions, custody), so they are kept
//! encrypted under a key derived from the node's storage key, and signed with the agency key so
//! that `rogatory audit verify-store` finds any change with the agency's public key alone.
//!
//! ```text
//! value = 0x01 ‖ nonce (12) ‖ ChaCha20-Poly1305(record key, nonce, CBOR, AD) ‖ signature (64)
//! AD    = "rogatory/record/v1" ‖ 0x00 ‖ table ‖ 0x00 ‖ len(key) as u32 BE ‖ key
//! signature: Ed25519 by the agency key over AD ‖ nonce ‖ ciphertext (with its tag)
//! record key = HKDF-SHA256(storage key, info "rogatory store records v1")
//! ```
//!
//! The associated data binds a record to its table and key, so a record moved to another key,
//! or another table, does not open there. Decryption (done at every read) checks the tag; the
//! signature is checked by `verify-store`, which needs no secret.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Tag};
use rogatory_proto::keys::{AgencySecretKeys, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use super::StoreError;

/// The format byte of a sealed record.
const FORMAT: u8 = 1;
const NONCE: usize = 12;
const TAG: usize = 16;
const SIGNATURE: usize = 64;
const CONTEXT: &[u8] = b"rogatory/record/v1\0";

/// The keys records are sealed with: derived from the agency's secret keys.
pub struct RecordKeys {
    aead: Zeroizing<[u8; 32]>,
    signing: SigningKey,
}

impl RecordKeys {
    /// The record keys of an agency.
    pub fn new(keys: &AgencySecretKeys) -> Self {
        let storage = keys.storage_key();
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, storage.as_ref());
        let mut aead = Zeroizing::new([0u8; 32]);
        // 32 bytes is a valid HKDF-SHA256 output length.
        let _ = hk.expand(b"rogatory store records v1", aead.as_mut());
        Self {
            aead,
            signing: SigningKey::from_seed(&keys.signing.seed()),
        }
    }
}

impl std::fmt::Debug for RecordKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordKeys(..)")
    }
}

fn associated(table: &str, key: &[u8]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(CONTEXT.len() + table.len() + 5 + key.len());
    ad.extend_from_slice(CONTEXT);
    ad.extend_from_slice(table.as_bytes());
    ad.push(0);
    ad.extend_from_slice(&(key.len() as u32).to_be_bytes());
    ad.extend_from_slice(key);
    ad
}

/// Seals `plain` (a record's CBOR) for `table` at `key`.
pub fn seal(keys: &RecordKeys, table: &str, key: &[u8], plain: &[u8]) -> Vec<u8> {
    let ad = associated(table, key);
    let mut nonce = [0u8; NONCE];
    rogatory_proto::keys::fill_random(&mut nonce);
    let mut out = Vec::with_capacity(1 + NONCE + plain.len() + TAG + SIGNATURE);
    out.push(FORMAT);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plain);
    let cipher = ChaCha20Poly1305::new((&*keys.aead).into());
    // Encrypting a record in memory with a valid key does not fail.
    if let Ok(tag) =
        cipher.encrypt_inout_detached((&nonce).into(), &ad, (&mut out[1 + NONCE..]).into())
    {
        out.extend_from_slice(&tag);
    }
    let signature = keys.signing.sign_parts(&[&ad, &out[1..]]);
    out.extend_from_slice(&signature);
    out
}

/// Opens a sealed record of `table` at `key`; an error names the record.
pub fn open(
    keys: &RecordKeys,
    table: &str,
    key: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let bad = |why: &str| {
        StoreError::Corrupt(format!(
            "a record of {table} ({}) {why}",
            describe(table, key)
        ))
    };
    if sealed.len() < 1 + NONCE + TAG + SIGNATURE || sealed[0] != FORMAT {
        return Err(bad("is not a sealed record"));
    }
    let body = &sealed[1..sealed.len() - SIGNATURE];
    let (nonce, rest) = body.split_at(NONCE);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG);
    let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| bad("is truncated"))?;
    let tag: [u8; TAG] = tag.try_into().map_err(|_| bad("is truncated"))?;
    let mut plain = ciphertext.to_vec();
    ChaCha20Poly1305::new((&*keys.aead).into())
        .decrypt_inout_detached(
            (&nonce).into(),
            &associated(table, key),
            plain.as_mut_slice().into(),
            &Tag::from(tag),
        )
        .map_err(|_| bad("does not open: changed, moved, or sealed by another node"))?;
    Ok(plain)
}

/// Checks a sealed record's signature with the agency's public key (no secret needed).
pub fn check(agency: &VerifyingKey, table: &str, key: &[u8], sealed: &[u8]) -> Result<(), String> {
    if sealed.len() < 1 + NONCE + TAG + SIGNATURE || sealed[0] != FORMAT {
        return Err("it is not a sealed record".into());
    }
    let (body, signature) = sealed[1..].split_at(sealed.len() - 1 - SIGNATURE);
    let mut msg = associated(table, key);
    msg.extend_from_slice(body);
    if agency.verify_strict(&msg, signature) {
        Ok(())
    } else {
        Err(
            "its signature does not verify: it was changed, moved, or written by another key"
                .into(),
        )
    }
}

/// A record's key in words, for messages.
pub fn describe(table: &str, key: &[u8]) -> String {
    match (table, key.len()) {
        ("case-records", 16) => format!("case {}", hex_uuid(key)),
        ("received", 32) => format!("envelope {}", hex::encode(key)),
        ("drafts", 32) => format!("draft {}", hex::encode(key)),
        ("evidence", n) if n > 16 => format!(
            "case {}, item {}",
            hex_uuid(&key[..16]),
            String::from_utf8_lossy(&key[16..])
        ),
        _ => format!("key {}", hex::encode(key)),
    }
}

fn hex_uuid(b: &[u8]) -> String {
    <[u8; 16]>::try_from(b)
        .map(|b| uuid::Uuid::from_bytes(b).to_string())
        .unwrap_or_else(|_| hex::encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_opens_only_in_its_place_and_any_change_is_found() {
        let agency = AgencySecretKeys::generate();
        let keys = RecordKeys::new(&agency);
        let sealed = seal(&keys, "case-records", &[7; 16], b"status note");
        assert!(!sealed.windows(11).any(|w| w == b"status note"));
        assert_eq!(
            open(&keys, "case-records", &[7; 16], &sealed).unwrap(),
            b"status note"
        );
        let vk = agency.signing.verifying_key();
        check(vk, "case-records", &[7; 16], &sealed).unwrap();
        // Moved to another key or table: neither opens nor verifies.
        assert!(open(&keys, "case-records", &[8; 16], &sealed).is_err());
        assert!(open(&keys, "received", &[7; 16], &sealed).is_err());
        assert!(check(vk, "case-records", &[8; 16], &sealed).is_err());
        // Any byte changed.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(open(&keys, "case-records", &[7; 16], &bad).is_err() || i >= sealed.len() - 64);
            assert!(
                check(vk, "case-records", &[7; 16], &bad).is_err(),
                "byte {i}"
            );
        }
        // Another node's keys.
        let other = RecordKeys::new(&AgencySecretKeys::generate());
        assert!(open(&other, "case-records", &[7; 16], &sealed).is_err());
        assert!(describe("evidence", b"0123456789abcdefXB/E1").ends_with("item XB/E1"));
    }
}
