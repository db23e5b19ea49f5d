//! Trust over time with real nodes (spec/KEYS.md): rotation while a partner is down.

use std::time::Duration;

use rogatory_tests::{Cluster, example, run_line};

fn json(r: &rogatory_tests::Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).expect("JSON output")
}

#[test]
fn a_rotation_while_the_partner_is_down_loses_nothing_and_needs_no_new_pin() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 2);
    c.start(0);
    let body = example("liaison.json");
    let first = c.send(0, "XB.DOJ-CA", "new", "liaison", &body);
    let case = first["case_id"].as_str().unwrap().to_string();
    for _ in 1..200 {
        c.send(0, "XB.DOJ-CA", &case, "liaison", &body);
    }
    let before = json(&run_line(root, "card show xa.moj-ca --json").ok());

    // Both online keys replaced on the running node, XB down, 200 envelopes queued.
    let r = run_line(root, "keys rotate --data-dir xa.moj-ca").ok();
    assert!(
        r.stdout.contains("The node runs on the new keys"),
        "{}",
        r.stdout
    );
    let after = json(&run_line(root, "card show xa.moj-ca --json").ok());
    assert_eq!(after["fingerprint"], before["fingerprint"]);
    for k in ["signing_key", "encryption_key"] {
        assert_ne!(after[k]["key_id"], before[k]["key_id"], "{k} replaced");
    }

    // XB comes back: it learns XA's new card from XA itself, checked against the root it
    // pinned, and takes all 200 exactly once.
    c.start(1);
    let rows = c.wait_settled(0, 200, Duration::from_secs(180));
    assert_eq!(rows.len(), 200);
    for r in &rows {
        assert_eq!(r["state"], "delivered", "{r}");
        assert_eq!(r["receipt"]["event"], "accepted", "{r}");
    }
    let inbox = c.api(1).get::<serde_json::Value>("/v1/inbox").unwrap();
    assert_eq!(inbox.as_array().unwrap().len(), 200);
    let peers = json(&run_line(root, "peer list --data-dir xb.doj-ca --json").ok());
    let xa = &peers[0];
    assert_eq!(xa["id"], "XA.MOJ-CA");
    assert_eq!(xa["fingerprint"], before["fingerprint"], "no new pin");
    assert_eq!(xa["signing_key"]["key_id"], after["signing_key"]["key_id"]);
    assert_eq!(xa["key_history"]["statements"], 2);

    // New messages both ways: signed with XA's new key, encrypted to it.
    c.send(0, "XB.DOJ-CA", &case, "liaison", &body);
    c.wait_settled(0, 201, Duration::from_secs(60));
    c.send(1, "XA.MOJ-CA", &case, "liaison", &body);
    let back = c.wait_settled(1, 1, Duration::from_secs(60));
    assert_eq!(back[0]["state"], "delivered", "{}", back[0]);

    let alerts = c.api(1).get::<serde_json::Value>("/v1/alerts").unwrap();
    assert_eq!(alerts.as_array().unwrap().len(), 0, "{alerts}");
    c.stop(0);
    c.stop(1);
    for dir in ["xa.moj-ca", "xb.doj-ca"] {
        let r = run_line(root, &format!("audit verify-store --data-dir {dir}")).ok();
        assert!(r.stdout.contains("Store intact"), "{dir}: {}", r.stdout);
    }
}
