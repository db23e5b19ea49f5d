//! The daemon end to end: real `rogatory run` processes on 127.0.0.1, the outbox delivered
//! while a partner is down or being killed, and the local API's token.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

use rogatory_tests::{Cluster, Rng, example, run_line};
use serde_json::Value;

/// The `envelope-received` (or other) entries of a case's log on a stopped node, in log order:
/// their envelope ids.
fn logged(root: &Path, dir: &str, case: &str, event: &str) -> Vec<String> {
    let log: Value = serde_json::from_str(
        &run_line(root, &format!("audit log {case} --data-dir {dir} --json"))
            .ok()
            .stdout,
    )
    .unwrap();
    log.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == event)
        .map(|e| e["envelope_id"].as_str().unwrap().to_string())
        .collect()
}

fn envelope_ids(sent: &[Value]) -> Vec<String> {
    sent.iter()
        .map(|r| r["queued"][0]["envelope_id"].as_str().unwrap().to_string())
        .collect()
}

fn assert_once_in_order(got: &[String], want: &[String], what: &str) {
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(
        unique.len(),
        got.len(),
        "{what}: something was logged twice"
    );
    assert_eq!(got, want, "{what}: not exactly once, in order");
}

#[test]
fn a_partner_offline_gets_200_messages_exactly_once_in_order() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA", "XC.POLICE"], 2);
    for i in 0..3 {
        c.start(i);
    }
    c.stop(1);
    let body = example("liaison.json");
    // Two cases, interleaved: each has its own chain.
    let first = c.send(0, "XB.DOJ-CA", "new", "liaison", &body);
    let second = c.send(0, "XB.DOJ-CA", "new", "liaison", &body);
    let cases = [
        first["case_id"].as_str().unwrap().to_string(),
        second["case_id"].as_str().unwrap().to_string(),
    ];
    let mut sent: HashMap<&str, Vec<Value>> = HashMap::new();
    sent.entry(&cases[0]).or_default().push(first.clone());
    sent.entry(&cases[1]).or_default().push(second.clone());
    for n in 2..200 {
        let case = &cases[n % 2];
        let r = c.send(0, "XB.DOJ-CA", case, "liaison", &body);
        sent.entry(case).or_default().push(r);
    }
    // The third agency is served meanwhile.
    let to_c = c.send(0, "XC.POLICE", &cases[0], "liaison", &body);
    let rows = c.wait_settled(0, 1, Duration::from_secs(60));
    let c_id = to_c["queued"][0]["envelope_id"].as_str().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["envelope_id"] == c_id && r["state"] == "delivered"),
        "XC got its message while XB was down"
    );
    let waiting = rows.iter().filter(|r| r["to"] == "XB.DOJ-CA").count();
    assert_eq!(waiting, 200);
    assert!(
        rows.iter()
            .filter(|r| r["to"] == "XB.DOJ-CA")
            .all(|r| r["state"] != "delivered"),
        "nothing is delivered to a stopped node"
    );

    c.start(1);
    let rows = c.wait_settled(0, 201, Duration::from_secs(180));
    for r in rows.iter().filter(|r| r["to"] == "XB.DOJ-CA") {
        assert_eq!(r["state"], "delivered", "{r}");
        // The receipt verified against XB's card before it settled the envelope.
        assert_eq!(r["receipt"]["event"], "accepted", "{r}");
    }
    let inbox = c.api(1).get::<serde_json::Value>("/v1/inbox").unwrap();
    assert_eq!(inbox.as_array().unwrap().len(), 200);
    for i in 0..3 {
        c.stop(i);
    }

    for case in &cases {
        let want = envelope_ids(&sent[case.as_str()]);
        assert_eq!(want.len(), 100);
        assert_once_in_order(
            &logged(root, "xb.doj-ca", case, "envelope-received"),
            &want,
            "XB's log",
        );
        assert_once_in_order(
            &logged(root, "xa.moj-ca", case, "envelope-sent")
                .into_iter()
                .filter(|id| want.contains(id))
                .collect::<Vec<_>>(),
            &want,
            "XA's envelope-sent entries",
        );
        let receipts = logged(root, "xa.moj-ca", case, "receipt-received");
        let mut sorted_got: Vec<&String> = receipts.iter().filter(|id| want.contains(id)).collect();
        sorted_got.sort();
        let mut sorted_want: Vec<&String> = want.iter().collect();
        sorted_want.sort();
        assert_eq!(sorted_got, sorted_want, "one receipt-received per envelope");
    }
    for dir in ["xa.moj-ca", "xb.doj-ca", "xc.police"] {
        run_line(root, &format!("audit verify-store --data-dir {dir}")).ok();
    }
}

