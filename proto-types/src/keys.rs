//! Agency keys: an Ed25519 signing key and a separate X25519 encryption key, their COSE_Key
//! encodings (RFC 9052 §7, RFC 9053 §7.2), and key ids (RFC 9679 COSE Key Thumbprints).

use ciborium::Value;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cbor;

/// COSE key type OKP (RFC 9053 §7.2).
pub const KTY_OKP: i64 = 1;
/// COSE curve X25519.
pub const CRV_X25519: i64 = 4;
/// COSE curve Ed25519.
pub const CRV_ED25519: i64 = 6;
/// COSE algorithm EdDSA (RFC 9053 §2.2).
pub const ALG_EDDSA: i64 = -8;
/// COSE algorithm ECDH-ES + HKDF-256 (RFC 9053 §6.3.1).
pub const ALG_ECDH_ES_HKDF_256: i64 = -25;
/// COSE algorithm ChaCha20/Poly1305 (RFC 9053 §4.3).
pub const ALG_CHACHA20_POLY1305: i64 = 24;

const LABEL_KTY: i64 = 1;
const LABEL_KID: i64 = 2;
const LABEL_ALG: i64 = 3;
const LABEL_CRV: i64 = -1;
const LABEL_X: i64 = -2;
const LABEL_D: i64 = -4;

/// Largest COSE_Key this crate decodes.
const MAX_KEY_BYTES: usize = 4096;
/// Largest key set this crate decodes (the keys of a node after many rotations).
const MAX_KEY_SET_BYTES: usize = 16 * 1024;
/// Previous encryption keys a key set keeps at most.
pub const MAX_PREVIOUS_KEYS: usize = 64;
/// COSE key type Symmetric (RFC 9053 §7.3), for the storage key.
const KTY_SYMMETRIC: i64 = 4;

/// Why a key could not be used. Whose fault it is depends on where the key came from, so the
/// caller wraps this in its own error.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are not a COSE_Key of the expected shape.
    #[error("not a usable COSE_Key: {0}")]
    Format(String),
    /// The key is a point that is refused: an Ed25519 key of small order or not canonical, or an
    /// X25519 key of low order.
    #[error("the public key is not a valid curve point (or is of small order)")]
    InvalidPoint,
    /// CBOR underneath was bad.
    #[error(transparent)]
    Cbor(#[from] cbor::DecodeError),
}

/// Fills `buf` from the operating system's random source.
///
/// Failure of the system random source is not recoverable for a cryptographic program, so
/// this aborts with a clear message rather than return weak keys.
pub fn fill_random(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        panic!("the operating system's random source failed: {e}");
    }
}

/// A key id: the RFC 9679 COSE Key Thumbprint (SHA-256) of the public key.
pub type KeyId = [u8; 32];

/// RFC 9679 thumbprint of an OKP public key: SHA-256 over the deterministic encoding of
/// `{1: 1, -1: crv, -2: x}`.
pub fn okp_thumbprint(crv: i64, x: &[u8; 32]) -> KeyId {
    let map = Value::Map(vec![
        (Value::from(LABEL_KTY), Value::from(KTY_OKP)),
        (Value::from(LABEL_CRV), Value::from(crv)),
        (Value::from(LABEL_X), Value::Bytes(x.to_vec())),
    ]);
    let mut enc = Vec::with_capacity(48);
    // A fixed small map of integers and bytes always encodes.
    let _ = ciborium::into_writer(&map, &mut enc);
    Sha256::digest(&enc).into()
}

/// An agency's Ed25519 public signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    key: ed25519_dalek::VerifyingKey,
    id: KeyId,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", hex::encode(self.key.as_bytes()))
    }
}

impl VerifyingKey {
    /// From the 32 raw bytes; refuses weak (small-order) points.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidPoint)?;
        if key.is_weak() {
            return Err(KeyError::InvalidPoint);
        }
        Ok(Self {
            key,
            id: okp_thumbprint(CRV_ED25519, bytes),
        })
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// The key id (RFC 9679 thumbprint).
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// Verifies an Ed25519 signature strictly (no malleable or small-order inputs).
    pub fn verify_strict(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify_strict(msg, &sig).is_ok()
    }

