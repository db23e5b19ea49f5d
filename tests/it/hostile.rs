//! A partner acting in bad faith (issue "Authorization and bounds"): three real nodes on
//! loopback — XA requesting, XB requested, XC a third pinned partner — and envelopes XC (or a
//! partner) seals with its real key past its own node's checks and delivers over libp2p. Each
//! attempt must be refused or bounded, with its reason code and its audit entry, and change
//! nothing else.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rogatory_node::keydir::KeyDir;
use rogatory_proto::card::AgencyCard;
use rogatory_proto::envelope::{Addressee, ChainLink, Limits, SealParams, Sender, seal};
use rogatory_proto::ids::{CaseId, EnvelopeId, MessageId, Sha256Digest};
use rogatory_proto::message::{Message, MessageType};
use rogatory_proto::receipt::{ReasonCode, ReceiptEvent, verify_receipt};
use rogatory_tests::{Cluster, example, load_keys, run_line};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const XA: usize = 0;
const XB: usize = 1;
const XC: usize = 2;

/// Seals envelopes with an agency's real keys, keeping its own count of its chains.
struct Forger {
    keys: KeyDir,
    chains: HashMap<(CaseId, String), (u64, EnvelopeId)>,
}

impl Forger {
    fn new(dir: &Path) -> Self {
        Self {
            keys: load_keys(dir),
            chains: HashMap::new(),
        }
    }

    /// Continues a chain its node already started: the last envelope it sealed there.
    fn after(&mut self, case: CaseId, to: &AgencyCard, sequence: u64, id: &str) {
        let mut b = [0u8; 32];
        hex::decode_to_slice(id, &mut b).unwrap();
        self.chains
            .insert((case, to.id().to_string()), (sequence, Sha256Digest(b)));
    }

    /// The next envelope of its chain to `to` in `case`, dated `sent_at`.
    fn seal_at(&mut self, to: &AgencyCard, case: CaseId, m: &Message, sent_at: u64) -> Vec<u8> {
        let key = (case, to.id().to_string());
        let link = match self.chains.get(&key) {
            None => ChainLink::FIRST,
            Some((seq, id)) => ChainLink {
                sequence: seq + 1,
                previous: Some(*id),
            },
        };
        let sealed = seal(
            &Sender {
                card: &self.keys.card,
                keys: &self.keys.keys,
            },
            &[Addressee {
                card: to,
                chain: link,
                consistency: None,
            }],
            m,
            &SealParams {
                case_id: case,
                message_id: MessageId::generate(),
                sent_at,
                checkpoint: None,
            },
            &Limits::default(),
        )
        .unwrap();
        let env = sealed.into_iter().next().unwrap();
        self.chains.insert(key, (link.sequence, env.id));
        env.bytes
    }

    fn seal(&mut self, to: &AgencyCard, case: CaseId, m: &Message) -> Vec<u8> {
        self.seal_at(to, case, m, rogatory_proto::time::now_unix())
    }

    /// Delivers to `to`'s node and returns the verified receipt's event and reason.
    fn deliver(&self, to: &AgencyCard, envelope: Vec<u8>) -> (ReceiptEvent, Option<ReasonCode>) {
        let id = Sha256Digest::of(&envelope);
        let receipt = rogatory_tests::deliver(&self.keys, to, envelope).unwrap();
        let r = verify_receipt(&receipt, to, Some(&id)).unwrap();
        (r.receipt.event, r.receipt.reason)
    }
}

fn card(dir: &Path) -> AgencyCard {
    rogatory_node::keydir::load_card(&dir.join("card.cose")).unwrap()
}

fn message(kind: MessageType, body: Value) -> Message {
    let m = Message::from_json(kind, &body).unwrap();
    m.validate().unwrap();
    m
}

fn status(s: &str, extra: Value) -> Message {
    let mut body = json!({ "status": s, "effective_at": "2026-12-01T10:00:00Z" });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    message(MessageType::MlaStatus, body)
}

