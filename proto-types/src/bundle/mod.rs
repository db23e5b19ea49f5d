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

mod report;
pub use report::{report_html, report_text};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::audit::entry::{AuditEntry, AuditEvent, case_origin, log_key_name};
use crate::audit::merkle::{self, Hash, MemoryTree, leaf_hash, verify_inclusion};
use crate::audit::note::{
    Checkpoint, Note, NoteError, NoteSignature, NoteVerifier, Policy, SIG_ED25519, TlogProof,
};
use crate::audit::witness;
use crate::card::AgencyCard;
use crate::envelope::{self, EnvelopeInfo, Limits};
use crate::ids::{AgencyId, CaseId, EnvelopeId, Sha256Digest};
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
    /// The message type.
    pub message_type: String,
    /// The message, as JSON (the form of spec/examples).
    pub content: serde_json::Value,
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
    /// Both logs' entries merged in time order.
    pub timeline: Vec<Event>,
}

impl Verdict {
    /// Whether every check held.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

/// The outer view of an envelope in a bundle, verified against its sender's card.
struct SeenEnvelope {
    info: EnvelopeInfo,
    direction: Direction,
    receipt: Option<crate::receipt::Receipt>,
    /// SHA-256 of the receipt's bytes (what logs record and the other side must hold).
    receipt_hash: Option<Sha256Digest>,
}

/// What a verified bundle contributes to cross-checks.
struct Checked {
    exporter: AgencyId,
    /// The exporter's log, rebuilt from its entries.
    tree: MemoryTree,
    /// Envelopes by id.
    envelopes: BTreeMap<EnvelopeId, SeenEnvelope>,
    /// Partners' checkpoints seen, by partner: (size, root, where).
    witnessed: Vec<(AgencyId, Checkpoint, String)>,
    /// The content keys disclosed to the auditor and opened with its key.
    disclosed: BTreeMap<EnvelopeId, [u8; 32]>,
    /// The messages they opened.
    content: Vec<DisclosedMessage>,
}

impl Checked {
    /// The root of the exporter's log at `size`, if it holds that many entries.
    fn root_at(&self, size: u64) -> Option<Hash> {
        (size <= self.tree.size())
            .then(|| merkle::root(&self.tree, size).ok())
            .flatten()
    }
}

/// An entry, decoded: what the checks after decoding need of it.
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

struct Ctx {
    findings: Vec<Finding>,
    proved: Vec<String>,
}

impl Ctx {
    fn fail(&mut self, check: &'static str, at: impl Into<String>, problem: impl Into<String>) {
        self.findings.push(Finding {
            check,
            at: at.into(),
            problem: problem.into(),
        });
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
    for b in bundles {
        v.add(b);
    }
    v.finish()
}

/// Verification one bundle at a time, so that a caller can read a bundle, add it and drop it
/// before reading the next: of each bundle only what the cross-checks need is kept. [`verify`]
/// and [`verify_as`] are this with bundles already in memory.
pub struct Verifier<'a> {
    policy: Option<&'a Policy>,
    cards: &'a [AgencyCard],
    auditor: Option<&'a envelope::Recipient<'a>>,
    memo: Memo,
    ctx: Ctx,
    case_id: Option<CaseId>,
    summaries: Vec<BundleSummary>,
    checked: Vec<Checked>,
    timeline: Vec<Event>,
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
            },
            case_id: None,
            summaries: Vec::new(),
            checked: Vec::new(),
            timeline: Vec::new(),
        }
    }

    /// Checks one bundle on its own; what the cross-checks need of it is kept.
    pub fn add(&mut self, b: &Bundle) {
        let case_id = *self.case_id.get_or_insert(b.case_id);
        if b.case_id != case_id {
            self.ctx.fail(
                "same-case",
                format!("{}'s bundle", b.exporter),
                format!(
                    "it is about case {}, the first bundle about case {case_id}",
                    b.case_id
                ),
            );
            return;
        }
        let (summary, c) = verify_one(
            b,
            self.policy,
            self.cards,
            self.auditor,
            &self.memo,
            &mut self.ctx,
            &mut self.timeline,
        );
        self.summaries.push(summary);
        self.checked.push(c);
    }

    /// The bundles against each other, and the verdict.
    pub fn finish(self) -> Verdict {
        let Self {
            mut ctx,
            case_id,
            summaries,
            mut checked,
            mut timeline,
            ..
        } = self;
        let mut seen = BTreeSet::new();
        for c in &checked {
            if !seen.insert(c.exporter.clone()) {
                ctx.fail(
                    "same-case",
                    format!("{}'s bundles", c.exporter),
                    "two bundles of the same agency: give each side's bundle once",
                );
            }
        }
        for (i, a) in checked.iter().enumerate() {
            for b in checked.iter().skip(i + 1) {
                cross_check(a, b, &mut ctx);
                cross_check(b, a, &mut ctx);
            }
        }
        timeline.sort_by(|a: &Event, b: &Event| {
            (a.time, &a.agency, a.seq).cmp(&(b.time, &b.agency, b.seq))
        });
        Verdict {
            case_id: case_id.map(|c| c.to_string()).unwrap_or_default(),
            bundles: summaries,
            proved: ctx.proved,
            findings: ctx.findings,
            envelopes: envelope_lines(&checked),
            content: {
                let mut seen = BTreeSet::new();
                let mut all: Vec<DisclosedMessage> = checked
                    .iter_mut()
                    .flat_map(|c| std::mem::take(&mut c.content))
                    .filter(|m| seen.insert(m.envelope.clone()))
                    .collect();
                all.sort_by(|a, b| (a.sent_at, &a.envelope).cmp(&(b.sent_at, &b.envelope)));
                all
            },
            timeline,
        }
    }
}

