//! Trust over time with real nodes (spec/KEYS.md): rotation while a partner is down.

use std::time::Duration;

use rogatory_tests::{Cluster, eventually, example, run_line};

fn json(r: &rogatory_tests::Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).expect("JSON output")
}

/// A copy of a stopped node's data directory (keys, store, history) at `root/name`, listening
/// on a port of its own.
fn copy_node(root: &std::path::Path, from: &str, name: &str) -> std::path::PathBuf {
    let to = root.join(name);
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(root.join(from))
        .arg(&to)
        .status()
        .unwrap();
    assert!(copied.success());
    let cfg = to.join("rogatory.toml");
    let port = rogatory_tests::free_port();
    let text: Vec<String> = std::fs::read_to_string(&cfg)
        .unwrap()
        .lines()
        .map(|l| match l.starts_with("listen = ") {
            true => format!("listen = [\"/ip4/127.0.0.1/tcp/{port}\"]"),
            false => l.to_string(),
        })
        .collect();
    std::fs::write(&cfg, text.join("\n")).unwrap();
    to
}

/// Starts the node of `dir` (outside the cluster), with the test passphrase.
pub(crate) fn start_node(dir: &std::path::Path) -> rogatory_node::cli::supervise::NodeProcess {
    use rogatory_node::cli::supervise::{Launch, NodeProcess, Passphrase};
    let mut launch = Launch::new(
        rogatory_tests::rogatory_bin(),
        dir,
        Passphrase::Env(rogatory_tests::TEST_PASSPHRASE.1.into()),
    );
    launch.env.push(("ROGATORY_LOG".into(), "info".into()));
    NodeProcess::start(&launch).expect("the node starts")
}

/// Every store of `dirs` under `root` verifies.
fn stores_intact(root: &std::path::Path, dirs: &[&str]) {
    for dir in dirs {
        let r = run_line(root, &format!("audit verify-store --data-dir {dir}")).ok();
        assert!(r.stdout.contains("Store intact"), "{dir}: {}", r.stdout);
    }
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
    stores_intact(root, &["xa.moj-ca", "xb.doj-ca"]);
}

#[test]
fn a_revoked_key_gets_nothing_accepted_and_cannot_forge_a_rotation() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA", "XC.POLICE"], 2);
    for i in 0..3 {
        c.start(i);
    }
    let body = example("liaison.json");
    let first = c.send(0, "XB.DOJ-CA", "new", "liaison", &body);
    let case = first["case_id"].as_str().unwrap().to_string();
    let before = first["queued"][0]["envelope_id"]
        .as_str()
        .unwrap()
        .to_string();
    c.send(0, "XC.POLICE", &case, "liaison", &body);
    c.wait_settled(0, 2, Duration::from_secs(60));

    // The root goes off the node's machine; then someone copies the data directory (keys,
    // store, history) while the node is stopped for maintenance.
    run_line(root, "keys root export --out root.key --data-dir xa.moj-ca").ok();
    c.stop(0);
    let attacker = copy_node(root, "xa.moj-ca", "attacker");

    // The agency revokes its signing key as compromised (and gets a new one), with the root.
    c.start(0);
    let r = run_line(
        root,
        "keys revoke signing --reason compromised --root-key root.key --data-dir xa.moj-ca",
    )
    .ok();
    assert!(
        r.stdout.contains("The node runs on the new keys"),
        "{}",
        r.stdout
    );
    // Both partners hear of it: they accept what XA signs with its new key.
    c.send(0, "XB.DOJ-CA", &case, "liaison", &body);
    c.send(0, "XC.POLICE", &case, "liaison", &body);
    let rows = c.wait_settled(0, 4, Duration::from_secs(60));
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:?}");

    // The copy runs with the revoked key and tries to send to both partners.
    let mut thief = start_node(&attacker);
    let api = rogatory_node::client::Client::connect(&attacker)
        .unwrap()
        .as_user("intruder");
    for to in ["XB.DOJ-CA", "XC.POLICE"] {
        let _: serde_json::Value = api
            .post(
                "/v1/send",
                &serde_json::json!({ "to": [to], "case": case, "type": "liaison", "body": body }),
            )
            .unwrap();
    }
    // Each partner refuses the connection, logs it and raises one alert.
    for i in [1, 2] {
        let alerts = c
            .api(i)
            .get::<serde_json::Value>("/v1/alerts?count=1&wait=60")
            .unwrap();
        let alerts = alerts.as_array().unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["kind"], "old-key-in-use", "{alerts:?}");
        assert_eq!(alerts[0]["peer"], "XA.MOJ-CA");
    }
    // Nothing of the copy's was taken: the partners hold XA's two messages each.
    for i in [1, 2] {
        let inbox = c.api(i).get::<serde_json::Value>("/v1/inbox").unwrap();
        assert_eq!(inbox.as_array().unwrap().len(), 2, "{inbox}");
    }
    let out = api.get::<serde_json::Value>("/v1/outbox").unwrap();
    let theirs: Vec<_> = out
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] != "delivered")
        .collect();
    assert_eq!(
        theirs.len(),
        2,
        "the copy's two messages wait, undelivered: {out}"
    );
    drop(thief.stop());

    // Nor can the copy make itself a new key: the root is not there, and a statement
    // without it does not extend the history.
    let r = run_line(root, "keys rotate --data-dir attacker").failed();
    assert!(
        r.stderr.contains("root key is not on this machine"),
        "{}",
        r.stderr
    );
    run_line(
        root,
        "keys rotate --prepare forged.keys --data-dir attacker",
    )
    .ok();
    let r = run_line(root, "keys rotate --apply forged.keys --data-dir attacker").failed();
    assert!(r.stderr.contains("root threshold"), "{}", r.stderr);

    // What XB accepted before the revocation still opens and verifies.
    let m = c
        .api(1)
        .get::<serde_json::Value>(&format!("/v1/messages/{before}"))
        .unwrap();
    assert_eq!(m["from"], "XA.MOJ-CA", "{m}");
    for i in 0..3 {
        c.stop(i);
    }
    stores_intact(root, &["xa.moj-ca", "xb.doj-ca", "xc.police"]);
}

