//! Who may send what in a case (spec/PROTOCOL.md §5.4), as a property: random (sender, case,
//! message type) triples driven through the node's receive path, each outcome checked against
//! the table as the spec's text gives it (parsed from spec/PROTOCOL.md, not from the code), and
//! every refusal checked to have changed nothing of the case or its evidence.

use std::collections::HashMap;

use proptest::prelude::*;
use rogatory_node::cases::CaseRecord;
use rogatory_node::engine::receive::{Outcome, receive};
use rogatory_node::evidence::{EvidenceRecord, EvidenceState, Quotas};
use rogatory_node::keydir::KeyDir;
use rogatory_node::store::{RecordKeys, Store};
use rogatory_proto::case::Side;
use rogatory_proto::envelope::{Addressee, ChainLink, Limits, SealParams, Sender, seal};
use rogatory_proto::ids::{AgencyId, CaseId, EnvelopeId, MessageId, Sha256Digest};
use rogatory_proto::message::{EvidenceItem, Message, MessageType, TransferMode};
use rogatory_proto::receipt::ReasonCode;
use rogatory_tests::{agency, example, spec_dir};
use serde_json::json;

/// What the spec's table says of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    /// `unauthorized`.
    Refused,
    /// `illegal-transition`.
    NoRequest,
    /// Gets past authorization (the state machine may still refuse it).
    Passes,
}

/// The table of spec/PROTOCOL.md §5.4: message type → cells in the order of its columns
/// (case not known here, partner, copied, any other agency).
fn spec_table() -> HashMap<String, Vec<Cell>> {
    let text = std::fs::read_to_string(spec_dir().join("PROTOCOL.md")).unwrap();
    let mut lines = text
        .lines()
        .skip_while(|l| !l.starts_with("| message type |"));
    let header: Vec<&str> = lines.next().unwrap().split('|').map(str::trim).collect();
    assert_eq!(
        &header[2..6],
        [
            "case not known here",
            "partner",
            "copied",
            "any other agency"
        ]
    );
    lines.next(); // |---|
    let mut table = HashMap::new();
    for l in lines.take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = l.split('|').map(str::trim).collect();
        let kind = cells[1].trim_matches('`').to_string();
        let row = cells[2..6]
            .iter()
            .map(|c| match *c {
                "refused" => Cell::Refused,
                "refused (illegal-transition)" => Cell::NoRequest,
                _ => Cell::Passes,
            })
            .collect();
        table.insert(kind, row);
    }
    assert_eq!(
        table.len(),
        MessageType::ALL.len(),
        "a row per message type"
    );
    table
}

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    me: KeyDir,
    /// The partner, the copied agency, an outsider.
    senders: Vec<KeyDir>,
    known: CaseId,
    chains: HashMap<(usize, CaseId), (u64, EnvelopeId)>,
    items: u64,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let me = agency(dir.path(), "XA.MOJ-CA");
    let senders: Vec<KeyDir> = ["XB.DOJ-CA", "XC.POLICE", "XD.POLICE"]
        .iter()
        .map(|id| agency(dir.path(), id))
        .collect();
    let store = Store::open(&dir.path().join("XA.MOJ-CA"))
        .unwrap()
        .with_record_keys(RecordKeys::new(&me.keys));
    let known = CaseId::generate();
    let mut record = CaseRecord::new(
        known,
        rogatory_node::cases::CaseKind::Mla,
        Side::Requested,
        senders[0].card.id().clone(),
        1_700_000_000,
    );
    record.copied.push(senders[1].card.id().clone());
    let mut b = store.batch().unwrap();
    b.put_case_record(&record).unwrap();
    b.put_evidence(&EvidenceRecord {
        case_id: known,
        item: EvidenceItem {
            item_id: "E1".into(),
            description: "records".into(),
            media_type: "text/csv".into(),
            size: 10,
            sha256: Some(Sha256Digest([1; 32])),
            transfer: Some(TransferMode::Send),
            ..Default::default()
        },
        outgoing: true,
        state: EvidenceState::Announced,
        peer: Some(senders[0].card.id().clone()),
        manifest: None,
        blob: None,
        wrapped_key: None,
        chunks_done: 0,
        problem: None,
        added_at: 1_700_000_000,
        added_by: None,
        announced_at: Some(1_700_000_000),
        reports: Vec::new(),
    })
    .unwrap();
    b.commit().unwrap();
    World {
        _dir: dir,
        store,
        me,
        senders,
        known,
        chains: HashMap::new(),
        items: 0,
    }
}