fn audit_log(root: &Path, dir: &Path, case: &str) -> Vec<Value> {
    let r = run_line(
        root,
        &format!("audit log {case} --json --data-dir {}", dir.display()),
    )
    .ok();
    serde_json::from_str::<Value>(&r.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn unauthorized_entries(log: &[Value], from: &str) -> usize {
    log.iter()
        .filter(|e| {
            e["event"] == "envelope-rejected"
                && e["peer"] == from
                && e["reason"] == u64::from(u16::from(ReasonCode::Unauthorized))
        })
        .count()
}

/// The case as a node shows it, without the times that move.
fn case_view(c: &Cluster, i: usize, case: &str) -> Value {
    let mut v = c
        .api(i)
        .get::<serde_json::Value>(&format!("/v1/cases/{case}"))
        .unwrap();
    v.as_object_mut().map(|o| o.remove("updated_at"));
    v
}

fn three(root: &Path) -> Cluster {
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA", "XC.POLICE"], 1);
    for i in 0..3 {
        c.start(i);
    }
    c
}

#[test]
fn a_third_partner_cannot_change_the_status_of_a_case_between_two_others() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let c = three(root);
    let (a_card, b_card) = (card(&c.dirs[XA]), card(&c.dirs[XB]));
    // XA asks XB for assistance and copies XC on a liaison message in the case.
    let r = c.send(
        XA,
        "XB.DOJ-CA",
        "new",
        "mla-request",
        &example("mla-request.json"),
    );
    let case_s = r["case_id"].as_str().unwrap().to_string();
    let case: CaseId = case_s.parse().unwrap();
    c.wait_settled(XA, 1, WAIT);
    let liaison = example("liaison.json");
    c.api(XA)
        .post::<serde_json::Value>(
            "/v1/send",
            &json!({ "to": ["XB.DOJ-CA", "XC.POLICE"], "case": case_s, "type": "liaison", "body": liaison }),
        )
        .unwrap();
    c.wait_settled(XA, 3, WAIT);
    let before_a = case_view(&c, XA, &case_s);
    let before_b = case_view(&c, XB, &case_s);
    assert_eq!(before_a["status"], "received");

    // XC, copied, seals "refused" for XA past its own node's checks: refused as unauthorized.
    let mut xc = Forger::new(&c.dirs[XC]);
    let refused = status("refused", json!({ "grounds": ["a pretext"] }));
    let env = xc.seal(&a_card, case, &refused);
    assert_eq!(
        xc.deliver(&a_card, env),
        (ReceiptEvent::Rejected, Some(ReasonCode::Unauthorized))
    );
    // And "withdrawn" for XB, which would have XB confirm it to XC: refused the same way.
    let withdrawn = status("withdrawn", json!({}));
    let env = xc.seal(&b_card, case, &withdrawn);
    assert_eq!(
        xc.deliver(&b_card, env),
        (ReceiptEvent::Rejected, Some(ReasonCode::Unauthorized))
    );
    // Nothing of either changed the case on either side.
    assert_eq!(case_view(&c, XA, &case_s), before_a);
    assert_eq!(case_view(&c, XB, &case_s), before_b);
    let b_out = c.api(XB).get::<serde_json::Value>("/v1/outbox").unwrap();
    assert!(
        b_out
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["to"] != "XC.POLICE"),
        "XB confirmed nothing to XC: {b_out}"
    );
    // XC may answer in the case with a liaison message, as a copied agency.
    let env = xc.seal(
        &a_card,
        case,
        &message(MessageType::Liaison, example("liaison.json")),
    );
    assert_eq!(xc.deliver(&a_card, env), (ReceiptEvent::Accepted, None));

    // XB's real registration is then accepted, and both sides agree.
    run_line(
        root,
        &format!(
            "case update {case_s} registered --reference XB-MLA-2026-4410 --data-dir {}",
            c.dirs[XB].display()
        ),
    )
    .ok();
    c.wait_settled(XB, 1, WAIT);
    for i in [XA, XB] {
        let v = c
            .api(i)
            .get::<serde_json::Value>(&format!("/v1/cases/{case_s}?wait=30"))
            .unwrap();
        assert_eq!(v["status"], "registered", "{v}");
    }
    let a_updates = c
        .api(XA)
        .get::<serde_json::Value>(&format!("/v1/cases/{case_s}"))
        .unwrap()["updates"]
        .clone();
    let b_updates = c
        .api(XB)
        .get::<serde_json::Value>(&format!("/v1/cases/{case_s}"))
        .unwrap()["updates"]
        .clone();
    assert_eq!(a_updates, b_updates);

    // Each refusal is in the case's log, with its reason and XC named, and raised as an alert.
    let mut c = c;
    for i in 0..3 {
        c.stop(i);
    }
    for (i, n) in [(XA, 1), (XB, 1)] {
        // The case's state is sealed at rest: its reference is in no file of either node.
        let store = std::fs::read(c.dirs[i].join("rogatory.redb")).unwrap();
        assert!(
            !store.windows(16).any(|w| w == b"XB-MLA-2026-4410"),
            "the reference is in clear"
        );
        let log = audit_log(root, &c.dirs[i], &case_s);
        assert_eq!(unauthorized_entries(&log, "XC.POLICE"), n, "{log:?}");
        let r = run_line(
            root,
            &format!("audit alerts --json --data-dir {}", c.dirs[i].display()),
        );
        let alerts: Value = serde_json::from_str(&r.stdout).unwrap();
        assert!(
            alerts
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["kind"] == "unauthorized" && a["peer"] == "XC.POLICE"),
            "{alerts}"
        );
    }
}

