//! The offline CLI: keys, cards, envelopes and request validation, as an operator uses them.

use std::path::Path;

use rogatory_tests::{Run, rogatory, spec_dir};
use serde_json::Value;

/// Runs `rogatory` with the words of `line` (no word contains a space), then `extra` (paths).
fn cmd(dir: &Path, line: &str, extra: &[&str]) -> Run {
    let mut args: Vec<&str> = line.split_whitespace().collect();
    args.extend_from_slice(extra);
    rogatory(dir, &args)
}

fn keygen(dir: &Path, id: &str, out: &str) {
    let name = format!("Agency {id}");
    cmd(
        dir,
        &format!("keygen --agency {id} --out {out} --name"),
        &[&name],
    )
    .ok();
}

fn example(name: &str) -> String {
    spec_dir().join("examples").join(name).display().to_string()
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn keygen_writes_private_keys_and_refuses_to_overwrite() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "XA.MOJ-CA", "xa");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("xa/secret-keys.cose"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let before = std::fs::read(d.join("xa/secret-keys.cose")).unwrap();
    let r = cmd(d, "keygen --agency XA.MOJ-CA --name x --out xa", &[]).failed();
    assert!(r.stderr.contains("refusing to overwrite"), "{}", r.stderr);
    assert_eq!(
        std::fs::read(d.join("xa/secret-keys.cose")).unwrap(),
        before
    );

    let r = cmd(d, "keygen --agency france.dacg --name x --out bad", &[]).failed();
    assert!(r.stderr.contains("not an agency id"), "{}", r.stderr);
    let r = cmd(
        d,
        "keygen --agency XA.X --name x --out bad --role judge",
        &[],
    )
    .failed();
    assert!(r.stderr.contains("not a role"), "{}", r.stderr);
    assert!(
        !d.join("bad").exists(),
        "nothing is created for a refused command"
    );
}

#[test]
fn card_show_prints_fingerprint_and_verifier_key() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "XA.MOJ-CA", "xa");
    let v = json(&cmd(d, "card show xa --json", &[]).ok());
    assert_eq!(v["id"], "XA.MOJ-CA");
    let fingerprint = v["fingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 39);
    assert!(
        v["note_verifier_key"]
            .as_str()
            .unwrap()
            .starts_with("rogatory.XA.MOJ-CA+")
    );
    let text = cmd(d, "card show xa", &[]).ok().stdout;
    assert!(
        text.contains("signature OK") && text.contains(fingerprint),
        "{text}"
    );

    // A tampered card is refused.
    let mut card = std::fs::read(d.join("xa/card.cose")).unwrap();
    let n = card.len() / 2;
    card[n] ^= 1;
    std::fs::write(d.join("bad.cose"), card).unwrap();
    cmd(d, "card show bad.cose", &[]).failed();
}

#[test]
fn seal_open_round_trip_and_a_third_agency_is_not_a_recipient() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "XA.MOJ-CA", "xa");
    keygen(d, "XB.DOJ-CA", "xb");
    keygen(d, "XC.POLICE", "xc");
    let body = example("mla-request.json");
    let seal = "envelope seal --key xa --to xb/card.cose --case new --type mla-request --out req.cose --body";
    cmd(d, seal, &[&body]).ok();

    let opened = json(
        &cmd(
            d,
            "envelope open --key xb --trust xa/card.cose req.cose",
            &[],
        )
        .ok(),
    );
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&body).unwrap()).unwrap();
    assert_eq!(
        opened["message"], original,
        "the recipient reads the original request"
    );
    assert_eq!(opened["from"], "XA.MOJ-CA");
    assert_eq!(opened["message_type"], "mla-request");

    let r = cmd(
        d,
        "envelope open --key xc --trust xa/card.cose req.cose",
        &[],
    )
    .failed();
    assert!(r.stderr.contains("not a recipient"), "{}", r.stderr);

    // Unknown sender: the recipient trusts only another agency.
    let r = cmd(
        d,
        "envelope open --key xb --trust xc/card.cose req.cose",
        &[],
    )
    .failed();
    assert!(r.stderr.contains("unknown sender"), "{}", r.stderr);

    // Inspect without and with the sender's card.
    let v = json(&cmd(d, "envelope inspect req.cose --json", &[]).ok());
    assert_eq!(v["origin_signature"], "not checked");
    assert_eq!(v["envelope_id"], opened["envelope_id"]);
    let r = cmd(d, "envelope inspect --trust xa/card.cose req.cose", &[]).ok();
    assert!(r.stdout.contains("signature VALID"), "{}", r.stdout);
    let r = cmd(d, "envelope inspect --trust xc/card.cose req.cose", &[]).failed();
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
    let seal = format!(
        "envelope seal --key xa --to xb --to xc/card.cose --case {case} --type liaison --out outbox --body"
    );
    cmd(d, &seal, &[&example("liaison.json")]).ok();
    for (who, file) in [("xb", "XB.POLICE.cose"), ("xc", "XC.POLICE.cose")] {
        let v = json(
            &cmd(
                d,
                &format!("envelope open --key {who} --trust xa outbox/{file}"),
                &[],
            )
            .ok(),
        );
        assert_eq!(v["case_id"], case);
        assert_eq!(
            v["recipients"],
            serde_json::json!(["XB.POLICE", "XC.POLICE"])
        );
    }
    // XB cannot open XC's envelope.
    cmd(
        d,
        "envelope open --key xb --trust xa outbox/XC.POLICE.cose",
        &[],
    )
    .failed();
}

