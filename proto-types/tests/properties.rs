//! Property tests: decoders never panic on arbitrary input, and no mutation of a valid envelope
//! is accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use proptest::prelude::*;
use rogatory_proto::card::AgencyCard;
use rogatory_proto::envelope::{Limits, inspect, open};
use rogatory_proto::message::{Message, MessageType};
use rogatory_proto::receipt::verify_receipt;
use std::sync::OnceLock;
use support::*;

struct World {
    a: Agency,
    b: Agency,
    envelope: Vec<u8>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let a = Agency::fixed("XA.POLICE", 1);
        let b = Agency::fixed("XB.POLICE", 2);
        let envelope = seal_one(&a, &b, &example(MessageType::Liaison));
        World { a, b, envelope }
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let w = world();
        let _ = inspect(&data, &Limits::default());
        let _ = open(&data, &w.b.recipient(), &vec![w.a.card.clone()], &Limits::default());
        let _ = AgencyCard::from_bytes(&data);
        let _ = verify_receipt(&data, &w.b.card, None);
        for kind in MessageType::ALL {
            if let Ok(m) = Message::from_cbor(kind, &data, 1 << 16) {
                prop_assert_eq!(m.to_cbor().unwrap(), data.clone());
            }
        }
    }

    #[test]
    fn no_mutation_of_an_envelope_is_accepted(muts in proptest::collection::vec(mutation(), 1..4)) {
        let w = world();
        let mut e = w.envelope.clone();
        for m in muts {
            let n = e.len().max(1);
            match m {
                Mutation::Flip(i, b) => { let i = i % n; if i < e.len() { e[i] ^= b; } }
                Mutation::Insert(i, b) => e.insert(i % (e.len() + 1), b),
                Mutation::Delete(i) => { if !e.is_empty() { e.remove(i % e.len()); } }
                Mutation::Truncate(i) => e.truncate(i % n),
            }
        }
        prop_assume!(e != w.envelope);
        let r = open(&e, &w.b.recipient(), &vec![w.a.card.clone()], &Limits::default());
        prop_assert!(r.is_err(), "a mutated envelope was accepted");
    }
}

/// A small bundle: XA's card, a few entries (one a real entry, the others junk), a checkpoint
/// that is not one, the world's envelope as sent, a partner checkpoint and a proof that are not
/// either. Not a valid bundle: one the reader must walk whole.
fn small_bundle() -> Vec<u8> {
    use rogatory_proto::bundle::{Bundle, Direction, EnvelopeRecord, FORMAT};
    let w = world();
    let b = Bundle {
        format: FORMAT.into(),
        case_id: "01a22522-d4f2-73cd-be4f-be9050503898".parse().unwrap(),
        exporter: w.a.card.id().clone(),
        exported_at: 1_790_000_000,
        cards: vec![serde_bytes::ByteBuf::from(w.a.card.as_bytes().to_vec())],
        policy: String::new(),
        entries: vec![
            serde_bytes::ByteBuf::from(vec![0xa0]),
            serde_bytes::ByteBuf::from(b"entry".to_vec()),
            serde_bytes::ByteBuf::new(),
        ],
        checkpoints: vec![serde_bytes::ByteBuf::from(b"origin\n1\nroot\n\n".to_vec())],
        envelopes: vec![EnvelopeRecord {
            direction: Direction::Sent,
            envelope: serde_bytes::ByteBuf::from(w.envelope.clone()),
            receipt: None,
        }],
        witnessed: vec![serde_bytes::ByteBuf::from(b"x".to_vec())],
        proofs: vec!["c2sp.org/tlog-proof@v1\nindex 0\n\n".into()],
        auditor: None,
        disclosures: Vec::new(),
    };
    let mut out = Vec::new();
    b.write_to(&mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The bundle reader (spec/BUNDLE.md §3) on a mutated bundle, or on arbitrary bytes: an error
    /// or a verdict, never a panic.
    #[test]
    fn a_mutated_bundle_is_refused_or_judged_never_a_panic(
        muts in proptest::collection::vec(mutation(), 0..4),
        junk in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        use rogatory_proto::bundle::Verifier;
        static BUNDLE: OnceLock<Vec<u8>> = OnceLock::new();
        let mut e = BUNDLE.get_or_init(small_bundle).clone();
        for m in muts {
            let n = e.len().max(1);
            match m {
                Mutation::Flip(i, b) => { let i = i % n; if i < e.len() { e[i] ^= b; } }
                Mutation::Insert(i, b) => e.insert(i % (e.len() + 1), b),
                Mutation::Delete(i) => { if !e.is_empty() { e.remove(i % e.len()); } }
                Mutation::Truncate(i) => e.truncate(i % n),
            }
        }
        for bytes in [e, junk] {
            let mut v = Verifier::new(None, &[], None, 1);
            if v.add_bytes(bytes).is_ok() {
                let _ = v.finish();
            }
        }
    }
}

mod merkle {
    use proptest::prelude::*;
    use rogatory_proto::audit::merkle::*;

    fn tree(n: u64) -> MemoryTree {
        let mut t = MemoryTree::new();
        for i in 0..n {
            t.push(&i.to_le_bytes());
        }
        t
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn inclusion_proofs_verify_against_the_root_of_their_size(n in 1u64..3000, a in any::<u64>(), b in any::<u64>()) {
            let t = tree(n);
            let size = 1 + a % n;
            let index = b % size;
            let r = root(&t, size).unwrap();
            let p = inclusion_proof(&t, index, size).unwrap().unwrap();
            let leaf = leaf_hash(&index.to_le_bytes());
            prop_assert!(verify_inclusion(index, size, &leaf, &p, &r).is_ok());
            // Another leaf, another index or another root fails.
            let other = leaf_hash(&(index + 1).to_le_bytes());
            prop_assert!(verify_inclusion(index, size, &other, &p, &r).is_err());
            if size > 1 {
                prop_assert!(verify_inclusion((index + 1) % size, size, &leaf, &p, &r).is_err());
            }
            let wrong_root = root(&t, n).unwrap();
            if size < n {
                prop_assert!(verify_inclusion(index, size, &leaf, &p, &wrong_root).is_err());
            }
        }

        #[test]
        fn consistency_proofs_verify_between_any_two_sizes(n in 1u64..3000, a in any::<u64>(), b in any::<u64>()) {
            let t = tree(n);
            let (x, y) = (1 + a % n, 1 + b % n);
            let (s1, s2) = (x.min(y), x.max(y));
            let (r1, r2) = (root(&t, s1).unwrap(), root(&t, s2).unwrap());
            let p = consistency_proof(&t, s1, s2).unwrap().unwrap();
            prop_assert!(verify_consistency(s1, s2, &p, &r1, &r2).is_ok());
            if s1 < s2 {
                // A different old root (another log's history) fails.
                let mut other = tree(s1 - 1);
                other.push(b"not the same leaf");
                prop_assert!(verify_consistency(s1, s2, &p, &other.root(), &r2).is_err());
                prop_assert!(verify_consistency(s1, s2, &p, &r1, &r1).is_err());
            }
        }
    }
}
