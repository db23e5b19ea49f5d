//! C2SP `signed-note` (Ed25519, type 0x01), `tlog-checkpoint` bodies, `tlog-cosignature`
//! (cosignature/v1, type 0x04), the `c2sp.org/tlog-proof@v1` text format and `tlog-policy`
//! files with their evaluation.
//!
//! Rogatory's departure (spec/PROTOCOL.md §6.2): a case log's origin is
//! `rogatory.<agency-id>/case/<case-id>` while its signing key's name is `rogatory.<agency-id>`,
//! so one verifier key covers all of an agency's case logs. Verifiers here accept a checkpoint
//! signed under key name `N` when its origin is `N` or starts with `N/case/`.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use super::merkle::Hash;
use crate::keys::{SigningKey, VerifyingKey};

/// Signature type: Ed25519 over the note text.
pub const SIG_ED25519: u8 = 0x01;
/// Signature type: timestamped Ed25519 cosignature (cosignature/v1).
pub const SIG_COSIGNATURE_V1: u8 = 0x04;
/// Largest note accepted.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// Most signature lines accepted in one note (C2SP asks for at least 16).
pub const MAX_SIGNATURES: usize = 64;
/// First line of a proof.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// What is wrong with a note, checkpoint, proof or policy.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoteError {
    /// Not a well-formed note, key, checkpoint, proof or policy.
    #[error("{0}")]
    Format(String),
    /// A signature by a known key does not verify: the whole note is refused.
    #[error("the signature of {0} does not verify")]
    BadSignature(String),
    /// No signature from a known key.
    #[error("no signature from a known key")]
    NoKnownSignature,
    /// The checkpoint's origin is not one the signing key may sign for.
    #[error("origin `{origin}` is not a log of key `{key}`")]
    Origin {
        /// The origin line.
        origin: String,
        /// The key name.
        key: String,
    },
    /// The policy's quorum is not met.
    #[error("the witness quorum of the policy is not met (cosigned by: {0})")]
    Quorum(String),
}

fn bad(m: impl Into<String>) -> NoteError {
    NoteError::Format(m.into())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// `SHA-256(name ‖ "\n" ‖ type ‖ public key)[:4]` as a big-endian u32.
pub fn key_id(name: &str, sig_type: u8, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([sig_type]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A verifier key: a name, a key id, a signature type and an Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    sig_type: u8,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// A verifier for `key` under `name` with signature type 0x01 or 0x04.
    pub fn new(name: &str, sig_type: u8, key: &VerifyingKey) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(bad(format!("`{name}` is not a valid key name")));
        }
        if sig_type != SIG_ED25519 && sig_type != SIG_COSIGNATURE_V1 {
            return Err(bad(format!(
                "signature type {sig_type:#04x} is not supported"
            )));
        }
        Ok(Self {
            name: name.to_string(),
            id: key_id(name, sig_type, key.as_bytes()),
            sig_type,
            key: key.clone(),
        })
    }

    /// Parses `name+hex(id)+base64(type ‖ key)`; the id must match.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("a verifier key is name+hex key id+base64 key"));
        };
        if id.len() != 8
            || !id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(bad(
                "the key id of a verifier key is 8 lower-case hex digits",
            ));
        }
        let raw = B64
            .decode(rest)
            .map_err(|_| bad("the key of a verifier key is not base64"))?;
        let (&t, pk) = raw.split_first().ok_or_else(|| bad("empty verifier key"))?;
        let pk: [u8; 32] = pk
            .try_into()
            .map_err(|_| bad("an Ed25519 verifier key holds 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&pk).map_err(|e| bad(e.to_string()))?;
        let v = Self::new(name, t, &key)?;
        if format!("{:08x}", v.id) != id {
            return Err(bad(format!(
                "the key id {id} does not match key name `{name}` and its key"
            )));
        }
        Ok(v)
    }

    /// The `name+id+key` text.
    pub fn vkey(&self) -> String {
        let mut typed = vec![self.sig_type];
        typed.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, B64.encode(typed))
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Signature type.
    pub fn sig_type(&self) -> u8 {
        self.sig_type
    }

    /// The public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Whether `s`, a signature line of a note whose text is `text`, is a valid signature by
    /// this key (of its type: Ed25519 over the text, or cosignature/v1 over the text and the
    /// line's timestamp). The line's name and key id are the caller's to match.
    pub fn verifies(&self, text: &str, s: &NoteSignature) -> bool {
        match self.sig_type {
            SIG_ED25519 => self.key.verify_strict(text.as_bytes(), &s.signature),
            _ => {
                s.signature.len() == 72 && {
                    let ts = u64::from_be_bytes(s.signature[..8].try_into().unwrap_or_default());
                    ts <= i64::MAX as u64
                        && self
                            .key
                            .verify_strict(cosigned_message(text, ts).as_bytes(), &s.signature[8..])
                }
            }
        }
    }
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id.
    pub id: u32,
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

/// A verified signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Key name.
    pub name: String,
    /// Key id.
    pub id: u32,
    /// Signature type.
    pub sig_type: u8,
    /// The cosignature's timestamp (type 0x04).
    pub timestamp: Option<u64>,
}

