//! spec/vectors/: every vector is rebuilt from the inputs it states, byte for byte, and opened.
//!
//! `ROGATORY_WRITE_VECTORS=1 cargo test -p rogatory-proto --test vectors` rewrites the files
//! from the definitions below (after a deliberate format change only; say so in the spec's
//! change log). Without it a missing or different file fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rogatory_proto::keyhist::OfficerRole;

use std::path::PathBuf;

use rogatory_proto::audit::witness::CarriedProof;
use rogatory_proto::card::AgencyCard;
use rogatory_proto::envelope::*;
use rogatory_proto::ids::{AgencyId, CaseId, MessageId, Sha256Digest};
use rogatory_proto::keys::{AgencySecretKeys, EncryptionSecretKey, SigningKey};
use rogatory_proto::message::{Message, MessageType};
use rogatory_proto::receipt::{ReasonCode, Receipt, ReceiptEvent, verify_receipt};
use serde_json::{Value, json};
use support::*;
use zeroize::Zeroizing;

fn vectors_dir() -> PathBuf {
    spec_dir().join("vectors")
}

fn h(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap_or_else(|| panic!("{k} missing"))).unwrap()
}

fn arr32(v: &Value, k: &str) -> [u8; 32] {
    h(v, k).try_into().unwrap()
}

