//! Identifiers: agencies, cases, messages, envelopes, keys, and SHA-256 digests.
//!
//! In CBOR, case and message ids are 16-byte byte strings and digests 32-byte byte strings; in
//! JSON (the human-facing form) they are the usual text forms: UUID strings and lower-case hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Why an identifier was refused. The fault of whoever wrote it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// An agency id is not `<ISO 3166-1 alpha-2>.<AGENCY>`.
    #[error(
        "`{0}` is not an agency id: expected a two-letter ISO 3166-1 country code, a dot, and \
         the agency's name in capitals, digits and hyphens (1 to 32 characters), e.g. FR.DACG"
    )]
    Agency(String),
    /// A UUID could not be parsed.
    #[error("`{0}` is not a UUID")]
    Uuid(String),
    /// A hex digest has the wrong length or characters.
    #[error("`{0}` is not a SHA-256 digest (64 hexadecimal digits)")]
    Digest(String),
}

/// An agency id: `<ISO 3166-1 alpha-2>.<AGENCY>`, e.g. `FR.DACG`, `PH.DOJ-OOC`, `DE.BKA-SO12`.
///
/// The country part is two upper-case ASCII letters (it is checked for shape, not against the
/// ISO list, so that newly assigned codes need no software update); the agency part is 1 to 32
/// characters of upper-case ASCII letters, digits and `-`, neither starting nor ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgencyId(String);

impl AgencyId {
    /// Parses and validates an agency id.
    pub fn new(s: &str) -> Result<Self, IdError> {
        let bad = || IdError::Agency(s.to_string());
        let (country, agency) = s.split_once('.').ok_or_else(bad)?;
        let country_ok = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
        let agency_ok = (1..=32).contains(&agency.len())
            && agency
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            && !agency.starts_with('-')
            && !agency.ends_with('-');
        if country_ok && agency_ok {
            Ok(Self(s.to_string()))
        } else {
            Err(bad())
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ISO 3166-1 alpha-2 country code.
    pub fn country(&self) -> &str {
        &self.0[..2]
    }
}

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AgencyId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for AgencyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AgencyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new UUIDv7 (RFC 9562 §5.7) from a Unix time in milliseconds and 10 random bytes.
            pub fn v7(unix_millis: u64, random: &[u8; 10]) -> Self {
                Self(uuid::Builder::from_unix_timestamp_millis(unix_millis, random).into_uuid())
            }

            /// A new UUIDv7 for now, using the operating system's clock and random source.
            pub fn generate() -> Self {
                let mut random = [0u8; 10];
                crate::keys::fill_random(&mut random);
                let millis = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                Self::v7(millis, &random)
            }

            /// The 16 bytes.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// From 16 bytes.
            pub fn from_bytes(b: [u8; 16]) -> Self {
                Self(uuid::Uuid::from_bytes(b))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self).map_err(|_| IdError::Uuid(s.to_string()))
            }
        }
    };
}

uuid_id!(
    /// A case id: a UUIDv7 created by the originating agency and shared by both sides.
    CaseId
);
uuid_id!(
    /// A message id: a UUIDv7 chosen by the sender, the same in every addressee's envelope.
    MessageId
);

/// A SHA-256 digest: hex in JSON, a 32-byte byte string in CBOR.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// The digest as lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl FromStr for Sha256Digest {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|_| IdError::Digest(s.to_string()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| IdError::Digest(s.to_string()))?;
        Ok(Self(arr))
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            let b = serde_bytes::ByteBuf::deserialize(d)?;
            let arr: [u8; 32] = b.into_vec().try_into().map_err(|v: Vec<u8>| {
                serde::de::Error::custom(format!("a SHA-256 digest is 32 bytes, not {}", v.len()))
            })?;
            Ok(Self(arr))
        }
    }
}

/// The id of an envelope: SHA-256 of the outer `COSE_Sign1` bytes exactly as sent.
pub type EnvelopeId = Sha256Digest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agency_ids() {
        for ok in ["FR.DACG", "PH.DOJ-OOC", "DE.BKA-SO12", "XK.A"] {
            assert_eq!(AgencyId::new(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "FR",
            "FR.",
            "fr.DACG",
            "FRA.DACG",
            "FR.dacg",
            "FR.-X",
            "FR.X-",
            "FR.A B",
            "FR.DACG.X",
            "F1.DACG",
        ] {
            assert!(AgencyId::new(bad).is_err(), "{bad} accepted");
        }
        assert!(AgencyId::new(&format!("FR.{}", "A".repeat(33))).is_err());
        assert_eq!(AgencyId::new("DE.BKA-SO12").unwrap().country(), "DE");
    }

    #[test]
    fn digests_are_hex_in_json_and_bytes_in_cbor() {
        let d = Sha256Digest::of(b"abc");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""
        );
        assert_eq!(serde_json::from_str::<Sha256Digest>(&json).unwrap(), d);
        let cbor = crate::cbor::to_vec(&d).unwrap();
        assert_eq!(cbor.len(), 34);
        assert_eq!(
            crate::cbor::from_slice::<Sha256Digest>(&cbor, 64, "d").unwrap(),
            d
        );
        assert!(crate::cbor::from_slice::<Sha256Digest>(&cbor[..0], 64, "d").is_err());
    }

    #[test]
    fn uuid_ids_round_trip() {
        let id = CaseId::v7(1_764_000_000_000, &[7; 10]);
        assert_eq!(id.0.get_version_num(), 7);
        let s = id.to_string();
        assert_eq!(s.parse::<CaseId>().unwrap(), id);
        let cbor = crate::cbor::to_vec(&id).unwrap();
        assert_eq!(cbor[0], 0x50, "16-byte byte string");
    }
}
