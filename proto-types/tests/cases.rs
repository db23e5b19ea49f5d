//! Case state machines: every transition from every state by either side, applied whole or
//! refused with nothing changed; full lifecycles; extradition deadlines; the diagrams in
//! spec/CASES.md match the code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use rogatory_proto::case::extradition::{self, ECE, ExtraditionCase};
use rogatory_proto::case::mla::{self, MlaCase};
use rogatory_proto::case::order::{Applied, Machine, Replica};
use rogatory_proto::case::{Day, Side};
use rogatory_proto::ids::MessageId;
use rogatory_proto::message::{
    ExtraditionDecision, ExtraditionStage, ExtraditionStatusUpdate, MlaStatus, MlaStatusUpdate,
};

/// A valid update to `status` (with what that status requires).
fn mla_update(status: MlaStatus) -> MlaStatusUpdate {
    MlaStatusUpdate {
        status: Some(status),
        effective_at: "2026-11-30T09:15:00Z".into(),
        reference: (status == MlaStatus::Registered).then(|| "XB-MLA-2026-4410".into()),
        reason: (status == MlaStatus::Postponed).then(|| "ongoing domestic investigation".into()),
        until: (status == MlaStatus::Postponed).then(|| "2027-01-31".into()),
        grounds: if status == MlaStatus::Refused {
            vec!["dual criminality not met".into()]
        } else {
            vec![]
        },
        items: if matches!(
            status,
            MlaStatus::MoreInformationRequested | MlaStatus::ReturnedDeficient
        ) {
            vec!["the date range of the traffic data".into()]
        } else {
            vec![]
        },
        ..Default::default()
    }
}

#[test]
fn every_mla_transition_by_either_side_is_applied_whole_or_refused_with_nothing_changed() {
    let mut applied = 0;
    for from in mla::ALL {
        for to in mla::ALL {
            for side in [Side::Requesting, Side::Requested] {
                let case = MlaCase {
                    status: from,
                    history: vec![],
                };
                let mut c = case.clone();
                match c.apply(side, &mla_update(to)) {
                    Ok(()) => {
                        assert!(mla::allowed(from, to, side));
                        assert_eq!(c.status, to);
                        assert_eq!(c.history.len(), 1);
                        applied += 1;
                    }
                    Err(e) => {
                        assert!(!mla::allowed(from, to, side));
                        assert_eq!(c, case, "a refused transition changed the case");
                        assert!(!e.0.is_empty());
                        if from == MlaStatus::Closed {
                            assert!(e.0.contains("closed"), "{e}");
                        }
                    }
                }
            }
        }
    }
    assert!(applied > 30, "{applied}");
}

#[test]
fn who_may_do_what() {
    use MlaStatus::*;
    for from in mla::ALL {
        // The requesting side only answers, withdraws and closes what it withdrew or was
        // returned; everything about execution is the requested side's.
        for &to in mla::moves(from, Side::Requesting) {
            assert!(
                matches!(to, InformationProvided | Withdrawn | Closed),
                "{from:?} -> {to:?}"
            );
        }
        for &to in mla::moves(from, Side::Requested) {
            assert!(
                !matches!(to, InformationProvided | Withdrawn),
                "{from:?} -> {to:?}"
            );
        }
        if mla::allowed(from, Closed, Side::Requested)
            || mla::allowed(from, Closed, Side::Requesting)
        {
            assert!(
                matches!(
                    from,
                    Executed | PartiallyExecuted | Refused | Withdrawn | ReturnedDeficient
                ),
                "{from:?} closes"
            );
        }
    }
    // Withdrawal is possible while the request is open, never after it ended.
    for from in [Executed, Refused, Closed, Withdrawn] {
        assert!(!mla::allowed(from, Withdrawn, Side::Requesting));
    }
    assert!(mla::allowed(Executing, Withdrawn, Side::Requesting));
    // A clear message for the wrong side.
    let e = mla::check(
        MoreInformationRequested,
        InformationProvided,
        Side::Requested,
    )
    .unwrap_err();
    assert!(e.0.contains("only the requesting side"), "{e}");
    let e = mla::check(Received, Executed, Side::Requested).unwrap_err();
    assert!(e.0.contains("may move it to"), "{e}");
}