#[test]
fn a_partner_cannot_write_into_the_holders_chain_of_custody() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let c = three(root);
    let b_card = card(&c.dirs[XB]);
    // XC asks XB; XB hands one item over to XC, whose node fetches and verifies it.
    let r = c.send(XC, "XB.DOJ-CA", "new", "mla-request", &{
        let mut b = example("mla-request.json");
        b["requesting_authority"]["country"] = json!("XC");
        b["requesting_authority"]["agency"] = json!("XC.POLICE");
        b
    });
    let case_s = r["case_id"].as_str().unwrap().to_string();
    let case: CaseId = case_s.parse().unwrap();
    c.wait_settled(XC, 1, WAIT);
    let file = root.join("records.csv");
    std::fs::write(&file, b"account,ip\nuser_4471,198.51.100.7\n").unwrap();
    let xb = c.dirs[XB].display().to_string();
    run_line(
        root,
        &format!("evidence add {case_s} {} --data-dir {xb}", file.display()),
    )
    .ok();
    run_line(
        root,
        &format!("evidence send {case_s} --to XC.POLICE --data-dir {xb}"),
    )
    .ok();
    // The manifest delivered, XC's node fetches the item.
    c.wait_settled(XB, 1, WAIT);
    let list = c
        .api(XC)
        .get::<serde_json::Value>(&format!("/v1/evidence/{case_s}?wait=60"))
        .unwrap();
    assert_eq!(list[0]["state"], "verified", "{list}");
    // XB is told (the evidence-status): wait until its item shows it.
    let mut held = Value::Null;
    for _ in 0..60 {
        held = c
            .api(XB)
            .get::<serde_json::Value>(&format!("/v1/evidence/{case_s}"))
            .unwrap();
        if held[0]["state"] == "verified" {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(held[0]["state"], "verified", "{held}");
    let custody_before = held[0]["custody"].clone();
    let sha = held[0]["sha256"].as_str().unwrap().to_string();

    // XC's node sealed its request and its report to XB; XC goes on from there, past its node.
    let out = c.api(XC).get::<serde_json::Value>("/v1/outbox").unwrap();
    let last = out
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["to"] == "XB.DOJ-CA" && r["case_id"] == case_s.as_str())
        .count() as u64;
    let last_id = out
        .as_array()
        .unwrap()
        .iter()
        .rfind(|r| r["to"] == "XB.DOJ-CA" && r["case_id"] == case_s.as_str())
        .unwrap()["envelope_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut c = c;
    c.stop(XC);
    let mut xc = Forger::new(&c.dirs[XC]);
    xc.after(case, &b_card, last, &last_id);
    let now = rogatory_proto::time::format_unix(rogatory_proto::time::now_unix());
    let report = |entries: Value| {
        message(
            MessageType::EvidenceStatus,
            json!({ "items": [{ "item_id": "E1", "sha256": sha, "state": "exported", "custody": entries }] }),
        )
    };
    for forged in [
        // The holder's own act, back-dated.
        json!([{ "at": "2020-01-01T00:00:00Z", "actor": "XB.DOJ-CA", "action": "exported: original destroyed" }]),
        // A third agency's act.
        json!([{ "at": now, "actor": "XA.MOJ-CA", "action": "exported: received a copy" }]),
        // Its own name, another act than the state reported.
        json!([{ "at": now, "actor": "XC.POLICE", "action": "original destroyed" }]),
        // Its own act, dated in 2076.
        json!([{ "at": "2076-01-01T00:00:00Z", "actor": "XC.POLICE", "action": "exported" }]),
    ] {
        let env = xc.seal(&b_card, case, &report(forged.clone()));
        assert_eq!(
            xc.deliver(&b_card, env),
            (ReceiptEvent::Rejected, Some(ReasonCode::Unauthorized)),
            "{forged}"
        );
    }
    // XA, a stranger to the case, reports on XB's item: refused too.
    let mut xa = Forger::new(&c.dirs[XA]);
    let honest = json!([{ "at": now, "actor": "XA.MOJ-CA", "action": "exported" }]);
    let env = xa.seal(&b_card, case, &report(honest));
    assert_eq!(
        xa.deliver(&b_card, env),
        (ReceiptEvent::Rejected, Some(ReasonCode::Unauthorized))
    );
    let held = c
        .api(XB)
        .get::<serde_json::Value>(&format!("/v1/evidence/{case_s}"))
        .unwrap();
    assert_eq!(held[0]["custody"], custody_before, "the chain is unchanged");
    // XC's honest report of its own export is taken, recorded with XB's time of receipt.
    let honest = json!([{ "at": now, "actor": "XC.POLICE: clerk-3", "action": "exported: decrypted to a file" }]);
    let env = xc.seal(&b_card, case, &report(honest));
    assert_eq!(xc.deliver(&b_card, env), (ReceiptEvent::Accepted, None));
    let held = c
        .api(XB)
        .get::<serde_json::Value>(&format!("/v1/evidence/{case_s}"))
        .unwrap();
    let custody = held[0]["custody"].as_array().unwrap();
    assert_eq!(custody.len(), custody_before.as_array().unwrap().len() + 1);
    let reports = held[0]["custody_reports"].as_array().unwrap();
    assert_eq!(reports.last().unwrap()["by"], "XC.POLICE", "{held}");
    c.stop(XB);
    let log = audit_log(root, &c.dirs[XB], &case_s);
    assert_eq!(unauthorized_entries(&log, "XC.POLICE"), 4, "{log:?}");
    assert_eq!(unauthorized_entries(&log, "XA.MOJ-CA"), 1, "{log:?}");
}

/// A manifest item of `size` bytes to be sent, with a content key.
fn item(i: usize, size: u64) -> Value {
    json!({
        "item_id": format!("E{i}"),
        "description": "disk image",
        "media_type": "application/octet-stream",
        "size": size,
        "sha256": hex::encode(Sha256Digest::of(&i.to_be_bytes()).0),
        "transfer": "send",
        "acquisition": { "method": "forensic image" },
        "custody": [],
        "perceptual_hashes": [],
        "content_key": hex::encode([7u8; 32]),
    })
}

fn manifest(items: Vec<Value>) -> Message {
    message(MessageType::EvidenceManifest, json!({ "items": items }))
}

#[test]
fn a_manifest_of_3000_items_of_1_tib_leaves_the_node_bounded_and_answering() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA", "XC.POLICE"], 1);
    // XA runs with the descriptor limit a service manager leaves by default.
    c.start_limited(XA, 1024);
    c.start(XC);
    let a_card = card(&c.dirs[XA]);
    let r = c.send(XA, "XC.POLICE", "new", "mla-request", &{
        let mut b = example("mla-request.json");
        b["requested_authority"]["country"] = json!("XC");
        b["requested_authority"]["agency"] = json!("XC.POLICE");
        b
    });
    let case_s = r["case_id"].as_str().unwrap().to_string();
    let case: CaseId = case_s.parse().unwrap();
    c.wait_settled(XA, 1, WAIT);
    let pid = c.pid(XA).unwrap();
    let (threads, fds) = (
        rogatory_tests::threads_of(pid),
        rogatory_tests::descriptors_of(pid),
    );
    let mut xc = Forger::new(&c.dirs[XC]);
    // 3,000 items of 1 TiB: refused whole, nothing recorded.
    let tib = 1u64 << 40;
    let env = xc.seal(
        &a_card,
        case,
        &manifest((1..=3000).map(|i| item(i, tib)).collect()),
    );
    assert_eq!(
        xc.deliver(&a_card, env),
        (ReceiptEvent::Rejected, Some(ReasonCode::OverQuota))
    );
    let list = c
        .api(XA)
        .get::<serde_json::Value>(&format!("/v1/evidence/{case_s}"))
        .unwrap();
    assert!(list.as_array().unwrap().is_empty(), "{list}");
    // 1,000 of them: listed, and every one refused by the quotas, never fetched.
    let env = xc.seal(
        &a_card,
        case,
        &manifest((1..=1000).map(|i| item(i, tib)).collect()),
    );
    assert_eq!(xc.deliver(&a_card, env), (ReceiptEvent::Accepted, None));
    let list = c
        .api(XA)
        .get::<serde_json::Value>(&format!("/v1/evidence/{case_s}"))
        .unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1000);
    assert!(
        list.iter().all(|r| r["state"] == "refused"),
        "{:?}",
        list[0]
    );
    assert!(list[0]["problem"].as_str().unwrap().contains("quota"));
    // 1,000 small items: accepted, but received a few at a time.
    let env = xc.seal(
        &a_card,
        case,
        &manifest((1001..=2000).map(|i| item(i, 1024)).collect()),
    );
    assert_eq!(xc.deliver(&a_card, env), (ReceiptEvent::Accepted, None));
    let check = |c: &Cluster, when: &str| {
        let pid = c.pid(XA).unwrap();
        let st = c.api(XA).get::<serde_json::Value>("/v1/status").unwrap();
        assert_eq!(st["agency"], "XA.MOJ-CA", "{when}");
        let (t, f) = (
            rogatory_tests::threads_of(pid),
            rogatory_tests::descriptors_of(pid),
        );
        eprintln!("{when}: {t} threads, {f} descriptors");
        assert!(t <= threads + 16, "{when}: {t} threads (from {threads})");
        assert!(f <= fds + 40, "{when}: {f} descriptors (from {fds})");
    };
    std::thread::sleep(Duration::from_secs(2));
    check(&c, "with 1,000 items expected");
    c.stop(XA);
    c.start_limited(XA, 1024);
    std::thread::sleep(Duration::from_secs(2));
    check(&c, "after a restart");
    // The holder was told which items were refused, and XA logged each.
    let log = {
        c.stop(XA);
        audit_log(root, &c.dirs[XA], &case_s)
    };
    assert_eq!(
        log.iter()
            .filter(|e| e["event"] == "evidence-refused")
            .count(),
        1000
    );
}

