//! Arbitrary bytes as everything an auditor or a witness reads: a signed note (verified against
//! a fixed key, as a checkpoint, and under a policy), a checkpoint body, a tlog-proof, a
//! tlog-policy, a consistency proof in text and as an envelope header, an audit entry, and an
//! evidence chunk request. Nothing may panic; what decodes must encode back to its input where
//! the format has one encoding.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rogatory_proto::audit::entry::AuditEntry;
use rogatory_proto::audit::note::{
    Checkpoint, Note, NoteVerifier, Policy, SIG_ED25519, TlogProof, verify_checkpoint,
};
use rogatory_proto::audit::witness::{CarriedProof, ConsistencyText};
use rogatory_proto::evidence::ChunkRequest;
use rogatory_proto::keys::SigningKey;

fn verifier() -> &'static NoteVerifier {
    static V: OnceLock<NoteVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let key = SigningKey::from_seed(&[1; 32]);
        NoteVerifier::new("rogatory.XA.MOJ-CA", SIG_ED25519, key.verifying_key()).expect("key")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = Note::parse(data) {
        let _ = n.verify(std::slice::from_ref(verifier()));
    }
    let _ = verify_checkpoint(data, verifier(), &[]);
    if let Ok(p) = CarriedProof::from_bytes(data) {
        assert_eq!(p.to_bytes(), data);
    }
    if let Ok(e) = AuditEntry::from_cbor(data) {
        assert_eq!(e.to_cbor().expect("re-encode"), data);
    }
    if let Ok(r) = ChunkRequest::decode(data) {
        assert_eq!(r.encode(), data);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = NoteVerifier::parse(text);
    if let Ok(c) = Checkpoint::parse(text) {
        let _ = c.body();
    }
    if let Ok(p) = TlogProof::parse(text) {
        let _ = p.to_text();
    }
    if let Ok(p) = Policy::parse(text) {
        let _ = p.verify(data);
    }
    if let Ok(c) = ConsistencyText::parse(text) {
        let _ = c.to_text();
    }
});
