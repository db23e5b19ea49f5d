//! Envelope cost against the bare cryptography it is made of, measured in the same run.
//!
//! For each message size: `envelope/*` seals and opens a real liaison message of that size for
//! one addressee; `bare/*` performs the same cryptographic operations on a byte string of the
//! same size with no CBOR or COSE around them: Ed25519 signature of the message, X25519
//! ephemeral key and agreement, HKDF-SHA-256, ChaCha20-Poly1305, Ed25519 signature of the
//! ciphertext; then the reverse (two strict verifications, agreement, HKDF, decryption).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey};
use hkdf::Hkdf;
use rogatory_proto::card::{AgencyCard, CardDetails, Role};
use rogatory_proto::envelope::*;
use rogatory_proto::ids::{AgencyId, CaseId, MessageId};
use rogatory_proto::keys::AgencySecretKeys;
use rogatory_proto::message::{Handling, HandlingCode, LiaisonMessage, Message};
use sha2::Sha256;
use std::hint::black_box;
use x25519_dalek::{PublicKey, StaticSecret};

const SIZES: [(usize, &str); 3] = [(1024, "1KiB"), (64 * 1024, "64KiB"), (1024 * 1024, "1MiB")];

fn agency(id: &str) -> (AgencySecretKeys, AgencyCard) {
    let keys = AgencySecretKeys::generate();
    let card = AgencyCard::issue(
        CardDetails {
            id: AgencyId::new(id).unwrap(),
            name: id.into(),
            roles: vec![Role::PoliceLiaison],
            addresses: vec![],
            languages: vec!["en".into()],
            legal_bases: vec![],
            issued_at: 1_700_000_000,
        },
        &keys,
    )
    .unwrap();
    (keys, card)
}

fn message(size: usize) -> Message {
    Message::Liaison(LiaisonMessage {
        subject: "benchmark".into(),
        body: "a".repeat(size),
        handling: Handling {
            codes: vec![HandlingCode::H2],
            ..Default::default()
        },
        ..Default::default()
    })
}

struct Bare {
    sender: SigningKey,
    recipient: StaticSecret,
    recipient_pub: PublicKey,
}

impl Bare {
    fn seal(&self, msg: &[u8]) -> ([u8; 32], [u8; 64], Vec<u8>, [u8; 64]) {
        let inner_sig = self.sender.sign(msg).to_bytes();
        let mut eph = [0u8; 32];
        getrandom::fill(&mut eph).unwrap();
        let eph = StaticSecret::from(eph);
        let eph_pub = PublicKey::from(&eph);
        let shared = eph.diffie_hellman(&self.recipient_pub);
        let mut cek = [0u8; 32];
        Hkdf::<Sha256>::new(None, shared.as_bytes()).expand(b"context", &mut cek).unwrap();
        let ct = ChaCha20Poly1305::new_from_slice(&cek)
            .unwrap()
            .encrypt((&[0u8; 12]).into(), Payload { msg, aad: b"aad" })
            .unwrap();
        let outer_sig = self.sender.sign(&ct).to_bytes();
        (eph_pub.to_bytes(), inner_sig, ct, outer_sig)
    }

    fn open(&self, (eph_pub, inner_sig, ct, outer_sig): &([u8; 32], [u8; 64], Vec<u8>, [u8; 64])) -> Vec<u8> {
        let vk = self.sender.verifying_key();
        vk.verify_strict(ct, &ed25519_dalek::Signature::from_bytes(outer_sig)).unwrap();
        let shared = self.recipient.diffie_hellman(&PublicKey::from(*eph_pub));
        let mut cek = [0u8; 32];
        Hkdf::<Sha256>::new(None, shared.as_bytes()).expand(b"context", &mut cek).unwrap();
        let pt = ChaCha20Poly1305::new_from_slice(&cek)
            .unwrap()
            .decrypt((&[0u8; 12]).into(), Payload { msg: ct, aad: b"aad" })
            .unwrap();
        vk.verify_strict(&pt, &ed25519_dalek::Signature::from_bytes(inner_sig)).unwrap();
        pt
    }
}

fn bench(c: &mut Criterion) {
    let (a_keys, a_card) = agency("XA.POLICE");
    let (b_keys, b_card) = agency("XB.POLICE");
    let trusted = vec![a_card.clone()];
    let limits = Limits::default();
    let params = SealParams {
        case_id: CaseId::v7(1_700_000_000_000, &[1; 10]),
        message_id: MessageId::v7(1_700_000_000_000, &[2; 10]),
        sent_at: 1_700_000_100,
        checkpoint: None,
    };
    let sender = Sender { card: &a_card, keys: &a_keys };
    let recipient = Recipient { card: &b_card, keys: &b_keys };
    let bare = Bare {
        sender: SigningKey::from_bytes(&[7; 32]),
        recipient: StaticSecret::from([9; 32]),
        recipient_pub: PublicKey::from(&StaticSecret::from([9; 32])),
    };

    for (size, name) in SIZES {
        let m = message(size);
        let plain = vec![b'a'; size];
        let mut g = c.benchmark_group(format!("seal+open/{name}"));
        g.throughput(Throughput::Elements(1));
        if size >= 1024 * 1024 {
            g.sample_size(30);
        }
        g.bench_function(BenchmarkId::new("envelope", name), |b| {
            b.iter(|| {
                let sealed = seal(&sender, &[Addressee { card: &b_card, chain: ChainLink::FIRST }], &m, &params, &limits).unwrap();
                black_box(open(&sealed[0].bytes, &recipient, &trusted, &limits).unwrap())
            })
        });
        g.bench_function(BenchmarkId::new("bare", name), |b| {
            b.iter(|| black_box(bare.open(&bare.seal(black_box(&plain)))))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
