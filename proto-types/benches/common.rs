//! Fixtures shared by the benchmarks: two agencies, a message of a given size, and the bare
//! cryptographic operations an envelope is made of.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use ed25519_dalek::{Signer, SigningKey};
use hkdf::Hkdf;
use rogatory_proto::card::{AgencyCard, CardDetails, Role};
use rogatory_proto::envelope::*;
use rogatory_proto::ids::{AgencyId, CaseId, MessageId};
use rogatory_proto::keys::AgencySecretKeys;
use rogatory_proto::message::{Handling, HandlingCode, LiaisonMessage, Message};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};

pub(crate) const SIZES: [(usize, &str); 3] = [
    (1024, "1 KiB"),
    (64 * 1024, "64 KiB"),
    (1024 * 1024, "1 MiB"),
];

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

/// A liaison message whose body is `size` bytes of text.
pub(crate) fn message(size: usize) -> Message {
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

pub(crate) struct Fixture {
    a_keys: AgencySecretKeys,
    a_card: AgencyCard,
    b_keys: AgencySecretKeys,
    b_card: AgencyCard,
    trusted: Vec<AgencyCard>,
    params: SealParams,
    bare_sender: SigningKey,
    bare_recipient: StaticSecret,
    bare_recipient_pub: PublicKey,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let (a_keys, a_card) = agency("XA.POLICE");
        let (b_keys, b_card) = agency("XB.POLICE");
        let recipient = StaticSecret::from([9; 32]);
        Self {
            trusted: vec![a_card.clone()],
            a_keys,
            a_card,
            b_keys,
            b_card,
            params: SealParams {
                case_id: CaseId::v7(1_700_000_000_000, &[1; 10]),
                message_id: MessageId::v7(1_700_000_000_000, &[2; 10]),
                sent_at: 1_700_000_100,
                checkpoint: None,
            },
            bare_sender: SigningKey::from_bytes(&[7; 32]),
            bare_recipient_pub: PublicKey::from(&recipient),
            bare_recipient: recipient,
        }
    }

    /// Seal for one addressee, then open as that addressee.
    pub(crate) fn envelope_round_trip(&self, m: &Message) -> Opened {
        let sender = Sender {
            card: &self.a_card,
            keys: &self.a_keys,
        };
        let to = Addressee {
            card: &self.b_card,
            chain: ChainLink::FIRST,
            consistency: None,
        };
        let sealed = seal(&sender, &[to], m, &self.params, &Limits::default()).unwrap();
        let recipient = Recipient {
            card: &self.b_card,
            keys: &self.b_keys,
        };
        open(
            &sealed[0].bytes,
            &recipient,
            &self.trusted,
            &Limits::default(),
        )
        .unwrap()
    }

    /// The same cryptographic operations on `msg`, with no CBOR or COSE around them.
    pub(crate) fn bare_round_trip(&self, msg: &[u8]) -> Vec<u8> {
        // Seal: sign, ephemeral key and agreement, HKDF, encrypt, sign the ciphertext.
        let inner_sig = self.bare_sender.sign(msg);
        let mut eph = [0u8; 32];
        getrandom::fill(&mut eph).unwrap();
        let eph = StaticSecret::from(eph);
        let eph_pub = PublicKey::from(&eph);
        let shared = eph.diffie_hellman(&self.bare_recipient_pub);
        let mut cek = [0u8; 32];
        Hkdf::<Sha256>::new(None, shared.as_bytes())
            .expand(b"context", &mut cek)
            .unwrap();
        let ct = ChaCha20Poly1305::new_from_slice(&cek)
            .unwrap()
            .encrypt((&[0u8; 12]).into(), Payload { msg, aad: b"aad" })
            .unwrap();
        let outer_sig = self.bare_sender.sign(&ct);
        // Open: verify, agree, HKDF, decrypt, verify.
        let vk = self.bare_sender.verifying_key();
        vk.verify_strict(&ct, &outer_sig).unwrap();
        let shared = self.bare_recipient.diffie_hellman(&eph_pub);
        let mut cek = [0u8; 32];
        Hkdf::<Sha256>::new(None, shared.as_bytes())
            .expand(b"context", &mut cek)
            .unwrap();
        let pt = ChaCha20Poly1305::new_from_slice(&cek)
            .unwrap()
            .decrypt(
                (&[0u8; 12]).into(),
                Payload {
                    msg: &ct,
                    aad: b"aad",
                },
            )
            .unwrap();
        vk.verify_strict(&pt, &inner_sig).unwrap();
        pt
    }
}
