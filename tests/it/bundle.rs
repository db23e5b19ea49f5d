//! Case export bundles from two real nodes, verified offline by `rogatory audit verify` and by
//! the stand-alone `rogatory-verify`: the untouched pair verifies; each tampering of the table
//! fails with its own message, and both verifiers give the same verdict.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rogatory_proto::audit::entry::{AuditEntry, AuditEvent, case_origin, log_key_name};
use rogatory_proto::audit::note::{Checkpoint, Note};
use rogatory_proto::audit::witness;
use rogatory_proto::bundle::{Bundle, Direction};
use rogatory_proto::card::{AgencyCard, CardDetails};
use rogatory_proto::keyhist::statement::sign;
use rogatory_proto::keyhist::{KeyHistory, RevocationReason, StatementBody, encode_history};
use rogatory_proto::keys::{AgencySecretKeys, SigningKey};
use rogatory_proto::receipt::decode_verified_earlier;
use rogatory_tests::{Cluster, TEST_PASSPHRASE, example, run_line};
use serde_bytes::ByteBuf;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn verifier_bin() -> PathBuf {
    rogatory_tests::verify_bin().to_path_buf()
}

/// Runs both verifiers on `files`; checks they agree; returns (exit code, text, JSON verdict).
fn verify(root: &Path, files: &[PathBuf]) -> (i32, String, Value) {
    verify_with(root, files, &[])
}

/// [`verify`] with more options (no spaces in them).
fn verify_with(root: &Path, files: &[PathBuf], options: &[&str]) -> (i32, String, Value) {
    let mut names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    names.extend(options.iter().map(|o| o.to_string()));
    let text = run_line(root, &format!("audit verify {}", names.join(" ")));
    let json = run_line(root, &format!("audit verify --json {}", names.join(" ")));
    assert_eq!(text.code, json.code);
    let alone = Command::new(verifier_bin())
        .arg("--json")
        .args(files)
        .args(options)
        .output()
        .unwrap();
    assert_eq!(
        alone.status.code(),
        Some(json.code),
        "rogatory-verify's exit code"
    );
    let verdict: Value = serde_json::from_str(&json.stdout)
        .unwrap_or_else(|e| panic!("{e}: {names:?}\n{}", json.stderr));
    let same: Value = serde_json::from_slice(&alone.stdout).unwrap();
    assert_eq!(verdict, same, "rogatory-verify gives the same verdict");
    (text.code, text.stdout, verdict)
}

