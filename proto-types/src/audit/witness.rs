//! Mutual witnessing (spec/PROTOCOL.md §6.6): each agency is the other's witness for a shared
//! case. Every envelope carries the sender's signed checkpoint of its case log and, from the
//! second envelope of a chain on, a consistency proof from the checkpoint the previous envelope
//! of the chain carried ([`CarriedProof`]). The addressee checks the new checkpoint against the
//! last one it witnessed from that sender for the case ([`witness`]), and, if it holds, returns a
//! C2SP cosignature/v1 of it in the receipt ([`cosign`], checked by the sender with
//! [`verify_cosignature`]). A checkpoint that does not extend the last one witnessed — a log that
//! forked or rolled back — is an [`Inconsistency`]: never cosigned, never silently accepted.
//!
//! Sans-IO: the callers keep the checkpoints.

use super::merkle::{self, Hash};
use super::note::{self, Checkpoint, Note, NoteError, NoteVerifier};
use crate::keys::SigningKey;

/// Most hashes a carried consistency proof may hold (a proof has at most about 2·log2(n)).
pub const MAX_PROOF_HASHES: usize = 128;

/// A consistency proof carried in an envelope's outer header (label −65549): from `old_size`,
/// the size of the checkpoint the previous envelope of the same chain carried, to the size of
/// the checkpoint this envelope carries. Encoded as `old_size` (8 bytes, big-endian) followed by
/// the proof's hashes (32 bytes each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedProof {
    /// The older tree size.
    pub old_size: u64,
    /// The RFC 9162 §2.1.4 consistency proof.
    pub hashes: Vec<Hash>,
}

impl CarriedProof {
    /// The header bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 32 * self.hashes.len());
        out.extend_from_slice(&self.old_size.to_be_bytes());
        for h in &self.hashes {
            out.extend_from_slice(h);
        }
        out
    }

    /// Reads the header bytes.
    pub fn from_bytes(b: &[u8]) -> Result<Self, NoteError> {
        let bad = |m: &str| NoteError::Format(format!("the consistency proof {m}"));
        if b.len() < 8 || !(b.len() - 8).is_multiple_of(32) {
            return Err(bad("is a size (8 bytes) followed by 32-byte hashes"));
        }
        let hashes: Vec<Hash> = b[8..]
            .chunks_exact(32)
            .map(|c| c.try_into().unwrap_or([0; 32]))
            .collect();
        if hashes.len() > MAX_PROOF_HASHES {
            return Err(bad("has too many hashes"));
        }
        let mut size = [0u8; 8];
        size.copy_from_slice(&b[..8]);
        Ok(Self {
            old_size: u64::from_be_bytes(size),
            hashes,
        })
    }
}

/// Why a peer's new checkpoint is not accepted by its witness.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inconsistency {
    /// The checkpoint is not a signed checkpoint of the sender's log of this case.
    #[error("the checkpoint is not a valid signed checkpoint of {origin}: {detail}")]
    Unverified {
        /// The log expected.
        origin: String,
        /// Why.
        detail: String,
    },
    /// The log is smaller than one already witnessed: it was rolled back (truncated).
    #[error("rolled back: size {new} after size {old} was witnessed")]
    RolledBack {
        /// The size witnessed before.
        old: u64,
        /// The new size.
        new: u64,
    },
    /// Same size, another root: two histories (a split view).
    #[error("forked: size {size} was witnessed with another root hash")]
    Forked {
        /// The size.
        size: u64,
    },
    /// The log grew but no proof that it extends the witnessed one came with it.
    #[error("no consistency proof from the witnessed size {old} to size {new}")]
    NoProof {
        /// The size witnessed before.
        old: u64,
        /// The new size.
        new: u64,
    },
    /// The proof does not show that the new tree extends the witnessed one: the history before
    /// the witnessed size was changed.
    #[error("forked: size {new} does not extend the witnessed size {old} ({detail})")]
    NotExtending {
        /// The size witnessed before.
        old: u64,
        /// The new size.
        new: u64,
        /// The proof check's message.
        detail: String,
    },
}

impl Inconsistency {
    /// A short name, for alerts and logs: `unverified`, `rolled-back`, `forked`, `no-proof`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unverified { .. } => "unverified",
            Self::RolledBack { .. } => "rolled-back",
            Self::Forked { .. } | Self::NotExtending { .. } => "forked",
            Self::NoProof { .. } => "no-proof",
        }
    }
}

