//! Arbitrary bytes as an envelope: inspect, verify_origin and open must return an error or a
//! verified result, never panic, hang or allocate without bound.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rogatory_proto::card::{AgencyCard, CardDetails, Role};
use rogatory_proto::envelope::{self, Limits, Recipient};
use rogatory_proto::ids::AgencyId;
use rogatory_proto::keys::{AgencySecretKeys, EncryptionSecretKey, SigningKey};

struct Fixture {
    sender: AgencyCard,
    recipient_keys: AgencySecretKeys,
    recipient: AgencyCard,
}

fn agency(id: &str, n: u8) -> (AgencySecretKeys, AgencyCard) {
    // The same keys as the spec/vectors agencies 1 and 2, so vector envelopes make good seeds.
    let keys = AgencySecretKeys::new(
        SigningKey::from_seed(&[n; 32]),
        EncryptionSecretKey::from_bytes(&[n.wrapping_add(100); 32]),
    );
    let card = AgencyCard::issue(
        CardDetails {
            id: AgencyId::new(id).expect("valid id"),
            name: format!("Test agency {id}"),
            roles: vec![Role::CentralAuthority],
            addresses: vec!["/ip4/127.0.0.1/tcp/4100".into()],
            languages: vec!["en".into()],
            legal_bases: vec!["reciprocity".into()],
            issued_at: 1_790_000_000,
        },
        &keys,
    )
    .expect("card");
    (keys, card)
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (_, sender) = agency("XA.MOJ-CA", 1);
        let (recipient_keys, recipient) = agency("XB.DOJ-CA", 2);
        Fixture {
            sender,
            recipient_keys,
            recipient,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let limits = Limits::default();
    let _ = envelope::inspect(data, &limits);
    let _ = envelope::verify_origin(data, &f.sender, &limits);
    let recipient = Recipient {
        card: &f.recipient,
        keys: &f.recipient_keys,
    };
    let _ = envelope::open(data, &recipient, &vec![f.sender.clone()], &limits);
});
