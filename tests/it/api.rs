//! The local API as its clients see it: the OpenAPI document, whose fault each error is (the
//! status, and the command line's exit code), and the audit commands giving the same answers
//! whether the node runs or not.

use std::path::Path;
use std::time::Duration;

use rogatory_node::client::ApiFailure;
use rogatory_tests::{Cluster, TEST_PASSPHRASE, example, rogatory_with, run_line};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn failure(e: &anyhow::Error) -> &ApiFailure {
    e.chain()
        .find_map(|c| c.downcast_ref::<ApiFailure>())
        .unwrap_or_else(|| panic!("not an answer of the node: {e:#}"))
}

#[test]
fn the_checked_in_openapi_document_is_the_one_the_node_serves() {
    let t = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(t.path(), &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    let served: Value = c.api(0).get("/v1/openapi.json").unwrap();
    let text = std::fs::read_to_string(rogatory_tests::spec_dir().join("openapi.json")).unwrap();
    let checked_in: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        served, checked_in,
        "spec/openapi.json is stale: regenerate it with `rogatory openapi > spec/openapi.json`"
    );
    assert_eq!(served["openapi"], "3.1.0");
    // Every route the router has is in the document, and the other way round.
    let paths: Vec<&String> = served["paths"].as_object().unwrap().keys().collect();
    for p in [
        "/v1/status",
        "/v1/send",
        "/v1/cases",
        "/v1/cases/{id}",
        "/v1/audit/{case}/log",
        "/v1/audit/verify-store",
        "/v1/evidence/{case}",
    ] {
        assert!(paths.iter().any(|q| q.as_str() == p), "{p} is missing");
    }
    let printed = rogatory_with(t.path(), &["openapi"], &[]).ok();
    assert_eq!(printed.stdout, text, "`rogatory openapi` prints the file");
}

#[test]
fn a_refused_request_is_the_request_s_fault_422_404_or_409_and_exits_3() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let api = c.api(0);
    // 422: an addressee that is not pinned.
    let e = api
        .post::<Value>(
            "/v1/send",
            &json!({ "to": ["XZ.NOBODY"], "case": "new", "type": "liaison",
                     "body": example("liaison.json") }),
        )
        .unwrap_err();
    assert_eq!(failure(&e).status, 422, "{e:#}");
    // 404: a case this node does not have.
    let e = api
        .get::<Value>("/v1/cases/0192f0e4-4b4a-7c3e-9d1a-4d6a2f1b7c11")
        .unwrap_err();
    assert_eq!(failure(&e).status, 404, "{e:#}");
    // 409: what the case's state does not allow (the requesting side closing a request the
    // requested side has not even registered), and a manifest with nothing staged.
    let r: Value = c.send(
        0,
        "XB.DOJ-CA",
        "new",
        "mla-request",
        &example("mla-request.json"),
    );
    let case = r["case_id"].as_str().unwrap().to_string();
    c.wait_settled(0, 1, WAIT);
    let e = api
        .post::<Value>(
            "/v1/send",
            &json!({ "to": ["XB.DOJ-CA"], "case": case, "type": "mla-status",
                     "body": { "status": "executed", "effective_at": "2026-12-01T10:00:00Z" } }),
        )
        .unwrap_err();
    assert_eq!(failure(&e).status, 409, "{e:#}");
    let e = api
        .post::<Value>(
            &format!("/v1/evidence/{case}/send"),
            &json!({ "to": "XB.DOJ-CA" }),
        )
        .unwrap_err();
    assert_eq!(failure(&e).status, 409, "{e:#}");
    // The command line exits 3 for each, and says why.
    let body = root.join("liaison.json");
    std::fs::write(&body, example("liaison.json").to_string()).unwrap();
    let run = run_line(
        root,
        &format!(
            "send --to XZ.NOBODY --case new --type liaison --body {} --data-dir {}",
            body.display(),
            c.dirs[0].display()
        ),
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("not a pinned partner"),
        "{}",
        run.stderr
    );
    let run = run_line(
        root,
        &format!(
            "case update {case} executed --data-dir {}",
            c.dirs[0].display()
        ),
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    // Nothing of the refusals was queued.
    let out: Vec<Value> = api.get("/v1/outbox").unwrap();
    assert_eq!(out.len(), 1);
    c.stop(0);
    // No node: exit 5.
    let run = run_line(root, &format!("inbox --data-dir {}", c.dirs[0].display()));
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("not running"), "{}", run.stderr);
}