#[test]
fn refusal_needs_grounds_and_postponement_a_reason_and_a_date() {
    let mut c = MlaCase::default();
    c.apply(Side::Requested, &mla_update(MlaStatus::Registered))
        .unwrap();
    let before = c.clone();
    let mut refuse = mla_update(MlaStatus::Refused);
    refuse.grounds.clear();
    assert!(
        c.apply(Side::Requested, &refuse)
            .unwrap_err()
            .0
            .contains("grounds")
    );
    let mut postpone = mla_update(MlaStatus::Postponed);
    postpone.until = None;
    assert!(
        c.apply(Side::Requested, &postpone)
            .unwrap_err()
            .0
            .contains("until")
    );
    postpone = mla_update(MlaStatus::Postponed);
    postpone.reason = None;
    assert!(
        c.apply(Side::Requested, &postpone)
            .unwrap_err()
            .0
            .contains("reason")
    );
    assert_eq!(c, before);
}

#[test]
fn a_full_mla_lifecycle() {
    use MlaStatus::*;
    let mut c = MlaCase::default();
    for (side, status) in [
        (Side::Requested, Registered),
        (Side::Requested, MoreInformationRequested),
        (Side::Requesting, InformationProvided),
        (Side::Requested, Executing),
        (Side::Requested, Executed),
        (Side::Requested, Closed),
    ] {
        c.apply(side, &mla_update(status))
            .unwrap_or_else(|e| panic!("{status:?}: {e}"));
    }
    assert!(c.is_closed());
    assert_eq!(c.history.len(), 6);
    for to in mla::ALL {
        for side in [Side::Requesting, Side::Requested] {
            assert!(c.clone().apply(side, &mla_update(to)).is_err());
        }
    }
}

proptest! {
    /// Any sequence of updates from either side: each is applied whole or refused whole, and
    /// two replicas given the same sequence end equal (status and history).
    #[test]
    fn random_mla_sequences_apply_whole_and_replicas_agree(
        steps in proptest::collection::vec((0usize..14, any::<bool>()), 0..60)
    ) {
        let mut a = MlaCase::default();
        let mut b = MlaCase::default();
        for (i, requesting) in steps {
            let side = if requesting { Side::Requesting } else { Side::Requested };
            let u = mla_update(mla::ALL[i]);
            let before = a.clone();
            let ra = a.apply(side, &u);
            let rb = b.apply(side, &u);
            prop_assert_eq!(ra.is_ok(), rb.is_ok());
            if ra.is_err() {
                prop_assert_eq!(&a, &before);
            } else {
                prop_assert_eq!(a.history.len(), before.history.len() + 1);
            }
            prop_assert_eq!(&a, &b);
        }
    }
}

fn ext(stage: ExtraditionStage, date: &str) -> ExtraditionStatusUpdate {
    ExtraditionStatusUpdate {
        stage: Some(stage),
        person_reference: "XB-EXT-2026-0042".into(),
        effective_date: date.into(),
        decision: stage
            .needs_decision()
            .then_some(ExtraditionDecision::Granted),
        scheduled_for: matches!(
            stage,
            ExtraditionStage::HearingScheduled | ExtraditionStage::SurrenderScheduled
        )
        .then(|| date.into()),
        ..Default::default()
    }
}