    /// The COSE_Key (public part), deterministically encoded.
    pub fn to_cose_key(&self) -> Vec<u8> {
        okp_cose_key(CRV_ED25519, ALG_EDDSA, &self.id, self.as_bytes(), None)
    }

    /// Parses a COSE_Key holding an Ed25519 public key.
    pub fn from_cose_key(bytes: &[u8]) -> Result<Self, KeyError> {
        let k = parse_okp(bytes, CRV_ED25519, ALG_EDDSA, false)?;
        Self::from_bytes(&k.x)
    }

    /// The dalek key, for callers that need it (the node's libp2p identity).
    pub fn dalek(&self) -> &ed25519_dalek::VerifyingKey {
        &self.key
    }
}

/// An agency's Ed25519 signing key (secret; the dalek key it holds is wiped when dropped).
#[derive(Clone)]
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    public: VerifyingKey,
}

impl SigningKey {
    /// Generates a new key from the operating system's random source.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        fill_random(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// From the 32-byte secret seed (RFC 8032 §5.1.5).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let vk = key.verifying_key();
        let public = VerifyingKey {
            id: okp_thumbprint(CRV_ED25519, vk.as_bytes()),
            key: vk,
        };
        Self { key, public }
    }

    /// The public half.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// Signs `msg` (Ed25519 is deterministic: the same message gives the same signature).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.key.sign(msg).to_bytes()
    }

    /// Signs the concatenation of `parts` without building it.
    pub fn sign_parts(&self, parts: &[&[u8]]) -> [u8; 64] {
        use ed25519_dalek::ed25519::signature::MultipartSigner as _;
        match self.key.try_multipart_sign(parts) {
            Ok(sig) => sig.to_bytes(),
            // Signing with an in-memory dalek key cannot fail.
            Err(_) => [0; 64],
        }
    }

    /// The secret seed, for writing the key file.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The key as a secret COSE_Key (RFC 9052 §7; `d` is the seed): a root key file.
    ///
    /// The result holds the secret: write it only where its owner alone can read it.
    pub fn to_cose_key_secret(&self) -> Zeroizing<Vec<u8>> {
        let seed = self.seed();
        Zeroizing::new(okp_cose_key(
            CRV_ED25519,
            ALG_EDDSA,
            self.public.id(),
            self.public.as_bytes(),
            Some(&seed),
        ))
    }

    /// Parses a secret COSE_Key written by [`Self::to_cose_key_secret`], checking that the
    /// public key matches the seed.
    pub fn from_cose_key_secret(bytes: &[u8]) -> Result<Self, KeyError> {
        let k = parse_okp(bytes, CRV_ED25519, ALG_EDDSA, true)?;
        let d = k
            .d
            .as_deref()
            .ok_or_else(|| KeyError::Format("secret key material (label -4) is missing".into()))?;
        let key = Self::from_seed(d);
        if key.public.as_bytes() != &k.x {
            return Err(KeyError::Format(
                "the public key does not match the secret key".into(),
            ));
        }
        Ok(key)
    }
}

/// An agency's X25519 public encryption key.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionPublicKey {
    key: x25519_dalek::PublicKey,
    id: KeyId,
}

impl std::fmt::Debug for EncryptionPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EncryptionPublicKey({})",
            hex::encode(self.key.as_bytes())
        )
    }
}

impl EncryptionPublicKey {
    /// From the 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self {
            key: x25519_dalek::PublicKey::from(*bytes),
            id: okp_thumbprint(CRV_X25519, bytes),
        }
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// The key id (RFC 9679 thumbprint).
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The COSE_Key (public part), deterministically encoded.
    pub fn to_cose_key(&self) -> Vec<u8> {
        okp_cose_key(
            CRV_X25519,
            ALG_ECDH_ES_HKDF_256,
            &self.id,
            self.as_bytes(),
            None,
        )
    }

    /// Parses a COSE_Key holding an X25519 public key; refuses low-order points, with which
    /// every key agreement would give the same (all-zero) secret.
    pub fn from_cose_key(bytes: &[u8]) -> Result<Self, KeyError> {
        let k = parse_okp(bytes, CRV_X25519, ALG_ECDH_ES_HKDF_256, false)?;
        let key = Self::from_bytes(&k.x);
        // Clamped scalars are multiples of 8, so any of them maps a low-order point to zero.
        let probe = x25519_dalek::StaticSecret::from([0x42; 32]);
        if !probe.diffie_hellman(&key.key).was_contributory() {
            return Err(KeyError::InvalidPoint);
        }
        Ok(key)
    }

    pub(crate) fn dalek(&self) -> &x25519_dalek::PublicKey {
        &self.key
    }
}

