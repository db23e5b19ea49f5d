//! The agency card: a self-signed CBOR document naming an agency, its roles and its keys.
//!
//! A card is a tagged `COSE_Sign1` (EdDSA) whose payload is the deterministic CBOR of
//! [`CardBody`], signed by the signing key the card itself lists. A node trusts a card only after
//! its operator compared the [fingerprint](AgencyCard::fingerprint) with the one the partner read
//! out over a separate channel (or when a pinned directory lists it).

use serde::{Deserialize, Serialize};

use crate::cbor;
use crate::cose::{self, CoseError};
use crate::ids::AgencyId;
use crate::keys::{AgencySecretKeys, EncryptionPublicKey, KeyError, KeyId, VerifyingKey};

/// Largest card this crate decodes.
pub const MAX_CARD_BYTES: usize = 64 * 1024;

/// The card format version this crate writes and reads.
pub const CARD_VERSION: u32 = 1;

/// What an agency does; a card lists one or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Central authority for mutual legal assistance.
    CentralAuthority,
    /// Police liaison office.
    PoliceLiaison,
    /// Prosecutor's office.
    Prosecutor,
    /// Court.
    Court,
    /// Extradition unit.
    Extradition,
    /// 24/7 contact point (Budapest Convention Art. 35).
    ContactPoint247,
}

/// What a listed key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyUse {
    /// Ed25519: envelopes, receipts, checkpoints, the card itself.
    Sign,
    /// X25519: key agreement for envelopes addressed to the agency.
    Encrypt,
}

/// One public key on a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardKey {
    /// What the key is for.
    #[serde(rename = "use")]
    pub usage: KeyUse,
    /// The public key as a COSE_Key (RFC 9052 §7), deterministically encoded.
    #[serde(with = "serde_bytes")]
    pub cose_key: Vec<u8>,
    /// Unix seconds from which the key may be used.
    pub valid_from: u64,
    /// Unix seconds from which the key may no longer be used, if limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<u64>,
}

/// The signed content of a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardBody {
    /// Card format version ([`CARD_VERSION`]).
    pub version: u32,
    /// The agency id.
    pub id: AgencyId,
    /// The agency's display name.
    pub name: String,
    /// ISO 3166-1 alpha-2 country code; must match the id.
    pub country: String,
    /// Roles, at least one.
    pub roles: Vec<Role>,
    /// Exactly one signing and one encryption key in this version.
    pub keys: Vec<CardKey>,
    /// libp2p multiaddrs the agency's node listens on.
    pub addresses: Vec<String>,
    /// Languages (BCP 47 tags) in which the agency accepts requests.
    pub languages: Vec<String>,
    /// Legal bases the agency accepts (treaty names, "reciprocity").
    pub legal_bases: Vec<String>,
    /// Unix seconds when the card was issued.
    pub issued_at: u64,
}

