//! The audit store on disk: a known-answer test of the stored formats, and tampering by an
//! insider with disk access — through redb itself, so the file stays a valid database — that
//! `rogatory audit verify-store` must detect and name.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};
use rogatory_node::cases::{CaseKind, CaseRecord};
use rogatory_node::evidence::{EvidenceRecord, EvidenceState};
use rogatory_node::store::{LogSigner, RecordKeys, Store};
use rogatory_proto::audit::entry::{Actor, AuditEntry, AuditEvent};
use rogatory_proto::card::{AgencyCard, CardDetails, Role};
use rogatory_proto::ids::{AgencyId, CaseId, Sha256Digest};
use rogatory_proto::keys::{AgencySecretKeys, EncryptionSecretKey, SigningKey};
use rogatory_tests::rogatory;
use serde_json::{Value, json};

// The insider's view of the tables: the same definitions as the node's (store.rs).
const LOG: TableDefinition<(&[u8; 16], u64, u8, u64), &[u8]> = TableDefinition::new("log");
const ENTRY: u8 = 0;
const CHECKPOINT: u8 = 2;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/store-v2")
}

fn fixed_agency() -> (AgencySecretKeys, AgencyCard) {
    let keys = AgencySecretKeys::new(
        SigningKey::from_seed(&[0x51; 32]),
        EncryptionSecretKey::from_bytes(&[0x52; 32]),
    );
    let card = AgencyCard::issue(
        CardDetails {
            id: AgencyId::new("XA.MOJ-CA").unwrap(),
            name: "Central Authority of XA".into(),
            roles: vec![Role::CentralAuthority],
            addresses: vec![],
            languages: vec!["en".into()],
            legal_bases: vec![],
            issued_at: 1_790_000_000,
        },
        &keys,
    )
    .unwrap();
    (keys, card)
}

pub(crate) fn case() -> CaseId {
    "01a22522-d4f2-73cd-be4f-be9050503898".parse().unwrap()
}

fn entries(card: &AgencyCard) -> Vec<AuditEntry> {
    let events = [
        AuditEvent::CaseCreated,
        AuditEvent::EnvelopeSent,
        AuditEvent::ReceiptReceived,
        AuditEvent::EnvelopeReceived,
        AuditEvent::StatusChanged,
    ];
    events
        .iter()
        .enumerate()
        .map(|(i, ev)| AuditEntry {
            seq: 0,
            time: 1_790_000_100 + i as u64 * 60,
            case_id: case(),
            event: *ev,
            actor: Actor {
                agency: card.id().clone(),
                user: (i == 0).then(|| "clerk-07".to_string()),
            },
            peer: (i > 0).then(|| AgencyId::new("XB.DOJ-CA").unwrap()),
            envelope_id: (i == 1 || i == 3)
                .then(|| Sha256Digest::of(format!("envelope {i}").as_bytes())),
            receipt_hash: (i == 2).then(|| Sha256Digest::of(b"receipt")),
            transition: (i == 4).then(|| rogatory_proto::audit::entry::Transition {
                from: "received".into(),
                to: "registered".into(),
            }),
            reason: None,
            commitment: None,
        })
        .collect()
}

/// Builds the fixture store: three appends (one entry, then a batch of two, then two singles).
fn build(dir: &Path) -> Vec<Vec<u8>> {
    let (keys, card) = fixed_agency();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("card.cose"), card.as_bytes()).unwrap();
    let store = Store::open(dir).unwrap();
    let signer = LogSigner {
        agency: card.id(),
        key: &keys.signing,
    };
    let mut all = entries(&card);
    let mut notes = Vec::new();
    for range in [0..1, 1..3, 3..4, 4..5] {
        notes.push(store.append(&signer, &case(), &mut all[range]).unwrap());
    }
    // The sealed records: a case record with a status note, an evidence item, an inbox record.
    let store = store.with_record_keys(RecordKeys::new(&keys));
    let mut b = store.batch().unwrap();
    b.put_case_record(&case_record()).unwrap();
    b.put_evidence(&evidence_record()).unwrap();
    b.insert_inbox(&[0x44; 32], b"envelope", Some(&received()))
        .unwrap();
    b.commit().unwrap();
    notes
}