/// An agency's X25519 secret encryption key.
pub struct EncryptionSecretKey {
    key: x25519_dalek::StaticSecret,
    public: EncryptionPublicKey,
}

impl EncryptionSecretKey {
    /// Generates a new key from the operating system's random source.
    pub fn generate() -> Self {
        let mut raw = Zeroizing::new([0u8; 32]);
        fill_random(raw.as_mut());
        Self::from_bytes(&raw)
    }

    /// From 32 secret bytes (clamped by X25519 when used).
    pub fn from_bytes(raw: &[u8; 32]) -> Self {
        let key = x25519_dalek::StaticSecret::from(*raw);
        let public =
            EncryptionPublicKey::from_bytes(x25519_dalek::PublicKey::from(&key).as_bytes());
        Self { key, public }
    }

    /// The public half.
    pub fn public_key(&self) -> &EncryptionPublicKey {
        &self.public
    }

    /// The secret bytes, for writing the key file.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }

    pub(crate) fn diffie_hellman(
        &self,
        peer: &x25519_dalek::PublicKey,
    ) -> x25519_dalek::SharedSecret {
        self.key.diffie_hellman(peer)
    }
}

/// The secret keys of one agency's node: what the key file holds.
pub struct AgencySecretKeys {
    /// The Ed25519 signing key (also the node's libp2p identity).
    pub signing: SigningKey,
    /// The X25519 encryption key.
    pub encryption: EncryptionSecretKey,
    /// Encryption keys replaced by a rotation, newest first: envelopes sealed to them before
    /// partners learnt the new key are still opened (spec/KEYS.md §5).
    pub previous_encryption: Vec<EncryptionSecretKey>,
    /// The storage key, once it no longer derives from the encryption key (spec/KEYS.md §5).
    storage: Option<Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for AgencySecretKeys {
    /// Shows the public keys only: secrets never reach logs or error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgencySecretKeys")
            .field("signing", self.signing.verifying_key())
            .field("encryption", self.encryption.public_key())
            .finish_non_exhaustive()
    }
}

impl AgencySecretKeys {
    /// A signing and an encryption key, with no previous keys; the storage key derives from
    /// the encryption key until the first rotation.
    pub fn new(signing: SigningKey, encryption: EncryptionSecretKey) -> Self {
        Self {
            signing,
            encryption,
            previous_encryption: Vec::new(),
            storage: None,
        }
    }

    /// The node's storage key, under which it wraps what it keeps secret at rest (evidence
    /// content keys). A key set written before any rotation has none of its own: it is then
    /// HKDF-SHA256 of the X25519 secret, info `rogatory storage key v1`. A rotation of the
    /// encryption key writes that value into the key set, so it never changes.
    pub fn storage_key(&self) -> Zeroizing<[u8; 32]> {
        if let Some(k) = &self.storage {
            return k.clone();
        }
        let ikm = self.encryption.to_bytes();
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(None, ikm.as_ref());
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is a valid HKDF-SHA256 output length.
        let _ = hk.expand(b"rogatory storage key v1", out.as_mut());
        out
    }

    /// Generates a fresh pair from the operating system's random source.
    pub fn generate() -> Self {
        Self::new(SigningKey::generate(), EncryptionSecretKey::generate())
    }

    /// The key set after a rotation: a new signing key, a new encryption key, or both. A
    /// replaced encryption key is kept (to open envelopes already sealed to it) and the storage
    /// key is fixed first, so what was wrapped under it stays readable.
    pub fn rotated(
        &self,
        signing: Option<SigningKey>,
        encryption: Option<EncryptionSecretKey>,
    ) -> Self {
        let storage = Some(self.storage_key());
        let mut previous: Vec<EncryptionSecretKey> = Vec::new();
        let keep = |k: &EncryptionSecretKey| EncryptionSecretKey::from_bytes(&k.to_bytes());
        let new_encryption = match encryption {
            Some(e) => {
                previous.push(keep(&self.encryption));
                e
            }
            None => keep(&self.encryption),
        };
        previous.extend(self.previous_encryption.iter().map(keep));
        previous.truncate(MAX_PREVIOUS_KEYS);
        let new_signing = signing.unwrap_or_else(|| SigningKey::from_seed(&self.signing.seed()));
        Self {
            signing: new_signing,
            encryption: new_encryption,
            previous_encryption: previous,
            storage,
        }
    }