#[test]
fn an_envelope_dated_in_2076_is_refused_and_starts_nothing() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA", "XC.POLICE"], 1);
    c.start(XA);
    let a_card = card(&c.dirs[XA]);
    let mut xc = Forger::new(&c.dirs[XC]);
    let mut body = example("preservation-request.json");
    body["requesting_authority"]["country"] = json!("XC");
    body["requesting_authority"]["agency"] = json!("XC.POLICE");
    let m = message(MessageType::PreservationRequest, body);
    let case = CaseId::generate();
    let in_2076 = rogatory_proto::time::parse_utc("2076-03-01T09:00:00Z").unwrap();
    let env = xc.seal_at(&a_card, case, &m, in_2076);
    assert_eq!(
        xc.deliver(&a_card, env),
        (ReceiptEvent::Rejected, Some(ReasonCode::FutureDated))
    );
    let cases = c.api(XA).get::<serde_json::Value>("/v1/cases").unwrap();
    assert!(cases.as_array().unwrap().is_empty(), "{cases}");
    let deadlines = c
        .api(XA)
        .get::<serde_json::Value>("/v1/deadlines?within=100000")
        .unwrap();
    assert!(deadlines.as_array().unwrap().is_empty(), "{deadlines}");
    // Within the tolerance, the same request opens the case, its period from today.
    let env = xc.seal_at(&a_card, case, &m, rogatory_proto::time::now_unix() + 120);
    assert_eq!(xc.deliver(&a_card, env), (ReceiptEvent::Accepted, None));
    let d = c
        .api(XA)
        .get::<serde_json::Value>("/v1/deadlines?within=100000")
        .unwrap();
    let today = rogatory_proto::case::Day::of_unix(rogatory_proto::time::now_unix());
    assert_eq!(d[0]["started"], today.to_string(), "{d}");
}