/// A signed note: text and signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// A note with no signatures yet. The text must end in a newline.
    pub fn new(text: &str) -> Result<Self, NoteError> {
        check_text(text)?;
        Ok(Self {
            text: text.to_string(),
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(bad(format!("a note is at most {MAX_NOTE_BYTES} bytes")));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| bad("a note is UTF-8"))?;
        if s.chars().any(|c| c < ' ' && c != '\n') {
            return Err(bad("a note contains no control characters but newlines"));
        }
        let split = s
            .rfind("\n\n")
            .ok_or_else(|| bad("a note's text is followed by a blank line and signatures"))?;
        let (text, sigs) = (&s[..split + 1], &s[split + 2..]);
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(bad(
                "a note ends with signature lines, each ending in a newline",
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or_else(|| bad("a signature line starts with an em dash and a space"))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| bad("a signature line is: — name signature"))?;
            if !valid_name(name) || b64.contains(' ') {
                return Err(bad(format!("bad signature line `{line}`")));
            }
            let raw = B64.decode(b64).map_err(|_| bad("a signature is base64"))?;
            if raw.len() < 5 {
                return Err(bad("a signature holds a key id and signature bytes"));
            }
            signatures.push(NoteSignature {
                name: name.to_string(),
                id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
                signature: raw[4..].to_vec(),
            });
        }
        if signatures.len() > MAX_SIGNATURES {
            return Err(bad(format!("at most {MAX_SIGNATURES} signatures")));
        }
        Ok(Self {
            text: text.to_string(),
            signatures,
        })
    }

    /// The text (ending in a newline).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// The encoded note.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            let mut raw = s.id.to_be_bytes().to_vec();
            raw.extend_from_slice(&s.signature);
            out.push_str(&format!("\u{2014} {} {}\n", s.name, B64.encode(raw)));
        }
        out
    }

    /// Adds an Ed25519 (type 0x01) signature under `name`.
    pub fn sign(&mut self, name: &str, key: &SigningKey) -> Result<(), NoteError> {
        let v = NoteVerifier::new(name, SIG_ED25519, key.verifying_key())?;
        self.signatures.push(NoteSignature {
            name: name.to_string(),
            id: v.id,
            signature: key.sign(self.text.as_bytes()).to_vec(),
        });
        Ok(())
    }

    /// Adds a cosignature/v1 (type 0x04) under `name` at `timestamp` (Unix seconds).
    pub fn cosign(
        &mut self,
        name: &str,
        key: &SigningKey,
        timestamp: u64,
    ) -> Result<(), NoteError> {
        if timestamp > i64::MAX as u64 {
            return Err(bad("a cosignature timestamp is below 2^63"));
        }
        let v = NoteVerifier::new(name, SIG_COSIGNATURE_V1, key.verifying_key())?;
        let mut sig = timestamp.to_be_bytes().to_vec();
        sig.extend_from_slice(&key.sign(cosigned_message(&self.text, timestamp).as_bytes()));
        self.signatures.push(NoteSignature {
            name: name.to_string(),
            id: v.id,
            signature: sig,
        });
        Ok(())
    }

    /// Verifies the note against known keys: signatures of unknown keys are ignored; a known
    /// key's signature that fails refuses the whole note; at least one must verify.
    pub fn verify(&self, known: &[NoteVerifier]) -> Result<Vec<Verified>, NoteError> {
        let mut out = Vec::new();
        for s in &self.signatures {
            let Some(v) = known.iter().find(|v| v.name == s.name && v.id == s.id) else {
                continue;
            };
            if !v.verifies(&self.text, s) {
                return Err(NoteError::BadSignature(s.name.clone()));
            }
            out.push(Verified {
                name: s.name.clone(),
                id: s.id,
                sig_type: v.sig_type,
                timestamp: (v.sig_type == SIG_COSIGNATURE_V1)
                    .then(|| u64::from_be_bytes(s.signature[..8].try_into().unwrap_or_default())),
            });
        }
        if out.is_empty() {
            return Err(NoteError::NoKnownSignature);
        }
        Ok(out)
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(bad("a note's text ends with a newline"));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(bad("a note contains no control characters but newlines"));
    }
    Ok(())
}