/// A consistency proof as text, in the body form of the C2SP tlog-witness add-checkpoint request:
/// `old N`, one base64 hash per line, a blank line, then the signed checkpoint of the newer size.
/// What `rogatory audit consistency` prints and `rogatory audit verify-consistency` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyText {
    /// The older size and the proof's hashes.
    pub proof: CarriedProof,
    /// The signed checkpoint (note bytes) of the newer size.
    pub checkpoint: Vec<u8>,
}

impl ConsistencyText {
    /// The text.
    pub fn to_text(&self) -> String {
        use base64::Engine as _;
        let mut out = format!("old {}\n", self.proof.old_size);
        for h in &self.proof.hashes {
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(&self.checkpoint));
        out
    }

    /// Reads the text; the checkpoint is not verified here.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        use base64::Engine as _;
        let bad = |m: &str| NoteError::Format(format!("the consistency proof {m}"));
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("has no blank line before its checkpoint"))?;
        let mut lines = head.split('\n');
        let old_size = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad("does not start with `old N`"))?;
        let mut hashes = Vec::new();
        for line in lines {
            if hashes.len() == MAX_PROOF_HASHES {
                return Err(bad("has too many hashes"));
            }
            let h: Hash = base64::engine::general_purpose::STANDARD
                .decode(line)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("has a line that is not a base64 SHA-256 hash"))?;
            hashes.push(h);
        }
        Ok(Self {
            proof: CarriedProof { old_size, hashes },
            checkpoint: checkpoint.as_bytes().to_vec(),
        })
    }

    /// Checks that `new` (this text's checkpoint, its signature verified by the caller) extends
    /// `old` (a checkpoint of the same log the caller verified earlier, of the proof's older
    /// size): the log only grew between them.
    pub fn verify(&self, old: &Checkpoint, new: &Checkpoint) -> Result<(), Inconsistency> {
        if old.origin != new.origin {
            return Err(Inconsistency::Unverified {
                origin: new.origin.clone(),
                detail: format!("the older checkpoint is of another log, {}", old.origin),
            });
        }
        if old.size != self.proof.old_size {
            return Err(Inconsistency::NoProof {
                old: old.size,
                new: new.size,
            });
        }
        if new.size < old.size {
            return Err(Inconsistency::RolledBack {
                old: old.size,
                new: new.size,
            });
        }
        if new.size == old.size || old.size == 0 {
            return if new.size != old.size || new.root == old.root {
                Ok(())
            } else {
                Err(Inconsistency::Forked { size: new.size })
            };
        }
        merkle::verify_consistency(old.size, new.size, &self.proof.hashes, &old.root, &new.root)
            .map_err(|e| Inconsistency::NotExtending {
                old: old.size,
                new: new.size,
                detail: e.to_string(),
            })
    }
}

/// Checks a peer's signed checkpoint (`note`) of the log `origin` with the peer's log verifier
/// key, then against `last`, the last checkpoint witnessed from that log (`None` the first time:
/// taken on first use). Returns the checkpoint to keep as the new last one.
pub fn witness(
    note_bytes: &[u8],
    log: &NoteVerifier,
    origin: &str,
    last: Option<&Checkpoint>,
    proof: Option<&CarriedProof>,
) -> Result<Checkpoint, Inconsistency> {
    let unverified = |detail: String| Inconsistency::Unverified {
        origin: origin.to_string(),
        detail,
    };
    let (cp, _) =
        note::verify_checkpoint(note_bytes, log, &[]).map_err(|e| unverified(e.to_string()))?;
    if cp.origin != origin {
        return Err(unverified(format!("its origin is {}", cp.origin)));
    }
    let Some(last) = last else {
        return Ok(cp);
    };
    if cp.size < last.size {
        return Err(Inconsistency::RolledBack {
            old: last.size,
            new: cp.size,
        });
    }
    if cp.size == last.size {
        return if cp.root == last.root {
            Ok(cp)
        } else {
            Err(Inconsistency::Forked { size: cp.size })
        };
    }
    // A log that was empty when last seen is consistent with anything (there is nothing to
    // compare); Rogatory logs are never empty once a checkpoint exists, so this does not occur.
    if last.size == 0 {
        return Ok(cp);
    }
    let p = match proof {
        Some(p) if p.old_size == last.size => p,
        _ => {
            return Err(Inconsistency::NoProof {
                old: last.size,
                new: cp.size,
            });
        }
    };
    merkle::verify_consistency(last.size, cp.size, &p.hashes, &last.root, &cp.root).map_err(
        |e| Inconsistency::NotExtending {
            old: last.size,
            new: cp.size,
            detail: e.to_string(),
        },
    )?;
    Ok(cp)
}

