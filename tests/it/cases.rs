//! Case tracking across two real nodes: an MLA lifecycle driven from both sides, refusals of
//! what a side may not do, and an extradition whose statutory deadline passes.

use std::path::Path;
use std::time::Duration;

use rogatory_proto::case::{Day, Side, mla};
use rogatory_proto::message::MlaStatus;
use rogatory_tests::{Cluster, Rng, example, run_line};
use serde_json::Value;

fn json(root: &Path, line: &str) -> Value {
    serde_json::from_str(&run_line(root, line).ok().stdout).unwrap()
}

fn day_offset(days: i64) -> String {
    Day::of_unix(rogatory_proto::time::now_unix())
        .plus(days)
        .to_string()
}

#[test]
fn an_mla_lifecycle_across_two_nodes_ends_the_same_on_both() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let body = rogatory_tests::spec_dir().join("examples/mla-request.json");
    // The clerk opens the case, then sends its request.
    let case = run_line(
        root,
        "case new --kind mla --to XB.DOJ-CA --reference XA-2026-CY-0173 --data-dir xa.moj-ca",
    )
    .ok()
    .stdout
    .trim()
    .to_string();
    let a = json(root, "case list --data-dir xa.moj-ca --json");
    assert_eq!(a[0]["case_id"], case.as_str());
    assert_eq!(a[0]["reference"], "XA-2026-CY-0173");
    assert_eq!(a[0]["our_side"], "requesting");
    run_line(
        root,
        "case new --kind mla --to XZ.NOBODY --data-dir xa.moj-ca",
    )
    .failed();
    run_line(
        root,
        &format!(
            "request send {case} {} --data-dir xa.moj-ca",
            body.display()
        ),
    )
    .ok();
    let mut settled = 1;
    c.wait_settled(0, settled, Duration::from_secs(60));
    let b = json(root, "case list --data-dir xb.doj-ca --json");
    assert_eq!(b[0]["case_id"], case.as_str());
    assert_eq!(b[0]["our_side"], "requested");
    assert_eq!(b[0]["status"], "received");

    let step = |dir: &str, args: &str| {
        run_line(root, &format!("case update {case} {args} --data-dir {dir}")).ok();
    };
    // Registering is the requested side's to do.
    let r = run_line(
        root,
        &format!("case update {case} registered --reference X --data-dir xa.moj-ca"),
    )
    .failed();
    assert!(r.stderr.contains("only the requested side"), "{}", r.stderr);
    let mut b_settled = 0;
    step("xb.doj-ca", "registered --reference XB-MLA-2026-4410");
    step(
        "xb.doj-ca",
        "more-information-requested --item the-date-range",
    );
    b_settled += 2;
    c.wait_settled(1, b_settled, Duration::from_secs(60));
    // Not a status that can follow, for either side; registering is the requested side's.
    let r = run_line(
        root,
        &format!("case update {case} executing --data-dir xa.moj-ca"),
    )
    .failed();
    assert!(r.stderr.contains("cannot go from"), "{}", r.stderr);
    let r = run_line(
        root,
        &format!("case update {case} refused --grounds none --data-dir xa.moj-ca"),
    )
    .failed();
    assert!(r.stderr.contains("only the requested side"), "{}", r.stderr);
    let r = run_line(
        root,
        &format!("case update {case} executed --data-dir xb.doj-ca"),
    )
    .failed();
    assert!(r.stderr.contains("cannot go from"), "{}", r.stderr);
    step("xa.moj-ca", "information-provided");
    settled += 1;
    c.wait_settled(0, settled, Duration::from_secs(60));
    // XB's node confirmed the requesting side's update (one more envelope from XB).
    step("xb.doj-ca", "executing");
    step("xb.doj-ca", "executed");
    step("xb.doj-ca", "closed");
    b_settled += 4;
    c.wait_settled(1, b_settled, Duration::from_secs(60));
    let r = run_line(
        root,
        &format!("case update {case} withdrawn --data-dir xa.moj-ca"),
    )
    .failed();
    assert!(r.stderr.contains("closed"), "{}", r.stderr);

    let a = json(
        root,
        &format!("case show {case} --wait 60 --data-dir xa.moj-ca --json"),
    );
    let b = json(
        root,
        &format!("case show {case} --data-dir xb.doj-ca --json"),
    );
    assert_eq!(a["status"], "closed");
    assert_eq!(b["status"], "closed");
    let history = |v: &Value| -> Vec<(String, String)> {
        v["updates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["status"].as_str().unwrap().to_string(),
                    u["envelope_id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(history(&a), history(&b), "both sides hold the same history");
    assert_eq!(history(&a).len(), 6);
    // The timeline names every message with its receipt.
    // 2 sent by XA, 5 updates and 1 confirmation from XB.
    assert_eq!(a["messages"].as_array().unwrap().len(), 8, "{a}");
    let text = run_line(root, &format!("case show {case} --data-dir xa.moj-ca"))
        .ok()
        .stdout;
    assert!(text.contains("receipt: accepted"), "{text}");
}

#[test]
fn an_extradition_deadline_that_passes_is_reported() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let sent = json(
        root,
        &format!(
            "extradition update new provisional-arrest-requested --date {} --to XB.DOJ-CA --person XA-WANTED-0042 --data-dir xa.moj-ca --json",
            day_offset(-30)
        ),
    );
    let case = sent["case_id"].as_str().unwrap().to_string();
    c.wait_settled(0, 1, Duration::from_secs(60));
    // Only the requested side reports an arrest.
    let r = run_line(
        root,
        &format!(
            "extradition update {case} arrested --date {} --data-dir xa.moj-ca",
            day_offset(-29)
        ),
    )
    .failed();
    assert!(
        r.stderr.contains("reported by the requested side"),
        "{}",
        r.stderr
    );
    run_line(
        root,
        &format!(
            "extradition update {case} arrested --date {} --data-dir xb.doj-ca",
            day_offset(-29)
        ),
    )
    .ok();
    // XB's confirmation of the provisional-arrest request, then the arrest.
    c.wait_settled(1, 2, Duration::from_secs(60));
    for dir in ["xa.moj-ca", "xb.doj-ca"] {
        let d = json(
            root,
            &format!("deadlines --within 30d --data-dir {dir} --json"),
        );
        let rules: Vec<(&str, bool)> = d
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["rule"].as_str().unwrap(), d["overdue"].as_bool().unwrap()))
            .collect();
        assert_eq!(
            rules,
            [("formal-request-18", true), ("formal-request-40", false)],
            "{dir}: {d}"
        );
        let overdue = json(
            root,
            &format!("case list --overdue --data-dir {dir} --json"),
        );
        assert_eq!(overdue.as_array().unwrap().len(), 1, "{dir}");
        assert_eq!(overdue[0]["status"], "arrested");
    }
    // A node that starts logs the passed deadline and the one coming, before it serves.
    c.stop(1);
    c.start(1);
    let log = std::fs::read_to_string(root.join("xb.doj-ca/node.log")).unwrap();
    assert!(
        log.contains("deadline passed") && log.contains("formal-request-18"),
        "{log}"
    );
    // The formal request arrives: both deadlines are met, nothing is overdue any more.
    run_line(
        root,
        &format!(
            "extradition update {case} formal-request-received --date {} --data-dir xa.moj-ca",
            day_offset(0)
        ),
    )
    .ok();
    c.wait_settled(0, 2, Duration::from_secs(60));
    c.wait_settled(1, 3, Duration::from_secs(60));
    for dir in ["xa.moj-ca", "xb.doj-ca"] {
        let d = json(
            root,
            &format!("deadlines --within 60d --data-dir {dir} --json"),
        );
        assert!(d.as_array().unwrap().is_empty(), "{dir}: {d}");
        let overdue = json(
            root,
            &format!("case list --overdue --data-dir {dir} --json"),
        );
        assert!(overdue.as_array().unwrap().is_empty(), "{dir}");
    }
}

