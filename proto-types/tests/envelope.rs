//! Envelope sealing and opening through the public API, and every way an envelope is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rogatory_proto::card::AgencyCard;
use rogatory_proto::envelope::*;
use rogatory_proto::message::*;
use rogatory_proto::receipt::ReasonCode;
use support::*;

fn liaison(body: String) -> Message {
    Message::Liaison(LiaisonMessage {
        subject: "s".into(),
        body,
        handling: Handling {
            codes: vec![HandlingCode::H2],
            ..Default::default()
        },
        ..Default::default()
    })
}

#[test]
fn every_message_type_round_trips() {
    let fr = Agency::random("XA.MOJ-CA");
    let de = Agency::random("XB.DOJ-CA");
    for kind in MessageType::ALL {
        let m = example(kind);
        let bytes = seal_one(&fr, &de, &m);
        let opened = open(
            &bytes,
            &de.recipient(),
            &vec![fr.card.clone()],
            &Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(opened.message, m, "{kind}");
        assert_eq!(opened.message.kind(), kind);
        assert_eq!(opened.info.from, *fr.card.id());
        assert_eq!(opened.recipients, vec![de.card.id().clone()]);
        assert_eq!(opened.case_id, params(1).case_id);
        // CBOR and JSON forms both round-trip on their own.
        let cbor = m.to_cbor().unwrap();
        assert_eq!(Message::from_cbor(kind, &cbor, 1 << 20).unwrap(), m);
        assert_eq!(Message::from_json(kind, &m.to_json()).unwrap(), m);
    }
}

#[test]
fn several_addressees_get_one_envelope_each_with_the_same_inner_message() {
    let a = Agency::random("XA.MOJ-CA");
    let b = Agency::random("XB.DOJ-CA");
    let c = Agency::random("XC.PROSECUTOR");
    let m = example(MessageType::MlaRequest);
    let sealed = seal(
        &a.sender(),
        &[b.first(), c.first()],
        &m,
        &params(2),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(sealed.len(), 2);
    assert_ne!(sealed[0].id, sealed[1].id);
    let trusted = vec![a.card.clone()];
    let ob = open(
        &sealed[0].bytes,
        &b.recipient(),
        &trusted,
        &Limits::default(),
    )
    .unwrap();
    let oc = open(
        &sealed[1].bytes,
        &c.recipient(),
        &trusted,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        ob.inner, oc.inner,
        "one inner signed message for all addressees"
    );
    assert_eq!(
        ob.recipients,
        vec![b.card.id().clone(), c.card.id().clone()]
    );
    assert_eq!(ob.recipients, oc.recipients);
    // B's envelope is not C's to open.
    let err = open(
        &sealed[0].bytes,
        &c.recipient(),
        &trusted,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, OpenError::NotAddressee { .. }), "{err}");
    assert!(err.to_string().contains("not a recipient"));
}

#[test]
fn flipping_any_byte_makes_open_fail() {
    let a = Agency::random("XA.POLICE");
    let b = Agency::random("XB.POLICE");
    let bytes = seal_one(&a, &b, &liaison("x".into()));
    let trusted = vec![a.card.clone()];
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut t = bytes.clone();
            t[i] ^= bit;
            assert!(
                open(&t, &b.recipient(), &trusted, &Limits::default()).is_err(),
                "flip of bit {bit:#x} at byte {i} of {} was accepted",
                bytes.len()
            );
        }
    }
}

#[test]
fn origin_verifies_without_decrypting() {
    let a = Agency::random("XA.POLICE");
    let b = Agency::random("XB.POLICE");
    let bytes = seal_one(&a, &b, &liaison("x".into()));
    let info = verify_origin(&bytes, &a.card, &Limits::default()).unwrap();
    assert_eq!(info.to, *b.card.id());
    assert_eq!(info.chain, ChainLink::FIRST);
    assert_eq!(info.case_commitment, case_commitment(&params(1).case_id));
    // Checked against another agency's card it fails.
    assert!(verify_origin(&bytes, &b.card, &Limits::default()).is_err());
}