#[test]
fn two_key_histories_for_one_agency_raise_an_alert_and_the_second_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 2);
    c.start(0);
    c.start(1);
    let body = example("liaison.json");
    let first = c.send(0, "XB.DOJ-CA", "new", "liaison", &body);
    let case = first["case_id"].as_str().unwrap().to_string();
    c.wait_settled(0, 1, Duration::from_secs(60));

    // A twin of XA's directory, root key included (the root signing two different things is
    // what a split history is: a mistake, or a root in two hands).
    c.stop(0);
    let twin = copy_node(root, "xa.moj-ca", "twin");

    // XA rotates; XB learns it.
    c.start(0);
    run_line(root, "keys rotate --data-dir xa.moj-ca").ok();
    c.send(0, "XB.DOJ-CA", &case, "liaison", &body);
    c.wait_settled(0, 2, Duration::from_secs(60));
    let held = json(&run_line(root, "peer list --data-dir xb.doj-ca --json").ok());
    let xa_key = held[0]["signing_key"]["key_id"].clone();

    // The twin rotates too: another statement 1 under the same root.
    run_line(root, "keys rotate --data-dir twin").ok();
    let mut other = start_node(&twin);

    let alerts = c
        .api(1)
        .get::<serde_json::Value>("/v1/alerts?count=1&wait=60")
        .unwrap();
    let alerts = alerts.as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["kind"], "key-history-forked", "{alerts:?}");
    assert!(
        alerts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("statement 1"),
        "{alerts:?}"
    );
    drop(other.stop());
    // XB kept the history it had, and XA is still served.
    let now = json(&run_line(root, "peer list --data-dir xb.doj-ca --json").ok());
    assert_eq!(now[0]["signing_key"]["key_id"], xa_key);
    c.send(0, "XB.DOJ-CA", &case, "liaison", &body);
    let rows = c.wait_settled(0, 3, Duration::from_secs(60));
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:?}");
}

