//! Envelopes: a message signed by the sending agency, encrypted for one addressee, and signed
//! again with routing metadata (RFC 9052 / RFC 9053, triple-wrapped in the manner of RFC 2634).
//!
//! ```text
//! outer  COSE_Sign1 (tag 18, EdDSA)   protected: version, from, to, message id, sent-at,
//!   │                                            case commitment, checkpoint?, sequence, previous?
//!   └─ payload: COSE_Encrypt (tag 96, ChaCha20/Poly1305)
//!        │   recipient: ECDH-ES + HKDF-256 over X25519, ephemeral key, kid = addressee's key
//!        └─ ciphertext of: inner COSE_Sign1 (tag 18, EdDSA)
//!                             protected: version, from, message id, case id, type, recipients
//!                             payload: the message, deterministic CBOR
//! ```
//!
//! spec/PROTOCOL.md §3 is the normative description; this module follows it step by step.

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use ciborium::Value;
use coset::iana;
use coset::{AsCborValue, CoseRecipientBuilder, Header, HeaderBuilder};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::card::AgencyCard;
use crate::cose::{self, CoseError, label};
use crate::ids::{AgencyId, CaseId, EnvelopeId, MessageId, Sha256Digest};
use crate::keys::{
    AgencySecretKeys, CRV_X25519, EncryptionSecretKey, KTY_OKP, KeyId, VerifyingKey, fill_random,
};
use crate::message::{Message, MessageError, MessageType};
use crate::reason::ReasonCode;

/// The protocol version this crate writes and reads.
pub const PROTOCOL_VERSION: u64 = 1;

/// Default largest envelope accepted: 32 MiB. Evidence content travels separately.
pub const DEFAULT_MAX_ENVELOPE_BYTES: usize = 32 * 1024 * 1024;

/// Default tolerance for clocks that disagree, in seconds.
pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 300;

/// Limits applied when sealing and opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest envelope, in bytes.
    pub max_envelope_bytes: usize,
    /// Largest encoded message body, in bytes.
    pub max_message_bytes: usize,
    /// How far `sent-at` may fall before a key's validity starts.
    pub clock_skew_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_envelope_bytes: DEFAULT_MAX_ENVELOPE_BYTES,
            max_message_bytes: crate::message::DEFAULT_MAX_MESSAGE_BYTES,
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
        }
    }
}

/// Who is at fault for an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The bytes or keys a peer supplied are invalid: answer with a rejection receipt.
    Peer,
    /// The caller used the API wrongly or supplied bad local input: fix the call.
    Caller,
    /// A bug in this crate.
    Internal,
}

/// The sending side: its identity and secret keys.
pub struct Sender<'a> {
    /// The sender's own card (its id and public keys).
    pub card: &'a AgencyCard,
    /// The matching secret keys.
    pub keys: &'a AgencySecretKeys,
}

/// The position of an envelope in the sender's chain for one case and addressee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainLink {
    /// 1 for the first envelope of the case to this addressee, then 2, 3 …
    pub sequence: u64,
    /// The id of the previous envelope in the chain (none for the first).
    pub previous: Option<EnvelopeId>,
}

impl ChainLink {
    /// The first link of a chain.
    pub const FIRST: ChainLink = ChainLink {
        sequence: 1,
        previous: None,
    };
}

/// One addressee: its card and the chain position of its envelope.
pub struct Addressee<'a> {
    /// The addressee's (trusted) card.
    pub card: &'a AgencyCard,
    /// Where this envelope stands in the chain to it.
    pub chain: ChainLink,
    /// The consistency proof from the checkpoint the previous envelope of this chain carried
    /// to [`SealParams::checkpoint`] (mutual witnessing, spec/PROTOCOL.md §6.6), if it grew.
    pub consistency: Option<crate::audit::witness::CarriedProof>,
}

/// What the sender states about the message besides its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealParams {
    /// The case.
    pub case_id: CaseId,
    /// The message id (the same in every addressee's envelope).
    pub message_id: MessageId,
    /// Unix seconds at sealing.
    pub sent_at: u64,
    /// The sender's latest signed checkpoint of the case log, if it keeps one.
    pub checkpoint: Option<Vec<u8>>,
}

/// Per-envelope randomness: the ephemeral X25519 secret and the content nonce.
///
/// [`seal`] draws these from the operating system; `seal_with` (feature `testing`) takes them
/// from the caller so that test vectors are reproducible. Never reuse them: the same secrets for
/// the same addressee key reuse a ChaCha20-Poly1305 key and nonce.
pub struct EnvelopeSecrets {
    /// Ephemeral X25519 secret.
    pub ephemeral: Zeroizing<[u8; 32]>,
    /// ChaCha20/Poly1305 nonce.
    pub nonce: [u8; 12],
}

impl EnvelopeSecrets {
    /// Fresh secrets from the operating system's random source.
    pub fn random() -> Self {
        let mut ephemeral = Zeroizing::new([0u8; 32]);
        fill_random(ephemeral.as_mut());
        let mut nonce = [0u8; 12];
        fill_random(&mut nonce);
        Self { ephemeral, nonce }
    }
}

/// One sealed envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEnvelope {
    /// The addressee.
    pub to: AgencyId,
    /// The envelope id (SHA-256 of `bytes`).
    pub id: EnvelopeId,
    /// The outer `COSE_Sign1`.
    pub bytes: Vec<u8>,
    /// The envelope's content key, for the sender to keep (wrapped at rest) so that it can
    /// later disclose the content to an auditor ([`disclose`]); never sent to anyone else.
    pub key: EnvelopeKey,
}

/// The ChaCha20/Poly1305 key of one envelope's content: what its addressee derives from the
/// key agreement. With it the envelope's own ciphertext opens ([`open_with_key`]), so the
/// content an auditor reads is exactly the bytes the sender signed and sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvelopeKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for EnvelopeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvelopeKey(…)")
    }
}

impl EnvelopeKey {
    /// From its bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(Zeroizing::new(b))
    }

    /// Its bytes (to wrap at rest or disclose).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Why sealing failed. Always the caller's input or a bug: nothing came from a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The message is incomplete or invalid.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// No addressee, a duplicate addressee, or the sender addressing itself.
    #[error("{0}")]
    Addressees(String),
    /// The sender's keys do not match its card.
    #[error("the secret keys do not belong to the sender's card ({0})")]
    KeyMismatch(AgencyId),
    /// The sealed envelope would exceed the size limit.
    #[error("the envelope would be {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Size it would have.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// An addressee's encryption key is a low-order point.
    #[error("the encryption key on {0}'s card is unusable (low-order point)")]
    BadAddresseeKey(AgencyId),
    /// The case id is not a UUIDv7 (the case commitment relies on its random bits).
    #[error("case id {0} is not a UUIDv7: create case ids with `--case new` or CaseId::generate")]
    InvalidCaseId(CaseId),
    /// Encryption failed (a bug).
    #[error("internal error while sealing: {0}")]
    Internal(String),
}

