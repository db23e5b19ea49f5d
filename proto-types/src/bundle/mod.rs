//! Case export bundles and their offline verification (spec/BUNDLE.md).
//!
//! A bundle is what one agency's node holds about one case, in a form an auditor can check
//! with no node, no network and no agency secret: the agency's audit log of the case (every
//! entry), its signed checkpoints (those it gave its partners, with their cosignatures, and the
//! latest), the envelopes it sent and received (still encrypted) with their receipts, the
//! partners' checkpoints it witnessed, inclusion proofs (`c2sp.org/tlog-proof@v1`) of the
//! entries that record envelopes, the agency cards involved and a `tlog-policy`.
//!
//! [`verify`] checks one bundle or several bundles of the same case (typically both sides)
//! and returns a [`Verdict`]: what was proved, every finding (which check failed, on which
//! entry or envelope), and the merged timeline.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

mod read;
mod report;
pub use report::esc;
pub use report::{report_html, report_text};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::audit::entry::{AuditEntry, AuditEvent, case_origin, log_key_name};
use crate::audit::merkle::{self, Hash, leaf_hash, verify_inclusion};
use crate::audit::note::{
    Checkpoint, Note, NoteError, NoteSignature, NoteVerifier, Policy, SIG_COSIGNATURE_V1,
    SIG_ED25519, TlogProof,
};
use crate::card::AgencyCard;
use crate::envelope::{self, EnvelopeInfo, Limits};
use crate::ids::{AgencyId, CaseId, EnvelopeId, Sha256Digest};
use crate::keyhist::KeyHistory;
use crate::receipt::{ReceiptEvent, verify_receipt};

/// The format name and version a bundle states.
pub const FORMAT: &str = "rogatory-bundle/1";
/// Largest disclosure read: a 32-byte key in a `COSE_Encrypt` is under 200 bytes.
const MAX_DISCLOSURE_BYTES: usize = 512;
/// Largest bundle read: 4 GiB.
pub const MAX_BUNDLE_BYTES: u64 = 4 << 30;

/// Which way an envelope went, seen from the exporting agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Sealed by the exporter; the receipt is the addressee's.
    Sent,
    /// Received by the exporter; the receipt is the one it issued.
    Received,
}

/// One envelope, exactly as sent or received, with its receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeRecord {
    /// Which way it went.
    pub direction: Direction,
    /// The envelope bytes (still encrypted).
    pub envelope: ByteBuf,
    /// The signed receipt (for a sent envelope, once one came back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ByteBuf>,
}

/// A case export bundle (spec/BUNDLE.md §2). The fields are in the order they are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// [`FORMAT`].
    pub format: String,
    /// The case.
    pub case_id: CaseId,
    /// The agency whose node exported it.
    pub exporter: AgencyId,
    /// Unix seconds at export.
    pub exported_at: u64,
    /// The agency cards involved: the exporter's and its partners' in the case.
    pub cards: Vec<ByteBuf>,
    /// A `tlog-policy`: the exporter's log key, its partners as witnesses, quorum any one.
    pub policy: String,
    /// Every entry of the exporter's audit log of the case, in order (CBOR).
    pub entries: Vec<ByteBuf>,
    /// Signed checkpoints of that log: each one given to a partner in an envelope, with the
    /// partners' cosignature lines added, and the latest.
    pub checkpoints: Vec<ByteBuf>,
    /// The envelopes of the case sent and received by the exporter, with their receipts.
    pub envelopes: Vec<EnvelopeRecord>,
    /// Partners' signed checkpoints of their logs of the case, as the exporter witnessed them
    /// (in envelopes and receipts).
    pub witnessed: Vec<ByteBuf>,
    /// `c2sp.org/tlog-proof@v1` proofs that each entry recording an envelope is in the log at
    /// its latest checkpoint (the entry itself as the extra data).
    pub proofs: Vec<String>,
    /// The card of the auditor the content is disclosed to (`case export --for-auditor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auditor: Option<ByteBuf>,
    /// The content keys of the envelopes, each encrypted for the auditor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disclosures: Vec<Disclosure>,
}

/// One envelope's content key, encrypted for the auditor ([`envelope::disclose`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disclosure {
    /// The envelope (its id).
    pub envelope: EnvelopeId,
    /// Its content key in a `COSE_Encrypt` for the auditor's encryption key.
    pub key: ByteBuf,
}

/// Why a bundle could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Reading failed.
    #[error("cannot read the bundle: {0}")]
    Io(#[from] std::io::Error),
    /// Not a bundle of this format.
    #[error("not a Rogatory case bundle: {0}")]
    Format(String),
}

impl Bundle {
    /// Writes the bundle (CBOR).
    pub fn write_to(&self, w: impl Write) -> Result<(), BundleError> {
        ciborium::into_writer(self, w).map_err(|e| BundleError::Format(e.to_string()))
    }

    /// Reads a bundle (at most [`MAX_BUNDLE_BYTES`]); refuses another format.
    pub fn read_from(r: impl Read) -> Result<Self, BundleError> {
        let r = std::io::BufReader::new(r.take(MAX_BUNDLE_BYTES));
        let b: Bundle = ciborium::de::from_reader_with_recursion_limit(r, 32)
            .map_err(|e| BundleError::Format(e.to_string()))?;
        if b.format != FORMAT {
            return Err(BundleError::Format(format!(
                "format `{}`, this verifier reads `{FORMAT}`",
                b.format
            )));
        }
        Ok(b)
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check, by name (spec/BUNDLE.md §4).
    pub check: &'static str,
    /// Where: which bundle and which entry, envelope, checkpoint or proof.
    pub at: String,
    /// What is wrong.
    pub problem: String,
}

/// What one bundle holds, once read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleSummary {
    /// The exporter.
    pub exporter: String,
    /// When it was exported (Unix seconds).
    pub exported_at: u64,
    /// Log entries.
    pub entries: usize,
    /// Envelopes sent and received.
    pub sent: usize,
    /// Envelopes received.
    pub received: usize,
    /// Checkpoints of the exporter's log, and how many of them partners cosigned.
    pub checkpoints: usize,
    /// Of which cosigned by partners under the policy.
    pub cosigned: usize,
    /// Partners' checkpoints witnessed.
    pub witnessed: usize,
    /// Inclusion proofs.
    pub proofs: usize,
    /// Each card's agency and fingerprint (to compare with fingerprints obtained independently).
    pub cards: Vec<(String, String)>,
    /// The auditor the content is disclosed to, and its card's fingerprint.
    pub auditor: Option<(String, String)>,
    /// Envelopes whose content is disclosed to that auditor.
    pub disclosed: usize,
}

/// A message disclosed to the auditor and read with its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisclosedMessage {
    /// The envelope id, hex.
    pub envelope: String,
    /// The sender (whose signature over the content verified).
    pub from: String,
    /// The addressee.
    pub to: String,
    /// Unix seconds at sealing.
    pub sent_at: u64,
    /// Its place in the sender's chain of the case to the addressee.
    pub sequence: u64,
    /// The message type.
    pub message_type: String,
    /// The message, as JSON (the form of spec/examples).
    pub content: serde_json::Value,
    /// The agency's officials who signed it in their own names (spec/PEOPLE.md §5), in the
    /// order they signed, each checked against the sender's key history.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signed_by: Vec<DisclosedOfficial>,
}

/// An official whose signature over a disclosed message verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisclosedOfficial {
    /// `issuing-authority`, `validating-authority` or `liaison-officer`.
    pub role: String,
    /// The name the agency certified.
    pub name: String,
    /// The official's key id, hex.
    pub key: String,
    /// Set if the certificate was revoked after the message was sealed: the reason and the
    /// effective time, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_since: Option<String>,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Unix seconds.
    pub time: u64,
    /// The agency whose log records it.
    pub agency: String,
    /// Its index in that log.
    pub seq: u64,
    /// The event (audit entry event name).
    pub event: String,
    /// The other agency, if any.
    pub peer: Option<String>,
    /// The envelope concerned, hex.
    pub envelope: Option<EnvelopeId>,
    /// A local user, when one acted.
    pub user: Option<String>,
    /// A state transition, `from → to`.
    pub transition: Option<String>,
}

/// What a receipt said about an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptLine {
    /// `accepted` or `rejected`.
    pub event: String,
    /// The reason code's name, when rejected.
    pub reason: Option<String>,
    /// Unix seconds when the addressee committed (or refused) the envelope, as it signed.
    pub received_at: u64,
}

/// One envelope of the case, as the bundles show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvelopeLine {
    /// The envelope id, hex.
    pub id: String,
    /// The sender.
    pub from: String,
    /// The addressee.
    pub to: String,
    /// Its place in the sender's chain to the addressee.
    pub sequence: u64,
    /// Unix seconds at sealing, as the sender signed.
    pub sent_at: u64,
    /// The id (hex) of the sender's key that signed it.
    pub key: String,
    /// That key in the sender's key history: `current`, `replaced` (by a later card) or
    /// `revoked (REASON, effective TIME)`, and whether the envelope came before that.
    pub key_state: String,
    /// The addressee's signed receipt, when a bundle holds one.
    pub receipt: Option<ReceiptLine>,
    /// The agencies whose bundles hold it.
    pub held_by: Vec<String>,
}

/// The outcome of verifying one or more bundles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The case.
    pub case_id: String,
    /// Each bundle.
    pub bundles: Vec<BundleSummary>,
    /// What the checks that held establish, in words.
    pub proved: Vec<String>,
    /// Every failed check; empty when everything holds.
    pub findings: Vec<Finding>,
    /// Every envelope of the case that a bundle holds, in the order they were sealed.
    pub envelopes: Vec<EnvelopeLine>,
    /// The messages disclosed to the auditor and read with its key (`--key`), in the order
    /// they were sealed; empty without a key.
    pub content: Vec<DisclosedMessage>,
    /// Both logs' entries merged in time order (the first [`MAX_TIMELINE_PER_BUNDLE`] of each
    /// log).
    pub timeline: Vec<Event>,
    /// The entries of all the logs, of which `timeline` shows at most
    /// [`MAX_TIMELINE_PER_BUNDLE`] per log.
    pub timeline_entries: u64,
}

