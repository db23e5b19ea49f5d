//! Receipts: signing, verifying, and refusing forged or mismatched ones.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rogatory_proto::ids::Sha256Digest;
use rogatory_proto::receipt::*;
use support::*;

fn receipt(from: &Agency, to: &Agency, event: ReceiptEvent, reason: Option<ReasonCode>) -> Receipt {
    Receipt {
        version: 1,
        envelope_id: Sha256Digest::of(b"envelope"),
        from: from.card.id().clone(),
        to: to.card.id().clone(),
        event,
        reason,
        detail: None,
        received_at: ISSUED_AT + 200,
        checkpoint: None,
        cosignature: None,
    }
}

#[test]
fn receipts_sign_and_verify() {
    let a = Agency::random("XA.POLICE");
    let b = Agency::random("XB.POLICE");
    let r = receipt(&b, &a, ReceiptEvent::Accepted, None);
    let signed = r.sign(&b.keys).unwrap();
    let env = Sha256Digest::of(b"envelope");
    let back = verify_receipt(&signed.bytes, &b.card, Some(&env)).unwrap();
    assert_eq!(back.receipt, r);
    assert_eq!(back.hash, Sha256Digest::of(&signed.bytes));

    // Another envelope.
    let other = Sha256Digest::of(b"other");
    assert!(matches!(
        verify_receipt(&signed.bytes, &b.card, Some(&other)),
        Err(ReceiptError::WrongEnvelope { .. })
    ));
    // Checked against the wrong issuer.
    assert!(matches!(
        verify_receipt(&signed.bytes, &a.card, None),
        Err(ReceiptError::BadSignature(_))
    ));
    // Every single-byte change is refused.
    for i in 0..signed.bytes.len() {
        let mut t = signed.bytes.clone();
        t[i] ^= 0x01;
        assert!(verify_receipt(&t, &b.card, None).is_err(), "flip at {i}");
    }
    // A receipt naming another issuer than its signer is refused.
    let lying = receipt(&a, &a, ReceiptEvent::Accepted, None)
        .sign(&b.keys)
        .unwrap();
    assert!(verify_receipt(&lying.bytes, &b.card, None).is_err());
}

#[test]
fn rejections_carry_reason_codes() {
    let a = Agency::random("XA.POLICE");
    let b = Agency::random("XB.POLICE");
    let r = receipt(&b, &a, ReceiptEvent::Rejected, Some(ReasonCode::Forwarded));
    let signed = r.sign(&b.keys).unwrap();
    let back = verify_receipt(&signed.bytes, &b.card, None).unwrap();
    assert_eq!(back.receipt.reason, Some(ReasonCode::Forwarded));
    assert_eq!(u16::from(ReasonCode::Forwarded), 10);
    // A rejection without a reason, or an acceptance with one, cannot be signed.
    assert!(
        receipt(&b, &a, ReceiptEvent::Rejected, None)
            .sign(&b.keys)
            .is_err()
    );
    assert!(
        receipt(&b, &a, ReceiptEvent::Accepted, Some(ReasonCode::Replay))
            .sign(&b.keys)
            .is_err()
    );
    // Unknown future codes survive a round trip.
    assert_eq!(ReasonCode::from(4242), ReasonCode::Unknown(4242));
    assert_eq!(u16::from(ReasonCode::Unknown(4242)), 4242);
}

#[test]
fn stored_receipts_decode_without_a_card_but_malformed_ones_do_not() {
    let a = Agency::random("XA.POLICE");
    let b = Agency::random("XB.POLICE");
    let r = receipt(&b, &a, ReceiptEvent::Accepted, None);
    let signed = r.sign(&b.keys).unwrap();
    let back = decode_verified_earlier(&signed.bytes).unwrap();
    assert_eq!(back.receipt, r);
    assert_eq!(back.hash, signed.hash);
    let mut cut = signed.bytes.clone();
    cut.truncate(cut.len() - 70);
    assert!(decode_verified_earlier(&cut).is_err());
    assert!(decode_verified_earlier(&[0xa0]).is_err());
}
