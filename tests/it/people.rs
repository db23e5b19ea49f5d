//! Officials' accounts with real nodes (spec/PEOPLE.md): each official uses their own token,
//! every route is checked against their roles, and the audit log names who did what.

use std::time::Duration;

use rogatory_tests::{Cluster, Run, rogatory_with, run_line};
use serde_json::Value;

/// Runs `line` as the official whose token is in `token` (a file under `root`).
fn as_official(root: &std::path::Path, token: &str, line: &str) -> Run {
    let args: Vec<&str> = line.split_whitespace().collect();
    let file = root.join(token);
    rogatory_with(
        root,
        &args,
        &[("ROGATORY_TOKEN_FILE", file.to_str().unwrap())],
    )
}

#[test]
fn officials_use_their_own_tokens_and_each_route_checks_their_roles() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let body = rogatory_tests::spec_dir().join("examples/liaison.json");
    let send = format!(
        "send --to XB.DOJ-CA --case new --type liaison --body {} --data-dir xa.moj-ca --json",
        body.display()
    );
    // Before any account, the node's own token does everything, as it always did.
    run_line(root, &send).ok();

    for (name, role, extra) in [
        ("clara", "clerk", ""),
        ("aude", "auditor", ""),
        ("adam", "administrator", ""),
        ("gil", "auditor", "--grant-content"),
    ] {
        let r = run_line(
            root,
            &format!(
                "user add {name} --role {role} {extra} --token-out {name}.token --data-dir xa.moj-ca"
            ),
        )
        .ok();
        assert!(r.stdout.contains(&format!("{name}.token")), "{}", r.stdout);
    }
    let r = run_line(root, "user add clara --role auditor --data-dir xa.moj-ca").failed();
    assert!(r.stderr.contains("clara"), "{}", r.stderr);

    // The node's own token now only administers: it cannot send, and says what to do.
    let r = run_line(root, &send).failed();
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("ROGATORY_TOKEN_FILE"), "{}", r.stderr);
    run_line(root, "status --data-dir xa.moj-ca").ok();

    // The clerk sends; the case's log names her.
    let r = as_official(root, "clara.token", &send).ok();
    let sent: Value = serde_json::from_str(&r.stdout).unwrap();
    let case = sent["case_id"].as_str().unwrap().to_string();
    let id = sent["queued"][0]["envelope_id"]
        .as_str()
        .unwrap()
        .to_string();
    c.wait_settled(0, 2, Duration::from_secs(60));

    // The auditor reads the log, not the content; the clerk the content, not the log.
    let log = format!("audit log {case} --data-dir xa.moj-ca --json");
    let r = as_official(root, "aude.token", &log).ok();
    let entries: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"]["user"] == "clara"),
        "{entries}"
    );
    let r = as_official(root, "clara.token", &log).failed();
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("may not read the audit log"),
        "{}",
        r.stderr
    );
    let show = format!("message show {id} --data-dir xa.moj-ca --json");
    let r = as_official(root, "aude.token", &show).failed();
    assert!(r.stderr.contains("may not read content"), "{}", r.stderr);
    as_official(root, "gil.token", &show).ok();
    as_official(root, "clara.token", &show).ok();
    // The administrator neither sends nor reads content.
    let r = as_official(root, "adam.token", &send).failed();
    assert!(
        r.stderr.contains("may not open cases or send"),
        "{}",
        r.stderr
    );
    as_official(root, "adam.token", "status --data-dir xa.moj-ca").ok();
    let me = as_official(root, "gil.token", "user whoami --data-dir xa.moj-ca --json").ok();
    let me: Value = serde_json::from_str(&me.stdout).unwrap();
    assert_eq!(me["name"], "gil");
    assert_eq!(me["account"], true);
    assert_eq!(
        me["permissions"],
        serde_json::json!(["read", "content", "export", "audit"])
    );

    // A disabled account is refused at its next request; a made-up token at once.
    run_line(root, "user disable clara --data-dir xa.moj-ca").ok();
    let r = as_official(root, "clara.token", &send).failed();
    assert!(r.stderr.contains("disabled"), "{}", r.stderr);
    std::fs::write(root.join("forged.token"), "rgu_0000").unwrap();
    let mut perms = std::fs::metadata(root.join("forged.token"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(root.join("forged.token"), perms).unwrap();
    let r = as_official(root, "forged.token", "inbox --data-dir xa.moj-ca").failed();
    assert!(r.stderr.contains("bearer token"), "{}", r.stderr);
    let listed = run_line(root, "user list --data-dir xa.moj-ca --json").ok();
    let users: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 4);
    let clara = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "clara")
        .unwrap();
    assert!(clara["disabled_at"].is_string(), "{users}");
    assert_eq!(clara["permissions"], serde_json::json!([]), "{users}");
    assert!(!listed.stdout.contains("rgu_"), "no token is listed");
}