struct EnvelopeDef {
    file: &'static str,
    description: &'static str,
    sender: (&'static str, u8),
    addressees: Vec<(&'static str, u8, u64, bool)>,
    kind: MessageType,
    checkpoint: Option<&'static [u8]>,
    /// Officials who sign it (spec/PEOPLE.md §5): role and key seed.
    officers: &'static [(OfficerRole, u8)],
}

fn defs() -> Vec<EnvelopeDef> {
    vec![
        EnvelopeDef {
            file: "envelope-mla-request.json",
            description: "An MLA request from XA.MOJ-CA to XB.DOJ-CA: the first envelope of the case to that addressee, no checkpoint.",
            sender: ("XA.MOJ-CA", 1),
            addressees: vec![("XB.DOJ-CA", 2, 1, false)],
            kind: MessageType::MlaRequest,
            checkpoint: None,
            officers: &[],
        },
        EnvelopeDef {
            file: "envelope-mla-request-signed.json",
            description: "The MLA request from XA.MOJ-CA to XB.DOJ-CA, also signed by two of XA's officials in their own names (spec/PEOPLE.md §5): the issuing authority (key seed 0x90) and, countersigning, the validating authority (key seed 0x91), in the inner header's `officers` (-65550). Their keys are certified in XA's key history (spec/KEYS.md §4.7); `officers` lists each with its public key and the bytes it signed.",
            sender: ("XA.MOJ-CA", 1),
            addressees: vec![("XB.DOJ-CA", 2, 1, false)],
            kind: MessageType::MlaRequest,
            checkpoint: None,
            officers: &[
                (OfficerRole::IssuingAuthority, 0x90),
                (OfficerRole::ValidatingAuthority, 0x91),
            ],
        },
        EnvelopeDef {
            file: "envelope-liaison-two-addressees.json",
            description: "A liaison message from XA.POLICE to XB.POLICE and XC.POLICE: one envelope per addressee, each carrying the same inner signed message naming both; the third message of the case to each, with a checkpoint and, to XB.POLICE, a consistency proof from size 2 (spec/PROTOCOL.md §6.6; checkpoint and proof hashes are placeholders).",
            sender: ("XA.POLICE", 3),
            addressees: vec![("XB.POLICE", 4, 3, true), ("XC.POLICE", 5, 3, true)],
            kind: MessageType::Liaison,
            checkpoint: Some(b"rogatory.XA.POLICE/case/example\n3\nAAAA\n\n\xe2\x80\x94 rogatory.XA.POLICE example\n"),
            officers: &[],
        },
    ]
}

/// A key history of `a` (root key seed 0x75) certifying `officers` (spec/KEYS.md §4.7).
fn history_with_officers(
    a: &Agency,
    officers: &[(OfficerRole, SigningKey)],
) -> rogatory_proto::keyhist::KeyHistory {
    use rogatory_proto::keyhist::{KeyHistory, OfficerCert, RootSet, StatementBody, statement};
    let root = SigningKey::from_seed(&[0x75; 32]);
    let g = StatementBody::genesis(
        RootSet::new(1, std::slice::from_ref(root.verifying_key())),
        &a.card,
        ISSUED_AT,
    );
    let mut h = KeyHistory::from_statements(&[statement::sign(&g, &[&root]).unwrap()]).unwrap();
    for (i, (role, key)) in officers.iter().enumerate() {
        let cert = OfficerCert {
            name: format!("officer{i}"),
            role: *role,
            key: key.verifying_key().to_cose_key(),
            valid_from: ISSUED_AT,
            valid_until: ISSUED_AT + 365 * 86_400,
        };
        h.apply(&statement::sign(&h.next_officer(cert, ISSUED_AT), &[&root]).unwrap())
            .unwrap();
    }
    h
}

fn agency_json(a: &Agency, n: u8) -> Value {
    json!({
        "id": a.card.id().as_str(),
        "signing_seed": hex::encode([n; 32]),
        "encryption_secret": hex::encode([n.wrapping_add(100); 32]),
        "issued_at": ISSUED_AT,
        "card": hex::encode(a.card.as_bytes()),
        "signing_key_id": hex::encode(a.card.signing_key().id()),
        "encryption_key_id": hex::encode(a.card.encryption_key().id()),
        "fingerprint": a.card.fingerprint(),
        "note_verifier_key": a.card.note_verifier_key(),
    })
}

fn generate(d: &EnvelopeDef) -> Value {
    let sender = Agency::fixed(d.sender.0, d.sender.1);
    let addressees: Vec<Agency> = d
        .addressees
        .iter()
        .map(|(id, n, ..)| Agency::fixed(id, *n))
        .collect();
    let message = example(d.kind);
    let p = SealParams {
        case_id: CaseId::v7(1_790_000_000_000, &[0x42; 10]),
        message_id: MessageId::v7(1_790_000_050_000, &[0x17; 10]),
        sent_at: ISSUED_AT + 3600,
        checkpoint: d.checkpoint.map(<[u8]>::to_vec),
    };
    let links: Vec<ChainLink> = d
        .addressees
        .iter()
        .map(|(id, _, seq, prev)| ChainLink {
            sequence: *seq,
            previous: prev
                .then(|| Sha256Digest::of(format!("previous envelope to {id}").as_bytes())),
        })
        .collect();
    let secrets: Vec<EnvelopeSecrets> = (0..addressees.len())
        .map(|i| EnvelopeSecrets {
            ephemeral: Zeroizing::new([0xE0 + i as u8; 32]),
            nonce: [0x0A + i as u8; 12],
        })
        .collect();
    // With a checkpoint, the first addressee's envelope also carries a consistency proof (its
    // previous envelope carried size 2); the hashes are placeholders, as the checkpoint is.
    let proofs: Vec<Option<CarriedProof>> = (0..addressees.len())
        .map(|i| {
            (d.checkpoint.is_some() && i == 0).then(|| CarriedProof {
                old_size: 2,
                hashes: vec![[0x33; 32]],
            })
        })
        .collect();
    let adds: Vec<Addressee<'_>> = addressees
        .iter()
        .zip(&links)
        .zip(&proofs)
        .map(|((a, l), p)| Addressee {
            card: &a.card,
            chain: *l,
            consistency: p.clone(),
        })
        .collect();
    let officer_keys: Vec<(OfficerRole, SigningKey)> = d
        .officers
        .iter()
        .map(|(r, n)| (*r, SigningKey::from_seed(&[*n; 32])))
        .collect();
    let officers: Vec<rogatory_proto::officer::Officer<'_>> = officer_keys
        .iter()
        .map(|(role, key)| rogatory_proto::officer::Officer { role: *role, key })
        .collect();
    let sealed = seal_officers_with(
        &sender.sender(),
        &officers,
        &adds,
        &message,
        &p,
        &Limits::default(),
        &secrets,
    )
    .unwrap();
    // The sender's key history certifies its officials (root key seed 0x75).
    let mut trusted = std::collections::BTreeMap::new();
    trusted.insert(
        sender.card.id().clone(),
        history_with_officers(&sender, &officer_keys),
    );
    let opened = open(
        &sealed[0].bytes,
        &addressees[0].recipient(),
        &trusted,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(opened.officers.len(), d.officers.len());
    let signed = rogatory_proto::officer::Signed {
        from: sender.card.id(),
        message_id: &p.message_id,
        case_id: &p.case_id,
        kind: d.kind.as_str(),
        recipients: &opened.recipients,
        body: &message.to_cbor().unwrap(),
    };
    let officers_json: Vec<Value> = opened
        .officers
        .iter()
        .enumerate()
        .map(|(i, o)| {
            json!({
                "role": o.role.as_str(),
                "key_seed": hex::encode([d.officers[i].1; 32]),
                "public_key": hex::encode(officer_keys[i].1.verifying_key().as_bytes()),
                "key_id": hex::encode(o.kid),
                "signed": hex::encode(rogatory_proto::officer::to_be_signed(&signed, &opened.officers[..i])),
                "signature": hex::encode(o.signature),
            })
        })
        .collect();
    assert_eq!(opened.info.consistency, proofs[0]);
    let mut agencies = vec![agency_json(&sender, d.sender.1)];
    agencies.extend(
        addressees
            .iter()
            .zip(&d.addressees)
            .map(|(a, (_, n, ..))| agency_json(a, *n)),
    );
    json!({
        "description": d.description,
        "protocol_version": PROTOCOL_VERSION,
        "agencies": agencies,
        "sender": d.sender.0,
        "case_id": p.case_id.to_string(),
        "case_commitment": case_commitment(&p.case_id).to_hex(),
        "message_id": p.message_id.to_string(),
        "sent_at": p.sent_at,
        "checkpoint": p.checkpoint.as_ref().map(hex::encode),
        "message_type": d.kind.as_str(),
        "message": message.to_json(),
        "message_cbor": hex::encode(message.to_cbor().unwrap()),
        "inner": hex::encode(&opened.inner),
        "officers": officers_json,
        "envelopes": sealed.iter().zip(&links).zip(&secrets).zip(&proofs).map(|(((s, l), sec), p)| json!({
            "to": s.to.as_str(),
            "sequence": l.sequence,
            "previous": l.previous.map(|p| p.to_hex()),
            "consistency": p.as_ref().map(|p| hex::encode(p.to_bytes())),
            "ephemeral_secret": hex::encode(*sec.ephemeral),
            "nonce": hex::encode(sec.nonce),
            "envelope": hex::encode(&s.bytes),
            "envelope_id": s.id.to_hex(),
        })).collect::<Vec<_>>(),
    })
}

fn generate_receipts() -> Value {
    let a = Agency::fixed("XA.MOJ-CA", 1);
    let b = Agency::fixed("XB.DOJ-CA", 2);
    let base = Receipt {
        version: 1,
        envelope_id: Sha256Digest::of(b"example envelope"),
        from: b.card.id().clone(),
        to: a.card.id().clone(),
        event: ReceiptEvent::Accepted,
        reason: None,
        detail: None,
        received_at: ISSUED_AT + 3700,
        checkpoint: None,
        cosignature: None,
    };
    let rejected = Receipt {
        event: ReceiptEvent::Rejected,
        reason: Some(ReasonCode::InvalidSchema),
        detail: Some("summary_of_facts: the summary of the relevant facts is missing".into()),
        ..base.clone()
    };
    let one = |r: &Receipt| {
        let s = r.sign(&b.keys).unwrap();
        json!({
            "receipt": serde_json::to_value(r).unwrap(),
            "bytes": hex::encode(&s.bytes),
            "hash": s.hash.to_hex(),
        })
    };
    // An acceptance as a node issues it for an envelope that carried XA's checkpoint of the
    // case: with XB's own checkpoint of its log of the case and its cosignature of XA's.
    let w = witnessed(&a, &b);
    let cosigned = Receipt {
        checkpoint: Some(w.own_checkpoint.clone().into_bytes()),
        cosignature: Some(w.cosignature.clone().into_bytes()),
        ..base.clone()
    };
    // Bytes that are not an envelope at all: the id is their SHA-256, `to` the agency the
    // transport authenticated.
    let not_an_envelope = Receipt {
        envelope_id: Sha256Digest::of(b"not an envelope"),
        event: ReceiptEvent::Rejected,
        reason: Some(ReasonCode::Malformed),
        detail: Some("not a COSE_Sign1 envelope".into()),
        ..base.clone()
    };
    let mut with_cosignature = one(&cosigned);
    with_cosignature["carried_checkpoint"] = json!(w.carried_checkpoint);
    with_cosignature["carried_checkpoint_verifier_key"] = json!(w.log_vkey);
    with_cosignature["checkpoint_text"] = json!(w.own_checkpoint);
    with_cosignature["cosignature_text"] = json!(w.cosignature);
    with_cosignature["cosignature_timestamp"] = json!(w.timestamp);
    with_cosignature["witness_verifier_key"] = json!(w.witness_vkey);
    let mut garbage = one(&not_an_envelope);
    garbage["answered_bytes"] = json!(hex::encode(b"not an envelope"));
    json!({
        "description": "Receipts issued by XB.DOJ-CA to XA.MOJ-CA: an acceptance; a rejection (reason 12, invalid-schema); an acceptance of an envelope that carried XA's checkpoint, with XB's checkpoint of its own log and its cosignature of XA's (spec/PROTOCOL.md §6.4: carried_checkpoint is what the envelope carried, cosignature_text the line a verifier appends to its body); a rejection of bytes that are not an envelope (reason 1, malformed; envelope_id is the SHA-256 of answered_bytes).",
        "issuer": agency_json(&b, 2),
        "receipts": [one(&base), one(&rejected), with_cosignature, garbage],
    })
}

/// What the acceptance with a cosignature is made of.
struct Witnessed {
    carried_checkpoint: String,
    log_vkey: String,
    own_checkpoint: String,
    cosignature: String,
    timestamp: u64,
    witness_vkey: String,
}

/// XA's signed checkpoint of a case log of three entries (as an envelope carries it), XB's
/// checkpoint of its own log of the case (one entry), and XB's cosignature of XA's.
fn witnessed(a: &Agency, b: &Agency) -> Witnessed {
    use rogatory_proto::audit::entry::{case_origin, log_key_name};
    use rogatory_proto::audit::merkle::MemoryTree;
    use rogatory_proto::audit::note::{Checkpoint, Note, NoteVerifier, SIG_ED25519};
    use rogatory_proto::audit::witness;
    let case: CaseId = "01900000-0000-7000-8000-000000000001".parse().unwrap();
    let signed = |who: &Agency, leaves: &[&[u8]]| {
        let mut t = MemoryTree::new();
        for l in leaves {
            t.push(l);
        }
        let cp = Checkpoint {
            origin: case_origin(who.card.id(), &case),
            size: t.size(),
            root: t.root(),
            extensions: vec![],
        };
        let mut n = Note::new(&cp.body()).unwrap();
        n.sign(&log_key_name(who.card.id()), &who.keys.signing)
            .unwrap();
        (cp, n.to_text())
    };
    let (carried, carried_note) = signed(a, &[b"entry 0", b"entry 1", b"entry 2"]);
    let (_, own_note) = signed(b, &[b"entry 0 of XB"]);
    let timestamp = ISSUED_AT + 3700;
    let cosignature = witness::cosign(
        &carried.body(),
        &log_key_name(b.card.id()),
        &b.keys.signing,
        timestamp,
    )
    .unwrap();
    let log = NoteVerifier::new(
        &log_key_name(a.card.id()),
        SIG_ED25519,
        a.keys.signing.verifying_key(),
    )
    .unwrap();
    let wv = witness::witness_verifier(&log_key_name(b.card.id()), b.keys.signing.verifying_key())
        .unwrap();
    Witnessed {
        carried_checkpoint: carried_note,
        log_vkey: log.vkey(),
        own_checkpoint: own_note,
        cosignature,
        timestamp,
        witness_vkey: wv.vkey(),
    }
}

fn check_or_write(file: &str, generated: &Value) {
    let path = vectors_dir().join(file);
    if std::env::var_os("ROGATORY_WRITE_VECTORS").is_some() {
        std::fs::create_dir_all(vectors_dir()).unwrap();
        std::fs::write(
            &path,
            serde_json::to_string_pretty(generated).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (ROGATORY_WRITE_VECTORS=1 writes it)",
            path.display()
        )
    });
    let stored: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        &stored, generated,
        "{file} differs from what this code generates"
    );
}

/// Rebuilds an envelope vector from the inputs stated in the file alone, as a second
/// implementation would, and opens it.
fn replay_envelope_vector(v: &Value) {
    let agencies: Vec<(AgencyId, Agency)> = v["agencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let keys = AgencySecretKeys::new(
                SigningKey::from_seed(&arr32(a, "signing_seed")),
                EncryptionSecretKey::from_bytes(&arr32(a, "encryption_secret")),
            );
            let id = AgencyId::new(a["id"].as_str().unwrap()).unwrap();
            let agency = Agency::with_keys(id.as_str(), keys);
            assert_eq!(
                agency.card.as_bytes(),
                h(a, "card").as_slice(),
                "card of {id}"
            );
            assert_eq!(
                AgencyCard::from_bytes(&h(a, "card")).unwrap().fingerprint(),
                a["fingerprint"].as_str().unwrap()
            );
            (id, agency)
        })
        .collect();
    let find = |id: &str| &agencies.iter().find(|(i, _)| i.as_str() == id).unwrap().1;
    let sender = find(v["sender"].as_str().unwrap());
    let kind: MessageType = v["message_type"].as_str().unwrap().parse().unwrap();
    let message = Message::from_json(kind, &v["message"]).unwrap();
    assert_eq!(
        hex::encode(message.to_cbor().unwrap()),
        v["message_cbor"].as_str().unwrap()
    );
    let params = SealParams {
        case_id: v["case_id"].as_str().unwrap().parse().unwrap(),
        message_id: v["message_id"].as_str().unwrap().parse().unwrap(),
        sent_at: v["sent_at"].as_u64().unwrap(),
        checkpoint: v["checkpoint"].as_str().map(|c| hex::decode(c).unwrap()),
    };
    let envs = v["envelopes"].as_array().unwrap();
    let adds: Vec<Addressee<'_>> = envs
        .iter()
        .map(|e| Addressee {
            card: &find(e["to"].as_str().unwrap()).card,
            chain: ChainLink {
                sequence: e["sequence"].as_u64().unwrap(),
                previous: e["previous"].as_str().map(|p| p.parse().unwrap()),
            },
            consistency: e["consistency"]
                .as_str()
                .map(|c| CarriedProof::from_bytes(&hex::decode(c).unwrap()).unwrap()),
        })
        .collect();
    let secrets: Vec<EnvelopeSecrets> = envs
        .iter()
        .map(|e| EnvelopeSecrets {
            ephemeral: Zeroizing::new(arr32(e, "ephemeral_secret")),
            nonce: h(e, "nonce").try_into().unwrap(),
        })
        .collect();
    let officer_keys: Vec<(OfficerRole, SigningKey)> = v["officers"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|o| {
            let role = match o["role"].as_str().unwrap() {
                "issuing-authority" => OfficerRole::IssuingAuthority,
                "validating-authority" => OfficerRole::ValidatingAuthority,
                _ => OfficerRole::LiaisonOfficer,
            };
            (role, SigningKey::from_seed(&arr32(o, "key_seed")))
        })
        .collect();
    let officers: Vec<rogatory_proto::officer::Officer<'_>> = officer_keys
        .iter()
        .map(|(role, key)| rogatory_proto::officer::Officer { role: *role, key })
        .collect();
    let sealed = seal_officers_with(
        &sender.sender(),
        &officers,
        &adds,
        &message,
        &params,
        &Limits::default(),
        &secrets,
    )
    .unwrap();
    let mut trusted = std::collections::BTreeMap::new();
    trusted.insert(
        sender.card.id().clone(),
        history_with_officers(sender, &officer_keys),
    );
    for (s, e) in sealed.iter().zip(envs) {
        assert_eq!(
            hex::encode(&s.bytes),
            e["envelope"].as_str().unwrap(),
            "envelope to {}",
            s.to
        );
        assert_eq!(s.id.to_hex(), e["envelope_id"].as_str().unwrap());
        let to = find(e["to"].as_str().unwrap());
        let opened = open(
            &h(e, "envelope"),
            &to.recipient(),
            &trusted,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(opened.message, message);
        assert_eq!(hex::encode(&opened.inner), v["inner"].as_str().unwrap());
        assert_eq!(
            opened.info.case_commitment.to_hex(),
            v["case_commitment"].as_str().unwrap()
        );
    }
}

