//! Officials' signatures inside envelopes (spec/PEOPLE.md §5): made by keys the sender's key
//! history certifies, checked by the recipient against that history.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rogatory_proto::envelope::*;
use rogatory_proto::keyhist::statement::sign;
use rogatory_proto::keyhist::{
    KeyHistory, OfficerCert, OfficerRole, RevocationReason, RootSet, StatementBody,
};
use rogatory_proto::keys::SigningKey;
use rogatory_proto::message::MessageType;
use rogatory_proto::officer::Officer;
use rogatory_proto::reason::ReasonCode;
use support::*;

/// XA's key history with `ivan` (issuing authority) and `vera` (validating authority)
/// certified; the root key.
fn history(a: &Agency, ivan: &SigningKey, vera: &SigningKey) -> (KeyHistory, SigningKey) {
    let root = SigningKey::from_seed(&[0x70; 32]);
    let g = StatementBody::genesis(
        RootSet::new(1, std::slice::from_ref(root.verifying_key())),
        &a.card,
        ISSUED_AT,
    );
    let mut h = KeyHistory::from_statements(&[sign(&g, &[&root]).unwrap()]).unwrap();
    for (name, role, key) in [
        ("ivan", OfficerRole::IssuingAuthority, ivan),
        ("vera", OfficerRole::ValidatingAuthority, vera),
    ] {
        let cert = OfficerCert {
            name: name.into(),
            role,
            key: key.verifying_key().to_cose_key(),
            valid_from: ISSUED_AT,
            valid_until: ISSUED_AT + 300 * 86_400,
        };
        h.apply(&sign(&h.next_officer(cert, ISSUED_AT + 1), &[&root]).unwrap())
            .unwrap();
    }
    (h, root)
}