/// The witness key's name and verifier: an agency's card signing key under the name
/// `rogatory.<agency-id>`, signature type 0x04 (spec/PROTOCOL.md §6.4).
pub fn witness_verifier(
    key_name: &str,
    key: &crate::keys::VerifyingKey,
) -> Result<NoteVerifier, NoteError> {
    NoteVerifier::new(key_name, note::SIG_COSIGNATURE_V1, key)
}

/// A cosignature/v1 of a checkpoint body at `timestamp`, as the one signature line it adds to
/// the checkpoint's note (`— name base64…\n`): what a receipt's `cosignature` holds.
pub fn cosign(
    body: &str,
    key_name: &str,
    key: &SigningKey,
    timestamp: u64,
) -> Result<String, NoteError> {
    let mut n = Note::new(body)?;
    n.cosign(key_name, key, timestamp)?;
    let text = n.to_text();
    Ok(text[body.len() + 1..].to_string())
}

/// Checks a cosignature line (from [`cosign`]) over a checkpoint body with the witness's
/// verifier; returns its timestamp.
pub fn verify_cosignature(
    body: &str,
    line: &str,
    witness: &NoteVerifier,
) -> Result<u64, NoteError> {
    if line.matches('\n').count() != 1 || !line.ends_with('\n') {
        return Err(NoteError::Format(
            "a cosignature is one signature line".into(),
        ));
    }
    let n = Note::parse(format!("{body}\n{line}").as_bytes())?;
    let v = n.verify(std::slice::from_ref(witness))?;
    v.first()
        .and_then(|v| v.timestamp)
        .ok_or(NoteError::NoKnownSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::merkle::MemoryTree;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_seed(&[seed; 32])
    }

    fn signed(origin: &str, tree: &MemoryTree, k: &SigningKey) -> (Vec<u8>, Checkpoint) {
        let cp = Checkpoint {
            origin: origin.into(),
            size: tree.size(),
            root: tree.root(),
            extensions: vec![],
        };
        let mut n = Note::new(&cp.body()).unwrap();
        n.sign("rogatory.XA.POLICE", k).unwrap();
        (n.to_text().into_bytes(), cp)
    }

    #[test]
    fn a_consistency_text_reads_back_and_proves_only_growth() {
        let k = key(1);
        let origin = "rogatory.XA.POLICE/case/c1";
        let mut t = MemoryTree::new();
        for i in 0..5u8 {
            t.push(&[i]);
        }
        let (_, c5) = signed(origin, &t, &k);
        let mut t8 = t.clone();
        for i in 5..8u8 {
            t8.push(&[i]);
        }
        let (n8, c8) = signed(origin, &t8, &k);
        let text = ConsistencyText {
            proof: CarriedProof {
                old_size: 5,
                hashes: merkle::consistency_proof(&t8, 5, 8).unwrap().unwrap(),
            },
            checkpoint: n8,
        };
        let back = ConsistencyText::parse(&text.to_text()).unwrap();
        assert_eq!(back, text);
        back.verify(&c5, &c8).unwrap();
        // Of another size, backwards, or from another log: refused.
        let mut t6 = t.clone();
        t6.push(&[5]);
        let (_, c6) = signed(origin, &t6, &k);
        assert!(back.verify(&c6, &c8).is_err());
        assert!(back.verify(&c8, &c5).is_err());
        let (_, other) = signed("rogatory.XA.POLICE/case/c2", &t, &k);
        assert!(back.verify(&other, &c8).is_err());
        // Malformed texts.
        for bad in [
            "",
            "old 5\n",
            "old x\n\nbody",
            "old 5\nnot base64!\n\nbody",
            "old 5\nAAAA\n\nbody",
            "new 5\n\nbody",
        ] {
            assert!(ConsistencyText::parse(bad).is_err(), "{bad:?}");
        }
        // One hash (32 zero bytes) is fine; one more than the most is not.
        let many = format!("old 5\n{}=\n\nbody", "A".repeat(43));
        assert!(ConsistencyText::parse(&many).is_ok());
        let too_many = format!(
            "old 5\n{}\nbody",
            (0..=MAX_PROOF_HASHES)
                .map(|_| format!("{}=\n", "A".repeat(43)))
                .collect::<String>()
        );
        assert!(ConsistencyText::parse(&too_many).is_err());
    }

    #[test]
    fn a_log_that_grows_is_witnessed_and_one_that_forks_or_rolls_back_is_not() {
        let k = key(1);
        let v =
            NoteVerifier::new("rogatory.XA.POLICE", note::SIG_ED25519, k.verifying_key()).unwrap();
        let origin = "rogatory.XA.POLICE/case/c1";
        let mut t = MemoryTree::new();
        for i in 0..5u8 {
            t.push(&[i]);
        }
        let (n5, c5) = signed(origin, &t, &k);
        assert_eq!(witness(&n5, &v, origin, None, None).unwrap(), c5);
        let mut t8 = t.clone();
        for i in 5..8u8 {
            t8.push(&[i]);
        }
        let (n8, _) = signed(origin, &t8, &k);
        let proof = CarriedProof {
            old_size: 5,
            hashes: merkle::consistency_proof(&t8, 5, 8).unwrap().unwrap(),
        };
        let proof = CarriedProof::from_bytes(&proof.to_bytes()).unwrap();
        witness(&n8, &v, origin, Some(&c5), Some(&proof)).unwrap();
        // Without the proof, or with one from another size: refused.
        let e = witness(&n8, &v, origin, Some(&c5), None).unwrap_err();
        assert_eq!(e.kind(), "no-proof");
        // Rolled back.
        let mut t3 = MemoryTree::new();
        for i in 0..3u8 {
            t3.push(&[i]);
        }
        let (n3, _) = signed(origin, &t3, &k);
        assert_eq!(
            witness(&n3, &v, origin, Some(&c5), None).unwrap_err(),
            Inconsistency::RolledBack { old: 5, new: 3 }
        );
        // A fork: entry 2 rewritten, then grown to 8; the honest proof of the forked tree does
        // not lead from the witnessed root.
        let mut f = MemoryTree::new();
        for i in 0..8u8 {
            f.push(&[if i == 2 { 99 } else { i }]);
        }
        let (nf, _) = signed(origin, &f, &k);
        let fp = CarriedProof {
            old_size: 5,
            hashes: merkle::consistency_proof(&f, 5, 8).unwrap().unwrap(),
        };
        assert_eq!(
            witness(&nf, &v, origin, Some(&c5), Some(&fp))
                .unwrap_err()
                .kind(),
            "forked"
        );
        // Same size, another root: a split view.
        let mut s = MemoryTree::new();
        for i in 0..5u8 {
            s.push(&[i + 1]);
        }
        let (ns, _) = signed(origin, &s, &k);
        assert_eq!(
            witness(&ns, &v, origin, Some(&c5), None).unwrap_err(),
            Inconsistency::Forked { size: 5 }
        );
        // Another log, or another key: not verified.
        let (other, _) = signed("rogatory.XA.POLICE/case/c2", &t, &k);
        assert_eq!(
            witness(&other, &v, origin, None, None).unwrap_err().kind(),
            "unverified"
        );
        let (forged, _) = signed(origin, &t, &key(2));
        assert_eq!(
            witness(&forged, &v, origin, None, None).unwrap_err().kind(),
            "unverified"
        );
    }

    #[test]
    fn a_cosignature_verifies_with_the_witness_key_only() {
        let body = "rogatory.XA.POLICE/case/c1\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let w = key(7);
        let line = cosign(body, "rogatory.XB.POLICE", &w, 1_790_000_000).unwrap();
        assert!(line.starts_with("\u{2014} rogatory.XB.POLICE "));
        let v = witness_verifier("rogatory.XB.POLICE", w.verifying_key()).unwrap();
        assert_eq!(verify_cosignature(body, &line, &v).unwrap(), 1_790_000_000);
        let other = witness_verifier("rogatory.XB.POLICE", key(8).verifying_key()).unwrap();
        assert!(verify_cosignature(body, &line, &other).is_err());
        let changed = body.replace("\n5\n", "\n6\n");
        assert!(verify_cosignature(&changed, &line, &v).is_err());
        assert!(CarriedProof::from_bytes(&[0; 9]).is_err());
    }
}