#[test]
fn every_route_of_the_api_names_the_permission_it_needs() {
    let doc = rogatory_node::api::openapi();
    let doc = serde_json::to_value(&doc).unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if op["security"] == serde_json::json!([])
                || path == "/v1/proof"
                || path == "/v1/openapi.json"
            {
                continue;
            }
            let m = method.to_ascii_uppercase();
            assert!(
                rogatory_node::api::PERMISSIONS
                    .iter()
                    .any(|(pm, pp, _)| *pm == m && *pp == path),
                "{m} {path} is not in the permission table"
            );
        }
    }
}

#[test]
fn a_clerk_s_request_waits_for_an_issuing_authority_s_approval() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    for (name, role) in [
        ("clara", "clerk"),
        ("carl", "clerk"),
        ("ivan", "issuing-authority"),
        ("aude", "auditor"),
    ] {
        run_line(
            root,
            &format!("user add {name} --role {role} --token-out {name}.token --data-dir xa.moj-ca"),
        )
        .ok();
    }
    let body = rogatory_tests::spec_dir().join("examples/mla-request.json");
    let send = format!(
        "send --to XB.DOJ-CA --case new --type mla-request --body {} --data-dir xa.moj-ca --json",
        body.display()
    );

    // The clerk's request is kept as a draft: nothing is sealed or queued.
    let r = as_official(root, "clara.token", &send).ok();
    let held: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(held["queued"], serde_json::json!([]), "{held}");
    assert_eq!(held["draft"]["state"], "awaiting-approval", "{held}");
    assert_eq!(held["draft"]["drafted_by"], "clara", "{held}");
    let id = held["draft"]["id"].as_str().unwrap()[..16].to_string();
    let case = held["case_id"].as_str().unwrap().to_string();
    let outbox = c.api(0).get::<Value>("/v1/outbox").unwrap();
    assert_eq!(outbox.as_array().unwrap().len(), 0, "{outbox}");
    let r = as_official(root, "clara.token", &send.replace(" --json", "")).ok();
    assert!(r.stdout.contains("request approve"), "{}", r.stdout);

    // Another clerk may not approve it, nor an auditor.
    for who in ["carl", "aude"] {
        let r = as_official(
            root,
            &format!("{who}.token"),
            &format!("request approve {id} --data-dir xa.moj-ca"),
        )
        .failed();
        assert_eq!(r.code, 3, "{}", r.stderr);
        assert!(r.stderr.contains("may not approve"), "{}", r.stderr);
    }

    // The issuing authority reads it, approves it: sealed, queued, delivered.
    let shown = as_official(
        root,
        "ivan.token",
        &format!("request draft {id} --data-dir xa.moj-ca --json"),
    )
    .ok();
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert!(
        shown["content"]["requesting_authority"].is_object(),
        "{shown}"
    );
    let approved = as_official(
        root,
        "ivan.token",
        &format!("request approve {id} --data-dir xa.moj-ca --json"),
    )
    .ok();
    let approved: Value = serde_json::from_str(&approved.stdout).unwrap();
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["decided_by"], "ivan");
    assert_eq!(approved["envelopes"].as_array().unwrap().len(), 1);
    let rows = c.wait_settled(0, 1, Duration::from_secs(60));
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:?}");
    // Once only.
    let r = as_official(
        root,
        "ivan.token",
        &format!("request approve {id} --data-dir xa.moj-ca"),
    )
    .failed();
    assert!(r.stderr.contains("approved already"), "{}", r.stderr);

    // The case's log names the approver; the node's log the drafter and the approver.
    let log = |case: &str| -> Vec<Value> {
        let r = as_official(
            root,
            "aude.token",
            &format!("audit log {case} --data-dir xa.moj-ca --json"),
        )
        .ok();
        serde_json::from_str::<Value>(&r.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let in_case = log(&case);
    let events: Vec<(&str, &str)> = in_case
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["actor"]["user"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(events.contains(&("envelope-sent", "ivan")), "{events:?}");
    assert!(events.contains(&("draft-approved", "ivan")), "{events:?}");
    let node_log = log("00000000-0000-7000-8000-000000000000");
    let drafted: Vec<(&str, &str)> = node_log
        .iter()
        .filter(|e| e["event"].as_str().unwrap().starts_with("draft-"))
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["actor"]["user"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        drafted,
        [
            ("draft-created", "clara"),
            ("draft-created", "clara"),
            ("draft-approved", "ivan")
        ],
        "{drafted:?}"
    );

    // The clerk's second draft is rejected, with the reason: never sent.
    let drafts = as_official(
        root,
        "ivan.token",
        "request drafts --data-dir xa.moj-ca --json",
    )
    .ok();
    let drafts: Value = serde_json::from_str(&drafts.stdout).unwrap();
    assert_eq!(drafts.as_array().unwrap().len(), 1, "{drafts}");
    let second = drafts[0]["id"].as_str().unwrap()[..16].to_string();
    as_official(
        root,
        "ivan.token",
        &format!("request reject {second} --reason incomplete --data-dir xa.moj-ca"),
    )
    .ok();
    let r = as_official(
        root,
        "ivan.token",
        &format!("request approve {second} --data-dir xa.moj-ca"),
    )
    .failed();
    assert!(r.stderr.contains("rejected already"), "{}", r.stderr);
    let all = as_official(
        root,
        "clara.token",
        "request drafts --all --data-dir xa.moj-ca --json",
    )
    .ok();
    let all: Value = serde_json::from_str(&all.stdout).unwrap();
    // (Drafts of the same second are listed in no particular order.)
    let mut states: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    states.sort();
    assert_eq!(states, ["approved", "rejected"]);
    let rejected = all
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["state"] == "rejected")
        .unwrap();
    assert_eq!(rejected["reason"], "incomplete");
    let outbox = c.api(0).get::<Value>("/v1/outbox").unwrap();
    assert_eq!(outbox.as_array().unwrap().len(), 1, "{outbox}");

    // The issuing authority's own request needs nobody's approval; the store verifies.
    let r = as_official(root, "ivan.token", &send).ok();
    let direct: Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(direct["draft"].is_null(), "{direct}");
    assert_eq!(direct["queued"].as_array().unwrap().len(), 1);
    c.wait_settled(0, 2, Duration::from_secs(60));
    c.stop(0);
    let r = run_line(root, "audit verify-store --data-dir xa.moj-ca").ok();
    assert!(r.stdout.contains("Store intact"), "{}", r.stdout);
}

/// The officials `dir`'s directory lists for `agency`: (name, role, state).
pub(crate) fn officials(
    root: &std::path::Path,
    dir: &str,
    agency: &str,
) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_str(
        &run_line(
            root,
            &format!("directory show {agency} --data-dir {dir} --json"),
        )
        .ok()
        .stdout,
    )
    .unwrap();
    v["officers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let s = |k: &str| o[k].as_str().unwrap().to_string();
            (s("name"), s("role"), s("state"))
        })
        .collect()
}

