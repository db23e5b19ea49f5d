//! Backups and restores of real nodes (spec/BACKUP.md): a backup of a running node taken while
//! 500 messages flow restores to a directory whose store verifies; what the node did after the
//! backup is not in it, and the node does not run from it until an operator resumes it; a
//! backup cut short or altered is refused and leaves nothing behind.

use std::time::Duration;

use rogatory_tests::{Cluster, example, run_line};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(180);

/// `envelope-sent` entries in `case`'s log of the store in `dir` (node running or not).
fn sent_entries(root: &std::path::Path, dir: &str, case: &str) -> usize {
    let log: Value = serde_json::from_str(
        &run_line(root, &format!("audit log {case} --json --data-dir {dir}"))
            .ok()
            .stdout,
    )
    .unwrap();
    log.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "envelope-sent")
        .count()
}

#[test]
fn a_backup_taken_while_500_messages_flow_restores_to_a_node_that_verifies() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let case = c.first_request();

    // 500 messages, sent from another thread while the backup is taken.
    let xa = c.dirs[0].clone();
    let flow_case = case.clone();
    let flow = std::thread::spawn(move || {
        let api = rogatory_node::client::Client::connect(&xa).unwrap();
        for _ in 0..500 {
            let _: Value = api
                .post(
                    "/v1/send",
                    &json!({ "to": ["XB.DOJ-CA"], "case": flow_case, "type": "liaison",
                             "body": example("liaison.json") }),
                )
                .unwrap();
        }
    });
    rogatory_tests::eventually(WAIT, "a hundred messages delivered", || {
        let rows: Value = c.api(1).get("/v1/inbox").unwrap();
        rows.as_array().unwrap().len() > 100
    });
    let file = root.join("xa.backup");
    let r = run_line(
        root,
        &format!(
            "backup --out {} --json --data-dir xa.moj-ca",
            file.display()
        ),
    )
    .ok();
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(report["files"].as_u64().unwrap() >= 5, "{report}");
    assert!(report["store_bytes"].as_u64().unwrap() > 0, "{report}");
    let inbox_at_backup = {
        let rows: Value = c.api(1).get("/v1/inbox").unwrap();
        rows.as_array().unwrap().len()
    };
    println!("backup taken with {inbox_at_backup} of 501 messages delivered: {report}");
    flow.join().unwrap();
    c.wait_settled(0, 501, WAIT);
    // After the backup, certainly: ten more.
    for _ in 0..10 {
        c.send(0, "XB.DOJ-CA", &case, "liaison", &example("liaison.json"));
    }
    c.wait_settled(0, 511, WAIT);

    // Not twice to one file; not into the data directory.
    let again = run_line(
        root,
        &format!("backup --out {} --data-dir xa.moj-ca", file.display()),
    )
    .failed();
    assert!(again.stderr.contains("exists"), "{}", again.stderr);
    let inside = run_line(
        root,
        &format!(
            "backup --out {} --data-dir xa.moj-ca",
            c.dirs[0].join("b.tar").display()
        ),
    )
    .failed();
    assert!(
        inside.stderr.contains("inside the data directory"),
        "{}",
        inside.stderr
    );

    // Restored: every file checked, the store verifies; what came after the backup is not there.
    let r = run_line(
        root,
        &format!("restore {} --data-dir restored", file.display()),
    )
    .ok();
    assert!(r.stdout.contains("Store intact"), "{}", r.stdout);
    assert!(r.stdout.contains("does not run from"), "{}", r.stdout);
    let (live, restored) = (
        sent_entries(root, "xa.moj-ca", &case),
        sent_entries(root, "restored", &case),
    );
    assert_eq!(live, 511);
    assert!(
        restored >= 1 && restored < live,
        "the backup holds {restored} of {live} envelopes sent"
    );
    println!("restored: {restored} envelopes sent as of the backup; {live} in the live node");

    // The node does not run from it until an operator resumes it.
    let refused = run_line(root, "run --data-dir restored").failed();
    assert!(
        refused.stderr.contains("spec/BACKUP.md §3") && refused.stderr.contains("restore --resume"),
        "{}",
        refused.stderr
    );
    run_line(root, "restore --resume --data-dir restored").ok();
    assert!(!root.join("restored/restored.json").exists());

    // Into an empty directory that exists already (a mount point, say): restored in place.
    std::fs::create_dir(root.join("empty")).unwrap();
    let r = run_line(
        root,
        &format!("restore {} --data-dir empty", file.display()),
    )
    .ok();
    assert!(r.stdout.contains("Store intact"), "{}", r.stdout);
    // Held: nothing writes to its store, reading it works.
    let r = run_line(root, "deliver --help").ok();
    assert!(r.stdout.contains("Usage"));
    sent_entries(root, "empty", &case);

    // Into a directory that holds something: refused.
    let full = run_line(
        root,
        &format!("restore {} --data-dir restored", file.display()),
    )
    .failed();
    assert!(full.stderr.contains("not empty"), "{}", full.stderr);

    // Cut short, or one byte changed: refused, and nothing is left.
    let bytes = std::fs::read(&file).unwrap();
    let short = root.join("short.backup");
    std::fs::write(&short, &bytes[..bytes.len() / 2]).unwrap();
    let r = run_line(
        root,
        &format!("restore {} --data-dir from-short", short.display()),
    )
    .failed();
    assert!(
        r.stderr.contains("cut short") || r.stderr.contains("damaged"),
        "{}",
        r.stderr
    );
    assert!(!root.join("from-short").exists());
    let left: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("restoring"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let mut altered = bytes.clone();
    // Inside the first member's content (the store), past its 512-byte header.
    altered[4096] ^= 0x01;
    let altered_file = root.join("altered.backup");
    std::fs::write(&altered_file, &altered).unwrap();
    let r = run_line(
        root,
        &format!("restore {} --data-dir from-altered", altered_file.display()),
    )
    .failed();
    assert!(
        r.stderr.contains("not what the manifest says"),
        "{}",
        r.stderr
    );
    assert!(!root.join("from-altered").exists());

    // A stopped node is backed up from its store directly.
    c.stop(1);
    let xb = root.join("xb.backup");
    run_line(
        root,
        &format!("backup --out {} --data-dir xb.doj-ca", xb.display()),
    )
    .ok();
    let r = run_line(
        root,
        &format!("restore {} --data-dir xb-restored", xb.display()),
    )
    .ok();
    assert!(r.stdout.contains("Store intact"), "{}", r.stdout);
}