impl Verdict {
    /// Whether every check held.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Failures of one check kept in the verdict; beyond them they are counted (the verdict says
/// how many more), so that a bundle of a million bad items costs no more than a few.
pub const MAX_FINDINGS_PER_CHECK: usize = 1000;
/// Lines of the timeline kept per bundle (the verdict says how many entries there are).
pub const MAX_TIMELINE_PER_BUNDLE: usize = 100_000;
/// Entries decoded at once (on every core).
const ENTRY_BATCH: usize = 4096;
/// Envelopes checked at once (on every core), and the most bytes of them held for it.
const ENVELOPE_BATCH: usize = 64;
const ENVELOPE_BATCH_BYTES: usize = 64 << 20;
/// Signed notes verified at once.
const NOTE_BATCH: usize = 256;
/// Proofs checked at once.
const PROOF_BATCH: usize = 256;

/// The outer view of an envelope in a bundle, verified against its sender's card: what the
/// checks after reading it need, and no more (no checkpoint, proof or receipt text).
struct SeenEnvelope {
    info: EnvelopeInfo,
    direction: Direction,
    receipt: Option<crate::receipt::Receipt>,
    /// SHA-256 of the receipt's bytes (what logs record and the other side must hold).
    receipt_hash: Option<Sha256Digest>,
    /// An `envelope-sent` or `envelope-received` entry records it (known after the entries).
    recorded: bool,
}

/// A checkpoint of the exporter's log, signed by it for this case: its root is checked against
/// the entries once they are read.
struct OwnCheckpoint {
    size: u64,
    root: Hash,
    at: String,
}

/// What the first reading of a bundle keeps for the second, and for the cross-checks.
struct Scanned {
    source: read::Source,
    /// SHA-256 of the file as first read: the second reading must see the same bytes.
    file: [u8; 32],
    exporter: AgencyId,
    case_id: CaseId,
    whose: String,
    entries: u64,
    /// The agencies' current cards.
    cards: BTreeMap<AgencyId, AgencyCard>,
    /// Their key histories (a card without one is its own).
    histories: BTreeMap<AgencyId, KeyHistory>,
    /// False when the bundle holds no usable card of its exporter: nothing more is checked.
    usable: bool,
    summary: BundleSummary,
    /// Failed checks of this bundle.
    failures: usize,
    own: Vec<OwnCheckpoint>,
    /// The latest size the exporter signed.
    latest: u64,
    parsed_own: usize,
    envelopes: BTreeMap<EnvelopeId, SeenEnvelope>,
    /// Partners' checkpoints seen: (partner, size, root, where).
    witnessed: Vec<(AgencyId, u64, Hash, String)>,
    /// Proofs that verified, by the index of the entry they prove: that entry's leaf hash, and
    /// the proof's place.
    proofs: BTreeMap<u64, Vec<Hash>>,
    /// Disclosed keys to open with the auditor's key (in the second reading, which meets the
    /// envelopes again).
    to_open: HashMap<EnvelopeId, Vec<u8>>,
    auditor_card: Option<AgencyCard>,
    /// The content keys disclosed to the auditor and opened with its key.
    disclosed: BTreeMap<EnvelopeId, [u8; 32]>,
    /// The messages they opened.
    content: Vec<DisclosedMessage>,
    /// Roots of the exporter's log at the sizes some check needs (the second reading).
    roots: BTreeMap<u64, Hash>,
    sequence_ok: bool,
    roots_ok: bool,
    /// Disclosures that failed a check (the auditor's claim is made only when none did).
    disclosure_failures: usize,
    /// The auditor's key given is the one the content is disclosed to.
    reader_ok: bool,
}

impl Scanned {
    /// The root of the exporter's log at `size`, if it holds that many entries.
    fn root_at(&self, size: u64) -> Option<Hash> {
        self.roots.get(&size).copied()
    }
}

/// An entry, decoded: what the checks need of it.
struct Parsed {
    seq: u64,
    /// The case it names, if not the bundle's.
    other_case: Option<CaseId>,
    /// Its writer, if not the exporter.
    other_actor: Option<AgencyId>,
    /// For an entry recording an envelope or its receipt: which.
    envelope: Option<Recorded>,
    /// Its line of the timeline.
    event: Event,
}

/// An entry that records an envelope (`envelope-sent`, `envelope-received`) or its receipt
/// (`receipt-received`).
struct Recorded {
    event: AuditEvent,
    envelope: EnvelopeId,
    receipt_hash: Option<Sha256Digest>,
}

/// A chain position: sequence, the previous envelope named, the envelope.
type Link = (u64, Option<EnvelopeId>, EnvelopeId);

/// A proof as read: its place, the proof (or why not), its checkpoint's note key.
type ProofRead = (u64, Result<TlogProof, String>, Option<[u8; 32]>);

/// The optional fields as read: the auditor's card, and the disclosures (envelope, key).
type Optional = (Option<Vec<u8>>, Vec<(EnvelopeId, read::Blob)>);

struct Ctx {
    findings: Vec<Finding>,
    proved: Vec<String>,
    /// Failures so far (kept or not).
    failures: usize,
    /// Findings kept per check, and those counted only.
    kept: HashMap<&'static str, usize>,
    dropped: BTreeMap<&'static str, usize>,
}

impl Ctx {
    /// A failure whose words are built only if it is kept (the hot path of a long log).
    fn fail_with(&mut self, check: &'static str, words: impl FnOnce() -> (String, String)) {
        if self.kept.get(check).copied().unwrap_or(0) < MAX_FINDINGS_PER_CHECK {
            let (at, problem) = words();
            self.fail(check, at, problem);
        } else {
            self.failures += 1;
            *self.dropped.entry(check).or_default() += 1;
        }
    }

    fn fail(&mut self, check: &'static str, at: impl Into<String>, problem: impl Into<String>) {
        self.failures += 1;
        let kept = self.kept.entry(check).or_default();
        if *kept < MAX_FINDINGS_PER_CHECK {
            *kept += 1;
            self.findings.push(Finding {
                check,
                at: at.into(),
                problem: problem.into(),
            });
        } else {
            *self.dropped.entry(check).or_default() += 1;
        }
    }
}

fn short(id: &EnvelopeId) -> String {
    id.to_hex()[..16].to_string()
}

fn event_name(e: AuditEvent) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The key of `keys` (one agency's, over time) that signed a note: the one whose name and id a
/// signature line bears, else the first (the current one, so that the failure names it).
fn pick_key<'k>(keys: &'k [NoteVerifier], note: &[u8]) -> &'k NoteVerifier {
    let ids: Vec<(String, u32)> = Note::parse(note)
        .map(|n| {
            n.signatures()
                .iter()
                .map(|s| (s.name.clone(), s.id))
                .collect()
        })
        .unwrap_or_default();
    keys.iter()
        .find(|k| {
            ids.iter()
                .any(|(name, id)| name == k.name() && *id == k.id())
        })
        .or_else(|| keys.first())
        .unwrap_or_else(|| unreachable!("an agency has at least one key"))
}

/// Parses a signed note's checkpoint without verifying it.
fn checkpoint_of(note: &[u8]) -> Option<Checkpoint> {
    Note::parse(note)
        .ok()
        .and_then(|n| Checkpoint::parse(n.text()).ok())
}

/// Verifies bundles of one case: each on its own, then, for every pair of bundles from partner
/// agencies, that what one sent the other holds, with the same receipt, and that each witnessed
/// only checkpoints of the other's log that its entries give. `policy` replaces the bundles' own
/// policies (an auditor's, obtained independently); `cards` are cards the auditor trusts, which
/// replace those the bundles carry for the same agencies.
pub fn verify(bundles: &[Bundle], policy: Option<&Policy>, cards: &[AgencyCard]) -> Verdict {
    verify_as(bundles, policy, cards, None)
}

/// [`verify`] by an auditor holding its keys: the content disclosed to it (`case export
/// --for-auditor`) is also opened, each message checked against its sender's signature and its
/// envelope, and returned in [`Verdict::content`].
pub fn verify_as(
    bundles: &[Bundle],
    policy: Option<&Policy>,
    cards: &[AgencyCard],
    auditor: Option<&envelope::Recipient<'_>>,
) -> Verdict {
    let mut v = Verifier::new(policy, cards, auditor, bundles.len());
    let mut trouble = Vec::new();
    for b in bundles {
        if let Err(e) = v.add(b) {
            trouble.push(e.to_string());
        }
    }
    let mut verdict = v.finish().unwrap_or_else(|e| Verdict {
        case_id: String::new(),
        bundles: Vec::new(),
        proved: Vec::new(),
        findings: vec![Finding {
            check: "bundles",
            at: String::new(),
            problem: e.to_string(),
        }],
        envelopes: Vec::new(),
        content: Vec::new(),
        timeline: Vec::new(),
        timeline_entries: 0,
    });
    for t in trouble {
        verdict.findings.push(Finding {
            check: "bundles",
            at: String::new(),
            problem: t,
        });
    }
    verdict
}

/// Verification of bundles read as streams (spec/BUNDLE.md §3): each bundle is read once as it
/// is added (everything but its log entries, of which only the number is kept), and once more
/// by [`Verifier::finish`], which reads the entries, one batch at a time, knowing every size at
/// which a root of the log must be checked, then the bundles against each other. Nothing is
/// kept per entry: what the verifier holds grows with the envelopes, checkpoints and proofs of
/// the bundles, never with their entries or with the number of things wrong in them.
pub struct Verifier<'a> {
    policy: Option<&'a Policy>,
    cards: &'a [AgencyCard],
    roots: Vec<(AgencyId, String)>,
    auditor: Option<&'a envelope::Recipient<'a>>,
    memo: Memo,
    ctx: Ctx,
    case_id: Option<CaseId>,
    scanned: Vec<Scanned>,
    timeline: Vec<Event>,
    timeline_entries: u64,
}

impl<'a> Verifier<'a> {
    /// A verifier for `expected` bundles of one case (with an auditor's keys, if given, to
    /// read what is disclosed to it).
    pub fn new(
        policy: Option<&'a Policy>,
        cards: &'a [AgencyCard],
        auditor: Option<&'a envelope::Recipient<'a>>,
        expected: usize,
    ) -> Self {
        Self {
            policy,
            cards,
            roots: Vec::new(),
            auditor,
            // Both sides' bundles hold the same envelopes, receipts and checkpoints: each
            // signature is checked once. One bundle alone repeats nothing, and keeps nothing.
            memo: Memo {
                enabled: expected > 1,
                ..Memo::default()
            },
            ctx: Ctx {
                findings: Vec::new(),
                proved: Vec::new(),
                failures: 0,
                kept: HashMap::new(),
                dropped: BTreeMap::new(),
            },
            case_id: None,
            scanned: Vec::new(),
            timeline: Vec::new(),
            timeline_entries: 0,
        }
    }

    /// Pins agencies' roots by fingerprint (obtained from the agencies themselves): a bundle
    /// whose key history of one of them starts from another root fails `cards`, and what it
    /// signed is not trusted. Call before adding bundles.
    pub fn pin_roots(&mut self, roots: Vec<(AgencyId, String)>) {
        self.roots = roots;
    }

    /// Reads a bundle file a first time and checks what can be checked before its entries
    /// are read. The file is read again by [`Verifier::finish`].
    pub fn add_file(&mut self, path: &std::path::Path) -> Result<(), BundleError> {
        self.add_source(read::Source::File(path.to_path_buf()))
    }

    /// Adds a bundle held in memory (it is encoded once, and read from those bytes).
    pub fn add(&mut self, b: &Bundle) -> Result<(), BundleError> {
        let mut bytes = Vec::new();
        b.write_to(&mut bytes)?;
        self.add_source(read::Source::Bytes(std::sync::Arc::new(bytes)))
    }

    /// Adds a bundle given as its bytes (read from them, twice, like a file).
    pub fn add_bytes(&mut self, bytes: Vec<u8>) -> Result<(), BundleError> {
        self.add_source(read::Source::Bytes(std::sync::Arc::new(bytes)))
    }