#[test]
fn refusals_are_specific() {
    let a = Agency::random("XA.POLICE");
    let b = Agency::random("XB.POLICE");
    let c = Agency::random("XC.POLICE");
    let m = liaison("hello".into());
    let bytes = seal_one(&a, &b, &m);
    let lim = Limits::default();
    let trusted = vec![a.card.clone()];

    // Wrong recipient.
    let e = open(&bytes, &c.recipient(), &trusted, &lim).unwrap_err();
    assert_eq!(e.reason_code(), ReasonCode::NotAddressee, "{e}");

    // Unknown sender.
    let e = open(&bytes, &b.recipient(), &Vec::<AgencyCard>::new(), &lim).unwrap_err();
    assert!(matches!(e, OpenError::UnknownSender(_)), "{e}");
    assert_eq!(e.reason_code(), ReasonCode::UnknownSender);

    // A trusted card for the same agency id but another key.
    let impostor = Agency::random("XA.POLICE");
    let e = open(&bytes, &b.recipient(), &vec![impostor.card.clone()], &lim).unwrap_err();
    assert!(matches!(e, OpenError::KeyMismatch(_)), "{e}");

    // Truncated.
    let e = open(&bytes[..bytes.len() - 10], &b.recipient(), &trusted, &lim).unwrap_err();
    assert_eq!(e.reason_code(), ReasonCode::Malformed, "{e}");

    // Oversized for the receiver's limit.
    let small = Limits {
        max_envelope_bytes: 200,
        ..Limits::default()
    };
    let e = open(&bytes, &b.recipient(), &trusted, &small).unwrap_err();
    assert!(matches!(e, OpenError::TooLarge { .. }), "{e}");
    // And the sender refuses to seal past its own limit.
    let big = liaison("y".repeat(4096));
    let e = seal(&a.sender(), &[b.first()], &big, &params(1), &small).unwrap_err();
    assert!(matches!(e, SealError::TooLarge { .. }), "{e}");

    // Malformed CBOR.
    for junk in [
        &b""[..],
        b"\xff",
        b"\xd2\x84",
        b"not cbor at all",
        &[0x9f; 64],
    ] {
        let e = open(junk, &b.recipient(), &trusted, &lim).unwrap_err();
        assert_eq!(e.reason_code(), ReasonCode::Malformed, "{e}");
    }

    // Trailing garbage changes the id and is refused.
    let mut t = bytes.clone();
    t.push(0);
    assert!(open(&t, &b.recipient(), &trusted, &lim).is_err());

    // An invalid message is refused before sealing, with every problem listed.
    let empty = Message::MlaRequest(Box::default());
    let e = seal(&a.sender(), &[b.first()], &empty, &params(1), &lim).unwrap_err();
    assert!(e.to_string().contains("summary_of_facts"), "{e}");

    // Sealing with keys that are not the sender's card's.
    let wrong = Sender {
        card: &a.card,
        keys: &c.keys,
    };
    assert!(matches!(
        seal(&wrong, &[b.first()], &m, &params(1), &lim),
        Err(SealError::KeyMismatch(_))
    ));
}

#[test]
fn a_recipient_cannot_rewrap_the_inner_message_for_a_third_party() {
    // A sends to B. B takes A's signed inner message and wraps it in an envelope of its own
    // for C, hoping C believes A addressed it. C must refuse it.
    let a = Agency::random("XA.POLICE");
    let b = Agency::random("XB.POLICE");
    let c = Agency::random("XC.POLICE");
    let bytes = seal_one(&a, &b, &liaison("for B only".into()));
    let opened = open(
        &bytes,
        &b.recipient(),
        &vec![a.card.clone()],
        &Limits::default(),
    )
    .unwrap();
    let forged =
        rogatory_proto::envelope::testing::rewrap(&opened.inner, &b.sender(), &c.card, &params(1));
    let trusted = vec![a.card.clone(), b.card.clone()];
    let e = open(&forged, &c.recipient(), &trusted, &Limits::default()).unwrap_err();
    assert!(matches!(e, OpenError::Forwarded(_)), "{e}");
    assert_eq!(e.reason_code(), ReasonCode::Forwarded);
}