/// Runs the stand-alone verifier; returns its exit code and output.
fn verify(root: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(rogatory_tests::verify_bin())
        .current_dir(root)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn bundles_before_and_after_three_rotations_verify_with_the_root_fingerprint_alone() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 2);
    c.start(0);
    c.start(1);
    let body = example("liaison.json");
    let first = c.send(0, "XB.DOJ-CA", "new", "liaison", &body);
    let case = first["case_id"].as_str().unwrap().to_string();
    c.wait_settled(0, 1, Duration::from_secs(60));
    let fp = json(&run_line(root, "card show xa.moj-ca --json").ok())["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    run_line(
        root,
        &format!("case export {case} --out before.bundle --data-dir xa.moj-ca"),
    )
    .ok();

    // Three rotations, each followed by messages both ways signed with the new keys.
    for n in 1..=3 {
        run_line(root, "keys rotate --data-dir xa.moj-ca").ok();
        c.send(0, "XB.DOJ-CA", &case, "liaison", &body);
        c.wait_settled(0, 1 + n, Duration::from_secs(60));
        c.send(1, "XA.MOJ-CA", &case, "liaison", &body);
        c.wait_settled(1, n, Duration::from_secs(60));
    }
    run_line(
        root,
        &format!("case export {case} --out after.bundle --data-dir xa.moj-ca"),
    )
    .ok();
    run_line(
        root,
        &format!("case export {case} --out xb.bundle --data-dir xb.doj-ca"),
    )
    .ok();
    let pin = format!("XA.MOJ-CA={fp}");
    for files in [
        vec!["before.bundle"],
        vec!["after.bundle"],
        vec!["after.bundle", "xb.bundle"],
    ] {
        let mut args: Vec<&str> = files.clone();
        args.extend(["--root", &pin]);
        let (code, out) = verify(root, &args);
        assert_eq!(code, 0, "{files:?}: {out}");
    }
    // The history in the bundle names four signing keys of XA, all from the pinned root.
    let (_, out) = verify(root, &["after.bundle", "--root", &pin, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["bundles"][0]["cards"][0][1], fp.as_str(), "{v}");
    // Another root: refused.
    let other = json(&run_line(root, "card show xb.doj-ca --json").ok())["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, out) = verify(
        root,
        &["after.bundle", "--root", &format!("XA.MOJ-CA={other}")],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("root fingerprint"), "{out}");
}

/// Waits until node `i`'s status says `want` of partner `agency`'s key history (the node answers
/// when it changes to that, or after 60 s).
fn wait_key_state(c: &Cluster, i: usize, agency: &str, want: &str) -> serde_json::Value {
    let st = c
        .api(i)
        .get::<serde_json::Value>(&format!(
            "/v1/status?peer={agency}&key_state={want}&wait=60"
        ))
        .unwrap();
    let p = st["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["agency"] == agency)
        .cloned()
        .unwrap();
    assert_eq!(p["key_state"], want, "{agency} never became {want}: {p}");
    p
}

#[test]
fn a_partner_whose_key_history_is_stale_is_flagged_then_held_then_served_again() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    for (dir, max, hold) in [("xa.moj-ca", 2, 4), ("xb.doj-ca", 604800, 2592000)] {
        let cfg = root.join(dir).join("rogatory.toml");
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace(
                "max_key_age_secs = 604800",
                &format!("max_key_age_secs = {max}"),
            )
            .replace(
                "hold_after_secs = 2592000",
                &format!("hold_after_secs = {hold}"),
            )
            .replace("refresh_secs = 21600", "refresh_secs = 1");
        std::fs::write(&cfg, text).unwrap();
    }
    c.start(0);
    c.start(1);
    let body = example("liaison.json");
    let first = c.send(0, "XB.DOJ-CA", "new", "liaison", &body);
    let case = first["case_id"].as_str().unwrap().to_string();
    c.wait_settled(0, 1, Duration::from_secs(60));
    wait_key_state(&c, 0, "XB.DOJ-CA", "fresh");
    let peers = json(&run_line(root, "peer list --data-dir xa.moj-ca --json").ok());
    assert!(peers[0]["key_history_confirmed_at"].is_string(), "{peers}");

    // XB goes quiet: flagged, then held; a message to it waits, and says why.
    c.stop(1);
    wait_key_state(&c, 0, "XB.DOJ-CA", "stale");
    let held = wait_key_state(&c, 0, "XB.DOJ-CA", "held");
    assert!(held["key_age_secs"].as_u64().unwrap() > 4, "{held}");
    let waiting = c.send(0, "XB.DOJ-CA", &case, "liaison", &body);
    let id = waiting["queued"][0]["envelope_id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = wait_key_state(&c, 0, "XB.DOJ-CA", "held");
    assert!(
        p["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("held"),
        "{p}"
    );
    let r = run_line(root, "status --data-dir xa.moj-ca").ok();
    assert!(r.stdout.contains("key history held"), "{}", r.stdout);
    let rows = c.api(0).get::<serde_json::Value>("/v1/outbox").unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["envelope_id"] == id.as_str())
        .unwrap();
    assert_ne!(row["state"], "delivered", "{row}");

    // XB comes back and confirms its key history: served again, the message delivered.
    c.start(1);
    let rows = c.wait_settled(0, 2, Duration::from_secs(60));
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:?}");
    wait_key_state(&c, 0, "XB.DOJ-CA", "fresh");
}