/// Polls `f` (state another process writes) for at most a minute.
pub(crate) fn eventually(what: &str, f: impl FnMut() -> bool) {
    rogatory_tests::eventually(Duration::from_secs(60), what, f)
}

#[test]
fn an_official_s_key_is_certified_through_the_key_history_and_revoked_the_same_way() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    run_line(
        root,
        "user add ivan --role issuing-authority --token-out ivan.token --data-dir xa.moj-ca",
    )
    .ok();
    run_line(
        root,
        "user add clara --role clerk --token-out clara.token --data-dir xa.moj-ca",
    )
    .ok();
    // A clerk signs nothing in their own name: nothing to certify.
    let r = run_line(root, "user certify clara --data-dir xa.moj-ca").failed();
    assert!(r.stderr.contains("no role that signs"), "{}", r.stderr);
    let r = run_line(root, "user certify ivan --days 400 --data-dir xa.moj-ca").failed();
    assert!(r.stderr.contains("1 to 366"), "{}", r.stderr);

    // The root certifies ivan's key; the running node restarts on its longer history and its
    // partner learns it, with no new pin.
    run_line(root, "user certify ivan --days 30 --data-dir xa.moj-ca").ok();
    let listed = run_line(root, "user list --data-dir xa.moj-ca --json").ok();
    let users: Value = serde_json::from_str(&listed.stdout).unwrap();
    let ivan = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "ivan")
        .unwrap();
    assert_eq!(
        ivan["officer"]["certificate"]["state"], "certified",
        "{ivan}"
    );
    let kid = ivan["officer"]["key_id"].as_str().unwrap()[..16].to_string();

    // Ivan's MLA request carries his own signature inside XA's; XB names him.
    let mla = rogatory_tests::spec_dir().join("examples/mla-request.json");
    let r = as_official(
        root,
        "ivan.token",
        &format!(
            "send --to XB.DOJ-CA --case new --type mla-request --body {} --data-dir xa.moj-ca --json",
            mla.display()
        ),
    )
    .ok();
    let sent: Value = serde_json::from_str(&r.stdout).unwrap();
    let id = sent["queued"][0]["envelope_id"]
        .as_str()
        .unwrap()
        .to_string();
    c.wait_settled(0, 1, Duration::from_secs(60));
    let shown = run_line(
        root,
        &format!("message show {id} --data-dir xb.doj-ca --json"),
    )
    .ok();
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["signed_by"][0]["name"], "ivan", "{shown}");
    assert_eq!(
        shown["signed_by"][0]["role"], "issuing-authority",
        "{shown}"
    );
    let text = run_line(root, &format!("message show {id} --data-dir xb.doj-ca")).ok();
    assert!(
        text.stdout.contains("issued by ivan of XA.MOJ-CA"),
        "{}",
        text.stdout
    );
    let r = run_line(root, "user certify ivan --data-dir xa.moj-ca").failed();
    assert!(r.stderr.contains("certified already"), "{}", r.stderr);
    let want = |state: &str| {
        vec![(
            "ivan".to_string(),
            "issuing-authority".to_string(),
            state.to_string(),
        )]
    };
    assert_eq!(officials(root, "xa.moj-ca", "XA.MOJ-CA"), want("certified"));
    eventually("XB learns XA's official", || {
        officials(root, "xb.doj-ca", "XA.MOJ-CA") == want("certified")
    });

    // Revoked like any key of the agency: every partner learns it the same way.
    run_line(
        root,
        &format!("keys revoke {kid} --reason retired --data-dir xa.moj-ca"),
    )
    .ok();
    eventually("XB learns the revocation", || {
        officials(root, "xb.doj-ca", "XA.MOJ-CA") == want("revoked")
    });
    let shown = run_line(root, "keys history --data-dir xa.moj-ca").ok();
    assert!(
        shown.stdout.contains("revoked (retired)"),
        "{}",
        shown.stdout
    );
    // Messages still flow under the agency's keys.
    let body = rogatory_tests::spec_dir().join("examples/liaison.json");
    as_official(
        root,
        "ivan.token",
        &format!(
            "send --to XB.DOJ-CA --case new --type liaison --body {} --data-dir xa.moj-ca",
            body.display()
        ),
    )
    .ok();
    let rows = c.wait_settled(0, 2, Duration::from_secs(60));
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:?}");
    // What XB accepted while ivan's key was certified still reads as his.
    let again = run_line(
        root,
        &format!("message show {id} --data-dir xb.doj-ca --json"),
    )
    .ok();
    let again: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(again["signed_by"][0]["name"], "ivan", "{again}");
}

