//! Envelope cost against the bare cryptography it is made of (criterion).
//!
//! For each message size: `envelope` seals and opens a real liaison message of that size for one
//! addressee; `bare` performs the same cryptographic operations on a byte string of the same size
//! with no CBOR or COSE around them: Ed25519 signature of the message, X25519 ephemeral key and
//! agreement, HKDF-SHA-256, ChaCha20-Poly1305, Ed25519 signature of the ciphertext; then the
//! reverse (two strict verifications, agreement, HKDF, decryption). `benches/ratio.rs` measures
//! the same pair interleaved, for ratios that hold on a machine whose speed drifts.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "common.rs"]
mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let f = common::Fixture::new();
    for (size, name) in common::SIZES {
        let m = common::message(size);
        let plain = vec![b'a'; size];
        let mut g = c.benchmark_group(format!("seal+open/{name}"));
        g.throughput(Throughput::Elements(1));
        if size >= 1024 * 1024 {
            g.sample_size(30);
        }
        g.bench_function(BenchmarkId::new("envelope", name), |b| {
            b.iter(|| black_box(f.envelope_round_trip(black_box(&m))))
        });
        g.bench_function(BenchmarkId::new("bare", name), |b| {
            b.iter(|| black_box(f.bare_round_trip(black_box(&plain))))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
