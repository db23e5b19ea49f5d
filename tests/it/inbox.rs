//! Receiving envelopes: acceptance after a durable commit, replays answered with the original
//! receipt, refusals answered with signed rejection receipts — and nothing else changed.

use rogatory_node::engine::receive::{NODE_LOG, Outcome, receive};
use rogatory_node::evidence::Quotas;
use rogatory_node::keydir::KeyDir;
use rogatory_node::store::{RecordKeys, Store};
use rogatory_node::trust::{Trust, partners_of};
use rogatory_proto::envelope::{Addressee, ChainLink, Limits, SealParams, Sender, seal};
use rogatory_proto::ids::{CaseId, MessageId};
use rogatory_proto::message::{Handling, HandlingCode, LiaisonMessage, Message};
use rogatory_proto::receipt::{ReasonCode, ReceiptEvent, verify_receipt};
use rogatory_tests::agency;

/// A sending agency, a receiving one, and the receiver's store.
fn two_agencies(root: &std::path::Path) -> (KeyDir, KeyDir, std::sync::Arc<Store>) {
    let (a, b) = (agency(root, "XA.POLICE"), agency(root, "XB.POLICE"));
    let store = Store::open(&root.join("XB.POLICE"))
        .unwrap()
        .with_record_keys(RecordKeys::new(&b.keys));
    (a, b, std::sync::Arc::new(store))
}

/// The first `n` envelopes of `from`'s chain to `to` in `case`, each linking the one before.
fn chain_of(from: &KeyDir, to: &KeyDir, case: CaseId, n: u64) -> Vec<Vec<u8>> {
    let mut chain = vec![envelope(from, to, case)];
    for sequence in 2..=n {
        let previous = rogatory_proto::ids::Sha256Digest::of(chain.last().unwrap());
        chain.push(envelope_at(
            from,
            to,
            case,
            ChainLink {
                sequence,
                previous: Some(previous),
            },
        ));
    }
    chain
}

/// The next `n` answers the store worker gives the event loop, each with a receipt signed by
/// `card`: their tokens and what the receipts say.
fn answers(
    notices: &mut tokio::sync::mpsc::Receiver<rogatory_node::engine::Notice>,
    n: usize,
    card: &rogatory_proto::card::AgencyCard,
) -> Vec<(u64, ReceiptEvent)> {
    let mut answered = Vec::new();
    while answered.len() < n {
        match notices.blocking_recv().unwrap() {
            rogatory_node::engine::Notice::Answer {
                token,
                receipt: Some(r),
            } => {
                let v = verify_receipt(&r, card, None).unwrap();
                answered.push((token, v.receipt.event));
            }
            other => panic!("{other:?}"),
        }
    }
    answered
}

fn envelope(from: &KeyDir, to: &KeyDir, case: CaseId) -> Vec<u8> {
    envelope_at(from, to, case, ChainLink::FIRST)
}

fn envelope_at(from: &KeyDir, to: &KeyDir, case: CaseId, chain: ChainLink) -> Vec<u8> {
    let m = Message::Liaison(LiaisonMessage {
        subject: "s".into(),
        body: "b".into(),
        handling: Handling {
            codes: vec![HandlingCode::H2],
            ..Default::default()
        },
        ..Default::default()
    });
    envelope_with(from, to, case, chain, &m)
}