#[test]
fn chain_links_are_carried() {
    let a = Agency::random("XA.POLICE");
    let b = Agency::random("XB.POLICE");
    let first = seal_one(&a, &b, &liaison("1".into()));
    let first_id = rogatory_proto::ids::Sha256Digest::of(&first);
    let link = ChainLink {
        sequence: 2,
        previous: Some(first_id),
    };
    let second = seal(
        &a.sender(),
        &[Addressee {
            card: &b.card,
            chain: link,
            consistency: None,
        }],
        &liaison("2".into()),
        &params(1),
        &Limits::default(),
    )
    .unwrap();
    let info = verify_origin(&second[0].bytes, &a.card, &Limits::default()).unwrap();
    assert_eq!(info.chain, link);
    // A link that breaks the rules is refused at sealing.
    let bad = ChainLink {
        sequence: 2,
        previous: None,
    };
    assert!(
        seal(
            &a.sender(),
            &[Addressee {
                card: &b.card,
                chain: bad,
                consistency: None,
            }],
            &liaison("3".into()),
            &params(1),
            &Limits::default()
        )
        .is_err()
    );
}

#[test]
fn case_ids_must_be_uuidv7() {
    let a = Agency::random("XA.POLICE");
    let b = Agency::random("XB.POLICE");
    let mut p = params(1);
    p.case_id = rogatory_proto::ids::CaseId(uuid_v4_like());
    let e = seal(
        &a.sender(),
        &[b.first()],
        &liaison("x".into()),
        &p,
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, SealError::InvalidCaseId(_)), "{e}");
}

fn uuid_v4_like() -> uuid::Uuid {
    uuid::Builder::from_random_bytes([7; 16]).into_uuid()
}

#[test]
fn an_oversized_protected_header_is_refused_before_parsing() {
    let a = Agency::random("XA.POLICE");
    let b = Agency::random("XB.POLICE");
    // 96(...) would be the payload; here a header of 20 000 zero bytes (an array would be worse).
    let mut e = vec![0xd2, 0x84, 0x59, 0x4e, 0x20];
    e.extend(std::iter::repeat_n(0u8, 20_000));
    e.extend_from_slice(&[0xa0, 0x40, 0x58, 0x40]);
    e.extend_from_slice(&[0u8; 64]);
    let err = open(
        &e,
        &b.recipient(),
        &vec![a.card.clone()],
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.reason_code(), ReasonCode::Malformed, "{err}");
    assert!(err.to_string().contains("16 KiB"), "{err}");
}

#[test]
fn a_disclosed_content_key_opens_the_envelope_for_the_auditor_only() {
    let a = Agency::random("XA.POLICE");
    let b = Agency::random("XB.POLICE");
    let auditor = Agency::random("XO.OVERSIGHT");
    let m = liaison("what the auditor reads".into());
    let sealed = seal(
        &a.sender(),
        &[b.first()],
        &m,
        &params(1),
        &Limits::default(),
    )
    .unwrap()
    .remove(0);
    // The sender's key and the addressee's derived key are the same.
    let derived = envelope_key(&sealed.bytes, &b.recipient(), &Limits::default()).unwrap();
    assert_eq!(derived, sealed.key);
    // Only the addressee derives it.
    assert!(envelope_key(&sealed.bytes, &auditor.recipient(), &Limits::default()).is_err());

    let disclosure = disclose(&derived, &auditor.card).unwrap();
    let key = undisclose(&disclosure, &auditor.recipient()).unwrap();
    assert!(
        undisclose(&disclosure, &b.recipient()).is_err(),
        "a disclosure is for its auditor alone"
    );
    let opened = open_with_key(&sealed.bytes, &key, &a.card, None, &Limits::default()).unwrap();
    assert_eq!(opened.message, m);
    assert_eq!(opened.info.to, *b.card.id());
    // Checked against the wrong sender, or with another envelope's key, it fails.
    assert!(open_with_key(&sealed.bytes, &key, &b.card, None, &Limits::default()).is_err());
    let other = seal(
        &a.sender(),
        &[b.first()],
        &m,
        &params(2),
        &Limits::default(),
    )
    .unwrap()
    .remove(0);
    assert!(matches!(
        open_with_key(&other.bytes, &key, &a.card, None, &Limits::default()),
        Err(OpenError::Undecryptable)
    ));
}
