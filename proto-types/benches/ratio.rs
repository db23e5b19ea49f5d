//! Envelope cost relative to the bare cryptography, measured interleaved.
//!
//! On a shared machine the speed drifts between criterion's groups, which makes ratios of
//! separately measured groups unreliable. This harness alternates short rounds of envelope and
//! bare operations (the same work as `benches/envelope.rs`) and reports, per size, the median of
//! the per-round ratios and the median time of each: drift affects both sides of a round alike.
//!
//! `cargo bench -p rogatory-proto --bench ratio` prints a Markdown table.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "common.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; accept and ignore arguments.
    let f = common::Fixture::new();
    println!(
        "| message | envelope seal+open | bare crypto seal+open | envelope msgs/s | bare msgs/s | ratio |"
    );
    println!("|---|---|---|---|---|---|");
    for (size, name) in common::SIZES {
        let m = common::message(size);
        let plain = vec![b'a'; size];
        let per_round = Duration::from_millis(if size >= 1 << 20 { 400 } else { 150 });
        // Calibrate the number of operations per round on the envelope side.
        let t = Instant::now();
        black_box(f.envelope_round_trip(&m));
        let n = ((per_round.as_secs_f64() / t.elapsed().as_secs_f64()) as usize).max(3);
        // Warm up both.
        for _ in 0..n {
            black_box(f.envelope_round_trip(&m));
            black_box(f.bare_round_trip(&plain));
        }
        let rounds = 15;
        let (mut env, mut bare, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = Instant::now();
            for _ in 0..n {
                black_box(f.envelope_round_trip(black_box(&m)));
            }
            let e = t.elapsed().as_secs_f64() / n as f64;
            let t = Instant::now();
            for _ in 0..n {
                black_box(f.bare_round_trip(black_box(&plain)));
            }
            let b = t.elapsed().as_secs_f64() / n as f64;
            env.push(e);
            bare.push(b);
            ratio.push(e / b);
        }
        let (e, b, r) = (median(&mut env), median(&mut bare), median(&mut ratio));
        let fmt = |s: f64| {
            if s < 1e-3 {
                format!("{:.0} µs", s * 1e6)
            } else {
                format!("{:.2} ms", s * 1e3)
            }
        };
        println!(
            "| {name} | {} | {} | {:.0} | {:.0} | {r:.2}× |",
            fmt(e),
            fmt(b),
            1.0 / e,
            1.0 / b
        );
    }
}
