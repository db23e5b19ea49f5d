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