    fn add_source(&mut self, source: read::Source) -> Result<(), BundleError> {
        let before = self.ctx.failures;
        let scanned = scan(
            source,
            &mut self.case_id,
            self.policy,
            Trusted {
                cards: self.cards,
                roots: &self.roots,
            },
            self.auditor,
            &self.memo,
            &mut self.ctx,
        )?;
        if let Some(mut s) = scanned {
            s.failures += self.ctx.failures - before;
            self.scanned.push(s);
        }
        Ok(())
    }

    /// Reads every bundle's entries, finishes each bundle's checks, checks the bundles against
    /// each other, and gives the verdict.
    pub fn finish(self) -> Result<Verdict, BundleError> {
        let Self {
            mut ctx,
            case_id,
            mut scanned,
            mut timeline,
            mut timeline_entries,
            auditor,
            ..
        } = self;
        // The sizes of each log at which a root is needed: its own checkpoints, and those of
        // it that the other bundles witnessed.
        let mut needed: Vec<BTreeSet<u64>> = scanned
            .iter()
            .map(|s| s.own.iter().map(|c| c.size).collect())
            .collect();
        for (i, a) in scanned.iter().enumerate() {
            for b in &scanned {
                needed[i].extend(
                    b.witnessed
                        .iter()
                        .filter(|(who, ..)| who == &a.exporter)
                        .map(|(_, size, ..)| *size),
                );
            }
        }
        for (s, needed) in scanned.iter_mut().zip(&needed) {
            let before = ctx.failures;
            if s.usable {
                read_log(
                    s,
                    needed,
                    auditor,
                    &mut ctx,
                    &mut timeline,
                    &mut timeline_entries,
                )?;
                close(s, &mut ctx);
                s.failures += ctx.failures - before;
                conclude(s, s.failures, &mut ctx);
            } else {
                s.failures += ctx.failures - before;
            }
        }
        let mut seen = BTreeSet::new();
        for s in &scanned {
            if !seen.insert(s.exporter.clone()) {
                ctx.fail(
                    "same-case",
                    format!("{}'s bundles", s.exporter),
                    "two bundles of the same agency: give each side's bundle once",
                );
            }
        }
        for (i, a) in scanned.iter().enumerate() {
            for b in scanned.iter().skip(i + 1) {
                cross_check(a, b, &mut ctx);
                cross_check(b, a, &mut ctx);
                key_histories_agree(a, b, &mut ctx);
            }
        }
        for (check, n) in std::mem::take(&mut ctx.dropped) {
            ctx.findings.push(Finding {
                check,
                at: "…".into(),
                problem: format!("and {n} more failures of this check, not listed"),
            });
        }
        timeline.sort_by(|a: &Event, b: &Event| {
            (a.time, &a.agency, a.seq).cmp(&(b.time, &b.agency, b.seq))
        });
        Ok(Verdict {
            case_id: case_id.map(|c| c.to_string()).unwrap_or_default(),
            bundles: scanned.iter().map(|s| s.summary.clone()).collect(),
            proved: ctx.proved,
            findings: ctx.findings,
            envelopes: envelope_lines(&scanned),
            content: {
                let mut seen = BTreeSet::new();
                let mut all: Vec<DisclosedMessage> = scanned
                    .iter_mut()
                    .flat_map(|s| std::mem::take(&mut s.content))
                    .filter(|m| seen.insert(m.envelope.clone()))
                    .collect();
                all.sort_by(|a, b| (a.sent_at, &a.envelope).cmp(&(b.sent_at, &b.envelope)));
                all
            },
            timeline,
            timeline_entries,
        })
    }
}

/// Every envelope the bundles hold, once, with the receipt any of them holds.
/// The state of the key that signed an envelope, in words, as its sender's history says.
fn key_state(h: Option<&KeyHistory>, info: &EnvelopeInfo) -> String {
    let Some(rec) = h.and_then(|h| h.record(&info.signer_key_id)) else {
        return "unknown".into();
    };
    match (&rec.revoked, rec.until) {
        (Some(r), _) => format!(
            "revoked ({}, effective {}): sealed {} it",
            r.reason.as_str(),
            crate::time::format_unix(r.effective),
            if info.sent_at < r.effective {
                "before"
            } else {
                "AFTER"
            }
        ),
        (None, Some(until)) => format!("replaced at {}", crate::time::format_unix(until)),
        (None, None) => "current".into(),
    }
}

fn envelope_lines(scanned: &[Scanned]) -> Vec<EnvelopeLine> {
    let mut lines: BTreeMap<EnvelopeId, EnvelopeLine> = BTreeMap::new();
    for c in scanned {
        for (id, s) in &c.envelopes {
            let line = lines.entry(*id).or_insert_with(|| EnvelopeLine {
                id: id.to_hex(),
                from: s.info.from.to_string(),
                to: s.info.to.to_string(),
                sequence: s.info.chain.sequence,
                sent_at: s.info.sent_at,
                key: hex::encode(s.info.signer_key_id),
                key_state: key_state(c.histories.get(&s.info.from), &s.info),
                receipt: None,
                held_by: Vec::new(),
            });
            line.held_by.push(c.exporter.to_string());
            if line.receipt.is_none()
                && let Some(r) = &s.receipt
            {
                line.receipt = Some(ReceiptLine {
                    event: match r.event {
                        ReceiptEvent::Accepted => "accepted".into(),
                        ReceiptEvent::Rejected => "rejected".into(),
                    },
                    reason: r.reason.map(|c| c.name().to_string()),
                    received_at: r.received_at,
                });
            }
        }
    }
    let mut out: Vec<EnvelopeLine> = lines.into_values().collect();
    out.sort_by(|a, b| (a.sent_at, &a.from, a.sequence).cmp(&(b.sent_at, &b.from, b.sequence)));
    out
}

/// The checkpoints of one bundle's log verified so far, and those waiting: each distinct note
/// is verified once (the same checkpoint is in the list, in the envelope that carried it and in
/// every proof), in batches on every core; only the results are kept.
struct Notes<'m> {
    /// The exporter's log keys: its signing keys over time, the current one first.
    log_keys: Vec<NoteVerifier>,
    policy: Option<&'m Policy>,
    memo: &'m Memo,
    /// By the SHA-256 of the note: its checkpoint (or why not), and, for a cosigned one, the
    /// policy's decision and the cosignatures outside it.
    results: HashMap<[u8; 32], NoteResult>,
    /// The log's signature checks, by the signed part they read (a checkpoint listed with its
    /// partners' cosignatures is the one its envelope carried, with lines added).
    by_signed: HashMap<[u8; 32], Result<Checkpoint, String>>,
    pending: Vec<([u8; 32], Vec<u8>)>,
}

#[derive(Clone)]
struct NoteResult {
    checkpoint: Result<Checkpoint, String>,
    under: Option<Result<(), String>>,
    outside: String,
}

impl Notes<'_> {
    /// A note to verify; returns its key.
    fn add(&mut self, note: Vec<u8>) -> [u8; 32] {
        let key: [u8; 32] = Sha256::digest(&note).into();
        if !self.results.contains_key(&key) && !self.pending.iter().any(|(k, _)| *k == key) {
            self.pending.push((key, note));
            if self.pending.len() >= NOTE_BATCH {
                self.flush();
            }
        }
        key
    }

    /// Verifies what waits.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let log_keys = self.log_keys.as_slice();
        // Only a note that parses and carries exactly one line by the log's key is grouped,
        // by its text and that line's signature (length-prefixed): checking the log's key on
        // any note of the group reads the same text and the same signature. Any other note
        // stands alone.
        let signed_part = |n: &[u8]| -> [u8; 32] {
            let mut h = Sha256::new();
            let alone = |mut h: Sha256| {
                h.update(b"0");
                h.update(n);
                h.finalize().into()
            };
            let Ok(p) = Note::parse(n) else {
                return alone(h);
            };
            let log_key = pick_key(log_keys, n);
            let mut by_log = p
                .signatures()
                .iter()
                .filter(|sig| sig.name == log_key.name() && sig.id == log_key.id());
            match (by_log.next(), by_log.next()) {
                (Some(sig), None) => {
                    let text = p.text().as_bytes();
                    h.update(b"1");
                    h.update((text.len() as u64).to_be_bytes());
                    h.update(text);
                    h.update(&sig.signature);
                    h.finalize().into()
                }
                _ => alone(h),
            }
        };
        let keys: Vec<[u8; 32]> = pending.iter().map(|(_, n)| signed_part(n)).collect();
        let mut distinct: BTreeMap<[u8; 32], &[u8]> = BTreeMap::new();
        for (k, (_, n)) in keys.iter().zip(&pending) {
            if !self.by_signed.contains_key(k) {
                distinct.entry(*k).or_insert(n.as_slice());
            }
        }
        let distinct: Vec<([u8; 32], &[u8])> = distinct.into_iter().collect();
        let memo = self.memo;
        let results = par_map(&distinct, |(_, n)| {
            memo.checkpoint(n, pick_key(log_keys, n))
        });
        for ((k, _), r) in distinct.iter().zip(results) {
            self.by_signed.insert(*k, r);
        }
        let policy = self.policy;
        let by_signed = &self.by_signed;
        let decided = par_map(&pending, |(_, n)| {
            let k = signed_part(n);
            let checkpoint = by_signed
                .get(&k)
                .cloned()
                .unwrap_or_else(|| Err("not verified".into()));
            let cosigned = Note::parse(n).is_ok_and(|p| p.signatures().len() > 1);
            let under = match (policy, cosigned) {
                (Some(p), true) => {
                    Some(under(p, n, pick_key(log_keys, n), checkpoint.is_ok(), memo))
                }
                _ => None,
            };
            let outside = match &under {
                Some(Err(_)) => outside_policy(n, policy),
                _ => String::new(),
            };
            NoteResult {
                checkpoint,
                under,
                outside,
            }
        });
        for ((key, _), r) in pending.iter().zip(decided) {
            self.results.insert(*key, r);
        }
    }

    fn get(&self, key: &[u8; 32]) -> NoteResult {
        self.results
            .get(key)
            .cloned()
            .unwrap_or_else(|| NoteResult {
                checkpoint: Err("not verified".into()),
                under: None,
                outside: String::new(),
            })
    }
}

/// What the auditor trusts on its own: cards, and roots by fingerprint.
#[derive(Clone, Copy)]
struct Trusted<'a> {
    cards: &'a [AgencyCard],
    roots: &'a [(AgencyId, String)],
}

/// An agency's note keys of type `sig_type` (log keys, or cosignature keys) over its history:
/// its current signing key first, then the earlier ones.
fn log_keys_of(h: &KeyHistory, sig_type: u8) -> Vec<NoteVerifier> {
    let name = log_key_name(h.agency());
    let mut keys: Vec<&crate::keys::VerifyingKey> = vec![h.current_card().signing_key()];
    for c in h.cards().iter().rev() {
        if !keys.contains(&c.signing_key()) {
            keys.push(c.signing_key());
        }
    }
    keys.into_iter()
        .filter_map(|k| NoteVerifier::new(&name, sig_type, k).ok())
        .collect()
}