#[test]
fn the_directory_lists_every_agency_known_with_its_root_and_keys() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    rogatory_tests::init_three(d, "");
    for card in ["xb.card", "xc.card"] {
        run_line(
            d,
            &format!(
                "peer add {card} --fingerprint {} --data-dir xa",
                rogatory_tests::fingerprint(d, card)
            ),
        )
        .ok();
    }
    let all = json(&run_line(d, "directory list --data-dir xa --json").ok());
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["id"], "XA.MOJ-CA");
    assert_eq!(all[0]["this_node"], true);
    for (v, card) in all[1..].iter().zip(["xb.card", "xc.card"]) {
        assert_eq!(v["fingerprint"], rogatory_tests::fingerprint(d, card));
        assert_eq!(v["this_node"], false);
        assert!(v["key_history_confirmed_at"].is_null(), "{v}");
        assert_eq!(v["keys"].as_array().unwrap().len(), 2);
    }
    let shown = run_line(d, "directory show XB.DOJ-CA --data-dir xa").ok();
    assert!(
        shown.stdout.contains("Key history of XB.DOJ-CA"),
        "{}",
        shown.stdout
    );
    let r = run_line(d, "directory show XZ.NOBODY --data-dir xa").failed();
    assert!(r.stderr.contains("not in the directory"), "{}", r.stderr);
    run_line(d, "directory export --out dir.json --data-dir xa").ok();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("dir.json")).unwrap()).unwrap();
    assert_eq!(doc["agencies"].as_array().unwrap().len(), 3);
    let text = std::fs::read_to_string(d.join("dir.json")).unwrap();
    assert!(!text.contains("\"d\""), "nothing secret");
}

/// A new agency set up outside the cluster, listening on a port of its own, with its card
/// exported to `root/<dir>.card`.
fn new_agency(root: &std::path::Path, id: &str, dir: &str) {
    run_line(
        root,
        &format!(
            "init --agency {id} --name {dir} --data-dir {dir} --listen /ip4/127.0.0.1/tcp/{}",
            rogatory_tests::free_port()
        ),
    )
    .ok();
    run_line(
        root,
        &format!("card export --data-dir {dir} --out {dir}.card"),
    )
    .ok();
}

#[test]
fn an_agency_introduced_by_enough_partners_is_pinned_without_a_fingerprint() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA", "XD.POLICE"], 1);
    // XD takes introductions from XA and XB, both needed.
    let cfg = root.join("xd.police").join("rogatory.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            "introducers = []",
            "introducers = [\"XA.MOJ-CA\", \"XB.DOJ-CA\"]",
        )
        .replace("introductions_needed = 0", "introductions_needed = 2");
    std::fs::write(&cfg, text).unwrap();
    for i in 0..3 {
        c.start(i);
    }
    // Two new agencies: XC is introduced by XA and XB, XE by XA alone. XA and XB pinned each
    // of them by fingerprint (their own telephone calls); XD types no fingerprint.
    let body = example("liaison.json");
    let mut nodes = Vec::new();
    for (id, dir, by) in [
        ("XC.NEW-CA", "xc", vec!["xa.moj-ca", "xb.doj-ca"]),
        ("XE.NEW-CA", "xe", vec!["xa.moj-ca"]),
    ] {
        new_agency(root, id, dir);
        for introducer in &by {
            let card = format!("{dir}.card");
            run_line(
                root,
                &format!(
                    "peer add {card} --fingerprint {} --data-dir {introducer}",
                    rogatory_tests::fingerprint(root, &card)
                ),
            )
            .ok();
            let file = format!("{introducer}-{dir}.intro");
            run_line(
                root,
                &format!("directory introduce {id} --out {file} --data-dir {introducer}"),
            )
            .ok();
            run_line(
                root,
                &format!("directory add-introduction {file} --data-dir {dir}"),
            )
            .ok();
        }
        // The newcomer pins XD on its own side, and writes to it.
        run_line(
            root,
            &format!(
                "peer add xd.police.card --fingerprint {} --data-dir {dir}",
                rogatory_tests::fingerprint(root, "xd.police.card")
            ),
        )
        .ok();
        nodes.push(start_node(&root.join(dir)));
        let api = rogatory_node::client::Client::connect(&root.join(dir))
            .unwrap()
            .as_user("newcomer");
        let _: serde_json::Value = api
            .post(
                "/v1/send",
                &serde_json::json!({ "to": ["XD.POLICE"], "case": "new", "type": "liaison", "body": body }),
            )
            .unwrap();
    }
    // XC, introduced by both, is taken: its message is delivered and XD shows who introduced it.
    let xc = rogatory_node::client::Client::connect(&root.join("xc")).unwrap();
    let rows = xc
        .get::<serde_json::Value>("/v1/outbox?settled=1&wait=60")
        .unwrap();
    assert_eq!(rows[0]["state"], "delivered", "{rows}");
    let xd = json(&run_line(root, "directory list --data-dir xd.police --json").ok());
    let entry = xd
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "XC.NEW-CA")
        .cloned()
        .unwrap();
    assert_eq!(
        entry["introduced_by"],
        serde_json::json!(["XA.MOJ-CA", "XB.DOJ-CA"])
    );
    // XE, introduced by one of the two, is refused: its message is not taken.
    let xe = rogatory_node::client::Client::connect(&root.join("xe")).unwrap();
    // Its node answers once two deliveries to XD have failed (or after 60 s).
    let st = xe
        .get::<serde_json::Value>("/v1/status?peer=XD.POLICE&failures=2&wait=60")
        .unwrap();
    let p = st["peers"][0].clone();
    assert!(p["failures"].as_u64().unwrap_or(0) >= 2, "{p}");
    // Refused at the connection, or left unanswered: never taken.
    let e = p["last_error"].as_str().unwrap_or_default();
    assert!(e.contains("did not take") || e.contains("closed"), "{p}");
    let rows = xe.get::<serde_json::Value>("/v1/outbox").unwrap();
    assert_ne!(rows[0]["state"], "delivered", "{rows}");
    assert!(
        !xd.as_array()
            .unwrap()
            .iter()
            .any(|v| v["id"] == "XE.NEW-CA"),
        "{xd}"
    );
    for mut n in nodes {
        drop(n.stop());
    }
}

