//! A known answer for every table of the store (format 2): a store written through the store's
//! own interface with fixed values, one or more rows in each table, is dumped table by table
//! (key and value bytes, hex) and compared with `fixtures/tables-v2.json`; the sealed tables,
//! whose values carry random nonces, are pinned by what they open to with the fixed keys.
//! `ROGATORY_WRITE_FIXTURES=1` rewrites the file (only after a deliberate, versioned format
//! change: spec/BACKUP.md §4).

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use rogatory_node::store::{
    Alert, Draft, DraftState, LogSigner, OutboxEntry, OutboxState, RecordKeys, STORE_FILE, Store,
};
use rogatory_proto::audit::entry::{Actor, AuditEntry, AuditEvent};
use rogatory_proto::ids::{AgencyId, Sha256Digest};
use rogatory_proto::keys::{AgencySecretKeys, EncryptionSecretKey, SigningKey};
use serde_json::{Map, Value, json};

fn keys() -> AgencySecretKeys {
    AgencySecretKeys::new(
        SigningKey::from_seed(&[0x61; 32]),
        EncryptionSecretKey::from_bytes(&[0x62; 32]),
    )
}

fn xa() -> AgencyId {
    AgencyId::new("XA.MOJ-CA").unwrap()
}

fn xb() -> AgencyId {
    AgencyId::new("XB.DOJ-CA").unwrap()
}

use crate::store::{case, case_record, evidence_record, received};

fn outbox_entry() -> OutboxEntry {
    OutboxEntry {
        case_id: case(),
        to: xb(),
        sealed_at: 1_790_000_200,
        envelope: b"an envelope sealed for XB".to_vec(),
        state: OutboxState::Queued,
        receipt: None,
        order: None,
        emergency: false,
        content_key: None,
    }
}

fn alert() -> Alert {
    Alert {
        at: 1_790_000_400,
        peer: xb(),
        case_id: case(),
        kind: "log-inconsistent".into(),
        detail: "a fixed alert".into(),
        envelope_id: Some(Sha256Digest([0x77; 32])),
    }
}

fn draft() -> Draft {
    Draft {
        id: Sha256Digest([0x88; 32]),
        case_id: case(),
        to: vec![xb()],
        kind: "mla-request".into(),
        message: b"a message's CBOR".to_vec(),
        drafted_by: "clerk".into(),
        drafted_at: 1_790_000_500,
        state: DraftState::AwaitingApproval,
        decided_by: None,
        decided_at: None,
        reason: None,
        envelopes: Vec::new(),
        message_id: None,
        issued: None,
        validated_by: None,
    }
}

/// A store with rows in every table, written through the store's own interface.
fn build(dir: &Path) {
    let keys = keys();
    let store = Store::open(dir).unwrap();
    let signer = LogSigner {
        agency: &xa(),
        key: &keys.signing,
    };
    let mut entries = vec![AuditEntry {
        seq: 0,
        time: 1_790_000_100,
        actor: Actor {
            agency: xa(),
            user: Some("clerk".into()),
        },
        event: AuditEvent::CaseCreated,
        case_id: case(),
        peer: None,
        envelope_id: None,
        receipt_hash: None,
        transition: None,
        reason: None,
        commitment: None,
    }];
    store.append(&signer, &case(), &mut entries).unwrap();
    let store = store.with_record_keys(RecordKeys::new(&keys));
    let mut b = store.batch().unwrap();
    let mut out = outbox_entry();
    b.enqueue(&mut out, true).unwrap();
    let sent = Sha256Digest::of(&out.envelope).0;
    b.set_chain_out(&case(), &xb(), 1, &sent).unwrap();
    b.store_receipt(&[0x44; 32], b"a receipt for XB's envelope")
        .unwrap();
    b.insert_inbox(&[0x44; 32], b"XB's envelope", Some(&received()))
        .unwrap();
    b.put_case_record(&case_record()).unwrap();
    b.put_evidence(&evidence_record()).unwrap();
    b.set_chain_in(&xb(), &[0x66; 32], 1, &[0x44; 32]).unwrap();
    b.set_witnessed(&xb(), &case(), b"XB's checkpoint, as witnessed")
        .unwrap();
    b.set_witness_out(&case(), &xb(), 1).unwrap();
    b.raise_alert(&alert()).unwrap();
    b.put_draft(&draft()).unwrap();
    b.commit().unwrap();
}

fn hexs(b: &[u8]) -> Value {
    Value::String(hex::encode(b))
}