/// The first reading of a bundle: its header, cards and policy, the number of its entries,
/// its checkpoints, envelopes (signatures, receipts, chains), partners' checkpoints, proofs
/// and disclosures. `None`: a bundle of another case (a finding), not checked further.
#[allow(clippy::too_many_arguments)]
fn scan(
    source: read::Source,
    case: &mut Option<CaseId>,
    policy: Option<&Policy>,
    trusted: Trusted<'_>,
    auditor: Option<&envelope::Recipient<'_>>,
    memo: &Memo,
    ctx: &mut Ctx,
) -> Result<Option<Scanned>, BundleError> {
    let mut r = read::Reader::open(&source)?;
    let (case_id, x, exported_at) = header(&mut r)?;
    let expected = *case.get_or_insert(case_id);
    if case_id != expected {
        ctx.fail(
            "same-case",
            format!("{x}'s bundle"),
            format!("it is about case {case_id}, the first bundle about case {expected}"),
        );
        return Ok(None);
    }
    let whose = format!("{x}'s bundle");
    let limits = Limits::default();

    // Cards, or key histories (spec/KEYS.md): each verified; the auditor's own cards replace
    // the bundle's (unless the bundle's history certifies the card given), and a root the
    // auditor pinned must be the history's.
    let mut histories: BTreeMap<AgencyId, KeyHistory> = BTreeMap::new();
    r.key("cards")?;
    for i in 0..r.array(read::MAX_CARDS as u64, "cards")? {
        let raw = r.bytes(read::MAX_HISTORY, "a card or key history")?;
        match KeyHistory::from_file(&raw) {
            Ok(h) => {
                histories.insert(h.agency().clone(), h);
            }
            Err(e) => ctx.fail("cards", format!("{whose}, card {i}"), e.to_string()),
        }
    }
    // A card the auditor gives is all that is trusted of its agency (a history in the bundle
    // could wrap that card under another root), unless the auditor also pinned its root.
    for c in trusted.cards {
        if !trusted.roots.iter().any(|(a, _)| a == c.id()) {
            histories.insert(c.id().clone(), KeyHistory::from_card(c.clone()));
        }
    }
    for (agency, fingerprint) in trusted.roots {
        match histories.get(agency) {
            Some(h) => {
                if let Err(e) = h.check_fingerprint(fingerprint) {
                    ctx.fail("cards", &whose, e.to_string());
                    histories.remove(agency);
                }
            }
            None => ctx.fail(
                "cards",
                &whose,
                format!("the bundle holds no key history of {agency}, whose root was given"),
            ),
        }
    }
    let cards: BTreeMap<AgencyId, AgencyCard> = histories
        .iter()
        .map(|(a, h)| (a.clone(), h.current_card().clone()))
        .collect();
    r.key("policy")?;
    let policy_text = r.text(read::MAX_POLICY)?;
    r.key("entries")?;
    let entries = r.array(u64::MAX, "entries")?;
    for _ in 0..entries {
        r.skip_bytes()?;
    }
    let mut s = Scanned {
        source: source.clone(),
        file: [0; 32],
        exporter: x.clone(),
        case_id,
        whose: whose.clone(),
        entries,
        summary: BundleSummary {
            exporter: x.to_string(),
            exported_at,
            entries: entries as usize,
            sent: 0,
            received: 0,
            checkpoints: 0,
            cosigned: 0,
            witnessed: 0,
            proofs: 0,
            cards: histories
                .values()
                .map(|h| (h.agency().to_string(), h.fingerprint()))
                .collect(),
            auditor: None,
            disclosed: 0,
        },
        cards,
        histories,
        usable: false,
        failures: 0,
        own: Vec::new(),
        latest: 0,
        parsed_own: 0,
        envelopes: BTreeMap::new(),
        witnessed: Vec::new(),
        proofs: BTreeMap::new(),
        to_open: HashMap::new(),
        auditor_card: None,
        disclosed: BTreeMap::new(),
        content: Vec::new(),
        roots: BTreeMap::new(),
        sequence_ok: true,
        roots_ok: true,
        disclosure_failures: 0,
        reader_ok: false,
    };
    let Some(own) = s.histories.get(&x) else {
        ctx.fail("cards", &whose, format!("the bundle holds no card of {x}"));
        s.file = skip_rest(r)?;
        return Ok(Some(s));
    };
    let log_keys = log_keys_of(own, SIG_ED25519);
    if log_keys.is_empty() {
        ctx.fail(
            "cards",
            &whose,
            format!("{x}'s signing keys are not note keys"),
        );
        s.file = skip_rest(r)?;
        return Ok(Some(s));
    }
    s.usable = true;
    let own_policy;
    let policy = match policy {
        Some(p) => Some(p),
        None => match Policy::parse(&policy_text) {
            Ok(p) => {
                own_policy = p;
                Some(&own_policy)
            }
            Err(e) => {
                ctx.fail("policy", &whose, format!("the bundle's tlog-policy: {e}"));
                None
            }
        },
    };
    let mut notes = Notes {
        log_keys,
        policy,
        memo,
        results: HashMap::new(),
        by_signed: HashMap::new(),
        pending: Vec::new(),
    };
    // Each checkpoint of the exporter's log met and not yet settled: its note's key, and where.
    let mut own: Vec<([u8; 32], String)> = Vec::new();
    let origin = case_origin(&x, &case_id);

    r.key("checkpoints")?;
    let n = r.array(read::MAX_ITEMS, "checkpoints")?;
    s.summary.checkpoints = n as usize;
    for i in 0..n {
        let at = format!("{whose}, checkpoint {i}");
        if own.len() >= NOTE_BATCH {
            settle(&mut own, &mut notes, &mut s, &origin, ctx);
        }
        match r.blob(read::MAX_NOTE)? {
            read::Blob::Held(note) => own.push((notes.add(note), at)),
            read::Blob::Over { len, .. } => ctx.fail(
                "checkpoints",
                at,
                format!(
                    "not signed by {x}'s log key: a signed note of {len} bytes (at most {})",
                    read::MAX_NOTE
                ),
            ),
        }
    }

    // Envelopes: outer signature, which way, receipt; the checkpoints they carry.
    let witnesses: BTreeMap<AgencyId, Vec<NoteVerifier>> = s
        .histories
        .iter()
        .map(|(a, h)| (a.clone(), log_keys_of(h, SIG_COSIGNATURE_V1)))
        .collect();
    r.key("envelopes")?;
    let n = r.array(read::MAX_ITEMS, "envelopes")?;
    let mut batch: Vec<(usize, Result<EnvelopeRecord, String>)> = Vec::new();
    let mut batch_bytes = 0usize;
    for i in 0..n as usize {
        let raw = r.item(read::MAX_RECORD)?;
        batch_bytes += raw.len();
        let record: Result<EnvelopeRecord, String> =
            ciborium::de::from_reader_with_recursion_limit(raw.as_slice(), 16)
                .map_err(|e| e.to_string());
        batch.push((i, record));
        if batch.len() >= ENVELOPE_BATCH || batch_bytes >= ENVELOPE_BATCH_BYTES {
            envelopes(
                &mut s, &x, &batch, &witnesses, &limits, memo, &mut notes, &mut own, ctx,
            );
            batch.clear();
            batch_bytes = 0;
            if own.len() >= NOTE_BATCH {
                settle(&mut own, &mut notes, &mut s, &origin, ctx);
            }
        }
    }
    envelopes(
        &mut s, &x, &batch, &witnesses, &limits, memo, &mut notes, &mut own, ctx,
    );
    drop(batch);
    chains(&s, ctx);

    // Partners' checkpoints: signed by them, for their logs of this case.
    r.key("witnessed")?;
    let n = r.array(read::MAX_ITEMS, "witnessed checkpoints")?;
    s.summary.witnessed = n as usize;
    let origins: BTreeMap<String, AgencyId> = s
        .cards
        .keys()
        .map(|a| (case_origin(a, &case_id), a.clone()))
        .collect();
    let log_keys: BTreeMap<AgencyId, Vec<NoteVerifier>> = s
        .histories
        .iter()
        .map(|(a, h)| (a.clone(), log_keys_of(h, SIG_ED25519)))
        .collect();
    let mut pending: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut witnessed_list: Vec<(AgencyId, u64, Hash, String)> = Vec::new();
    for i in 0..n {
        match r.blob(read::MAX_NOTE)? {
            read::Blob::Held(raw) => pending.push((i, raw)),
            read::Blob::Over { .. } => ctx.fail(
                "witnessed",
                format!("{whose}, witnessed checkpoint {i}"),
                "not a signed checkpoint",
            ),
        }
        if pending.len() >= NOTE_BATCH || i + 1 == n {
            let signed = par_map(&pending, |(_, raw)| {
                let cp = checkpoint_of(raw)?;
                let owner = origins.get(&cp.origin).cloned();
                let ok = owner
                    .as_ref()
                    .and_then(|o| log_keys.get(o))
                    .filter(|v| !v.is_empty())
                    .is_some_and(|v| memo.checkpoint(raw, pick_key(v, raw)).is_ok());
                Some((cp, owner, ok))
            });
            for ((i, _), signed) in pending.iter().zip(signed) {
                let at = format!("{whose}, witnessed checkpoint {i}");
                let Some((cp, owner, ok)) = signed else {
                    ctx.fail("witnessed", at, "not a signed checkpoint");
                    continue;
                };
                let Some(owner) = owner else {
                    ctx.fail(
                        "witnessed",
                        at,
                        format!("{} is not a partner's log of this case", cp.origin),
                    );
                    continue;
                };
                if !ok {
                    ctx.fail("witnessed", at, format!("not signed by {owner}'s log key"));
                    continue;
                }
                witnessed_list.push((owner, cp.size, cp.root, at));
            }
            pending.clear();
        }
    }
    s.witnessed.extend(witnessed_list);
    let mut by_size: BTreeMap<(AgencyId, u64), Hash> = BTreeMap::new();
    for (who, size, root, at) in &s.witnessed {
        if let Some(r) = by_size.insert((who.clone(), *size), *root)
            && r != *root
        {
            ctx.fail(
                "witnessed",
                at.clone(),
                format!(
                    "{who} signed two different roots for size {size} of its log: a split view"
                ),
            );
        }
    }
    drop(by_size);

    // Inclusion proofs: each against a checkpoint of this log; the entry it proves is compared
    // with the one the bundle holds when the entries are read.
    r.key("proofs")?;
    let n = r.array(read::MAX_ITEMS, "proofs")?;
    s.summary.proofs = n as usize;
    let mut parsed: Vec<ProofRead> = Vec::new();
    for i in 0..n {
        let p = r
            .text_or_over(read::MAX_PROOF)?
            .and_then(|t| TlogProof::parse(&t).map_err(|e| e.to_string()));
        let key = p.as_ref().ok().map(|p| notes.add(p.checkpoint.clone()));
        parsed.push((i, p, key));
        if parsed.len() >= PROOF_BATCH || i + 1 == n {
            notes.flush();
            for (i, p, key) in parsed.drain(..) {
                proof(&mut s, &x, &origin, i, p, key, &notes, ctx);
            }
        }
    }

    // The checkpoints of the exporter's log still waiting.
    settle(&mut own, &mut notes, &mut s, &origin, ctx);

    // The content disclosed to an auditor.
    let (auditor_raw, disclosures) = optional_fields(&mut r)?;
    s.file = r.finish()?;
    disclosure_checks(&mut s, auditor_raw, disclosures, auditor, ctx);
    Ok(Some(s))
}