fn envelope_with(
    from: &KeyDir,
    to: &KeyDir,
    case: CaseId,
    chain: ChainLink,
    m: &Message,
) -> Vec<u8> {
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
            chain,
            consistency: None,
        }],
        m,
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
    let store = Store::open(&t.path().join("XB.POLICE"))
        .unwrap()
        .with_record_keys(RecordKeys::new(&b.keys));
    let trusted = partners_of(vec![a.card.clone(), c.card.clone()]);
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
        &Quotas::default(),
    )
    .unwrap();
    let Outcome::Accepted {
        receipt,
        case_id,
        envelope_id,
        ..
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
        &Quotas::default(),
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
    // (In another case: a second #1 in the same case would be a fork of the chain.)
    let fresh = envelope(&a, &b, CaseId::generate());
    for (bytes, limits, want) in [
        (&tampered, Limits::default(), ReasonCode::BadSignature),
        (&to_c, Limits::default(), ReasonCode::NotAddressee),
        (&from_stranger, Limits::default(), ReasonCode::UnknownSender),
        (&fresh, small, ReasonCode::Oversized),
    ] {
        let out = receive(
            &store,
            &b,
            &trusted,
            a.card.id(),
            bytes,
            now,
            &limits,
            &Quotas::default(),
        )
        .unwrap();
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

#[test]
fn a_chain_is_applied_in_order_and_a_fork_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let (a, b, store) = two_agencies(t.path());
    let trusted = partners_of(vec![a.card.clone()]);
    let case = CaseId::generate();
    let id = |bytes: &[u8]| rogatory_proto::ids::Sha256Digest::of(bytes);
    let first = envelope_at(&a, &b, case, ChainLink::FIRST);
    let second = envelope_at(
        &a,
        &b,
        case,
        ChainLink {
            sequence: 2,
            previous: Some(id(&first)),
        },
    );
    let rx = |bytes: &[u8]| {
        receive(
            &store,
            &b,
            &trusted,
            a.card.id(),
            bytes,
            1_790_000_100,
            &Limits::default(),
            &Quotas::default(),
        )
        .unwrap()
    };
    // #2 before #1: it waits, and nothing is stored.
    assert!(matches!(rx(&second), Outcome::Waiting { .. }));
    assert_eq!(store.size(&case).unwrap(), 0);
    assert!(matches!(rx(&first), Outcome::Accepted { .. }));
    assert!(matches!(rx(&second), Outcome::Accepted { .. }));
    assert_eq!(store.size(&case).unwrap(), 2);

    // Another #2 (a fork of the chain), and a #3 that links the wrong envelope: refused.
    let fork = envelope_at(
        &a,
        &b,
        case,
        ChainLink {
            sequence: 2,
            previous: Some(id(&first)),
        },
    );
    let wrong_link = envelope_at(
        &a,
        &b,
        case,
        ChainLink {
            sequence: 3,
            previous: Some(id(&first)),
        },
    );
    for bytes in [&fork, &wrong_link] {
        match rx(bytes) {
            Outcome::Rejected { reason, receipt } => {
                assert_eq!(reason, ReasonCode::ChainBroken);
                let r = verify_receipt(&receipt, &b.card, Some(&id(bytes))).unwrap();
                assert_eq!(r.receipt.reason, Some(ReasonCode::ChainBroken));
                // Sent again: the same refusal, byte for byte, and nothing logged twice.
                let before = store.size(&NODE_LOG).unwrap();
                assert_eq!(rx(bytes), Outcome::Replay { receipt });
                assert_eq!(store.size(&NODE_LOG).unwrap(), before);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(store.size(&case).unwrap(), 2);
    // A sender's chain is its own: another case starts at #1.
    assert!(matches!(
        rx(&envelope(&a, &b, CaseId::generate())),
        Outcome::Accepted { .. }
    ));
}

#[test]
fn the_store_worker_holds_an_early_envelope_until_its_gap_fills() {
    use rogatory_node::engine::{Engine, Job, spawn};
    use std::sync::Arc;
    let t = tempfile::tempdir().unwrap();
    let (a, b, store) = two_agencies(t.path());
    let case = CaseId::generate();
    let [first, second]: [Vec<u8>; 2] = chain_of(&a, &b, case, 2).try_into().unwrap();
    let b_card = b.card.clone();
    let engine = Engine::new(
        Arc::clone(&store),
        Arc::new(b),
        Trust::of_cards(vec![a.card.clone()]),
        Limits::default(),
        Quotas::default(),
    );
    let (tx, mut notices) = tokio::sync::mpsc::channel(16);
    let (jobs, worker) = spawn(engine, 16, tx, Default::default()).unwrap();
    let from = a.card.id().clone();
    jobs.give_blocking(Job::Inbound {
        token: 2,
        from: from.clone(),
        bytes: second.clone(),
        opened: None,
    })
    .unwrap();
    jobs.give_blocking(Job::Inbound {
        token: 1,
        from,
        bytes: first,
        opened: None,
    })
    .unwrap();
    // #1 is answered first, then #2, each with an acceptance; nothing is answered before.
    let answered = answers(&mut notices, 2, &b_card);
    assert!(answered.iter().all(|(_, e)| *e == ReceiptEvent::Accepted));
    let answered: Vec<u64> = answered.into_iter().map(|(t, _)| t).collect();
    assert_eq!(answered, [1, 2]);
    drop(jobs);
    drop(notices);
    worker.join().unwrap();
    assert_eq!(store.size(&case).unwrap(), 2);
}

#[test]
fn envelopes_opened_in_front_of_the_worker_reach_it_in_the_order_they_arrived() {
    use rogatory_node::engine::{Engine, OpenPool, spawn};
    use std::sync::Arc;
    let t = tempfile::tempdir().unwrap();
    let (a, b, store) = two_agencies(t.path());
    // One chain of 60 envelopes, with a piece of garbage after #30; then a damaged copy of #60
    // (a bit flipped in its signature) and #11 again (a replay).
    let case = CaseId::generate();
    let chain = chain_of(&a, &b, case, 60);
    let mut damaged = chain[59].clone();
    let last = damaged.len() - 1;
    damaged[last - 3] ^= 0x01;
    let mut arriving: Vec<Vec<u8>> = chain.clone();
    arriving.insert(30, b"garbage".to_vec());
    arriving.push(damaged);
    arriving.push(chain[10].clone());
    let b_card = b.card.clone();
    let b = Arc::new(b);
    let engine = Engine::new(
        Arc::clone(&store),
        Arc::clone(&b),
        Trust::of_cards(vec![a.card.clone()]),
        Limits::default(),
        Quotas::default(),
    );
    let (tx, mut notices) = tokio::sync::mpsc::channel(256);
    let (jobs, worker) = spawn(engine, 4, tx, Default::default()).unwrap();
    let (mut opener, pool) = OpenPool::start(
        3,
        b,
        Trust::of_cards(vec![a.card.clone()]),
        Limits::default(),
        jobs.clone(),
    )
    .unwrap();
    let from = a.card.id().clone();
    // The threads' queues are bounded (a full one gives the envelope back); three of them hold
    // all of these at once.
    assert!(arriving.len() <= 3 * rogatory_node::engine::open::QUEUE);
    for (token, bytes) in arriving.iter().enumerate() {
        assert!(
            opener
                .try_give(token as u64, from.clone(), bytes.clone())
                .is_ok(),
            "envelope {token} was given back"
        );
    }
    let answered = answers(&mut notices, arriving.len(), &b_card);
    for (token, event) in &answered {
        let expected = if *token == 30 || *token == 61 {
            ReceiptEvent::Rejected
        } else {
            ReceiptEvent::Accepted
        };
        assert_eq!(*event, expected, "envelope {token}");
    }
    let answered: Vec<u64> = answered.into_iter().map(|(t, _)| t).collect();
    // In the order they arrived; none waited for an earlier one of its chain.
    assert_eq!(answered, (0..arriving.len() as u64).collect::<Vec<_>>());
    drop(opener);
    pool.close();
    drop(jobs);
    drop(notices);
    worker.join().unwrap();
}

#[test]
fn a_partner_sending_garbage_is_set_aside_after_100_refusals_with_one_alert() {
    use rogatory_node::engine::{Engine, Job, MAX_REFUSALS, Notice, spawn};
    use std::sync::Arc;
    let t = tempfile::tempdir().unwrap();
    let (a, b, store) = two_agencies(t.path());
    let engine = Engine::new(
        Arc::clone(&store),
        Arc::new(b),
        Trust::of_cards(vec![a.card.clone()]),
        Limits::default(),
        Quotas::default(),
    );
    let (tx, mut notices) = tokio::sync::mpsc::channel(16);
    let (jobs, worker) = spawn(engine, 16, tx, Default::default()).unwrap();
    let from = a.card.id().clone();
    let mut answers = Vec::new();
    for token in 0..(MAX_REFUSALS as u64 + 5) {
        jobs.give_blocking(Job::Inbound {
            token,
            from: from.clone(),
            bytes: format!("garbage {token}").into_bytes(),
            opened: None,
        })
        .unwrap();
        match notices.blocking_recv().unwrap() {
            Notice::Answer { token: t, receipt } => {
                assert_eq!(t, token);
                answers.push(receipt.is_some());
            }
            other => panic!("{other:?}"),
        }
    }
    drop(jobs);
    drop(notices);
    worker.join().unwrap();
    // The first 100 are refused with signed receipts (and logged); the rest get no answer and
    // add nothing to the node's log.
    assert!(answers[..MAX_REFUSALS].iter().all(|a| *a));
    assert!(answers[MAX_REFUSALS..].iter().all(|a| !*a));
    assert_eq!(store.size(&NODE_LOG).unwrap(), MAX_REFUSALS as u64);
    let alerts = store.alerts().unwrap();
    assert_eq!(alerts.len(), 1, "one alert for the episode");
    assert_eq!(alerts[0].1.kind, "refusal-flood");
    assert_eq!(alerts[0].1.peer.as_str(), "XA.POLICE");
}

#[test]
fn a_status_the_case_does_not_allow_gets_an_illegal_transition_receipt() {
    use rogatory_proto::message::{MlaStatus, MlaStatusUpdate};
    let t = tempfile::tempdir().unwrap();
    let (a, b, store) = two_agencies(t.path());
    let trusted = partners_of(vec![a.card.clone()]);
    let case = CaseId::generate();
    let status = |s: MlaStatus| {
        Message::MlaStatus(MlaStatusUpdate {
            status: Some(s),
            effective_at: "2026-11-30T09:15:00Z".into(),
            ..Default::default()
        })
    };
    let id = |bytes: &[u8]| rogatory_proto::ids::Sha256Digest::of(bytes);
    let rx = |bytes: &[u8]| {
        receive(
            &store,
            &b,
            &trusted,
            a.card.id(),
            bytes,
            1_790_000_100,
            &Limits::default(),
            &Quotas::default(),
        )
        .unwrap()
    };
    // A status report in a case with no request: refused, and it takes its chain position.
    let first = envelope_with(
        &a,
        &b,
        case,
        ChainLink::FIRST,
        &status(MlaStatus::Executing),
    );
    match rx(&first) {
        Outcome::Rejected { reason, receipt } => {
            assert_eq!(reason, ReasonCode::IllegalTransition);
            let r = verify_receipt(&receipt, &b.card, Some(&id(&first))).unwrap();
            assert!(r.receipt.detail.unwrap().contains("no MLA request"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.size(&case).unwrap(), 0, "nothing logged in the case");
    // XA sends the request (#2); XB is then the requested side, and XA (requesting) may not
    // report execution (#3), but may withdraw (#4).
    let req = Message::from_json(
        rogatory_proto::message::MessageType::MlaRequest,
        &serde_json::from_str(
            &std::fs::read_to_string(rogatory_tests::spec_dir().join("examples/mla-request.json"))
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let second = envelope_with(
        &a,
        &b,
        case,
        ChainLink {
            sequence: 2,
            previous: Some(id(&first)),
        },
        &req,
    );
    assert!(matches!(rx(&second), Outcome::Accepted { .. }));
    let third = envelope_with(
        &a,
        &b,
        case,
        ChainLink {
            sequence: 3,
            previous: Some(id(&second)),
        },
        &status(MlaStatus::Executing),
    );
    assert!(matches!(
        rx(&third),
        Outcome::Rejected {
            reason: ReasonCode::IllegalTransition,
            ..
        }
    ));
    let fourth = envelope_with(
        &a,
        &b,
        case,
        ChainLink {
            sequence: 4,
            previous: Some(id(&third)),
        },
        &status(MlaStatus::Withdrawn),
    );
    assert!(matches!(rx(&fourth), Outcome::Accepted { .. }));
    assert_eq!(
        store.size(&case).unwrap(),
        2,
        "the request and the withdrawal"
    );
}

/// Within one transaction the receipts wait for the case's checkpoint, which is signed once for
/// all of them: an envelope received twice in one batch (the second is a replay) and the next
/// one of the chain get their receipts when the batch is sealed, each carrying the same
/// checkpoint, which includes both entries; a later replay gets the same bytes; and a batch
/// holding a receipt it has not signed refuses to commit.
#[test]
fn receipts_of_one_batch_are_signed_at_its_end_over_one_checkpoint_and_replays_share_them() {
    use rogatory_node::engine::receive::{Cosigns, SignaturePolicy, receive_in, sign_receipts};
    let t = tempfile::tempdir().unwrap();
    let (a, b, store) = two_agencies(t.path());
    let case = CaseId::generate();
    let chain = chain_of(&a, &b, case, 3);
    let trusted = partners_of(vec![a.card.clone()]);
    let now = 1_790_000_100;
    let mut cosigns = Cosigns::default();
    let mut rx = |batch: &mut rogatory_node::store::Batch<'_>, bytes: &[u8]| {
        receive_in(
            batch,
            &b,
            &trusted,
            a.card.id(),
            bytes,
            now,
            &Limits::default(),
            &Quotas::default(),
            &mut cosigns,
            None,
            &SignaturePolicy::default(),
        )
        .unwrap()
        .0
    };
    let mut batch = store.batch().unwrap();
    let outcomes = [
        rx(&mut batch, &chain[0]),
        rx(&mut batch, &chain[0]),
        rx(&mut batch, &chain[1]),
    ];
    assert!(matches!(&outcomes[0], Outcome::Accepted { receipt, .. } if receipt.is_empty()));
    assert_eq!(
        outcomes[1],
        Outcome::Replay {
            receipt: Vec::new()
        }
    );
    assert!(matches!(&outcomes[2], Outcome::Accepted { receipt, .. } if receipt.is_empty()));
    let signed = sign_receipts(&mut batch, &b).unwrap();
    batch.commit().unwrap();
    assert_eq!(signed.len(), 2);
    let mut carried = Vec::new();
    for bytes in &chain[..2] {
        let id = rogatory_proto::ids::Sha256Digest::of(bytes);
        let r = verify_receipt(&signed[&id.0], &b.card, Some(&id)).unwrap();
        assert_eq!(r.receipt.event, ReceiptEvent::Accepted);
        carried.push(
            r.receipt
                .checkpoint
                .expect("the receipt carries a checkpoint"),
        );
    }
    assert_eq!(carried[0], carried[1], "one checkpoint for the batch");
    let note = rogatory_proto::audit::note::Note::parse(&carried[0]).unwrap();
    let cp = rogatory_proto::audit::note::Checkpoint::parse(note.text()).unwrap();
    assert_eq!(cp.size, 2, "it includes both envelopes' entries");
    assert_eq!(store.size(&case).unwrap(), 2);
    // A replay in a later transaction: the receipt signed then, byte for byte.
    let again = receive(
        &store,
        &b,
        &trusted,
        a.card.id(),
        &chain[0],
        now + 5,
        &Limits::default(),
        &Quotas::default(),
    )
    .unwrap();
    let id = rogatory_proto::ids::Sha256Digest::of(&chain[0]);
    assert_eq!(
        again,
        Outcome::Replay {
            receipt: signed[&id.0].clone()
        }
    );
    // A batch that would commit a receipt it has not signed refuses to.
    let mut batch = store.batch().unwrap();
    assert!(matches!(
        rx(&mut batch, &chain[2]),
        Outcome::Accepted { .. }
    ));
    assert!(batch.commit().is_err());
    assert_eq!(store.size(&case).unwrap(), 2, "nothing of it was written");
}