pub(crate) fn case_record() -> CaseRecord {
    let mut r = CaseRecord::new(
        case(),
        CaseKind::Mla,
        rogatory_proto::case::Side::Requesting,
        AgencyId::new("XB.DOJ-CA").unwrap(),
        1_790_000_100,
    );
    r.reference = Some("XA-2026-CY-0173: the suspect's account".into());
    r
}

pub(crate) fn evidence_record() -> EvidenceRecord {
    EvidenceRecord {
        case_id: case(),
        item: rogatory_proto::message::EvidenceItem {
            item_id: "E1".into(),
            description: "subscriber records of the account".into(),
            media_type: "text/csv".into(),
            size: 123,
            sha256: Some(Sha256Digest([5; 32])),
            transfer: Some(rogatory_proto::message::TransferMode::Send),
            ..Default::default()
        },
        outgoing: true,
        state: EvidenceState::Staged,
        peer: None,
        manifest: None,
        blob: None,
        wrapped_key: None,
        chunks_done: 0,
        problem: None,
        added_at: 1_790_000_200,
        added_by: Some("evidence-officer-9".into()),
        announced_at: None,
        reports: Vec::new(),
    }
}

pub(crate) fn received() -> rogatory_node::store::Received {
    rogatory_node::store::Received {
        case_id: case(),
        from: AgencyId::new("XB.DOJ-CA").unwrap(),
        message_type: "mla-status".into(),
        message_id: "01a22522-d4f2-73cd-be4f-be9050503899".parse().unwrap(),
        sent_at: 1_790_000_300,
        received_at: 1_790_000_301,
        sequence: 1,
        emergency: false,
        arrival: 0,
    }
}

fn expected_json(dir: &Path) -> Value {
    let (keys, _) = fixed_agency();
    let store = Store::open(dir)
        .unwrap()
        .with_record_keys(RecordKeys::new(&keys));
    let list: Vec<String> = store
        .entries(&case())
        .unwrap()
        .iter()
        .map(|(_, b)| hex::encode(b))
        .collect();
    let checkpoints: Vec<String> = [1u64, 3, 4, 5]
        .iter()
        .map(|s| String::from_utf8(store.checkpoint(&case(), Some(*s)).unwrap()).unwrap())
        .collect();
    let record = store.case_record(&case()).unwrap().unwrap();
    let evidence = store.evidence(&case()).unwrap();
    let inbox = store.received().unwrap();
    assert_eq!(record, case_record());
    assert_eq!(evidence, [evidence_record()]);
    assert_eq!(inbox, [([0x44; 32], received())]);
    json!({
        "description": "Store format 2: audit entries (CBOR, hex) and signed checkpoints as stored for the fixed agency of tests/it/store.rs, beside one sealed case record, evidence record and inbox record (random nonces: checked by opening them with the fixed keys). ROGATORY_WRITE_FIXTURES=1 rewrites this fixture (only after a deliberate, versioned format change).",
        "case": case().to_string(),
        "entries": list,
        "checkpoints": checkpoints,
    })
}

#[test]
fn stored_format_known_answer() {
    let dir = fixture_dir();
    if std::env::var_os("ROGATORY_WRITE_FIXTURES").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        build(&dir);
        let v = expected_json(&dir);
        std::fs::write(
            dir.join("expected.json"),
            serde_json::to_string_pretty(&v).unwrap() + "\n",
        )
        .unwrap();
    }
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();

    // 1. A store written by format 2 (committed file) still reads, verifies and proves.
    let old = tempfile::tempdir().unwrap();
    for f in ["card.cose", "rogatory.redb"] {
        std::fs::copy(dir.join(f), old.path().join(f)).unwrap();
    }
    assert_eq!(
        expected_json(old.path()),
        expected,
        "the committed store reads back as pinned"
    );
    let r = rogatory(old.path(), &["audit", "verify-store", "--data-dir", "."]).ok();
    assert!(
        r.stdout.contains(
            "5 entries and 4 signed checkpoints re-derived and verified; 3 sealed records checked"
        ),
        "{}",
        r.stdout
    );
    // Nothing of the records is in clear in the file.
    let file = std::fs::read(old.path().join("rogatory.redb")).unwrap();
    for clear in [
        "the suspect's account",
        "subscriber records",
        "evidence-officer-9",
        "mla-status",
    ] {
        assert!(
            !file.windows(clear.len()).any(|w| w == clear.as_bytes()),
            "{clear} is in clear in the store"
        );
    }
    // A store of format 1 (committed: records in clear) is refused, and left as it was.
    let v1 = tempfile::tempdir().unwrap();
    let v1_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/store-v1");
    for f in ["card.cose", "rogatory.redb"] {
        std::fs::copy(v1_dir.join(f), v1.path().join(f)).unwrap();
    }
    let before = std::fs::read(v1.path().join("rogatory.redb")).unwrap();
    let r = rogatory(v1.path(), &["audit", "verify-store", "--data-dir", "."]).failed();
    assert!(r.stderr.contains("format version 1"), "{}", r.stderr);
    assert_eq!(
        std::fs::read(v1.path().join("rogatory.redb")).unwrap(),
        before
    );

    // 2. Today's code writes exactly the pinned bytes.
    let fresh = tempfile::tempdir().unwrap();
    build(fresh.path());
    assert_eq!(
        expected_json(fresh.path()),
        expected,
        "the encoders still write format 2"
    );
}

