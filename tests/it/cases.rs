//! Case tracking across two real nodes: an MLA lifecycle driven from both sides, refusals of
//! what a side may not do, and an extradition whose statutory deadline passes.

use std::path::Path;
use std::time::Duration;

use rogatory_proto::case::Day;
use rogatory_tests::{Cluster, run_line};
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
    step("xb.doj-ca", "executing");
    step("xb.doj-ca", "executed");
    step("xb.doj-ca", "closed");
    b_settled += 3;
    c.wait_settled(1, b_settled, Duration::from_secs(60));
    let r = run_line(
        root,
        &format!("case update {case} withdrawn --data-dir xa.moj-ca"),
    )
    .failed();
    assert!(r.stderr.contains("closed"), "{}", r.stderr);

    let a = json(
        root,
        &format!("case show {case} --data-dir xa.moj-ca --json"),
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
    assert_eq!(a["messages"].as_array().unwrap().len(), 7, "{a}");
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
    c.wait_settled(1, 1, Duration::from_secs(60));
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
    let inbox = c.api(2).get("/v1/inbox").unwrap();
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
    let out = c.api(0).get("/v1/outbox").unwrap();
    let row = out
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["envelope_id"] == e_id.as_str())
        .unwrap();
    assert_eq!(row["emergency"], true);
    c.start(1);
    c.wait_settled(0, 501, Duration::from_secs(180));
    let inbox = c.api(1).get("/v1/inbox").unwrap();
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
