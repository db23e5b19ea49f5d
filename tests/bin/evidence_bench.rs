//! The evidence benchmark: one large item between two real nodes (`rogatory run`) on 127.0.0.1,
//! and in the same run the same bytes moved bare over the same transports and over plain
//! loopback TCP.
//!
//! 1. Baselines, in this process: plain TCP on 127.0.0.1 (one stream), and libp2p
//!    request-response with the evidence codec (4 MiB responses, 8 in flight, no cryptography of
//!    ours, no storage) over TCP + Noise + Yamux and over QUIC; and the bare cryptography of the
//!    content (ChaCha20-Poly1305 sealing, SHA-256) on one core.
//! 2. For each transport: `rogatory evidence add` on the holder (hash + seal, one pass), then
//!    from `evidence send` until the receiver has every chunk opened, hashed, written, synced and
//!    the whole verified; MB/s of each, and the peak RSS of each node.
//!
//! Usage: `cargo run --release -p rogatory-tests --bin rogatory-evidence-bench -- [MIB]`
//! (default 4096 MiB; needs about three times that in free space under the temporary
//! directory).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, noise, tcp, yamux};
use rogatory_node::net::{EVIDENCE_PROTOCOL, EvidenceCodec};
use rogatory_proto::evidence::{CHUNK, ContentKey, MAX_CHUNKS_PER_REQUEST, SEALED_CHUNK};
use rogatory_tests::{Cluster, Rng, run_line};

const MIB: f64 = 1024.0 * 1024.0;

fn rate(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB / d.as_secs_f64()
}

/// Plain TCP on loopback: `total` bytes in 4 MiB writes, read to the end.
fn plain_tcp(total: u64) -> f64 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 4 << 20];
        let mut n = 0u64;
        loop {
            let k = s.read(&mut buf).unwrap();
            if k == 0 {
                break n;
            }
            n += k as u64;
        }
    });
    let buf = vec![0x5au8; 4 << 20];
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut sent = 0u64;
    while sent < total {
        let k = (total - sent).min(buf.len() as u64) as usize;
        s.write_all(&buf[..k]).unwrap();
        sent += k as u64;
    }
    drop(s);
    assert_eq!(reader.join().unwrap(), total);
    rate(total, start.elapsed())
}

