//! Receipt reason codes (spec/PROTOCOL.md §4.2): why an addressee refused an envelope. Below
//! both the envelope (whose checks name the code that answers them) and the receipt (which
//! carries it).

use serde::{Deserialize, Serialize};

/// Why an envelope was rejected. The numbers are stable wire values (spec/PROTOCOL.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "u16", into = "u16")]
pub enum ReasonCode {
    /// 1: not well-formed CBOR/COSE, or not in the one accepted encoding.
    Malformed,
    /// 2: larger than the recipient's limit.
    Oversized,
    /// 3: a protocol version the recipient does not speak.
    UnsupportedVersion,
    /// 4: the sender has no trusted card at the recipient.
    UnknownSender,
    /// 5: signed or encrypted with a key that is not on the relevant card.
    KeyMismatch,
    /// 6: the signing key was expired or not yet valid at the stated time.
    KeyNotValid,
    /// 7: a signature does not verify.
    BadSignature,
    /// 8: the envelope is addressed to another agency.
    NotAddressee,
    /// 9: the content cannot be decrypted.
    Undecryptable,
    /// 10: the inner message was signed by someone else or does not name the recipient.
    Forwarded,
    /// 11: the layers' headers disagree.
    HeaderMismatch,
    /// 12: the message does not fit its schema or its rules.
    InvalidSchema,
    /// 13: the message asks for a state transition that is not allowed.
    IllegalTransition,
    /// 14: a replay of an envelope already processed.
    Replay,
    /// 15: the sender's key or card is revoked.
    RevokedSender,
    /// 16: the message breaks the handling codes of the message it refers to.
    HandlingViolation,
    /// 17: the chain link does not fit the recipient's record (wrong previous envelope).
    ChainBroken,
    /// 18: the sender's checkpoint does not extend the last one the recipient witnessed for the
    /// case (a forked or rolled-back log, or a missing or bad consistency proof).
    LogInconsistent,
    /// 19: the sender may not send this message in this case (spec/PROTOCOL.md §5.4: not a
    /// party to the case, a party acting beyond its part, or a report on another's acts).
    Unauthorized,
    /// 20: accepting it would exceed a limit the recipient sets (items in a manifest, evidence
    /// quotas, free disk space).
    OverQuota,
    /// 21: dated further in the future than the recipient's clock allows (spec/PROTOCOL.md
    /// §3.8, "Clock").
    FutureDated,
    /// 22: an official's signature on the message is not by a key the sender's key history
    /// certifies for that role at `sent-at`, is revoked, or does not verify (spec/PEOPLE.md §5).
    OfficerNotValid,
    /// 99: the recipient failed internally; the sender may retry.
    InternalError,
    /// A code this software does not know (from a newer version).
    Unknown(u16),
}

impl From<u16> for ReasonCode {
    fn from(n: u16) -> Self {
        use ReasonCode::*;
        match n {
            1 => Malformed,
            2 => Oversized,
            3 => UnsupportedVersion,
            4 => UnknownSender,
            5 => KeyMismatch,
            6 => KeyNotValid,
            7 => BadSignature,
            8 => NotAddressee,
            9 => Undecryptable,
            10 => Forwarded,
            11 => HeaderMismatch,
            12 => InvalidSchema,
            13 => IllegalTransition,
            14 => Replay,
            15 => RevokedSender,
            16 => HandlingViolation,
            17 => ChainBroken,
            18 => LogInconsistent,
            19 => Unauthorized,
            20 => OverQuota,
            21 => FutureDated,
            22 => OfficerNotValid,
            99 => InternalError,
            other => Unknown(other),
        }
    }
}

impl From<ReasonCode> for u16 {
    fn from(r: ReasonCode) -> u16 {
        use ReasonCode::*;
        match r {
            Malformed => 1,
            Oversized => 2,
            UnsupportedVersion => 3,
            UnknownSender => 4,
            KeyMismatch => 5,
            KeyNotValid => 6,
            BadSignature => 7,
            NotAddressee => 8,
            Undecryptable => 9,
            Forwarded => 10,
            HeaderMismatch => 11,
            InvalidSchema => 12,
            IllegalTransition => 13,
            Replay => 14,
            RevokedSender => 15,
            HandlingViolation => 16,
            ChainBroken => 17,
            LogInconsistent => 18,
            Unauthorized => 19,
            OverQuota => 20,
            FutureDated => 21,
            OfficerNotValid => 22,
            InternalError => 99,
            Unknown(n) => n,
        }
    }
}

impl ReasonCode {
    /// The stable name, as in the spec.
    pub fn name(&self) -> &'static str {
        use ReasonCode::*;
        match self {
            Malformed => "malformed",
            Oversized => "oversized",
            UnsupportedVersion => "unsupported-version",
            UnknownSender => "unknown-sender",
            KeyMismatch => "key-mismatch",
            KeyNotValid => "key-not-valid",
            BadSignature => "bad-signature",
            NotAddressee => "not-addressee",
            Undecryptable => "undecryptable",
            Forwarded => "forwarded",
            HeaderMismatch => "header-mismatch",
            InvalidSchema => "invalid-schema",
            IllegalTransition => "illegal-transition",
            Replay => "replay",
            RevokedSender => "revoked-sender",
            HandlingViolation => "handling-violation",
            ChainBroken => "chain-broken",
            LogInconsistent => "log-inconsistent",
            Unauthorized => "unauthorized",
            OverQuota => "over-quota",
            FutureDated => "future-dated",
            OfficerNotValid => "officer-not-valid",
            InternalError => "internal-error",
            Unknown(_) => "unknown",
        }
    }
}
