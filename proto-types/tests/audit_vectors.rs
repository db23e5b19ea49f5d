//! The public RFC 6962 proof vectors (spec/vectors/rfc6962, from transparency-dev/merkle) and the
//! published C2SP signed-note examples (spec/vectors/c2sp-signed-note.json).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rogatory_proto::audit::merkle::{
    MemoryTree, consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency,
    verify_inclusion,
};
use rogatory_proto::audit::note::{Note, NoteError, NoteVerifier};
use serde_json::Value;
use std::path::Path;
use support::spec_dir;

fn json_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap_or("")).unwrap()
}

fn proof(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .map(|a| a.iter().map(b64).collect())
        .unwrap_or_default()
}

#[test]
fn every_rfc6962_inclusion_vector() {
    let mut files = Vec::new();
    json_files(&spec_dir().join("vectors/rfc6962/inclusion"), &mut files);
    assert!(files.len() > 50, "vectors missing: {}", files.len());
    for f in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let got = verify_inclusion(
            v["leafIdx"].as_u64().unwrap(),
            v["treeSize"].as_u64().unwrap(),
            &b64(&v["leafHash"]),
            &proof(&v["proof"]),
            &b64(&v["root"]),
        );
        assert_eq!(
            got.is_err(),
            v["wantErr"].as_bool().unwrap(),
            "{}: {got:?}",
            f.display()
        );
    }
}

#[test]
fn every_rfc6962_consistency_vector() {
    let mut files = Vec::new();
    json_files(&spec_dir().join("vectors/rfc6962/consistency"), &mut files);
    assert!(files.len() > 50, "vectors missing: {}", files.len());
    for f in files {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let got = verify_consistency(
            v["size1"].as_u64().unwrap(),
            v["size2"].as_u64().unwrap(),
            &proof(&v["proof"]),
            &b64(&v["root1"]),
            &b64(&v["root2"]),
        );
        assert_eq!(
            got.is_err(),
            v["wantErr"].as_bool().unwrap(),
            "{}: {got:?}",
            f.display()
        );
    }
}

#[test]
fn our_proofs_reproduce_the_rfc6962_happy_paths() {
    // The eight RFC 6962 test leaves; our generator must produce the vectors' proofs exactly.
    let leaves = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    let mut t = MemoryTree::new();
    for l in leaves {
        t.push(&hex::decode(l).unwrap());
    }
    let mut files = Vec::new();
    json_files(&spec_dir().join("vectors/rfc6962"), &mut files);
    let mut checked = 0;
    for f in files.iter().filter(|f| f.ends_with("happy-path.json")) {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        if let Some(idx) = v["leafIdx"].as_u64() {
            let size = v["treeSize"].as_u64().unwrap();
            assert_eq!(
                leaf_hash(&hex::decode(leaves[idx as usize]).unwrap()).to_vec(),
                b64(&v["leafHash"])
            );
            assert_eq!(
                root(&t, size).unwrap().to_vec(),
                b64(&v["root"]),
                "{}",
                f.display()
            );
            let p: Vec<Vec<u8>> = inclusion_proof(&t, idx, size)
                .unwrap()
                .unwrap()
                .iter()
                .map(|h| h.to_vec())
                .collect();
            assert_eq!(p, proof(&v["proof"]), "{}", f.display());
        } else {
            let (s1, s2) = (v["size1"].as_u64().unwrap(), v["size2"].as_u64().unwrap());
            let p: Vec<Vec<u8>> = consistency_proof(&t, s1, s2)
                .unwrap()
                .unwrap()
                .iter()
                .map(|h| h.to_vec())
                .collect();
            assert_eq!(p, proof(&v["proof"]), "{}", f.display());
        }
        checked += 1;
    }
    assert!(checked >= 9, "{checked}");
}

#[test]
fn published_signed_note_examples_verify() {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(spec_dir().join("vectors/c2sp-signed-note.json")).unwrap(),
    )
    .unwrap();
    for case in v["notes"].as_array().unwrap() {
        let keys: Vec<NoteVerifier> = case["vkeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| NoteVerifier::parse(k.as_str().unwrap()).unwrap())
            .collect();
        for (k, s) in keys.iter().zip(case["vkeys"].as_array().unwrap()) {
            assert_eq!(
                k.vkey(),
                s.as_str().unwrap(),
                "a verifier key re-encodes to itself"
            );
        }
        let note = Note::parse(case["note"].as_str().unwrap().as_bytes()).unwrap();
        assert_eq!(note.text(), case["text"].as_str().unwrap());
        assert_eq!(note.to_text(), case["note"].as_str().unwrap());
        let verified: Vec<String> = note
            .verify(&keys)
            .unwrap()
            .iter()
            .map(|s| format!("{}+{:08x}", s.name, s.id))
            .collect();
        let want: Vec<String> = case["verified"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        assert_eq!(verified, want, "{}", case["source"]);
        // The same note with its text altered fails with the known key.
        let altered = case["note"].as_str().unwrap().replacen('e', "E", 1);
        assert!(matches!(
            Note::parse(altered.as_bytes()).unwrap().verify(&keys),
            Err(NoteError::BadSignature(_))
        ));
        // With no known key nothing verifies.
        assert!(matches!(note.verify(&[]), Err(NoteError::NoKnownSignature)));
    }
    // A verifier key whose id does not match its name and key is refused.
    assert!(
        NoteVerifier::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .is_err()
    );
    assert!(
        NoteVerifier::parse("PeterNeumanN+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
            .is_err()
    );
}