#[test]
fn damaged_envelopes_are_refused_with_a_clear_error() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "XA.POLICE", "xa");
    keygen(d, "XB.POLICE", "xb");
    let seal = "envelope seal --key xa --to xb --case new --type liaison --out m.cose --body";
    cmd(d, seal, &[&example("liaison.json")]).ok();
    let good = std::fs::read(d.join("m.cose")).unwrap();
    let mut flipped = good.clone();
    let n = flipped.len() - 70;
    flipped[n] ^= 0x40;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", good[..good.len() / 2].to_vec(), "malformed"),
        ("garbage", b"this is not CBOR".to_vec(), "malformed"),
        ("empty", Vec::new(), "malformed"),
        ("flipped", flipped, "reason code"),
    ];
    for (name, bytes, expect) in cases {
        std::fs::write(d.join(name), bytes).unwrap();
        let r = cmd(d, &format!("envelope open --key xb --trust xa {name}"), &[]).failed();
        assert!(r.stderr.contains(expect), "{name}: {}", r.stderr);
    }
    // Oversized for the limit given.
    let r = cmd(
        d,
        "envelope open --key xb --trust xa m.cose --max-bytes 100",
        &[],
    )
    .failed();
    assert!(r.stderr.contains("more than the limit"), "{}", r.stderr);
}

#[test]
fn request_validate_lists_everything_missing() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    cmd(d, "request validate", &[&example("mla-request.json")]).ok();
    for kind in [
        "mla-status",
        "evidence-manifest",
        "extradition-status",
        "liaison",
        "preservation-request",
        "evidence-status",
    ] {
        cmd(
            d,
            &format!("request validate --type {kind}"),
            &[&example(&format!("{kind}.json"))],
        )
        .ok();
    }

    let draft = r#"{ "requesting_authority": { "name": "Central Authority of XA", "country": "XA" },
                     "assistance": [ { "kind": "subscriber-data", "description": "Subscriber data" } ] }"#;
    std::fs::write(
        d.join("typo.json"),
        draft.replace("] }", "], \"sumary_of_facts\": \"typo\" }"),
    )
    .unwrap();
    let r = cmd(d, "request validate typo.json", &[]).failed();
    assert!(
        r.stdout.contains("sumary_of_facts"),
        "the misspelt field is named:\n{}",
        r.stdout
    );

    std::fs::write(d.join("draft.json"), draft).unwrap();
    let v = json(&cmd(d, "request validate draft.json --json", &[]).failed());
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
    let text = cmd(d, "request validate draft.json", &[]).failed().stdout;
    assert!(
        text.contains("the summary of the relevant facts is missing"),
        "{text}"
    );

    // Sealing an incomplete request is refused with the same list, and writes nothing.
    keygen(d, "XA.MOJ-CA", "xa");
    keygen(d, "XB.DOJ-CA", "xb");
    let r = cmd(d, "envelope seal --key xa --to xb --case new --type mla-request --body draft.json --out x.cose", &[]).failed();
    assert!(r.stderr.contains("summary_of_facts"), "{}", r.stderr);
    assert!(!d.join("x.cose").exists());
}