#[test]
fn a_message_marked_h2_cannot_be_passed_on_and_the_attempt_is_logged() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.POLICE", "XB.POLICE", "XC.POLICE"], 1);
    for i in 0..3 {
        c.start(i);
    }
    // The example liaison message is marked H0 and H2.
    let h2 = rogatory_tests::example("liaison.json");
    assert!(h2["handling"]["codes"].to_string().contains("H2"));
    let sent = c.send(0, "XB.POLICE", "new", "liaison", &h2);
    let case = sent["case_id"].as_str().unwrap().to_string();
    let id = sent["queued"][0]["envelope_id"]
        .as_str()
        .unwrap()
        .to_string();
    c.wait_settled(0, 1, Duration::from_secs(60));
    let r = run_line(
        root,
        &format!("message forward {id} --to XC.POLICE --data-dir xb.police"),
    )
    .failed();
    assert!(r.stderr.contains("H2"), "{}", r.stderr);
    // Without H2 it may be passed on, in the same case.
    let mut h0 = h2.clone();
    h0["handling"]["codes"] = serde_json::json!(["H0"]);
    let sent = c.send(0, "XB.POLICE", &case, "liaison", &h0);
    let id0 = sent["queued"][0]["envelope_id"]
        .as_str()
        .unwrap()
        .to_string();
    c.wait_settled(0, 2, Duration::from_secs(60));
    run_line(
        root,
        &format!(
            "message forward {} --to XC.POLICE --data-dir xb.police",
            &id0[..12]
        ),
    )
    .ok();
    c.wait_settled(1, 1, Duration::from_secs(60));
    let inbox = c.api(2).get::<serde_json::Value>("/v1/inbox").unwrap();
    let inbox = inbox.as_array().unwrap();
    assert_eq!(inbox.len(), 1, "only the H0 message reached XC");
    assert_eq!(inbox[0]["case_id"], case.as_str());
    for i in 0..3 {
        c.stop(i);
    }
    // XB's log of the case holds the refusal, with its reason and the user.
    let log: Value = serde_json::from_str(
        &run_line(
            root,
            &format!("audit log {case} --data-dir xb.police --json"),
        )
        .ok()
        .stdout,
    )
    .unwrap();
    let refused: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "envelope-rejected")
        .collect();
    assert_eq!(refused.len(), 1, "{log}");
    assert_eq!(refused[0]["envelope_id"].as_str().unwrap(), id);
    assert_eq!(refused[0]["peer"], "XC.POLICE");
    let code = (0u16..1000)
        .find(|c| rogatory_proto::receipt::ReasonCode::from(*c).name() == "handling-violation")
        .unwrap();
    assert_eq!(refused[0]["reason"], u64::from(code));
}

