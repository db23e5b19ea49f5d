//! Officials' signatures of a message (spec/PEOPLE.md §5): the issuing officer (or a liaison
//! officer) signs the message in their own name, a validating authority may countersign, and
//! the agency's inner signature then covers both, inside the encryption.
//!
//! The inner header's `officers` (−65550) is an array of one or two `[role, kid, signature]`:
//! first the issuing authority's or liaison officer's, then optionally the validating
//! authority's. Each signature is Ed25519 over the deterministic CBOR of
//! `["rogatory/officer/v1", from, message id, case id, type, recipients, body, earlier]`, where
//! `earlier` is the array of the entries before it (so a validation countersigns the issue).

use ciborium::Value;

use crate::ids::{AgencyId, CaseId, MessageId};
use crate::keyhist::OfficerRole;
use crate::keys::{KeyId, SigningKey, VerifyingKey};

/// The domain of an official's signature.
pub const OFFICER_CONTEXT: &str = "rogatory/officer/v1";

/// An official who signs a message being sealed.
pub struct Officer<'a> {
    /// Their certified role.
    pub role: OfficerRole,
    /// Their key (certified in the agency's key history).
    pub key: &'a SigningKey,
}

/// An official's signature, as carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficerSignature {
    /// The role claimed.
    pub role: OfficerRole,
    /// The official's key id.
    pub kid: KeyId,
    /// The signature.
    pub signature: [u8; 64],
}

/// What an official's signature covers, besides the signatures before it.
pub struct Signed<'a> {
    /// The sending agency.
    pub from: &'a AgencyId,
    /// The message id.
    pub message_id: &'a MessageId,
    /// The case.
    pub case_id: &'a CaseId,
    /// The message type.
    pub kind: &'a str,
    /// Every addressee, sorted.
    pub recipients: &'a [AgencyId],
    /// The message body (its deterministic CBOR).
    pub body: &'a [u8],
}

fn role_name(r: OfficerRole) -> &'static str {
    r.as_str()
}

fn entry(s: &OfficerSignature) -> Value {
    Value::Array(vec![
        Value::Text(role_name(s.role).into()),
        Value::Bytes(s.kid.to_vec()),
        Value::Bytes(s.signature.to_vec()),
    ])
}

/// The bytes official `earlier.len()` signs.
pub fn to_be_signed(m: &Signed<'_>, earlier: &[OfficerSignature]) -> Vec<u8> {
    let v = Value::Array(vec![
        Value::Text(OFFICER_CONTEXT.into()),
        Value::Text(m.from.to_string()),
        Value::Bytes(m.message_id.as_bytes().to_vec()),
        Value::Bytes(m.case_id.as_bytes().to_vec()),
        Value::Text(m.kind.into()),
        Value::Array(
            m.recipients
                .iter()
                .map(|r| Value::Text(r.to_string()))
                .collect(),
        ),
        Value::Bytes(m.body.to_vec()),
        Value::Array(earlier.iter().map(entry).collect()),
    ]);
    crate::cbor::value_to_vec(v).unwrap_or_default()
}

/// Whether the roles, in order, are a valid sequence: an issuer (issuing authority or liaison
/// officer), then at most one validating authority.
fn roles_ok(roles: &[OfficerRole]) -> bool {
    match roles {
        [first] => *first != OfficerRole::ValidatingAuthority,
        [first, second] => {
            *first != OfficerRole::ValidatingAuthority
                && *second == OfficerRole::ValidatingAuthority
        }
        _ => false,
    }
}