#[test]
fn a_partner_killed_at_random_during_1000_messages_loses_and_repeats_nothing() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_path_buf();
    let mut c = Cluster::new(&root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let mut rng = Rng::seeded();

    // The sender: 1,000 messages in four cases through XA's API, while XB is killed.
    let dir_a = c.dirs[0].clone();
    let sender = std::thread::spawn(move || {
        let api = rogatory_node::client::Client::connect(&dir_a).unwrap();
        let body = example("liaison.json");
        let mut cases: Vec<String> = Vec::new();
        let mut sent: HashMap<String, Vec<String>> = HashMap::new();
        for n in 0..1000 {
            let case = if n < 4 {
                "new".to_string()
            } else {
                cases[n % 4].clone()
            };
            let r = api
                .post::<serde_json::Value>(
                    "/v1/send",
                    &serde_json::json!({
                        "to": ["XB.DOJ-CA"], "case": case, "type": "liaison", "body": body
                    }),
                )
                .unwrap();
            let case = r["case_id"].as_str().unwrap().to_string();
            if n < 4 {
                cases.push(case.clone());
            }
            sent.entry(case)
                .or_default()
                .push(r["queued"][0]["envelope_id"].as_str().unwrap().to_string());
        }
        sent
    });
    let mut kills = 0;
    while !sender.is_finished() || kills < 5 {
        std::thread::sleep(Duration::from_millis(200 + rng.below(1200)));
        c.kill(1);
        kills += 1;
        std::thread::sleep(Duration::from_millis(rng.below(500)));
        c.start(1);
        if kills >= 12 {
            break;
        }
    }
    let sent = sender.join().unwrap();
    eprintln!("XB was killed {kills} times");
    let rows = c.wait_settled(0, 1000, Duration::from_secs(300));
    assert_eq!(rows.len(), 1000);
    assert!(
        rows.iter().all(|r| r["state"] == "delivered"),
        "every message delivered and accepted"
    );
    c.stop(0);
    c.stop(1);
    for (case, want) in &sent {
        assert_eq!(want.len(), 250);
        assert_once_in_order(
            &logged(&root, "xb.doj-ca", case, "envelope-received"),
            want,
            "XB's log",
        );
        let receipts = logged(&root, "xa.moj-ca", case, "receipt-received");
        let unique: HashSet<&String> = receipts.iter().collect();
        assert_eq!(receipts.len(), 250, "one receipt-received per envelope");
        assert_eq!(unique.len(), 250);
    }
    // No refusals on XB's side: nothing arrived out of its chain's order or twice as new.
    let node_log = run_line(
        &root,
        "audit log 00000000-0000-7000-8000-000000000000 --data-dir xb.doj-ca --json",
    );
    if node_log.code == 0 {
        let v: Value = serde_json::from_str(&node_log.stdout).unwrap();
        assert!(v.as_array().unwrap().is_empty(), "refusals: {v}");
    }
    for dir in ["xa.moj-ca", "xb.doj-ca"] {
        run_line(&root, &format!("audit verify-store --data-dir {dir}")).ok();
    }
}

/// One HTTP/1.1 request by hand: the status line of the answer.
fn raw_http(addr: &str, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines().next().unwrap_or_default().to_string()
}