#[test]
fn an_emergency_overtakes_500_queued_routine_messages() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.POLICE", "XB.POLICE"], 1);
    c.start(0);
    c.start(1);
    c.stop(1);
    let mut routine = rogatory_tests::example("liaison.json");
    routine["priority"] = serde_json::json!("routine");
    routine["priority_reason"] = Value::Null;
    let first = c.send(0, "XB.POLICE", "new", "liaison", &routine);
    let case = first["case_id"].as_str().unwrap().to_string();
    for _ in 1..500 {
        c.send(0, "XB.POLICE", &case, "liaison", &routine);
    }
    let mut emergency = rogatory_tests::example("liaison.json");
    emergency["priority"] = serde_json::json!("emergency");
    emergency["priority_reason"] = serde_json::json!("A child is in immediate danger");
    let e = c.send(0, "XB.POLICE", "new", "liaison", &emergency);
    let e_id = e["queued"][0]["envelope_id"].as_str().unwrap().to_string();
    // Flagged in the outbox while it waits.
    let out = c.api(0).get::<serde_json::Value>("/v1/outbox").unwrap();
    let row = out
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["envelope_id"] == e_id.as_str())
        .unwrap();
    assert_eq!(row["emergency"], true);
    c.start(1);
    c.wait_settled(0, 501, Duration::from_secs(180));
    let inbox = c.api(1).get::<serde_json::Value>("/v1/inbox").unwrap();
    let inbox = inbox.as_array().unwrap();
    assert_eq!(inbox.len(), 501);
    let mine = inbox
        .iter()
        .find(|m| m["envelope_id"] == e_id.as_str())
        .unwrap();
    assert_eq!(mine["emergency"], true);
    // It was queued last, and arrived among the first: before at least 400 of the 500.
    let rank = mine["arrival"].as_u64().unwrap();
    eprintln!("the emergency arrived at position {rank} of 501");
    assert!(rank < 100, "the emergency arrived {rank}th of 501");
    let later = inbox
        .iter()
        .filter(|m| m["arrival"].as_u64().unwrap() > rank)
        .count();
    assert!(
        later >= 400,
        "only {later} routine messages arrived after it"
    );
}

/// A valid body for an MLA status update to `status`.
fn mla_status(status: &str, n: u64) -> Value {
    let mut v = serde_json::json!({
        "status": status,
        "effective_at": rogatory_proto::time::format_unix(rogatory_proto::time::now_unix()),
    });
    match status {
        "registered" => v["reference"] = format!("XB-MLA-{n}").into(),
        "returned-deficient" | "more-information-requested" => {
            v["items"] = serde_json::json!(["the date range"])
        }
        "postponed" => {
            v["reason"] = "a domestic investigation".into();
            v["until"] = day_offset(30).into();
        }
        "refused" => v["grounds"] = serde_json::json!(["dual criminality not met"]),
        _ => {}
    }
    v
}

