//! Two and three real nodes as separate processes on 127.0.0.1: delivery over libp2p with a
//! verified receipt, replays, and a partner that is not pinned.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use rogatory_tests::{
    TEST_PASSPHRASE, fingerprint, init_three, rogatory_bin, rogatory_with, run_line, spec_dir,
};
use serde_json::Value;

/// A running `rogatory run`, stopped (SIGKILL) when dropped.
struct Node {
    child: Child,
    addr: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seals the example MLA request from `key` to `to` into `out`; returns the run.
fn seal(d: &Path, key: &str, to: &str, out: &str) -> rogatory_tests::Run {
    let body = spec_dir()
        .join("examples/mla-request.json")
        .display()
        .to_string();
    let line = format!(
        "envelope seal --key {key} --to {to} --case new --type mla-request --out {out} --body"
    );
    let mut args: Vec<&str> = line.split_whitespace().collect();
    args.push(&body);
    rogatory_with(d, &args, &[TEST_PASSPHRASE])
}

fn start(d: &Path, dir: &str) -> Node {
    let mut child = Command::new(rogatory_bin())
        .args(["run", "--data-dir", dir, "--listen", "/ip4/127.0.0.1/tcp/0"])
        .current_dir(d)
        .env(TEST_PASSPHRASE.0, TEST_PASSPHRASE.1)
        .env_remove("ROGATORY_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    // Wait for the listening address (the event, not a sleep).
    let addr = loop {
        let line = lines.next().expect("node exited").unwrap();
        if let Some(a) = line.strip_prefix("listening on ") {
            break a.to_string();
        }
    };
    // Keep draining the output so the node never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Node { child, addr }
}

#[test]
fn envelopes_travel_over_libp2p_with_receipts_only_between_pinned_partners() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    init_three(d, "--listen /ip4/127.0.0.1/tcp/0");
    run_line(
        d,
        &format!(
            "peer add xb.card --fingerprint {} --data-dir xa",
            fingerprint(d, "xb.card")
        ),
    )
    .ok();
    run_line(
        d,
        &format!(
            "peer add xa.card --fingerprint {} --data-dir xb",
            fingerprint(d, "xa.card")
        ),
    )
    .ok();
    // XC pins XB, but XB does not pin XC.
    run_line(
        d,
        &format!(
            "peer add xb.card --fingerprint {} --data-dir xc",
            fingerprint(d, "xb.card")
        ),
    )
    .ok();

    // XB takes envelopes up to 16 KiB.
    let cfg = d.join("xb/rogatory.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let limit = format!(
        "max_envelope_bytes = {}",
        rogatory_proto::envelope::DEFAULT_MAX_ENVELOPE_BYTES
    );
    assert!(text.contains(&limit));
    std::fs::write(&cfg, text.replace(&limit, "max_envelope_bytes = 16384")).unwrap();
    let b = start(d, "xb");
    let sealed = seal(d, "xa", "XB.DOJ-CA", "req.cose").ok();
    let case = sealed
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("new case id: "))
        .unwrap()
        .to_string();

    // Delivered, and the receipt verifies (deliver checks it) and is kept beside the envelope.
    let r = run_line(
        d,
        &format!(
            "deliver req.cose --to XB.DOJ-CA --data-dir xa --addr {}",
            b.addr
        ),
    )
    .ok();
    assert!(r.stdout.contains("accepted"), "{}", r.stdout);
    let receipt = std::fs::read(d.join("req.receipt")).unwrap();

    // While the node runs it owns its store: other commands say so clearly.
    let r = run_line(d, "envelope open --key xb req.cose").failed();
    assert!(
        r.stderr.contains("in use by a running node"),
        "{}",
        r.stderr
    );

    // A replay gets the same receipt, byte for byte.
    run_line(
        d,
        &format!(
            "deliver req.cose --to XB.DOJ-CA --data-dir xa --addr {}",
            b.addr
        ),
    )
    .ok();
    assert_eq!(std::fs::read(d.join("req.receipt")).unwrap(), receipt);