/// The checkpoints of the exporter's log met so far, once their notes are verified: each
/// signed by its key, for this case (else a finding), cosigned as the policy asks; its root is
/// checked against the entries in the second reading. Called every few hundred, so that what
/// waits stays small.
fn settle(
    own: &mut Vec<([u8; 32], String)>,
    notes: &mut Notes<'_>,
    s: &mut Scanned,
    origin: &str,
    ctx: &mut Ctx,
) {
    notes.flush();
    let x = s.exporter.clone();
    for (key, at) in own.drain(..) {
        let res = notes.get(&key);
        match res.checkpoint {
            Err(e) => ctx.fail_with("checkpoints", || {
                (at, format!("not signed by {x}'s log key: {e}"))
            }),
            Ok(cp) if cp.origin != origin => ctx.fail_with("checkpoints", || {
                (
                    at,
                    format!("it is a checkpoint of {}, not of {origin}", cp.origin),
                )
            }),
            Ok(cp) => {
                s.parsed_own += 1;
                s.latest = s.latest.max(cp.size);
                // Partners' cosignatures, under the policy.
                match res.under {
                    Some(Ok(())) => s.summary.cosigned += 1,
                    Some(Err(e)) => ctx.fail(
                        "cosignatures",
                        at.clone(),
                        format!(
                            "checkpoint of size {} against the policy: {e}{}",
                            cp.size, res.outside
                        ),
                    ),
                    None => {}
                }
                s.own.push(OwnCheckpoint {
                    size: cp.size,
                    root: cp.root,
                    at,
                });
            }
        }
    }
}

/// The header fields: case, exporter, export time (the format checked).
fn header(r: &mut read::Reader<'_>) -> Result<(CaseId, AgencyId, u64), BundleError> {
    r.key("format")?;
    let format = r.text(64)?;
    if format != FORMAT {
        return Err(BundleError::Format(format!(
            "format `{format}`, this verifier reads `{FORMAT}`"
        )));
    }
    r.key("case_id")?;
    let case: [u8; 16] = r
        .bytes(16, "a case id")?
        .try_into()
        .map_err(|_| BundleError::Format("a case id is 16 bytes".into()))?;
    r.key("exporter")?;
    let x = AgencyId::new(&r.text(64)?)
        .map_err(|e| BundleError::Format(format!("the exporter: {e}")))?;
    r.key("exported_at")?;
    let at = r.uint()?;
    Ok((CaseId::from_bytes(case), x, at))
}

/// The optional fields: the auditor's card and the disclosures.
fn optional_fields(r: &mut read::Reader<'_>) -> Result<Optional, BundleError> {
    let mut auditor = None;
    let mut disclosures = Vec::new();
    let mut left = r.fields() - 11;
    while left > 0 {
        left -= 1;
        match r.any_key()?.as_str() {
            "auditor" if auditor.is_none() && disclosures.is_empty() => {
                auditor = Some(r.bytes(read::MAX_CARD, "the auditor's card")?);
            }
            "disclosures" if left == 0 => {
                for _ in 0..r.array(read::MAX_ITEMS, "disclosures")? {
                    disclosures.push(r.disclosure(MAX_DISCLOSURE_BYTES)?);
                }
            }
            other => {
                return Err(BundleError::Format(format!(
                    "unexpected field `{other}` (the fields are in the order of spec/BUNDLE.md §2)"
                )));
            }
        }
    }
    Ok((auditor, disclosures))
}

/// Reads a bundle to its end (it is not checked further); returns the file's hash.
fn skip_rest(mut r: read::Reader<'_>) -> Result<[u8; 32], BundleError> {
    for name in ["checkpoints", "envelopes", "witnessed", "proofs"] {
        r.key(name)?;
        for _ in 0..r.array(read::MAX_ITEMS, name)? {
            r.skip_item()?;
        }
    }
    optional_fields(&mut r)?;
    r.finish()
}

/// One batch of envelope records.
#[allow(clippy::too_many_arguments)]
fn envelopes(
    s: &mut Scanned,
    x: &AgencyId,
    batch: &[(usize, Result<EnvelopeRecord, String>)],
    witnesses: &BTreeMap<AgencyId, Vec<NoteVerifier>>,
    limits: &Limits,
    memo: &Memo,
    notes: &mut Notes<'_>,
    own: &mut Vec<([u8; 32], String)>,
    ctx: &mut Ctx,
) {
    let whose = s.whose.clone();
    let histories = &s.histories;
    // The signatures first, on every core: they are most of the work.
    let pre = par_map(batch, |(_, r)| {
        r.as_ref()
            .ok()
            .map(|r| precheck(r, x, histories, witnesses, limits, memo))
    });
    for ((i, r), pre) in batch.iter().zip(pre) {
        let (r, pre) = match (r, pre) {
            (Ok(r), Some(pre)) => (r, pre),
            (Err(e), _) => {
                ctx.fail(
                    "envelopes",
                    format!("{whose}, envelope {i}"),
                    format!("not an envelope record: {e}"),
                );
                continue;
            }
            (Ok(_), None) => continue,
        };
        let at = format!("{whose}, envelope {i}");
        let id = pre.id;
        let info = match pre.info {
            Ok(info) => info,
            Err(e) => {
                ctx.fail("envelopes", at, format!("not an envelope: {e}"));
                continue;
            }
        };
        let at = format!(
            "{whose}, envelope {} ({} → {})",
            short(&id),
            info.from,
            info.to
        );
        let (sender, issuer) = match r.direction {
            Direction::Sent => (x.clone(), info.to.clone()),
            Direction::Received => (info.from.clone(), x.clone()),
        };
        let wrong_side = match r.direction {
            Direction::Sent => &info.from != x,
            Direction::Received => &info.to != x,
        };
        if wrong_side {
            ctx.fail(
                "envelopes",
                at.clone(),
                format!(
                    "listed as {:?} by {x}, but it went from {} to {}",
                    r.direction, info.from, info.to
                ),
            );
            continue;
        }
        match pre.origin {
            None => ctx.fail(
                "envelopes",
                at.clone(),
                format!("no card of its sender {sender}"),
            ),
            Some(Err(e)) => {
                ctx.fail(
                    "envelopes",
                    at.clone(),
                    format!("the sender's signature: {e}"),
                );
                continue;
            }
            Some(Ok(())) => {}
        }
        if info.case_commitment != envelope::case_commitment(&s.case_id) {
            ctx.fail(
                "envelopes",
                at.clone(),
                "it belongs to another case (case commitment)",
            );
        }
        let mut receipt = None;
        if r.receipt.is_some() {
            match pre.receipt {
                None => ctx.fail(
                    "receipts",
                    at.clone(),
                    format!("no card of the issuer {issuer}"),
                ),
                Some(verified) => match verified {
                    Err(e) => ctx.fail(
                        "receipts",
                        at.clone(),
                        format!("the receipt does not verify with {issuer}'s key: {e}"),
                    ),
                    Ok(rc) if rc.envelope_id != id => ctx.fail(
                        "receipts",
                        at.clone(),
                        format!(
                            "the receipt answers envelope {}, not this one (envelope swapped?)",
                            short(&rc.envelope_id)
                        ),
                    ),
                    Ok(rc) => receipt = Some(rc),
                },
            }
        }
        // Checkpoints: the sender's in the envelope; the issuer's in the receipt.
        if let Some(cp) = &info.checkpoint {
            if r.direction == Direction::Sent {
                own.push((
                    notes.add(cp.clone()),
                    format!("{at}, the checkpoint it carries"),
                ));
            } else if let Some(c) = checkpoint_of(cp) {
                s.witnessed.push((
                    sender.clone(),
                    c.size,
                    c.root,
                    format!("{at}, the checkpoint it carries"),
                ));
            }
        }
        if let Some(rc) = receipt.as_ref().and_then(|r| r.checkpoint.as_ref()) {
            if r.direction == Direction::Received {
                own.push((
                    notes.add(rc.clone()),
                    format!("{at}, the checkpoint in {x}'s receipt"),
                ));
            } else if let Some(c) = checkpoint_of(rc) {
                s.witnessed.push((
                    issuer.clone(),
                    c.size,
                    c.root,
                    format!("{at}, the checkpoint in {issuer}'s receipt"),
                ));
            }
        }
        // The addressee's cosignature of the checkpoint the envelope carried.
        if receipt.is_some() && pre.cosignature == Some(false) {
            ctx.fail(
                "cosignatures",
                at.clone(),
                format!("{issuer}'s cosignature in the receipt does not verify over the checkpoint the envelope carried"),
            );
        }
        match r.direction {
            Direction::Sent => s.summary.sent += 1,
            Direction::Received => s.summary.received += 1,
        }
        // What the later checks need, and no more.
        let mut info = info;
        info.checkpoint = None;
        info.consistency = None;
        let receipt = receipt.map(|mut r| {
            r.checkpoint = None;
            r.cosignature = None;
            r.detail = None;
            r
        });
        if s.envelopes
            .insert(
                id,
                SeenEnvelope {
                    info,
                    direction: r.direction,
                    receipt,
                    receipt_hash: r.receipt.as_ref().map(|b| Sha256Digest::of(b)),
                    recorded: false,
                },
            )
            .is_some()
        {
            ctx.fail("envelopes", at, "listed twice");
        }
    }
}

/// Chains: per (sender, addressee), sequence 1, 2, 3 … each linking the previous envelope.
fn chains(s: &Scanned, ctx: &mut Ctx) {
    let whose = &s.whose;
    let mut chains: BTreeMap<(AgencyId, AgencyId), Vec<Link>> = BTreeMap::new();
    for (id, e) in &s.envelopes {
        chains
            .entry((e.info.from.clone(), e.info.to.clone()))
            .or_default()
            .push((e.info.chain.sequence, e.info.chain.previous, *id));
    }
    for ((from, to), mut links) in chains {
        links.sort();
        let mut prev: Option<EnvelopeId> = None;
        for (n, (seq, previous, id)) in links.iter().enumerate() {
            let at = format!(
                "{whose}, {from}'s chain to {to}, envelope #{seq} ({})",
                short(id)
            );
            if *seq != n as u64 + 1 {
                ctx.fail(
                    "chains",
                    at,
                    format!(
                        "envelope #{} is missing (the chain jumps from #{n} to #{seq})",
                        n + 1
                    ),
                );
                break;
            }
            if *previous != prev {
                ctx.fail(
                    "chains",
                    at,
                    "it does not link the envelope before it in the chain",
                );
                break;
            }
            prev = Some(*id);
        }
    }
}