#[test]
fn the_api_listens_on_loopback_and_refuses_requests_without_the_token() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 2);
    // `status` says when the node is not running, with a non-zero exit.
    let r = run_line(root, "status --data-dir xa.moj-ca").failed();
    assert!(r.stderr.contains("not running"), "{}", r.stderr);
    c.start(0);
    let addr = std::fs::read_to_string(c.dirs[0].join("api.addr")).unwrap();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(c.dirs[0].join("api-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let token = std::fs::read_to_string(c.dirs[0].join("api-token")).unwrap();
    for (auth, want) in [
        (String::new(), "401"),
        ("Authorization: Bearer wrong\r\n".to_string(), "401"),
        (format!("Authorization: Basic {}\r\n", token.trim()), "401"),
        (format!("Authorization: Bearer {}\r\n", token.trim()), "200"),
    ] {
        for path in [
            "/v1/status",
            "/v1/inbox",
            "/v1/outbox",
            "/v1/messages/00000000",
        ] {
            let line = raw_http(
                &addr,
                &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"),
            );
            let want = if want == "200" && path.starts_with("/v1/messages") {
                "404"
            } else {
                want
            };
            assert!(line.contains(want), "{path} with {auth:?}: {line}");
        }
    }
    let line = raw_http(
        &addr,
        "POST /v1/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    assert!(line.contains("401"), "{line}");
    // Nothing was sent, nothing logged.
    assert!(
        c.api(0)
            .get::<serde_json::Value>("/v1/outbox")
            .unwrap()
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The CLI holds the token: status, send to an unpinned agency (refused), inbox.
    let r = run_line(root, "status --data-dir xa.moj-ca --json").ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["running"], true);
    assert_eq!(v["agency"], "XA.MOJ-CA");
    let body = rogatory_tests::spec_dir().join("examples/liaison.json");
    let r = run_line(
        root,
        &format!(
            "send --to XZ.UNKNOWN --case new --type liaison --body {} --data-dir xa.moj-ca",
            body.display()
        ),
    )
    .failed();
    assert!(r.stderr.contains("not a pinned partner"), "{}", r.stderr);
    let r = run_line(
        root,
        &format!(
            "send --to XB.DOJ-CA --case new --type mla-request --body {} --data-dir xa.moj-ca",
            body.display()
        ),
    )
    .failed();
    assert!(r.stderr.contains("cannot be sent"), "{}", r.stderr);
    c.stop(0);
    assert!(
        !c.dirs[0].join("api.addr").exists(),
        "api.addr is removed on a clean stop"
    );
}

#[test]
fn message_show_logs_who_read_the_content() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 2);
    c.start(0);
    c.start(1);
    let body = rogatory_tests::spec_dir().join("examples/mla-request.json");
    let r = run_line(
        root,
        &format!(
            "send --to XB.DOJ-CA --case new --type mla-request --body {} --data-dir xa.moj-ca --json",
            body.display()
        ),
    )
    .ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let id = v["queued"][0]["envelope_id"].as_str().unwrap().to_string();
    let case = v["case_id"].as_str().unwrap().to_string();
    c.wait_settled(0, 1, Duration::from_secs(60));

    let r = rogatory_tests::rogatory_with(
        root,
        &[
            "message",
            "show",
            &id[..12],
            "--data-dir",
            "xb.doj-ca",
            "--json",
        ],
        &[("ROGATORY_USER", "clerk-7")],
    )
    .ok();
    let m: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(m["direction"], "received");
    assert_eq!(m["from"], "XA.MOJ-CA");
    assert_eq!(m["type"], "mla-request");
    assert_eq!(m["receipt"]["event"], "accepted");
    assert_eq!(m["accessed_by"], "clerk-7");
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&body).unwrap()).unwrap();
    assert_eq!(
        m["content"]["summary_of_facts"],
        original["summary_of_facts"]
    );
    // The sender's view: state and receipt, no content.
    let r = run_line(
        root,
        &format!("message show {id} --data-dir xa.moj-ca --json"),
    )
    .ok();
    let s: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(s["direction"], "sent");
    assert_eq!(s["state"], "delivered");
    assert!(s.get("content").is_none());
    c.stop(1);
    c.stop(0);
    let log: Value = serde_json::from_str(
        &run_line(
            root,
            &format!("audit log {case} --data-dir xb.doj-ca --json"),
        )
        .ok()
        .stdout,
    )
    .unwrap();
    let accessed: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "content-accessed")
        .collect();
    assert_eq!(accessed.len(), 1, "{log}");
    assert_eq!(accessed[0]["actor"]["user"], "clerk-7");
    assert_eq!(accessed[0]["envelope_id"].as_str().unwrap(), id);
}

#[test]
fn nodes_reach_each_other_over_quic() {
    let t = tempfile::tempdir().unwrap();
    let mut c = Cluster::with_transport(t.path(), &["XA.MOJ-CA", "XB.DOJ-CA"], 1, "quic");
    c.start(0);
    c.start(1);
    let r = c.send(0, "XB.DOJ-CA", "new", "liaison", &example("liaison.json"));
    let rows = c.wait_settled(0, 1, Duration::from_secs(60));
    assert_eq!(rows[0]["state"], "delivered");
    assert_eq!(rows[0]["envelope_id"], r["queued"][0]["envelope_id"]);
    let s = c.api(0).get::<serde_json::Value>("/v1/status").unwrap();
    assert!(
        s["listening"][0].as_str().unwrap().ends_with("/quic-v1"),
        "{s}"
    );
}