/// Tries `n` idle TCP connections to `addr` at once, from 10 threads; returns those the kernel
/// completed (the others find the listen queue full and are given up after a moment).
fn idle_connections(addr: std::net::SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    let threads: Vec<_> = (0..10)
        .map(|_| {
            std::thread::spawn(move || {
                (0..n / 10)
                    .filter_map(|_| {
                        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

#[test]
fn a_flood_of_idle_api_connections_neither_exhausts_descriptors_nor_stops_the_clerk() {
    rogatory_tests::raise_descriptor_limit();
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start_limited(XA, 1024);
    c.start(XB);
    let pid = c.pid(XA).unwrap();
    let fds = rogatory_tests::descriptors_of(pid);
    let addr: std::net::SocketAddr = std::fs::read_to_string(c.dirs[XA].join("api.addr"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let flood = idle_connections(addr, 1100);
    let during = rogatory_tests::descriptors_of(pid);
    // Beyond the node's 64, the rest wait in the kernel's listen queue, or find it full.
    eprintln!(
        "1,100 idle connections tried, {} completed by the kernel; the node's descriptors: {fds} before, {during} during the flood",
        flood.len()
    );
    assert!(flood.len() > 64, "{}", flood.len());
    assert!(during <= fds + 64 + 16, "{during} descriptors (from {fds})");
    // The clerk's command line (the Unix socket) is not in the flood's way: a message goes out.
    let body = root.join("liaison.json");
    std::fs::write(&body, example("liaison.json").to_string()).unwrap();
    run_line(
        root,
        &format!(
            "send --to XB.DOJ-CA --case new --type liaison --body {} --data-dir {}",
            body.display(),
            c.dirs[XA].display()
        ),
    )
    .ok();
    c.wait_settled(XA, 1, WAIT);
    // The node closes idle connections after the header timeout (10 s) and takes the next.
    std::thread::sleep(Duration::from_secs(12));
    let closed = flood
        .iter()
        .filter(|s| {
            use std::io::Read;
            s.set_nonblocking(true).unwrap();
            matches!((&**s).read(&mut [0u8; 1]), Ok(0))
        })
        .count();
    eprintln!("after 12 s, {closed} idle connections were closed by the node");
    assert!(closed >= 64, "{closed}");
    drop(flood);
    // The TCP API answers again.
    let api = rogatory_node::client::Client::connect_tcp(&c.dirs[XA]).unwrap();
    assert_eq!(
        api.get::<serde_json::Value>("/v1/status").unwrap()["agency"],
        "XA.MOJ-CA"
    );
    // A body of 20 MB is refused before it is parsed, and costs the node nothing to speak of.
    let huge = json!({ "to": ["XB.DOJ-CA"], "case": "new", "type": "liaison",
        "body": { "subject": "x".repeat(20 << 20) } });
    let e = c
        .api(XA)
        .post::<serde_json::Value>("/v1/send", &huge)
        .unwrap_err();
    assert!(
        format!("{e:#}").contains("larger than this route takes"),
        "{e:#}"
    );
    let peak: u64 = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    eprintln!(
        "the node's peak RSS after a 20 MB body: {} MiB",
        peak / 1024
    );
    assert!(peak < 160 * 1024, "peak RSS {} MiB", peak / 1024);
}

#[test]
fn a_flood_of_raw_connections_on_the_libp2p_port_holds_few_descriptors_and_delivery_goes_on() {
    rogatory_tests::raise_descriptor_limit();
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA", "XC.POLICE"], 1);
    c.start_limited(XA, 1024);
    c.start(XB);
    // XB is connected to XA before the flood.
    let body = example("liaison.json");
    let case = c.send(XB, "XA.MOJ-CA", "new", "liaison", &body)["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    c.wait_settled(XB, 1, WAIT);
    let pid = c.pid(XA).unwrap();
    let fds = rogatory_tests::descriptors_of(pid);
    let a_card = card(&c.dirs[XA]);
    let port: u16 = a_card.body().addresses[0]
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // A sustained flood: 1,100 raw connections, reopened as the node closes them, for 20 s.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooder = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            let mut opened = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                held.retain(|s: &std::net::TcpStream| {
                    use std::io::Read;
                    s.set_nonblocking(true).unwrap();
                    !matches!((&*s).read(&mut [0u8; 64]), Ok(0))
                });
                while held.len() < 1100 {
                    match std::net::TcpStream::connect_timeout(&target, Duration::from_millis(100))
                    {
                        Ok(s) => {
                            opened += 1;
                            held.push(s);
                        }
                        Err(_) => break,
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            opened
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    let mut most = 0;
    for n in 0..10 {
        // Delivery goes on over the partner's connection, both ways.
        c.send(XB, "XA.MOJ-CA", &case, "liaison", &body);
        c.wait_settled(XB, 2 + n, WAIT);
        most = most.max(rogatory_tests::descriptors_of(pid));
    }
    c.send(XA, "XB.DOJ-CA", &case, "liaison", &body);
    c.wait_settled(XA, 1, WAIT);
    most = most.max(rogatory_tests::descriptors_of(pid));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = flooder.join().unwrap();
    eprintln!("{opened} raw connections opened; descriptors {fds} before, at most {most} during");
    assert!(opened >= 1100, "{opened}");
    assert!(most <= fds + 32 + 24, "{most} descriptors (from {fds})");
    // The listener survived: a partner that was not connected gets through.
    c.start(XC);
    c.send(XC, "XA.MOJ-CA", "new", "liaison", &body);
    c.wait_settled(XC, 1, WAIT);
}

#[test]
fn a_server_left_on_a_stale_api_address_receives_no_token_and_no_message() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let mut c = Cluster::new(root, &["XA.MOJ-CA", "XB.DOJ-CA"], 1);
    c.start(XA);
    // Started with ROGATORY_PASSPHRASE, the node keeps no passphrase in its environment.
    let environ = std::fs::read(format!("/proc/{}/environ", c.pid(XA).unwrap())).unwrap();
    assert!(
        !environ
            .windows(b"ROGATORY_PASSPHRASE".len())
            .any(|w| w == b"ROGATORY_PASSPHRASE"),
        "the passphrase stayed in the node's environment"
    );
    let dir = c.dirs[XA].clone();
    let addr = std::fs::read_to_string(dir.join("api.addr")).unwrap();
    let token = std::fs::read_to_string(dir.join("api-token")).unwrap();
    // The node crashes, leaving api.addr and api.sock; someone takes its port.
    c.kill(XA);
    let fake = std::net::TcpListener::bind(addr.trim()).unwrap();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    {
        let heard = std::sync::Arc::clone(&heard);
        std::thread::spawn(move || {
            for s in fake.incoming() {
                let Ok(mut s) = s else { continue };
                use std::io::{Read, Write};
                s.set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                let mut buf = [0u8; 65536];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    heard.lock().unwrap().extend_from_slice(&buf[..n]);
                    let answer = br#"{"proof":"00","queued":[{"envelope_id":"00"}]}"#;
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        answer.len()
                    );
                    let _ = s.write_all(answer);
                }
            }
        });
    }
    // The clerk sends a request: the command line finds no node, and says so.
    let body = root.join("request.json");
    std::fs::write(&body, example("mla-request.json").to_string()).unwrap();
    let r = run_line(
        root,
        &format!(
            "send --to XB.DOJ-CA --case new --type mla-request --body {} --data-dir {}",
            body.display(),
            dir.display()
        ),
    )
    .failed();
    assert!(r.stderr.contains("not running"), "{}", r.stderr);
    // A client of the TCP address asks the node to prove itself first: the fake cannot.
    let e = rogatory_node::client::Client::connect_tcp(&dir)
        .err()
        .unwrap();
    assert!(format!("{e:#}").contains("cannot prove"), "{e:#}");
    std::thread::sleep(Duration::from_millis(500));
    let heard = String::from_utf8_lossy(&heard.lock().unwrap()).to_string();
    assert!(!heard.contains(token.trim()), "the token leaked: {heard}");
    assert!(!heard.contains("Bearer"), "{heard}");
    assert!(!heard.contains("Suspect"), "the request leaked: {heard}");
    assert!(
        heard.is_empty() || heard.starts_with("GET /v1/proof?nonce="),
        "{heard}"
    );
}