impl SealError {
    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            SealError::Internal(_) => Fault::Internal,
            _ => Fault::Caller,
        }
    }
}

/// The outer metadata of an envelope, readable without decrypting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeInfo {
    /// The envelope id.
    pub id: EnvelopeId,
    /// Size in bytes.
    pub size: usize,
    /// Protocol version.
    pub version: u64,
    /// Sending agency.
    pub from: AgencyId,
    /// Addressee of this envelope.
    pub to: AgencyId,
    /// Message id.
    pub message_id: MessageId,
    /// Unix seconds at sealing, as the sender states.
    pub sent_at: u64,
    /// Case commitment (see [`case_commitment`]).
    pub case_commitment: Sha256Digest,
    /// The sender's checkpoint for the case, if carried.
    pub checkpoint: Option<Vec<u8>>,
    /// The consistency proof from the checkpoint of the previous envelope of the chain, if carried.
    pub consistency: Option<crate::audit::witness::CarriedProof>,
    /// Chain position.
    pub chain: ChainLink,
    /// Key id of the signing key.
    pub signer_key_id: [u8; 32],
}

/// A verified, decrypted envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Outer metadata.
    pub info: EnvelopeInfo,
    /// The case.
    pub case_id: CaseId,
    /// Every addressee named by the sender.
    pub recipients: Vec<AgencyId>,
    /// The message.
    pub message: Message,
    /// The inner `COSE_Sign1`, exactly as signed by the sender: proof of origin of the content.
    pub inner: Vec<u8>,
    /// The officials who signed the message (spec/PEOPLE.md §5), in order: verified by [`open`]
    /// against the sender's key history; by [`open_with_key`] only parsed.
    pub officers: Vec<crate::officer::OfficerSignature>,
}

/// Why an envelope was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Larger than the limit.
    #[error("the envelope is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Not a well-formed envelope.
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// A protocol version this software does not speak.
    #[error(
        "the envelope uses protocol version {0}; this software speaks version {PROTOCOL_VERSION}"
    )]
    UnsupportedVersion(u64),
    /// The sender has no trusted card here.
    #[error("unknown sender {0}: no trusted agency card for it (pin its card first)")]
    UnknownSender(AgencyId),
    /// The signing key is not the one on the sender's card.
    #[error("the envelope from {0} is signed with a key that is not on its trusted card")]
    KeyMismatch(AgencyId),
    /// The signing key was revoked by the sender's root (spec/KEYS.md §6).
    #[error(
        "the envelope from {from} is signed with a key its root revoked ({reason}): refused whatever time it claims"
    )]
    RevokedSender {
        /// Sender.
        from: AgencyId,
        /// The revocation's reason.
        reason: &'static str,
    },
    /// The signing key was not valid at the stated time.
    #[error("the envelope from {from} was signed at {sent_at}, outside its key's validity")]
    KeyNotValid {
        /// Sender.
        from: AgencyId,
        /// Stated time.
        sent_at: u64,
    },
    /// The outer (origin) signature does not verify.
    #[error(
        "the origin signature of the envelope from {0} does not verify: it was altered or not sent by {0}"
    )]
    BadOriginSignature(AgencyId),
    /// Addressed to another agency.
    #[error("not a recipient: this envelope is addressed to {to}, not to {us}")]
    NotAddressee {
        /// Addressee.
        to: AgencyId,
        /// Us.
        us: AgencyId,
    },
    /// Encrypted for a key other than ours.
    #[error(
        "not a recipient: the envelope is encrypted for a key {0} does not hold (neither its current encryption key nor one it replaced)"
    )]
    WrongEncryptionKey(AgencyId),
    /// Decryption failed.
    #[error("the envelope cannot be decrypted: its ciphertext or key agreement data was altered")]
    Undecryptable,
    /// The inner signature does not verify.
    #[error("the inner signature of the message from {0} does not verify")]
    BadInnerSignature(AgencyId),
    /// An official's signature of the message is not by a key the sender's key history
    /// certifies for that role at `sent-at`, is revoked, or does not verify (spec/PEOPLE.md §5).
    #[error("an official's signature is refused: {0}")]
    OfficerNotValid(String),
    /// An official's signature by a key the sender's key history, as held here, does not
    /// name: the history that certifies it may not have arrived yet (spec/PEOPLE.md §5.4).
    /// Its reason code is `officer-not-valid`; a node may instead leave the envelope
    /// unanswered while it asks the sender for its key history.
    #[error("an official's signature is by a key not known here: {0}")]
    UnknownOfficer(String),
    /// The inner message was signed by another agency, or does not name us: it was re-wrapped
    /// by a recipient for a third party (surreptitious forwarding).
    #[error("forwarded message refused: {0}")]
    Forwarded(String),
    /// Inner and outer headers disagree.
    #[error("the envelope's layers disagree: {0}")]
    HeaderMismatch(String),
    /// The message body is invalid.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The recipient's keys do not match its own card (local set-up error).
    #[error("the local secret keys do not match the local card: {0}")]
    LocalKeys(String),
}

impl From<CoseError> for OpenError {
    fn from(e: CoseError) -> Self {
        OpenError::Malformed(e.to_string())
    }
}

impl OpenError {
    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            OpenError::LocalKeys(_) => Fault::Caller,
            OpenError::Message(MessageError::Encode(_)) => Fault::Internal,
            _ => Fault::Peer,
        }
    }

    /// The reason code of the rejection receipt that answers this error.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            OpenError::TooLarge { .. } => ReasonCode::Oversized,
            OpenError::Malformed(_) => ReasonCode::Malformed,
            OpenError::UnsupportedVersion(_) => ReasonCode::UnsupportedVersion,
            OpenError::UnknownSender(_) => ReasonCode::UnknownSender,
            OpenError::KeyMismatch(_) | OpenError::WrongEncryptionKey(_) => ReasonCode::KeyMismatch,
            OpenError::KeyNotValid { .. } => ReasonCode::KeyNotValid,
            OpenError::RevokedSender { .. } => ReasonCode::RevokedSender,
            OpenError::BadOriginSignature(_) | OpenError::BadInnerSignature(_) => {
                ReasonCode::BadSignature
            }
            OpenError::NotAddressee { .. } => ReasonCode::NotAddressee,
            OpenError::OfficerNotValid(_) | OpenError::UnknownOfficer(_) => {
                ReasonCode::OfficerNotValid
            }
            OpenError::Undecryptable => ReasonCode::Undecryptable,
            OpenError::Forwarded(_) => ReasonCode::Forwarded,
            OpenError::HeaderMismatch(_) => ReasonCode::HeaderMismatch,
            OpenError::Message(MessageError::Cbor(crate::cbor::DecodeError::TooLarge {
                ..
            })) => ReasonCode::Oversized,
            OpenError::Message(_) => ReasonCode::InvalidSchema,
            OpenError::LocalKeys(_) => ReasonCode::InternalError,
        }
    }
}