#[test]
fn envelope_vectors_are_reproduced_and_open() {
    for d in defs() {
        let generated = generate(&d);
        check_or_write(d.file, &generated);
        let text = std::fs::read_to_string(vectors_dir().join(d.file)).unwrap();
        replay_envelope_vector(&serde_json::from_str(&text).unwrap());
    }
}

#[test]
fn receipt_vectors_are_reproduced_and_verify() {
    let generated = generate_receipts();
    check_or_write("receipts.json", &generated);
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(vectors_dir().join("receipts.json")).unwrap(),
    )
    .unwrap();
    let issuer = AgencyCard::from_bytes(&h(&v["issuer"], "card")).unwrap();
    for r in v["receipts"].as_array().unwrap() {
        let verified = verify_receipt(&h(r, "bytes"), &issuer, None).unwrap();
        assert_eq!(
            serde_json::to_value(&verified.receipt).unwrap(),
            r["receipt"]
        );
        assert_eq!(verified.hash.to_hex(), r["hash"].as_str().unwrap());
        // The cosignature, from the inputs the vector states alone.
        if let Some(line) = r["cosignature_text"].as_str() {
            use rogatory_proto::audit::note::{NoteVerifier, verify_checkpoint};
            use rogatory_proto::audit::witness::verify_cosignature;
            assert_eq!(
                verified.receipt.cosignature.as_deref(),
                Some(line.as_bytes())
            );
            let log = NoteVerifier::parse(r["carried_checkpoint_verifier_key"].as_str().unwrap())
                .unwrap();
            let carried = r["carried_checkpoint"].as_str().unwrap();
            let (cp, _) = verify_checkpoint(carried.as_bytes(), &log, &[]).unwrap();
            let witness = NoteVerifier::parse(r["witness_verifier_key"].as_str().unwrap()).unwrap();
            let t = verify_cosignature(&cp.body(), line, &witness).unwrap();
            assert_eq!(t, r["cosignature_timestamp"].as_u64().unwrap());
            assert!(line.starts_with("\u{2014} rogatory.XB.DOJ-CA ") && line.ends_with('\n'));
        }
        if let Some(answered) = r["answered_bytes"].as_str() {
            let bytes = hex::decode(answered).unwrap();
            assert_eq!(verified.receipt.envelope_id, Sha256Digest::of(&bytes));
        }
    }
}