#[test]
fn a_request_the_partner_requires_validated_is_refused_without_a_validation() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    // XB takes MLA requests only validated by a validating authority of the sender.
    let cfg = root.join("xb.doj-ca/rogatory.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "partners_validated = []",
        "partners_validated = [\"mla-request\"]",
    );
    assert!(text.contains("partners_validated = [\"mla-request\"]"));
    std::fs::write(&cfg, text).unwrap();
    c.start(0);
    c.start(1);
    run_line(
        root,
        "user add ivan --role issuing-authority --token-out ivan.token --data-dir xa.moj-ca",
    )
    .ok();
    run_line(root, "user certify ivan --data-dir xa.moj-ca").ok();
    // (A request signed by an official the partner does not know yet is refused: PEOPLE.md §5.)
    eventually("XB learns XA's official", || {
        officials(root, "xb.doj-ca", "XA.MOJ-CA").len() == 1
    });
    let mla = rogatory_tests::spec_dir().join("examples/mla-request.json");
    as_official(
        root,
        "ivan.token",
        &format!(
            "send --to XB.DOJ-CA --case new --type mla-request --body {} --data-dir xa.moj-ca",
            mla.display()
        ),
    )
    .ok();
    // Signed by ivan, but not validated: refused, and the receipt says why.
    let rows = c.wait_settled(0, 1, Duration::from_secs(60));
    assert_eq!(rows[0]["state"], "rejected", "{rows:?}");
    let out = as_official(root, "ivan.token", "outbox --data-dir xa.moj-ca --json").ok();
    assert!(out.stdout.contains("officer-not-valid"), "{}", out.stdout);
    let id = rows[0]["envelope_id"].as_str().unwrap();
    let shown = as_official(
        root,
        "ivan.token",
        &format!("message show {id} --data-dir xa.moj-ca --json"),
    )
    .ok();
    assert!(
        shown
            .stdout
            .contains("only validated by a validating authority"),
        "{}",
        shown.stdout
    );
}