fn cosigned_message(text: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{text}")
}

/// A `tlog-checkpoint` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The origin line: the log's identity.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
    /// Extension lines (none are written by Rogatory).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: origin, size, base64 root, extensions, each ending in a newline.
    pub fn body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses a checkpoint body.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let lines: Vec<&str> = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("a checkpoint ends with a newline"))?
            .split('\n')
            .collect();
        if lines.len() < 3 {
            return Err(bad(
                "a checkpoint has an origin, a size and a root hash line",
            ));
        }
        let origin = lines[0];
        if origin.is_empty() {
            return Err(bad("the checkpoint origin is empty"));
        }
        let size_s = lines[1];
        if size_s.is_empty()
            || !size_s.bytes().all(|b| b.is_ascii_digit())
            || (size_s.len() > 1 && size_s.starts_with('0'))
        {
            return Err(bad(
                "the checkpoint size is a decimal number without leading zeros",
            ));
        }
        let size = size_s
            .parse()
            .map_err(|_| bad("the checkpoint size is too large"))?;
        let root: Hash = B64
            .decode(lines[2])
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("the checkpoint root is the base64 of 32 bytes"))?;
        let extensions: Vec<String> = lines[3..].iter().map(|s| s.to_string()).collect();
        if extensions.iter().any(|e| e.is_empty()) {
            return Err(bad("checkpoint extension lines are not empty"));
        }
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }
}

/// Whether a key named `key_name` may sign checkpoints of `origin` (see the module doc).
pub fn origin_belongs_to(origin: &str, key_name: &str) -> bool {
    origin == key_name
        || origin
            .strip_prefix(key_name)
            .is_some_and(|rest| rest.starts_with("/case/"))
}

/// Verifies a signed checkpoint against a log's verifier key; returns the checkpoint and every
/// verified signature (other known keys, e.g. cosigners, may be given too).
pub fn verify_checkpoint(
    note: &[u8],
    log: &NoteVerifier,
    others: &[NoteVerifier],
) -> Result<(Checkpoint, Vec<Verified>), NoteError> {
    if log.sig_type() != SIG_ED25519 {
        return Err(bad("a log's checkpoint key is an Ed25519 (type 0x01) key"));
    }
    let n = Note::parse(note)?;
    let cp = Checkpoint::parse(n.text())?;
    if !origin_belongs_to(&cp.origin, log.name()) {
        return Err(NoteError::Origin {
            origin: cp.origin,
            key: log.name().to_string(),
        });
    }
    let mut known = vec![log.clone()];
    known.extend_from_slice(others);
    let verified = n.verify(&known)?;
    if !verified
        .iter()
        .any(|v| v.name == log.name && v.id == log.id)
    {
        return Err(NoteError::NoKnownSignature);
    }
    Ok((cp, verified))
}