fn generate_messages() -> Value {
    let mut m = serde_json::Map::new();
    for kind in MessageType::ALL {
        let msg = example(kind);
        m.insert(
            kind.as_str().to_string(),
            json!({
                "json": msg.to_json(),
                "cbor": hex::encode(msg.to_cbor().unwrap()),
            }),
        );
    }
    json!({
        "description": "The deterministic CBOR encoding of each example in spec/examples/, to check the CDDL schemas against and for decoders to start from.",
        "messages": Value::Object(m),
    })
}

#[test]
fn message_vectors_are_reproduced_and_decode() {
    let generated = generate_messages();
    check_or_write("messages.json", &generated);
    for kind in MessageType::ALL {
        let v = &generated["messages"][kind.as_str()];
        let decoded = Message::from_cbor(kind, &h(v, "cbor"), 1 << 20).unwrap();
        assert_eq!(decoded.to_json(), v["json"]);
    }
}

/// Key histories (spec/KEYS.md): a 1-of-1 root that rotates, revokes a replaced key, then
/// revokes its current signing key and replaces it; a 2-of-3 root handed over to a new 1-of-1
/// root; and histories that must be refused.
fn generate_keys() -> Value {
    use rogatory_proto::keyhist::{
        KeyHistory, RevocationReason, RootSet, StatementBody, statement::sign,
    };
    let root = SigningKey::from_seed(&[0x70; 32]);
    let a1 = Agency::fixed("XA.MOJ-CA", 1);
    let a2 = Agency::fixed("XA.MOJ-CA", 2);
    let a3 = Agency::fixed("XA.MOJ-CA", 3);
    let t = ISSUED_AT;
    let g = StatementBody::genesis(
        RootSet::new(1, &[root.verifying_key().clone()]),
        &a1.card,
        t,
    );
    let mut h = KeyHistory::from_statements(&[sign(&g, &[&root]).unwrap()]).unwrap();
    let rotation = sign(&h.next_card(&a2.card, t + 100), &[&root, &a1.keys.signing]).unwrap();
    h.apply(&rotation).unwrap();
    let revoke_old = h.next_revoke(
        a1.keys.signing.verifying_key().id(),
        RevocationReason::Superseded,
        t + 100,
        t + 200,
    );
    h.apply(&sign(&revoke_old, &[&root]).unwrap()).unwrap();
    let revoke_current = h.next_revoke(
        a2.keys.signing.verifying_key().id(),
        RevocationReason::Compromised,
        t + 250,
        t + 300,
    );
    h.apply(&sign(&revoke_current, &[&root]).unwrap()).unwrap();
    h.apply(&sign(&h.next_card(&a3.card, t + 300), &[&root]).unwrap())
        .unwrap();
    // An official's key certified by the root (seed 0x90), then revoked as retired.
    let ivan = SigningKey::from_seed(&[0x90; 32]);
    let officer = rogatory_proto::keyhist::OfficerCert {
        name: "ivan".into(),
        role: rogatory_proto::keyhist::OfficerRole::IssuingAuthority,
        key: ivan.verifying_key().to_cose_key(),
        valid_from: t + 310,
        valid_until: t + 310 + 365 * 86_400,
    };
    h.apply(&sign(&h.next_officer(officer, t + 310), &[&root]).unwrap())
        .unwrap();
    let retire = h.next_revoke(
        ivan.verifying_key().id(),
        RevocationReason::Retired,
        t + 320,
        t + 320,
    );
    h.apply(&sign(&retire, &[&root]).unwrap()).unwrap();
    // A forged extension: a new card signed by the compromised online key alone.
    let forged = sign(&h.next_card(&a1.card, t + 400), &[&a2.keys.signing]).unwrap();

    let k: Vec<SigningKey> = (0x81..=0x83u8)
        .map(|n| SigningKey::from_seed(&[n; 32]))
        .collect();
    let pubs: Vec<_> = k.iter().map(|k| k.verifying_key().clone()).collect();
    let b = Agency::fixed("XB.DOJ-CA", 4);
    let g2 = StatementBody::genesis(RootSet::new(2, &pubs), &b.card, t);
    let mut h2 = KeyHistory::from_statements(&[sign(&g2, &[&k[0], &k[2]]).unwrap()]).unwrap();
    let next = SigningKey::from_seed(&[0x84; 32]);
    let handover = h2.next_root(RootSet::new(1, &[next.verifying_key().clone()]), t + 50);
    h2.apply(&sign(&handover, &[&k[1], &k[2], &next]).unwrap())
        .unwrap();
    let one_of_three = sign(&g2, &[&k[1]]).unwrap();

    // XA's key log (spec/KEYS.md §7.6, §7.8): its freshness note by its current key 3, and XB's
    // cosignatures (online key 4) of the whole log and of its first two statements.
    use rogatory_proto::keyhist::fresh::{cosign_key_log, sign_fresh};
    let fresh = sign_fresh(&h, &a3.keys.signing, t + 500).unwrap();
    let cosigned = cosign_key_log(&fresh, b.card.id(), &b.keys.signing, t + 501).unwrap();
    let first_two = h.checkpoint_at(2).unwrap().body();
    let line = rogatory_proto::audit::witness::cosign(
        &first_two,
        "rogatory.XB.DOJ-CA",
        &b.keys.signing,
        t + 502,
    )
    .unwrap();
    let prefix = format!("{first_two}\n{line}");

    let history = |h: &KeyHistory| {
        json!({
            "fingerprint": h.fingerprint(),
            "root_id": hex::encode(h.root_id()),
            "file": hex::encode(h.to_file()),
            "statements": h.summaries().iter().zip(h.statements()).map(|(s, b)| json!({
                "seq": s.seq,
                "kind": format!("{:?}", s.kind).to_lowercase(),
                "at": s.at,
                "payload_sha256": s.hash.to_hex(),
                "signers": s.signers.iter().map(hex::encode).collect::<Vec<_>>(),
                "bytes": hex::encode(b),
            })).collect::<Vec<_>>(),
            "keys": h.keys().iter().map(|k| json!({
                "kid": hex::encode(k.kid),
                "use": match k.usage {
                    rogatory_proto::card::KeyUse::Sign => "sign",
                    rogatory_proto::card::KeyUse::Encrypt => "encrypt",
                },
                "from": k.from,
                "until": k.until,
                "revoked": k.revoked.as_ref().map(|r| json!({
                    "reason": r.reason.as_str(),
                    "effective": r.effective,
                    "seq": r.seq,
                })),
            })).collect::<Vec<_>>(),
            "officers": h.officers().iter().map(|o| json!({
                "name": o.name,
                "role": o.role.as_str(),
                "kid": hex::encode(o.key.id()),
                "from": o.from,
                "until": o.until,
                "revoked": o.revoked.as_ref().map(|r| json!({
                    "reason": r.reason.as_str(),
                    "effective": r.effective,
                    "seq": r.seq,
                })),
            })).collect::<Vec<_>>(),
        })
    };
    json!({
        "description": "Key histories (spec/KEYS.md). Every statement is reproduced from the seeds: root keys are Ed25519 seeds of 32 equal bytes (0x70 for XA; 0x81, 0x82, 0x83 then 0x84 for XB); the online keys are those of the envelope vectors' agencies n (signing seed n, encryption secret n+100). `file` is the history file; `keys` what replaying it gives. `key_log` is XA's history as a C2SP log (§7.6): its checkpoint, its freshness note by its current signing key, and cosignatures by XB's online key 4 of the whole log and of its first two statements (§7.8).",
        "histories": [
            {
                "agency": "XA.MOJ-CA",
                "root_seeds": ["70"],
                "story": "genesis (online keys 1); rotation to keys 2 endorsed by key 1; key 1 revoked as superseded; key 2 revoked as compromised; new card with keys 3 signed by the root alone; an official, ivan, certified as issuing authority (key seed 0x90), then revoked as retired",
                "history": history(&h),
            },
            {
                "agency": "XB.DOJ-CA",
                "root_seeds": ["81", "82", "83"],
                "story": "genesis under a 2-of-3 root (signed by 0x81 and 0x83); the root handed to a 1-of-1 root 0x84, signed by 0x82 and 0x83 of the old root and by the new",
                "history": history(&h2),
            }
        ],
        "key_log": {
            "agency": "XA.MOJ-CA",
            "checkpoint": h.checkpoint().body(),
            "fresh": String::from_utf8(fresh).unwrap(),
            "fresh_time": t + 500,
            "witness": "XB.DOJ-CA",
            "witness_public_key": hex::encode(b.keys.signing.verifying_key().as_bytes()),
            "cosignature": String::from_utf8(cosigned).unwrap(),
            "cosignature_time": t + 501,
            "prefix_cosignature": prefix,
            "prefix_size": 2,
            "prefix_time": t + 502,
        },
        "refused": [
            {
                "what": "XA's history followed by a new card signed only by the compromised online key 2",
                "statements": h.statements().iter().chain(std::iter::once(&forged)).map(hex::encode).collect::<Vec<_>>(),
                "error": "signature",
            },
            {
                "what": "XB's genesis signed by one key of its 2-of-3 root",
                "statements": [hex::encode(&one_of_three)],
                "error": "signature",
            },
            {
                "what": "XA's history without statement 1: statement 2's prev does not chain",
                "statements": h.statements().iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, s)| hex::encode(s)).collect::<Vec<_>>(),
                "error": "invalid",
            }
        ]
    })
}

#[test]
fn key_history_vectors_are_reproduced_and_replay() {
    use rogatory_proto::keyhist::{KeyHistory, KeyHistoryError, decode_history};
    let v = generate_keys();
    check_or_write("keys.json", &v);
    for h in v["histories"].as_array().unwrap() {
        let file = h["history"]["file"].as_str().unwrap();
        let replayed = KeyHistory::from_file(&hex::decode(file).unwrap()).unwrap();
        assert_eq!(replayed.fingerprint(), h["history"]["fingerprint"]);
        let statements = decode_history(&hex::decode(file).unwrap()).unwrap();
        assert_eq!(
            statements.len(),
            h["history"]["statements"].as_array().unwrap().len()
        );
    }
    for r in v["refused"].as_array().unwrap() {
        let list: Vec<Vec<u8>> = r["statements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| hex::decode(s.as_str().unwrap()).unwrap())
            .collect();
        let e = KeyHistory::from_statements(&list).unwrap_err();
        let kind = match e {
            KeyHistoryError::Signature { .. } => "signature",
            KeyHistoryError::Invalid(_) => "invalid",
            _ => "other",
        };
        assert_eq!(kind, r["error"], "{}: {e}", r["what"]);
    }
}
