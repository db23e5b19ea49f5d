use super::statement::{add_signature, sign};
use super::*;
use crate::card::{AgencyCard, CardDetails, Role};
use crate::keys::{AgencySecretKeys, EncryptionSecretKey, SigningKey};

const T0: u64 = 1_780_000_000;

fn card(keys: &AgencySecretKeys, at: u64, address: &str) -> AgencyCard {
    card_of("XA.MOJ-CA", keys, at, address)
}

fn card_of(id: &str, keys: &AgencySecretKeys, at: u64, address: &str) -> AgencyCard {
    AgencyCard::issue(
        CardDetails {
            id: AgencyId::new(id).unwrap(),
            name: "XA".into(),
            roles: vec![Role::CentralAuthority],
            addresses: vec![address.into()],
            languages: vec!["en".into()],
            legal_bases: vec![],
            issued_at: at,
        },
        keys,
    )
    .unwrap()
}

struct Agency {
    root: Vec<SigningKey>,
    keys: AgencySecretKeys,
    history: KeyHistory,
}

fn agency(threshold: u32, n: usize) -> Agency {
    agency_named("XA.MOJ-CA", threshold, n)
}

fn agency_named(id: &str, threshold: u32, n: usize) -> Agency {
    let root: Vec<SigningKey> = (0..n).map(|_| SigningKey::generate()).collect();
    let keys = AgencySecretKeys::generate();
    let c = card_of(id, &keys, T0, "/ip4/127.0.0.1/tcp/1");
    let publics: Vec<_> = root.iter().map(|k| k.verifying_key().clone()).collect();
    let body = StatementBody::genesis(RootSet::new(threshold, &publics), &c, T0);
    let signers: Vec<&SigningKey> = root.iter().take(threshold as usize).collect();
    let genesis = sign(&body, &signers).unwrap();
    let history = KeyHistory::from_statements(&[genesis]).unwrap();
    Agency {
        root,
        keys,
        history,
    }
}

impl Agency {
    fn rotate(&mut self, at: u64, endorse: bool) -> Vec<u8> {
        let new = self.keys.rotated(
            Some(SigningKey::generate()),
            Some(EncryptionSecretKey::generate()),
        );
        let c = card(&new, at, "/ip4/127.0.0.1/tcp/2");
        let body = self.history.next_card(&c, at);
        let mut signers: Vec<&SigningKey> = vec![&self.root[0]];
        if endorse {
            signers.push(&self.keys.signing);
        }
        let bytes = sign(&body, &signers).unwrap();
        self.history.apply(&bytes).unwrap();
        self.keys = new;
        bytes
    }
}

#[test]
fn a_genesis_names_the_root_and_its_fingerprint() {
    let a = agency(1, 1);
    assert_eq!(a.history.root_id(), a.root[0].verifying_key().id());
    assert_eq!(a.history.fingerprint().len(), 39);
    assert_eq!(
        a.history.current_card().signing_key(),
        a.keys.signing.verifying_key()
    );
    // The file round-trips.
    let again = KeyHistory::from_file(&a.history.to_file()).unwrap();
    assert_eq!(again.fingerprint(), a.history.fingerprint());
    // Any flipped bit of the file is refused.
    let file = a.history.to_file();
    for i in 0..file.len() {
        let mut b = file.clone();
        b[i] ^= 0x01;
        assert!(KeyHistory::from_file(&b).is_err(), "flip at {i} accepted");
    }
}

#[test]
fn a_bare_card_is_its_own_root_and_cannot_rotate() {
    let keys = AgencySecretKeys::generate();
    let c = card(&keys, T0, "/ip4/127.0.0.1/tcp/1");
    let mut h = KeyHistory::from_file(c.as_bytes()).unwrap();
    assert!(h.is_bare_card());
    assert_eq!(h.fingerprint(), c.fingerprint());
    assert!(h.signer(keys.signing.verifying_key().id()).is_ok());
    let body = StatementBody {
        seq: 1,
        ..h.next_card(&c, T0)
    };
    let s = sign(&body, &[&keys.signing]).unwrap();
    assert!(h.apply(&s).is_err());
}