    // An agency B has not pinned cannot deliver: its envelope is not taken.
    seal(d, "xc", "XB.DOJ-CA", "c.cose").ok();
    let r = run_line(
        d,
        &format!(
            "deliver c.cose --to XB.DOJ-CA --data-dir xc --addr {}",
            b.addr
        ),
    )
    .failed();
    assert!(
        r.stderr.contains("did not take the delivery"),
        "{}",
        r.stderr
    );
    assert!(!d.join("c.receipt").exists());

    // A wrongly addressed envelope (sealed for XC, delivered to B) gets a signed rejection.
    seal(d, "xa", "xc.card", "wrong.cose").ok();
    let r = run_line(
        d,
        &format!(
            "deliver wrong.cose --to XB.DOJ-CA --data-dir xa --addr {}",
            b.addr
        ),
    )
    .failed();
    assert!(
        r.stdout.contains("rejected by XB.DOJ-CA: not-addressee"),
        "{}",
        r.stdout
    );

    // Tampered on the way (a bit of the outer signature flipped): a signed bad-signature refusal.
    let mut bytes = std::fs::read(d.join("req.cose")).unwrap();
    let n = bytes.len() - 10;
    bytes[n] ^= 0x01;
    std::fs::write(d.join("tampered.cose"), &bytes).unwrap();
    let r = run_line(
        d,
        &format!(
            "deliver tampered.cose --to XB.DOJ-CA --data-dir xa --addr {}",
            b.addr
        ),
    )
    .failed();
    assert!(
        r.stdout.contains("rejected by XB.DOJ-CA: bad-signature"),
        "{}",
        r.stdout
    );

    // Larger than XB's limit: a signed oversized refusal.
    let big = serde_json::json!({
        "subject": "large",
        "body": "x".repeat(20_000),
        "handling": { "codes": ["H0"], "purpose": "test" },
        "priority": "routine",
        "attachments": [],
        "language": "en"
    });
    std::fs::write(d.join("big.json"), big.to_string()).unwrap();
    run_line(
        d,
        "envelope seal --key xa --to XB.DOJ-CA --case new --type liaison --out big.cose --body big.json",
    )
    .ok();
    let r = run_line(
        d,
        &format!(
            "deliver big.cose --to XB.DOJ-CA --data-dir xa --addr {}",
            b.addr
        ),
    )
    .failed();
    assert!(
        r.stdout.contains("rejected by XB.DOJ-CA: oversized"),
        "{}",
        r.stdout
    );
    drop(b);

    // Every refusal is in XB's node log, with its reason code; no case log grew.
    let node_log: Value = serde_json::from_str(
        &run_line(
            d,
            "audit log 00000000-0000-7000-8000-000000000000 --data-dir xb --json",
        )
        .ok()
        .stdout,
    )
    .unwrap();
    let reasons: Vec<u64> = node_log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_u64().unwrap())
        .collect();
    let code = |name: &str| {
        (0u16..1000)
            .find(|c| rogatory_proto::receipt::ReasonCode::from(*c).name() == name)
            .map(u64::from)
            .unwrap()
    };
    assert_eq!(
        reasons,
        [
            code("not-addressee"),
            code("bad-signature"),
            code("oversized")
        ],
        "{node_log}"
    );

    // B logged the accepted envelope (once, despite the replay) in the case's audit log.
    let inspect: Value =
        serde_json::from_str(&run_line(d, "envelope inspect req.cose --json").ok().stdout).unwrap();
    let log: Value = serde_json::from_str(
        &run_line(d, &format!("audit log {case} --data-dir xb --json"))
            .ok()
            .stdout,
    )
    .unwrap();
    let entries = log.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    assert_eq!(entries[0]["event"], "envelope-received");
    assert_eq!(entries[0]["envelope_id"], inspect["envelope_id"]);
    run_line(d, "audit verify-store --data-dir xb").ok();

    // On A's side: the outbox shows each envelope's state, and the case log holds the sending
    // and the verified receipt.
    let outbox: Value =
        serde_json::from_str(&run_line(d, "outbox --data-dir xa --json").ok().stdout).unwrap();
    let state = |id: &Value| {
        outbox
            .as_array()
            .unwrap()
            .iter()
            .find(|e| &e["envelope_id"] == id)
            .map(|e| e["state"].clone())
    };
    assert_eq!(
        state(&inspect["envelope_id"]),
        Some(Value::from("delivered")),
        "{outbox}"
    );
    let wrong: Value = serde_json::from_str(
        &run_line(d, "envelope inspect wrong.cose --json")
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        state(&wrong["envelope_id"]),
        Some(Value::from("queued")),
        "only its addressee's receipt settles an envelope: {outbox}"
    );
    let log: Value = serde_json::from_str(
        &run_line(d, &format!("audit log {case} --data-dir xa --json"))
            .ok()
            .stdout,
    )
    .unwrap();
    let events: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["envelope-sent", "receipt-received"], "{log}");
    run_line(d, "audit verify-store --data-dir xa").ok();
}