/// One inclusion proof: its checkpoint is the exporter's, and it verifies; the entry it proves
/// is kept (as its leaf hash) to compare with the one the bundle holds.
#[allow(clippy::too_many_arguments)]
fn proof(
    s: &mut Scanned,
    x: &AgencyId,
    origin: &str,
    i: u64,
    p: Result<TlogProof, String>,
    key: Option<[u8; 32]>,
    notes: &Notes<'_>,
    ctx: &mut Ctx,
) {
    let at = format!("{}, proof {i}", s.whose);
    let p = match p {
        Ok(p) => p,
        Err(e) => {
            ctx.fail("proofs", at, format!("not a tlog-proof: {e}"));
            return;
        }
    };
    let checked = match key {
        Some(k) => notes.get(&k).checkpoint,
        None => Err("it has no checkpoint".into()),
    };
    let cp = match checked {
        Ok(cp) if cp.origin == origin => cp,
        Ok(cp) => {
            ctx.fail("proofs", at, format!("its checkpoint is of {}", cp.origin));
            return;
        }
        Err(e) => {
            ctx.fail(
                "proofs",
                at,
                format!("its checkpoint is not signed by {x}: {e}"),
            );
            return;
        }
    };
    let Some(extra) = p.extra.as_deref() else {
        ctx.fail("proofs", at, "it carries no entry");
        return;
    };
    let leaf = leaf_hash(extra);
    if let Err(e) = verify_inclusion(p.index, cp.size, &leaf, &p.proof, &cp.root) {
        ctx.fail(
            "proofs",
            at,
            format!(
                "entry {}: the inclusion proof does not verify: {e}",
                p.index
            ),
        );
        return;
    }
    s.proofs.entry(p.index).or_default().push(leaf);
}

/// The second reading of a bundle: its entries, in batches (decoded and hashed on every core):
/// each in order, of this case and this log; each that records an envelope or its receipt
/// against the envelopes held; each that a proof proves against the proof; the log's root at
/// every `needed` size; its lines of the timeline. Then, with the auditor's key, the disclosed
/// envelopes opened. The file must be the one first read.
fn read_log(
    s: &mut Scanned,
    needed: &BTreeSet<u64>,
    auditor: Option<&envelope::Recipient<'_>>,
    ctx: &mut Ctx,
    timeline: &mut Vec<Event>,
    timeline_entries: &mut u64,
) -> Result<(), BundleError> {
    let changed = || BundleError::Format("the bundle file changed while it was read".into());
    let source = s.source.clone();
    let mut r = read::Reader::open(&source)?;
    let (case_id, x, _) = header(&mut r)?;
    if case_id != s.case_id || x != s.exporter {
        return Err(changed());
    }
    r.key("cards")?;
    for _ in 0..r.array(read::MAX_CARDS as u64, "cards")? {
        r.skip_bytes()?;
    }
    r.key("policy")?;
    r.text(read::MAX_POLICY)?;
    r.key("entries")?;
    if r.array(u64::MAX, "entries")? != s.entries {
        return Err(changed());
    }
    let mut frontier = merkle::Frontier::default();
    let mut kept = 0usize;
    let mut i = 0u64;
    while i < s.entries {
        let mut batch = Vec::with_capacity(ENTRY_BATCH);
        let mut bytes = 0usize;
        while i + (batch.len() as u64) < s.entries && batch.len() < ENTRY_BATCH && bytes < 8 << 20 {
            let b = r.blob(crate::audit::entry::MAX_ENTRY_BYTES)?;
            if let read::Blob::Held(raw) = &b {
                bytes += raw.len();
            }
            batch.push(b);
        }
        let decoded = par_map(&batch, |b| match b {
            read::Blob::Held(raw) => (parse_entry(raw, s), leaf_hash(raw)),
            read::Blob::Over { len, leaf } => (
                Err(format!(
                    "an entry of {len} bytes; an audit entry is at most {} bytes",
                    crate::audit::entry::MAX_ENTRY_BYTES
                )),
                *leaf,
            ),
        });
        drop(batch);
        for (parsed, leaf) in decoded {
            entry(s, i, parsed, leaf, ctx, timeline, &mut kept);
            frontier.push(leaf);
            if needed.contains(&(i + 1)) {
                s.roots.insert(i + 1, frontier.root());
            }
            i += 1;
        }
    }
    *timeline_entries += s.entries;
    // Proofs of entries the bundle does not hold.
    let whose = &s.whose;
    for (index, _) in s.proofs.range(s.entries..) {
        ctx.fail(
            "entries",
            format!("{whose}, entry {index}"),
            "its inclusion proof proves it, but the bundle does not hold it: the log was truncated",
        );
    }
    // The disclosed envelopes, opened with the auditor's key.
    r.key("checkpoints")?;
    for _ in 0..r.array(read::MAX_ITEMS, "checkpoints")? {
        r.skip_bytes()?;
    }
    r.key("envelopes")?;
    let n = r.array(read::MAX_ITEMS, "envelopes")?;
    let opening = s.reader_ok && !s.to_open.is_empty();
    for _ in 0..n {
        if opening {
            let raw = r.item(read::MAX_RECORD)?;
            if let Ok(rec) = ciborium::de::from_reader_with_recursion_limit::<EnvelopeRecord, _>(
                raw.as_slice(),
                16,
            ) {
                open_disclosed(s, &rec, auditor, ctx);
            }
        } else {
            r.skip_item()?;
        }
    }
    if s.reader_ok {
        for id in std::mem::take(&mut s.to_open).into_keys() {
            s.disclosure_failures += 1;
            ctx.fail(
                "disclosures",
                format!("{}, disclosure of envelope {}", s.whose, short(&id)),
                "the bundle holds no such envelope",
            );
        }
        if s.disclosure_failures == 0
            && let Some(card) = &s.auditor_card
        {
            ctx.proved.push(format!(
                "{}'s bundle discloses the content of {} of its {} envelopes to {}: read with that auditor's key, each is the content its envelope carries, signed by its sender",
                s.exporter,
                s.content.len(),
                s.envelopes.len(),
                card.id()
            ));
        }
    }
    for name in ["witnessed", "proofs"] {
        r.key(name)?;
        for _ in 0..r.array(read::MAX_ITEMS, name)? {
            r.skip_item()?;
        }
    }
    optional_fields(&mut r)?;
    if r.finish()? != s.file {
        return Err(changed());
    }
    Ok(())
}

/// Decodes one entry: what the checks need of it.
fn parse_entry(raw: &[u8], s: &Scanned) -> Result<Parsed, String> {
    if raw.is_empty() {
        return Err("an empty entry".into());
    }
    let e = AuditEntry::from_cbor(raw).map_err(|e| e.to_string())?;
    let x = &s.exporter;
    Ok(Parsed {
        seq: e.seq,
        other_case: (e.case_id != s.case_id).then_some(e.case_id),
        other_actor: (&e.actor.agency != x).then(|| e.actor.agency.clone()),
        envelope: e.envelope_id.and_then(|id| {
            matches!(
                e.event,
                AuditEvent::EnvelopeSent
                    | AuditEvent::EnvelopeReceived
                    | AuditEvent::ReceiptReceived
            )
            .then_some(Recorded {
                event: e.event,
                envelope: id,
                receipt_hash: e.receipt_hash,
            })
        }),
        event: Event {
            time: e.time,
            agency: x.to_string(),
            seq: e.seq,
            event: event_name(e.event),
            peer: e.peer.as_ref().map(|p| p.to_string()),
            envelope: e.envelope_id,
            user: e.actor.user,
            transition: e.transition.map(|t| format!("{} → {}", t.from, t.to)),
        },
    })
}

/// The checks of entry `i` (in order, of this case and log; the envelope it records is held,
/// which way, with the receipt it records; the entry a proof proves is this one), and its line
/// of the timeline.
fn entry(
    s: &mut Scanned,
    i: u64,
    parsed: Result<Parsed, String>,
    leaf: Hash,
    ctx: &mut Ctx,
    timeline: &mut Vec<Event>,
    kept: &mut usize,
) {
    let at = |s: &Scanned| format!("{}, entry {i}", s.whose);
    if let Some(proved) = s.proofs.get(&i)
        && proved.iter().any(|l| *l != leaf)
    {
        ctx.fail_with("entries", || {
            (
                at(s),
                format!("it differs from the entry {} signed (its inclusion proof proves another): it was modified", s.exporter),
            )
        });
    }
    let mut e = match parsed {
        Ok(e) => e,
        Err(e) => {
            s.sequence_ok = false;
            ctx.fail_with("entries", || (at(s), format!("not an audit entry: {e}")));
            return;
        }
    };
    if e.seq != i {
        s.sequence_ok = false;
        let what = if e.seq > i {
            "an entry before it is missing (deleted) or the entries were reordered"
        } else {
            "an entry was inserted before it or the entries were reordered"
        };
        ctx.fail_with("entries", || {
            (at(s), format!("it says it is entry {}: {what}", e.seq))
        });
    }
    if let Some(c) = e.other_case {
        ctx.fail_with("entries", || (at(s), format!("it is about case {c}")));
    }
    if let Some(a) = &e.other_actor {
        ctx.fail_with("entries", || {
            (at(s), format!("it was written by {a}, not {}", s.exporter))
        });
    }
    if let Some(rec) = e.envelope.take() {
        recorded(s, i, &rec, ctx);
    }
    if *kept < MAX_TIMELINE_PER_BUNDLE {
        *kept += 1;
        e.event.seq = i;
        timeline.push(e.event);
    }
}

/// An entry that records an envelope: the bundle holds it, the way the entry says, with the
/// receipt it records.
fn recorded(s: &mut Scanned, i: u64, e: &Recorded, ctx: &mut Ctx) {
    let at = format!("{}, entry {i} ({})", s.whose, event_name(e.event));
    let want = match e.event {
        AuditEvent::EnvelopeSent => Direction::Sent,
        AuditEvent::EnvelopeReceived => Direction::Received,
        AuditEvent::ReceiptReceived => Direction::Sent,
        _ => return,
    };
    let id = e.envelope;
    match s.envelopes.get_mut(&id) {
        None => ctx.fail(
            "envelopes",
            at,
            format!(
                "it records envelope {}, which the bundle does not hold (removed or swapped)",
                short(&id)
            ),
        ),
        Some(seen) if seen.direction != want => ctx.fail(
            "envelopes",
            at,
            format!("envelope {} is listed as {:?}", short(&id), seen.direction),
        ),
        Some(seen) => {
            if e.event == AuditEvent::ReceiptReceived {
                if seen.receipt_hash != e.receipt_hash {
                    ctx.fail(
                        "receipts",
                        at,
                        format!(
                            "the receipt it records for envelope {} is not the one in the bundle",
                            short(&id)
                        ),
                    );
                }
            } else {
                seen.recorded = true;
            }
        }
    }
}

/// What a bundle's checks conclude once its entries are read: every envelope recorded; the
/// root of the entries at every size the exporter signed; no entry beyond its latest
/// checkpoint; and, if nothing failed, what was proved.
fn close(s: &mut Scanned, ctx: &mut Ctx) {
    let x = s.exporter.clone();
    let whose = s.whose.clone();
    for (id, e) in &s.envelopes {
        if !e.recorded {
            ctx.fail(
                "envelopes",
                format!(
                    "{whose}, envelope {} ({} → {})",
                    short(id),
                    e.info.from,
                    e.info.to
                ),
                format!("{x}'s log does not record it"),
            );
        }
    }
    for cp in &s.own {
        match s.root_at(cp.size) {
            None if cp.size > s.entries => {
                s.roots_ok = false;
                ctx.fail(
                    "checkpoints",
                    cp.at.clone(),
                    format!(
                        "{x} signed its log at size {}, but the bundle holds only {} entries: the log was truncated",
                        cp.size, s.entries
                    ),
                );
            }
            Some(root) if root != cp.root => {
                s.roots_ok = false;
                ctx.fail(
                    "checkpoints",
                    cp.at.clone(),
                    format!(
                        "{x}'s signed root at size {} does not match the entries: an entry up to {} was changed, or the checkpoint comes from a forked log",
                        cp.size,
                        cp.size - 1
                    ),
                );
            }
            _ => {}
        }
    }
    if s.latest < s.entries && s.entries > 0 {
        s.roots_ok = false;
        ctx.fail(
            "checkpoints",
            &whose,
            format!(
                "the bundle holds {} entries, but {x}'s latest signed checkpoint covers {}: entries were inserted",
                s.entries, s.latest
            ),
        );
    }
}