#[test]
fn rotations_keep_old_keys_valid_until_replaced() {
    let mut a = agency(1, 1);
    let old = a.keys.signing.verifying_key().clone();
    a.rotate(T0 + 100, true);
    let new = a.keys.signing.verifying_key().clone();
    let (_, rec) = a.history.signer(old.id()).unwrap();
    assert_eq!((rec.from, rec.until), (T0, Some(T0 + 100)));
    let (card, rec) = a.history.signer(new.id()).unwrap();
    assert_eq!(card.signing_key(), &new);
    assert_eq!((rec.from, rec.until), (T0 + 100, None));
    assert!(a.history.summaries()[1].endorsed_by_previous_key);
    // Three more; the file verifies from the genesis.
    for i in 2..5 {
        a.rotate(T0 + 100 * i, false);
    }
    let again = KeyHistory::from_file(&a.history.to_file()).unwrap();
    assert_eq!(again.keys().len(), 10);
    assert_eq!(again.fingerprint(), a.history.fingerprint());
}

#[test]
fn a_rotation_not_signed_by_the_root_is_refused() {
    let mut a = agency(1, 1);
    // The online key alone (an attacker who took the node) cannot rotate.
    let new = AgencySecretKeys::generate();
    let c = card(&new, T0 + 5, "/ip4/127.0.0.1/tcp/9");
    let body = a.history.next_card(&c, T0 + 5);
    let forged = sign(&body, &[&a.keys.signing]).unwrap();
    let e = a.history.apply(&forged).unwrap_err();
    assert!(matches!(e, KeyHistoryError::Signature { .. }), "{e}");
    // Nor can a stranger's key, even beside the root's signature.
    let stranger = SigningKey::generate();
    let both = sign(&body, &[&a.root[0], &stranger]).unwrap();
    assert!(a.history.apply(&both).is_err());
    // A statement out of sequence or with a wrong `prev` is refused.
    let mut skip = body.clone();
    skip.seq = 2;
    assert!(
        a.history
            .apply(&sign(&skip, &[&a.root[0]]).unwrap())
            .is_err()
    );
    let mut prev = body.clone();
    prev.prev = Some(crate::ids::Sha256Digest::of(b"other"));
    assert!(
        a.history
            .apply(&sign(&prev, &[&a.root[0]]).unwrap())
            .is_err()
    );
    // The root's signature makes it good.
    a.history
        .apply(&sign(&body, &[&a.root[0]]).unwrap())
        .unwrap();
}

#[test]
fn revoked_keys_are_refused_whatever_their_window() {
    let mut a = agency(1, 1);
    let old = a.keys.signing.verifying_key().clone();
    a.rotate(T0 + 100, false);
    let body = a
        .history
        .next_revoke(old.id(), RevocationReason::Compromised, T0 + 50, T0 + 200);
    a.history
        .apply(&sign(&body, &[&a.root[0]]).unwrap())
        .unwrap();
    match a.history.signer(old.id()) {
        Err(KeyRefusal::Revoked(r)) => {
            assert_eq!(r.reason, RevocationReason::Compromised);
            assert_eq!((r.effective, r.seq), (T0 + 50, 2));
        }
        other => panic!("{other:?}"),
    }
    // A revoked key cannot be revoked again, nor endorse a rotation.
    let again = a
        .history
        .next_revoke(old.id(), RevocationReason::Retired, T0, T0 + 300);
    assert!(
        a.history
            .apply(&sign(&again, &[&a.root[0]]).unwrap())
            .is_err()
    );
}