/// A `c2sp.org/tlog-proof@v1` proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque extra data (Rogatory puts the audit entry here, so the proof is self-contained).
    pub extra: Option<Vec<u8>>,
    /// Leaf index.
    pub index: u64,
    /// Inclusion proof hashes, sibling first.
    pub proof: Vec<Hash>,
    /// The signed checkpoint, verbatim.
    pub checkpoint: Vec<u8>,
}

impl TlogProof {
    /// The text form.
    pub fn to_text(&self) -> String {
        let mut s = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(e) = &self.extra {
            s.push_str(&format!("extra {}\n", B64.encode(e)));
        }
        s.push_str(&format!("index {}\n", self.index));
        for h in &self.proof {
            s.push_str(&B64.encode(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&String::from_utf8_lossy(&self.checkpoint));
        s
    }

    /// Parses the text form (at most [`MAX_PROOF_BYTES`]; at most 64 hashes, counted as they
    /// are read).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        if text.len() > MAX_PROOF_BYTES {
            return Err(bad(format!(
                "a proof is at most {MAX_PROOF_BYTES} bytes, not {}",
                text.len()
            )));
        }
        let rest = text
            .strip_prefix(TLOG_PROOF_HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or_else(|| bad(format!("a proof starts with `{TLOG_PROOF_HEADER}`")))?;
        let (head, checkpoint) = rest.split_once("\n\n").ok_or_else(|| {
            bad("the proof hashes are followed by a blank line and the checkpoint")
        })?;
        let mut lines = head.split('\n').peekable();
        let extra = match lines.peek() {
            Some(l) if l.starts_with("extra ") => {
                let e = B64
                    .decode(&l["extra ".len()..])
                    .map_err(|_| bad("the extra data is base64"))?;
                lines.next();
                Some(e)
            }
            _ => None,
        };
        let index_s = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .ok_or_else(|| bad("the proof names its index: `index N`"))?;
        if index_s.is_empty()
            || !index_s.bytes().all(|b| b.is_ascii_digit())
            || (index_s.len() > 1 && index_s.starts_with('0'))
        {
            return Err(bad("the index is a decimal number without leading zeros"));
        }
        let index = index_s.parse().map_err(|_| bad("the index is too large"))?;
        let mut proof = Vec::new();
        for l in lines {
            if proof.len() == 64 {
                return Err(bad("an inclusion proof has at most 64 hashes"));
            }
            proof.push(
                B64.decode(l)
                    .ok()
                    .and_then(|h| h.try_into().ok())
                    .ok_or_else(|| bad("each proof line is the base64 of a 32-byte hash"))?,
            );
        }
        Ok(Self {
            extra,
            index,
            proof,
            checkpoint: checkpoint.as_bytes().to_vec(),
        })
    }
}

/// Largest proof text: a signed note (64 KiB), 64 hashes and the base64 of an audit entry.
pub const MAX_PROOF_BYTES: usize = 80 * 1024;

/// A `tlog-policy`: known logs, known witnesses, groups, and the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Log verifier keys (type 0x01).
    pub logs: Vec<NoteVerifier>,
    /// Witnesses by name (type 0x04 keys).
    pub witnesses: BTreeMap<String, NoteVerifier>,
    /// Groups by name: threshold and members.
    pub groups: BTreeMap<String, (usize, Vec<String>)>,
    /// The quorum: `none`, a witness or a group.
    pub quorum: String,
}