/// An agency's signing key as the receiver trusts it: the card that lists it and the window
/// in which it signs.
#[derive(Debug, Clone, Copy)]
pub struct SignerKey<'a> {
    /// The card that lists the key (the current card, or an earlier one of its key history).
    pub card: &'a AgencyCard,
    /// Unix seconds from which the key signs.
    pub valid_from: u64,
    /// Unix seconds from which it no longer signs, if limited.
    pub valid_until: Option<u64>,
}

impl<'a> SignerKey<'a> {
    /// The card's own signing key with the window the card gives it.
    pub fn of_card(card: &'a AgencyCard) -> Self {
        let (valid_from, valid_until) = card
            .key_validity(card.signing_key().id())
            .unwrap_or((0, None));
        Self {
            card,
            valid_from,
            valid_until,
        }
    }
}

/// Looks up trusted agency cards by id.
pub trait TrustedCards {
    /// The trusted (current) card of `id`, if any.
    fn card(&self, id: &AgencyId) -> Option<&AgencyCard>;

    /// The signing key `kid` of agency `id`, if trusted. Without a key history only the
    /// current card's key is.
    fn signer(&self, id: &AgencyId, kid: &KeyId) -> Result<SignerKey<'_>, OpenError> {
        let card = self
            .card(id)
            .ok_or_else(|| OpenError::UnknownSender(id.clone()))?;
        if card.signing_key().id() != kid {
            return Err(OpenError::KeyMismatch(id.clone()));
        }
        Ok(SignerKey::of_card(card))
    }

    /// The key of official `kid` of agency `id`, if its key history certifies it for `role`,
    /// not revoked, at `at`. Without a key history, none is.
    fn officer(
        &self,
        id: &AgencyId,
        kid: &KeyId,
        role: crate::keyhist::OfficerRole,
        at: u64,
    ) -> Result<VerifyingKey, crate::officer::Refused> {
        let _ = (kid, role, at);
        Err(crate::officer::Refused::Unknown(format!(
            "no key history of {id}'s officials is held here"
        )))
    }
}

/// An official of `h` for a signature: certified for `role`, not revoked, valid at `at`.
fn officer_of(
    h: &crate::keyhist::KeyHistory,
    kid: &KeyId,
    role: crate::keyhist::OfficerRole,
    at: u64,
) -> Result<VerifyingKey, crate::officer::Refused> {
    officer_judged(h, kid, role, at, h.officer(kid, at))
}

/// An official of `h` for a signature, as an auditor judges it after the fact
/// ([`crate::keyhist::KeyHistory::officer_when_signed`]).
fn officer_when_signed(
    h: &crate::keyhist::KeyHistory,
    kid: &KeyId,
    role: crate::keyhist::OfficerRole,
    at: u64,
) -> Result<VerifyingKey, crate::officer::Refused> {
    officer_judged(h, kid, role, at, h.officer_when_signed(kid, at))
}

fn officer_judged(
    h: &crate::keyhist::KeyHistory,
    kid: &KeyId,
    role: crate::keyhist::OfficerRole,
    at: u64,
    found: Result<&crate::keyhist::OfficerRecord, crate::keyhist::KeyRefusal>,
) -> Result<VerifyingKey, crate::officer::Refused> {
    use crate::keyhist::KeyRefusal;
    use crate::officer::Refused::{NotValid, Unknown};
    let short = &hex::encode(kid)[..16];
    match found {
        Ok(o) if o.role == role => Ok(o.key.clone()),
        Ok(o) => Err(NotValid(format!(
            "{short}… is {}'s key, certified as {}, not {}",
            o.name,
            o.role.as_str(),
            role.as_str()
        ))),
        Err(KeyRefusal::Unknown) => Err(Unknown(format!(
            "{short}… is no official's key in {}'s key history (as held here: {} statements)",
            h.agency(),
            h.statements().len()
        ))),
        Err(KeyRefusal::Revoked(r)) => Err(NotValid(format!(
            "{short}… was revoked ({}, statement {}, effective {})",
            r.reason.as_str(),
            r.seq,
            crate::time::format_unix(r.effective)
        ))),
        Err(KeyRefusal::OutsideWindow { from, until }) => Err(NotValid(format!(
            "{short}… is certified from {from} until {until}, not at {at}"
        ))),
    }
}

impl TrustedCards for [AgencyCard] {
    fn card(&self, id: &AgencyId) -> Option<&AgencyCard> {
        self.iter().find(|c| c.id() == id)
    }
}

impl TrustedCards for Vec<AgencyCard> {
    fn card(&self, id: &AgencyId) -> Option<&AgencyCard> {
        self.as_slice().card(id)
    }
}

impl TrustedCards for std::collections::BTreeMap<AgencyId, AgencyCard> {
    fn card(&self, id: &AgencyId) -> Option<&AgencyCard> {
        self.get(id)
    }
}

impl TrustedCards for crate::keyhist::KeyHistory {
    fn card(&self, id: &AgencyId) -> Option<&AgencyCard> {
        (self.agency() == id).then(|| self.current_card())
    }

    fn officer(
        &self,
        id: &AgencyId,
        kid: &KeyId,
        role: crate::keyhist::OfficerRole,
        at: u64,
    ) -> Result<VerifyingKey, crate::officer::Refused> {
        if self.agency() != id {
            return Err(crate::officer::Refused::NotValid(format!(
                "{id} is not trusted here"
            )));
        }
        officer_of(self, kid, role, at)
    }

    fn signer(&self, id: &AgencyId, kid: &KeyId) -> Result<SignerKey<'_>, OpenError> {
        if self.agency() != id {
            return Err(OpenError::UnknownSender(id.clone()));
        }
        match self.signer(kid) {
            Ok((card, rec)) => Ok(SignerKey {
                card,
                valid_from: rec.from,
                valid_until: rec
                    .until
                    .map(|u| u.saturating_add(crate::keyhist::ROTATION_GRACE_SECS)),
            }),
            Err(
                crate::keyhist::KeyRefusal::Unknown
                | crate::keyhist::KeyRefusal::OutsideWindow { .. },
            ) => Err(OpenError::KeyMismatch(id.clone())),
            Err(crate::keyhist::KeyRefusal::Revoked(r)) => Err(OpenError::RevokedSender {
                from: id.clone(),
                reason: r.reason.as_str(),
            }),
        }
    }
}

impl TrustedCards for std::collections::BTreeMap<AgencyId, crate::keyhist::KeyHistory> {
    fn card(&self, id: &AgencyId) -> Option<&AgencyCard> {
        self.get(id).map(|h| h.current_card())
    }

    fn officer(
        &self,
        id: &AgencyId,
        kid: &KeyId,
        role: crate::keyhist::OfficerRole,
        at: u64,
    ) -> Result<VerifyingKey, crate::officer::Refused> {
        let h = self.get(id).ok_or_else(|| {
            crate::officer::Refused::NotValid(format!("{id} is not trusted here"))
        })?;
        officer_of(h, kid, role, at)
    }

    fn signer(&self, id: &AgencyId, kid: &KeyId) -> Result<SignerKey<'_>, OpenError> {
        let h = self
            .get(id)
            .ok_or_else(|| OpenError::UnknownSender(id.clone()))?;
        TrustedCards::signer(h, id, kid)
    }
}