/// Every envelope the bundles hold, once, with the receipt any of them holds.
fn envelope_lines(checked: &[Checked]) -> Vec<EnvelopeLine> {
    let mut lines: BTreeMap<EnvelopeId, EnvelopeLine> = BTreeMap::new();
    for c in checked {
        for (id, s) in &c.envelopes {
            let line = lines.entry(*id).or_insert_with(|| EnvelopeLine {
                id: id.to_hex(),
                from: s.info.from.to_string(),
                to: s.info.to.to_string(),
                sequence: s.info.chain.sequence,
                sent_at: s.info.sent_at,
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

#[allow(clippy::too_many_arguments)]
fn verify_one(
    b: &Bundle,
    policy: Option<&Policy>,
    trusted: &[AgencyCard],
    auditor: Option<&envelope::Recipient<'_>>,
    memo: &Memo,
    ctx: &mut Ctx,
    timeline: &mut Vec<Event>,
) -> (BundleSummary, Checked) {
    let x = &b.exporter;
    let whose = format!("{x}'s bundle");
    let before = ctx.findings.len();
    let limits = Limits::default();

    // Cards: each self-signed; the auditor's own replace the bundle's.
    let mut cards: BTreeMap<AgencyId, AgencyCard> = BTreeMap::new();
    for (i, raw) in b.cards.iter().enumerate() {
        match AgencyCard::from_bytes(raw) {
            Ok(c) => {
                cards.insert(c.id().clone(), c);
            }
            Err(e) => ctx.fail("cards", format!("{whose}, card {i}"), e.to_string()),
        }
    }
    for c in trusted {
        cards.insert(c.id().clone(), c.clone());
    }
    let summary_cards = cards
        .values()
        .map(|c| (c.id().to_string(), c.fingerprint()))
        .collect();
    let mut checked = Checked {
        exporter: x.clone(),
        tree: MemoryTree::new(),
        envelopes: BTreeMap::new(),
        witnessed: Vec::new(),
        disclosed: BTreeMap::new(),
        content: Vec::new(),
    };
    let mut summary = BundleSummary {
        exporter: x.to_string(),
        exported_at: b.exported_at,
        entries: b.entries.len(),
        sent: 0,
        received: 0,
        checkpoints: b.checkpoints.len(),
        cosigned: 0,
        witnessed: b.witnessed.len(),
        proofs: b.proofs.len(),
        cards: summary_cards,
        auditor: None,
        disclosed: b.disclosures.len(),
    };
    let Some(own_card) = cards.get(x).cloned() else {
        ctx.fail("cards", &whose, format!("the bundle holds no card of {x}"));
        return (summary, checked);
    };
    let log_key = match NoteVerifier::new(&log_key_name(x), SIG_ED25519, own_card.signing_key()) {
        Ok(v) => v,
        Err(e) => {
            ctx.fail("cards", &whose, e.to_string());
            return (summary, checked);
        }
    };
    let origin = case_origin(x, &b.case_id);
    let own_policy;
    let policy = match policy {
        Some(p) => Some(p),
        None => match Policy::parse(&b.policy) {
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

    // Entries: in order, of this case and this log.
    let mut entries: Vec<(usize, Recorded)> = Vec::new();
    let mut sequence_ok = true;
    // Decoding and leaf hashing, on every core; of each entry only what later checks need is
    // kept (both sides' logs are held at once).
    let decoded = par_map(&b.entries, |raw| {
        let parsed = AuditEntry::from_cbor(raw).map(|e| Parsed {
            seq: e.seq,
            other_case: (e.case_id != b.case_id).then_some(e.case_id),
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
        });
        (parsed, leaf_hash(raw))
    });
    let mut leaves = Vec::with_capacity(decoded.len());
    timeline.reserve(decoded.len());
    for (i, (parsed, leaf)) in decoded.into_iter().enumerate() {
        leaves.push(leaf);
        let at = || format!("{whose}, entry {i}");
        match parsed {
            Ok(mut e) => {
                if e.seq != i as u64 {
                    sequence_ok = false;
                    let what = if e.seq > i as u64 {
                        "an entry before it is missing (deleted) or the entries were reordered"
                    } else {
                        "an entry was inserted before it or the entries were reordered"
                    };
                    ctx.fail(
                        "entries",
                        at(),
                        format!("it says it is entry {}: {what}", e.seq),
                    );
                }
                if let Some(c) = e.other_case {
                    ctx.fail("entries", at(), format!("it is about case {c}"));
                }
                if let Some(a) = &e.other_actor {
                    ctx.fail("entries", at(), format!("it was written by {a}, not {x}"));
                }
                e.event.seq = i as u64;
                timeline.push(e.event);
                if let Some(r) = e.envelope {
                    entries.push((i, r));
                }
            }
            Err(e) => {
                sequence_ok = false;
                ctx.fail("entries", at(), format!("not an audit entry: {e}"));
            }
        }
    }

    // Envelopes: outer signature, which way, receipt; the checkpoints they carry.
    let mut own_checkpoints: Vec<(Vec<u8>, String)> = b
        .checkpoints
        .iter()
        .enumerate()
        .map(|(i, c)| (c.to_vec(), format!("{whose}, checkpoint {i}")))
        .collect();
    // The signatures first, on every core: they are most of the work.
    let witnesses: BTreeMap<AgencyId, NoteVerifier> = cards
        .iter()
        .filter_map(|(a, c)| {
            witness::witness_verifier(&log_key_name(a), c.signing_key())
                .ok()
                .map(|v| (a.clone(), v))
        })
        .collect();
    let pre = par_map(&b.envelopes, |r| {
        precheck(r, x, &cards, &witnesses, &limits, memo)
    });
    // Each envelope's id, in order (the disclosures are matched to them).
    let mut ids = Vec::with_capacity(b.envelopes.len());
    for (i, (r, pre)) in b.envelopes.iter().zip(pre).enumerate() {
        let at = format!("{whose}, envelope {i}");
        let id = pre.id;
        ids.push(id);
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
        if info.case_commitment != envelope::case_commitment(&b.case_id) {
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
                    Ok(s) if s.envelope_id != id => ctx.fail(
                        "receipts",
                        at.clone(),
                        format!(
                            "the receipt answers envelope {}, not this one (envelope swapped?)",
                            short(&s.envelope_id)
                        ),
                    ),
                    Ok(s) => receipt = Some(s),
                },
            }
        }
        // Checkpoints: the sender's in the envelope; the issuer's in the receipt.
        if let Some(cp) = &info.checkpoint {
            if r.direction == Direction::Sent {
                own_checkpoints.push((cp.clone(), format!("{at}, the checkpoint it carries")));
            } else if let Some(c) = checkpoint_of(cp) {
                checked.witnessed.push((
                    sender.clone(),
                    c,
                    format!("{at}, the checkpoint it carries"),
                ));
            }
        }
        if let Some(rc) = receipt.as_ref().and_then(|r| r.checkpoint.as_ref()) {
            if r.direction == Direction::Received {
                own_checkpoints
                    .push((rc.clone(), format!("{at}, the checkpoint in {x}'s receipt")));
            } else if let Some(c) = checkpoint_of(rc) {
                checked.witnessed.push((
                    issuer.clone(),
                    c,
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
            Direction::Sent => summary.sent += 1,
            Direction::Received => summary.received += 1,
        }
        // What the cross-checks need, and no more: both sides' bundles are held at once.
        let mut info = info;
        info.checkpoint = None;
        info.consistency = None;
        let receipt = receipt.map(|mut r| {
            r.checkpoint = None;
            r.cosignature = None;
            r
        });
        if checked
            .envelopes
            .insert(
                id,
                SeenEnvelope {
                    info,
                    direction: r.direction,
                    receipt,
                    receipt_hash: r.receipt.as_ref().map(|b| Sha256Digest::of(b)),
                },
            )
            .is_some()
        {
            ctx.fail("envelopes", at, "listed twice");
        }
    }

    // Every entry that records an envelope has it, and its receipt where one is recorded.
    for (i, e) in &entries {
        let at = format!("{whose}, entry {i} ({})", event_name(e.event));
        let want = match e.event {
            AuditEvent::EnvelopeSent => Some(Direction::Sent),
            AuditEvent::EnvelopeReceived => Some(Direction::Received),
            AuditEvent::ReceiptReceived => Some(Direction::Sent),
            _ => None,
        };
        let (Some(want), id) = (want, e.envelope) else {
            continue;
        };
        match checked.envelopes.get(&id) {
            None => ctx.fail(
                "envelopes",
                at,
                format!(
                    "it records envelope {}, which the bundle does not hold (removed or swapped)",
                    short(&id)
                ),
            ),
            Some(s) if s.direction != want => ctx.fail(
                "envelopes",
                at,
                format!("envelope {} is listed as {:?}", short(&id), s.direction),
            ),
            Some(s) => {
                if e.event == AuditEvent::ReceiptReceived {
                    let hash = s.receipt_hash;
                    if hash != e.receipt_hash {
                        ctx.fail(
                            "receipts",
                            at,
                            format!("the receipt it records for envelope {} is not the one in the bundle", short(&id)),
                        );
                    }
                }
            }
        }
    }
    // And every envelope is recorded in the log.
    let recorded: BTreeSet<EnvelopeId> = entries
        .iter()
        .filter(|(_, e)| {
            matches!(
                e.event,
                AuditEvent::EnvelopeSent | AuditEvent::EnvelopeReceived
            )
        })
        .map(|(_, e)| e.envelope)
        .collect();
    for (id, s) in &checked.envelopes {
        if !recorded.contains(id) {
            ctx.fail(
                "envelopes",
                format!(
                    "{whose}, envelope {} ({} → {})",
                    short(id),
                    s.info.from,
                    s.info.to
                ),
                format!("{x}'s log does not record it"),
            );
        }
    }

    // Chains: per (sender, addressee), sequence 1, 2, 3 … each linking the previous envelope.
    let mut chains: BTreeMap<(AgencyId, AgencyId), Vec<Link>> = BTreeMap::new();
    for (id, s) in &checked.envelopes {
        chains
            .entry((s.info.from.clone(), s.info.to.clone()))
            .or_default()
            .push((s.info.chain.sequence, s.info.chain.previous, *id));
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

    disclosures(
        b,
        &ids,
        &whose,
        &cards,
        auditor,
        &mut summary,
        &mut checked,
        ctx,
    );

    // The log rebuilt from the entries; its root at every size a checkpoint names.
    for leaf in leaves {
        checked.tree.push_hash(leaf);
    }
    // Each distinct note is verified once (the same checkpoint is in the envelope that carried
    // it, in the list and in every proof), on every core.
    let proofs: Vec<Result<TlogProof, String>> = b
        .proofs
        .iter()
        .map(|t| TlogProof::parse(t).map_err(|e| e.to_string()))
        .collect();
    let mut notes: Vec<&[u8]> = own_checkpoints
        .iter()
        .map(|(n, _)| n.as_slice())
        .chain(proofs.iter().flatten().map(|p| p.checkpoint.as_slice()))
        .collect();
    notes.sort_unstable();
    notes.dedup();
    // A checkpoint listed with its partners' cosignatures is the checkpoint its envelope
    // carried with lines added: the log's signature is checked once for both.
    // Only a note that parses and carries exactly one line by the log's key is grouped, by
    // its text and that line's signature (length-prefixed): checking the log's key on any note
    // of the group reads the same text and the same signature. Any other note stands alone.
    let signed_part = |n: &[u8]| -> Vec<u8> {
        let alone = || [b"0".as_slice(), n].concat();
        let Ok(p) = Note::parse(n) else {
            return alone();
        };
        let mut by_log = p
            .signatures()
            .iter()
            .filter(|sig| sig.name == log_key.name() && sig.id == log_key.id());
        match (by_log.next(), by_log.next()) {
            (Some(sig), None) => {
                let text = p.text().as_bytes();
                let mut k = b"1".to_vec();
                k.extend_from_slice(&(text.len() as u64).to_be_bytes());
                k.extend_from_slice(text);
                k.extend_from_slice(&sig.signature);
                k
            }
            _ => alone(),
        }
    };
    let keys: Vec<Vec<u8>> = notes.iter().map(|n| signed_part(n)).collect();
    let mut distinct: BTreeMap<&[u8], &[u8]> = BTreeMap::new();
    for (k, n) in keys.iter().zip(&notes) {
        distinct.entry(k.as_slice()).or_insert(n);
    }
    let distinct: Vec<(&[u8], &[u8])> = distinct.into_iter().collect();
    let results = par_map(&distinct, |(_, n)| memo.checkpoint(n, &log_key));
    let by_signed: HashMap<&[u8], &Result<Checkpoint, String>> = distinct
        .iter()
        .map(|(k, _)| *k)
        .zip(results.iter())
        .collect();
    let verified: HashMap<&[u8], Result<Checkpoint, String>> = notes
        .iter()
        .zip(&keys)
        .map(|(n, k)| (*n, by_signed[k.as_slice()].clone()))
        .collect();
    let cosigned_notes: Vec<&[u8]> = notes
        .iter()
        .copied()
        .filter(|n| Note::parse(n).is_ok_and(|n| n.signatures().len() > 1))
        .collect();
    let under_policy: HashMap<&[u8], Result<(), String>> = match policy {
        Some(p) => cosigned_notes
            .iter()
            .copied()
            .zip(par_map(&cosigned_notes, |n| {
                under(p, n, &log_key, &verified, memo)
            }))
            .collect(),
        None => HashMap::new(),
    };
    let mut parsed_own = Vec::new();
    for (note, at) in &own_checkpoints {
        match &verified[note.as_slice()] {
            Err(e) => ctx.fail(
                "checkpoints",
                at.clone(),
                format!("not signed by {x}'s log key: {e}"),
            ),
            Ok(cp) if cp.origin != origin => ctx.fail(
                "checkpoints",
                at.clone(),
                format!("it is a checkpoint of {}, not of {origin}", cp.origin),
            ),
            Ok(cp) => parsed_own.push((cp.clone(), note, at)),
        }
    }
    let latest = parsed_own.iter().map(|(c, ..)| c.size).max().unwrap_or(0);
    let mut roots_ok = true;
    for (cp, note, at) in &parsed_own {
        match checked.root_at(cp.size) {
            None => {
                roots_ok = false;
                ctx.fail(
                    "checkpoints",
                    at.to_string(),
                    format!(
                        "{x} signed its log at size {}, but the bundle holds only {} entries: the log was truncated",
                        cp.size,
                        b.entries.len()
                    ),
                );
            }
            Some(root) if root != cp.root => {
                roots_ok = false;
                ctx.fail(
                    "checkpoints",
                    at.to_string(),
                    format!(
                        "{x}'s signed root at size {} does not match the entries: an entry up to {} was changed, or the checkpoint comes from a forked log",
                        cp.size,
                        cp.size - 1
                    ),
                );
            }
            Some(_) => {}
        }
        // Partners' cosignatures, under the policy.
        if let Some(result) = under_policy.get(note.as_slice()) {
            match result {
                Ok(()) => summary.cosigned += 1,
                Err(e) => ctx.fail(
                    "cosignatures",
                    at.to_string(),
                    format!(
                        "checkpoint of size {} against the policy: {e}{}",
                        cp.size,
                        outside_policy(note, policy)
                    ),
                ),
            }
        }
    }
    if latest < b.entries.len() as u64 && !b.entries.is_empty() {
        roots_ok = false;
        ctx.fail(
            "checkpoints",
            &whose,
            format!(
                "the bundle holds {} entries, but {x}'s latest signed checkpoint covers {latest}: entries were inserted",
                b.entries.len()
            ),
        );
    }

    // Inclusion proofs: each against a checkpoint of this log, for the entry the bundle holds.
    for (i, p) in proofs.iter().enumerate() {
        let at = format!("{whose}, proof {i}");
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                ctx.fail("proofs", at, format!("not a tlog-proof: {e}"));
                continue;
            }
        };
        let cp = match &verified[p.checkpoint.as_slice()] {
            Ok(cp) if cp.origin == origin => cp,
            Ok(cp) => {
                ctx.fail("proofs", at, format!("its checkpoint is of {}", cp.origin));
                continue;
            }
            Err(e) => {
                ctx.fail(
                    "proofs",
                    at,
                    format!("its checkpoint is not signed by {x}: {e}"),
                );
                continue;
            }
        };
        let Some(extra) = p.extra.as_deref() else {
            ctx.fail("proofs", at, "it carries no entry");
            continue;
        };
        if let Err(e) = verify_inclusion(p.index, cp.size, &leaf_hash(extra), &p.proof, &cp.root) {
            ctx.fail(
                "proofs",
                at,
                format!(
                    "entry {}: the inclusion proof does not verify: {e}",
                    p.index
                ),
            );
            continue;
        }
        match b.entries.get(p.index as usize) {
            Some(held) if held.as_slice() == extra => {}
            Some(_) => ctx.fail(
                "entries",
                format!("{whose}, entry {}", p.index),
                format!("it differs from the entry {x} signed (its inclusion proof proves another): it was modified"),
            ),
            None => ctx.fail(
                "entries",
                format!("{whose}, entry {}", p.index),
                "its inclusion proof proves it, but the bundle does not hold it: the log was truncated",
            ),
        }
    }

    // Partners' checkpoints: signed by them, for their logs of this case; one root per size.
    let origins: BTreeMap<String, AgencyId> = cards
        .keys()
        .map(|a| (case_origin(a, &b.case_id), a.clone()))
        .collect();
    let log_keys: BTreeMap<&AgencyId, NoteVerifier> = cards
        .iter()
        .filter_map(|(a, c)| {
            NoteVerifier::new(&log_key_name(a), SIG_ED25519, c.signing_key())
                .ok()
                .map(|v| (a, v))
        })
        .collect();
    let signed = par_map(&b.witnessed, |raw| {
        let cp = checkpoint_of(raw)?;
        let owner = origins.get(&cp.origin).cloned();
        let ok = owner
            .as_ref()
            .and_then(|o| log_keys.get(o))
            .is_some_and(|v| memo.checkpoint(raw, v).is_ok());
        Some((cp, owner, ok))
    });
    for (i, signed) in signed.into_iter().enumerate() {
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
        checked.witnessed.push((owner, cp, at));
    }
    let mut by_size: BTreeMap<(AgencyId, u64), Hash> = BTreeMap::new();
    for (who, cp, at) in &checked.witnessed {
        if let Some(r) = by_size.insert((who.clone(), cp.size), cp.root)
            && r != cp.root
        {
            ctx.fail(
                "witnessed",
                at.clone(),
                format!(
                    "{who} signed two different roots for size {} of its log: a split view",
                    cp.size
                ),
            );
        }
    }

    if ctx.findings.len() == before {
        ctx.proved.push(format!(
            "{x}'s log of the case: {} entries, in order, each of this case and written by {x}; every signed checkpoint ({} checked) matches them{}",
            b.entries.len(),
            parsed_own.len(),
            if summary.cosigned > 0 {
                format!(", {} of them cosigned by partners under the policy", summary.cosigned)
            } else {
                String::new()
            }
        ));
        ctx.proved.push(format!(
            "{x}'s envelopes: {} sent and {} received, each signed by its sender, recorded in the log, in unbroken chains; every receipt signed by the addressee and answering its envelope",
            summary.sent, summary.received
        ));
        if !b.proofs.is_empty() {
            ctx.proved.push(format!(
                "{} inclusion proofs (c2sp.org/tlog-proof@v1) verify against {x}'s signed checkpoints",
                b.proofs.len()
            ));
        }
    } else if sequence_ok && roots_ok {
        ctx.proved
            .push(format!("{x}'s log entries match its signed checkpoints"));
    }
    (summary, checked)
}

/// The content disclosed to an auditor: each disclosure names an envelope of the bundle and is
/// encrypted for the auditor's card; with the auditor's keys, each opens its envelope — the
/// sender's signature over the content, the content's authentication under the key, and the
/// agreement of both layers all hold (the checks of `envelope::open_with_key`).
#[allow(clippy::too_many_arguments)]
fn disclosures(
    b: &Bundle,
    ids: &[EnvelopeId],
    whose: &str,
    cards: &BTreeMap<AgencyId, AgencyCard>,
    auditor: Option<&envelope::Recipient<'_>>,
    summary: &mut BundleSummary,
    checked: &mut Checked,
    ctx: &mut Ctx,
) {
    let card = match &b.auditor {
        None if b.disclosures.is_empty() => return,
        None => {
            ctx.fail(
                "disclosures",
                whose,
                "content keys are disclosed but the bundle names no auditor",
            );
            return;
        }
        Some(raw) => match AgencyCard::from_bytes(raw) {
            Ok(c) => c,
            Err(e) => {
                ctx.fail("disclosures", whose, format!("the auditor's card: {e}"));
                return;
            }
        },
    };
    summary.auditor = Some((card.id().to_string(), card.fingerprint()));
    let limits = Limits::default();
    let reader = match auditor {
        Some(r) if r.card.encryption_key() != card.encryption_key() => {
            ctx.fail(
                "disclosures",
                whose,
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
    let raw: HashMap<EnvelopeId, &[u8]> = match reader {
        Some(_) => ids
            .iter()
            .zip(&b.envelopes)
            .map(|(id, e)| (*id, e.envelope.as_slice()))
            .collect(),
        None => HashMap::new(),
    };
    let opened = par_map(&b.disclosures, |d| {
        if d.key.len() > MAX_DISCLOSURE_BYTES {
            return Some(Err(format!(
                "the disclosure is {} bytes; a disclosed key is at most {MAX_DISCLOSURE_BYTES}",
                d.key.len()
            )));
        }
        let s = checked.envelopes.get(&d.envelope)?;
        let r = reader?;
        let sender = cards.get(&s.info.from)?;
        let raw = raw.get(&d.envelope)?;
        Some(
            envelope::undisclose(&d.key, r)
                .map_err(|e| {
                    format!("the disclosed key cannot be read with the auditor's key: {e}")
                })
                .and_then(|k| {
                    envelope::open_with_key(raw, &k, sender, &limits)
                        .map(|o| (*k.as_bytes(), o))
                        .map_err(|e| format!("the disclosed key does not open it: {e}"))
                }),
        )
    });
    let before = ctx.findings.len();
    let opened_before = checked.content.len();
    let mut seen = BTreeSet::new();
    for (d, opened) in b.disclosures.iter().zip(opened) {
        let at = format!("{whose}, disclosure of envelope {}", short(&d.envelope));
        if !seen.insert(d.envelope) {
            ctx.fail("disclosures", at, "disclosed twice");
            continue;
        }
        let Some(s) = checked.envelopes.get(&d.envelope) else {
            ctx.fail("disclosures", at, "the bundle holds no such envelope");
            continue;
        };
        match opened {
            None if reader.is_some() => ctx.fail(
                "disclosures",
                at,
                format!("no card of its sender {}", s.info.from),
            ),
            None => {}
            Some(Err(e)) => ctx.fail("disclosures", at, e),
            Some(Ok((key, o))) => {
                checked.disclosed.insert(d.envelope, key);
                checked.content.push(DisclosedMessage {
                    envelope: d.envelope.to_hex(),
                    from: o.info.from.to_string(),
                    to: o.info.to.to_string(),
                    sent_at: o.info.sent_at,
                    message_type: o.message.kind().as_str().to_string(),
                    content: o.message.to_json(),
                });
            }
        }
    }
    let n = b.disclosures.len();
    if reader.is_some() && ctx.findings.len() == before {
        let n = checked.content.len() - opened_before;
        ctx.proved.push(format!(
            "{}'s bundle discloses the content of {n} of its {} envelopes to {}: read with that auditor's key, each is the content its envelope carries, signed by its sender",
            b.exporter,
            b.envelopes.len(),
            card.id()
        ));
    } else if auditor.is_none() {
        ctx.proved.push(format!(
            "{}'s bundle discloses the content of {n} of its {} envelopes to {} (card fingerprint {}); only that auditor's key reads it (--key)",
            b.exporter,
            b.envelopes.len(),
            card.id(),
            card.fingerprint()
        ));
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
    cards: &BTreeMap<AgencyId, AgencyCard>,
    witnesses: &BTreeMap<AgencyId, NoteVerifier>,
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
    let origin = cards.get(sender).map(|card| {
        memo.get(&memo.origins, &[b"origin", &id.0, card.as_bytes()], || {
            envelope::verify_origin(&r.envelope, card, limits)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    });
    let issuer_card = cards.get(issuer);
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
                match (witnesses.get(issuer), note) {
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
    verified: &HashMap<&[u8], Result<Checkpoint, String>>,
    memo: &Memo,
) -> Result<(), String> {
    let same_log = p
        .logs
        .iter()
        .any(|l| l.name() == log_key.name() && l.id() == log_key.id() && l.key() == log_key.key());
    let (true, Some(Ok(_)), Ok(n)) = (same_log, verified.get(note), Note::parse(note)) else {
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
fn cross_check(a: &Checked, b: &Checked, ctx: &mut Ctx) {
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
    for (who, cp, at) in &b.witnessed {
        if who != &a.exporter {
            continue;
        }
        if cp.size > a.tree.size() {
            ctx.fail(
                "split-view",
                at.clone(),
                format!(
                    "{} witnessed {}'s log at size {}, but {}'s bundle holds only {} entries: its log was truncated or rolled back",
                    b.exporter,
                    a.exporter,
                    cp.size,
                    a.exporter,
                    a.tree.size()
                ),
            );
            continue;
        }
        match a.root_at(cp.size) {
            Some(r) if r != cp.root => ctx.fail(
                "split-view",
                at.clone(),
                format!(
                    "{} witnessed a root of {}'s log at size {} that {}'s entries do not give: two histories (a split view or a rewritten log)",
                    b.exporter, a.exporter, cp.size, a.exporter
                ),
            ),
            Some(_) => {
                witnessed.insert(cp.size);
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