/// The partners `dir`'s directory says witnessed `agency`'s key history.
fn witnesses(root: &std::path::Path, dir: &str, agency: &str) -> Vec<String> {
    let v = json(
        &run_line(
            root,
            &format!("directory show {agency} --data-dir {dir} --json"),
        )
        .ok(),
    );
    let mut w: Vec<String> = v["witnessed_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["witness"].as_str().unwrap().to_string())
        .collect();
    w.sort();
    w
}

#[test]
fn partners_witness_each_other_s_key_histories_and_a_split_view_is_raised() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let ids = ["XA.MOJ-CA", "XB.DOJ-CA", "XC.POLICE"];
    let mut c = Cluster::new(root, &ids, 1);
    for dir in ["xa.moj-ca", "xb.doj-ca", "xc.police"] {
        let cfg = root.join(dir).join("rogatory.toml");
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("refresh_secs = 21600", "refresh_secs = 1");
        std::fs::write(&cfg, text).unwrap();
    }
    for i in 0..3 {
        c.start(i);
    }
    // Each partner cosigns XA's key log and gives it back; XC also learns that XB did.
    let within = Duration::from_secs(60);
    eventually(within, "XA's history witnessed by XB and XC", || {
        witnesses(root, "xa.moj-ca", "XA.MOJ-CA") == ["XB.DOJ-CA", "XC.POLICE"]
    });
    eventually(within, "XC knows XB witnessed XA's history", || {
        witnesses(root, "xc.police", "XA.MOJ-CA").contains(&"XB.DOJ-CA".to_string())
    });
    let shown = run_line(root, "directory show XA.MOJ-CA --data-dir xa.moj-ca").ok();
    assert!(
        shown
            .stdout
            .contains("key history witnessed by XB.DOJ-CA: 1 statement(s)"),
        "{}",
        shown.stdout
    );
    let listed = run_line(root, "directory list --data-dir xc.police").ok();
    assert!(listed.stdout.contains("witnessed by"), "{}", listed.stdout);
    for i in 0..3 {
        c.stop(i);
    }

    // XA's root signs two different next statements: one history is shown to XB, the other
    // (by a twin on XA's own address) to XC. Neither sees a fork on its own.
    let twin = root.join("twin");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(root.join("xa.moj-ca"))
        .arg(&twin)
        .status()
        .unwrap();
    assert!(copied.success());
    run_line(root, "keys rotate --data-dir xa.moj-ca").ok();
    run_line(root, "keys rotate --data-dir twin").ok();
    let body = example("liaison.json");
    c.start(0);
    c.start(1);
    c.send(0, "XB.DOJ-CA", "new", "liaison", &body);
    c.wait_settled(0, 1, within);
    c.stop(0);
    c.stop(1);
    let mut other = start_node(&twin);
    c.start(2);
    c.send(2, "XA.MOJ-CA", "new", "liaison", &body);
    c.wait_settled(2, 1, within);
    drop(other.stop());

    // XB and XC meet: each shows the other its cosignature of XA's key log.
    c.start(1);
    for (i, witness) in [(2, "XB.DOJ-CA"), (1, "XC.POLICE")] {
        let alerts = c
            .api(i)
            .get::<serde_json::Value>("/v1/alerts?kind=key-history-split&count=1&wait=60")
            .unwrap();
        let alerts = alerts.as_array().unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["peer"], "XA.MOJ-CA", "{alerts:?}");
        let detail = alerts[0]["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("{witness} cosigned a key history of XA.MOJ-CA")),
            "{detail}"
        );
    }
    // Raised once per witness, however often they meet.
    // (The command exits non-zero when there are alerts.)
    let r = run_line(root, "audit alerts --data-dir xc.police").failed();
    assert_eq!(
        r.stdout.matches("key-history-split").count(),
        1,
        "{}",
        r.stdout
    );
}