#[test]
fn a_full_extradition_with_its_deadlines_met() {
    use ExtraditionStage::*;
    let mut c = ExtraditionCase::default();
    for (side, stage, date) in [
        (Side::Requesting, ProvisionalArrestRequested, "2026-10-01"),
        (Side::Requested, Arrested, "2026-10-02"),
        (Side::Requesting, FormalRequestReceived, "2026-10-15"),
        (Side::Requested, HearingScheduled, "2026-10-20"),
        (Side::Requested, HearingHeld, "2026-10-20"),
        (Side::Requested, JudicialDecision, "2026-10-27"),
        (Side::Requested, ExecutiveDecision, "2026-11-05"),
        (Side::Requested, SurrenderScheduled, "2026-11-12"),
        (Side::Requested, Surrendered, "2026-11-12"),
    ] {
        c.apply(side, &ext(stage, date))
            .unwrap_or_else(|e| panic!("{stage:?}: {e}"));
    }
    let d = c.deadlines(ECE);
    let names: Vec<&str> = d.iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        [
            "formal-request-18",
            "formal-request-40",
            "surrender-15",
            "surrender-30"
        ]
    );
    assert_eq!(d[0].due.to_string(), "2026-10-20");
    assert_eq!(d[1].due.to_string(), "2026-11-11");
    assert!(d.iter().all(|d| d.met.is_some()), "{d:?}");
    assert_eq!(d[0].met.unwrap().to_string(), "2026-10-15");
    let far = Day::parse("2027-06-01").unwrap();
    assert!(d.iter().all(|d| !d.overdue(far)));
    // Ended: nothing follows.
    let e = c
        .apply(Side::Requested, &ext(Released, "2026-11-13"))
        .unwrap_err();
    assert!(e.0.contains("ended"), "{e}");
}

#[test]
fn a_formal_request_that_does_not_come_is_flagged_at_18_and_40_days() {
    use ExtraditionStage::*;
    let mut c = ExtraditionCase::default();
    c.apply(
        Side::Requesting,
        &ext(ProvisionalArrestRequested, "2026-11-01"),
    )
    .unwrap();
    c.apply(Side::Requested, &ext(Arrested, "2026-11-02"))
        .unwrap();
    let d = c.deadlines(ECE);
    let day = |s: &str| Day::parse(s).unwrap();
    assert_eq!(d[0].due, day("2026-11-20"));
    assert_eq!(d[1].due, day("2026-12-12"));
    assert!(
        !d[0].overdue(day("2026-11-20")),
        "due that day, not yet overdue"
    );
    assert!(d[0].overdue(day("2026-11-21")));
    assert!(!d[1].overdue(day("2026-11-21")));
    assert!(d[1].due_within(day("2026-12-06"), 7));
    assert!(!d[1].due_within(day("2026-12-04"), 7));
    // Consent starts its own clock (Third Additional Protocol), and meets the 18/40 days.
    c.apply(Side::Requested, &ext(ConsentGiven, "2026-11-10"))
        .unwrap();
    let d = c.deadlines(ECE);
    assert!(d[0].met.is_some() && d[1].met.is_some());
    assert_eq!(d[2].name, "consent-decision-20");
    assert_eq!(d[2].due, day("2026-11-30"));
    // Without a provisional arrest, an arrest after the formal request starts no 18/40 clock.
    let mut c = ExtraditionCase::default();
    c.apply(Side::Requesting, &ext(FormalRequestReceived, "2026-11-01"))
        .unwrap();
    c.apply(Side::Requested, &ext(Arrested, "2026-11-02"))
        .unwrap();
    assert!(c.deadlines(ECE).is_empty());
}

#[test]
fn illegal_extradition_updates_are_refused_whole() {
    use ExtraditionStage::*;
    let mut c = ExtraditionCase::default();
    // Not a first stage; the wrong side.
    assert!(
        c.apply(Side::Requested, &ext(Arrested, "2026-11-01"))
            .is_err()
    );
    assert!(
        c.apply(
            Side::Requested,
            &ext(ProvisionalArrestRequested, "2026-11-01")
        )
        .unwrap_err()
        .0
        .contains("reported by the requesting side")
    );
    c.apply(
        Side::Requesting,
        &ext(ProvisionalArrestRequested, "2026-11-01"),
    )
    .unwrap();
    let before = c.clone();
    // Out of order, back-dated, missing its decision, reported by the wrong side.
    let e = c
        .apply(Side::Requested, &ext(Surrendered, "2026-11-02"))
        .unwrap_err();
    assert!(e.0.contains("next stage can be"), "{e}");
    assert!(
        c.apply(Side::Requested, &ext(Arrested, "2026-10-30"))
            .unwrap_err()
            .0
            .contains("before")
    );
    let mut no_decision = ext(JudicialDecision, "2026-11-03");
    no_decision.decision = None;
    assert!(c.apply(Side::Requested, &no_decision).is_err());
    assert!(
        c.apply(Side::Requesting, &ext(Arrested, "2026-11-02"))
            .is_err()
    );
    assert_eq!(c, before);
    // A refused decision leads to release or appeal, not surrender.
    for (side, stage, date) in [
        (Side::Requested, Arrested, "2026-11-02"),
        (Side::Requested, FormalRequestReceived, "2026-11-10"),
        (Side::Requested, HearingScheduled, "2026-11-12"),
        (Side::Requested, HearingHeld, "2026-11-12"),
    ] {
        c.apply(side, &ext(stage, date)).unwrap();
    }
    let mut refused = ext(JudicialDecision, "2026-11-13");
    refused.decision = Some(ExtraditionDecision::Refused);
    c.apply(Side::Requested, &refused).unwrap();
    assert!(
        c.apply(Side::Requested, &ext(SurrenderScheduled, "2026-11-14"))
            .is_err()
    );
    c.apply(Side::Requested, &ext(Released, "2026-11-14"))
        .unwrap();
}