#[test]
fn seal_refuses_ambiguous_input_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    keygen(d, "XA.POLICE", "xa");
    keygen(d, "XB.POLICE", "xb");
    keygen(d, "XC.POLICE", "xc");
    let body = example("liaison.json");
    let to_both =
        "envelope seal --key xa --to xb --to xc --case new --type liaison --out out --body";

    // A chain position names one addressee's chain; several addressees cannot share it.
    let prev = "00".repeat(32);
    let r = cmd(d, to_both, &[&body, "--sequence", "2", "--previous", &prev]).failed();
    assert!(
        r.stderr.contains("seal for each addressee separately"),
        "{}",
        r.stderr
    );
    assert!(!d.join("out").exists());

    // An existing output for one addressee: nothing is written for the other either.
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::write(d.join("out/XC.POLICE.cose"), b"keep").unwrap();
    let r = cmd(d, to_both, &[&body]).failed();
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert!(!d.join("out/XB.POLICE.cose").exists());
    assert_eq!(
        std::fs::read(d.join("out/XC.POLICE.cose")).unwrap(),
        b"keep"
    );

    // Two cards for one agency among the trusted cards.
    keygen(d, "XA.POLICE", "xa2");
    cmd(
        d,
        "envelope seal --key xa --to xb --case new --type liaison --out m.cose --body",
        &[&body],
    )
    .ok();
    let r = cmd(
        d,
        "envelope open --key xb --trust xa2 --trust xa m.cose",
        &[],
    )
    .failed();
    assert!(
        r.stderr.contains("second card for XA.POLICE"),
        "{}",
        r.stderr
    );

    // A case id that is not a UUIDv7.
    let v4 = "6f1d2c3b-4a59-4e8f-9a0b-1c2d3e4f5a6b";
    let r = cmd(
        d,
        &format!("envelope seal --key xa --to xb --case {v4} --type liaison --out v4.cose --body"),
        &[&body],
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
        let seal = "envelope seal --key xb --to xa --case new --type liaison --out m.cose --body";
        let r = cmd(d, seal, &[&example("liaison.json")]).failed();
        assert!(r.stderr.contains("readable by other users"), "{}", r.stderr);
    }
}

#[test]
fn every_command_has_help() {
    let t = tempfile::tempdir().unwrap();
    /// The subcommands a help text lists under "Commands:", with their descriptions.
    fn listed(help: &str) -> Vec<(String, String)> {
        help.lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let name = w.next()?.to_string();
                Some((name, w.collect::<Vec<_>>().join(" ")))
            })
            .filter(|(n, _)| n != "help")
            .collect()
    }
    let top = cmd(t.path(), "--help", &[]).ok().stdout;
    let commands = listed(&top);
    for want in [
        "demo", "init", "run", "send", "inbox", "outbox", "message", "status", "deliver", "peer",
        "keygen", "card", "envelope", "request", "audit",
    ] {
        assert!(
            commands.iter().any(|(n, _)| n == want),
            "{want} missing:\n{top}"
        );
    }
    let mut todo: Vec<String> = commands.into_iter().map(|(n, _)| n).collect();
    let mut seen = 0;
    while let Some(line) = todo.pop() {
        let r = cmd(t.path(), &format!("{line} --help"), &[]).ok();
        assert!(r.stdout.contains("Usage:"), "{line}");
        // A description before the usage line.
        assert!(
            !r.stdout
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .is_empty(),
            "{line} has no description"
        );
        for (sub, about) in listed(&r.stdout) {
            assert!(!about.is_empty(), "{line} {sub} has no description");
            todo.push(format!("{line} {sub}"));
        }
        seen += 1;
    }
    assert!(seen >= 30, "only {seen} commands checked");
}

#[test]
fn request_template_is_valid_and_every_field_is_explained() {
    let t = tempfile::tempdir().unwrap();
    let r = cmd(t.path(), "request template --out r.json", &[]).ok();
    let guide = r.stdout;
    cmd(t.path(), "request validate r.json", &[]).ok();
    // Not overwritten.
    cmd(t.path(), "request template --out r.json", &[]).failed();
    // Every field name in the example is in the guide.
    fn names(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    out.push(k.clone());
                    names(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| names(v, out)),
            _ => {}
        }
    }
    let example: Value =
        serde_json::from_str(&std::fs::read_to_string(t.path().join("r.json")).unwrap()).unwrap();
    let mut all = Vec::new();
    names(&example, &mut all);
    for n in all {
        assert!(
            guide.contains(&format!("`{n}")) || guide.contains(&format!(".{n}`")),
            "{n} is not explained"
        );
    }
    // Every type has a template that validates.
    for kind in [
        "mla-request",
        "mla-status",
        "evidence-manifest",
        "extradition-status",
        "liaison",
        "preservation-request",
        "evidence-status",
    ] {
        let out = format!("{kind}.json");
        cmd(
            t.path(),
            &format!("request template --type {kind} --out {out}"),
            &[],
        )
        .ok();
        cmd(
            t.path(),
            &format!("request validate {out} --type {kind}"),
            &[],
        )
        .ok();
    }
}