#[test]
fn a_root_of_two_of_three_keys_signs_what_follows_and_partners_follow_it() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let fingerprint = rogatory_tests::fingerprint(root, "xa.moj-ca.card");
    for k in ["r1", "r2", "r3"] {
        let r = run_line(
            root,
            &format!("keys root keygen --out {k} --insecure-plaintext-keys"),
        )
        .ok();
        assert!(r.stdout.contains(&format!("{k}.pub")), "{}", r.stdout);
    }
    // A threshold out of range, or a key that is not the new root's, changes nothing.
    let r = run_line(
        root,
        "keys root change --threshold 4 --key r1.pub --key r2.pub --key r3.pub --data-dir xa.moj-ca",
    )
    .failed();
    assert!(r.stderr.contains("threshold"), "{}", r.stderr);
    let r = run_line(
        root,
        "keys root change --threshold 2 --key r1.pub --key r2.pub --new-root-key r3 --data-dir xa.moj-ca",
    )
    .failed();
    assert!(
        r.stderr.contains("not one of the new root's keys"),
        "{}",
        r.stderr
    );

    // The current root and two of the three new keys sign the change.
    run_line(
        root,
        "keys root change --threshold 2 --key r1.pub --key r2.pub --key r3 --new-root-key r1 --new-root-key r2 --data-dir xa.moj-ca",
    )
    .ok();
    let shown = run_line(root, "keys root show --data-dir xa.moj-ca").ok();
    assert!(
        shown.stdout.contains("2 of 3 key(s) must sign"),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains(&fingerprint),
        "the fingerprint stays: {}",
        shown.stdout
    );

    // One new key alone cannot rotate; two, signing in turn, can.
    let r = run_line(root, "keys rotate --root-key r1 --data-dir xa.moj-ca").failed();
    assert!(
        r.stderr.contains("nothing was changed") || r.stderr.contains("does not extend"),
        "{}",
        r.stderr
    );
    std::fs::remove_file(root.join("xa.moj-ca/secret-keys.next.enc")).ok();
    run_line(root, "keys rotate --prepare rot.cbor --data-dir xa.moj-ca").ok();
    run_line(root, "keys root sign rot.cbor --root-key r1").ok();
    run_line(root, "keys root sign rot.cbor --root-key r3").ok();
    run_line(root, "keys rotate --apply rot.cbor --data-dir xa.moj-ca").ok();

    // XB follows: the root change and the rotation it signed, with no new pin.
    let body = example("liaison.json");
    c.send(0, "XB.DOJ-CA", "new", "liaison", &body);
    let rows = c.wait_settled(0, 1, Duration::from_secs(60));
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:?}");
    let mine = json(&run_line(root, "keys history --data-dir xa.moj-ca --json").ok());
    let held = json(&run_line(root, "peer list --data-dir xb.doj-ca --json").ok());
    let current = mine["keys"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|k| k["use"] == "sign")
        .unwrap()["key_id"]
        .clone();
    assert_eq!(held[0]["signing_key"]["key_id"], current, "{held}");
    assert_eq!(held[0]["fingerprint"], fingerprint.as_str(), "{held}");
    assert_eq!(held[0]["root"]["threshold"], 2, "{held}");
    assert_eq!(
        held[0]["root"]["keys"].as_array().unwrap().len(),
        3,
        "{held}"
    );
}
