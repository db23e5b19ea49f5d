//! What the local API spends turning a JSON request body into a message (criterion): the example
//! MLA request (`spec/examples/mla-request.json`, about 2.5 KB), parsed from its bytes into a
//! `serde_json::Value` as the API's extractor does, then `Message::from_json` (typed
//! deserialization and the unknown-field check), `validate`, and the deterministic CBOR the
//! envelope carries.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rogatory_proto::message::{Message, MessageType};
use std::hint::black_box;

const EXAMPLE: &str = include_str!("../../spec/examples/mla-request.json");

fn bench(c: &mut Criterion) {
    let value: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
    let m = Message::from_json(MessageType::MlaRequest, &value).unwrap();
    let mut g = c.benchmark_group("message/mla-request");
    g.throughput(Throughput::Elements(1));
    g.bench_function("json bytes to value", |b| {
        b.iter(|| black_box(serde_json::from_str::<serde_json::Value>(black_box(EXAMPLE)).unwrap()))
    });
    g.bench_function("from_json", |b| {
        b.iter(|| {
            black_box(Message::from_json(MessageType::MlaRequest, black_box(&value)).unwrap())
        })
    });
    g.bench_function("validate", |b| b.iter(|| black_box(&m).validate().unwrap()));
    g.bench_function("to_cbor", |b| b.iter(|| black_box(black_box(&m).to_cbor())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