/// A valid message of `kind` from `from` to XA.
fn message(kind: MessageType, from: &AgencyId, n: u64) -> Message {
    let now = rogatory_proto::time::format_unix(rogatory_proto::time::now_unix());
    let body = match kind {
        MessageType::MlaRequest => {
            let mut b = example("mla-request.json");
            b["requesting_authority"]["country"] = json!(from.country());
            b["requesting_authority"]["agency"] = json!(from.as_str());
            b["requested_authority"]["country"] = json!("XA");
            b["requested_authority"]["agency"] = json!("XA.MOJ-CA");
            b
        }
        MessageType::PreservationRequest => {
            let mut b = example("preservation-request.json");
            b["requesting_authority"]["country"] = json!(from.country());
            b["requesting_authority"]["agency"] = json!(from.as_str());
            b
        }
        MessageType::MlaStatus => json!({ "status": "withdrawn", "effective_at": now }),
        MessageType::EvidenceManifest => json!({ "items": [{
            "item_id": format!("H{n}"),
            "description": "hashes of seized material",
            "media_type": "video/mp4",
            "size": 100,
            "sha256": hex::encode([2u8; 32]),
            "transfer": "hash-only",
            "acquisition": { "method": "seizure" },
            "custody": [],
            "perceptual_hashes": [],
        }] }),
        MessageType::EvidenceStatus => json!({ "items": [{
            "item_id": "E1",
            "sha256": hex::encode([1u8; 32]),
            "state": "verified",
            "custody": [{ "at": now, "actor": from.as_str(), "action": "verified" }],
        }] }),
        MessageType::ExtraditionStatus => example("extradition-status.json"),
        MessageType::Liaison => example("liaison.json"),
    };
    let m = Message::from_json(kind, &body).unwrap();
    m.validate().unwrap();
    m
}

impl World {
    fn send(&mut self, sender: usize, case: CaseId, m: &Message) -> Outcome {
        let from = &self.senders[sender];
        let link = match self.chains.get(&(sender, case)) {
            None => ChainLink::FIRST,
            Some((seq, id)) => ChainLink {
                sequence: seq + 1,
                previous: Some(*id),
            },
        };
        let env = seal(
            &Sender {
                card: &from.card,
                keys: &from.keys,
            },
            &[Addressee {
                card: &self.me.card,
                chain: link,
                consistency: None,
            }],
            m,
            &SealParams {
                case_id: case,
                message_id: MessageId::generate(),
                sent_at: rogatory_proto::time::now_unix(),
                checkpoint: None,
            },
            &Limits::default(),
        )
        .unwrap()
        .remove(0);
        self.chains.insert((sender, case), (link.sequence, env.id));
        let trusted =
            rogatory_node::trust::partners_of(self.senders.iter().map(|s| s.card.clone()));
        receive(
            &self.store,
            &self.me,
            &trusted,
            from.card.id(),
            &env.bytes,
            rogatory_proto::time::now_unix(),
            &Limits::default(),
            &Quotas::default(),
        )
        .unwrap()
    }

    /// What a refusal must leave as it was: the known case and its evidence.
    fn state(&self) -> (Option<CaseRecord>, Vec<EvidenceRecord>) {
        (
            self.store.case_record(&self.known).unwrap(),
            self.store.evidence(&self.known).unwrap(),
        )
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_message_is_received_as_the_spec_s_table_says(
        triples in prop::collection::vec((0usize..3, any::<bool>(), 0usize..7), 1..30)
    ) {
        let table = spec_table();
        let mut w = world();
        for (sender, known, kind) in triples {
            let kind = MessageType::ALL[kind];
            let case = if known { w.known } else { CaseId::generate() };
            // The columns: not known here, partner, copied, other.
            let column = if known { 1 + sender } else { 0 };
            let want = table[kind.as_str()][column];
            w.items += 1;
            let m = message(kind, w.senders[sender].card.id(), w.items);
            let before = w.state();
            let outcome = w.send(sender, case, &m);
            let what = format!("{kind} from sender {sender} to a {} case", if known { "known" } else { "new" });
            match (want, &outcome) {
                (Cell::Refused, Outcome::Rejected { reason: ReasonCode::Unauthorized, .. })
                | (Cell::NoRequest, Outcome::Rejected { reason: ReasonCode::IllegalTransition, .. }) => {
                    prop_assert_eq!(w.state(), before, "{}: a refusal changed the case", what);
                }
                (Cell::Passes, Outcome::Rejected { reason: ReasonCode::Unauthorized, .. }) => {
                    prop_assert!(false, "{}: refused as unauthorized, the table allows it", what);
                }
                (Cell::Passes, Outcome::Accepted { .. } | Outcome::Rejected { .. }) => {}
                (want, outcome) => {
                    prop_assert!(false, "{}: the table says {:?}, the node answered {:?}", what, want, outcome);
                }
            }
        }
    }
}