    /// The encryption secret whose public key has id `kid`: the current one or a previous one.
    pub fn encryption_key(&self, kid: &KeyId) -> Option<&EncryptionSecretKey> {
        std::iter::once(&self.encryption)
            .chain(self.previous_encryption.iter())
            .find(|k| k.public_key().id() == kid)
    }

    /// Encodes both secret keys as a COSE_KeySet (RFC 9052 §7): the signing key first.
    ///
    /// The result holds secrets: write it only to a file readable by its owner alone.
    pub fn to_cose_key_set(&self) -> Zeroizing<Vec<u8>> {
        let seed = self.signing.seed();
        let sk = okp_cose_key_value(
            CRV_ED25519,
            ALG_EDDSA,
            self.signing.verifying_key().id(),
            self.signing.verifying_key().as_bytes(),
            Some(&seed),
        );
        let raw = self.encryption.to_bytes();
        let ek = okp_cose_key_value(
            CRV_X25519,
            ALG_ECDH_ES_HKDF_256,
            self.encryption.public_key().id(),
            self.encryption.public_key().as_bytes(),
            Some(&raw),
        );
        let mut items = vec![sk, ek];
        for prev in &self.previous_encryption {
            let raw = prev.to_bytes();
            items.push(okp_cose_key_value(
                CRV_X25519,
                ALG_ECDH_ES_HKDF_256,
                prev.public_key().id(),
                prev.public_key().as_bytes(),
                Some(&raw),
            ));
        }
        if let Some(k) = &self.storage {
            items.push(Value::Map(vec![
                (Value::from(LABEL_KTY), Value::from(KTY_SYMMETRIC)),
                (Value::from(LABEL_CRV), Value::Bytes(k.to_vec())),
            ]));
        }
        let mut out = Zeroizing::new(Vec::with_capacity(256));
        let _ = ciborium::into_writer(&Value::Array(items), &mut *out);
        out
    }

    /// Decodes a COSE_KeySet written by [`Self::to_cose_key_set`], checking that each public
    /// key matches its secret: the signing key, the encryption key, then any previous
    /// encryption keys, then the storage key if it no longer derives from the encryption key.
    pub fn from_cose_key_set(bytes: &[u8]) -> Result<Self, KeyError> {
        let value = cbor::parse_value(bytes, MAX_KEY_SET_BYTES, "key set")?;
        let Value::Array(mut items) = value else {
            return Err(KeyError::Format("a key set is a CBOR array".into()));
        };
        if items.len() < 2 || items.len() > 3 + MAX_PREVIOUS_KEYS {
            return Err(KeyError::Format(
                "the key set must hold the signing key, the encryption key and at most 64 previous keys"
                    .into(),
            ));
        }
        let mut storage = None;
        if let Some(Value::Map(m)) = items.last()
            && m.first().and_then(|(_, v)| v.as_integer()) == Some(KTY_SYMMETRIC.into())
        {
            let Some(Value::Map(m)) = items.pop() else {
                unreachable!("checked above")
            };
            let k = match m.as_slice() {
                [(kty, _), (label, Value::Bytes(k))]
                    if kty.as_integer() == Some(LABEL_KTY.into())
                        && label.as_integer() == Some(LABEL_CRV.into())
                        && k.len() == 32 =>
                {
                    let mut out = Zeroizing::new([0u8; 32]);
                    out.copy_from_slice(k);
                    out
                }
                _ => {
                    return Err(KeyError::Format(
                        "the storage key must be {1: 4, -1: 32 bytes}".into(),
                    ));
                }
            };
            storage = Some(k);
        }
        if items.len() < 2 {
            return Err(KeyError::Format(
                "the key set must hold the signing key and the encryption key".into(),
            ));
        }
        let mut enc = Zeroizing::new(Vec::new());
        let _ = ciborium::into_writer(&items[0], &mut *enc);
        let s = parse_okp(&enc, CRV_ED25519, ALG_EDDSA, true)?;
        let sd = s
            .d
            .as_deref()
            .ok_or_else(|| KeyError::Format("secret key material (label -4) is missing".into()))?;
        let signing = SigningKey::from_seed(sd);
        if signing.verifying_key().as_bytes() != &s.x {
            return Err(KeyError::Format(
                "a public key in the key set does not match its secret key".into(),
            ));
        }
        let mut x25519 = Vec::with_capacity(items.len() - 1);
        for item in &items[1..] {
            enc.clear();
            let _ = ciborium::into_writer(item, &mut *enc);
            let e = parse_okp(&enc, CRV_X25519, ALG_ECDH_ES_HKDF_256, true)?;
            let ed = e.d.as_deref().ok_or_else(|| {
                KeyError::Format("secret key material (label -4) is missing".into())
            })?;
            let key = EncryptionSecretKey::from_bytes(ed);
            if key.public_key().as_bytes() != &e.x {
                return Err(KeyError::Format(
                    "a public key in the key set does not match its secret key".into(),
                ));
            }
            x25519.push(key);
        }
        drop(items);
        let mut x25519 = x25519.into_iter();
        let Some(encryption) = x25519.next() else {
            return Err(KeyError::Format("the encryption key is missing".into()));
        };
        Ok(Self {
            signing,
            encryption,
            previous_encryption: x25519.collect(),
            storage,
        })
    }
}