#[test]
fn a_revoked_official_s_new_requests_are_refused_by_the_partner() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    run_line(
        root,
        "user add ivan --role issuing-authority --token-out ivan.token --data-dir xa.moj-ca",
    )
    .ok();
    run_line(root, "user certify ivan --data-dir xa.moj-ca").ok();
    let certified = vec![(
        "ivan".to_string(),
        "issuing-authority".to_string(),
        "certified".to_string(),
    )];
    eventually("XB learns XA's official", || {
        officials(root, "xb.doj-ca", "XA.MOJ-CA") == certified
    });
    // A copy of XA's directory from before the revocation (a lost laptop's, say).
    c.stop(0);
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(root.join("xa.moj-ca"))
        .arg(root.join("old"))
        .status()
        .unwrap();
    assert!(copied.success());
    c.start(0);
    let listed: Value = serde_json::from_str(
        &run_line(root, "user list --data-dir xa.moj-ca --json")
            .ok()
            .stdout,
    )
    .unwrap();
    let kid = listed[0]["officer"]["key_id"].as_str().unwrap()[..16].to_string();
    run_line(
        root,
        &format!("keys revoke {kid} --reason compromised --data-dir xa.moj-ca"),
    )
    .ok();
    eventually("XB learns the revocation", || {
        officials(root, "xb.doj-ca", "XA.MOJ-CA")[0].2 == "revoked"
    });
    c.stop(0);

    // The old copy still certifies ivan and signs in his name: XB refuses it.
    let mut old = crate::keys::start_node(&root.join("old"));
    let mla = rogatory_tests::spec_dir().join("examples/mla-request.json");
    as_official(
        root,
        "ivan.token",
        &format!(
            "send --to XB.DOJ-CA --case new --type mla-request --body {} --data-dir old",
            mla.display()
        ),
    )
    .ok();
    let rows: Value = rogatory_node::client::Client::connect(&root.join("old"))
        .unwrap()
        .get("/v1/outbox?settled=1&wait=60")
        .unwrap();
    let row = &rows.as_array().unwrap()[0];
    assert_eq!(row["state"], "rejected", "{rows}");
    assert!(row.to_string().contains("officer-not-valid"), "{row}");
    // Both sides count the refusal by its reason (GET /metrics).
    let refused = "{outcome=\"officer-not-valid\"} 1";
    let xb = c.api(1).get_text("/metrics").unwrap();
    assert!(
        xb.lines()
            .any(|l| l == format!("rogatory_envelopes_received_total{refused}")),
        "{xb}"
    );
    let sender = rogatory_node::client::Client::connect(&root.join("old"))
        .unwrap()
        .get_text("/metrics")
        .unwrap();
    assert!(
        sender
            .lines()
            .any(|l| l == format!("rogatory_envelopes_settled_total{refused}")),
        "{sender}"
    );
    drop(old.stop());
}