fn swarm(quic: bool) -> libp2p::Swarm<request_response::Behaviour<EvidenceCodec>> {
    let behaviour = |_: &libp2p::identity::Keypair| {
        request_response::Behaviour::with_codec(
            EvidenceCodec::EVIDENCE,
            [(EVIDENCE_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(120))
                .with_max_concurrent_streams(256),
        )
    };
    let b = libp2p::SwarmBuilder::with_new_identity().with_tokio();
    if quic {
        b.with_quic()
            .with_behaviour(behaviour)
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build()
    } else {
        b.with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(behaviour)
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
    }
}

/// Bare libp2p: `total` bytes as responses of four sealed chunks to small requests, eight in
/// flight, as the nodes do, with nothing read from or written to disk.
async fn raw_libp2p(total: u64, quic: bool) -> f64 {
    let mut server = swarm(quic);
    let listen = if quic {
        "/ip4/127.0.0.1/udp/0/quic-v1"
    } else {
        "/ip4/127.0.0.1/tcp/0"
    };
    server.listen_on(listen.parse().unwrap()).unwrap();
    let addr: Multiaddr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    let server_id = *server.local_peer_id();
    let response = {
        let mut r = vec![0x5au8; 1 + MAX_CHUNKS_PER_REQUEST as usize * SEALED_CHUNK];
        r[0] = 0;
        r
    };
    let per = (response.len() - 1) as u64;
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
    let mut client = swarm(quic);
    client.add_peer_address(server_id, addr);
    let request = vec![0u8; 64];
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
    let requests = total.div_ceil(per);
    let start = Instant::now();
    let (mut sent, mut done) = (0u64, 0u64);
    while sent < requests.min(8) {
        client
            .behaviour_mut()
            .send_request(&server_id, request.clone());
        sent += 1;
    }
    while done < requests {
        match client.select_next_some().await {
            SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Response { .. },
                ..
            }) => {
                done += 1;
                if sent < requests {
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
    let r = rate(requests * per, start.elapsed());
    server_task.abort();
    r
}

/// The bare cryptography of the content, one core: sealing and SHA-256, MB/s each.
fn bare_crypto() -> (f64, f64) {
    use sha2::Digest;
    let key = ContentKey::generate();
    let plain = vec![0x5au8; CHUNK];
    let n = 256u64;
    let start = Instant::now();
    for i in 0..n {
        let mut b = plain.clone();
        rogatory_proto::evidence::seal_chunk(&key, n * CHUNK as u64, i, &mut b).unwrap();
    }
    let seal = rate(n * CHUNK as u64, start.elapsed());
    let start = Instant::now();
    let mut h = sha2::Sha256::new();
    for _ in 0..n {
        h.update(&plain);
    }
    let _ = h.finalize();
    (seal, rate(n * CHUNK as u64, start.elapsed()))
}

fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Writes `mib` MiB of content no chunk of which repeats.
fn write_content(path: &Path, mib: u64) {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let block: Vec<u8> = (0..1 << 20).map(|_| rng.below(256) as u8).collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut b = block.clone();
    for i in 0..mib {
        b[..8].copy_from_slice(&i.to_le_bytes());
        f.write_all(&b).unwrap();
    }
    f.flush().unwrap();
}

/// One item between two nodes over `transport`; prints and returns the rates.
fn nodes(root: &Path, file: &Path, mib: u64, transport: &str) {
    let dir = root.join(transport);
    std::fs::create_dir(&dir).unwrap();
    let mut c = Cluster::with_transport(&dir, &["XA.MOJ-CA", "XB.DOJ-CA"], 1, transport);
    c.start(0);
    c.start(1);
    let case = c.first_request();
    let bytes = mib << 20;
    let start = Instant::now();
    run_line(
        &dir,
        &format!(
            "evidence add {case} {} --data-dir xb.doj-ca",
            file.display()
        ),
    )
    .ok();
    let add = start.elapsed();
    let start = Instant::now();
    run_line(
        &dir,
        &format!("evidence send {case} --to XA.MOJ-CA --data-dir xb.doj-ca"),
    )
    .ok();
    let state = loop {
        let v = c
            .api(0)
            .get::<serde_json::Value>(&format!("/v1/evidence/{case}?wait=300"))
            .unwrap();
        let s = v[0]["state"].as_str().unwrap_or("none").to_string();
        if s != "expected" && s != "none" {
            break s;
        }
    };
    let transfer = start.elapsed();
    assert_eq!(state, "verified");
    let (rss_a, rss_b) = (peak_kib(c.pid(0).unwrap()), peak_kib(c.pid(1).unwrap()));
    println!(
        "nodes over {transport}: {mib} MiB; add (hash + seal, one pass) {:.0} MB/s in {:.1} s; \
         transfer (send, receive, open, hash, write, sync, verify) {:.0} MB/s in {:.1} s; \
         end to end {:.0} MB/s; peak RSS holder {} MiB, receiver {} MiB",
        rate(bytes, add),
        add.as_secs_f64(),
        rate(bytes, transfer),
        transfer.as_secs_f64(),
        rate(bytes, add + transfer),
        rss_b / 1024,
        rss_a / 1024
    );
    c.stop(0);
    c.stop(1);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn main() {
    let mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4096);
    let t = tempfile::tempdir().unwrap();
    let bytes = mib << 20;
    let (seal, sha) = bare_crypto();
    println!(
        "bare crypto, one core: ChaCha20-Poly1305 sealing {seal:.0} MB/s, SHA-256 {sha:.0} MB/s"
    );
    println!("plain TCP on loopback: {:.0} MB/s", plain_tcp(bytes));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tcp = rt.block_on(raw_libp2p(bytes, false));
    println!("bare libp2p over TCP + Noise + Yamux: {tcp:.0} MB/s");
    let quic = rt.block_on(raw_libp2p(bytes, true));
    println!("bare libp2p over QUIC: {quic:.0} MB/s");
    drop(rt);
    let file = t.path().join("image.dd");
    write_content(&file, mib);
    for transport in ["tcp", "quic"] {
        nodes(t.path(), &file, mib, transport);
    }
}