#[test]
fn a_k_of_n_root_needs_k_signatures_and_can_be_replaced() {
    let mut a = agency(2, 3);
    assert_ne!(a.history.root_id(), a.root[0].verifying_key().id());
    let new = AgencySecretKeys::generate();
    let c = card(&new, T0 + 5, "/ip4/127.0.0.1/tcp/3");
    let body = a.history.next_card(&c, T0 + 5);
    let one = sign(&body, &[&a.root[1]]).unwrap();
    assert!(a.history.apply(&one).is_err());
    // A second holder adds a signature on another machine.
    let two = add_signature(&one, &a.root[2]).unwrap();
    a.history.apply(&two).unwrap();

    // A new 1-of-1 root, signed by 2 of the old and by the new.
    let next = SigningKey::generate();
    let body = a
        .history
        .next_root(RootSet::new(1, &[next.verifying_key().clone()]), T0 + 6);
    let only_old = sign(&body, &[&a.root[0], &a.root[1]]).unwrap();
    assert!(a.history.apply(&only_old).is_err());
    let full = add_signature(&only_old, &next).unwrap();
    let fp = a.history.fingerprint();
    a.history.apply(&full).unwrap();
    // The fingerprint names the genesis root still; the new root now signs.
    assert_eq!(a.history.fingerprint(), fp);
    assert_eq!(a.history.root().1, &[next.verifying_key().clone()]);
}

#[test]
fn two_histories_for_one_agency_are_a_fork() {
    let mut a = agency(1, 1);
    let base = a.history.clone();
    a.rotate(T0 + 10, false);
    let mut b = Agency {
        root: vec![SigningKey::from_seed(&a.root[0].seed())],
        keys: AgencySecretKeys::generate(),
        history: base.clone(),
    };
    b.rotate(T0 + 10, false);
    let mut held = base.clone();
    assert_eq!(
        held.extend_from(a.history.statements()).unwrap(),
        1,
        "the first offered extends"
    );
    assert_eq!(
        held.relation(b.history.statements()),
        Relation::Fork { seq: 1 }
    );
    assert!(matches!(
        held.extend_from(b.history.statements()),
        Err(KeyHistoryError::Fork { seq: 1, .. })
    ));
    assert_eq!(held.relation(base.statements()), Relation::Behind);
}

#[test]
fn fingerprints_are_checked_like_card_fingerprints() {
    let a = agency(1, 1);
    let fp = a.history.fingerprint();
    a.history.check_fingerprint(&fp.to_lowercase()).unwrap();
    a.history.check_fingerprint(&fp.replace('-', " ")).unwrap();
    assert!(a.history.check_fingerprint(&fp[..20]).is_err());
    let other = agency(1, 1);
    assert!(
        other
            .history
            .check_fingerprint(&a.history.fingerprint())
            .is_err()
    );
}

#[test]
fn key_sets_keep_previous_encryption_keys_and_the_storage_key() {
    let keys = AgencySecretKeys::generate();
    let storage = keys.storage_key();
    let next = keys.rotated(None, Some(EncryptionSecretKey::generate()));
    assert_eq!(next.storage_key(), storage);
    assert!(
        next.encryption_key(keys.encryption.public_key().id())
            .is_some()
    );
    let back = AgencySecretKeys::from_cose_key_set(&next.to_cose_key_set()).unwrap();
    assert_eq!(back.storage_key(), storage);
    assert_eq!(back.previous_encryption.len(), 1);
    assert_eq!(back.signing.verifying_key(), keys.signing.verifying_key());
}

#[test]
fn freshness_notes_name_the_history_and_its_current_key() {
    use super::fresh::{sign_fresh, verify_fresh};
    let mut a = agency(1, 1);
    let note = sign_fresh(&a.history, &a.keys.signing, T0 + 7).unwrap();
    assert_eq!(verify_fresh(&a.history, &note).unwrap(), T0 + 7);
    // Another key cannot sign one, and a note of a shorter history does not fit a longer one.
    assert!(sign_fresh(&a.history, &SigningKey::generate(), T0).is_err());
    let old = a.history.clone();
    a.rotate(T0 + 10, true);
    assert!(verify_fresh(&a.history, &note).is_err());
    let note2 = sign_fresh(&a.history, &a.keys.signing, T0 + 20).unwrap();
    assert!(verify_fresh(&old, &note2).is_err());
    // Any changed byte is refused.
    for i in 0..note2.len() {
        let mut b = note2.clone();
        b[i] ^= 0x01;
        if let Ok(t) = verify_fresh(&a.history, &b) {
            panic!("flip at {i} accepted ({t})");
        }
    }
}

