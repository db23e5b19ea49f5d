//! Evidence across two real nodes: items added (hashed, and sealed if they are to be sent),
//! their manifest sent and listed on the other side, and content that must not travel found on
//! no disk but its holder's original.

use std::path::Path;
use std::time::Duration;

use rogatory_proto::ids::Sha256Digest;
use rogatory_tests::{Cluster, Rng, example, run_line};
use serde_json::Value;

fn json(root: &Path, line: &str) -> Value {
    serde_json::from_str(&run_line(root, line).ok().stdout).unwrap()
}

/// Bytes no other file holds by chance.
fn unique(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.below(256) as u8).collect()
}

/// Every file under `dir` that holds any 64-byte window of `needle`'s first, middle or last
/// kilobyte.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let probes: Vec<&[u8]> = [0, needle.len() / 2, needle.len() - 1024]
        .iter()
        .map(|&at| &needle[at..at + 64])
        .collect();
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.is_file() {
                let bytes = std::fs::read(&p).unwrap();
                if probes.iter().any(|w| bytes.windows(64).any(|x| x == *w)) {
                    found.push(p.display().to_string());
                }
            }
        }
    }
    found
}

#[test]
fn evidence_is_added_and_listed_on_both_nodes_and_hash_only_content_stays_home() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let mut rng = Rng::seeded();
    // XB holds the evidence; the request came from XA.
    let case = c.first_request();
    let files = root.join("seized");
    std::fs::create_dir(&files).unwrap();
    let records = unique(&mut rng, 3 * (1 << 20) + 123);
    let material = unique(&mut rng, 200 * 1024);
    let image = unique(&mut rng, 100 * 1024);
    std::fs::write(files.join("records.csv"), &records).unwrap();
    std::fs::write(files.join("material.mp4"), &material).unwrap();
    std::fs::write(files.join("phone.img"), &image).unwrap();
    let add = |args: &str| {
        json(
            root,
            &format!("evidence add {case} {args} --data-dir xb.doj-ca --json"),
        )
    };
    let r = add(&format!(
        "{} --description subscriber-records --seized-from provider --seized-at 2026-11-20T10:00:00Z",
        files.join("records.csv").display()
    ));
    assert_eq!(r["items"], serde_json::json!(["E1"]));
    let r = add(&format!(
        "{} --mode hash-only --perceptual-hash PDQ:f8f8f0cee0f4a84f",
        files.join("material.mp4").display()
    ));
    assert_eq!(r["items"], serde_json::json!(["E2"]));
    run_line(
        root,
        &format!(
            "evidence add {case} {} --mode out-of-band --data-dir xb.doj-ca",
            files.join("phone.img").display()
        ),
    )
    .failed();
    let r = add(&format!(
        "{} --mode out-of-band --carrier courier --tracking XB-SEAL-0042",
        files.join("phone.img").display()
    ));
    assert_eq!(r["items"], serde_json::json!(["E3"]));
    // Refusals: an unknown case, a bad mode, a missing file.
    run_line(
        root,
        &format!(
            "evidence add 01a0c451-2f50-7717-9717-171717171717 {} --data-dir xb.doj-ca",
            files.join("phone.img").display()
        ),
    )
    .failed();
    let e = run_line(
        root,
        &format!(
            "evidence add {case} {} --mode carrier-pigeon --data-dir xb.doj-ca",
            files.join("phone.img").display()
        ),
    )
    .failed();
    assert!(e.stderr.contains("mode"), "{}", e.stderr);
    run_line(
        root,
        &format!(
            "evidence add {case} {}/none --data-dir xb.doj-ca",
            files.display()
        ),
    )
    .failed();
    // The API refuses what the command line would never send: a `send` item without its
    // sealed copy, a staged name outside the staging directory, a malformed key, content for a
    // hash-only item; nothing is added.
    let item = serde_json::json!({
        "description": "x", "media_type": "text/plain", "size": 3,
        "sha256": Sha256Digest::of(b"abc").to_hex(), "transfer": "send",
        "acquisition": {"method": "copy"}, "custody": [], "perceptual_hashes": []
    });
    let key = "07".repeat(32);
    for (body, says) in [
        (
            serde_json::json!({"items": [{"item": item}]}),
            "sealed content",
        ),
        (
            serde_json::json!({"items": [{"item": item, "staged": "../../rogatory.toml", "content_key": key}]}),
            "not a staged evidence file",
        ),
        (
            serde_json::json!({"items": [{"item": item, "staged": "add-00", "content_key": "zz"}]}),
            "content_key",
        ),
        (
            serde_json::json!({"items": [{"item": {"transfer": "hash-only", "description": "x", "media_type": "x", "size": 1,
                "sha256": Sha256Digest::of(b"a").to_hex(), "acquisition": {"method": "copy"}},
                "staged": "add-00", "content_key": key}]}),
            "carry no content",
        ),
        (serde_json::json!({"items": []}), "no item"),
    ] {
        let e = c
            .api(1)
            .post::<serde_json::Value>(&format!("/v1/evidence/{case}"), &body)
            .unwrap_err();
        assert!(format!("{e:#}").contains(says), "{says}: {e:#}");
    }

    let list = json(
        root,
        &format!("evidence list {case} --data-dir xb.doj-ca --json"),
    );
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{list}");
    for (row, (content, mode, held)) in rows.iter().zip([
        (&records, "send", true),
        (&material, "hash-only", false),
        (&image, "out-of-band", false),
    ]) {
        assert_eq!(row["sha256"], Sha256Digest::of(content).to_hex().as_str());
        assert_eq!(row["size"], content.len());
        assert_eq!(row["transfer"], mode);
        assert_eq!(row["held_here"], held);
        assert_eq!(row["state"], "staged");
    }
    assert_eq!(rows[0]["media_type"], "text/csv");
    assert_eq!(rows[1]["perceptual_hashes"][0]["algorithm"], "PDQ");
    // The sealed copy is the only evidence file, and it does not hold the records in clear.
    let blobs: Vec<_> = std::fs::read_dir(root.join("xb.doj-ca/evidence"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    assert!(files_holding(&root.join("xb.doj-ca"), &records).is_empty());

    // A manifest cannot be sent as a plain message: its items must be on record.
    let r = c.api(1).post::<serde_json::Value>(
        "/v1/send",
        &serde_json::json!({"to": ["XA.MOJ-CA"], "case": case, "type": "evidence-manifest",
            "body": example("evidence-manifest.json")}),
    );
    assert!(format!("{:#}", r.unwrap_err()).contains("evidence send"));
    let sent = json(
        root,
        &format!("evidence send {case} --to XA.MOJ-CA --data-dir xb.doj-ca --json"),
    );
    assert_eq!(sent["items"], serde_json::json!(["E1", "E2", "E3"]));
    c.wait_settled(1, 1, Duration::from_secs(60));
    let e = run_line(
        root,
        &format!("evidence send {case} --to XA.MOJ-CA --data-dir xb.doj-ca"),
    )
    .failed();
    assert!(e.stderr.contains("no evidence staged"), "{}", e.stderr);

    // XA fetches the one item to be sent, checks it, and keeps it sealed.
    let theirs = json(
        root,
        &format!("evidence list {case} --wait 60 --data-dir xa.moj-ca --json"),
    );
    let rows = theirs.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{theirs}");
    let states: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["item_id"].as_str().unwrap(),
                r["state"].as_str().unwrap(),
                r["direction"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("XB.DOJ-CA/E1", "verified", "incoming"),
            ("XB.DOJ-CA/E2", "listed", "incoming"),
            ("XB.DOJ-CA/E3", "listed", "incoming"),
        ]
    );
    assert_eq!(
        rows[1]["sha256"],
        Sha256Digest::of(&material).to_hex().as_str()
    );
    assert_eq!(rows[1]["perceptual_hashes"][0]["value"], "f8f8f0cee0f4a84f");
    // XA told XB (its request and the evidence-status were delivered): XB shows E1 verified,
    // and both sides hold the same chain of custody, hand-over, arrival and check included.
    c.wait_settled(0, 2, Duration::from_secs(60));
    let mine = json(
        root,
        &format!("evidence list {case} --data-dir xb.doj-ca --json"),
    );
    let states: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["verified", "announced", "announced"]);
    // Operations see the bytes moved (`GET /metrics`): XA fetched E1's sealed chunks exactly
    // once, and XB served them; hash-only and out-of-band items moved nothing.
    let size = records.len() as u64;
    let sealed =
        size + rogatory_proto::evidence::chunks(size) * rogatory_proto::evidence::TAG as u64;
    let moved = |i: usize, direction: &str| -> u64 {
        let text = c.api(i).get_text("/metrics").unwrap();
        let key = format!("rogatory_evidence_bytes_total{{direction=\"{direction}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
    };
    assert_eq!(moved(0, "fetched"), sealed);
    assert!(moved(1, "served") >= sealed);
    assert_eq!(moved(1, "fetched"), 0);
    let actions = |row: &Value| -> Vec<String> {
        row["custody"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c["actor"].as_str().unwrap(),
                    c["action"].as_str().unwrap()
                )
            })
            .collect()
    };
    let chain = actions(&mine[0]);
    assert_eq!(chain.len(), 4, "{chain:?}");
    assert!(
        chain[1].starts_with("XB.DOJ-CA") && chain[1].contains("handed over to XA.MOJ-CA"),
        "{chain:?}"
    );
    assert!(
        chain[2].starts_with("XA.MOJ-CA received from XB.DOJ-CA"),
        "{chain:?}"
    );
    assert!(chain[3].starts_with("XA.MOJ-CA verified"), "{chain:?}");
    assert_eq!(mine[0]["custody"], rows[0]["custody"]);
    assert_eq!(mine[1]["custody"], rows[1]["custody"]);

    assert_eq!(rows[0]["held_here"], true);
    // Exported, it is the records, byte for byte; not twice to the same file; the hash-only
    // item has no content to export.
    let out = root.join("exported.csv");
    run_line(
        root,
        &format!(
            "evidence export {case} E1 --out {} --data-dir xa.moj-ca",
            out.display()
        ),
    )
    .ok();
    assert_eq!(std::fs::read(&out).unwrap(), records);
    let e = run_line(
        root,
        &format!(
            "evidence export {case} E1 --out {} --data-dir xa.moj-ca",
            out.display()
        ),
    )
    .failed();
    assert!(e.stderr.contains("exists"), "{}", e.stderr);
    let e = run_line(
        root,
        &format!(
            "evidence export {case} XB.DOJ-CA/E2 --out {} --data-dir xa.moj-ca",
            root.join("x").display()
        ),
    )
    .failed();
    assert!(e.stderr.contains("verified"), "{}", e.stderr);
    run_line(
        root,
        &format!("evidence verify {case} --data-dir xa.moj-ca"),
    )
    .ok();
    // The export is the chain's next link on both sides (a third envelope from XA).
    c.wait_settled(0, 3, Duration::from_secs(60));
    let theirs = json(
        root,
        &format!("evidence list {case} --data-dir xa.moj-ca --json"),
    );
    let mine = json(
        root,
        &format!("evidence list {case} --data-dir xb.doj-ca --json"),
    );
    let chain = actions(&mine[0]);
    assert_eq!(chain.len(), 5, "{chain:?}");
    assert!(
        chain[4].starts_with("XA.MOJ-CA") && chain[4].contains("exported"),
        "{chain:?}"
    );
    assert_eq!(mine[0]["custody"], theirs[0]["custody"]);
    let shown = run_line(
        root,
        &format!("evidence list {case} --custody --data-dir xb.doj-ca"),
    )
    .ok();
    assert!(
        shown
            .stdout
            .contains("received from XB.DOJ-CA through Rogatory"),
        "{}",
        shown.stdout
    );
    // One bit changed in the stored content: found, and nothing exported from it.
    let blob = std::fs::read_dir(root.join("xa.moj-ca/evidence"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_file())
        .unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[(1 << 20) + 16 + 100] ^= 0x20;
    std::fs::write(&blob, &bytes).unwrap();
    let v = run_line(
        root,
        &format!("evidence verify {case} E1 --data-dir xa.moj-ca"),
    )
    .failed();
    assert!(v.stdout.contains("chunk 1 does not verify"), "{}", v.stdout);
    let e = run_line(
        root,
        &format!(
            "evidence export {case} E1 --out {} --data-dir xa.moj-ca",
            root.join("again.csv").display()
        ),
    )
    .failed();
    assert!(e.stderr.contains("chunk 1"), "{}", e.stderr);
    assert!(
        !root.join("again.csv").exists(),
        "a failed export leaves no file"
    );

    // The hash-only material is on no disk of either node (only in the holder's own folder).
    c.stop(0);
    c.stop(1);
    for dir in ["xa.moj-ca", "xb.doj-ca"] {
        assert!(
            files_holding(&root.join(dir), &material).is_empty(),
            "{dir}"
        );
        assert!(files_holding(&root.join(dir), &records).is_empty(), "{dir}");
    }
    // XA's log: the transfer, the verification, and each export attempt with the user.
    let log = json(
        root,
        &format!("audit log {case} --data-dir xa.moj-ca --json"),
    );
    let events: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .filter(|e| e.starts_with("evidence"))
        .collect();
    assert_eq!(
        events,
        [
            "evidence-transferred",
            "evidence-verified",
            "evidence-exported",
            "evidence-exported"
        ]
    );
    // Each addition is in the holder's audit log, with the content's hash.
    let log = json(
        root,
        &format!("audit log {case} --data-dir xb.doj-ca --json"),
    );
    let added: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "evidence-added")
        .collect();
    assert_eq!(added.len(), 3, "{log}");
    // XA's reports are in XB's log too, naming XA and the records' hash; the failed export
    // (the damaged copy) was not reported.
    let reported: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["peer"] == "XA.MOJ-CA")
        .filter_map(|e| Some((e["event"].as_str()?, e["commitment"].as_str()?)))
        .collect();
    let hash = Sha256Digest::of(&records).to_hex();
    assert_eq!(
        reported,
        [
            ("evidence-verified", hash.as_str()),
            ("evidence-exported", hash.as_str())
        ]
    );
    assert_eq!(
        added[1]["commitment"],
        Sha256Digest::of(&material).to_hex().as_str()
    );
    run_line(root, "audit verify-store --data-dir xb.doj-ca").ok();
}