#[test]
fn the_command_line_reference_in_docs_is_every_command_s_help() {
    let docs = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/cli.md");
    let help = |args: &[&str]| {
        let out = std::process::Command::new(rogatory_tests::rogatory_bin())
            .args(args)
            .env_remove("COLUMNS")
            .env_remove("ROGATORY_DATA_DIR")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let reference = help(&["reference"]);
    let checked_in = std::fs::read_to_string(&docs).unwrap_or_default();
    assert!(
        reference == checked_in,
        "docs/cli.md is not what `rogatory reference` prints: regenerate it with \
         `cargo run -- reference > docs/cli.md`"
    );
    // Each section is that command's --help, as a user sees it.
    let mut sections = 0;
    for part in reference.split("\n## `").skip(1) {
        let (path, rest) = part.split_once("`\n\n```text\n").unwrap();
        let body = rest.split_once("```\n").unwrap().0;
        let mut args: Vec<&str> = path.split(' ').skip(1).collect();
        args.push("--help");
        let shown: String = help(&args)
            .trim_end()
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect();
        assert_eq!(shown, body, "`{path} --help` differs from docs/cli.md");
        sections += 1;
    }
    assert!(sections >= 50, "only {sections} commands in the reference");
}

/// The manual pages and completions in `deploy/` are what the program generates; `man` reads a
/// page once installed the documented way, and bash takes the completion script.
#[test]
fn the_manual_pages_and_completions_in_deploy_are_current_and_work() {
    let t = tempfile::tempdir().unwrap();
    let deploy = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let man1 = t.path().join("man/man1");
    cmd(t.path(), &format!("manpages --out {}", man1.display()), &[]).ok();
    let names = |dir: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".1"))
            .collect();
        v.sort();
        v
    };
    let generated = names(&man1);
    assert!(generated.len() >= 50, "{generated:?}");
    assert!(generated.contains(&"rogatory-send.1".to_string()));
    assert!(generated.contains(&"rogatory-case-export.1".to_string()));
    let stale = "regenerate them with `cargo run -- manpages --out deploy/man` (docs/operating.md)";
    assert_eq!(names(&deploy.join("man")), generated, "{stale}");
    for n in &generated {
        assert_eq!(
            std::fs::read(deploy.join("man").join(n)).unwrap(),
            std::fs::read(man1.join(n)).unwrap(),
            "{n}: {stale}"
        );
    }
    for (shell, file) in [
        ("bash", "rogatory.bash"),
        ("zsh", "_rogatory"),
        ("fish", "rogatory.fish"),
    ] {
        let printed = cmd(t.path(), &format!("completions {shell}"), &[]).ok();
        assert_eq!(
            std::fs::read_to_string(deploy.join("completions").join(file)).unwrap(),
            printed.stdout,
            "deploy/completions/{file}: regenerate it with `cargo run -- completions {shell} > deploy/completions/{file}`"
        );
    }
    let bash = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p rogatory",
            deploy.join("completions/rogatory.bash").display()
        ))
        .output()
        .unwrap();
    assert!(bash.status.success(), "{bash:?}");

    // `man rogatory-send`, with the pages where the documented install step puts them.
    let man = std::process::Command::new("man")
        .args(["-P", "cat", "rogatory-send"])
        .env("MANPATH", t.path().join("man"))
        .env("MANWIDTH", "100")
        .output();
    match man {
        Err(e) if std::env::var_os("ROGATORY_REQUIRE_MAN").is_none() => {
            eprintln!("skipped: `man` cannot be run here ({e}); .ci/run installs man-db");
        }
        Err(e) => panic!("man: {e}"),
        Ok(out) => {
            let page = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{out:?}");
            assert!(
                page.contains("rogatory-send") && page.contains("--to"),
                "{page}"
            );
        }
    }
}