#[test]
fn introductions_name_a_root_and_verify_with_the_introducer_s_keys() {
    use super::intro::{introduce, read, verify};
    let a = agency(1, 1);
    let c = agency(1, 1);
    let note = introduce(&a.history, &a.keys.signing, &c.history, T0).unwrap();
    let i = verify(&note, &a.history).unwrap();
    assert_eq!(i.agency, *c.history.agency());
    assert_eq!(i.root.as_slice(), c.history.root_id().as_slice());
    // Only the introducer's current key makes one; another agency's history does not verify it.
    assert!(introduce(&a.history, &c.keys.signing, &c.history, T0).is_err());
    let mut other = agency(1, 1);
    other.history = KeyHistory::from_card(other.history.current_card().clone());
    assert!(verify(&note, &other.history).is_err());
    // Any changed byte is refused.
    for n in 0..note.len() {
        let mut b = note.clone();
        b[n] ^= 0x01;
        assert!(verify(&b, &a.history).is_err(), "flip at {n} accepted");
    }
    assert!(read(&note[..note.len() - 1]).is_err());
}

#[test]
fn witnesses_cosign_a_key_log_and_a_split_view_shows() {
    use super::fresh::{Agreement, cosign_key_log, sign_fresh, verify_key_log_note};
    let mut a = agency(1, 1);
    let w = agency_named("XB.POLICE", 1, 1);
    let note = sign_fresh(&a.history, &a.keys.signing, T0 + 7).unwrap();
    let cosigned = cosign_key_log(&note, w.history.agency(), &w.keys.signing, T0 + 8).unwrap();
    let v = verify_key_log_note(&a.history, &w.history, &cosigned).unwrap();
    assert_eq!((v.size, v.at, v.agreement), (1, T0 + 8, Agreement::Same));
    // The owner's own note, relayed, verifies with the owner as signer.
    let own = verify_key_log_note(&a.history, &a.history, &note).unwrap();
    assert_eq!((own.at, own.agreement), (T0 + 7, Agreement::Same));
    // Not by another agency's keys.
    assert!(verify_key_log_note(&a.history, &agency(1, 1).history, &cosigned).is_err());
    // After a rotation the old checkpoint is a prefix; a node still at the old history is
    // behind a checkpoint of the new one.
    let old = a.history.clone();
    a.rotate(T0 + 10, true);
    let v = verify_key_log_note(&a.history, &w.history, &cosigned).unwrap();
    assert_eq!((v.size, v.agreement), (1, Agreement::Prefix));
    let note2 = sign_fresh(&a.history, &a.keys.signing, T0 + 20).unwrap();
    let cosigned2 = cosign_key_log(&note2, w.history.agency(), &w.keys.signing, T0 + 21).unwrap();
    let v = verify_key_log_note(&old, &w.history, &cosigned2).unwrap();
    assert_eq!((v.size, v.agreement), (2, Agreement::Ahead));
    // A second history of the same agency (same root, another rotation) is a split.
    let mut fork = old.clone();
    let other = card(
        &AgencySecretKeys::generate(),
        T0 + 11,
        "/ip4/127.0.0.1/tcp/3",
    );
    fork.apply(&sign(&old.next_card(&other, T0 + 11), &[&a.root[0]]).unwrap())
        .unwrap();
    let v = verify_key_log_note(&fork, &w.history, &cosigned2).unwrap();
    assert_eq!(v.agreement, Agreement::Split);
    // A key log note of another agency's log, or any changed byte, is refused.
    assert!(verify_key_log_note(&w.history, &w.history, &cosigned).is_err());
    for i in 0..cosigned.len() {
        let mut b = cosigned.clone();
        b[i] ^= 0x01;
        if let Ok(v) = verify_key_log_note(&a.history, &w.history, &b) {
            assert_ne!(v.agreement, Agreement::Same, "flip at {i} accepted");
        }
    }
}

