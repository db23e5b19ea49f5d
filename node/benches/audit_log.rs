//! Audit-log throughput and proof costs on the real store, beside the bare costs they are built
//! from, measured in the same run. A bench binary rather than criterion: a durable append is an
//! fsync, and the interesting numbers are rates over thousands of them.
//!
//! `cargo bench -p rogatory-node --bench audit_log` prints a Markdown table. Set
//! `ROGATORY_BENCH_ENTRIES` to change the log size for the proof measurements (default 10^6).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use redb::{Database, TableDefinition};
use rogatory_node::store::{LogSigner, STORE_FILE, Store};
use rogatory_proto::audit::entry::{Actor, AuditEntry, AuditEvent};
use rogatory_proto::audit::merkle::{leaf_hash, verify_inclusion};
use rogatory_proto::audit::note::Checkpoint;
use rogatory_proto::ids::{AgencyId, CaseId, Sha256Digest};
use rogatory_proto::keys::SigningKey;

fn entry(case: CaseId, agency: &AgencyId, i: u64) -> AuditEntry {
    AuditEntry {
        seq: 0,
        time: 1_790_000_000 + i,
        case_id: case,
        event: AuditEvent::EnvelopeReceived,
        actor: Actor {
            agency: agency.clone(),
            user: None,
        },
        peer: Some(AgencyId::new("XB.DOJ-CA").unwrap()),
        envelope_id: Some(Sha256Digest::of(&i.to_le_bytes())),
        receipt_hash: None,
        transition: None,
        reason: None,
        commitment: None,
    }
}

fn per_sec(n: u64, secs: f64) -> String {
    format!("{:.0}", n as f64 / secs)
}

fn us(secs: f64) -> String {
    format!("{:.1} µs", secs * 1e6)
}

fn main() {
    let total: u64 = std::env::var("ROGATORY_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let agency = AgencyId::new("XA.MOJ-CA").unwrap();
    let key = SigningKey::from_seed(&[7; 32]);
    let signer = LogSigner {
        agency: &agency,
        key: &key,
    };
    let case = CaseId::v7(1_790_000_000_000, &[1; 10]);
    let sample = entry(case, &agency, 0).to_cbor().unwrap();

    // Bare: SHA-256 of a leaf.
    let n = 200_000u64;
    let t = Instant::now();
    for _ in 0..n {
        black_box(leaf_hash(black_box(&sample)));
    }
    let leaf_cost = t.elapsed().as_secs_f64() / n as f64;

    // Bare: the Ed25519 signature a checkpoint needs (over a checkpoint-sized text).
    let body = b"rogatory.XA.MOJ-CA/case/01a22522-d4f2-73cd-be4f-be9050503898\n1000000\nhJ+hOZwH3r1+0w7PZ++hF6RtOytRCjGmj/Q060+sxvM=\n";
    let n_sig = 2000u64;
    let t = Instant::now();
    for _ in 0..n_sig {
        black_box(key.sign(black_box(body)));
    }
    let sign_cost = t.elapsed().as_secs_f64() / n_sig as f64;

    // Bare: one fsync'd redb commit of one small row, in a database of its own.
    let bare_dir = tempfile::tempdir().unwrap();
    let bare = Database::create(bare_dir.path().join("bare.redb")).unwrap();
    const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
    let commits = 300u64;
    let t = Instant::now();
    for i in 0..commits {
        let tx = bare.begin_write().unwrap();
        tx.open_table(T)
            .unwrap()
            .insert(i, sample.as_slice())
            .unwrap();
        tx.commit().unwrap();
    }
    let commit_cost = t.elapsed().as_secs_f64() / commits as f64;

    // Durable single appends (one transaction, one signed checkpoint each).
    let store = Store::open(dir.path()).unwrap();
    let singles = 300u64;
    let t = Instant::now();
    for i in 0..singles {
        store
            .append(&signer, &case, &mut [entry(case, &agency, i)])
            .unwrap();
    }
    let single_cost = t.elapsed().as_secs_f64() / singles as f64;

    // Batches of 100 up to `total` entries.
    let mut appended = singles;
    let t = Instant::now();
    while appended < total {
        let k = 100.min(total - appended);
        let mut batch: Vec<AuditEntry> =
            (0..k).map(|j| entry(case, &agency, appended + j)).collect();
        store.append(&signer, &case, &mut batch).unwrap();
        appended += k;
    }
    let batched = t.elapsed().as_secs_f64();
    let batch_rate = (total - singles) as f64 / batched;

    // Proofs at `total` entries.
    let cp_note = store.checkpoint(&case, None).unwrap();
    let note = rogatory_proto::audit::note::Note::parse(&cp_note).unwrap();
    let cp = Checkpoint::parse(note.text()).unwrap();
    let indices: Vec<u64> = (0..2000u64).map(|i| (i * 7_919_993) % total).collect();
    let t = Instant::now();
    let mut proofs = Vec::new();
    for &i in &indices {
        proofs.push(store.prove(&case, i, None).unwrap());
    }
    let gen_cost = t.elapsed().as_secs_f64() / indices.len() as f64;
    let t = Instant::now();
    for p in &proofs {
        let leaf = leaf_hash(p.extra.as_deref().unwrap());
        verify_inclusion(p.index, cp.size, &leaf, &p.proof, &cp.root).unwrap();
    }
    let verify_cost = t.elapsed().as_secs_f64() / proofs.len() as f64;
    drop(store);
    let bytes = std::fs::metadata(dir.path().join(STORE_FILE))
        .unwrap()
        .len();

    println!("| measurement | result | baseline (same run) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| durable single append (entry + subtree hashes + signed checkpoint, one fsync'd commit) | {} ({} appends/s) | bare fsync'd redb commit of one row: {} | {:.2}× |",
        us(single_cost),
        per_sec(1, single_cost),
        us(commit_cost),
        single_cost / commit_cost
    );
    println!(
        "| (the same, against the bare commit plus the checkpoint's Ed25519 signature) | | bare commit + signature: {} | {:.2}× |",
        us(commit_cost + sign_cost),
        single_cost / (commit_cost + sign_cost)
    );
    println!(
        "| batched appends, 100 per commit, up to {total} entries | {:.0} entries/s | SHA-256 of one leaf: {} ({} /s) | {:.0} leaf hashes per appended entry-time |",
        batch_rate,
        us(leaf_cost),
        per_sec(1, leaf_cost),
        (1.0 / batch_rate) / leaf_cost
    );
    println!(
        "| inclusion proof generation at {total} entries (2000 random leaves, from the store) | {} | | |",
        us(gen_cost)
    );
    println!(
        "| inclusion proof verification at {total} entries | {} | | |",
        us(verify_cost)
    );
    println!(
        "| bytes on disk per entry (redb file / entries) | {:.0} B | entry CBOR: {} B | {:.1}× |",
        bytes as f64 / total as f64,
        sample.len(),
        bytes as f64 / total as f64 / sample.len() as f64
    );
}