/// A data directory with a real log, made with the CLI as an operator would.
/// The store of format 1 committed in `fixtures/store-v1` (real bytes that release wrote) is
/// moved to this release's format by `rogatory migrate`, after a backup, and verifies; the
/// backup restores to the format-1 store, which says to migrate.
#[test]
fn a_format_1_store_is_migrated_after_a_backup_and_verifies() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("node");
    std::fs::create_dir(&d).unwrap();
    let v1_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/store-v1");
    for f in ["card.cose", "rogatory.redb"] {
        std::fs::copy(v1_dir.join(f), d.join(f)).unwrap();
    }
    // The fixture's agency keys (in clear, as `keygen` leaves them), to seal what format 2 seals.
    std::fs::write(
        d.join(rogatory_node::keydir::SECRET_KEYS_FILE),
        fixed_agency().0.to_cose_key_set().as_slice(),
    )
    .unwrap();
    std::fs::set_permissions(
        d.join(rogatory_node::keydir::SECRET_KEYS_FILE),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(v1_dir.join("expected.json")).unwrap())
            .unwrap();
    let backup = t.path().join("before.backup");
    let r = rogatory(
        t.path(),
        &[
            "migrate",
            "--data-dir",
            "node",
            "--backup",
            backup.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(r.stdout.contains("from format 1 to 2"), "{}", r.stdout);
    assert!(r.stdout.contains("Store intact"), "{}", r.stdout);
    assert!(backup.exists());
    // The log reads as format 1 wrote it: the same entries, the same checkpoints.
    let case = expected["case"].as_str().unwrap();
    let log: Value = serde_json::from_str(
        &rogatory(
            t.path(),
            &["audit", "log", case, "--json", "--data-dir", "node"],
        )
        .ok()
        .stdout,
    )
    .unwrap();
    assert_eq!(
        log.as_array().unwrap().len(),
        expected["entries"].as_array().unwrap().len()
    );
    let r = rogatory(t.path(), &["migrate", "--data-dir", "node"]).ok();
    assert!(r.stdout.contains("nothing to migrate"), "{}", r.stdout);
    // The backup taken first holds the format-1 store, and says so when restored.
    let r = rogatory(
        t.path(),
        &["restore", backup.to_str().unwrap(), "--data-dir", "back"],
    )
    .ok();
    assert!(r.stdout.contains("run `rogatory migrate"), "{}", r.stdout);
    assert_eq!(
        std::fs::read(t.path().join("back/rogatory.redb")).unwrap(),
        std::fs::read(v1_dir.join("rogatory.redb")).unwrap()
    );
}

fn logged_dir() -> (tempfile::TempDir, String) {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    for (id, dir) in [("XA.POLICE", "xa"), ("XB.POLICE", "xb")] {
        rogatory(d, &["keygen", "--agency", id, "--name", id, "--out", dir]).ok();
    }
    let case = case().to_string();
    let body = rogatory_tests::spec_dir()
        .join("examples/liaison.json")
        .display()
        .to_string();
    let mut previous: Option<String> = None;
    for i in 1..=4u64 {
        let out = format!("m{i}.cose");
        let seq = i.to_string();
        let mut args = vec![
            "envelope",
            "seal",
            "--key",
            "xa",
            "--to",
            "xb",
            "--case",
            &case,
            "--type",
            "liaison",
            "--body",
            &body,
            "--out",
            &out,
            "--sequence",
            &seq,
        ];
        let prev;
        if let Some(p) = &previous {
            prev = p.clone();
            args.extend(["--previous", &prev]);
        }
        rogatory(d, &args).ok();
        previous = Some(hex::encode(
            Sha256Digest::of(&std::fs::read(d.join(&out)).unwrap()).0,
        ));
    }
    (t, case)
}

fn verify_store(d: &Path) -> rogatory_tests::Run {
    rogatory(d, &["audit", "verify-store", "--data-dir", "xa"])
}

#[test]
fn tampering_through_redb_is_detected_and_named() {
    let (t, case) = logged_dir();
    let d = t.path();
    let r = verify_store(d).ok();
    assert!(r.stdout.contains("Store intact"), "{}", r.stdout);
    let check = |copy: &tempfile::TempDir| {
        rogatory(copy.path(), &["audit", "verify-store", "--data-dir", "."])
            .failed()
            .stdout
    };

    // Rewrite entry 1 (a valid entry for another envelope), as an insider would.
    let out = check(&tampered(d, |t, k| {
        let bytes = t
            .get((&k, 1u64, ENTRY, 0u64))
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        let mut e = AuditEntry::from_cbor(&bytes).unwrap();
        e.envelope_id = Some(Sha256Digest::of(b"an envelope that was never sent"));
        t.insert((&k, 1u64, ENTRY, 0u64), e.to_cbor().unwrap().as_slice())
            .unwrap();
    }));
    assert!(out.contains(&format!("case {case}, entry 1:")), "{out}");
    assert!(out.contains("changed after it was logged"), "{out}");
    assert!(
        !out.contains("entry 0:"),
        "untouched entries are not blamed:\n{out}"
    );

    // Delete the last entry.
    let out = check(&tampered(d, |t, k| {
        t.remove((&k, 3u64, ENTRY, 0u64)).unwrap();
    }));
    assert!(
        out.contains(&format!("case {case}, entry 3: the entry is missing")),
        "{out}"
    );

    // Remove the latest checkpoint, leaving the entries: a rollback.
    let out = check(&tampered(d, |t, k| {
        t.remove((&k, 3u64, CHECKPOINT, 0u64)).unwrap();
    }));
    assert!(out.contains("rolled back"), "{out}");

    // Swap two entries (reorder).
    let out = check(&tampered(d, |t, k| {
        let a = t
            .get((&k, 0u64, ENTRY, 0u64))
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        let b = t
            .get((&k, 2u64, ENTRY, 0u64))
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        t.insert((&k, 0u64, ENTRY, 0u64), b.as_slice()).unwrap();
        t.insert((&k, 2u64, ENTRY, 0u64), a.as_slice()).unwrap();
    }));
    assert!(
        out.contains("entry 0:") && out.contains("entry 2:"),
        "{out}"
    );

    // The original is still intact.
    verify_store(d).ok();
}

#[test]
fn proofs_from_the_cli_verify_offline_and_forgeries_do_not() {
    let (t, case) = logged_dir();
    let d = t.path();
    let card: Value =
        serde_json::from_str(&rogatory(d, &["card", "show", "xa", "--json"]).ok().stdout).unwrap();
    let vkey = card["note_verifier_key"].as_str().unwrap().to_string();
    for (index, size) in [("0", None), ("2", Some("3")), ("3", None)] {
        let mut args = vec![
            "audit",
            "prove",
            &case,
            "--data-dir",
            "xa",
            "--index",
            index,
        ];
        if let Some(s) = size {
            args.extend(["--size", s]);
        }
        let proof = rogatory(d, &args).ok().stdout;
        std::fs::write(d.join("p.tlog-proof"), &proof).unwrap();
        let r = rogatory(
            d,
            &["audit", "verify-proof", "p.tlog-proof", "--vkey", &vkey],
        )
        .ok();
        assert!(r.stdout.contains("Proof VERIFIED"), "{}", r.stdout);

        // Another agency's key, a changed entry, a changed checkpoint: all refused.
        let other: Value =
            serde_json::from_str(&rogatory(d, &["card", "show", "xb", "--json"]).ok().stdout)
                .unwrap();
        rogatory(
            d,
            &[
                "audit",
                "verify-proof",
                "p.tlog-proof",
                "--vkey",
                other["note_verifier_key"].as_str().unwrap(),
            ],
        )
        .failed();
        let forged = proof.replacen("\nindex ", "\nindex 1", 1);
        std::fs::write(d.join("f.tlog-proof"), forged).unwrap();
        rogatory(
            d,
            &["audit", "verify-proof", "f.tlog-proof", "--vkey", &vkey],
        )
        .failed();
        let lines: Vec<&str> = proof.lines().collect();
        let size_line = lines
            .iter()
            .position(|l| l.starts_with("rogatory.XA.POLICE/case/"))
            .unwrap()
            + 1;
        let mut changed: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        changed[size_line] = "99".into();
        std::fs::write(d.join("g.tlog-proof"), changed.join("\n") + "\n").unwrap();
        rogatory(
            d,
            &["audit", "verify-proof", "g.tlog-proof", "--vkey", &vkey],
        )
        .failed();
    }
    // The checkpoint is printed byte for byte as stored, and envelopes carry it.
    let cp = rogatory(
        d,
        &[
            "audit",
            "checkpoint",
            &case,
            "--data-dir",
            "xa",
            "--size",
            "3",
        ],
    )
    .ok()
    .stdout;
    let inspected: Value = serde_json::from_str(
        &rogatory(d, &["envelope", "inspect", "m4.cose", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        inspected["checkpoint"].as_str().unwrap(),
        cp,
        "the 4th envelope carries the checkpoint of size 3"
    );
    let log: Value = serde_json::from_str(
        &rogatory(d, &["audit", "log", &case, "--data-dir", "xa", "--json"])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(log.as_array().unwrap().len(), 4);
    assert_eq!(log[3]["event"], "envelope-sent");
    // A consistency proof between sizes.
    let c = rogatory(
        d,
        &[
            "audit",
            "consistency",
            &case,
            "--data-dir",
            "xa",
            "--from",
            "2",
        ],
    )
    .ok()
    .stdout;
    assert!(c.starts_with("old 2\n"), "{c}");
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn appends_survive_sigkill_and_nothing_reported_durable_is_lost() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let (_, card) = fixed_agency();
    std::fs::write(dir.path().join("card.cose"), card.as_bytes()).unwrap();
    let mut durable = 0u64;
    // A deterministic spread of kill points, from almost immediately to well into the run.
    for (round, lines_before_kill) in [1usize, 7, 23, 2, 40, 11, 5, 60].into_iter().enumerate() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rogatory-store-stress"))
            .arg(dir.path())
            .arg("100000")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for _ in 0..lines_before_kill {
            let line = lines.next().unwrap().unwrap();
            durable = line.strip_prefix("appended ").unwrap().parse().unwrap();
        }
        child.kill().unwrap(); // SIGKILL: no destructor, no flush, no clean shutdown
        child.wait().unwrap();
        // Whatever was reported appended must be there; the store must verify.
        let store = Store::open(dir.path()).unwrap();
        let size = store.size(&case()).unwrap();
        assert!(
            size >= durable,
            "round {round}: {durable} reported durable, {size} stored"
        );
        let vkey =
            rogatory_proto::audit::note::NoteVerifier::parse(&card.note_verifier_key()).unwrap();
        let report = store.verify(&vkey).unwrap();
        assert!(
            report.findings.is_empty(),
            "round {round}: {:?}",
            report.findings
        );
        assert_eq!(report.entries, size);
        durable = size;
    }
    assert!(durable > 100, "the run made progress: {durable}");
}

/// Seals one more envelope of the case from a (possibly altered) copy of XA's data directory:
/// an append to its log.
fn extend(d: &Path, copy: &Path, case: &str, body: &str) -> rogatory_tests::Run {
    std::fs::copy(d.join("xb/card.cose"), copy.join("xb-card.cose")).unwrap();
    let previous = "00".repeat(32);
    rogatory(
        copy,
        &[
            "envelope",
            "seal",
            "--key",
            ".",
            "--to",
            "xb-card.cose",
            "--case",
            case,
            "--type",
            "liaison",
            "--body",
            body,
            "--out",
            "more.cose",
            "--sequence",
            "5",
            "--previous",
            &previous,
        ],
    )
}

type LogTable<'t> = redb::Table<'t, (&'static [u8; 16], u64, u8, u64), &'static [u8]>;
type Edit = Box<dyn FnOnce(&mut LogTable<'_>, [u8; 16])>;

/// Opens a copy of the CLI-made store for an insider's edit through redb.
fn tampered(d: &Path, edit: impl FnOnce(&mut LogTable<'_>, [u8; 16])) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&d.join("xa"), copy.path());
    let key = *case().as_bytes();
    {
        let db = Database::open(copy.path().join("rogatory.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(LOG).unwrap();
            edit(&mut t, key);
        }
        tx.commit().unwrap();
    }
    copy
}

const NODE: u8 = 1;

#[test]
fn forged_records_are_reported_and_never_extended() {
    let (t, case) = logged_dir();
    let d = t.path();
    let body = rogatory_tests::spec_dir()
        .join("examples/liaison.json")
        .display()
        .to_string();
    // Cases: (what the insider does, what verify-store must say)
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "a node at a huge leaf",
            Box::new(|t, k| {
                t.insert((&k, (1u64 << 40) - 1, NODE, 40u64), [7u8; 32].as_slice())
                    .unwrap();
            }),
            "lies beyond the entries",
        ),
        (
            "a record at the last possible leaf",
            Box::new(|t, k| {
                t.insert((&k, u64::MAX, CHECKPOINT, 0u64), b"x".as_slice())
                    .unwrap();
            }),
            "does not verify",
        ),
        (
            "a copy of an entry under another key",
            Box::new(|t, k| {
                let e = t
                    .get((&k, 3u64, ENTRY, 0u64))
                    .unwrap()
                    .unwrap()
                    .value()
                    .to_vec();
                t.insert((&k, 3u64, ENTRY, 1u64), e.as_slice()).unwrap();
            }),
            "unknown kind or key",
        ),
        (
            "an interior subtree hash",
            Box::new(|t, k| {
                t.insert((&k, 1u64, NODE, 1u64), [9u8; 32].as_slice())
                    .unwrap();
            }),
            "subtree hash (1, 0) over entries 0 to 1 differs",
        ),
        (
            "an entry rewritten with its leaf hash",
            Box::new(|t, k| {
                let bytes = t
                    .get((&k, 1u64, ENTRY, 0u64))
                    .unwrap()
                    .unwrap()
                    .value()
                    .to_vec();
                let mut e = AuditEntry::from_cbor(&bytes).unwrap();
                e.envelope_id = Some(Sha256Digest::of(b"forged"));
                let forged = e.to_cbor().unwrap();
                t.insert((&k, 1u64, ENTRY, 0u64), forged.as_slice())
                    .unwrap();
                t.insert(
                    (&k, 1u64, NODE, 0u64),
                    rogatory_proto::audit::merkle::leaf_hash(&forged).as_slice(),
                )
                .unwrap();
            }),
            "no longer hash to the root",
        ),
        (
            "the whole log deleted",
            Box::new(|t, k| {
                let keys: Vec<(u64, u8, u64)> = t
                    .range((&k, 0u64, 0u8, 0u64)..=(&k, u64::MAX, u8::MAX, u64::MAX))
                    .unwrap()
                    .map(|r| {
                        let (a, _) = r.unwrap();
                        let v = a.value();
                        (v.1, v.2, v.3)
                    })
                    .collect();
                for (l, kind, x) in keys {
                    t.remove((&k, l, kind, x)).unwrap();
                }
            }),
            "log is empty: it was deleted",
        ),
    ];
    for (what, edit, expect) in cases {
        let copy = tampered(d, edit);
        let r = rogatory(copy.path(), &["audit", "verify-store", "--data-dir", "."]).failed();
        assert!(r.stdout.contains(expect), "{what}: {}", r.stdout);
        // The node refuses to extend (and re-sign) the altered log.
        let r = extend(d, copy.path(), &case, &body);
        // Records that change the log's tip make the node refuse to extend it; others leave the
        // signed tree intact (the next root comes from the verified frontier) and stay reported.
        if what.starts_with("a node at") || what.starts_with("a record at") {
            assert_ne!(r.code, 0, "{what}: the altered log was extended");
            assert!(!copy.path().join("more.cose").exists());
        }
    }
    // Laundering: remove the last checkpoint, then append. The append is refused, not re-signed.
    let copy = tampered(d, |t, k| {
        t.remove((&k, 3u64, CHECKPOINT, 0u64)).unwrap();
    });
    let r = extend(d, copy.path(), &case, &body).failed();
    assert!(
        r.stderr.contains("not a checkpoint") || r.stderr.contains("does not match"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_edited_or_moved_sealed_record_is_found_by_verify_store_with_the_public_key_alone() {
    const CASE_RECORDS: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("case-records");
    const EVIDENCE: TableDefinition<(&[u8; 16], &str), &[u8]> = TableDefinition::new("evidence");
    let (keys, card) = fixed_agency();
    let vkey = card.note_verifier_key();
    let copy = || {
        let d = tempfile::tempdir().unwrap();
        for f in ["card.cose", "rogatory.redb"] {
            std::fs::copy(fixture_dir().join(f), d.path().join(f)).unwrap();
        }
        d
    };
    let verify = |d: &Path| {
        rogatory(
            d,
            &["audit", "verify-store", "--data-dir", ".", "--vkey", &vkey],
        )
    };
    // One byte of the case record's ciphertext changed, as an insider with the file would.
    let edited = copy();
    {
        let db = Database::open(edited.path().join("rogatory.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(CASE_RECORDS).unwrap();
            let mut v = t.get(case().as_bytes()).unwrap().unwrap().value().to_vec();
            v[20] ^= 0x01;
            t.insert(case().as_bytes(), v.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    let out = verify(edited.path()).failed().stdout;
    assert!(
        out.contains(&format!(
            "case {}: the case-records record (case {}) was altered",
            case(),
            case()
        )),
        "{out}"
    );
    // The node itself no longer opens it.
    let store = Store::open(edited.path())
        .unwrap()
        .with_record_keys(RecordKeys::new(&keys));
    let e = store.case_record(&case()).unwrap_err().to_string();
    assert!(e.contains("does not open"), "{e}");
    // An evidence record moved to another item's key.
    let moved = copy();
    {
        let db = Database::open(moved.path().join("rogatory.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(EVIDENCE).unwrap();
            let v = t
                .get((case().as_bytes(), "E1"))
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            t.insert((case().as_bytes(), "E2"), v.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    let out = verify(moved.path()).failed().stdout;
    assert!(out.contains("item E2) was altered"), "{out}");
    assert!(!out.contains("item E1) was altered"), "{out}");
    // The untouched fixture verifies.
    let fine = copy();
    assert!(
        verify(fine.path())
            .ok()
            .stdout
            .contains("3 sealed records checked")
    );
}

#[test]
fn a_consistency_proof_from_the_cli_verifies_offline_and_a_changed_bit_does_not() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (t, case) = logged_dir();
    let d = t.path();
    let card: Value =
        serde_json::from_str(&rogatory(d, &["card", "show", "xa", "--json"]).ok().stdout).unwrap();
    let vkey = card["note_verifier_key"].as_str().unwrap().to_string();
    let checkpoint = |size: &str| {
        rogatory(
            d,
            &[
                "audit",
                "checkpoint",
                &case,
                "--size",
                size,
                "--data-dir",
                "xa",
            ],
        )
        .ok()
        .stdout
    };
    std::fs::write(d.join("old2"), checkpoint("2")).unwrap();
    std::fs::write(d.join("old3"), checkpoint("3")).unwrap();
    let proof = rogatory(
        d,
        &[
            "audit",
            "consistency",
            &case,
            "--from",
            "2",
            "--data-dir",
            "xa",
        ],
    )
    .ok()
    .stdout;
    assert!(proof.starts_with("old 2\n"), "{proof}");
    std::fs::write(d.join("proof"), &proof).unwrap();
    let verify = |proof: &str, old: &str, vkey: &str| {
        rogatory(
            d,
            &[
                "audit",
                "verify-consistency",
                proof,
                "--old",
                old,
                "--vkey",
                vkey,
            ],
        )
    };
    let r = verify("proof", "old2", &vkey).ok();
    assert!(
        r.stdout.contains("only grew from size 2 to size 4"),
        "{}",
        r.stdout
    );

    // One bit changed anywhere in a proof hash: refused.
    let lines: Vec<&str> = proof.lines().collect();
    let hashes: Vec<usize> = (1..lines.len())
        .take_while(|&i| !lines[i].is_empty())
        .collect();
    assert!(
        !hashes.is_empty(),
        "a proof from 2 to 4 has hashes: {proof}"
    );
    for &i in &hashes {
        for bit in [0usize, 7, 100, 255] {
            let mut h = b64.decode(lines[i]).unwrap();
            h[bit / 8] ^= 1 << (bit % 8);
            let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            changed[i] = b64.encode(&h);
            std::fs::write(d.join("changed"), changed.join("\n") + "\n").unwrap();
            let r = verify("changed", "old2", &vkey).failed();
            assert!(r.stderr.contains("did not only grow"), "{}", r.stderr);
        }
    }
    // Against a checkpoint of another size, or with another agency's key: refused.
    verify("proof", "old3", &vkey).failed();
    let other: Value =
        serde_json::from_str(&rogatory(d, &["card", "show", "xb", "--json"]).ok().stdout).unwrap();
    verify(
        "proof",
        "old2",
        other["note_verifier_key"].as_str().unwrap(),
    )
    .failed();
}

/// A batch signs each case's checkpoint once, when it commits, over everything appended to the
/// case in it; `append_signed` signs at once (a receipt carries that checkpoint), and the batch
/// still signs what is appended after. Case records are sealed once, at commit. The store
/// verifies, and a batch dropped without commit leaves nothing.
#[test]
fn a_batch_signs_each_case_s_checkpoint_once_at_commit() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let (keys, card) = fixed_agency();
    std::fs::write(dir.join("card.cose"), card.as_bytes()).unwrap();
    let store = Store::open(dir)
        .unwrap()
        .with_record_keys(RecordKeys::new(&keys));
    let signer = LogSigner {
        agency: card.id(),
        key: &keys.signing,
    };
    let (a, b) = (case(), CaseId::generate());
    let mut all = entries(&card);
    let mut other = entries(&card);
    for e in &mut other {
        e.case_id = b;
    }
    // The first batch: A gets 1 + 1 entries, then one signed at once, then 1; B gets 2.
    let mut batch = store.batch().unwrap();
    batch.append(&signer, &a, &mut all[0..1]).unwrap();
    assert_eq!(batch.checkpoint(&a).unwrap(), None, "nothing signed yet");
    assert!(batch.has_log(&a).unwrap());
    batch.append(&signer, &a, &mut all[1..2]).unwrap();
    batch.append(&signer, &b, &mut other[0..2]).unwrap();
    let note = batch.append_signed(&signer, &a, &mut all[2..3]).unwrap();
    assert_eq!(batch.checkpoint(&a).unwrap().as_deref(), Some(&note[..]));
    batch.append(&signer, &a, &mut all[3..4]).unwrap();
    assert_eq!(
        batch.checkpoint(&a).unwrap().as_deref(),
        Some(&note[..]),
        "the latest signed checkpoint, until the batch commits"
    );
    let mut record = case_record();
    record.case_id = a;
    batch.put_case_record(&record).unwrap();
    record.updated_at += 60;
    batch.put_case_record(&record).unwrap();
    assert_eq!(batch.case_record(&a).unwrap().as_ref(), Some(&record));
    batch.commit().unwrap();
    assert_eq!((store.size(&a).unwrap(), store.size(&b).unwrap()), (4, 2));
    let sizes = |c: &CaseId, n: u64| {
        (1..=n)
            .filter(|s| store.checkpoint(c, Some(*s)).is_ok())
            .collect::<Vec<_>>()
    };
    assert_eq!(sizes(&a, 4), [3, 4], "one at once, one at commit");
    assert_eq!(sizes(&b, 2), [2]);
    assert_eq!(store.entries(&a).unwrap().len(), 4);
    assert_eq!(store.case_record(&a).unwrap().as_ref(), Some(&record));
    // A batch dropped without its commit leaves nothing behind.
    let mut batch = store.batch().unwrap();
    batch.append(&signer, &a, &mut all[4..5]).unwrap();
    drop(batch);
    assert_eq!(store.size(&a).unwrap(), 4);
    // The next batch extends what was signed.
    store.append(&signer, &a, &mut all[4..5]).unwrap();
    drop(store);
    let r = rogatory(dir, &["audit", "verify-store", "--data-dir", "."]).ok();
    assert!(
        r.stdout
            .contains("7 entries and 4 signed checkpoints re-derived and verified"),
        "{}",
        r.stdout
    );
}