/// With a store worker whose queue holds 4 jobs and 32 clerks sending at once, receipts often
/// find the queue full: each waits in the event loop and is recorded once; none is dropped, so
/// no envelope is sent to the partner a second time (the partner would answer a replay).
#[test]
fn a_receipt_that_finds_the_store_busy_waits_and_nothing_is_sent_twice() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_path_buf();
    let mut c = Cluster::new(&root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    let cfg = c.dirs[0].join("rogatory.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("store_queue = 1024"));
    std::fs::write(&cfg, text.replace("store_queue = 1024", "store_queue = 4")).unwrap();
    c.start(0);
    c.start(1);
    let first = c.send(0, "XB.DOJ-CA", "new", "liaison", &example("liaison.json"));
    let case = first["case_id"].as_str().unwrap().to_string();
    let total = 600;
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(1));
    let clerks: Vec<_> = (0..32)
        .map(|_| {
            let (dir, case, next) = (c.dirs[0].clone(), case.clone(), next.clone());
            std::thread::spawn(move || {
                let api = rogatory_node::client::Client::connect(&dir).unwrap();
                let body = example("liaison.json");
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                    api.post::<serde_json::Value>(
                        "/v1/send",
                        &serde_json::json!({
                            "to": ["XB.DOJ-CA"], "case": case, "type": "liaison", "body": body
                        }),
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for clerk in clerks {
        clerk.join().unwrap();
    }
    let rows = c.wait_settled(0, total, Duration::from_secs(180));
    assert!(rows.iter().all(|r| r["state"] == "delivered"));
    let status: serde_json::Value = c.api(0).get("/v1/status").unwrap();
    let waited = status["receipts_waited"].as_u64().unwrap();
    eprintln!("{waited} of {total} receipts waited for room in the store worker's queue");
    assert!(
        waited > 0,
        "the store was never busy: the test proves nothing"
    );
    c.stop(0);
    c.stop(1);
    let b_log = std::fs::read_to_string(c.dirs[1].join("node.log")).unwrap();
    assert_eq!(
        b_log.matches("a replay").count(),
        0,
        "an envelope was sent to the partner again"
    );
    let receipts = logged(&root, "xa.moj-ca", &case, "receipt-received");
    assert_eq!(receipts.len(), total, "one receipt-received per envelope");
    assert_eq!(receipts.iter().collect::<HashSet<_>>().len(), total);
}

#[test]
fn envelopes_opened_by_the_worker_itself_or_by_one_thread_arrive_once_in_order() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_path_buf();
    let mut c = Cluster::new(&root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    // XA opens partners' envelopes on one thread; XB's store worker opens them itself.
    for (dir, threads) in [(&c.dirs[0], 1), (&c.dirs[1], 0)] {
        let cfg = dir.join("rogatory.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert!(text.contains("[limits]\n"));
        let text = text.replacen(
            "[limits]\n",
            &format!("[limits]\nopen_threads = {threads}\n"),
            1,
        );
        std::fs::write(&cfg, text).unwrap();
    }
    c.start(0);
    c.start(1);
    let body = example("liaison.json");
    let first = c.send(0, "XB.DOJ-CA", "new", "liaison", &body);
    let case = first["case_id"].as_str().unwrap().to_string();
    c.wait_settled(0, 1, WAIT);
    let (mut to_b, mut to_a) = (vec![first], Vec::new());
    for _ in 0..40 {
        to_b.push(c.send(0, "XB.DOJ-CA", &case, "liaison", &body));
        to_a.push(c.send(1, "XA.MOJ-CA", &case, "liaison", &body));
    }
    c.wait_settled(0, to_b.len(), WAIT);
    c.wait_settled(1, to_a.len(), WAIT);
    c.stop(0);
    c.stop(1);
    assert_once_in_order(
        &logged(&root, "xb.doj-ca", &case, "envelope-received"),
        &envelope_ids(&to_b),
        "XB (opening in its worker)",
    );
    assert_once_in_order(
        &logged(&root, "xa.moj-ca", &case, "envelope-received"),
        &envelope_ids(&to_a),
        "XA (opening on one thread)",
    );
}
