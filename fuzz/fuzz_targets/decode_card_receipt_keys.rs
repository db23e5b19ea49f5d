//! Arbitrary bytes as an agency card, a receipt and a secret key set.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rogatory_proto::card::{AgencyCard, CardDetails, Role};
use rogatory_proto::ids::AgencyId;
use rogatory_proto::keys::AgencySecretKeys;
use rogatory_proto::receipt::verify_receipt;

fn issuer() -> &'static AgencyCard {
    static C: OnceLock<AgencyCard> = OnceLock::new();
    C.get_or_init(|| {
        AgencyCard::issue(
            CardDetails {
                id: AgencyId::new("XB.DOJ-CA").expect("valid id"),
                name: "Test agency XB.DOJ-CA".into(),
                roles: vec![Role::CentralAuthority],
                addresses: vec![],
                languages: vec![],
                legal_bases: vec![],
                issued_at: 1_790_000_000,
            },
            &AgencySecretKeys::generate(),
        )
        .expect("card")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(card) = AgencyCard::from_bytes(data) {
        assert_eq!(card.as_bytes(), data);
    }
    let _ = verify_receipt(data, issuer(), None);
    let _ = AgencySecretKeys::from_cose_key_set(data);
});