#[test]
fn three_envelopes_sealed_offline_in_one_case_are_accepted_with_no_alert() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    init_three(d, "--listen /ip4/127.0.0.1/tcp/0");
    for (dir, card) in [("xa", "xb.card"), ("xb", "xa.card")] {
        run_line(
            d,
            &format!(
                "peer add {card} --fingerprint {} --data-dir {dir}",
                fingerprint(d, card)
            ),
        )
        .ok();
    }
    let b = start(d, "xb");
    // #1 opens the case; #2 and #3 follow it in XA's chain to XB, each sealed offline after
    // the receipt of the one before was recorded (XA's log of the case grew in between).
    let first = seal(d, "xa", "XB.DOJ-CA", "e1.cose").ok();
    let case = first
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("new case id: "))
        .unwrap()
        .to_string();
    let liaison = spec_dir()
        .join("examples/liaison.json")
        .display()
        .to_string();
    for n in 1..=3u64 {
        if n > 1 {
            let previous = std::fs::read(d.join(format!("e{}.cose", n - 1))).unwrap();
            let previous = rogatory_proto::ids::Sha256Digest::of(&previous);
            let line = format!(
                "envelope seal --key xa --to XB.DOJ-CA --case {case} --type liaison \
                 --out e{n}.cose --sequence {n} --previous {previous} --body"
            );
            let mut args: Vec<&str> = line.split_whitespace().collect();
            args.push(&liaison);
            rogatory_with(d, &args, &[TEST_PASSPHRASE]).ok();
            // #2 carries XA's first checkpoint of the case to XB; #3 a later one, with the
            // proof that it extends the one #2 carried.
            let shown = run_line(d, &format!("envelope inspect e{n}.cose --json")).ok();
            let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
            assert!(!shown["checkpoint"].is_null(), "{shown}");
            assert_eq!(
                shown["consistency"].is_null(),
                n == 2,
                "envelope #{n}: {shown}"
            );
        }
        let r = run_line(
            d,
            &format!(
                "deliver e{n}.cose --to XB.DOJ-CA --data-dir xa --addr {}",
                b.addr
            ),
        )
        .ok();
        assert!(r.stdout.contains("accepted"), "envelope #{n}: {}", r.stdout);
    }
    drop(b);
    let alerts = run_line(d, "audit alerts --data-dir xb").ok();
    assert!(
        !alerts.stdout.contains("no-proof") && !alerts.stdout.contains("inconsisten"),
        "{}",
        alerts.stdout
    );
    let received = run_line(d, &format!("audit log {case} --data-dir xb --json")).ok();
    let log: Value = serde_json::from_str(&received.stdout).unwrap();
    let accepted = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "envelope-received")
        .count();
    assert_eq!(accepted, 3);
}