impl Policy {
    /// Parses a policy file.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        if text
            .bytes()
            .any(|b| b < 0x20 && b != b'\t' && b != b'\n' || b == 0x7f)
        {
            return Err(bad(
                "a policy contains no control characters but tab and newline",
            ));
        }
        let mut logs: Vec<NoteVerifier> = Vec::new();
        let mut witnesses = BTreeMap::new();
        let mut groups: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
        let mut quorum = None;
        let mut log_keys = BTreeSet::new();
        let mut witness_keys = BTreeSet::new();
        let mut members_used: BTreeSet<String> = BTreeSet::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_matches([' ', '\t']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |m: &str| bad(format!("policy line {}: {m}", n + 1));
            let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            let defined = |name: &str,
                           w: &BTreeMap<String, NoteVerifier>,
                           g: &BTreeMap<String, (usize, Vec<String>)>| {
                w.contains_key(name) || g.contains_key(name)
            };
            match words[0] {
                "log" if (2..=3).contains(&words.len()) => {
                    let v = NoteVerifier::parse(words[1]).map_err(|e| err(&e.to_string()))?;
                    if v.sig_type() != SIG_ED25519 || !log_keys.insert(*v.key().as_bytes()) {
                        return Err(err("a log key is a distinct Ed25519 (type 0x01) key"));
                    }
                    logs.push(v);
                }
                "witness" if (3..=4).contains(&words.len()) => {
                    let v = NoteVerifier::parse(words[2]).map_err(|e| err(&e.to_string()))?;
                    if v.sig_type() != SIG_COSIGNATURE_V1
                        || !witness_keys.insert(*v.key().as_bytes())
                    {
                        return Err(err(
                            "a witness key is a distinct cosignature (type 0x04) key",
                        ));
                    }
                    if words[1] == "none" || defined(words[1], &witnesses, &groups) {
                        return Err(err("the name is already defined"));
                    }
                    witnesses.insert(words[1].to_string(), v);
                }
                "group" if words.len() >= 4 => {
                    let name = words[1];
                    let members: Vec<String> = words[3..].iter().map(|s| s.to_string()).collect();
                    if name == "none" || defined(name, &witnesses, &groups) {
                        return Err(err("the name is already defined"));
                    }
                    // Each name may be a member at most once in the whole policy, which also
                    // keeps evaluation linear.
                    if members.iter().any(|m| !defined(m, &witnesses, &groups))
                        || members.iter().any(|m| !members_used.insert(m.clone()))
                    {
                        return Err(err(
                            "group members are earlier-defined names, each a member at most once in the policy",
                        ));
                    }
                    let k = match words[2] {
                        "all" => members.len(),
                        "any" => 1,
                        t => t
                            .parse::<usize>()
                            .ok()
                            .filter(|k| (1..=members.len()).contains(k) && !t.starts_with('0'))
                            .ok_or_else(|| err("the threshold is all, any, or 1 ≤ k ≤ n"))?,
                    };
                    groups.insert(name.to_string(), (k, members));
                }
                "quorum" if words.len() == 2 => {
                    if quorum.is_some() {
                        return Err(err("a policy has exactly one quorum line"));
                    }
                    if words[1] != "none" && !defined(words[1], &witnesses, &groups) {
                        return Err(err("the quorum names an earlier-defined witness or group"));
                    }
                    quorum = Some(words[1].to_string());
                }
                _ => return Err(err("expected log, witness, group or quorum")),
            }
        }
        let quorum = quorum.ok_or_else(|| bad("a policy has exactly one quorum line"))?;
        Ok(Self {
            logs,
            witnesses,
            groups,
            quorum,
        })
    }

    /// Verifies a signed checkpoint under this policy: signed by one of the logs (for an origin
    /// that log may sign) and cosigned by the quorum. Returns the checkpoint and the names of the
    /// witnesses whose cosignatures verified.
    pub fn verify(&self, note: &[u8]) -> Result<(Checkpoint, Vec<String>), NoteError> {
        let n = Note::parse(note)?;
        let cp = Checkpoint::parse(n.text())?;
        let logs: Vec<&NoteVerifier> = self
            .logs
            .iter()
            .filter(|l| origin_belongs_to(&cp.origin, l.name()))
            .collect();
        if logs.is_empty() {
            return Err(NoteError::Origin {
                origin: cp.origin.clone(),
                key: self
                    .logs
                    .iter()
                    .map(|l| l.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut known: Vec<NoteVerifier> = logs.iter().map(|l| (*l).clone()).collect();
        known.extend(self.witnesses.values().cloned());
        let verified = n.verify(&known)?;
        if !verified
            .iter()
            .any(|v| logs.iter().any(|l| v.name == l.name() && v.id == l.id()))
        {
            return Err(NoteError::NoKnownSignature);
        }
        let cosigned: BTreeSet<String> = self
            .witnesses
            .iter()
            .filter(|(_, w)| {
                verified
                    .iter()
                    .any(|v| v.name == w.name() && v.id == w.id())
            })
            .map(|(name, _)| name.clone())
            .collect();
        if !self.satisfied(&self.quorum, &cosigned) {
            return Err(NoteError::Quorum(
                cosigned.iter().cloned().collect::<Vec<_>>().join(", "),
            ));
        }
        Ok((cp, cosigned.into_iter().collect()))
    }

    /// Whether the witnesses named in `cosigned` (policy names) make the quorum.
    pub fn quorum_met(&self, cosigned: &BTreeSet<String>) -> bool {
        self.satisfied(&self.quorum, cosigned)
    }

    fn satisfied(&self, name: &str, cosigned: &BTreeSet<String>) -> bool {
        if name == "none" {
            return true;
        }
        if self.witnesses.contains_key(name) {
            return cosigned.contains(name);
        }
        match self.groups.get(name) {
            Some((k, members)) => {
                members
                    .iter()
                    .filter(|m| self.satisfied(m, cosigned))
                    .count()
                    >= *k
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refusals() {
        let log = SigningKey::from_seed(&[1; 32]);
        let w1 = SigningKey::from_seed(&[2; 32]);
        let w2 = SigningKey::from_seed(&[3; 32]);
        let cp = Checkpoint {
            origin: "rogatory.XA.POLICE/case/01a22522-d4f2-73cd-be4f-be9050503898".into(),
            size: 7,
            root: [9; 32],
            extensions: vec![],
        };
        let mut n = Note::new(&cp.body()).unwrap();
        n.sign("rogatory.XA.POLICE", &log).unwrap();
        n.cosign("w1.example", &w1, 1_790_000_000).unwrap();
        let text = n.to_text();
        let back = Note::parse(text.as_bytes()).unwrap();
        assert_eq!(back, n);
        let lv = NoteVerifier::new("rogatory.XA.POLICE", SIG_ED25519, log.verifying_key()).unwrap();
        assert_eq!(NoteVerifier::parse(&lv.vkey()).unwrap(), lv);
        let wv1 = NoteVerifier::new("w1.example", SIG_COSIGNATURE_V1, w1.verifying_key()).unwrap();
        let wv2 = NoteVerifier::new("w2.example", SIG_COSIGNATURE_V1, w2.verifying_key()).unwrap();
        let (got, sigs) =
            verify_checkpoint(text.as_bytes(), &lv, std::slice::from_ref(&wv1)).unwrap();
        assert_eq!(got, cp);
        assert_eq!(sigs[1].timestamp, Some(1_790_000_000));

        let policy = |q: &str| {
            let group = match q {
                "G" => "group G any W1 W2\n",
                "B" => "group B all W1 W2\n",
                _ => "",
            };
            Policy::parse(&format!(
                "# test\nlog {}\nwitness W1 {}\nwitness W2 {}\n{group}quorum {q}\n",
                lv.vkey(),
                wv1.vkey(),
                wv2.vkey()
            ))
            .unwrap()
        };
        assert_eq!(
            policy("G").verify(text.as_bytes()).unwrap().1,
            vec!["W1".to_string()]
        );
        assert!(matches!(
            policy("B").verify(text.as_bytes()),
            Err(NoteError::Quorum(_))
        ));
        assert!(policy("none").verify(text.as_bytes()).is_ok());

        // Another origin than the key's own logs.
        let mut other = Note::new(
            &Checkpoint {
                origin: "rogatory.XB.POLICE/case/x".into(),
                ..cp.clone()
            }
            .body(),
        )
        .unwrap();
        other.sign("rogatory.XA.POLICE", &log).unwrap();
        assert!(matches!(
            verify_checkpoint(other.to_text().as_bytes(), &lv, &[]),
            Err(NoteError::Origin { .. })
        ));
        // A changed size.
        let forged = text.replacen("\n7\n", "\n8\n", 1);
        assert!(matches!(
            verify_checkpoint(forged.as_bytes(), &lv, &[]),
            Err(NoteError::BadSignature(_))
        ));
        // Bad checkpoints.
        for body in [
            "o\n07\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            "o\n7\n",
            "o\n7\nAAAA\n",
            "o\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            assert!(Checkpoint::parse(body).is_err(), "{body:?}");
        }
        // Proof text round trip.
        let p = TlogProof {
            extra: Some(b"entry".to_vec()),
            index: 3,
            proof: vec![[1; 32], [2; 32]],
            checkpoint: text.into_bytes(),
        };
        assert_eq!(TlogProof::parse(&p.to_text()).unwrap(), p);
    }

    #[test]
    fn policy_rules_of_c2sp() {
        let a = SigningKey::from_seed(&[4; 32]);
        let b = SigningKey::from_seed(&[5; 32]);
        let a_old = SigningKey::from_seed(&[6; 32]);
        let log_a = NoteVerifier::new("rogatory.XA.A", SIG_ED25519, a.verifying_key()).unwrap();
        let log_a_old =
            NoteVerifier::new("rogatory.XA.A", SIG_ED25519, a_old.verifying_key()).unwrap();
        let wit_a =
            NoteVerifier::new("rogatory.XA.A", SIG_COSIGNATURE_V1, a.verifying_key()).unwrap();
        let wit_b =
            NoteVerifier::new("rogatory.XB.B", SIG_COSIGNATURE_V1, b.verifying_key()).unwrap();
        // The same agency key as a log and as a witness: allowed (different roles).
        let p = Policy::parse(&format!(
            "log {}\nlog {}\nwitness A {}\nwitness B {}\nquorum B\n",
            log_a.vkey(),
            log_a_old.vkey(),
            wit_a.vkey(),
            wit_b.vkey()
        ))
        .unwrap();
        // A checkpoint signed by the second log of the same name, cosigned by B, verifies.
        let cp = Checkpoint {
            origin: "rogatory.XA.A/case/x".into(),
            size: 1,
            root: [1; 32],
            extensions: vec![],
        };
        let mut n = Note::new(&cp.body()).unwrap();
        n.sign("rogatory.XA.A", &a_old).unwrap();
        n.cosign("rogatory.XB.B", &b, 1).unwrap();
        assert_eq!(
            p.verify(n.to_text().as_bytes()).unwrap().1,
            vec!["B".to_string()]
        );
        // A name may be a group member only once in the whole policy.
        let reuse = format!(
            "witness A {}\nwitness B {}\ngroup G1 any A B\ngroup G2 any A\nquorum G2\n",
            wit_a.vkey(),
            wit_b.vkey()
        );
        assert!(Policy::parse(&reuse).is_err());
        // Duplicate keys within one role are refused.
        assert!(
            Policy::parse(&format!(
                "log {}\nlog {}\nquorum none\n",
                log_a.vkey(),
                log_a.vkey()
            ))
            .is_err()
        );
        // Threshold bounds, unknown names, a second quorum.
        assert!(
            Policy::parse(&format!(
                "witness A {}\ngroup G 2 A\nquorum G\n",
                wit_a.vkey()
            ))
            .is_err()
        );
        assert!(Policy::parse("quorum nobody\n").is_err());
        assert!(Policy::parse("quorum none\nquorum none\n").is_err());
        // A cosignature key is not accepted as a log key.
        assert!(verify_checkpoint(n.to_text().as_bytes(), &wit_a, &[]).is_err());
    }
}