/// A tmpfs of `mib` MiB mounted at `at` for the test's life (this machine's tests run as root).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path, mib: u64) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "cannot mount a tmpfs at {} (the full-disk test needs root)",
            at.display()
        );
        SmallDisk(at.to_path_buf())
    }

    /// Fills what is left of it; returns the filler file.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-l"])
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_is_the_store_s_fault_500_exits_4_and_loses_nothing() {
    let t = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&t.path().join("disk"), 48);
    let root = disk.0.clone();
    let mut c = Cluster::new(&root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let first = c.send(
        0,
        "XB.DOJ-CA",
        "new",
        "mla-request",
        &example("mla-request.json"),
    );
    let case = first["case_id"].as_str().unwrap().to_string();
    c.wait_settled(0, 1, WAIT);
    let liaison = example("liaison.json");
    let body = root.join("liaison.json");
    std::fs::write(&body, liaison.to_string()).unwrap();
    let filler = disk.fill();
    // Sends until a commit needs room the disk no longer has.
    let api = c.api(0);
    let mut accepted = 1;
    let refused = loop {
        match api.post::<Value>(
            "/v1/send",
            &json!({ "to": ["XB.DOJ-CA"], "case": case, "type": "liaison", "body": liaison }),
        ) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 5000, "the disk never filled");
    };
    let f = failure(&refused);
    assert_eq!(f.status, 500, "{refused:#}");
    assert!(
        f.message.contains("the store failed, nothing was recorded"),
        "{}",
        f.message
    );
    // The command line says the same and exits 4.
    let run = rogatory_with(
        &root,
        &[
            "send",
            "--to",
            "XB.DOJ-CA",
            "--case",
            &case,
            "--type",
            "liaison",
            "--body",
            &body.display().to_string(),
            "--data-dir",
            &c.dirs[0].display().to_string(),
        ],
        &[TEST_PASSPHRASE],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("the store failed"), "{}", run.stderr);
    // Room again: the node goes on, and everything acknowledged before is there.
    std::fs::remove_file(&filler).unwrap();
    let after = c.send(0, "XB.DOJ-CA", &case, "liaison", &liaison);
    assert_eq!(after["case_id"], case.as_str());
    let rows = c.wait_settled(0, accepted + 1, WAIT);
    assert_eq!(rows.len(), accepted + 1, "nothing acknowledged was lost");
    c.stop(0);
    c.stop(1);
    for d in &c.dirs {
        run_line(
            &root,
            &format!("audit verify-store --data-dir {}", d.display()),
        )
        .ok();
    }
}

/// What `rogatory audit …` prints.
fn audit(root: &Path, args: &str) -> String {
    run_line(root, &format!("audit {args}")).ok().stdout
}

#[test]
fn audit_commands_print_the_same_whether_the_node_runs_or_not() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let r = c.send(
        0,
        "XB.DOJ-CA",
        "new",
        "mla-request",
        &example("mla-request.json"),
    );
    let case = r["case_id"].as_str().unwrap().to_string();
    c.send(0, "XB.DOJ-CA", &case, "liaison", &example("liaison.json"));
    c.wait_settled(0, 2, WAIT);
    let dir = c.dirs[0].display().to_string();
    let commands = [
        format!("log {case} --data-dir {dir}"),
        format!("log {case} --data-dir {dir} --json"),
        format!("checkpoint {case} --data-dir {dir}"),
        format!("checkpoint {case} --size 2 --data-dir {dir}"),
        format!("prove {case} --index 1 --data-dir {dir}"),
        format!("consistency {case} --from 2 --data-dir {dir}"),
        format!("verify-store --data-dir {dir}"),
        format!("alerts --data-dir {dir}"),
    ];
    // With the node running (these go through its API: the store is its alone).
    let running: Vec<String> = commands.iter().map(|a| audit(root, a)).collect();
    assert!(running[0].contains("envelope-sent"), "{}", running[0]);
    assert!(running[6].contains("Store intact"), "{}", running[6]);
    c.stop(0);
    let stopped: Vec<String> = commands.iter().map(|a| audit(root, a)).collect();
    for ((cmd, a), b) in commands.iter().zip(&running).zip(&stopped) {
        assert_eq!(a, b, "`rogatory audit {cmd}` differs");
    }
    // The proof printed while it ran verifies offline.
    let proof = root.join("proof.txt");
    std::fs::write(&proof, &running[4]).unwrap();
    let vkey = run_line(root, &format!("card show {dir} --json"))
        .ok()
        .stdout;
    let vkey: Value = serde_json::from_str(&vkey).unwrap();
    run_line(
        root,
        &format!(
            "audit verify-proof {} --vkey {}",
            proof.display(),
            vkey["note_verifier_key"].as_str().unwrap()
        ),
    )
    .ok();
}