struct ParsedOkp {
    x: [u8; 32],
    d: Option<Zeroizing<[u8; 32]>>,
}

fn okp_cose_key_value(
    crv: i64,
    alg: i64,
    kid: &KeyId,
    x: &[u8; 32],
    d: Option<&[u8; 32]>,
) -> Value {
    let mut entries = vec![
        (Value::from(LABEL_KTY), Value::from(KTY_OKP)),
        (Value::from(LABEL_KID), Value::Bytes(kid.to_vec())),
        (Value::from(LABEL_ALG), Value::from(alg)),
        (Value::from(LABEL_CRV), Value::from(crv)),
        (Value::from(LABEL_X), Value::Bytes(x.to_vec())),
    ];
    if let Some(d) = d {
        entries.push((Value::from(LABEL_D), Value::Bytes(d.to_vec())));
    }
    // Already in deterministic order: 1, 2, 3, -1, -2, -4.
    Value::Map(entries)
}

fn okp_cose_key(crv: i64, alg: i64, kid: &KeyId, x: &[u8; 32], d: Option<&[u8; 32]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    let _ = ciborium::into_writer(&okp_cose_key_value(crv, alg, kid, x, d), &mut out);
    out
}

/// Parses an OKP COSE_Key strictly: the labels this crate writes and no others, the expected
/// curve and algorithm, a kid equal to the thumbprint, and the deterministic encoding.
fn parse_okp(bytes: &[u8], crv: i64, alg: i64, secret: bool) -> Result<ParsedOkp, KeyError> {
    let value = cbor::parse_value(bytes, MAX_KEY_BYTES, "COSE_Key")?;
    let Value::Map(entries) = value else {
        return Err(KeyError::Format("a COSE_Key is a CBOR map".into()));
    };
    let get = |label: i64| {
        entries
            .iter()
            .find(|(k, _)| {
                k.as_integer()
                    .is_some_and(|i| i128::from(i) == i128::from(label))
            })
            .map(|(_, v)| v)
    };
    let int = |label: i64, name: &str| -> Result<i64, KeyError> {
        get(label)
            .and_then(|v| v.as_integer())
            .and_then(|i| i64::try_from(i).ok())
            .ok_or_else(|| KeyError::Format(format!("{name} is missing or not an integer")))
    };
    let bytes32 = |label: i64, name: &str| -> Result<Option<[u8; 32]>, KeyError> {
        match get(label) {
            None => Ok(None),
            Some(Value::Bytes(b)) => b
                .as_slice()
                .try_into()
                .map(Some)
                .map_err(|_| KeyError::Format(format!("{name} must be 32 bytes"))),
            Some(_) => Err(KeyError::Format(format!("{name} must be a byte string"))),
        }
    };
    if int(LABEL_KTY, "kty")? != KTY_OKP {
        return Err(KeyError::Format("kty must be OKP (1)".into()));
    }
    let got_crv = int(LABEL_CRV, "crv")?;
    if got_crv != crv {
        return Err(KeyError::Format(format!(
            "crv must be {crv}, not {got_crv}"
        )));
    }
    if let Some(a) = get(LABEL_ALG) {
        let a = a.as_integer().and_then(|i| i64::try_from(i).ok());
        if a != Some(alg) {
            return Err(KeyError::Format(format!("alg must be {alg}")));
        }
    }
    let x = bytes32(LABEL_X, "x")?.ok_or_else(|| KeyError::Format("x is missing".into()))?;
    let d = bytes32(LABEL_D, "d")?.map(Zeroizing::new);
    if d.is_some() != secret {
        return Err(KeyError::Format(if secret {
            "secret key material (d) is missing".into()
        } else {
            "a public COSE_Key must not carry secret material (d)".into()
        }));
    }
    let kid =
        bytes32(LABEL_KID, "kid")?.ok_or_else(|| KeyError::Format("kid is missing".into()))?;
    if kid != okp_thumbprint(crv, &x) {
        return Err(KeyError::Format(
            "kid is not the RFC 9679 thumbprint of the key".into(),
        ));
    }
    let expected = Zeroizing::new(okp_cose_key(crv, alg, &kid, &x, d.as_deref()));
    if expected.as_slice() != bytes {
        return Err(KeyError::Format(
            "unexpected labels, or not in deterministic encoding".into(),
        ));
    }
    Ok(ParsedOkp { x, d })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc_9679_shape() {
        // RFC 9679 §6 example is for an EC2 key; for OKP we pin our own value and the
        // encoding it hashes: a3 01 01 20 06 21 58 20 <x>.
        let x = [0x11u8; 32];
        let mut enc = hex::decode("a3010120062158 20".replace(' ', "")).unwrap();
        enc.extend_from_slice(&x);
        assert_eq!(
            okp_thumbprint(CRV_ED25519, &x),
            <[u8; 32]>::from(Sha256::digest(&enc))
        );
    }

    #[test]
    fn cose_keys_round_trip_and_refuse_tampering() {
        let keys = AgencySecretKeys::generate();
        let vk = keys.signing.verifying_key();
        let enc = vk.to_cose_key();
        assert_eq!(VerifyingKey::from_cose_key(&enc).unwrap(), *vk);
        // An encryption key is not accepted where a signing key is expected.
        let ek = keys.encryption.public_key().to_cose_key();
        assert!(VerifyingKey::from_cose_key(&ek).is_err());
        assert_eq!(
            EncryptionPublicKey::from_cose_key(&ek).unwrap(),
            *keys.encryption.public_key()
        );
        // A changed x no longer matches the kid.
        let mut bad = enc.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(VerifyingKey::from_cose_key(&bad).is_err());

        let set = keys.to_cose_key_set();
        let back = AgencySecretKeys::from_cose_key_set(&set).unwrap();
        assert_eq!(back.signing.verifying_key(), vk);
        assert_eq!(back.encryption.public_key(), keys.encryption.public_key());
        assert!(AgencySecretKeys::from_cose_key_set(&set[..set.len() - 3]).is_err());
        // A public key offered where a secret one is needed.
        assert!(AgencySecretKeys::from_cose_key_set(&enc).is_err());
    }

    #[test]
    fn low_order_x25519_keys_are_refused() {
        for x in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            let kid = okp_thumbprint(CRV_X25519, &x);
            let enc = okp_cose_key(CRV_X25519, ALG_ECDH_ES_HKDF_256, &kid, &x, None);
            assert_eq!(
                EncryptionPublicKey::from_cose_key(&enc),
                Err(KeyError::InvalidPoint)
            );
        }
    }

    #[test]
    fn signatures_verify_strictly() {
        let k = SigningKey::from_seed(&[9; 32]);
        let sig = k.sign(b"hello");
        assert!(k.verifying_key().verify_strict(b"hello", &sig));
        assert!(!k.verifying_key().verify_strict(b"hellO", &sig));
        assert!(!k.verifying_key().verify_strict(b"hello", &sig[..63]));
    }
}
