//! The offline CLI: keys, cards, envelopes and request validation, as an operator uses them.

use std::path::Path;

use rogatory_tests::{rogatory, spec_dir};
use serde_json::Value;

fn keygen(dir: &Path, id: &str, out: &str) {
    rogatory(
        dir,
        &[
            "keygen",
            "--agency",
            id,
            "--name",
            &format!("Agency {id}"),
            "--out",
            out,
        ],
    )
    .ok();
}

fn example(name: &str) -> String {
    spec_dir().join("examples").join(name).display().to_string()
}

#[test]
fn keygen_writes_private_keys_and_refuses_to_overwrite() {
    let t = tempfile::tempdir().unwrap();
    keygen(t.path(), "XA.MOJ-CA", "xa");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(t.path().join("xa/secret-keys.cose"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let before = std::fs::read(t.path().join("xa/secret-keys.cose")).unwrap();
    let r = rogatory(
        t.path(),
        &[
            "keygen",
            "--agency",
            "XA.MOJ-CA",
            "--name",
            "x",
            "--out",
            "xa",
        ],
    )
    .failed();
    assert!(r.stderr.contains("refusing to overwrite"), "{}", r.stderr);
    assert_eq!(
        std::fs::read(t.path().join("xa/secret-keys.cose")).unwrap(),
        before
    );

    let r = rogatory(
        t.path(),
        &[
            "keygen",
            "--agency",
            "france.dacg",
            "--name",
            "x",
            "--out",
            "bad",
        ],
    )
    .failed();
    assert!(r.stderr.contains("not an agency id"), "{}", r.stderr);
}

#[test]
fn card_show_prints_fingerprint_and_verifier_key() {
    let t = tempfile::tempdir().unwrap();
    keygen(t.path(), "XA.MOJ-CA", "xa");
    let r = rogatory(t.path(), &["card", "show", "xa/card.cose", "--json"]).ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["id"], "XA.MOJ-CA");
    assert_eq!(v["fingerprint"].as_str().unwrap().len(), 39);
    assert!(
        v["note_verifier_key"]
            .as_str()
            .unwrap()
            .starts_with("rogatory.XA.MOJ-CA+")
    );
    let text = rogatory(t.path(), &["card", "show", "xa/card.cose"])
        .ok()
        .stdout;
    assert!(text.contains("signature OK") && text.contains(v["fingerprint"].as_str().unwrap()));

    // A tampered card is refused.
    let mut card = std::fs::read(t.path().join("xa/card.cose")).unwrap();
    let n = card.len() / 2;
    card[n] ^= 1;
    std::fs::write(t.path().join("bad.cose"), card).unwrap();
    rogatory(t.path(), &["card", "show", "bad.cose"]).failed();
}

#[test]
fn seal_open_round_trip_and_a_third_agency_is_not_a_recipient() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "XA.MOJ-CA", "xa");
    keygen(d, "XB.DOJ-CA", "xb");
    keygen(d, "XC.POLICE", "xc");
    let body = example("mla-request.json");
    rogatory(
        d,
        &[
            "envelope",
            "seal",
            "--key",
            "xa",
            "--to",
            "xb/card.cose",
            "--case",
            "new",
            "--type",
            "mla-request",
            "--body",
            &body,
            "--out",
            "req.cose",
        ],
    )
    .ok();

    let r = rogatory(
        d,
        &[
            "envelope",
            "open",
            "--key",
            "xb",
            "--trust",
            "xa/card.cose",
            "req.cose",
        ],
    )
    .ok();
    let opened: Value = serde_json::from_str(&r.stdout).unwrap();
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&body).unwrap()).unwrap();
    assert_eq!(
        opened["message"], original,
        "the recipient reads the original request"
    );
    assert_eq!(opened["from"], "XA.MOJ-CA");
    assert_eq!(opened["message_type"], "mla-request");

    let r = rogatory(
        d,
        &[
            "envelope",
            "open",
            "--key",
            "xc",
            "--trust",
            "xa/card.cose",
            "req.cose",
        ],
    )
    .failed();
    assert!(r.stderr.contains("not a recipient"), "{}", r.stderr);

    // Unknown sender: the recipient trusts only another agency.
    let r = rogatory(
        d,
        &[
            "envelope",
            "open",
            "--key",
            "xb",
            "--trust",
            "xc/card.cose",
            "req.cose",
        ],
    )
    .failed();
    assert!(r.stderr.contains("unknown sender"), "{}", r.stderr);

    // Inspect without and with the sender's card.
    let r = rogatory(d, &["envelope", "inspect", "req.cose", "--json"]).ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["origin_signature"], "not checked");
    assert_eq!(v["envelope_id"], opened["envelope_id"]);
    let r = rogatory(
        d,
        &["envelope", "inspect", "--trust", "xa/card.cose", "req.cose"],
    )
    .ok();
    assert!(r.stdout.contains("signature VALID"), "{}", r.stdout);
    let r = rogatory(
        d,
        &["envelope", "inspect", "--trust", "xc/card.cose", "req.cose"],
    )
    .failed();
    assert!(r.stdout.contains("INVALID"), "{}", r.stdout);
}