proptest! {
    /// Any sequence of extradition updates: applied whole or refused whole; replicas agree; the
    /// history only grows by accepted updates, in date order.
    #[test]
    fn random_extradition_sequences_apply_whole_and_replicas_agree(
        steps in proptest::collection::vec((0usize..15, any::<bool>(), 0i64..5, any::<bool>()), 0..40)
    ) {
        let mut a = ExtraditionCase::default();
        let mut b = ExtraditionCase::default();
        let mut day = Day::parse("2026-01-01").unwrap();
        for (i, requesting, gap, granted) in steps {
            day = day.plus(gap);
            let side = if requesting { Side::Requesting } else { Side::Requested };
            let mut u = ext(extradition::ALL[i], &day.to_string());
            if u.decision.is_some() && !granted {
                u.decision = Some(ExtraditionDecision::Refused);
            }
            let before = a.clone();
            let ra = a.apply(side, &u);
            prop_assert_eq!(ra.is_ok(), b.apply(side, &u).is_ok());
            if ra.is_err() {
                prop_assert_eq!(&a, &before);
            }
            prop_assert_eq!(&a, &b);
            // Deadlines never panic and never end before they start.
            for d in a.deadlines(ECE) {
                prop_assert!(d.due >= d.started);
            }
        }
    }
}

#[test]
fn the_diagrams_in_the_spec_are_the_code_s() {
    let spec = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/CASES.md"),
    )
    .unwrap();
    for (what, diagram) in [
        ("MLA", mla::mermaid()),
        ("extradition", extradition::mermaid()),
    ] {
        assert!(
            spec.contains(&format!("```mermaid\n{diagram}```")),
            "spec/CASES.md does not hold the {what} diagram the code gives:\n{diagram}"
        );
    }
}

#[test]
fn the_authorization_table_in_the_spec_is_the_code_s() {
    let spec = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/PROTOCOL.md"),
    )
    .unwrap();
    let table = rogatory_proto::case::authz::markdown_table();
    assert!(
        spec.contains(&table),
        "spec/PROTOCOL.md §5.4 does not hold the table the code gives:\n{table}"
    );
}

/// What travels between the two sides of one case in the model below.
struct Wire<U> {
    /// The requesting side's proposals, in its chain's order.
    to_requested: std::collections::VecDeque<(MessageId, U)>,
    /// The requested side's updates and confirmations, in its chain's order.
    to_requesting: std::collections::VecDeque<(MessageId, U, Option<MessageId>)>,
    /// Rejection receipts for proposals (no order relative to the chains).
    rejections: Vec<(MessageId, String)>,
}