fn seal_by(a: &Agency, b: &Agency, officers: &[Officer<'_>]) -> Vec<u8> {
    let m = example(MessageType::MlaRequest);
    let mut p = params(1);
    p.sent_at = ISSUED_AT + 100;
    seal_signed(
        &a.sender(),
        officers,
        &[b.first()],
        &m,
        &p,
        &Limits::default(),
    )
    .unwrap()
    .remove(0)
    .bytes
}

#[test]
fn an_issuer_s_signature_and_a_validation_verify_against_the_sender_s_key_history() {
    let (a, b) = (Agency::fixed("XA.MOJ-CA", 1), Agency::fixed("XB.DOJ-CA", 2));
    let (ivan, vera) = (
        SigningKey::from_seed(&[0x90; 32]),
        SigningKey::from_seed(&[0x91; 32]),
    );
    let (h, root) = history(&a, &ivan, &vera);
    let mut trusted = std::collections::BTreeMap::new();
    trusted.insert(a.card.id().clone(), h.clone());
    let issued = Officer {
        role: OfficerRole::IssuingAuthority,
        key: &ivan,
    };
    let validated = Officer {
        role: OfficerRole::ValidatingAuthority,
        key: &vera,
    };
    let bytes = seal_by(&a, &b, &[issued, validated]);
    let o = open(&bytes, &b.recipient(), &trusted, &Limits::default()).unwrap();
    let roles: Vec<OfficerRole> = o.officers.iter().map(|s| s.role).collect();
    assert_eq!(
        roles,
        [
            OfficerRole::IssuingAuthority,
            OfficerRole::ValidatingAuthority
        ]
    );
    assert_eq!(o.officers[0].kid, *ivan.verifying_key().id());

    // Without a key history the sender's officials are unknown: refused, with the reason code.
    let cards = vec![a.card.clone()];
    let e = open(&bytes, &b.recipient(), &cards, &Limits::default()).unwrap_err();
    assert_eq!(e.reason_code(), ReasonCode::OfficerNotValid, "{e}");

    // A key certified for another role, or an uncertified key, is refused.
    let as_validator = Officer {
        role: OfficerRole::IssuingAuthority,
        key: &vera,
    };
    let e = open(
        &seal_by(&a, &b, &[as_validator]),
        &b.recipient(),
        &trusted,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("certified as validating-authority"),
        "{e}"
    );
    let stranger = SigningKey::generate();
    let unknown = Officer {
        role: OfficerRole::IssuingAuthority,
        key: &stranger,
    };
    let e = open(
        &seal_by(&a, &b, &[unknown]),
        &b.recipient(),
        &trusted,
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(e.reason_code(), ReasonCode::OfficerNotValid);

    // A validation alone, or a validator before the issuer, cannot be sealed.
    let m = example(MessageType::MlaRequest);
    assert!(
        seal_signed(
            &a.sender(),
            &[Officer {
                role: OfficerRole::ValidatingAuthority,
                key: &vera,
            }],
            &[b.first()],
            &m,
            &params(1),
            &Limits::default()
        )
        .is_err()
    );

    // Once ivan's key is revoked, his signature is refused whatever the message's time.
    let mut revoked = h.clone();
    let r = revoked.next_revoke(
        ivan.verifying_key().id(),
        RevocationReason::Retired,
        ISSUED_AT + 200,
        ISSUED_AT + 200,
    );
    revoked.apply(&sign(&r, &[&root]).unwrap()).unwrap();
    let mut later = std::collections::BTreeMap::new();
    later.insert(a.card.id().clone(), revoked);
    let e = open(&bytes, &b.recipient(), &later, &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("revoked"), "{e}");
}

/// An auditor reading an envelope with its disclosed content key checks the officials'
/// signatures against the sender's key history as they stood when it was sealed: a revocation
/// effective later leaves them valid; one effective earlier, another official's signature in
/// place of the one who signed, or an official's signature over another message, are refused
/// — even when the agency itself sealed the envelope around them.
#[test]
fn an_auditor_checks_the_officials_signatures_with_the_disclosed_key() {
    let (a, b) = (Agency::fixed("XA.MOJ-CA", 1), Agency::fixed("XB.DOJ-CA", 2));
    let (ivan, vera, iris) = (
        SigningKey::from_seed(&[0x90; 32]),
        SigningKey::from_seed(&[0x91; 32]),
        SigningKey::from_seed(&[0x92; 32]),
    );
    let (mut h, root) = history(&a, &ivan, &vera);
    let cert = OfficerCert {
        name: "iris".into(),
        role: OfficerRole::IssuingAuthority,
        key: iris.verifying_key().to_cose_key(),
        valid_from: ISSUED_AT,
        valid_until: ISSUED_AT + 300 * 86_400,
    };
    h.apply(&sign(&h.next_officer(cert, ISSUED_AT + 2), &[&root]).unwrap())
        .unwrap();
    let issuer = |key| Officer {
        role: OfficerRole::IssuingAuthority,
        key,
    };
    let limits = Limits::default();
    let key_of = |bytes: &[u8]| envelope_key(bytes, &b.recipient(), &limits).unwrap();

    let bytes = seal_by(&a, &b, &[issuer(&ivan)]);
    let key = key_of(&bytes);
    let o = open_with_key(&bytes, &key, &a.card, Some(&h), &limits).unwrap();
    assert_eq!(o.officers[0].kid, *ivan.verifying_key().id());

    // Revoked from a time after the message was sealed: it still verifies.
    let revoked_at = |effective: u64| {
        let mut r = h.clone();
        let body = r.next_revoke(
            ivan.verifying_key().id(),
            RevocationReason::Compromised,
            effective,
            ISSUED_AT + 200,
        );
        r.apply(&sign(&body, &[&root]).unwrap()).unwrap();
        r
    };
    open_with_key(
        &bytes,
        &key,
        &a.card,
        Some(&revoked_at(ISSUED_AT + 150)),
        &limits,
    )
    .unwrap();
    let e = open_with_key(
        &bytes,
        &key,
        &a.card,
        Some(&revoked_at(ISSUED_AT + 50)),
        &limits,
    )
    .unwrap_err();
    assert_eq!(e.reason_code(), ReasonCode::OfficerNotValid, "{e}");
    assert!(e.to_string().contains("revoked"), "{e}");

    // The agency seals the request with ivan's signature presented as iris's, or with iris's
    // signature over another message: every layer the agency signs verifies, the official's
    // does not.
    let m = example(MessageType::MlaRequest);
    let mut p = params(1);
    p.sent_at = ISSUED_AT + 100;
    let mut swapped = o.officers.clone();
    swapped[0].kid = *iris.verifying_key().id();
    let mut other = params(2);
    other.sent_at = ISSUED_AT + 100;
    let elsewhere = seal_signed(
        &a.sender(),
        &[issuer(&iris)],
        &[b.first()],
        &example(MessageType::Liaison),
        &other,
        &limits,
    )
    .unwrap()
    .remove(0)
    .bytes;
    let iris_elsewhere = open(
        &elsewhere,
        &b.recipient(),
        &{
            let mut t = std::collections::BTreeMap::new();
            t.insert(a.card.id().clone(), h.clone());
            t
        },
        &limits,
    )
    .unwrap()
    .officers;
    for made in [swapped, iris_elsewhere] {
        let forged = seal_countersigned(&a.sender(), &made, &[], &[b.first()], &m, &p, &limits)
            .unwrap()
            .remove(0)
            .bytes;
        let key = key_of(&forged);
        // Without the history, the auditor only reads who claims to have signed.
        let read = open_with_key(&forged, &key, &a.card, None, &limits).unwrap();
        assert_eq!(read.officers[0].kid, *iris.verifying_key().id());
        let e = open_with_key(&forged, &key, &a.card, Some(&h), &limits).unwrap_err();
        assert_eq!(e.reason_code(), ReasonCode::OfficerNotValid, "{e}");
        assert!(e.to_string().contains("does not verify"), "{e}");
    }
}
