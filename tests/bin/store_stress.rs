//! Appends audit entries to a store in a loop, printing `appended N` after each append returns
//! (that is, once it is durable). The crash test kills it with SIGKILL at random moments.
//!
//! Usage: rogatory-store-stress DIR COUNT
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;

use rogatory_node::store::{LogSigner, Store};
use rogatory_proto::audit::entry::{Actor, AuditEntry, AuditEvent};
use rogatory_proto::ids::{AgencyId, CaseId, Sha256Digest};
use rogatory_proto::keys::SigningKey;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let count: u64 = args[2].parse().unwrap();
    let agency = AgencyId::new("XA.MOJ-CA").unwrap();
    let key = SigningKey::from_seed(&[0x51; 32]);
    let signer = LogSigner {
        agency: &agency,
        key: &key,
    };
    let case: CaseId = "01a22522-d4f2-73cd-be4f-be9050503898".parse().unwrap();
    let store = Store::open(&dir).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0..count {
        // Alternate single appends and small batches.
        let n = if i % 3 == 0 { 3 } else { 1 };
        let mut batch: Vec<AuditEntry> = (0..n)
            .map(|j| AuditEntry {
                seq: 0,
                time: 1_790_000_000 + i,
                case_id: case,
                event: AuditEvent::EnvelopeReceived,
                actor: Actor {
                    agency: agency.clone(),
                    user: None,
                },
                peer: None,
                envelope_id: Some(Sha256Digest::of(&(i * 10 + j).to_le_bytes())),
                receipt_hash: None,
                transition: None,
                reason: None,
                commitment: None,
            })
            .collect();
        store.append(&signer, &case, &mut batch).unwrap();
        writeln!(out, "appended {}", batch[batch.len() - 1].seq + 1).unwrap();
        out.flush().unwrap();
    }
}
