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