/// The updates of a case both sides must agree on: (status, side, envelope).
fn history(v: &Value) -> Vec<(String, String, String)> {
    v["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["status"].as_str().unwrap().to_string(),
                u["side"].as_str().unwrap().to_string(),
                u["envelope_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn refused(v: &Value) -> std::collections::BTreeSet<String> {
    v["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["envelope_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn concurrent_updates_from_both_sides_and_an_offline_node_end_the_same_on_both() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let mut rng = Rng::seeded();
    let body = example("mla-request.json");
    let mut cases: Vec<String> = (0..4)
        .map(|_| {
            c.send(0, "XB.DOJ-CA", "new", "mla-request", &body)["case_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    c.wait_settled(0, 4, Duration::from_secs(60));
    let peers = ["XB.DOJ-CA", "XA.MOJ-CA"];
    // Both clerks update at random without waiting for each other; XB is offline for a while,
    // so XA's proposals queue up and cross XB's updates when it is back.
    let mut made: Vec<String> = Vec::new();
    let mut local_refusals = 0;
    for round in 0..160u64 {
        // A partition: XB is down while XA updates, then XA is down while XB updates, so each
        // side acts on a view that misses the other's latest updates; then both are up.
        match round {
            50 => c.stop(1),
            80 => {
                c.stop(0);
                c.start(1);
            }
            110 => c.start(0),
            _ => {}
        }
        let side = match round {
            50..80 => 0,
            80..110 => 1,
            _ => rng.below(2) as usize,
        };
        let at = rng.below(cases.len() as u64) as usize;
        let case = cases[at].clone();
        // Mostly a move this side may make from the status it sees (which may be stale: the
        // other side may be moving the case at the same time), sometimes any status at all; the
        // endings less often, so that cases live long enough to cross.
        // A new case may not have reached XB yet.
        let Ok(view) = c
            .api(side)
            .get::<serde_json::Value>(&format!("/v1/cases/{case}"))
        else {
            continue;
        };
        let seen: MlaStatus = serde_json::from_value(view["status"].clone()).unwrap();
        if seen == MlaStatus::Closed && side == 1 {
            continue;
        }
        if seen == MlaStatus::Closed {
            // A closed request cannot change: XA sends a new one in its place.
            let r = c.send(0, "XB.DOJ-CA", "new", "mla-request", &body);
            cases.push(r["case_id"].as_str().unwrap().to_string());
            continue;
        }
        let our_side = [Side::Requesting, Side::Requested][side];
        let pick = |rng: &mut Rng| {
            let moves = mla::moves(seen, our_side);
            if moves.is_empty() || rng.below(5) == 0 {
                mla::ALL[rng.below(mla::ALL.len() as u64) as usize]
            } else {
                moves[rng.below(moves.len() as u64) as usize]
            }
        };
        let mut status = pick(&mut rng);
        for _ in 0..3 {
            if matches!(
                status,
                MlaStatus::Closed | MlaStatus::Withdrawn | MlaStatus::Refused
            ) && rng.below(4) != 0
            {
                status = pick(&mut rng);
            }
        }
        let status = status.as_str();
        let r = c.api(side).post::<serde_json::Value>(
            "/v1/send",
            &serde_json::json!({
                "to": [peers[side]], "case": case, "type": "mla-status",
                "body": mla_status(status, round),
            }),
        );
        match r {
            Ok(v) => made.push(v["queued"][0]["envelope_id"].as_str().unwrap().to_string()),
            Err(e) => {
                // Refused whole, with the reason, before anything was sealed.
                assert!(format!("{e:#}").contains("refused"), "{e:#}");
                local_refusals += 1;
            }
        }
    }
    assert!(made.len() > 25, "too few updates were made: {}", made.len());
    // Every proposal of XA is answered; by then XB has queued every confirmation.
    let a_out = c.api(0).get::<serde_json::Value>("/v1/outbox").unwrap();
    c.wait_settled(0, a_out.as_array().unwrap().len(), Duration::from_secs(120));
    let b_out = c.api(1).get::<serde_json::Value>("/v1/outbox").unwrap();
    let b_rows = c.wait_settled(1, b_out.as_array().unwrap().len(), Duration::from_secs(120));
    assert!(
        b_rows.iter().all(|r| r["state"] == "delivered"),
        "XA refused something XB sent: {b_rows:?}"
    );
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let mut proposals_refused = 0;
    for case in &cases {
        let a = c
            .api(0)
            .get::<serde_json::Value>(&format!("/v1/cases/{case}?wait=60"))
            .unwrap();
        let b = c
            .api(1)
            .get::<serde_json::Value>(&format!("/v1/cases/{case}"))
            .unwrap();
        assert!(a["proposals"].as_array().unwrap().is_empty(), "{a}");
        assert_eq!(a["status"], b["status"], "case {case}");
        assert_eq!(history(&a), history(&b), "case {case}");
        assert_eq!(refused(&a), refused(&b), "case {case}");
        proposals_refused += refused(&a).len();
        for (_, _, e) in history(&a) {
            *seen.entry(e).or_default() += 1;
        }
        for e in refused(&a) {
            *seen.entry(e).or_default() += 1;
        }
    }
    // Each update made is in the history or refused, once; nothing else is.
    let made_set: std::collections::BTreeMap<String, usize> =
        made.iter().map(|e| (e.clone(), 1)).collect();
    assert_eq!(seen, made_set);
    eprintln!(
        "{} cases, {} updates made, {local_refusals} refused locally, {proposals_refused} proposals refused by XB",
        cases.len(),
        made.len()
    );
    c.stop(0);
    c.stop(1);
    for dir in ["xa.moj-ca", "xb.doj-ca"] {
        run_line(root, &format!("audit verify-store --data-dir {dir}")).ok();
    }
}

#[test]
fn a_preservation_period_is_tracked_until_the_mla_request_follows() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let case = run_line(
        root,
        "case new --kind preservation --to XB.DOJ-CA --data-dir xa.moj-ca",
    )
    .ok()
    .stdout
    .trim()
    .to_string();
    let file = rogatory_tests::spec_dir().join("examples/preservation-request.json");
    run_line(
        root,
        &format!(
            "request send {case} {} --type preservation-request --data-dir xa.moj-ca",
            file.display()
        ),
    )
    .ok();
    c.wait_settled(0, 1, Duration::from_secs(60));
    let due = day_offset(90);
    for dir in ["xa.moj-ca", "xb.doj-ca"] {
        // Not due within a week; listed within the period, with the days left.
        let d = json(root, &format!("deadlines --data-dir {dir} --json"));
        assert!(d.as_array().unwrap().is_empty(), "{dir}: {d}");
        let d = json(
            root,
            &format!("deadlines --within 90d --data-dir {dir} --json"),
        );
        assert_eq!(d[0]["rule"], "preservation-period", "{dir}: {d}");
        assert_eq!(d[0]["due"], due.as_str(), "{dir}: {d}");
        assert_eq!(d[0]["days_left"], 90, "{dir}: {d}");
        assert_eq!(d[0]["overdue"], false);
        let l = json(
            root,
            &format!("case list --emergency --data-dir {dir} --json"),
        );
        assert_eq!(l[0]["kind"], "preservation", "{dir}: {l}");
        assert_eq!(l[0]["next_due"], due.as_str());
    }
    // A liaison message fits any case; an MLA status does not fit before the request.
    let r = run_line(
        root,
        &format!("case update {case} withdrawn --data-dir xa.moj-ca"),
    )
    .failed();
    assert!(r.stderr.contains("no MLA request"), "{}", r.stderr);
    // The MLA request follows in the same case: the preservation holds until it is decided.
    let mla = rogatory_tests::spec_dir().join("examples/mla-request.json");
    run_line(
        root,
        &format!("request send {case} {} --data-dir xa.moj-ca", mla.display()),
    )
    .ok();
    c.wait_settled(0, 2, Duration::from_secs(60));
    for dir in ["xa.moj-ca", "xb.doj-ca"] {
        let d = json(
            root,
            &format!("deadlines --within 365d --data-dir {dir} --json"),
        );
        assert!(d.as_array().unwrap().is_empty(), "{dir}: {d}");
        let v = json(root, &format!("case show {case} --data-dir {dir} --json"));
        assert_eq!(v["kind"], "mla", "{dir}: {v}");
        assert_eq!(v["status"], "received");
        assert_eq!(v["deadlines"][0]["rule"], "preservation-period");
        assert_eq!(v["deadlines"][0]["met"], day_offset(0).as_str());
    }
}