/// Why a card was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// Bad CBOR.
    #[error("agency card: {0}")]
    Cbor(#[from] cbor::DecodeError),
    /// Bad COSE.
    #[error("agency card: {0}")]
    Cose(#[from] CoseError),
    /// A listed key is unusable.
    #[error("agency card: {0}")]
    Key(#[from] KeyError),
    /// The content breaks a rule of the card format.
    #[error("agency card: {0}")]
    Invalid(String),
    /// The self-signature does not verify.
    #[error("agency card for {0}: the signature does not verify with the card's own signing key")]
    BadSignature(AgencyId),
}

/// A verified agency card: its body, its keys, and the exact bytes it was read from.
#[derive(Debug, Clone)]
pub struct AgencyCard {
    body: CardBody,
    signing_key: VerifyingKey,
    encryption_key: EncryptionPublicKey,
    bytes: Vec<u8>,
}

/// What [`AgencyCard::issue`] needs besides the keys.
#[derive(Debug, Clone)]
pub struct CardDetails {
    /// Agency id.
    pub id: AgencyId,
    /// Display name.
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Listen multiaddrs.
    pub addresses: Vec<String>,
    /// Languages.
    pub languages: Vec<String>,
    /// Accepted legal bases.
    pub legal_bases: Vec<String>,
    /// Issue time, Unix seconds; keys are valid from then.
    pub issued_at: u64,
}

impl AgencyCard {
    /// Issues (signs) a card for `keys`.
    pub fn issue(details: CardDetails, keys: &AgencySecretKeys) -> Result<Self, CardError> {
        let body = CardBody {
            version: CARD_VERSION,
            country: details.id.country().to_string(),
            id: details.id,
            name: details.name,
            roles: details.roles,
            keys: vec![
                CardKey {
                    usage: KeyUse::Sign,
                    cose_key: keys.signing.verifying_key().to_cose_key(),
                    valid_from: details.issued_at,
                    valid_until: None,
                },
                CardKey {
                    usage: KeyUse::Encrypt,
                    cose_key: keys.encryption.public_key().to_cose_key(),
                    valid_from: details.issued_at,
                    valid_until: None,
                },
            ],
            addresses: details.addresses,
            languages: details.languages,
            legal_bases: details.legal_bases,
            issued_at: details.issued_at,
        };
        check_body(&body)?;
        let payload = cbor::to_vec(&body).map_err(|e| CardError::Invalid(e.to_string()))?;
        let bytes = cose::sign1(coset::Header::default(), &payload, &keys.signing);
        Self::from_bytes(&bytes)
    }

    /// Parses and verifies a card: structure, rules, and the self-signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CardError> {
        if bytes.len() > MAX_CARD_BYTES {
            return Err(CardError::Cbor(cbor::DecodeError::TooLarge {
                what: "agency card",
                size: bytes.len(),
                limit: MAX_CARD_BYTES,
            }));
        }
        let s = cose::parse_sign1(bytes, "agency card")?;
        cose::only_labels(&s.header, &[], "agency card")?;
        let body: CardBody = cbor::from_slice(s.payload, MAX_CARD_BYTES, "agency card body")?;
        check_body(&body)?;
        let mut signing = None;
        let mut encryption = None;
        for k in &body.keys {
            match k.usage {
                KeyUse::Sign => signing = Some(VerifyingKey::from_cose_key(&k.cose_key)?),
                KeyUse::Encrypt => {
                    encryption = Some(EncryptionPublicKey::from_cose_key(&k.cose_key)?)
                }
            }
        }
        let (Some(signing_key), Some(encryption_key)) = (signing, encryption) else {
            return Err(CardError::Invalid(
                "a card lists exactly one signing and one encryption key".into(),
            ));
        };
        if !cose::verify_sign1(&s, &signing_key) {
            return Err(CardError::BadSignature(body.id));
        }
        Ok(Self {
            body,
            signing_key,
            encryption_key,
            bytes: bytes.to_vec(),
        })
    }

    /// The signed content.
    pub fn body(&self) -> &CardBody {
        &self.body
    }

    /// The agency id.
    pub fn id(&self) -> &AgencyId {
        &self.body.id
    }

    /// The Ed25519 signing key.
    pub fn signing_key(&self) -> &VerifyingKey {
        &self.signing_key
    }

    /// The X25519 encryption key.
    pub fn encryption_key(&self) -> &EncryptionPublicKey {
        &self.encryption_key
    }

    /// The exact bytes of the card.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The validity window `[from, until)` of a key, by key id.
    pub fn key_validity(&self, id: &KeyId) -> Option<(u64, Option<u64>)> {
        let usage = if id == self.signing_key.id() {
            KeyUse::Sign
        } else if id == self.encryption_key.id() {
            KeyUse::Encrypt
        } else {
            return None;
        };
        self.body
            .keys
            .iter()
            .find(|k| k.usage == usage)
            .map(|k| (k.valid_from, k.valid_until))
    }

    /// The fingerprint operators compare out of band: the first 16 bytes of the signing key's
    /// RFC 9679 thumbprint, as eight groups of four upper-case hex digits.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(self.signing_key.id())
    }

    /// The C2SP signed-note verifier key of the agency's signing key, under the key name
    /// `rogatory.<agency-id>` (spec/PROTOCOL.md §2.4).
    pub fn note_verifier_key(&self) -> String {
        note_verifier_key(&self.body.id, &self.signing_key)
    }
}

/// Formats a key id as a fingerprint (see [`AgencyCard::fingerprint`]).
pub fn fingerprint_of(id: &KeyId) -> String {
    id[..16]
        .chunks(2)
        .map(hex::encode_upper)
        .collect::<Vec<_>>()
        .join("-")
}