#[test]
fn a_witness_whose_key_is_revoked_vouches_for_nothing() {
    use super::fresh::{cosign_key_log, sign_fresh, verify_key_log_note};
    let a = agency(1, 1);
    let mut w = agency_named("XB.POLICE", 1, 1);
    let note = sign_fresh(&a.history, &a.keys.signing, T0 + 7).unwrap();
    let cosigned = cosign_key_log(&note, w.history.agency(), &w.keys.signing, T0 + 8).unwrap();
    assert!(verify_key_log_note(&a.history, &w.history, &cosigned).is_ok());
    let body = w.history.next_revoke(
        w.keys.signing.verifying_key().id(),
        RevocationReason::Compromised,
        T0,
        T0 + 9,
    );
    w.history
        .apply(&sign(&body, &[&w.root[0]]).unwrap())
        .unwrap();
    assert!(verify_key_log_note(&a.history, &w.history, &cosigned).is_err());
}

fn officer_cert(key: &SigningKey, from: u64, days: u64) -> super::OfficerCert {
    super::OfficerCert {
        name: "ivan".into(),
        role: super::OfficerRole::IssuingAuthority,
        key: key.verifying_key().to_cose_key(),
        valid_from: from,
        valid_until: from + days * 86_400,
    }
}

#[test]
fn the_root_certifies_officials_and_revokes_them() {
    let mut a = agency(1, 1);
    let ivan = SigningKey::generate();
    let body = a.history.next_officer(officer_cert(&ivan, T0, 365), T0 + 5);
    // The online key alone cannot certify an official.
    assert!(
        a.history
            .clone()
            .apply(&sign(&body, &[&a.keys.signing]).unwrap())
            .is_err()
    );
    a.history
        .apply(&sign(&body, &[&a.root[0]]).unwrap())
        .unwrap();
    let o = a
        .history
        .officer(ivan.verifying_key().id(), T0 + 10)
        .unwrap();
    assert_eq!((o.name.as_str(), o.from), ("ivan", T0 + 5));
    assert!(matches!(
        a.history
            .officer(ivan.verifying_key().id(), T0 + 366 * 86_400),
        Err(KeyRefusal::OutsideWindow { .. })
    ));
    assert!(matches!(
        a.history
            .officer(SigningKey::generate().verifying_key().id(), T0 + 10),
        Err(KeyRefusal::Unknown)
    ));
    // The same key twice, an agency key as an official's, or a year and more: refused.
    let again = a.history.next_officer(officer_cert(&ivan, T0, 30), T0 + 6);
    assert!(
        a.history
            .clone()
            .apply(&sign(&again, &[&a.root[0]]).unwrap())
            .is_err()
    );
    let long = a
        .history
        .next_officer(officer_cert(&SigningKey::generate(), T0, 367), T0 + 6);
    assert!(
        sign(&long, &[&a.root[0]]).is_err() || {
            a.history
                .clone()
                .apply(&sign(&long, &[&a.root[0]]).unwrap())
                .is_err()
        }
    );
    // Revoked like any key: refused from then on, whatever the time.
    let revoke = a.history.next_revoke(
        ivan.verifying_key().id(),
        RevocationReason::Retired,
        T0 + 20,
        T0 + 20,
    );
    a.history
        .apply(&sign(&revoke, &[&a.root[0]]).unwrap())
        .unwrap();
    assert!(matches!(
        a.history.officer(ivan.verifying_key().id(), T0 + 10),
        Err(KeyRefusal::Revoked(_))
    ));
    // The history replays from its file, officials included.
    let again = KeyHistory::from_file(&a.history.to_file()).unwrap();
    assert_eq!(again.officers(), a.history.officers());
}