#[test]
fn an_issuing_authority_s_request_is_validated_then_sent_with_both_signatures() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    // XA's MLA requests are validated before they leave; XB takes them only validated.
    for (dir, from, to) in [
        (
            "xa.moj-ca",
            "validated = []",
            "validated = [\"mla-request\"]",
        ),
        (
            "xb.doj-ca",
            "\npartners_validated = []",
            "\npartners_validated = [\"mla-request\"]",
        ),
    ] {
        let cfg = root.join(dir).join("rogatory.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert!(text.contains(from), "{dir}: {text}");
        std::fs::write(&cfg, text.replace(from, to)).unwrap();
    }
    c.start(0);
    c.start(1);
    for (name, role) in [
        ("ivan", "issuing-authority"),
        ("vera", "validating-authority"),
    ] {
        run_line(
            root,
            &format!("user add {name} --role {role} --token-out {name}.token --data-dir xa.moj-ca"),
        )
        .ok();
        run_line(root, &format!("user certify {name} --data-dir xa.moj-ca")).ok();
    }
    eventually("XB learns XA's officials", || {
        officials(root, "xb.doj-ca", "XA.MOJ-CA").len() == 2
    });
    let mla = rogatory_tests::spec_dir().join("examples/mla-request.json");
    let r = as_official(
        root,
        "ivan.token",
        &format!(
            "send --to XB.DOJ-CA --case new --type mla-request --body {} --data-dir xa.moj-ca --json",
            mla.display()
        ),
    )
    .ok();
    let held: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(held["draft"]["state"], "awaiting-validation", "{held}");
    let id = held["draft"]["id"].as_str().unwrap()[..16].to_string();
    // The issuer cannot validate his own request.
    let r = as_official(
        root,
        "ivan.token",
        &format!("request countersign {id} --data-dir xa.moj-ca"),
    )
    .failed();
    assert!(r.stderr.contains("may not validate"), "{}", r.stderr);
    let done = as_official(
        root,
        "vera.token",
        &format!("request countersign {id} --data-dir xa.moj-ca --json"),
    )
    .ok();
    let done: Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(done["state"], "approved", "{done}");
    assert_eq!(done["validated_by"], "vera", "{done}");
    let rows = c.wait_settled(0, 1, Duration::from_secs(60));
    assert_eq!(rows[0]["state"], "delivered", "{rows:?}");
    let env = rows[0]["envelope_id"].as_str().unwrap();
    let shown = run_line(root, &format!("message show {env} --data-dir xb.doj-ca")).ok();
    assert!(
        shown
            .stdout
            .contains("issued by ivan of XA.MOJ-CA, validated by vera of XA.MOJ-CA"),
        "{}",
        shown.stdout
    );

    // XB's bundle of the case, for an auditor: rogatory-verify names both officials, each
    // signature checked against XA's key history the bundle carries.
    let case = rows[0]["case_id"].as_str().unwrap();
    run_line(
        root,
        "keygen --agency XO.OVERSIGHT --name Oversight --role court --out auditor",
    )
    .ok();
    let bundle = root.join("xb.bundle");
    run_line(
        root,
        &format!(
            "case export {case} --out {} --for-auditor auditor/card.cose --data-dir xb.doj-ca",
            bundle.display()
        ),
    )
    .ok();
    let verify = |json: bool| {
        let mut cmd = std::process::Command::new(rogatory_tests::verify_bin());
        if json {
            cmd.arg("--json");
        }
        let out = cmd
            .arg(&bundle)
            .arg("--key")
            .arg(root.join("auditor"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let verdict: Value = serde_json::from_str(&verify(true)).unwrap();
    let request = verdict["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_type"] == "mla-request")
        .expect("the request is disclosed");
    let signers: Vec<(&str, &str)> = request["signed_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        signers,
        [
            ("ivan", "issuing-authority"),
            ("vera", "validating-authority")
        ]
    );
    let text = verify(false);
    assert!(
        text.contains("issued by ivan (issuing-authority")
            && text.contains("validated by vera (validating-authority"),
        "{text}"
    );
    swapped_signatures_fail_the_bundle(root, &bundle);
}

/// XA re-seals the request with its own keys, ivan's signature replaced by vera's, and the
/// bundle's copy and disclosure are replaced by it: every signature of XA's over the new
/// envelope holds, the officials' do not, and rogatory-verify says so.
fn swapped_signatures_fail_the_bundle(root: &std::path::Path, path: &std::path::Path) {
    use rogatory_proto::bundle::{Bundle, Disclosure};
    use rogatory_proto::envelope::*;
    let (xa, xb) = (
        rogatory_tests::load_keys(&root.join("xa.moj-ca")),
        rogatory_tests::load_keys(&root.join("xb.doj-ca")),
    );
    let auditor = rogatory_node::keydir::load_card(&root.join("auditor/card.cose")).unwrap();
    let mut trusted = std::collections::BTreeMap::new();
    trusted.insert(xa.card.id().clone(), xa.history.clone());
    let xb_reads = Recipient {
        card: &xb.card,
        keys: &xb.keys,
    };
    let mut b = Bundle::read_from(std::fs::File::open(path).unwrap()).unwrap();
    let limits = Limits::default();
    let (i, o) = b
        .envelopes
        .iter()
        .enumerate()
        .find_map(|(i, r)| {
            let o = open(&r.envelope, &xb_reads, &trusted, &limits).ok()?;
            (o.officers.len() == 2).then_some((i, o))
        })
        .expect("the signed request is in the bundle");
    let mut made = o.officers.clone();
    made[0].signature = o.officers[1].signature;
    let forged = seal_countersigned(
        &Sender {
            card: &xa.card,
            keys: &xa.keys,
        },
        &made,
        &[],
        &[Addressee {
            card: &xb.card,
            chain: o.info.chain,
            consistency: None,
        }],
        &o.message,
        &SealParams {
            case_id: o.case_id,
            message_id: o.info.message_id,
            sent_at: o.info.sent_at,
            checkpoint: None,
        },
        &limits,
    )
    .unwrap()
    .remove(0);
    let old = rogatory_proto::ids::Sha256Digest::of(&b.envelopes[i].envelope);
    let key = envelope_key(&forged.bytes, &xb_reads, &limits).unwrap();
    b.envelopes[i].envelope = serde_bytes::ByteBuf::from(forged.bytes.clone());
    for d in &mut b.disclosures {
        if d.envelope == old {
            *d = Disclosure {
                envelope: forged.id,
                key: serde_bytes::ByteBuf::from(disclose(&key, &auditor).unwrap()),
            };
        }
    }
    let tampered = root.join("swapped.bundle");
    let mut bytes = Vec::new();
    b.write_to(&mut bytes).unwrap();
    std::fs::write(&tampered, bytes).unwrap();
    let out = std::process::Command::new(rogatory_tests::verify_bin())
        .arg(&tampered)
        .arg("--key")
        .arg(root.join("auditor"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "an official's signature over it does not hold against XA.MOJ-CA's key history"
        ) && text.contains("does not verify"),
        "{text}"
    );
}
