//! Mutual witnessing between two real nodes (spec/PROTOCOL.md §6.6): each cosigns the other's
//! checkpoints in its receipts, and a partner whose log was rolled back is refused, with an
//! alert, an error-level log line and an audit entry.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rogatory_tests::{Cluster, example, run_line};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// Makes `dir` a copy of `from` (the node stopped).
fn restore(from: &Path, dir: &Path) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cp -a");
}

fn alerts(root: &Path, dir: &str) -> (bool, Value) {
    let r = rogatory_tests::run_line(root, &format!("audit alerts --json --data-dir {dir}"));
    (r.code == 0, serde_json::from_str(&r.stdout).unwrap())
}

#[test]
fn partners_cosign_each_others_checkpoints_and_a_rolled_back_log_is_refused_with_an_alert() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let opened = c.send(
        0,
        "XB.DOJ-CA",
        "new",
        "mla-request",
        &example("mla-request.json"),
    );
    let case = opened["case_id"].as_str().unwrap().to_string();
    let first = opened["queued"][0]["envelope_id"].clone();
    c.wait_settled(0, 1, WAIT);
    c.send(1, "XA.MOJ-CA", &case, "liaison", &example("liaison.json"));
    c.wait_settled(1, 1, WAIT);
    // XA's second envelope carries a larger checkpoint: XB accepts it only with the proof that
    // it extends the first.
    c.send(0, "XB.DOJ-CA", &case, "liaison", &example("liaison.json"));
    let rows = c.wait_settled(0, 2, WAIT);
    for (i, row) in [(0usize, &rows), (1, &c.wait_settled(1, 1, WAIT))] {
        let partner = if i == 0 { "XB.DOJ-CA" } else { "XA.MOJ-CA" };
        for r in row.iter() {
            assert_eq!(r["state"], "delivered", "{r}");
            // The message that opened the case came before its log: it carried no checkpoint,
            // so there was nothing to cosign. Every later envelope's checkpoint is cosigned.
            if r["envelope_id"] == first {
                assert!(r["receipt"]["cosignature"].is_null(), "{r}");
                continue;
            }
            let cosig = r["receipt"]["cosignature"].as_str().unwrap_or_default();
            assert!(
                cosig.starts_with(&format!("\u{2014} rogatory.{partner} ")),
                "{r}"
            );
        }
    }
    for dir in ["xa.moj-ca", "xb.doj-ca"] {
        let (clean, list) = alerts(root, dir);
        assert!(
            clean && list.as_array().unwrap().is_empty(),
            "{dir}: {list}"
        );
    }

    // A copy of XA as it is now; then XA goes on: two more envelopes, witnessed by XB.
    c.stop(0);
    let copy = root.join("xa-copy");
    restore(&c.dirs[0], &copy);
    c.start(0);
    for n in 3..=4 {
        c.send(0, "XB.DOJ-CA", &case, "liaison", &example("liaison.json"));
        c.wait_settled(0, n, WAIT);
    }
    // XA is put back to the copy (its log is smaller than what XB witnessed) and sends again.
    c.stop(0);
    restore(&copy, &c.dirs[0]);
    c.start(0);
    let sent = c.send(0, "XB.DOJ-CA", &case, "liaison", &example("liaison.json"));
    let id = sent["queued"][0]["envelope_id"]
        .as_str()
        .unwrap()
        .to_string();
    let row = c
        .api(0)
        .get::<serde_json::Value>(&format!("/v1/outbox/{id}?wait=60"))
        .unwrap();
    assert_eq!(row["state"], "rejected", "{row}");
    assert_eq!(row["receipt"]["reason"], "log-inconsistent", "{row}");
    assert!(
        row["receipt"]["detail"]
            .as_str()
            .unwrap()
            .contains("rolled back"),
        "{row}"
    );
    // XB raised an alert, logged it at error level, and wrote it in the case's audit log.
    let (clean, list) = alerts(root, "xb.doj-ca");
    assert!(!clean);
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["kind"], "rolled-back");
    assert_eq!(list[0]["peer"], "XA.MOJ-CA");
    assert_eq!(list[0]["case_id"], case.as_str());
    assert_eq!(list[0]["envelope_id"], id.as_str());
    let shown = run_line(root, "audit alerts --data-dir xb.doj-ca").failed();
    assert!(shown.stdout.contains("rolled back"), "{}", shown.stdout);
    c.stop(0);
    c.stop(1);
    let log = std::fs::read_to_string(root.join("xb.doj-ca/node.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("ALERT") && l.contains("XA.MOJ-CA")),
        "{log}"
    );
    let entries: Value = serde_json::from_str(
        &run_line(
            root,
            &format!("audit log {case} --json --data-dir xb.doj-ca"),
        )
        .ok()
        .stdout,
    )
    .unwrap();
    let flagged: Vec<&Value> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "peer-log-inconsistent")
        .collect();
    assert_eq!(flagged.len(), 1, "{entries}");
    assert_eq!(flagged[0]["peer"], "XA.MOJ-CA");
    assert_eq!(flagged[0]["envelope_id"], id.as_str());
    // The alert survives a restart (it is in the store), and the store still verifies.
    let (clean, list) = alerts(root, "xb.doj-ca");
    assert!(!clean && list.as_array().unwrap().len() == 1, "{list}");
    run_line(root, "audit verify-store --data-dir xb.doj-ca").ok();
}