/// The case commitment carried in the outer header: SHA-256("rogatory/case/v1" ‖ 0x00 ‖ case id
/// bytes). It lets anyone group envelopes by case, and a recipient check the inner case id,
/// without showing the case id itself.
pub fn case_commitment(case_id: &CaseId) -> Sha256Digest {
    let mut h = Sha256::new();
    h.update(b"rogatory/case/v1\0");
    h.update(case_id.as_bytes());
    Sha256Digest(h.finalize().into())
}

/// Seals `message` for every addressee: one envelope each, all carrying the same inner signed
/// message that names every addressee.
pub fn seal(
    sender: &Sender<'_>,
    addressees: &[Addressee<'_>],
    message: &Message,
    params: &SealParams,
    limits: &Limits,
) -> Result<Vec<SealedEnvelope>, SealError> {
    seal_signed(sender, &[], addressees, message, params, limits)
}

/// [`seal`], the message also signed by the agency's `officers` in their own names (an issuer,
/// then at most one validating authority: spec/PEOPLE.md §5), inside the agency's inner
/// signature.
pub fn seal_signed(
    sender: &Sender<'_>,
    officers: &[crate::officer::Officer<'_>],
    addressees: &[Addressee<'_>],
    message: &Message,
    params: &SealParams,
    limits: &Limits,
) -> Result<Vec<SealedEnvelope>, SealError> {
    let secrets: Vec<_> = addressees
        .iter()
        .map(|_| EnvelopeSecrets::random())
        .collect();
    seal_officers_with(
        sender, officers, addressees, message, params, limits, &secrets,
    )
}

/// [`seal`] with caller-supplied per-envelope secrets (one per addressee, in order). For test
/// vectors; production code calls [`seal`].
pub fn seal_with(
    sender: &Sender<'_>,
    addressees: &[Addressee<'_>],
    message: &Message,
    params: &SealParams,
    limits: &Limits,
    secrets: &[EnvelopeSecrets],
) -> Result<Vec<SealedEnvelope>, SealError> {
    seal_officers_with(sender, &[], addressees, message, params, limits, secrets)
}

/// [`seal_signed`], after the officials' signatures `made` earlier over the same message, the
/// same message id and case (an issuer's, which a validating authority now countersigns).
pub fn seal_countersigned(
    sender: &Sender<'_>,
    made: &[crate::officer::OfficerSignature],
    officers: &[crate::officer::Officer<'_>],
    addressees: &[Addressee<'_>],
    message: &Message,
    params: &SealParams,
    limits: &Limits,
) -> Result<Vec<SealedEnvelope>, SealError> {
    let secrets: Vec<_> = addressees
        .iter()
        .map(|_| EnvelopeSecrets::random())
        .collect();
    seal_inner(
        sender, made, officers, addressees, message, params, limits, &secrets,
    )
}

/// [`seal_signed`] with caller-supplied per-envelope secrets. For test vectors.
pub fn seal_officers_with(
    sender: &Sender<'_>,
    officers: &[crate::officer::Officer<'_>],
    addressees: &[Addressee<'_>],
    message: &Message,
    params: &SealParams,
    limits: &Limits,
    secrets: &[EnvelopeSecrets],
) -> Result<Vec<SealedEnvelope>, SealError> {
    seal_inner(
        sender,
        &[],
        officers,
        addressees,
        message,
        params,
        limits,
        secrets,
    )
}

#[allow(clippy::too_many_arguments)]
fn seal_inner(
    sender: &Sender<'_>,
    made: &[crate::officer::OfficerSignature],
    officers: &[crate::officer::Officer<'_>],
    addressees: &[Addressee<'_>],
    message: &Message,
    params: &SealParams,
    limits: &Limits,
    secrets: &[EnvelopeSecrets],
) -> Result<Vec<SealedEnvelope>, SealError> {
    message.validate()?;
    check_sender(sender)?;
    if params.case_id.0.get_version_num() != 7 {
        return Err(SealError::InvalidCaseId(params.case_id));
    }
    if addressees.is_empty() {
        return Err(SealError::Addressees(
            "at least one addressee is needed".into(),
        ));
    }
    if secrets.len() != addressees.len() {
        return Err(SealError::Internal(
            "one set of secrets per addressee".into(),
        ));
    }
    let mut recipients: Vec<AgencyId> = addressees.iter().map(|a| a.card.id().clone()).collect();
    recipients.sort();
    if recipients.windows(2).any(|w| w[0] == w[1]) {
        return Err(SealError::Addressees("an addressee is listed twice".into()));
    }
    if recipients.contains(sender.card.id()) {
        return Err(SealError::Addressees(
            "an agency cannot address a message to itself".into(),
        ));
    }
    if addressees
        .iter()
        .any(|a| a.chain.sequence == 0 || (a.chain.sequence == 1) != a.chain.previous.is_none())
    {
        return Err(SealError::Addressees(
            "chain position: sequence starts at 1, and every envelope but the first names its previous one".into(),
        ));
    }

    let body = message.to_cbor()?;
    if body.len() > limits.max_message_bytes {
        return Err(SealError::TooLarge {
            size: body.len(),
            limit: limits.max_message_bytes,
        });
    }
    let mut inner_header = HeaderBuilder::new()
        .value(label::VERSION, Value::from(PROTOCOL_VERSION))
        .value(label::FROM, Value::Text(sender.card.id().to_string()))
        .value(
            label::MESSAGE_ID,
            Value::Bytes(params.message_id.as_bytes().to_vec()),
        )
        .value(
            label::CASE_ID,
            Value::Bytes(params.case_id.as_bytes().to_vec()),
        )
        .value(
            label::MESSAGE_TYPE,
            Value::Text(message.kind().as_str().into()),
        )
        .value(
            label::RECIPIENTS,
            Value::Array(
                recipients
                    .iter()
                    .map(|r| Value::Text(r.to_string()))
                    .collect(),
            ),
        );
    if !officers.is_empty() || !made.is_empty() {
        let kind = message.kind();
        let signed = crate::officer::Signed {
            from: sender.card.id(),
            message_id: &params.message_id,
            case_id: &params.case_id,
            kind: kind.as_str(),
            recipients: &recipients,
            body: &body,
        };
        let value =
            crate::officer::sign_after(made, officers, &signed).map_err(SealError::Addressees)?;
        inner_header = inner_header.value(label::OFFICERS, value);
    }
    let inner = cose::sign1(inner_header.build(), &body, &sender.keys.signing);
    let commitment = case_commitment(&params.case_id);

    let mut out = Vec::with_capacity(addressees.len());
    for (a, s) in addressees.iter().zip(secrets) {
        let (bytes, key) = wrap(&inner, sender, a, &commitment, params, s)?;
        if bytes.len() > limits.max_envelope_bytes {
            return Err(SealError::TooLarge {
                size: bytes.len(),
                limit: limits.max_envelope_bytes,
            });
        }
        out.push(SealedEnvelope {
            to: a.card.id().clone(),
            id: Sha256Digest::of(&bytes),
            bytes,
            key,
        });
    }
    Ok(out)
}

/// Encrypts a signed inner message for one addressee and signs the outer layer.
fn wrap(
    inner: &[u8],
    sender: &Sender<'_>,
    a: &Addressee<'_>,
    commitment: &Sha256Digest,
    params: &SealParams,
    s: &EnvelopeSecrets,
) -> Result<(Vec<u8>, EnvelopeKey), SealError> {
    let (encrypted, key) = encrypt_for(a.card, inner, s)?;
    let mut h = HeaderBuilder::new()
        .value(label::VERSION, Value::from(PROTOCOL_VERSION))
        .value(label::FROM, Value::Text(sender.card.id().to_string()))
        .value(label::TO, Value::Text(a.card.id().to_string()))
        .value(
            label::MESSAGE_ID,
            Value::Bytes(params.message_id.as_bytes().to_vec()),
        )
        .value(label::SENT_AT, Value::from(params.sent_at))
        .value(label::CASE_COMMITMENT, Value::Bytes(commitment.0.to_vec()));
    if let Some(cp) = &params.checkpoint {
        h = h.value(label::CHECKPOINT, Value::Bytes(cp.clone()));
    }
    h = h.value(label::SEQUENCE, Value::from(a.chain.sequence));
    if let Some(prev) = a.chain.previous {
        h = h.value(label::PREVIOUS, Value::Bytes(prev.0.to_vec()));
    }
    if let Some(p) = &a.consistency {
        h = h.value(label::CONSISTENCY, Value::Bytes(p.to_bytes()));
    }
    Ok((
        cose::sign1(h.build(), &encrypted, &sender.keys.signing),
        key,
    ))
}

/// Building blocks for tests that must construct envelopes the normal API refuses to build.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing {
    use super::*;

    /// Wraps an arbitrary inner `COSE_Sign1` in a correctly encrypted and signed envelope from
    /// `sender` to `to`: what a dishonest recipient would do to forward a message it received.
    pub fn rewrap(
        inner: &[u8],
        sender: &Sender<'_>,
        to: &AgencyCard,
        params: &SealParams,
    ) -> Vec<u8> {
        let a = Addressee {
            card: to,
            chain: ChainLink::FIRST,
            consistency: None,
        };
        wrap(
            inner,
            sender,
            &a,
            &case_commitment(&params.case_id),
            params,
            &EnvelopeSecrets::random(),
        )
        .map(|(bytes, _)| bytes)
        .unwrap_or_default()
    }
}

fn check_sender(sender: &Sender<'_>) -> Result<(), SealError> {
    if sender.keys.signing.verifying_key() != sender.card.signing_key()
        || sender.keys.encryption.public_key() != sender.card.encryption_key()
    {
        return Err(SealError::KeyMismatch(sender.card.id().clone()));
    }
    Ok(())
}

/// The protected header of the recipient structure: `{1: -25}`.
fn recipient_protected() -> Header {
    HeaderBuilder::new()
        .algorithm(iana::Algorithm::ECDH_ES_HKDF_256)
        .build()
}

/// COSE_KDF_Context (RFC 9053 §5.2) for direct ECDH-ES with ChaCha20/Poly1305: no party
/// information, key length 256 bits, and the recipient's serialized protected header.
fn kdf_context(recipient_protected: &[u8]) -> Vec<u8> {
    let null3 = || Value::Array(vec![Value::Null, Value::Null, Value::Null]);
    let ctx = Value::Array(vec![
        Value::from(iana::Algorithm::ChaCha20Poly1305 as i64),
        null3(),
        null3(),
        Value::Array(vec![
            Value::from(256u64),
            Value::Bytes(recipient_protected.to_vec()),
        ]),
    ]);
    let mut out = Vec::with_capacity(32);
    let _ = ciborium::into_writer(&ctx, &mut out);
    out
}

/// HKDF-SHA-256 with no salt over the shared secret, `info` = the KDF context.
fn derive_cek(shared: &[u8; 32], recipient_protected: &[u8]) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha256>::new(None, shared);
    let mut cek = Zeroizing::new([0u8; 32]);
    // 32 bytes is always a valid HKDF-SHA-256 output length.
    let _ = hk.expand(&kdf_context(recipient_protected), cek.as_mut());
    cek
}

fn ephemeral_cose_key(public: &[u8; 32]) -> Value {
    Value::Map(vec![
        (Value::from(1), Value::from(KTY_OKP)),
        (Value::from(-1), Value::from(CRV_X25519)),
        (Value::from(-2), Value::Bytes(public.to_vec())),
    ])
}

fn encrypt_for(
    card: &AgencyCard,
    inner: &[u8],
    s: &EnvelopeSecrets,
) -> Result<(Vec<u8>, EnvelopeKey), SealError> {
    let eph = EncryptionSecretKey::from_bytes(&s.ephemeral);
    let shared = eph.diffie_hellman(card.encryption_key().dalek());
    if !shared.was_contributory() {
        return Err(SealError::BadAddresseeKey(card.id().clone()));
    }
    let rp = recipient_protected();
    let rp_bytes = cose::protected_bytes(rp.clone());
    let cek = derive_cek(shared.as_bytes(), &rp_bytes);
    let recipient = CoseRecipientBuilder::new()
        .protected(rp)
        .unprotected(
            HeaderBuilder::new()
                .key_id(card.encryption_key().id().to_vec())
                .value(
                    iana::HeaderAlgorithmParameter::EphemeralKey as i64,
                    ephemeral_cose_key(eph.public_key().as_bytes()),
                )
                .build(),
        )
        .ciphertext(Vec::new())
        .build();
    let recipient = recipient
        .to_cbor_value()
        .ok()
        .and_then(|v| crate::cbor::value_to_vec(v).ok())
        .ok_or_else(|| SealError::Internal("recipient structure".into()))?;
    let body_protected = cose::protected_bytes(
        HeaderBuilder::new()
            .algorithm(iana::Algorithm::ChaCha20Poly1305)
            .build(),
    );
    let aad = enc_structure(&body_protected);
    let cipher = ChaCha20Poly1305::new_from_slice(cek.as_ref())
        .map_err(|_| SealError::Internal("content key length".into()))?;
    // COSE_Encrypt_Tagged = 96([protected, {5: IV}, ciphertext, [recipient]]), written directly
    // and encrypted in place, so that the content is copied once.
    let mut out = Vec::with_capacity(inner.len() + recipient.len() + 80);
    out.extend_from_slice(&[0xd8, 0x60, 0x84]);
    cose::put_bstr(&mut out, &body_protected);
    out.extend_from_slice(&[0xa1, 0x05]);
    cose::put_bstr(&mut out, &s.nonce);
    cose::put_head(&mut out, 2, (inner.len() + TAG_LEN) as u64);
    let start = out.len();
    out.extend_from_slice(inner);
    let tag = cipher
        .encrypt_inout_detached((&s.nonce).into(), &aad, (&mut out[start..]).into())
        .map_err(|_| SealError::Internal("ChaCha20/Poly1305 encryption failed".into()))?;
    out.extend_from_slice(&tag);
    out.push(0x81);
    out.extend_from_slice(&recipient);
    Ok((out, EnvelopeKey::from_bytes(*cek)))
}

/// Length of the Poly1305 tag.
const TAG_LEN: usize = 16;

/// `Enc_structure = ["Encrypt", protected, h'']` (RFC 9052 §5.3).
fn enc_structure(protected: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(protected.len() + 12);
    out.extend_from_slice(b"\x83\x67Encrypt");
    cose::put_bstr(&mut out, protected);
    out.push(0x40);
    out
}

/// Reads the outer metadata without verifying anything. For display only: nothing it returns
/// is authenticated until [`verify_origin`] or [`open`] succeeds.
pub fn inspect(bytes: &[u8], limits: &Limits) -> Result<EnvelopeInfo, OpenError> {
    parse_outer(bytes, limits).map(|(info, _)| info)
}

fn parse_outer<'a>(
    bytes: &'a [u8],
    limits: &Limits,
) -> Result<(EnvelopeInfo, cose::Sign1<'a>), OpenError> {
    if bytes.len() > limits.max_envelope_bytes {
        return Err(OpenError::TooLarge {
            size: bytes.len(),
            limit: limits.max_envelope_bytes,
        });
    }
    const W: &str = "envelope";
    let s = cose::parse_sign1(bytes, W)?;
    let h = &s.header;
    let version = cose::get_uint(h, label::VERSION, W, "version")?;
    if version != PROTOCOL_VERSION {
        return Err(OpenError::UnsupportedVersion(version));
    }
    cose::only_labels(
        h,
        &[
            label::VERSION,
            label::FROM,
            label::TO,
            label::MESSAGE_ID,
            label::SENT_AT,
            label::CASE_COMMITMENT,
            label::CHECKPOINT,
            label::SEQUENCE,
            label::PREVIOUS,
            label::CONSISTENCY,
        ],
        W,
    )?;
    let agency = |l, p| -> Result<AgencyId, OpenError> {
        AgencyId::new(cose::get_text(h, l, W, p)?).map_err(|e| OpenError::Malformed(e.to_string()))
    };
    let from = agency(label::FROM, "from")?;
    let to = agency(label::TO, "to")?;
    let message_id = MessageId::from_bytes(cose::get_fixed(h, label::MESSAGE_ID, W, "message id")?);
    let sent_at = cose::get_uint(h, label::SENT_AT, W, "sent-at")?;
    let case_commitment = Sha256Digest(cose::get_fixed(
        h,
        label::CASE_COMMITMENT,
        W,
        "case commitment",
    )?);
    let checkpoint = cose::get_bytes(h, label::CHECKPOINT, W, "checkpoint")?.map(<[u8]>::to_vec);
    let sequence = cose::get_uint(h, label::SEQUENCE, W, "sequence")?;
    let previous = match cose::get_bytes(h, label::PREVIOUS, W, "previous")? {
        Some(_) => Some(Sha256Digest(cose::get_fixed(
            h,
            label::PREVIOUS,
            W,
            "previous",
        )?)),
        None => None,
    };
    let consistency = cose::get_bytes(h, label::CONSISTENCY, W, "consistency proof")?
        .map(crate::audit::witness::CarriedProof::from_bytes)
        .transpose()
        .map_err(|e| OpenError::Malformed(e.to_string()))?;
    if consistency.is_some() && checkpoint.is_none() {
        return Err(OpenError::Malformed(
            "a consistency proof comes only with the checkpoint it leads to".into(),
        ));
    }
    if sequence == 0 || (sequence == 1) != previous.is_none() {
        return Err(OpenError::Malformed(
            "chain position: sequence starts at 1, and only the first envelope has no previous one"
                .into(),
        ));
    }
    let mut signer_key_id = [0u8; 32];
    signer_key_id.copy_from_slice(&h.key_id);
    let info = EnvelopeInfo {
        id: Sha256Digest::of(bytes),
        size: bytes.len(),
        version,
        from,
        to,
        message_id,
        sent_at,
        case_commitment,
        checkpoint,
        consistency,
        chain: ChainLink { sequence, previous },
        signer_key_id,
    };
    Ok((info, s))
}

fn check_origin(
    info: &EnvelopeInfo,
    s: &cose::Sign1<'_>,
    signer: &SignerKey<'_>,
    limits: &Limits,
) -> Result<(), OpenError> {
    let card = signer.card;
    if card.id() != &info.from {
        return Err(OpenError::UnknownSender(info.from.clone()));
    }
    if &info.signer_key_id != card.signing_key().id() {
        return Err(OpenError::KeyMismatch(info.from.clone()));
    }
    let early = info.sent_at.saturating_add(limits.clock_skew_secs) < signer.valid_from;
    let late = signer.valid_until.is_some_and(|u| info.sent_at >= u);
    if early || late {
        return Err(OpenError::KeyNotValid {
            from: info.from.clone(),
            sent_at: info.sent_at,
        });
    }
    if !cose::verify_sign1(s, card.signing_key()) {
        return Err(OpenError::BadOriginSignature(info.from.clone()));
    }
    Ok(())
}

/// Checks the outer signature against the sender's card, without decrypting: what a relay,
/// the recipient before decrypting, or an auditor without the content can verify.
pub fn verify_origin(
    bytes: &[u8],
    sender: &AgencyCard,
    limits: &Limits,
) -> Result<EnvelopeInfo, OpenError> {
    let (info, s) = parse_outer(bytes, limits)?;
    check_origin(&info, &s, &SignerKey::of_card(sender), limits)?;
    Ok(info)
}

/// [`verify_origin`] with the signer's key as its key history gives it (the card that listed
/// it and its window, [`TrustedCards::signer`]).
pub fn verify_origin_by(
    bytes: &[u8],
    signer: &SignerKey<'_>,
    limits: &Limits,
) -> Result<EnvelopeInfo, OpenError> {
    let (info, s) = parse_outer(bytes, limits)?;
    check_origin(&info, &s, signer, limits)?;
    Ok(info)
}

/// The receiving side: its card and secret keys.
pub struct Recipient<'a> {
    /// Our card.
    pub card: &'a AgencyCard,
    /// Our secret keys.
    pub keys: &'a AgencySecretKeys,
}

/// Verifies and opens an envelope addressed to `recipient`, from a sender whose card is in
/// `trusted`. Every check of spec/PROTOCOL.md §3.8 runs, in order; the first failure is
/// returned.
pub fn open(
    bytes: &[u8],
    recipient: &Recipient<'_>,
    trusted: &(impl TrustedCards + ?Sized),
    limits: &Limits,
) -> Result<Opened, OpenError> {
    if recipient.keys.encryption.public_key() != recipient.card.encryption_key()
        || recipient.keys.signing.verifying_key() != recipient.card.signing_key()
    {
        return Err(OpenError::LocalKeys(recipient.card.id().to_string()));
    }
    let (info, outer) = parse_outer(bytes, limits)?;
    let signer = trusted.signer(&info.from, &info.signer_key_id)?;
    check_origin(&info, &outer, &signer, limits)?;
    let card = signer.card;
    let us = recipient.card.id();
    if &info.to != us {
        return Err(OpenError::NotAddressee {
            to: info.to.clone(),
            us: us.clone(),
        });
    }

    let inner = decrypt(outer.payload, recipient)?;
    let (from, at) = (info.from.clone(), info.sent_at);
    let key_of = |kid: &KeyId, role| trusted.officer(&from, kid, role, at);
    open_inner(info, inner, card, limits, Some(&key_of))
}

/// Opens an envelope with its content key instead of the addressee's secret key: what an
/// auditor does with a key disclosed to it ([`undisclose`]). Every check of [`open`] runs
/// that does not depend on who reads it: the sender's outer signature (with `sender`, its
/// card), the content's authentication under the key, the inner signature, and that the two
/// layers agree and the message names the envelope's addressee. With `officials`, the
/// sender's key history, the officials' signatures are checked as an auditor checks them
/// after the fact (spec/PEOPLE.md §5: certified for their roles and valid when the envelope
/// was sealed, and revoked, if at all, only from a later time); without it they are only
/// parsed.
pub fn open_with_key(
    bytes: &[u8],
    key: &EnvelopeKey,
    sender: &AgencyCard,
    officials: Option<&crate::keyhist::KeyHistory>,
    limits: &Limits,
) -> Result<Opened, OpenError> {
    let (info, outer) = parse_outer(bytes, limits)?;
    check_origin(&info, &outer, &SignerKey::of_card(sender), limits)?;
    let p = parse_encrypt(outer.payload)?;
    let inner = decrypt_parts(&p, key)?;
    let (from, at) = (info.from.clone(), info.sent_at);
    let key_of = |kid: &KeyId, role| match officials {
        Some(h) if h.agency() == &from => officer_when_signed(h, kid, role, at),
        Some(h) => Err(crate::officer::Refused::NotValid(format!(
            "the key history given is {}'s",
            h.agency()
        ))),
        None => Err(crate::officer::Refused::NotValid("no key history".into())),
    };
    let check: Option<OfficerKeyOf<'_>> = officials.map(|_| &key_of as OfficerKeyOf<'_>);
    open_inner(info, inner, sender, limits, check)
}

/// The content key of an envelope addressed to `recipient`, derived as [`open`] derives it
/// and checked by decrypting: what the addressee discloses to an auditor. The outer signature
/// is not checked again (the envelope was verified when it was received).
pub fn envelope_key(
    bytes: &[u8],
    recipient: &Recipient<'_>,
    limits: &Limits,
) -> Result<EnvelopeKey, OpenError> {
    let (_, outer) = parse_outer(bytes, limits)?;
    let p = parse_encrypt(outer.payload)?;
    let key = derive_key(&p, recipient)?;
    decrypt_parts(&p, &key)?;
    Ok(key)
}

/// An envelope's content key encrypted for an auditor's card: a `COSE_Encrypt` exactly as an
/// envelope's encrypted layer is (ECDH-ES + HKDF-256 over X25519 to the card's encryption
/// key, ChaCha20/Poly1305), whose plaintext is the 32-byte key.
pub fn disclose(key: &EnvelopeKey, auditor: &AgencyCard) -> Result<Vec<u8>, SealError> {
    encrypt_for(auditor, key.as_bytes(), &EnvelopeSecrets::random()).map(|(b, _)| b)
}

/// The content key in a disclosure made by [`disclose`] for `auditor`.
pub fn undisclose(bytes: &[u8], auditor: &Recipient<'_>) -> Result<EnvelopeKey, OpenError> {
    let plain = Zeroizing::new(decrypt(bytes, auditor)?);
    let b: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| OpenError::Malformed("a disclosed key is 32 bytes".into()))?;
    Ok(EnvelopeKey::from_bytes(b))
}

/// The checks of the inner signed message, once decrypted (spec/PROTOCOL.md §3.8, 12–17):
/// signed by the envelope's sender, addressed (among others) to the envelope's addressee,
/// agreeing with the outer layer.
/// The key of an official for a signature of a given role (`open`'s lookup in the sender's key
/// history).
type OfficerKeyOf<'a> = &'a dyn Fn(
    &KeyId,
    crate::keyhist::OfficerRole,
) -> Result<VerifyingKey, crate::officer::Refused>;

fn open_inner(
    info: EnvelopeInfo,
    inner: Vec<u8>,
    card: &AgencyCard,
    limits: &Limits,
    officer_key: Option<OfficerKeyOf<'_>>,
) -> Result<Opened, OpenError> {
    let us = &info.to;
    const W: &str = "inner message";
    let s = cose::parse_sign1(&inner, W)?;
    let h = &s.header;
    cose::only_labels(
        h,
        &[
            label::VERSION,
            label::FROM,
            label::MESSAGE_ID,
            label::CASE_ID,
            label::MESSAGE_TYPE,
            label::RECIPIENTS,
            label::OFFICERS,
        ],
        W,
    )?;
    // Check 12: every inner header parameter present and well-typed.
    let version = cose::get_uint(h, label::VERSION, W, "version")?;
    if version != PROTOCOL_VERSION {
        return Err(OpenError::UnsupportedVersion(version));
    }
    let inner_from = AgencyId::new(cose::get_text(h, label::FROM, W, "from")?)
        .map_err(|e| OpenError::Malformed(e.to_string()))?;
    let message_id = MessageId::from_bytes(cose::get_fixed(h, label::MESSAGE_ID, W, "message id")?);
    let case_id = CaseId::from_bytes(cose::get_fixed(h, label::CASE_ID, W, "case id")?);
    if case_id.0.get_version_num() != 7 {
        return Err(OpenError::Malformed(
            "inner header: the case id is not a UUIDv7".into(),
        ));
    }
    let kind: MessageType = cose::get_text(h, label::MESSAGE_TYPE, W, "type")?
        .parse()
        .map_err(|e: crate::message::UnknownMessageType| OpenError::Malformed(e.to_string()))?;
    let recipients = match cose::get(h, label::RECIPIENTS) {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::Text(t) => AgencyId::new(t).map_err(|e| OpenError::Malformed(e.to_string())),
                _ => Err(OpenError::Malformed("recipients must be text".into())),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(OpenError::Malformed(
                "inner header: recipients missing".into(),
            ));
        }
    };
    if !recipients.windows(2).all(|w| w[0] < w[1]) {
        return Err(OpenError::Malformed(
            "inner header: recipients must be sorted and unique".into(),
        ));
    }
    // Check 13: the inner message is the sender's own.
    if inner_from != info.from || h.key_id.as_slice() != card.signing_key().id() {
        return Err(OpenError::Forwarded(format!(
            "the message inside was signed by {inner_from}, but the envelope comes from {}",
            info.from
        )));
    }
    // Check 14.
    if !cose::verify_sign1(&s, card.signing_key()) {
        return Err(OpenError::BadInnerSignature(info.from.clone()));
    }
    // Check 15: addressed to us by the sender.
    if !recipients.contains(us) {
        return Err(OpenError::Forwarded(format!(
            "the sender addressed the message to {}, not to {us}",
            recipients
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // Check 16: the layers agree.
    if message_id != info.message_id {
        return Err(OpenError::HeaderMismatch("message ids differ".into()));
    }
    if case_commitment(&case_id) != info.case_commitment {
        return Err(OpenError::HeaderMismatch(
            "the case commitment does not match the case id".into(),
        ));
    }
    // Check 17.
    let message = Message::from_cbor(kind, s.payload, limits.max_message_bytes)?;
    // Check 18: the officials who signed it are the sender's, certified for their roles
    // (spec/PEOPLE.md §5).
    let officers = match cose::get(h, label::OFFICERS) {
        None => Vec::new(),
        Some(v) => crate::officer::parse(v).map_err(OpenError::Malformed)?,
    };
    if let Some(key_of) = officer_key
        && !officers.is_empty()
    {
        let signed = crate::officer::Signed {
            from: &info.from,
            message_id: &message_id,
            case_id: &case_id,
            kind: kind.as_str(),
            recipients: &recipients,
            body: s.payload,
        };
        crate::officer::verify(&officers, &signed, key_of).map_err(|e| match e {
            crate::officer::Refused::Unknown(why) => OpenError::UnknownOfficer(why),
            crate::officer::Refused::NotValid(why) => OpenError::OfficerNotValid(why),
        })?;
    }
    Ok(Opened {
        info,
        case_id,
        recipients,
        message,
        inner,
        officers,
    })
}

/// The parts of a `COSE_Encrypt` as this protocol profiles it (§3.5), borrowed from the bytes.
struct EncryptParts<'a> {
    nonce: [u8; 12],
    ciphertext: &'a [u8],
    recipient_protected: &'a [u8],
    kid: [u8; 32],
    ephemeral: [u8; 32],
}

/// A cursor over the encrypted layer's bytes, for the fixed-shape parse below.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn bad(m: &str) -> OpenError {
        OpenError::Malformed(format!("encrypted layer: {m}"))
    }

    /// Consumes exactly `want`.
    fn expect(&mut self, want: &[u8], m: &str) -> Result<(), OpenError> {
        if self.b.get(self.pos..self.pos + want.len()) == Some(want) {
            self.pos += want.len();
            Ok(())
        } else {
            Err(Self::bad(m))
        }
    }

    /// Consumes `N` bytes.
    fn fixed<const N: usize>(&mut self, m: &str) -> Result<[u8; N], OpenError> {
        let v: [u8; N] = self
            .b
            .get(self.pos..self.pos + N)
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Self::bad(m))?;
        self.pos += N;
        Ok(v)
    }
}

/// Parses the encrypted layer. The profile fixes every header, so each part must be exactly the
/// deterministic encoding the spec gives (§3.5); anything else is malformed.
fn parse_encrypt(b: &[u8]) -> Result<EncryptParts<'_>, OpenError> {
    let mut c = Cursor { b, pos: 0 };
    c.expect(
        &[0xd8, 0x60, 0x84],
        "expected a tagged COSE_Encrypt (tag 96, array of 4)",
    )?;
    c.expect(
        &[0x44, 0xa1, 0x01, 0x18, 0x18],
        "the content algorithm must be ChaCha20/Poly1305 (24) and nothing else",
    )?;
    c.expect(
        &[0xa1, 0x05, 0x4c],
        "the unprotected header must hold exactly a 12-byte IV",
    )?;
    let nonce = c.fixed::<12>("truncated IV")?;
    let ciphertext = cose::take_bstr(b, &mut c.pos).ok_or_else(|| Cursor::bad("bad ciphertext"))?;
    if ciphertext.len() < TAG_LEN {
        return Err(Cursor::bad("ciphertext shorter than its tag"));
    }
    c.expect(&[0x81, 0x83], "exactly one recipient structure is required")?;
    let rp_start = c.pos + 1;
    c.expect(
        &[0x44, 0xa1, 0x01, 0x38, 0x18],
        "the recipient must use ECDH-ES + HKDF-256 (-25) and nothing else",
    )?;
    let recipient_protected = &b[rp_start..c.pos];
    c.expect(
        &[0xa2, 0x04, 0x58, 0x20],
        "the recipient header must hold the key id and the ephemeral key, and nothing else",
    )?;
    let kid = c.fixed::<32>("truncated key id")?;
    c.expect(
        &[0x20, 0xa3, 0x01, 0x01, 0x20, 0x04, 0x21, 0x58, 0x20],
        "the ephemeral key must be an X25519 COSE_Key {1: 1, -1: 4, -2: x}",
    )?;
    let ephemeral = c.fixed::<32>("truncated ephemeral key")?;
    c.expect(
        &[0x40],
        "a direct-agreement recipient has an empty ciphertext",
    )?;
    if c.pos != b.len() {
        return Err(Cursor::bad("unexpected bytes after the recipient"));
    }
    Ok(EncryptParts {
        nonce,
        ciphertext,
        recipient_protected,
        kid,
        ephemeral,
    })
}

fn decrypt(payload: &[u8], recipient: &Recipient<'_>) -> Result<Vec<u8>, OpenError> {
    let p = parse_encrypt(payload)?;
    let key = derive_key(&p, recipient)?;
    decrypt_parts(&p, &key)
}

/// The content key the recipient derives from the key agreement.
fn derive_key(p: &EncryptParts<'_>, recipient: &Recipient<'_>) -> Result<EnvelopeKey, OpenError> {
    // The current encryption key, or one a rotation replaced (spec/KEYS.md §5).
    let secret = recipient
        .keys
        .encryption_key(&p.kid)
        .ok_or_else(|| OpenError::WrongEncryptionKey(recipient.card.id().clone()))?;
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(p.ephemeral));
    if !shared.was_contributory() {
        return Err(OpenError::Undecryptable);
    }
    Ok(EnvelopeKey::from_bytes(*derive_cek(
        shared.as_bytes(),
        p.recipient_protected,
    )))
}

fn decrypt_parts(p: &EncryptParts<'_>, key: &EnvelopeKey) -> Result<Vec<u8>, OpenError> {
    let cipher =
        ChaCha20Poly1305::new_from_slice(key.as_bytes()).map_err(|_| OpenError::Undecryptable)?;
    let (ct, tag) = p.ciphertext.split_at(p.ciphertext.len() - TAG_LEN);
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| OpenError::Undecryptable)?;
    let mut plain = ct.to_vec();
    let aad = enc_structure(&[0xa1, 0x01, 0x18, 0x18]);
    cipher
        .decrypt_inout_detached(
            (&p.nonce).into(),
            &aad,
            plain.as_mut_slice().into(),
            (&tag).into(),
        )
        .map_err(|_| OpenError::Undecryptable)?;
    Ok(plain)
}