/// What one bundle's checks proved, if none failed (`failures`: all of this bundle's).
fn conclude(s: &Scanned, failures: usize, ctx: &mut Ctx) {
    let x = &s.exporter;
    if failures == 0 {
        ctx.proved.push(format!(
            "{x}'s log of the case: {} entries, in order, each of this case and written by {x}; every signed checkpoint ({} checked) matches them{}",
            s.entries,
            s.parsed_own,
            if s.summary.cosigned > 0 {
                format!(", {} of them cosigned by partners under the policy", s.summary.cosigned)
            } else {
                String::new()
            }
        ));
        ctx.proved.push(format!(
            "{x}'s envelopes: {} sent and {} received, each signed by its sender, recorded in the log, in unbroken chains; every receipt signed by the addressee and answering its envelope",
            s.summary.sent, s.summary.received
        ));
        if s.summary.proofs > 0 {
            ctx.proved.push(format!(
                "{} inclusion proofs (c2sp.org/tlog-proof@v1) verify against {x}'s signed checkpoints",
                s.summary.proofs
            ));
        }
    } else if s.sequence_ok && s.roots_ok {
        ctx.proved
            .push(format!("{x}'s log entries match its signed checkpoints"));
    }
}

/// The auditor's card and the disclosures of a bundle, checked as far as they can be before
/// the envelopes are met again: each names an envelope of the bundle, once, and is small; the
/// auditor's key is the one the content is disclosed to. The keys to open are kept.
fn disclosure_checks(
    s: &mut Scanned,
    auditor_raw: Option<Vec<u8>>,
    disclosures: Vec<(EnvelopeId, read::Blob)>,
    auditor: Option<&envelope::Recipient<'_>>,
    ctx: &mut Ctx,
) {
    let whose = s.whose.clone();
    let before = ctx.failures;
    s.summary.disclosed = disclosures.len();
    let card = match auditor_raw {
        None if disclosures.is_empty() => return,
        None => {
            ctx.fail(
                "disclosures",
                whose,
                "content keys are disclosed but the bundle names no auditor",
            );
            s.disclosure_failures += 1;
            return;
        }
        Some(raw) => match AgencyCard::from_bytes(&raw) {
            Ok(c) => c,
            Err(e) => {
                ctx.fail("disclosures", whose, format!("the auditor's card: {e}"));
                s.disclosure_failures += 1;
                return;
            }
        },
    };
    s.summary.auditor = Some((card.id().to_string(), card.fingerprint()));
    let reader = match auditor {
        Some(r) if r.card.encryption_key() != card.encryption_key() => {
            ctx.fail(
                "disclosures",
                &whose,
                format!(
                    "the content is disclosed to {} (card fingerprint {}), not to the key given ({})",
                    card.id(),
                    card.fingerprint(),
                    r.card.id()
                ),
            );
            None
        }
        other => other,
    };
    let n = disclosures.len();
    let mut seen = BTreeSet::new();
    for (envelope, key) in disclosures {
        let at = format!("{whose}, disclosure of envelope {}", short(&envelope));
        let key = match key {
            read::Blob::Held(k) => k,
            read::Blob::Over { len, .. } => {
                ctx.fail(
                    "disclosures",
                    at,
                    format!(
                        "the disclosure is {len} bytes; a disclosed key is at most {MAX_DISCLOSURE_BYTES}"
                    ),
                );
                continue;
            }
        };
        if !seen.insert(envelope) {
            ctx.fail("disclosures", at, "disclosed twice");
            continue;
        }
        let Some(e) = s.envelopes.get(&envelope) else {
            ctx.fail("disclosures", at, "the bundle holds no such envelope");
            continue;
        };
        if reader.is_some() {
            if s.cards.contains_key(&e.info.from) {
                s.to_open.insert(envelope, key);
            } else {
                ctx.fail(
                    "disclosures",
                    at,
                    format!("no card of its sender {}", e.info.from),
                );
            }
        }
    }
    s.disclosure_failures += ctx.failures - before;
    s.reader_ok = reader.is_some();
    if auditor.is_none() {
        ctx.proved.push(format!(
            "{}'s bundle discloses the content of {n} of its {} envelopes to {} (card fingerprint {}); only that auditor's key reads it (--key)",
            s.exporter,
            s.envelopes.len(),
            card.id(),
            card.fingerprint()
        ));
    }
    s.auditor_card = Some(card);
}

/// An envelope met again in the second reading, whose content key is disclosed: opened with
/// the auditor's key (the sender's signature over the content, the content's authentication
/// under the key, and the agreement of both layers: the checks of `envelope::open_with_key`).
fn open_disclosed(
    s: &mut Scanned,
    rec: &EnvelopeRecord,
    auditor: Option<&envelope::Recipient<'_>>,
    ctx: &mut Ctx,
) {
    let id = Sha256Digest::of(&rec.envelope);
    let Some(key) = s.to_open.remove(&id) else {
        return;
    };
    let (Some(reader), Some(e)) = (auditor, s.envelopes.get(&id)) else {
        return;
    };
    let Some(sender) = s.cards.get(&e.info.from) else {
        return;
    };
    let history = s.histories.get(&e.info.from);
    let at = format!("{}, disclosure of envelope {}", s.whose, short(&id));
    let opened = envelope::undisclose(&key, reader)
        .map_err(|e| format!("the disclosed key cannot be read with the auditor's key: {e}"))
        .and_then(|k| {
            envelope::open_with_key(&rec.envelope, &k, sender, history, &Limits::default())
                .map(|o| (*k.as_bytes(), o))
                .map_err(|e| match e {
                    envelope::OpenError::OfficerNotValid(why)
                    | envelope::OpenError::UnknownOfficer(why) => format!(
                        "an official's signature over it does not hold against {}'s key history: {why}",
                        sender.id()
                    ),
                    e => format!("the disclosed key does not open it: {e}"),
                })
        });
    match opened {
        Err(e) => {
            s.disclosure_failures += 1;
            ctx.fail("disclosures", at, e);
        }
        Ok((key, o)) => {
            s.disclosed.insert(id, key);
            s.content.push(DisclosedMessage {
                envelope: id.to_hex(),
                from: o.info.from.to_string(),
                to: o.info.to.to_string(),
                sent_at: o.info.sent_at,
                sequence: o.info.chain.sequence,
                message_type: o.message.kind().as_str().to_string(),
                content: o.message.to_json(),
                signed_by: o
                    .officers
                    .iter()
                    .map(|sig| disclosed_official(history, sig))
                    .collect(),
            });
        }
    }
}

/// An official whose signature verified, named as the sender's key history certifies them.
fn disclosed_official(
    history: Option<&KeyHistory>,
    sig: &crate::officer::OfficerSignature,
) -> DisclosedOfficial {
    let record = history.and_then(|h| h.officers().iter().find(|o| o.key.id() == &sig.kid));
    DisclosedOfficial {
        role: sig.role.as_str().to_string(),
        name: record.map(|o| o.name.clone()).unwrap_or_default(),
        key: hex::encode(sig.kid),
        revoked_since: record.and_then(|o| o.revoked.as_ref()).map(|r| {
            format!(
                "{}, effective {}",
                r.reason.as_str(),
                crate::time::format_unix(r.effective)
            )
        }),
    }
}

/// What can be checked of an envelope record on its own, before the sequential checks use it:
/// its signatures.
struct Precheck {
    id: EnvelopeId,
    info: Result<EnvelopeInfo, String>,
    /// The sender's outer signature (`None`: no card of the sender).
    origin: Option<Result<(), String>>,
    /// The receipt (`None`: none, or no card of its issuer).
    receipt: Option<Result<crate::receipt::Receipt, String>>,
    /// For a sent envelope with an acceptance carrying a cosignature: whether it verifies over
    /// the checkpoint the envelope carried.
    cosignature: Option<bool>,
}

