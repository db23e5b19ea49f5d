//! Fixtures shared by the crate's integration tests: agencies with fixed keys, example messages.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use rogatory_proto::card::{AgencyCard, CardDetails, Role};
use rogatory_proto::envelope::*;
use rogatory_proto::ids::{AgencyId, CaseId, MessageId};
use rogatory_proto::keys::{AgencySecretKeys, EncryptionSecretKey, SigningKey};
use rogatory_proto::message::{Message, MessageType};

pub const ISSUED_AT: u64 = 1_790_000_000;

pub struct Agency {
    pub keys: AgencySecretKeys,
    pub card: AgencyCard,
}

impl Agency {
    /// An agency whose keys derive from `n`, so cards and signatures are reproducible.
    pub fn fixed(id: &str, n: u8) -> Self {
        let keys = AgencySecretKeys::new(
            SigningKey::from_seed(&[n; 32]),
            EncryptionSecretKey::from_bytes(&[n.wrapping_add(100); 32]),
        );
        Self::with_keys(id, keys)
    }

    pub fn random(id: &str) -> Self {
        Self::with_keys(id, AgencySecretKeys::generate())
    }

    pub fn with_keys(id: &str, keys: AgencySecretKeys) -> Self {
        let card = AgencyCard::issue(
            CardDetails {
                id: AgencyId::new(id).unwrap(),
                name: format!("Test agency {id}"),
                roles: vec![Role::CentralAuthority],
                addresses: vec!["/ip4/127.0.0.1/tcp/4100".into()],
                languages: vec!["en".into()],
                legal_bases: vec!["reciprocity".into()],
                issued_at: ISSUED_AT,
            },
            &keys,
        )
        .unwrap();
        Self { keys, card }
    }

    pub fn sender(&self) -> Sender<'_> {
        Sender {
            card: &self.card,
            keys: &self.keys,
        }
    }

    pub fn recipient(&self) -> Recipient<'_> {
        Recipient {
            card: &self.card,
            keys: &self.keys,
        }
    }

    pub fn first(&self) -> Addressee<'_> {
        Addressee {
            card: &self.card,
            chain: ChainLink::FIRST,
            consistency: None,
        }
    }
}

pub fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec")
}

/// The example message of each type from spec/examples/.
pub fn example(kind: MessageType) -> Message {
    let path = spec_dir()
        .join("examples")
        .join(format!("{}.json", kind.as_str()));
    let text = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let m = Message::from_json(kind, &json).unwrap();
    m.validate().unwrap();
    m
}

pub fn params(n: u8) -> SealParams {
    SealParams {
        case_id: CaseId::v7(1_790_000_000_000, &[n; 10]),
        message_id: MessageId::v7(1_790_000_100_000, &[n.wrapping_add(1); 10]),
        sent_at: ISSUED_AT + 100,
        checkpoint: None,
    }
}

pub fn seal_one(from: &Agency, to: &Agency, m: &Message) -> Vec<u8> {
    let mut out = seal(
        &from.sender(),
        &[to.first()],
        m,
        &params(1),
        &Limits::default(),
    )
    .unwrap();
    out.remove(0).bytes
}