/// Bundles exported for an auditor: without its key they verify and say to whom the content is
/// disclosed; with it, every message is read and checked; with another auditor's key, or with
/// keys swapped between envelopes, they fail with what is wrong.
fn auditor_reads_what_was_disclosed(root: &Path, out: &Path, a_aud: &Path, b_aud: &Path) {
    let pair = [a_aud.to_path_buf(), b_aud.to_path_buf()];
    let (code, text, v) = verify(root, &pair);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("discloses the content of") && text.contains("XO.OVERSIGHT"),
        "{text}"
    );
    assert!(v["content"].as_array().unwrap().is_empty());

    let key = root.join("auditor");
    let (code, text, v) = verify_with(root, &pair, &["--key", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let content = v["content"].as_array().unwrap();
    assert_eq!(content.len(), v["envelopes"].as_array().unwrap().len());
    let request = content
        .iter()
        .find(|m| m["message_type"] == "mla-request")
        .expect("the MLA request is read");
    let sent = example("mla-request.json");
    assert_eq!(
        request["content"]["summary_of_facts"], sent["summary_of_facts"],
        "the auditor reads what was sent"
    );
    assert!(text.contains("Content disclosed to the auditor"), "{text}");

    let other = root.join("other-auditor");
    let (code, text, _) = verify_with(root, &pair, &["--key", other.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not to the key given"), "{text}");

    // Disclosures without the auditor they are for, and one far larger than a key: refused.
    let mut b = read(a_aud);
    b.auditor = None;
    let unnamed = write(out, "no-auditor.bundle", &b);
    let (code, text, _) = verify(root, &[unnamed]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("the bundle names no auditor"), "{text}");
    let mut b = read(a_aud);
    b.disclosures[0].key = ByteBuf::from(vec![0u8; 4096]);
    let huge = write(out, "huge-disclosure.bundle", &b);
    let (code, text, _) = verify_with(root, &[huge], &["--key", key.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("a disclosed key is at most"), "{text}");

    let mut b = read(a_aud);
    assert!(b.disclosures.len() >= 2);
    let k0 = b.disclosures[0].key.clone();
    b.disclosures[0].key = b.disclosures[1].key.clone();
    b.disclosures[1].key = k0;
    let swapped = write(out, "keys-swapped.bundle", &b);
    let html = out.join("keys-swapped.html");
    let (code, text, _) = verify_with(
        root,
        &[swapped],
        &[
            "--key",
            key.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("the disclosed key does not open it"),
        "{text}"
    );
    // The HTML report says so too, with the failed check in its table.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("NOT VERIFIED"), "{page}");
    assert!(page.contains("id=\"findings\""));
    assert!(page.contains("the disclosed key does not open it"));
}

/// Renders `html` in headless Chromium: returns the DOM it built, and leaves a screenshot
/// beside it. Without Chromium the check is skipped, unless `ROGATORY_REQUIRE_CHROMIUM` is set
/// (as `.ci/run` sets it, after installing Chromium), when its absence fails the test.
fn render(html: &Path, out: &Path) -> Option<String> {
    let bin = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(bin) = bin else {
        assert!(
            std::env::var_os("ROGATORY_REQUIRE_CHROMIUM").is_none(),
            "ROGATORY_REQUIRE_CHROMIUM is set but no Chromium is installed"
        );
        eprintln!("note: Chromium is not installed; the HTML report was not rendered");
        return None;
    };
    let profile = tempfile::tempdir().unwrap();
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ];
    let url = format!("file://{}", html.display());
    let run = |extra: &[String]| {
        let o = Command::new(bin)
            .args(common)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    let dom = String::from_utf8(run(&["--dump-dom".to_string()]).stdout).unwrap();
    let png = out.join("report.png");
    run(&[
        format!("--screenshot={}", png.display()),
        "--window-size=1200,1600".to_string(),
    ]);
    let shot = std::fs::read(&png).unwrap();
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 20_000,
        "a screenshot of the rendered report ({} bytes)",
        shot.len()
    );
    Some(dom)
}

fn write(dir: &Path, name: &str, b: &Bundle) -> PathBuf {
    let p = dir.join(name);
    let mut bytes = Vec::new();
    b.write_to(&mut bytes).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

fn read(p: &Path) -> Bundle {
    Bundle::read_from(std::fs::File::open(p).unwrap()).unwrap()
}

fn keys_of(dir: &Path) -> AgencySecretKeys {
    let path = dir.join(rogatory_node::keydir::SECRET_KEYS_ENCRYPTED);
    let raw = std::fs::read(&path).unwrap();
    rogatory_node::secret::open(&raw, TEST_PASSPHRASE.1, &path).unwrap()
}

fn root_of(dir: &Path) -> SigningKey {
    let path = dir.join(rogatory_node::keydir::ROOT_KEY_ENCRYPTED);
    let raw = std::fs::read(&path).unwrap();
    let plain = rogatory_node::secret::open_bytes(&raw, TEST_PASSPHRASE.1, &path).unwrap();
    SigningKey::from_cose_key_secret(&plain).unwrap()
}

/// The place of `agency`'s key history among a bundle's cards, and the history.
fn history_in(b: &Bundle, agency: &str) -> (usize, KeyHistory) {
    b.cards
        .iter()
        .enumerate()
        .find_map(|(i, c)| {
            let h = KeyHistory::from_file(c).ok()?;
            (h.agency().as_str() == agency).then_some((i, h))
        })
        .unwrap()
}

/// `h` with one more statement, `body`, signed by `keys`, as a bundle carries it.
fn extended(h: &KeyHistory, body: &StatementBody, keys: &[&SigningKey]) -> ByteBuf {
    let mut list = h.statements().to_vec();
    list.push(sign(body, keys).unwrap());
    ByteBuf::from(encode_history(&list))
}

/// A new card of the agency of `h`, with fresh keys.
fn new_card(h: &KeyHistory) -> AgencyCard {
    let b = h.current_card().body();
    AgencyCard::issue(
        CardDetails {
            id: b.id.clone(),
            name: b.name.clone(),
            roles: b.roles.clone(),
            addresses: b.addresses.clone(),
            languages: b.languages.clone(),
            legal_bases: b.legal_bases.clone(),
            issued_at: rogatory_proto::time::now_unix(),
        },
        &AgencySecretKeys::generate(),
    )
    .unwrap()
}

fn entry(b: &Bundle, i: usize) -> AuditEntry {
    AuditEntry::from_cbor(&b.entries[i]).unwrap()
}

/// The index of the first entry of `event`.
fn first(b: &Bundle, event: AuditEvent) -> usize {
    (0..b.entries.len())
        .find(|i| entry(b, *i).event == event)
        .unwrap()
}

#[test]
fn exported_bundles_verify_offline_and_every_tampering_is_named() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let case = c.first_request();
    run_line(
        root,
        &format!("case update {case} registered --reference XB-MLA-1 --data-dir xb.doj-ca"),
    )
    .ok();
    c.wait_settled(1, 1, WAIT);
    for n in 2..=3 {
        c.send(0, "XB.DOJ-CA", &case, "liaison", &example("liaison.json"));
        c.wait_settled(0, n, WAIT);
    }
    c.send(1, "XA.MOJ-CA", &case, "liaison", &example("liaison.json"));
    c.wait_settled(1, 2, WAIT);
    let out = root.join("bundles");
    std::fs::create_dir(&out).unwrap();
    let (a_path, b_path) = (out.join("xa.bundle"), out.join("xb.bundle"));
    for (dir, p) in [("xa.moj-ca", &a_path), ("xb.doj-ca", &b_path)] {
        let r = run_line(
            root,
            &format!(
                "case export {case} --out {} --json --data-dir {dir}",
                p.display()
            ),
        )
        .ok();
        let r: Value = serde_json::from_str(&r.stdout).unwrap();
        assert!(r["envelopes"].as_u64().unwrap() >= 4, "{r}");
    }
    // Not twice to the same file; the export is logged with the bundle's hash.
    run_line(
        root,
        &format!(
            "case export {case} --out {} --data-dir xa.moj-ca",
            a_path.display()
        ),
    )
    .failed();
    // For an auditor: the content disclosed to its card alone.
    run_line(
        root,
        "keygen --agency XO.OVERSIGHT --name Oversight --role court --out auditor",
    )
    .ok();
    run_line(
        root,
        "keygen --agency XO.OTHER --name Other --role court --out other-auditor",
    )
    .ok();
    let (a_aud, b_aud) = (out.join("xa-auditor.bundle"), out.join("xb-auditor.bundle"));
    for (dir, p) in [("xa.moj-ca", &a_aud), ("xb.doj-ca", &b_aud)] {
        let r = run_line(
            root,
            &format!(
                "case export {case} --out {} --for-auditor auditor/card.cose --json --data-dir {dir}",
                p.display()
            ),
        )
        .ok();
        let r: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(r["auditor"], "XO.OVERSIGHT", "{r}");
        assert_eq!(
            r["disclosed"], r["envelopes"],
            "every envelope is disclosed: {r}"
        );
    }
    // An auditor's card that is not there: a clear error, and no bundle written.
    let nowhere = out.join("nowhere.bundle");
    let r = run_line(
        root,
        &format!(
            "case export {case} --out {} --for-auditor auditor/missing.cose --data-dir xa.moj-ca",
            nowhere.display()
        ),
    )
    .failed();
    assert!(r.stderr.contains("missing.cose"), "{}", r.stderr);
    assert!(!nowhere.exists());
    c.stop(0);
    c.stop(1);
    let log: Value = serde_json::from_str(
        &run_line(
            root,
            &format!("audit log {case} --json --data-dir xa.moj-ca"),
        )
        .ok()
        .stdout,
    )
    .unwrap();
    let exports: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "bundle-exported")
        .collect();
    assert_eq!(exports.len(), 2, "two exports logged: {log}");
    for (e, p, auditor) in [
        (exports[0], &a_path, Value::Null),
        (exports[1], &a_aud, Value::from("XO.OVERSIGHT")),
    ] {
        let bytes = std::fs::read(p).unwrap();
        assert_eq!(
            e["commitment"],
            rogatory_proto::ids::Sha256Digest::of(&bytes)
                .to_hex()
                .as_str()
        );
        assert_eq!(e["peer"], auditor, "the auditor is on record: {e}");
    }

    // Untouched: each alone, and the pair, verify; the same verdict from both verifiers.
    for files in [
        vec![a_path.clone()],
        vec![b_path.clone()],
        vec![a_path.clone(), b_path.clone()],
    ] {
        let (code, text, v) = verify(root, &files);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("VERIFIED"), "{text}");
        assert!(v["findings"].as_array().unwrap().is_empty(), "{v}");
    }
    // The HTML report of the pair, from both verifiers, rendered by a real browser.
    let html = out.join("report.html");
    let names = format!("{} {}", a_path.display(), b_path.display());
    run_line(
        root,
        &format!("audit verify {names} --html {}", html.display()),
    )
    .ok();
    let again = out.join("report-alone.html");
    // Links planted where the report goes, and where it used to be written first: neither is
    // written through.
    let victims = [out.join("victim-1"), out.join("victim-2")];
    for v in &victims {
        std::fs::write(v, b"not yours").unwrap();
    }
    std::os::unix::fs::symlink(&victims[0], out.join("report-alone.html.partial")).unwrap();
    std::os::unix::fs::symlink(&victims[1], &again).unwrap();
    let alone = Command::new(verifier_bin())
        .args([&a_path, &b_path])
        .arg("--html")
        .arg(&again)
        .output()
        .unwrap();
    assert!(alone.status.success());
    for v in &victims {
        assert_eq!(std::fs::read(v).unwrap(), b"not yours", "{}", v.display());
    }
    assert!(!std::fs::symlink_metadata(&again).unwrap().is_symlink());
    assert_eq!(
        std::fs::read(&html).unwrap(),
        std::fs::read(&again).unwrap(),
        "both verifiers write the same report"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    let envelopes = verify(root, &[a_path.clone(), b_path.clone()]).2["envelopes"]
        .as_array()
        .unwrap()
        .len();
    if let Some(dom) = render(&html, &out) {
        assert!(dom.contains("VERIFIED: every check held."), "{dom}");
        for party in ["XA.MOJ-CA", "XB.DOJ-CA"] {
            assert!(dom.contains(party), "the report names {party}");
        }
        assert!(dom.contains("id=\"timeline-chart\""), "the chart is there");
        assert_eq!(
            dom.matches("class=\"msg\"").count(),
            envelopes,
            "one line per envelope in the chart"
        );
        assert!(dom.contains("accepted"), "receipts are listed");
    }
    assert!(page.contains("<svg"), "the chart is inline SVG");
    assert!(
        !page.contains("<script") && !page.contains(" src=") && !page.contains("<link"),
        "the report is self-contained: no script, no outside resource"
    );
    auditor_reads_what_was_disclosed(root, &out, &a_aud, &b_aud);
    let (_, text, v) = verify(root, &[a_path.clone(), b_path.clone()]);
    assert!(
        text.contains("XA.MOJ-CA → XB.DOJ-CA: 3 envelopes sent by one are held by the other"),
        "{text}"
    );
    assert!(text.contains("envelope-sent"), "{text}");
    assert!(v["bundles"][0]["cosigned"].as_u64().unwrap() >= 2, "{v}");

    let a = read(&a_path);
    let b = read(&b_path);
    let xa_keys = keys_of(&c.dirs[0]);
    let xa_online = SigningKey::from_seed(&xa_keys.signing.seed());
    let xa_root = root_of(&c.dirs[0]);
    let (xa_root2, xa_root3) = (
        SigningKey::from_seed(&xa_root.seed()),
        SigningKey::from_seed(&xa_root.seed()),
    );
    let stranger = AgencySecretKeys::generate();
    let sent = |x: &Bundle| -> Vec<usize> {
        (0..x.envelopes.len())
            .filter(|i| x.envelopes[*i].direction == Direction::Sent)
            .collect()
    };
    type Tamper = Box<dyn Fn(&mut Bundle, &mut Bundle)>;
    let table: Vec<(&str, Tamper, &str)> = vec![
        (
            "an entry modified",
            Box::new(|a, _| {
                let i = first(a, AuditEvent::EnvelopeSent);
                let mut e = entry(a, i);
                e.time += 1;
                a.entries[i] = ByteBuf::from(e.to_cbor().unwrap());
            }),
            "was modified",
        ),
        (
            "an entry deleted",
            Box::new(|a, _| {
                a.entries.remove(2);
            }),
            "entry 2: it says it is entry 3: an entry before it is missing (deleted)",
        ),
        (
            "an entry inserted",
            Box::new(|a, _| {
                let copy = a.entries[1].clone();
                a.entries.insert(2, copy);
            }),
            "entry 2: it says it is entry 1: an entry was inserted",
        ),
        (
            "entries reordered",
            Box::new(|a, _| a.entries.swap(3, 4)),
            "reordered",
        ),
        (
            "the log truncated",
            Box::new(|a, _| {
                let n = a.entries.len();
                a.entries.truncate(n - 3);
            }),
            "the log was truncated",
        ),
        (
            "a receipt forged with another key",
            Box::new(move |a, _| {
                let i = sent(a)[0];
                let r = decode_verified_earlier(a.envelopes[i].receipt.as_ref().unwrap())
                    .unwrap()
                    .receipt;
                let forged = r.sign(&stranger).unwrap().bytes;
                a.envelopes[i].receipt = Some(ByteBuf::from(forged));
            }),
            "the receipt does not verify with XB.DOJ-CA's key",
        ),
        (
            "an envelope swapped",
            Box::new(move |a, _| {
                let s = sent(a);
                let (x, y) = (s[0], s[1]);
                let ex = a.envelopes[x].envelope.clone();
                a.envelopes[x].envelope = a.envelopes[y].envelope.clone();
                a.envelopes[y].envelope = ex;
            }),
            "not this one (envelope swapped?)",
        ),
        (
            "a checkpoint replaced by one from a forked log (split view)",
            Box::new(move |_, b| {
                // XA signs a second root for a size XB witnessed: two histories.
                let seen = Checkpoint::parse(Note::parse(&b.witnessed[0]).unwrap().text()).unwrap();
                let xa = rogatory_proto::ids::AgencyId::new("XA.MOJ-CA").unwrap();
                let forked = Checkpoint {
                    origin: case_origin(&xa, &b.case_id),
                    size: seen.size,
                    root: [7; 32],
                    extensions: vec![],
                };
                let mut n = Note::new(&forked.body()).unwrap();
                n.sign(&log_key_name(&xa), &xa_keys.signing).unwrap();
                b.witnessed.push(ByteBuf::from(n.to_text().into_bytes()));
            }),
            "two histories",
        ),
        (
            "a checkpoint's text and signature run together (no longer a signed note)",
            Box::new(|a, _| {
                let note = Note::parse(&a.checkpoints[0]).unwrap();
                let mut raw = note.text().as_bytes().to_vec();
                raw.extend_from_slice(&note.signatures()[0].signature);
                a.checkpoints[0] = ByteBuf::from(raw);
            }),
            "checkpoint 0: not signed by XA.MOJ-CA's log key",
        ),
        (
            "a message on one side and missing on the other",
            Box::new(|_, b| {
                let i = (0..b.envelopes.len())
                    .find(|i| b.envelopes[*i].direction == Direction::Received)
                    .unwrap();
                b.envelopes.remove(i);
            }),
            "but XB.DOJ-CA's bundle does not hold it",
        ),
        (
            "a cosignature from a key outside the policy",
            Box::new(|a, _| {
                let stranger = AgencySecretKeys::generate();
                let i = (0..a.checkpoints.len())
                    .find(|i| Note::parse(&a.checkpoints[*i]).unwrap().signatures().len() == 2)
                    .unwrap();
                let note = Note::parse(&a.checkpoints[i]).unwrap();
                let text = note.to_text();
                let own = text
                    .lines()
                    .take_while(|l| !l.starts_with("— rogatory.XB"))
                    .count();
                let mut kept: String = text.lines().take(own).map(|l| format!("{l}\n")).collect();
                kept.push_str(
                    &witness::cosign(note.text(), "rogatory.XB.DOJ-CA", &stranger.signing, 1)
                        .unwrap(),
                );
                a.checkpoints[i] = ByteBuf::from(kept.into_bytes());
            }),
            "cosigned with a key outside the policy: rogatory.XB.DOJ-CA",
        ),
        (
            "a rotation forged with the online key alone",
            Box::new(move |a, _| {
                let (i, h) = history_in(a, "XA.MOJ-CA");
                let body = h.next_card(&new_card(&h), rogatory_proto::time::now_unix());
                a.cards[i] = extended(&h, &body, &[&xa_online]);
            }),
            "the root threshold is 1",
        ),
        (
            "messages signed after their key's revocation",
            Box::new(move |a, _| {
                let (i, h) = history_in(a, "XA.MOJ-CA");
                let kid = *h.current_card().signing_key().id();
                let now = rogatory_proto::time::now_unix();
                let body = h.next_revoke(&kid, RevocationReason::Compromised, 1, now);
                a.cards[i] = extended(&h, &body, &[&xa_root]);
            }),
            "after its revocation (compromised) took effect",
        ),
        (
            "a split key history (two statement 1s under one root)",
            Box::new(move |a, b| {
                let now = rogatory_proto::time::now_unix();
                let (i, h) = history_in(a, "XA.MOJ-CA");
                let body = h.next_card(&new_card(&h), now);
                a.cards[i] = extended(&h, &body, &[&xa_root2]);
                let (j, h) = history_in(b, "XA.MOJ-CA");
                let body = h.next_card(&new_card(&h), now);
                b.cards[j] = extended(&h, &body, &[&xa_root3]);
            }),
            "two key histories of XA.MOJ-CA: statement 1 differs",
        ),
    ];
    for (name, tamper, says) in &table {
        let (mut ta, mut tb) = (a.clone(), b.clone());
        tamper(&mut ta, &mut tb);
        let dir = out.join(name.replace(' ', "-"));
        std::fs::create_dir(&dir).unwrap();
        let files = [write(&dir, "xa.bundle", &ta), write(&dir, "xb.bundle", &tb)];
        let (code, text, v) = verify(root, &files);
        assert_eq!(code, 1, "{name}: must fail\n{text}");
        assert!(text.contains("NOT VERIFIED"), "{name}\n{text}");
        let findings: Vec<String> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f["at"].as_str().unwrap(),
                    f["problem"].as_str().unwrap()
                )
            })
            .collect();
        assert!(
            findings.iter().any(|f| f.contains(says)),
            "{name}: no finding says `{says}`:\n{}",
            findings.join("\n")
        );
    }
    // A file that is not a bundle: a clear error, exit 2 from rogatory-verify.
    let junk = out.join("junk.bundle");
    std::fs::write(&junk, b"not a bundle").unwrap();
    let r = run_line(root, &format!("audit verify {}", junk.display())).failed();
    assert!(
        r.stderr.contains("not a Rogatory case bundle"),
        "{}",
        r.stderr
    );
    let alone = Command::new(verifier_bin()).arg(&junk).output().unwrap();
    assert_eq!(alone.status.code(), Some(2));
}