/// Runs one random interleaving of both sides' updates and deliveries through two replicas
/// and checks that each update is applied or refused whole, that the requesting side never has
/// to refuse what the requested side sent, and that both sides end with the same history and
/// the same refusals, every proposal settled.
fn converge<M>(
    ops: &[(u8, usize)],
    update: impl Fn(usize) -> M::Update,
) -> Result<(), TestCaseError>
where
    M: Machine + Clone + PartialEq + std::fmt::Debug,
{
    let mut a: Replica<M, ()> = Replica::new(Side::Requesting);
    let mut b: Replica<M, ()> = Replica::new(Side::Requested);
    let mut wire = Wire {
        to_requested: Default::default(),
        to_requesting: Default::default(),
        rejections: Vec::new(),
    };
    let mut next_id = 0u64;
    let mut fresh = || {
        next_id += 1;
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&next_id.to_be_bytes());
        MessageId::from_bytes(b)
    };
    let mut proposed = Vec::new();
    // The ops, then enough deliveries to drain every queue.
    let drain = (0..3 * ops.len() + 3).map(|k| ((2 + k % 3) as u8, 0));
    for (op, pick) in ops.iter().copied().chain(drain) {
        match op % 5 {
            0 => {
                let before = a.clone();
                let id = fresh();
                match a.local(id, update(pick), ()) {
                    Ok(Applied::Proposed) => {
                        proposed.push(id);
                        wire.to_requested.push_back((id, update(pick)));
                    }
                    Ok(other) => prop_assert!(false, "a proposal was {:?}", other),
                    Err(_) => prop_assert_eq!(&a, &before),
                }
            }
            1 => {
                let before = b.clone();
                let id = fresh();
                match b.local(id, update(pick), ()) {
                    Ok(Applied::Now) => wire.to_requesting.push_back((id, update(pick), None)),
                    Ok(other) => prop_assert!(false, "an update was {:?}", other),
                    Err(_) => prop_assert_eq!(&b, &before),
                }
            }
            2 => {
                let Some((id, u)) = wire.to_requested.pop_front() else {
                    continue;
                };
                let before = b.clone();
                match b.remote(id, u.clone(), None, ()) {
                    Ok(Applied::Confirm) => {
                        prop_assert_eq!(b.history.len(), before.history.len() + 1);
                        wire.to_requesting.push_back((fresh(), u, Some(id)));
                    }
                    Ok(other) => prop_assert!(false, "a proposal was {:?}", other),
                    Err(e) => {
                        prop_assert_eq!(&b, &before);
                        b.refuse_remote(id, u, (), e.0.clone());
                        wire.rejections.push((id, e.0));
                    }
                }
            }
            3 => {
                let Some((id, u, confirms)) = wire.to_requesting.pop_front() else {
                    continue;
                };
                let r = a.remote(id, u, confirms, ());
                prop_assert!(
                    r.is_ok(),
                    "the requesting side refused what the requested side sent: {:?}",
                    r
                );
            }
            _ => {
                if wire.rejections.is_empty() {
                    continue;
                }
                let (id, reason) = wire.rejections.remove(pick % wire.rejections.len());
                prop_assert!(a.refused_by_peer(id, reason), "not a pending proposal");
            }
        }
    }
    prop_assert!(wire.to_requested.is_empty() && wire.to_requesting.is_empty());
    prop_assert!(wire.rejections.is_empty());
    prop_assert!(
        a.pending.is_empty(),
        "proposals left pending: {:?}",
        a.pending
    );
    prop_assert_eq!(&a.history, &b.history);
    prop_assert_eq!(a.state(), b.state());
    let ids = |r: &Replica<M, ()>| {
        let mut v: Vec<MessageId> = r.refused.iter().map(|f| f.entry.message).collect();
        v.sort();
        v
    };
    prop_assert_eq!(ids(&a), ids(&b));
    // Every proposal ended applied or refused, once.
    for p in proposed {
        let applied = a.history.iter().filter(|e| e.message == p).count();
        let refused = a.refused.iter().filter(|f| f.entry.message == p).count();
        prop_assert_eq!(applied + refused, 1);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Both sides update an MLA request at random, concurrently, with deliveries interleaved at
    /// random: they end with one history (spec/CASES.md §4).
    #[test]
    fn both_sides_of_an_mla_request_converge(
        ops in proptest::collection::vec((0u8..5, 0usize..14), 0..80)
    ) {
        converge::<MlaCase>(&ops, |i| mla_update(mla::ALL[i]))?;
    }

    /// The same for an extradition's stages (dates in order, decisions granted).
    #[test]
    fn both_sides_of_an_extradition_converge(
        ops in proptest::collection::vec((0u8..5, 0usize..15), 0..60)
    ) {
        converge::<ExtraditionCase>(&ops, |i| ext(extradition::ALL[i], "2026-11-02"))?;
    }
}