#[test]
fn several_addressees_get_one_file_each() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "XA.POLICE", "xa");
    keygen(d, "XB.POLICE", "xb");
    keygen(d, "XC.POLICE", "xc");
    let case = "01a22522-d4f2-73cd-be4f-be9050503898";
    rogatory(
        d,
        &[
            "envelope",
            "seal",
            "--key",
            "xa",
            "--to",
            "xb",
            "--to",
            "xc/card.cose",
            "--case",
            case,
            "--type",
            "liaison",
            "--body",
            &example("liaison.json"),
            "--out",
            "outbox",
        ],
    )
    .ok();
    for (who, file) in [("xb", "XB.POLICE.cose"), ("xc", "XC.POLICE.cose")] {
        let path = format!("outbox/{file}");
        let r = rogatory(
            d,
            &["envelope", "open", "--key", who, "--trust", "xa", &path],
        )
        .ok();
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["case_id"], case);
        assert_eq!(
            v["recipients"],
            serde_json::json!(["XB.POLICE", "XC.POLICE"])
        );
    }
    // XB cannot open XC's envelope.
    rogatory(
        d,
        &[
            "envelope",
            "open",
            "--key",
            "xb",
            "--trust",
            "xa",
            "outbox/XC.POLICE.cose",
        ],
    )
    .failed();
}

#[test]
fn damaged_envelopes_are_refused_with_a_clear_error() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "XA.POLICE", "xa");
    keygen(d, "XB.POLICE", "xb");
    rogatory(
        d,
        &[
            "envelope",
            "seal",
            "--key",
            "xa",
            "--to",
            "xb",
            "--case",
            "new",
            "--type",
            "liaison",
            "--body",
            &example("liaison.json"),
            "--out",
            "m.cose",
        ],
    )
    .ok();
    let good = std::fs::read(d.join("m.cose")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", good[..good.len() / 2].to_vec(), "malformed"),
        ("garbage", b"this is not CBOR".to_vec(), "malformed"),
        ("empty", Vec::new(), "malformed"),
        (
            "flipped",
            {
                let mut b = good.clone();
                let n = b.len() - 70;
                b[n] ^= 0x40;
                b
            },
            "reason code",
        ),
    ];
    for (name, bytes, expect) in cases {
        std::fs::write(d.join(name), bytes).unwrap();
        let r = rogatory(
            d,
            &["envelope", "open", "--key", "xb", "--trust", "xa", name],
        )
        .failed();
        assert!(r.stderr.contains(expect), "{name}: {}", r.stderr);
    }
    // Oversized for the limit given.
    let r = rogatory(
        d,
        &[
            "envelope",
            "open",
            "--key",
            "xb",
            "--trust",
            "xa",
            "m.cose",
            "--max-bytes",
            "100",
        ],
    )
    .failed();
    assert!(r.stderr.contains("more than the limit"), "{}", r.stderr);
}

#[test]
fn request_validate_lists_everything_missing() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    rogatory(d, &["request", "validate", &example("mla-request.json")]).ok();
    for kind in [
        "mla-status",
        "evidence-manifest",
        "extradition-status",
        "liaison",
        "preservation-request",
    ] {
        rogatory(
            d,
            &[
                "request",
                "validate",
                "--type",
                kind,
                &example(&format!("{kind}.json")),
            ],
        )
        .ok();
    }

    std::fs::write(
        d.join("draft.json"),
        r#"{ "requesting_authority": { "name": "Central Authority of XA", "country": "XA" },
             "assistance": [ { "kind": "subscriber-data", "description": "Subscriber data" } ],
             "sumary_of_facts": "typo" }"#,
    )
    .unwrap();
    let r = rogatory(d, &["request", "validate", "draft.json"]).failed();
    assert!(
        r.stdout.contains("sumary_of_facts"),
        "the misspelt field is named:\n{}",
        r.stdout
    );

    std::fs::write(
        d.join("draft.json"),
        r#"{ "requesting_authority": { "name": "Central Authority of XA", "country": "XA" },
             "assistance": [ { "kind": "subscriber-data", "description": "Subscriber data" } ] }"#,
    )
    .unwrap();
    let r = rogatory(d, &["request", "validate", "draft.json", "--json"]).failed();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let fields: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    for want in [
        "proceedings.subject",
        "summary_of_facts",
        "purpose",
        "assistance[0].targets",
        "offences",
        "legal_basis.kind",
    ] {
        assert!(fields.contains(&want), "{want} missing from {fields:?}");
    }
    assert!(
        !fields.contains(&"requesting_authority.name"),
        "present fields are not reported"
    );
    let text = rogatory(d, &["request", "validate", "draft.json"])
        .failed()
        .stdout;
    assert!(
        text.contains("the summary of the relevant facts is missing"),
        "{text}"
    );

    // Sealing an incomplete request is refused with the same list, and writes nothing.
    keygen(d, "XA.MOJ-CA", "xa");
    keygen(d, "XB.DOJ-CA", "xb");
    let r = rogatory(
        d,
        &[
            "envelope",
            "seal",
            "--key",
            "xa",
            "--to",
            "xb",
            "--case",
            "new",
            "--type",
            "mla-request",
            "--body",
            "draft.json",
            "--out",
            "x.cose",
        ],
    )
    .failed();
    assert!(r.stderr.contains("summary_of_facts"), "{}", r.stderr);
    assert!(!d.join("x.cose").exists());
}