/// Every table of the store in `dir`, row by row: key and value as stored.
fn dump(dir: &Path) -> Value {
    let db = redb::ReadOnlyDatabase::open(dir.join(STORE_FILE)).unwrap();
    let tx = db.begin_read().unwrap();
    let mut tables = Map::new();
    macro_rules! table {
        ($name:literal, $k:ty, $v:ty, |$key:ident, $val:ident| $row:expr) => {{
            let def: TableDefinition<$k, $v> = TableDefinition::new($name);
            let t = tx.open_table(def).unwrap();
            let mut rows = Vec::new();
            for r in t.iter().unwrap() {
                let (k, v) = r.unwrap();
                let ($key, $val) = (k.value(), v.value());
                rows.push($row);
            }
            tables.insert($name.to_string(), Value::Array(rows));
        }};
    }
    table!("meta", &str, u64, |k, v| json!([k, v]));
    table!("cases", &[u8; 16], u8, |k, v| json!([hexs(k), v]));
    table!("log", (&[u8; 16], u64, u8, u64), &[u8], |k, v| {
        json!([hexs(k.0), k.1, k.2, k.3, hexs(v)])
    });
    table!("inbox", &[u8; 32], &[u8], |k, v| json!([hexs(k), hexs(v)]));
    table!("receipts", &[u8; 32], &[u8], |k, v| json!([
        hexs(k),
        hexs(v)
    ]));
    table!("outbox", &[u8; 32], &[u8], |k, v| json!([hexs(k), hexs(v)]));
    table!("queue", u64, &[u8; 32], |k, v| json!([k, hexs(v)]));
    table!("chain-in", (&str, &[u8; 32]), &[u8], |k, v| {
        json!([k.0, hexs(k.1), hexs(v)])
    });
    table!("chain-out", (&[u8; 16], &str), &[u8], |k, v| {
        json!([hexs(k.0), k.1, hexs(v)])
    });
    table!("witnessed", (&str, &[u8; 16]), &[u8], |k, v| {
        json!([k.0, hexs(k.1), hexs(v)])
    });
    table!("witness-out", (&[u8; 16], &str), u64, |k, v| {
        json!([hexs(k.0), k.1, v])
    });
    table!("alerts", u64, &[u8], |k, v| json!([k, hexs(v)]));
    // Sealed: random nonces, so only the keys and that a value is there.
    table!("received", &[u8; 32], &[u8], |k, _v| json!([
        hexs(k),
        "sealed"
    ]));
    table!("case-records", &[u8; 16], &[u8], |k, _v| json!([
        hexs(k),
        "sealed"
    ]));
    table!("evidence", (&[u8; 16], &str), &[u8], |k, _v| {
        json!([hexs(k.0), k.1, "sealed"])
    });
    table!("drafts", &[u8; 32], &[u8], |k, _v| json!([
        hexs(k),
        "sealed"
    ]));
    Value::Object(tables)
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/tables-v2.json")
}

#[test]
fn every_table_of_the_store_has_a_known_answer() {
    let t = tempfile::tempdir().unwrap();
    build(t.path());
    let got = dump(t.path());
    if std::env::var_os("ROGATORY_WRITE_FIXTURES").is_some() {
        let v = json!({
            "description": "Store format 2: every table of a store written through the store's interface with the fixed values of tests/it/tables.rs, row by row (keys and values as stored, hex); sealed tables are pinned by what they open to. ROGATORY_WRITE_FIXTURES=1 rewrites this file (only after a deliberate, versioned format change).",
            "tables": got,
        });
        std::fs::write(fixture(), serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
    }
    let pinned: Value = serde_json::from_str(&std::fs::read_to_string(fixture()).unwrap()).unwrap();
    let pinned = &pinned["tables"];
    for (name, rows) in got.as_object().unwrap() {
        assert!(
            !rows.as_array().unwrap().is_empty(),
            "the fixture writes nothing into {name}"
        );
        assert_eq!(&pinned[name], rows, "table {name} is not stored as pinned");
    }
    assert_eq!(
        pinned.as_object().unwrap().len(),
        got.as_object().unwrap().len(),
        "a table was added or removed: pin it (and say so in the store's format)"
    );

    // What each table holds reads back as written, the sealed ones with the fixed keys.
    let store = Store::open(t.path())
        .unwrap()
        .with_record_keys(RecordKeys::new(&keys()));
    let id = Sha256Digest::of(&outbox_entry().envelope).0;
    let mut queued = outbox_entry();
    queued.order = store.outbox_entry(&id).unwrap().and_then(|e| e.order);
    assert_eq!(store.outbox_entry(&id).unwrap(), Some(queued));
    let alerts: Vec<Alert> = store
        .alerts()
        .unwrap()
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(alerts, [alert()]);
    assert_eq!(store.drafts().unwrap(), [draft()]);
    assert_eq!(store.case_record(&case()).unwrap(), Some(case_record()));
    assert_eq!(store.evidence(&case()).unwrap(), [evidence_record()]);
    assert_eq!(store.received().unwrap(), [([0x44; 32], received())]);
}