/// Normalises a fingerprint typed by a person: hex digits only, upper case.
pub fn normalize_fingerprint(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// C2SP signed-note verifier key (type 0x01) of an agency's checkpoint signing key, under the
/// key name `rogatory.<agency-id>`.
pub fn note_verifier_key(id: &AgencyId, key: &VerifyingKey) -> String {
    crate::audit::note::NoteVerifier::new(
        &crate::audit::entry::log_key_name(id),
        crate::audit::note::SIG_ED25519,
        key,
    )
    .map(|v| v.vkey())
    .unwrap_or_default()
}

fn check_body(body: &CardBody) -> Result<(), CardError> {
    let bad = |m: &str| Err(CardError::Invalid(m.to_string()));
    if body.version != CARD_VERSION {
        return Err(CardError::Invalid(format!(
            "card version {} is not supported (this software reads version {CARD_VERSION})",
            body.version
        )));
    }
    if body.country != body.id.country() {
        return bad("the country does not match the agency id");
    }
    if body.name.trim().is_empty() || body.name.chars().count() > 256 {
        return bad("the display name must be 1 to 256 characters");
    }
    if body.roles.is_empty() {
        return bad("a card lists at least one role");
    }
    let signs = body.keys.iter().filter(|k| k.usage == KeyUse::Sign).count();
    let encs = body
        .keys
        .iter()
        .filter(|k| k.usage == KeyUse::Encrypt)
        .count();
    if signs != 1 || encs != 1 || body.keys.len() != 2 {
        return bad("a card lists exactly one signing and one encryption key");
    }
    if body
        .keys
        .iter()
        .any(|k| k.valid_until.is_some_and(|u| u <= k.valid_from))
    {
        return bad("a key's validity ends before it starts");
    }
    if body.addresses.len() > 16 || body.addresses.iter().any(|a| a.len() > 256) {
        return bad("at most 16 addresses of at most 256 characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(id: &str) -> CardDetails {
        CardDetails {
            id: AgencyId::new(id).unwrap(),
            name: "Test agency".into(),
            roles: vec![Role::CentralAuthority],
            addresses: vec!["/ip4/127.0.0.1/tcp/4100".into()],
            languages: vec!["fr".into(), "en".into()],
            legal_bases: vec!["reciprocity".into()],
            issued_at: 1_764_000_000,
        }
    }

    #[test]
    fn cards_verify_and_refuse_tampering() {
        let keys = AgencySecretKeys::generate();
        let card = AgencyCard::issue(details("FR.DACG"), &keys).unwrap();
        assert_eq!(card.id().as_str(), "FR.DACG");
        let again = AgencyCard::from_bytes(card.as_bytes()).unwrap();
        assert_eq!(again.fingerprint(), card.fingerprint());
        assert_eq!(card.fingerprint().len(), 39);
        assert!(card.note_verifier_key().starts_with("rogatory.FR.DACG+"));

        for i in 0..card.as_bytes().len() {
            let mut b = card.as_bytes().to_vec();
            b[i] ^= 0x01;
            assert!(AgencyCard::from_bytes(&b).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn a_card_signed_by_another_key_is_refused() {
        let keys = AgencySecretKeys::generate();
        let other = AgencySecretKeys::generate();
        let card = AgencyCard::issue(details("FR.DACG"), &keys).unwrap();
        let payload = cbor::to_vec(card.body()).unwrap();
        let forged = cose::sign1(coset::Header::default(), &payload, &other.signing);
        assert!(AgencyCard::from_bytes(&forged).is_err());
    }

    #[test]
    fn note_verifier_key_format() {
        // Key hash and encoding per C2SP signed-note; pinned so a change is noticed.
        let key = crate::keys::SigningKey::from_seed(&[1; 32]);
        let id = AgencyId::new("FR.DACG").unwrap();
        let vkey = note_verifier_key(&id, key.verifying_key());
        let parts: Vec<_> = vkey.split('+').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "rogatory.FR.DACG");
        assert_eq!(parts[1].len(), 8);
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(parts[2])
            .unwrap();
        assert_eq!(raw[0], 0x01);
        assert_eq!(&raw[1..], key.verifying_key().as_bytes());
    }
}