#[test]
fn every_command_has_help() {
    let t = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["keygen", "--help"],
        &["card", "show", "--help"],
        &["envelope", "seal", "--help"],
        &["envelope", "open", "--help"],
        &["envelope", "inspect", "--help"],
        &["request", "validate", "--help"],
    ] {
        let r = rogatory(t.path(), args).ok();
        assert!(r.stdout.contains("Usage:"), "{args:?}");
    }
}

#[test]
fn seal_refuses_ambiguous_input_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "XA.POLICE", "xa");
    keygen(d, "XB.POLICE", "xb");
    keygen(d, "XC.POLICE", "xc");
    let body = example("liaison.json");
    let prev = "00".repeat(32);
    // A chain position names one addressee's chain; several addressees cannot share it.
    let r = rogatory(
        d,
        &[
            "envelope",
            "seal",
            "--key",
            "xa",
            "--to",
            "xb",
            "--to",
            "xc",
            "--case",
            "new",
            "--type",
            "liaison",
            "--body",
            &body,
            "--out",
            "out",
            "--sequence",
            "2",
            "--previous",
            &prev,
        ],
    )
    .failed();
    assert!(
        r.stderr.contains("seal for each addressee separately"),
        "{}",
        r.stderr
    );
    assert!(!d.join("out").exists());

    // An existing output for one addressee: nothing is written for the other either.
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::write(d.join("out/XC.POLICE.cose"), b"keep").unwrap();
    let r = rogatory(
        d,
        &[
            "envelope", "seal", "--key", "xa", "--to", "xb", "--to", "xc", "--case", "new",
            "--type", "liaison", "--body", &body, "--out", "out",
        ],
    )
    .failed();
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert!(!d.join("out/XB.POLICE.cose").exists());
    assert_eq!(
        std::fs::read(d.join("out/XC.POLICE.cose")).unwrap(),
        b"keep"
    );

    // Two cards for one agency among the trusted cards.
    keygen(d, "XA.POLICE", "xa2");
    rogatory(
        d,
        &[
            "envelope", "seal", "--key", "xa", "--to", "xb", "--case", "new", "--type", "liaison",
            "--body", &body, "--out", "m.cose",
        ],
    )
    .ok();
    let r = rogatory(
        d,
        &[
            "envelope", "open", "--key", "xb", "--trust", "xa2", "--trust", "xa", "m.cose",
        ],
    )
    .failed();
    assert!(
        r.stderr.contains("second card for XA.POLICE"),
        "{}",
        r.stderr
    );

    // A case id that is not a UUIDv7.
    let r = rogatory(
        d,
        &[
            "envelope",
            "seal",
            "--key",
            "xa",
            "--to",
            "xb",
            "--case",
            "6f1d2c3b-4a59-4e8f-9a0b-1c2d3e4f5a6b",
            "--type",
            "liaison",
            "--body",
            &body,
            "--out",
            "v4.cose",
        ],
    )
    .failed();
    assert!(r.stderr.contains("not a UUIDv7"), "{}", r.stderr);
}

#[test]
fn a_world_readable_secret_key_file_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "XA.POLICE", "xa");
    keygen(d, "XB.POLICE", "xb");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let p = d.join("xb/secret-keys.cose");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = rogatory(
            d,
            &[
                "envelope",
                "seal",
                "--key",
                "xb",
                "--to",
                "xa",
                "--case",
                "new",
                "--type",
                "liaison",
                "--body",
                &example("liaison.json"),
                "--out",
                "m.cose",
            ],
        )
        .failed();
        assert!(r.stderr.contains("readable by other users"), "{}", r.stderr);
    }
}
