//! The node benchmark: two real nodes (`rogatory run`) on 127.0.0.1, durable end to end, and in
//! the same run the two baselines it is compared with.
//!
//! 1. Bare cryptography of one message's round, in this process: seal (A), open (B), sign the
//!    receipt (B), verify it (A); measured before the nodes start and again after they stop, as
//!    the machine's speed drifts. Two nodes sharing two cores can do at most 2 / the mean of the
//!    two costs messages per second: the crypto bound.
//! 2. Raw libp2p request-response, in this process: the same transport (TCP + Noise + Yamux),
//!    the same request and response sizes, no cryptography of ours and no storage.
//! 3. The nodes: messages sent through A's local API (`POST /v1/send?wait=`, or
//!    `POST /v1/send/batch?wait=` with 8 messages per request), each counted when A has verified
//!    and committed B's receipt (B committed the envelope before signing it), with 1 and with 64
//!    messages in flight; p50 and p99 latency from the API call to the settled receipt; idle
//!    and peak RSS of each node.
//!
//! 4. The CPU time each process used per message in the 64-in-flight run.
//!
//! `ROGATORY_LOADGEN_OPEN_THREADS=N` sets the nodes' `limits.open_threads` (0: the store worker
//! opens envelopes itself).
//!
//! Usage: `cargo run --release -p rogatory-tests --bin rogatory-loadgen -- [MESSAGES]`
//! (default 3000 messages for the 64-in-flight run; the 1-in-flight run sends a tenth), and
//! `… -- cases [N]`: the time a case update takes to show on the other node, with N open cases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, noise, tcp, yamux};
use rogatory_node::keydir::KeyDir;
use rogatory_node::net::{ENVELOPE_PROTOCOL, EnvelopeCodec};
use rogatory_proto::envelope::{self, Addressee, ChainLink, Limits, Recipient, SealParams, Sender};
use rogatory_proto::ids::{CaseId, MessageId};
use rogatory_proto::message::{Message, MessageType};
use rogatory_proto::receipt::{Receipt, ReceiptEvent, verify_receipt};
use rogatory_tests::{Cluster, agency, example};

/// One message's round of cryptography; returns the envelope and receipt (for their sizes).
fn crypto_round(a: &KeyDir, b: &KeyDir, m: &Message, case: CaseId) -> (Vec<u8>, Vec<u8>) {
    let sealed = envelope::seal(
        &Sender {
            card: &a.card,
            keys: &a.keys,
        },
        &[Addressee {
            card: &b.card,
            chain: ChainLink::FIRST,
            consistency: None,
        }],
        m,
        &SealParams {
            case_id: case,
            message_id: MessageId::generate(),
            sent_at: 1_790_000_000,
            checkpoint: None,
        },
        &Limits::default(),
    )
    .unwrap()
    .remove(0);
    let opened = envelope::open(
        &sealed.bytes,
        &Recipient {
            card: &b.card,
            keys: &b.keys,
        },
        std::slice::from_ref(&a.card),
        &Limits::default(),
    )
    .unwrap();
    let receipt = Receipt {
        version: envelope::PROTOCOL_VERSION,
        envelope_id: sealed.id,
        from: b.card.id().clone(),
        to: opened.info.from.clone(),
        event: ReceiptEvent::Accepted,
        reason: None,
        detail: None,
        received_at: 1_790_000_001,
        checkpoint: None,
        cosignature: None,
    }
    .sign(&b.keys)
    .unwrap()
    .bytes;
    verify_receipt(&receipt, &b.card, Some(&sealed.id)).unwrap();
    (sealed.bytes, receipt)
}

fn swarm() -> libp2p::Swarm<request_response::Behaviour<EnvelopeCodec>> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::new(
                [(ENVELOPE_PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_max_concurrent_streams(256),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Raw libp2p request-response: `total` requests of `request` bytes, each answered with
/// `response`, `window` in flight. Returns requests per second.
async fn raw_libp2p(request: Vec<u8>, response: Vec<u8>, total: usize, window: usize) -> f64 {
    let mut server = swarm();
    server
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let addr: Multiaddr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    let server_id = *server.local_peer_id();
    let server_task = tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            }) = server.select_next_some().await
            {
                let _ = server
                    .behaviour_mut()
                    .send_response(channel, response.clone());
            }
        }
    });
    let mut client = swarm();
    client.add_peer_address(server_id, addr);
    // Warm up: one round trip opens the connection.
    client
        .behaviour_mut()
        .send_request(&server_id, request.clone());
    loop {
        if let SwarmEvent::Behaviour(request_response::Event::Message {
            message: request_response::Message::Response { .. },
            ..
        }) = client.select_next_some().await
        {
            break;
        }
    }
    let start = Instant::now();
    let (mut sent, mut done) = (0, 0);
    while sent < window.min(total) {
        client
            .behaviour_mut()
            .send_request(&server_id, request.clone());
        sent += 1;
    }
    while done < total {
        match client.select_next_some().await {
            SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Response { .. },
                ..
            }) => {
                done += 1;
                if sent < total {
                    client
                        .behaviour_mut()
                        .send_request(&server_id, request.clone());
                    sent += 1;
                }
            }
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure { error, .. }) => {
                panic!("raw libp2p: {error}")
            }
            _ => {}
        }
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    server_task.abort();
    rate
}

fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user and system, all threads) a process has used so far.
fn proc_cpu(pid: &str) -> Duration {
    static TICK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let tick = *TICK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    });
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces), from the third on.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0);
    Duration::from_secs_f64(ticks / tick)
}

/// Messages per `POST /v1/send/batch` in the 64-in-flight run (8 client threads).
const BATCH: usize = 8;

struct NodeRun {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

/// `total` messages through A's API, `window` at a time, each waited for until settled: with
/// `per_request` 1, one `POST /v1/send?wait=` per message from `window` client threads; else
/// `POST /v1/send/batch?wait=` with `per_request` messages each, from `window / per_request`
/// threads. A message's latency is its request's.
fn node_run(c: &Cluster, total: usize, window: usize, per_request: usize, case: &str) -> NodeRun {
    let body = example("mla-request.json");
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let message = serde_json::json!({
        "to": ["XB.DOJ-CA"], "case": case, "type": "mla-request", "body": body
    });
    let workers: Vec<_> = (0..(window / per_request).max(1))
        .map(|_| {
            let api = c.api(0);
            let next = Arc::clone(&next);
            let message = message.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                loop {
                    let taken = next.fetch_add(per_request, Ordering::Relaxed);
                    if taken >= total {
                        break;
                    }
                    let n = per_request.min(total - taken);
                    let t = Instant::now();
                    let sent: Vec<serde_json::Value> = if per_request == 1 {
                        vec![api.post("/v1/send?wait=120", &message).unwrap()]
                    } else {
                        let r: serde_json::Value = api
                            .post(
                                "/v1/send/batch?wait=120",
                                &serde_json::json!({ "messages": vec![message.clone(); n] }),
                            )
                            .unwrap();
                        r["results"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|r| {
                                assert_eq!(r["status"], 200, "{r}");
                                r["sent"].clone()
                            })
                            .collect()
                    };
                    let took = t.elapsed();
                    for s in sent {
                        assert_eq!(s["queued"][0]["state"], "delivered", "{s}");
                        lat.push(took);
                    }
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert_eq!(lat.len(), total);
    let rate = total as f64 / start.elapsed().as_secs_f64();
    lat.sort();
    NodeRun {
        rate,
        p50: lat[lat.len() / 2],
        p99: lat[(lat.len() * 99 / 100).min(lat.len() - 1)],
    }
}

/// `rogatory-loadgen cases N`: N open MLA cases on each node (requests from A to B), then the
/// time from B's status update (`case update`) until A has applied it and B has A's receipt for
/// it (A applies and commits the new state before it signs that receipt), one at a time.
fn cases_bench(open: usize) {
    let t = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(t.path(), &["XA.MOJ-CA", "XB.DOJ-CA"], 2);
    c.start(0);
    c.start(1);
    let body = example("mla-request.json");
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let api = c.api(0);
            let next = Arc::clone(&next);
            let body = body.clone();
            std::thread::spawn(move || {
                let mut cases = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < open {
                    let r = api
                        .post::<serde_json::Value>(
                            "/v1/send",
                            &serde_json::json!({
                                "to": ["XB.DOJ-CA"], "case": "new", "type": "mla-request", "body": body
                            }),
                        )
                        .unwrap();
                    let id = r["queued"][0]["envelope_id"].as_str().unwrap().to_string();
                    api.get::<serde_json::Value>(&format!("/v1/outbox/{id}?wait=120")).unwrap();
                    cases.push(r["case_id"].as_str().unwrap().to_string());
                }
                cases
            })
        })
        .collect();
    let cases: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    println!(
        "{} MLA cases opened on both nodes in {:.1} s",
        cases.len(),
        start.elapsed().as_secs_f64()
    );
    let b = c.api(1);
    let mut lat = Vec::new();
    for (n, case) in cases.iter().enumerate().take(500) {
        let t0 = Instant::now();
        let r = b
            .post::<serde_json::Value>(
                "/v1/send",
                &serde_json::json!({
                    "to": ["XA.MOJ-CA"], "case": case, "type": "mla-status",
                    "body": { "status": "registered", "reference": format!("XB-{n}"),
                              "effective_at": "2026-11-29T10:00:00Z" }
                }),
            )
            .unwrap();
        let id = r["queued"][0]["envelope_id"].as_str().unwrap().to_string();
        let row = b
            .get::<serde_json::Value>(&format!("/v1/outbox/{id}?wait=60"))
            .unwrap();
        assert_eq!(row["state"], "delivered", "{row}");
        lat.push(t0.elapsed());
    }
    // A shows the new state.
    let a_view = c
        .api(0)
        .get::<serde_json::Value>(&format!("/v1/cases/{}", cases[0]))
        .unwrap();
    assert_eq!(a_view["status"], "registered");
    let pct = |lat: &mut Vec<Duration>| {
        lat.sort();
        (
            lat[lat.len() / 2].as_secs_f64() * 1e3,
            lat[(lat.len() * 99 / 100).min(lat.len() - 1)].as_secs_f64() * 1e3,
        )
    };
    let (p50, p99) = pct(&mut lat);
    println!(
        "case update on B (requested side) until A shows it ({} updates, {} open cases on each node): p50 {p50:.1} ms, p99 {p99:.1} ms",
        lat.len(),
        cases.len(),
    );
    // The requesting side's update is a proposal: B shows it when it accepts it, A once B's
    // confirmation is back (spec/CASES.md §4.1).
    let a = c.api(0);
    let (mut on_b, mut on_both) = (Vec::new(), Vec::new());
    for case in cases.iter().take(500) {
        let t0 = Instant::now();
        let r = a
            .post::<serde_json::Value>(
                "/v1/send",
                &serde_json::json!({
                    "to": ["XB.DOJ-CA"], "case": case, "type": "mla-status",
                    "body": { "status": "withdrawn", "effective_at": "2026-11-29T10:00:00Z" }
                }),
            )
            .unwrap();
        let id = r["queued"][0]["envelope_id"].as_str().unwrap().to_string();
        let row = a
            .get::<serde_json::Value>(&format!("/v1/outbox/{id}?wait=60"))
            .unwrap();
        assert_eq!(row["state"], "delivered", "{row}");
        on_b.push(t0.elapsed());
        let v = a
            .get::<serde_json::Value>(&format!("/v1/cases/{case}?wait=60"))
            .unwrap();
        assert_eq!(v["status"], "withdrawn", "{v}");
        on_both.push(t0.elapsed());
    }
    let (b50, b99) = pct(&mut on_b);
    let (c50, c99) = pct(&mut on_both);
    println!(
        "case update on A (requesting side, {} proposals) until B shows it: p50 {b50:.1} ms, p99 {b99:.1} ms; until A shows it confirmed: p50 {c50:.1} ms, p99 {c99:.1} ms",
        on_b.len()
    );
    c.stop(0);
    c.stop(1);
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("cases") {
        let n = std::env::args()
            .nth(2)
            .and_then(|a| a.parse().ok())
            .unwrap_or(1000);
        cases_bench(n);
        return;
    }
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3000);
    let t = tempfile::tempdir().unwrap();

    // 1. Bare cryptography.
    let (a, b) = (agency(t.path(), "XA.MOJ-CA"), agency(t.path(), "XB.DOJ-CA"));
    let m = Message::from_json(MessageType::MlaRequest, &example("mla-request.json")).unwrap();
    let case = CaseId::generate();
    let (env, receipt) = crypto_round(&a, &b, &m, case);
    // Measured again after the nodes' runs: the machine's speed drifts within a run.
    let bare = || {
        for _ in 0..100 {
            crypto_round(&a, &b, &m, case);
        }
        let rounds = 2000;
        let start = Instant::now();
        for _ in 0..rounds {
            crypto_round(&a, &b, &m, case);
        }
        start.elapsed() / rounds
    };
    let before = bare();
    println!(
        "bare crypto: {:.0} µs per message round (seal, open, receipt sign, receipt verify); \
         two cores: at most {:.0} msg/s",
        before.as_secs_f64() * 1e6,
        2.0 / before.as_secs_f64()
    );
    println!(
        "sizes: envelope {} bytes, receipt {} bytes",
        env.len(),
        receipt.len()
    );

    // 2. Raw libp2p.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let raw1 = rt.block_on(raw_libp2p(env.clone(), receipt.clone(), 3000, 1));
    let raw64 = rt.block_on(raw_libp2p(env.clone(), receipt.clone(), 30_000, 64));
    drop(rt);
    println!(
        "raw libp2p request-response: {raw1:.0} req/s with 1 in flight, {raw64:.0} req/s with 64"
    );

    // 3. Two nodes.
    let mut c = Cluster::new(t.path(), &["XA.MOJ-CA", "XB.DOJ-CA"], 2);
    if let Ok(n) = std::env::var("ROGATORY_LOADGEN_OPEN_THREADS") {
        let n: usize = n.parse().expect("ROGATORY_LOADGEN_OPEN_THREADS: a number");
        for dir in &c.dirs {
            let cfg = dir.join("rogatory.toml");
            let text = std::fs::read_to_string(&cfg).unwrap();
            let text = text.replacen("[limits]\n", &format!("[limits]\nopen_threads = {n}\n"), 1);
            std::fs::write(&cfg, text).unwrap();
        }
        println!("opening threads per node: {n}");
    }
    c.start(0);
    c.start(1);
    std::thread::sleep(Duration::from_secs(2));
    let pids = [c.pid(0).unwrap(), c.pid(1).unwrap()];
    let idle = pids.map(|p| proc_kib(p, "VmRSS:"));
    let warm = c
        .api(0)
        .post::<serde_json::Value>(
            "/v1/send",
            &serde_json::json!({
                "to": ["XB.DOJ-CA"], "case": "new", "type": "mla-request",
                "body": example("mla-request.json")
            }),
        )
        .unwrap();
    let case = warm["case_id"].as_str().unwrap().to_string();
    node_run(&c, 50, 8, 1, &case);
    let one = node_run(&c, (total / 10).max(100), 1, 1, &case);
    // 64 in flight, one request per message: what the batch route saves.
    let single = node_run(&c, total / 2, 64, 1, &case);
    let cpu_of = || {
        [
            proc_cpu(&pids[0].to_string()),
            proc_cpu(&pids[1].to_string()),
            proc_cpu("self"),
        ]
    };
    let cpu_before = cpu_of();
    let many = node_run(&c, total, 64, BATCH, &case);
    let cpu_after = cpu_of();
    let cpu: Vec<f64> = cpu_after
        .iter()
        .zip(cpu_before)
        .map(|(after, before)| (*after - before).as_secs_f64() * 1e6 / total as f64)
        .collect();
    let peak = pids.map(|p| proc_kib(p, "VmHWM:"));
    c.stop(0);
    c.stop(1);
    if std::env::var("ROGATORY_LOADGEN_KEEP").is_ok() {
        let keep = std::env::temp_dir().join("rogatory-loadgen-last");
        let _ = std::fs::remove_dir_all(&keep);
        std::fs::rename(t.path(), &keep).unwrap_or_else(|_| {
            eprintln!("could not keep the data directories");
        });
        eprintln!("data directories kept in {}", keep.display());
    }
    let after = bare();
    // The bound of the run: the mean of the bare round before and after the nodes.
    let crypto = (before + after) / 2;
    let bound = 2.0 / crypto.as_secs_f64();
    println!(
        "bare crypto again after the nodes: {:.0} µs per round; the run's crypto bound, from the \
         mean of the two ({:.0} µs): {bound:.0} msg/s",
        after.as_secs_f64() * 1e6,
        crypto.as_secs_f64() * 1e6
    );
    println!(
        "nodes, 1 in flight:  {:.0} msg/s, p50 {:.1} ms, p99 {:.1} ms",
        one.rate,
        one.p50.as_secs_f64() * 1e3,
        one.p99.as_secs_f64() * 1e3
    );
    println!(
        "nodes, 64 in flight, one message per request: {:.0} msg/s, p50 {:.1} ms, p99 {:.1} ms",
        single.rate,
        single.p50.as_secs_f64() * 1e3,
        single.p99.as_secs_f64() * 1e3
    );
    println!(
        "nodes, 64 in flight, {BATCH} messages per request: {:.0} msg/s, p50 {:.1} ms, p99 {:.1} ms",
        many.rate,
        many.p50.as_secs_f64() * 1e3,
        many.p99.as_secs_f64() * 1e3
    );
    println!(
        "CPU per message at 64 in flight: A {:.0} µs, B {:.0} µs, load generator {:.0} µs \
         (bare crypto round {:.0} µs)",
        cpu[0],
        cpu[1],
        cpu[2],
        crypto.as_secs_f64() * 1e6
    );
    println!(
        "RSS: idle A {:.1} MiB, B {:.1} MiB; peak A {:.1} MiB, B {:.1} MiB",
        idle[0] as f64 / 1024.0,
        idle[1] as f64 / 1024.0,
        peak[0] as f64 / 1024.0,
        peak[1] as f64 / 1024.0
    );
    println!(
        "ratios: 64 in flight = {:.0}% of the crypto bound, {:.1}% of raw libp2p; \
         1 in flight = {:.1}% of raw libp2p",
        100.0 * many.rate / bound,
        100.0 * many.rate / raw64,
        100.0 * one.rate / raw1
    );
}
