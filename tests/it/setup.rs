//! Setting up a node: `init` with encrypted keys, pinning partners by fingerprint, and using
//! the pinned cards.

use std::path::Path;

use rogatory_tests::{
    Run, TEST_PASSPHRASE, fingerprint, init_three, rogatory_with, run_line, spec_dir,
};
use serde_json::Value;

/// Seals the example liaison message from `key` to `to` (a card file or a pinned id), with
/// `before` as leading global arguments and `env` as the environment.
fn seal(d: &Path, before: &[&str], key: &str, to: &str, env: &[(&str, &str)]) -> Run {
    let body = spec_dir()
        .join("examples/liaison.json")
        .display()
        .to_string();
    let mut args: Vec<&str> = before.to_vec();
    let line = format!(
        "envelope seal --key {key} --to {to} --case new --type liaison --out m.cose --body"
    );
    args.extend(line.split_whitespace());
    args.push(&body);
    rogatory_with(d, &args, env)
}

#[test]
fn init_encrypts_keys_refuses_reuse_and_reports_a_wrong_passphrase() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    run_line(
        d,
        "init --agency XA.MOJ-CA --name CA --data-dir xa --listen /ip4/127.0.0.1/tcp/4101",
    )
    .ok();
    assert!(d.join("xa/secret-keys.enc").exists());
    assert!(
        !d.join("xa/secret-keys.cose").exists(),
        "no key is written in clear"
    );
    let config = std::fs::read_to_string(d.join("xa/rogatory.toml")).unwrap();
    assert!(
        config.contains("listen = [\"/ip4/127.0.0.1/tcp/4101\"]"),
        "{config}"
    );
    // The card carries the listen address.
    let v: Value = serde_json::from_str(&run_line(d, "card show xa --json").ok().stdout).unwrap();
    assert_eq!(v["addresses"][0], "/ip4/127.0.0.1/tcp/4101");

    // Re-running init refuses and changes nothing.
    let before = std::fs::read(d.join("xa/secret-keys.enc")).unwrap();
    let r = run_line(d, "init --agency XA.MOJ-CA --name CA --data-dir xa").failed();
    assert!(r.stderr.contains("refusing to overwrite"), "{}", r.stderr);
    assert_eq!(std::fs::read(d.join("xa/secret-keys.enc")).unwrap(), before);

    // A wrong passphrase: one clear line, exit 1.
    run_line(d, "init --agency XB.DOJ-CA --name CB --data-dir xb").ok();
    let r = seal(
        d,
        &[],
        "xa",
        "xb/card.cose",
        &[("ROGATORY_PASSPHRASE", "wrong")],
    )
    .failed();
    assert_eq!(
        r.stderr.trim(),
        "error: wrong passphrase for xa/secret-keys.enc"
    );
    // No passphrase and no terminal: a clear error, not a hang.
    let r = seal(d, &[], "xa", "xb/card.cose", &[]).failed();
    assert!(r.stderr.contains("ROGATORY_PASSPHRASE"), "{}", r.stderr);
    // A passphrase file works too.
    std::fs::write(d.join("pass.txt"), format!("{}\n", TEST_PASSPHRASE.1)).unwrap();
    seal(
        d,
        &["--passphrase-file", "pass.txt"],
        "xa",
        "xb/card.cose",
        &[],
    )
    .ok();

    // For tests, keys may be kept in clear, explicitly.
    let r = rogatory_with(
        d,
        &[
            "init",
            "--agency",
            "XC.POLICE",
            "--name",
            "P",
            "--data-dir",
            "xc",
            "--insecure-plaintext-keys",
        ],
        &[],
    );
    r.ok();
    assert!(d.join("xc/secret-keys.cose").exists());
}

#[test]
fn partners_are_pinned_by_fingerprint_and_used_by_id() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    init_three(d, "");
    // A wrong fingerprint refuses; the right one (any case and separators) pins.
    let fb = fingerprint(d, "xb.card");
    let wrong = fingerprint(d, "xc.card");
    let r = run_line(
        d,
        &format!("peer add xb.card --fingerprint {wrong} --data-dir xa"),
    )
    .failed();
    assert!(r.stderr.contains("fingerprint mismatch"), "{}", r.stderr);
    assert!(!d.join("xa/peers/XB.DOJ-CA.cose").exists());
    run_line(
        d,
        &format!(
            "peer add xb.card --fingerprint {} --data-dir xa",
            fb.to_lowercase().replace('-', "")
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
    let list: Value =
        serde_json::from_str(&run_line(d, "peer list --data-dir xa --json").ok().stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], "XB.DOJ-CA");

    // Seal to a pinned partner by id; open trusting the pinned partners by default.
    seal(d, &[], "xa", "XB.DOJ-CA", &[TEST_PASSPHRASE]).ok();
    let opened: Value =
        serde_json::from_str(&run_line(d, "envelope open --key xb m.cose").ok().stdout).unwrap();
    assert_eq!(opened["from"], "XA.MOJ-CA");
    // An unpinned agency cannot be addressed by id.
    let r = seal(d, &[], "xa", "XC.POLICE", &[TEST_PASSPHRASE]).failed();
    assert!(r.stderr.contains("not pinned"), "{}", r.stderr);
    // Unpinned, the sender is no longer trusted.
    run_line(d, "peer remove XA.MOJ-CA --data-dir xb").ok();
    let r = run_line(d, "envelope open --key xb m.cose").failed();
    assert!(r.stderr.contains("no trusted cards"), "{}", r.stderr);
}

#[test]
fn init_closes_an_open_directory_and_the_store_is_its_owner_s_alone() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let dir = d.join("node");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = run_line(d, "init --agency XA.POLICE --name xa --data-dir node").ok();
    assert!(r.stdout.contains("now mode 700"), "{}", r.stdout);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    // The store, made by the first run (here: opened as the node opens it), is 0600.
    drop(rogatory_node::store::Store::open(&dir).unwrap());
    assert_eq!(mode(&dir.join("rogatory.redb")), 0o600);
}