fn precheck(
    r: &EnvelopeRecord,
    x: &AgencyId,
    histories: &BTreeMap<AgencyId, KeyHistory>,
    witnesses: &BTreeMap<AgencyId, Vec<NoteVerifier>>,
    limits: &Limits,
    memo: &Memo,
) -> Precheck {
    let id = Sha256Digest::of(&r.envelope);
    let info = match envelope::inspect(&r.envelope, limits) {
        Ok(i) => i,
        Err(e) => {
            return Precheck {
                id,
                info: Err(e.to_string()),
                origin: None,
                receipt: None,
                cosignature: None,
            };
        }
    };
    let (sender, issuer) = match r.direction {
        Direction::Sent => (x, &info.to),
        Direction::Received => (&info.from, x),
    };
    // The sender's key that signed it: its current one or an earlier one of its history; one
    // revoked before the envelope's time is named.
    let origin = histories.get(sender).map(|h| {
        let Some(rec) = h.record(&info.signer_key_id) else {
            return Err(format!(
                "signed with a key that is not {sender}'s (key {})",
                hex::encode(&info.signer_key_id[..8])
            ));
        };
        if let Some(rv) = &rec.revoked
            && info.sent_at >= rv.effective
        {
            return Err(format!(
                "signed with {sender}'s key {} at {}, after its revocation ({}) took effect at {}",
                hex::encode(&info.signer_key_id[..8]),
                crate::time::format_unix(info.sent_at),
                rv.reason.as_str(),
                crate::time::format_unix(rv.effective)
            ));
        }
        let Some(card) = h.cards().get(rec.card) else {
            return Err(format!("{sender}'s key history lists the key on no card"));
        };
        // The window a receiving node allows: a replaced key for 600 s after its replacement.
        let signer = envelope::SignerKey {
            card,
            valid_from: rec.from,
            valid_until: rec
                .until
                .map(|u| u.saturating_add(crate::keyhist::ROTATION_GRACE_SECS)),
        };
        memo.get(&memo.origins, &[b"origin", &id.0, card.as_bytes()], || {
            envelope::verify_origin_by(&r.envelope, &signer, limits)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    });
    // The issuer's key that signed the receipt.
    let issuer_card = r.receipt.as_ref().and_then(|bytes| {
        let kid = crate::receipt::signer_key_id(bytes)?;
        let h = histories.get(issuer)?;
        h.record(&kid).and_then(|rec| h.cards().get(rec.card))
    });
    let issuer_card = issuer_card.or_else(|| histories.get(issuer).map(|h| h.current_card()));
    let receipt = r.receipt.as_ref().and_then(|bytes| {
        issuer_card.map(|card| {
            memo.get(
                &memo.receipts,
                &[b"receipt", bytes, card.as_bytes()],
                || {
                    verify_receipt(bytes, card, None)
                        .map(|s| s.receipt)
                        .map_err(|e| e.to_string())
                },
            )
        })
    });
    let cosignature = match (&receipt, &info.checkpoint) {
        (Some(Ok(rc)), Some(cp))
            if r.direction == Direction::Sent && rc.event == ReceiptEvent::Accepted =>
        {
            rc.cosignature.as_ref().map(|line| {
                let body = Note::parse(cp)
                    .map(|n| n.text().to_string())
                    .unwrap_or_default();
                // One signature line, by the issuer's witness key, that verifies (what
                // `witness::verify_cosignature` checks), remembered for the checkpoint that
                // lists the same line.
                let line = std::str::from_utf8(line).ok();
                let note = line
                    .filter(|l| l.matches('\n').count() == 1 && l.ends_with('\n'))
                    .and_then(|l| Note::parse(format!("{body}\n{l}").as_bytes()).ok());
                let w = witnesses.get(issuer).and_then(|keys| {
                    let card = issuer_card?;
                    keys.iter().find(|w| w.key() == card.signing_key())
                });
                match (w, note) {
                    (Some(w), Some(n)) => n
                        .signatures()
                        .first()
                        .filter(|s| s.name == w.name() && s.id == w.id())
                        .is_some_and(|s| memo.cosignature(&body, s, w)),
                    _ => false,
                }
            })
        }
        _ => None,
    };
    Precheck {
        id,
        info: Ok(info),
        origin,
        receipt,
        cosignature,
    }
}

/// Signature checks already made, by what was checked and with which key.
#[derive(Default)]
struct Memo {
    enabled: bool,
    origins: Mutex<HashMap<[u8; 32], Result<(), String>>>,
    receipts: Mutex<HashMap<[u8; 32], Result<crate::receipt::Receipt, String>>>,
    checkpoints: Mutex<HashMap<[u8; 32], Result<Checkpoint, String>>>,
    cosignatures: Mutex<HashMap<[u8; 32], bool>>,
}

impl Memo {
    /// `check()`'s result for what `parts` name, computed once when several bundles share
    /// this memo.
    fn get<T: Clone>(
        &self,
        map: &Mutex<HashMap<[u8; 32], T>>,
        parts: &[&[u8]],
        check: impl FnOnce() -> T,
    ) -> T {
        if !self.enabled {
            return check();
        }
        remember(map, parts, check)
    }

    /// A witness's cosignature line of a checkpoint body: always remembered, since one bundle
    /// holds each line twice (in the receipt that returned it and on the checkpoint listed
    /// with it), and the map is small.
    fn cosignature(&self, text: &str, s: &NoteSignature, w: &NoteVerifier) -> bool {
        remember(
            &self.cosignatures,
            &[text.as_bytes(), &s.signature, w.key().as_bytes()],
            || w.verifies(text, s),
        )
    }

    /// A signed checkpoint verified with a log's key.
    fn checkpoint(&self, note: &[u8], log: &NoteVerifier) -> Result<Checkpoint, String> {
        self.get(
            &self.checkpoints,
            &[
                b"checkpoint",
                note,
                log.name().as_bytes(),
                log.key().as_bytes(),
            ],
            || {
                crate::audit::note::verify_checkpoint(note, log, &[])
                    .map(|(cp, _)| cp)
                    .map_err(|e| e.to_string())
            },
        )
    }
}

/// `check()`'s result, kept in `map` under the hash of `parts` (each length-prefixed).
fn remember<T: Clone>(
    map: &Mutex<HashMap<[u8; 32], T>>,
    parts: &[&[u8]],
    check: impl FnOnce() -> T,
) -> T {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let key: [u8; 32] = h.finalize().into();
    if let Some(v) = map.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return v;
    }
    let v = check();
    if let Ok(mut m) = map.lock() {
        m.insert(key, v.clone());
    }
    v
}

/// Applies `f` to every item on every core, keeping their order: the signature checks are the
/// verifier's main cost, and independent of each other.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(16));
    if threads == 1 || items.len() < 64 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// A cosigned checkpoint of the exporter's log under the policy: what `Policy::verify` decides,
/// without checking again the signatures already checked. When the policy's log key is the
/// one the bundle's card gives, the log's signature is the one checked with the others
/// (`verified`); each witness's cosignature line is checked once (the receipts returned the
/// same lines). Any other policy decides on its own.
fn under(
    p: &Policy,
    note: &[u8],
    log_key: &NoteVerifier,
    log_verified: bool,
    memo: &Memo,
) -> Result<(), String> {
    let same_log = p
        .logs
        .iter()
        .any(|l| l.name() == log_key.name() && l.id() == log_key.id() && l.key() == log_key.key());
    let (true, true, Ok(n)) = (same_log, log_verified, Note::parse(note)) else {
        return p.verify(note).map(|_| ()).map_err(|e| e.to_string());
    };
    // A line by another of the policy's log keys: the policy checks it too.
    let other_log = n.signatures().iter().any(|s| {
        p.logs.iter().any(|l| {
            l.name() == s.name
                && l.id() == s.id
                && !(l.key() == log_key.key() && l.id() == log_key.id())
        })
    });
    if other_log {
        return p.verify(note).map(|_| ()).map_err(|e| e.to_string());
    }
    let mut cosigned = BTreeSet::new();
    for s in n.signatures() {
        for (name, w) in &p.witnesses {
            if w.name() == s.name && w.id() == s.id {
                if !memo.cosignature(n.text(), s, w) {
                    return Err(NoteError::BadSignature(s.name.clone()).to_string());
                }
                cosigned.insert(name.clone());
            }
        }
    }
    if p.quorum_met(&cosigned) {
        Ok(())
    } else {
        Err(NoteError::Quorum(cosigned.into_iter().collect::<Vec<_>>().join(", ")).to_string())
    }
}

/// Names cosignatures on a note by keys the policy does not list.
fn outside_policy(note: &[u8], policy: Option<&Policy>) -> String {
    let (Ok(n), Some(p)) = (Note::parse(note), policy) else {
        return String::new();
    };
    let outside: Vec<String> = n
        .signatures()
        .iter()
        .skip(1)
        .filter(|s| {
            !p.witnesses
                .values()
                .any(|w| w.name() == s.name && w.id() == s.id)
        })
        .map(|s| format!("{} (key id {:08x})", s.name, s.id))
        .collect();
    if outside.is_empty() {
        String::new()
    } else {
        format!(
            "; cosigned with a key outside the policy: {}",
            outside.join(", ")
        )
    }
}

/// What `b` says about `a`: the envelopes between them and `a`'s checkpoints that `b` witnessed.
/// Two bundles that carry key histories of one agency: one must continue the other (spec/KEYS.md
/// §6.4); otherwise the agency's root signed two histories (a split key history).
fn key_histories_agree(a: &Scanned, b: &Scanned, ctx: &mut Ctx) {
    for (agency, ha) in &a.histories {
        let Some(hb) = b.histories.get(agency) else {
            continue;
        };
        if ha.is_bare_card() || hb.is_bare_card() {
            continue;
        }
        let (short, long) = if ha.statements().len() <= hb.statements().len() {
            (ha, hb)
        } else {
            (hb, ha)
        };
        if let crate::keyhist::Relation::Fork { seq } = short.relation(long.statements()) {
            ctx.fail(
                "key-histories",
                format!("{}'s and {}'s bundles", a.exporter, b.exporter),
                format!(
                    "two key histories of {agency}: statement {seq} differs (its root signed two histories)"
                ),
            );
        }
    }
}

fn cross_check(a: &Scanned, b: &Scanned, ctx: &mut Ctx) {
    let before = ctx.findings.len();
    let mut exchanged = 0;
    for (id, s) in &a.envelopes {
        if s.direction != Direction::Sent || s.info.to != b.exporter {
            continue;
        }
        let delivered = s
            .receipt
            .as_ref()
            .is_some_and(|r| r.event == ReceiptEvent::Accepted);
        let at = format!(
            "envelope {} ({} → {}, #{})",
            short(id),
            a.exporter,
            b.exporter,
            s.info.chain.sequence
        );
        match b.envelopes.get(id) {
            None if delivered => ctx.fail(
                "both-sides",
                at,
                format!(
                    "{} sent it and holds {}'s receipt, but {}'s bundle does not hold it",
                    a.exporter, b.exporter, b.exporter
                ),
            ),
            None => {}
            Some(t) if t.direction != Direction::Received => ctx.fail(
                "both-sides",
                at,
                format!("{}'s bundle lists it as sent", b.exporter),
            ),
            Some(t) => {
                exchanged += 1;
                if t.receipt_hash != s.receipt_hash {
                    ctx.fail(
                        "both-sides",
                        at,
                        format!(
                            "the receipt {} issued is not the one {} holds",
                            b.exporter, a.exporter
                        ),
                    );
                }
            }
        }
    }
    for (id, t) in &b.envelopes {
        if t.direction == Direction::Received
            && t.info.from == a.exporter
            && !a.envelopes.contains_key(id)
        {
            ctx.fail(
                "both-sides",
                format!("envelope {} ({} → {})", short(id), a.exporter, b.exporter),
                format!(
                    "{} holds it as received from {}, but {}'s bundle does not hold it as sent",
                    b.exporter, a.exporter, a.exporter
                ),
            );
        }
    }
    // Both sides disclosed the same key for an envelope. ChaCha20/Poly1305 does not commit to
    // its key, so a sender could craft one ciphertext that opens to two messages under two
    // keys; the addressee's key is the one it derived.
    for (id, key) in &a.disclosed {
        if a.exporter < b.exporter && b.disclosed.get(id).is_some_and(|k| k != key) {
            ctx.fail(
                "disclosures",
                format!("envelope {}", short(id)),
                format!(
                    "{} and {} disclosed different content keys for it: the auditor may not be reading what its addressee read",
                    a.exporter, b.exporter
                ),
            );
        }
    }
    // Every checkpoint of a's log that b saw must be one a's entries give.
    let mut witnessed = BTreeSet::new();
    for (who, size, root, at) in &b.witnessed {
        if who != &a.exporter {
            continue;
        }
        if *size > a.entries {
            ctx.fail(
                "split-view",
                at.clone(),
                format!(
                    "{} witnessed {}'s log at size {}, but {}'s bundle holds only {} entries: its log was truncated or rolled back",
                    b.exporter,
                    a.exporter,
                    size,
                    a.exporter,
                    a.entries
                ),
            );
            continue;
        }
        match a.root_at(*size) {
            Some(r) if r != *root => ctx.fail(
                "split-view",
                at.clone(),
                format!(
                    "{} witnessed a root of {}'s log at size {} that {}'s entries do not give: two histories (a split view or a rewritten log)",
                    b.exporter, a.exporter, size, a.exporter
                ),
            ),
            Some(_) => {
                witnessed.insert(*size);
            }
            None => {}
        }
    }
    if ctx.findings.len() == before {
        ctx.proved.push(format!(
            "{} → {}: {exchanged} envelopes sent by one are held by the other with the same receipts; {} checkpoints of {}'s log witnessed by {} match {}'s entries",
            a.exporter,
            b.exporter,
            witnessed.len(),
            a.exporter,
            b.exporter,
            a.exporter
        ));
    }
}