/// `n` MiB of content no chunk of which repeats.
fn content(rng: &mut Rng, mib: usize) -> Vec<u8> {
    let block = unique(rng, 1 << 20);
    let mut out = Vec::with_capacity(mib << 20);
    for i in 0..mib {
        // Each MiB starts with its own number (and chunks are 1 MiB), so no chunk repeats.
        let at = out.len();
        out.extend_from_slice(&block);
        out[at..at + 8].copy_from_slice(&(i as u64).to_le_bytes());
    }
    out
}

/// Sets `evidence.sync_every_mib` in a node's configuration.
fn sync_every(dir: &Path, mib: u64) {
    let cfg = dir.join("rogatory.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("sync_every_mib = 64", &format!("sync_every_mib = {mib}"));
    std::fs::write(&cfg, text).unwrap();
}

/// Opens a case from XA to XB, adds `file` on XB as a `send` item, and sends the manifest to
/// XA; returns the case.
fn hand_over(root: &Path, c: &Cluster, file: &Path) -> String {
    let case = c.first_request();
    json(
        root,
        &format!(
            "evidence add {case} {} --data-dir xb.doj-ca --json",
            file.display()
        ),
    );
    case
}

/// The size of the large transfer test, in MiB: `ROGATORY_EVIDENCE_TEST_MIB` (the 2 GiB run is
/// `ROGATORY_EVIDENCE_TEST_MIB=2048 cargo test --release -p rogatory-tests --test it
/// evidence::a_large`), 256 by default.
fn large_mib() -> usize {
    std::env::var("ROGATORY_EVIDENCE_TEST_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

#[test]
fn a_large_transfer_survives_both_nodes_killed_and_resumes_where_it_was_durable() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    sync_every(&c.dirs[0], 8);
    c.start(0);
    c.start(1);
    let mut rng = Rng::seeded();
    let mib = large_mib();
    let file = root.join("image.dd");
    let sha = {
        let data = content(&mut rng, mib);
        std::fs::write(&file, &data).unwrap();
        Sha256Digest::of(&data)
    };
    let t0 = std::time::Instant::now();
    let case = hand_over(root, &c, &file);
    eprintln!("added in {:?}", t0.elapsed());
    run_line(
        root,
        &format!("evidence send {case} --to XA.MOJ-CA --data-dir xb.doj-ca"),
    )
    .ok();
    // The manifest is delivered; then XA fetches.
    c.wait_settled(1, 1, Duration::from_secs(60));
    let chunks = (mib as u64).max(1);
    let list = |c: &Cluster, extra: &str| -> Value {
        c.api(0)
            .get::<serde_json::Value>(&format!("/v1/evidence/{case}?wait=300{extra}"))
            .unwrap()
    };
    // The receiver is killed once a first part is durable, at a point chosen at random.
    let first_stop = 8 + rng.below(chunks / 3);
    let v = list(&c, &format!("&done={first_stop}"));
    let done = v[0]["chunks_done"].as_u64().unwrap();
    eprintln!("{done} durable at {:?}", t0.elapsed());
    assert!(done >= first_stop.min(chunks), "{v}");
    c.kill(0);
    c.start(0);
    let v = c
        .api(0)
        .get::<serde_json::Value>(&format!("/v1/evidence/{case}"))
        .unwrap();
    let resumed = v[0]["chunks_done"].as_u64().unwrap();
    assert!(
        resumed >= done,
        "resumed at {resumed}, {done} were durable: {v}"
    );
    // Then the holder is killed too, and comes back.
    if resumed < chunks {
        let next = (resumed + 8).min(chunks);
        list(&c, &format!("&done={next}"));
        c.kill(1);
        c.start(1);
    }
    let v = list(&c, "");
    eprintln!("verified at {:?}", t0.elapsed());
    assert_eq!(v[0]["state"], "verified", "{v}");
    assert_eq!(v[0]["sha256"], sha.to_hex().as_str());
    // The stored content verifies again, and exports to the same bytes.
    run_line(
        root,
        &format!("evidence verify {case} --data-dir xa.moj-ca"),
    )
    .ok();
    let out = root.join("out.dd");
    run_line(
        root,
        &format!(
            "evidence export {case} E1 --out {} --data-dir xa.moj-ca",
            out.display()
        ),
    )
    .ok();
    assert_eq!(Sha256Digest::of(&std::fs::read(&out).unwrap()), sha);
    // Nothing half-written is left.
    let partial = root.join("xa.moj-ca/evidence/partial");
    assert_eq!(std::fs::read_dir(&partial).unwrap().count(), 0);
}

#[test]
fn content_that_does_not_verify_is_quarantined_and_never_counts_as_received() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(0);
    c.start(1);
    let mut rng = Rng::seeded();
    let file = root.join("chat.log");
    std::fs::write(&file, content(&mut rng, 5)).unwrap();
    let case = hand_over(root, &c, &file);
    // The holder's stored copy is damaged in its third chunk before it is sent.
    let blob = std::fs::read_dir(root.join("xb.doj-ca/evidence"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_file())
        .unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[2 * ((1 << 20) + 16) + 7] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    run_line(
        root,
        &format!("evidence send {case} --to XA.MOJ-CA --data-dir xb.doj-ca"),
    )
    .ok();
    // The manifest is delivered; then XA fetches.
    c.wait_settled(1, 1, Duration::from_secs(60));
    let v = c
        .api(0)
        .get::<serde_json::Value>(&format!("/v1/evidence/{case}?wait=120"))
        .unwrap();
    assert_eq!(v[0]["state"], "quarantined", "{v}");
    assert!(v[0]["problem"].as_str().unwrap().contains("chunk 2"), "{v}");
    assert_eq!(v[0]["held_here"], false);
    let e = run_line(
        root,
        &format!(
            "evidence export {case} E1 --out {} --data-dir xa.moj-ca",
            root.join("x").display()
        ),
    )
    .failed();
    assert!(e.stderr.contains("quarantined"), "{}", e.stderr);
    // XB is told, with the reason, and logs it.
    c.wait_settled(0, 2, Duration::from_secs(60));
    let mine = c
        .api(1)
        .get::<serde_json::Value>(&format!("/v1/evidence/{case}"))
        .unwrap();
    assert_eq!(mine[0]["state"], "quarantined", "{mine}");
    assert_eq!(mine[0]["problem"], v[0]["problem"]);
    assert_eq!(mine[0]["custody"], v[0]["custody"]);
    let last = mine[0]["custody"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        last["action"].as_str().unwrap().starts_with("quarantined"),
        "{last}"
    );
    // Kept apart, not in the evidence directory.
    assert_eq!(
        std::fs::read_dir(root.join("xa.moj-ca/evidence/quarantine"))
            .unwrap()
            .count(),
        1
    );
    assert!(
        std::fs::read_dir(root.join("xa.moj-ca/evidence"))
            .unwrap()
            .all(|e| e.unwrap().path().is_dir())
    );
    c.stop(0);
    let log = json(
        root,
        &format!("audit log {case} --data-dir xa.moj-ca --json"),
    );
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "evidence-quarantined"),
        "{log}"
    );
}