#[test]
fn a_clerk_gets_the_status_while_64_clients_hold_every_connection() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let t = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(t.path(), &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let dir = c.dirs[0].clone();
    // As many busy clients as the listener holds connections, each keeping its own open.
    let busy = rogatory_node::api::listen::MAX_CONNECTIONS;
    let done = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicUsize::new(0));
    // Each client says so once it has made 20 requests.
    let (going_tx, going) = std::sync::mpsc::channel::<()>();
    let clients: Vec<_> = (0..busy)
        .map(|_| {
            let (dir, done, finished) = (dir.clone(), Arc::clone(&done), Arc::clone(&finished));
            let going = going_tx.clone();
            std::thread::spawn(move || {
                let api = rogatory_node::client::Client::connect(&dir).unwrap();
                let deadline = std::time::Instant::now() + Duration::from_secs(120);
                let mut made = 0;
                while !done.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                    // A connection closed by the node is opened again by the client.
                    api.get::<Value>("/v1/status").unwrap();
                    made += 1;
                    if made == 20 {
                        let _ = going.send(());
                    }
                }
                finished.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    for _ in 0..busy {
        going
            .recv_timeout(Duration::from_secs(60))
            .expect("every client makes 20 requests within a minute");
    }
    // A clerk's `rogatory status`: answered while every client is still busy.
    let status = run_line(t.path(), &format!("status --data-dir {}", dir.display()));
    let still_busy = finished.load(Ordering::Relaxed) == 0;
    done.store(true, Ordering::Relaxed);
    let status = status.ok();
    assert!(
        status.stdout.contains("XA.MOJ-CA is running"),
        "{}",
        status.stdout
    );
    assert!(
        still_busy,
        "the status was answered only once the busy clients had stopped"
    );
    for client in clients {
        client.join().unwrap();
    }
    c.stop(0);
    c.stop(1);
}

/// `GET /metrics` in the Prometheus text format: what the exchange did, per partner.
#[test]
fn metrics_say_what_the_node_did_in_the_prometheus_text_format() {
    let t = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(t.path(), &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    c.send(
        0,
        "XB.DOJ-CA",
        "new",
        "mla-request",
        &rogatory_tests::example("mla-request.json"),
    );
    c.wait_settled(0, 1, std::time::Duration::from_secs(60));
    let text = c.api(0).get_text("/metrics").unwrap();
    for line in [
        "# TYPE rogatory_partner_connections gauge",
        "# TYPE rogatory_partner_settled counter",
        "rogatory_partner_settled_total{partner=\"XB.DOJ-CA\"} 1",
        "rogatory_outbox_envelopes{state=\"settled\"} 1",
        "rogatory_alerts 0",
        "rogatory_envelopes_settled_total{outcome=\"accepted\"} 1",
        "# EOF",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    // The partner's key state, whichever it is at this moment (fresh once it confirmed).
    assert!(
        text.lines().any(|l| {
            l.starts_with("rogatory_partner_key_state{partner=\"XB.DOJ-CA\",state=")
                && l.ends_with("} 1")
        }),
        "{text}"
    );
    let received = c.api(1).get_text("/metrics").unwrap();
    for line in [
        "rogatory_inbox_envelopes 1",
        "rogatory_envelopes_received_total{outcome=\"accepted\"} 1",
    ] {
        assert!(
            received.lines().any(|l| l == line),
            "{line} not in\n{received}"
        );
    }
}

/// `POST /v1/send/batch` refuses or queues each message on its own, in order, and with
/// `?wait=` answers once each queued envelope is settled; `POST /v1/send?wait=` and
/// `rogatory send --wait` do the same for one message, and say when the partner has not
/// answered in time (exit 1).
#[test]
fn a_batch_of_sends_is_refused_or_queued_message_by_message_and_waits_until_settled() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 2);
    c.start(0);
    c.start(1);
    let api = c.api(0);
    let liaison = |to: &str| json!({ "to": [to], "case": "new", "type": "liaison", "body": example("liaison.json") });
    let batch = json!({ "messages": [
        liaison("XB.DOJ-CA"),
        liaison("XZ.NOBODY"),
        { "to": ["XB.DOJ-CA"], "case": "new", "type": "mla-request", "body": example("mla-request.json") },
        { "to": ["XB.DOJ-CA"], "case": "new", "type": "evidence-status", "body": {} },
        { "to": ["XB.DOJ-CA"], "case": "new", "type": "liaison", "body": { "subject": "no body" } },
    ]});
    let r: Value = api.post("/v1/send/batch?wait=60", &batch).unwrap();
    let results = r["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 422, 200, 422, 422], "{r}");
    for i in [0, 2] {
        assert_eq!(results[i]["sent"]["queued"][0]["state"], "delivered", "{r}");
        assert!(results[i]["error"].is_null());
    }
    assert!(
        results[1]["error"]
            .as_str()
            .unwrap()
            .contains("not a pinned partner"),
        "{r}"
    );
    assert_eq!(results[2]["sent"]["type"], "mla-request");
    // Only the two accepted messages went anywhere.
    let inbox: Vec<Value> = c.api(1).get("/v1/inbox").unwrap();
    assert_eq!(inbox.len(), 2);
    let outbox: Vec<Value> = api.get("/v1/outbox").unwrap();
    assert_eq!(outbox.len(), 2);
    // Messages of one case take their places in its chain in the order given.
    let case = results[0]["sent"]["case_id"].as_str().unwrap();
    let in_case = json!({ "to": ["XB.DOJ-CA"], "case": case, "type": "liaison", "body": example("liaison.json") });
    let r: Value = api
        .post(
            "/v1/send/batch?wait=60",
            &json!({ "messages": vec![in_case; 12] }),
        )
        .unwrap();
    let sequences: Vec<u64> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["sent"]["queued"][0]["state"], "delivered", "{r}");
            r["sent"]["queued"][0]["sequence"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(sequences, (2..14).collect::<Vec<u64>>());
    // Without `wait`, the answer comes once queued, and says nothing of delivery.
    let r: Value = api
        .post(
            "/v1/send/batch",
            &json!({ "messages": [liaison("XB.DOJ-CA")] }),
        )
        .unwrap();
    assert!(
        r["results"][0]["sent"]["queued"][0]["state"].is_null(),
        "{r}"
    );
    // An empty batch, and one of more than 64, are refused whole.
    for n in [0, 65] {
        let e = api
            .post::<Value>(
                "/v1/send/batch",
                &json!({ "messages": vec![liaison("XB.DOJ-CA"); n] }),
            )
            .unwrap_err();
        assert_eq!(failure(&e).status, 422, "{e:#}");
    }
    // One message with `wait`, through the API and the command line.
    let r: Value = api.post("/v1/send?wait=60", &liaison("XB.DOJ-CA")).unwrap();
    assert_eq!(r["queued"][0]["state"], "delivered", "{r}");
    let body = root.join("liaison.json");
    std::fs::write(&body, example("liaison.json").to_string()).unwrap();
    let line = format!(
        "send --to XB.DOJ-CA --case new --type liaison --body {} --wait 60 --data-dir {}",
        body.display(),
        c.dirs[0].display()
    );
    let run = run_line(root, &line);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(": delivered"), "{}", run.stdout);
    // The partner stopped: the wait runs out, the envelope stays queued, and the command says so.
    c.stop(1);
    let line = line.replace("--wait 60", "--wait 1");
    let run = run_line(root, &line);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(": queued"), "{}", run.stdout);
    c.start(1);
    c.wait_settled(0, 18, WAIT);
}