/// The officials' signatures of `m`, in order, as the header value.
pub fn sign(officers: &[Officer<'_>], m: &Signed<'_>) -> Result<Value, String> {
    sign_after(&[], officers, m)
}

/// The signature official `officer` makes of `m` after the signatures `made` (an issuer's,
/// made earlier, before a validating authority countersigns).
pub fn sign_one(
    made: &[OfficerSignature],
    officer: &Officer<'_>,
    m: &Signed<'_>,
) -> OfficerSignature {
    OfficerSignature {
        role: officer.role,
        kid: *officer.key.verifying_key().id(),
        signature: officer.key.sign(&to_be_signed(m, made)),
    }
}

/// The signatures `made` earlier, then those of `officers`, as the header value.
pub fn sign_after(
    made: &[OfficerSignature],
    officers: &[Officer<'_>],
    m: &Signed<'_>,
) -> Result<Value, String> {
    let roles: Vec<OfficerRole> = made
        .iter()
        .map(|s| s.role)
        .chain(officers.iter().map(|o| o.role))
        .collect();
    if !roles_ok(&roles) {
        return Err(
            "officials sign as an issuer (issuing authority or liaison officer), then at most one validating authority".into(),
        );
    }
    let mut done: Vec<OfficerSignature> = made.to_vec();
    for o in officers {
        let tbs = to_be_signed(m, &done);
        done.push(OfficerSignature {
            role: o.role,
            kid: *o.key.verifying_key().id(),
            signature: o.key.sign(&tbs),
        });
    }
    if done.windows(2).any(|w| w[0].kid == w[1].kid) {
        return Err("one official cannot both issue and validate a message".into());
    }
    Ok(Value::Array(done.iter().map(entry).collect()))
}

/// Reads the header value (not yet verified).
pub fn parse(v: &Value) -> Result<Vec<OfficerSignature>, String> {
    let Value::Array(items) = v else {
        return Err("officers: not an array".into());
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items.iter().take(3) {
        let Value::Array(parts) = item else {
            return Err("officers: an entry is not an array".into());
        };
        let [Value::Text(role), Value::Bytes(kid), Value::Bytes(sig)] = parts.as_slice() else {
            return Err("officers: an entry is [role, kid, signature]".into());
        };
        let role = match role.as_str() {
            "issuing-authority" => OfficerRole::IssuingAuthority,
            "validating-authority" => OfficerRole::ValidatingAuthority,
            "liaison-officer" => OfficerRole::LiaisonOfficer,
            other => return Err(format!("officers: unknown role {other:?}")),
        };
        let kid: KeyId = kid
            .as_slice()
            .try_into()
            .map_err(|_| "officers: a key id is 32 bytes".to_string())?;
        let signature: [u8; 64] = sig
            .as_slice()
            .try_into()
            .map_err(|_| "officers: a signature is 64 bytes".to_string())?;
        out.push(OfficerSignature {
            role,
            kid,
            signature,
        });
    }
    let roles: Vec<OfficerRole> = out.iter().map(|s| s.role).collect();
    if items.len() > 2 || !roles_ok(&roles) {
        return Err(
            "officers: an issuer (issuing authority or liaison officer), then at most one validating authority".into(),
        );
    }
    if out.windows(2).any(|w| w[0].kid == w[1].kid) {
        return Err("officers: one official both issues and validates".into());
    }
    Ok(out)
}

/// Why an official's signature is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The key is no official's in the sender's key history as the verifier holds it: a
    /// longer history that certifies it may not have reached the verifier yet.
    #[error("{0}")]
    Unknown(String),
    /// Certified for another role, revoked, outside its validity, or the signature does not
    /// verify.
    #[error("{0}")]
    NotValid(String),
}

/// Verifies each signature with the key `key_of` gives for its key id and role (the sender's
/// key history: certified for that role, not revoked, valid at `sent-at`).
pub fn verify(
    sigs: &[OfficerSignature],
    m: &Signed<'_>,
    key_of: impl Fn(&KeyId, OfficerRole) -> Result<VerifyingKey, Refused>,
) -> Result<(), Refused> {
    for (i, s) in sigs.iter().enumerate() {
        let key = key_of(&s.kid, s.role)?;
        let tbs = to_be_signed(m, &sigs[..i]);
        if !key.verify_strict(&tbs, &s.signature) {
            return Err(Refused::NotValid(format!(
                "the {} signature by key {}… does not verify",
                s.role.as_str(),
                &hex::encode(s.kid)[..16]
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(role: &str, kid: u8, sig_len: usize) -> Value {
        Value::Array(vec![
            Value::Text(role.into()),
            Value::Bytes(vec![kid; 32]),
            Value::Bytes(vec![0; sig_len]),
        ])
    }

    #[test]
    fn only_an_issuer_then_at_most_one_validator_of_the_right_shape_is_read() {
        let ok = Value::Array(vec![
            entry("issuing-authority", 1, 64),
            entry("validating-authority", 2, 64),
        ]);
        assert_eq!(parse(&ok).unwrap().len(), 2);
        for bad in [
            Value::Array(vec![]),
            Value::Array(vec![entry("validating-authority", 1, 64)]),
            Value::Array(vec![
                entry("issuing-authority", 1, 64),
                entry("liaison-officer", 2, 64),
            ]),
            Value::Array(vec![
                entry("issuing-authority", 1, 64),
                entry("validating-authority", 1, 64),
            ]),
            Value::Array(vec![
                entry("issuing-authority", 1, 64),
                entry("validating-authority", 2, 64),
                entry("validating-authority", 3, 64),
            ]),
            Value::Array(vec![entry("clerk", 1, 64)]),
            Value::Array(vec![entry("issuing-authority", 1, 63)]),
            Value::Array(vec![Value::Text("issuing-authority".into())]),
            Value::Text("officers".into()),
        ] {
            assert!(parse(&bad).is_err(), "{bad:?} was read");
        }
    }
}
