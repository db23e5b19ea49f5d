//! Receiving envelopes: acceptance after a durable commit, replays answered with the original
//! receipt, refusals answered with signed rejection receipts — and nothing else changed.

use rogatory_node::inbox::{NODE_LOG, Outcome, receive};
use rogatory_node::keydir::KeyDir;
use rogatory_node::store::Store;
use rogatory_proto::card::{CardDetails, Role};
use rogatory_proto::envelope::{Addressee, ChainLink, Limits, SealParams, Sender, seal};
use rogatory_proto::ids::{AgencyId, CaseId, MessageId};
use rogatory_proto::message::{Handling, HandlingCode, LiaisonMessage, Message};
use rogatory_proto::receipt::{ReasonCode, ReceiptEvent, verify_receipt};

fn agency(root: &std::path::Path, id: &str) -> KeyDir {
    KeyDir::create(
        &root.join(id),
        CardDetails {
            id: AgencyId::new(id).unwrap(),
            name: id.into(),
            roles: vec![Role::PoliceLiaison],
            addresses: vec![],
            languages: vec!["en".into()],
            legal_bases: vec![],
            issued_at: 1_700_000_000,
        },
    )
    .unwrap()
}

fn envelope(from: &KeyDir, to: &KeyDir, case: CaseId) -> Vec<u8> {
    let m = Message::Liaison(LiaisonMessage {
        subject: "s".into(),
        body: "b".into(),
        handling: Handling {
            codes: vec![HandlingCode::H2],
            ..Default::default()
        },
        ..Default::default()
    });
    let params = SealParams {
        case_id: case,
        message_id: MessageId::generate(),
        sent_at: 1_790_000_000,
        checkpoint: None,
    };
    let sender = Sender {
        card: &from.card,
        keys: &from.keys,
    };
    seal(
        &sender,
        &[Addressee {
            card: &to.card,
            chain: ChainLink::FIRST,
        }],
        &m,
        &params,
        &Limits::default(),
    )
    .unwrap()
    .remove(0)
    .bytes
}

#[test]
fn accepted_once_replayed_with_the_same_receipt_refusals_signed() {
    let t = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        agency(t.path(), "XA.POLICE"),
        agency(t.path(), "XB.POLICE"),
        agency(t.path(), "XC.POLICE"),
    );
    let store = Store::open(&t.path().join("XB.POLICE")).unwrap();
    let trusted = vec![a.card.clone(), c.card.clone()];
    let case = CaseId::generate();
    let env = envelope(&a, &b, case);
    let now = 1_790_000_100;

    let first = receive(
        &store,
        &b,
        &trusted,
        a.card.id(),
        &env,
        now,
        &Limits::default(),
    )
    .unwrap();
    let Outcome::Accepted {
        receipt,
        case_id,
        envelope_id,
    } = first
    else {
        panic!("{first:?}")
    };
    assert_eq!(case_id, case);
    let r = verify_receipt(&receipt, &b.card, Some(&envelope_id)).unwrap();
    assert_eq!(r.receipt.event, ReceiptEvent::Accepted);
    assert!(
        r.receipt.checkpoint.is_some(),
        "the receipt carries the recipient's checkpoint"
    );
    assert_eq!(store.size(&case).unwrap(), 1);

    // A replay: the original receipt, byte for byte; nothing logged twice.
    let again = receive(
        &store,
        &b,
        &trusted,
        a.card.id(),
        &env,
        now + 50,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        again,
        Outcome::Replay {
            receipt: receipt.clone()
        }
    );
    assert_eq!(store.size(&case).unwrap(), 1);

    // Refusals: tampered, wrongly addressed, unknown sender, oversized.
    let mut tampered = env.clone();
    let n = tampered.len() - 100;
    tampered[n] ^= 1;
    let to_c = envelope(&a, &c, case);
    let stranger = agency(t.path(), "XD.POLICE");
    let from_stranger = envelope(&stranger, &b, case);
    let small = Limits {
        max_envelope_bytes: 64,
        ..Limits::default()
    };
    let fresh = envelope(&a, &b, case);
    for (bytes, limits, want) in [
        (&tampered, Limits::default(), ReasonCode::BadSignature),
        (&to_c, Limits::default(), ReasonCode::NotAddressee),
        (&from_stranger, Limits::default(), ReasonCode::UnknownSender),
        (&fresh, small, ReasonCode::Oversized),
    ] {
        let out = receive(&store, &b, &trusted, a.card.id(), bytes, now, &limits).unwrap();
        match out {
            Outcome::Rejected { reason, receipt } => {
                assert_eq!(reason, want);
                let r = verify_receipt(&receipt, &b.card, None).unwrap();
                assert_eq!(r.receipt.event, ReceiptEvent::Rejected);
                assert_eq!(r.receipt.reason, Some(want));
            }
            other => panic!("{want:?}: {other:?}"),
        }
    }
    // Nothing else changed: the case log still holds one entry; refusals are in the node log.
    assert_eq!(store.size(&case).unwrap(), 1);
    assert_eq!(store.size(&NODE_LOG).unwrap(), 4);
    let vkey =
        rogatory_proto::audit::note::NoteVerifier::parse(&b.card.note_verifier_key()).unwrap();
    assert!(store.verify(&vkey).unwrap().findings.is_empty());
}
