//! The offline verifier on a large case (`cargo bench -p rogatory-proto --bench verify`).
//!
//! 1. Builds one case between two agencies, `XA.DEMO` and `XB.DEMO`, with the protocol's own
//!    code and real keys: ENVELOPES envelopes, alternately each way, each sealed with the
//!    sender's checkpoint and a consistency proof, answered by a signed receipt with the
//!    addressee's checkpoint and its cosignature of the sender's; each side's audit log filled
//!    to ENTRIES entries with local reads (`content-accessed`). Both sides' export bundles are
//!    written as a node writes them (spec/BUNDLE.md), with an inclusion proof per envelope entry.
//! 2. Verifies one bundle, then the pair, each in a child process of its own (this binary
//!    re-executed) that reads the files, runs the verifier and prints its time and peak RSS
//!    (`VmHWM`), so the generation's memory is not counted.
//!    The same for XA's bundle exported for an auditor and read with the auditor's key (every
//!    message opened with its disclosed key and checked).
//! 3. Runs the stand-alone `rogatory-verify` on the pair for its wall time, output included.
//! 4. In the same run, the bare cryptography the verifier cannot avoid: one strict Ed25519
//!    verification per signature the bundles hold, and SHA-256 over every byte of them.
//!
//! ```sh
//! cargo build --release -p rogatory-proto --features cli --bin rogatory-verify
//! cargo bench -p rogatory-proto --bench verify                  # 100000 entries, 10000 envelopes
//! cargo bench -p rogatory-proto --bench verify -- 20000 2000    # smaller
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rogatory_proto::audit::entry::{Actor, AuditEntry, AuditEvent, case_origin, log_key_name};
use rogatory_proto::audit::merkle::{self, MemoryTree};
use rogatory_proto::audit::note::{Checkpoint, Note, TlogProof};
use rogatory_proto::audit::witness::{self, CarriedProof};
use rogatory_proto::bundle::{self, Bundle, Direction, Disclosure, EnvelopeRecord, FORMAT};
use rogatory_proto::card::{AgencyCard, CardDetails, Role};
use rogatory_proto::envelope::{
    self, Addressee, ChainLink, EnvelopeKey, Limits, Recipient, SealParams, Sender,
};
use rogatory_proto::ids::{AgencyId, CaseId, EnvelopeId, MessageId};
use rogatory_proto::keys::AgencySecretKeys;
use rogatory_proto::message::{Handling, HandlingCode, LiaisonMessage, Message};
use rogatory_proto::receipt::{Receipt, ReceiptEvent};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

const T0: u64 = 1_790_000_000;

/// One agency's side of the case while it is being built.
struct Side {
    id: AgencyId,
    keys: AgencySecretKeys,
    card: AgencyCard,
    case: CaseId,
    tree: MemoryTree,
    entries: Vec<Vec<u8>>,
    /// Own checkpoints given to the partner, with the cosignature lines it returned.
    given: BTreeMap<Vec<u8>, Vec<String>>,
    witnessed: BTreeSet<Vec<u8>>,
    records: Vec<EnvelopeRecord>,
    /// Own chain to the partner: last sequence and envelope; size of the checkpoint it carried.
    chain: (u64, Option<EnvelopeId>, u64),
    /// Every envelope's content key, as a node keeps or derives it.
    content_keys: Vec<(EnvelopeId, EnvelopeKey)>,
}

impl Side {
    fn new(id: &str, case: CaseId) -> Self {
        let keys = AgencySecretKeys::generate();
        let card = AgencyCard::issue(
            CardDetails {
                id: AgencyId::new(id).unwrap(),
                name: format!("{id} (benchmark)"),
                roles: vec![Role::CentralAuthority],
                addresses: vec![],
                languages: vec!["en".into()],
                legal_bases: vec![],
                issued_at: T0 - 86_400,
            },
            &keys,
        )
        .unwrap();
        Self {
            id: card.id().clone(),
            keys,
            card,
            case,
            tree: MemoryTree::new(),
            entries: Vec::new(),
            given: BTreeMap::new(),
            witnessed: BTreeSet::new(),
            records: Vec::new(),
            chain: (0, None, 0),
            content_keys: Vec::new(),
        }
    }

    fn append(
        &mut self,
        time: u64,
        event: AuditEvent,
        peer: Option<&AgencyId>,
        envelope: Option<EnvelopeId>,
    ) -> usize {
        let e = AuditEntry {
            seq: self.entries.len() as u64,
            time,
            case_id: self.case,
            event,
            actor: Actor {
                agency: self.id.clone(),
                user: (event == AuditEvent::ContentAccessed).then(|| "clerk1".to_string()),
            },
            peer: peer.cloned(),
            envelope_id: envelope,
            receipt_hash: None,
            transition: None,
            reason: None,
            commitment: None,
        };
        self.push(e)
    }

    fn push(&mut self, e: AuditEntry) -> usize {
        let bytes = e.to_cbor().unwrap();
        self.tree.push(&bytes);
        self.entries.push(bytes);
        self.entries.len() - 1
    }

    /// A signed checkpoint of the log as it stands.
    fn checkpoint(&self) -> Vec<u8> {
        let cp = Checkpoint {
            origin: case_origin(&self.id, &self.case),
            size: self.tree.size(),
            root: self.tree.root(),
            extensions: vec![],
        };
        let mut n = Note::new(&cp.body()).unwrap();
        n.sign(&log_key_name(&self.id), &self.keys.signing).unwrap();
        n.to_text().into_bytes()
    }

    fn bundle(&self, partner: &AgencyCard, now: u64, auditor: Option<&AgencyCard>) -> Bundle {
        let latest = self.checkpoint();
        let mut given = self.given.clone();
        given.entry(latest.clone()).or_default();
        let checkpoints = given
            .into_iter()
            .map(|(mut note, lines)| {
                for l in lines {
                    note.extend_from_slice(l.as_bytes());
                }
                ByteBuf::from(note)
            })
            .collect();
        let w =
            witness::witness_verifier(&log_key_name(partner.id()), partner.signing_key()).unwrap();
        let policy = format!(
            "log {}\nwitness {} {}\ngroup partners any {}\nquorum partners\n",
            self.card.note_verifier_key(),
            partner.id(),
            w.vkey(),
            partner.id()
        );
        let size = self.tree.size();
        let mut proofs = Vec::new();
        for (i, raw) in self.entries.iter().enumerate() {
            let e = AuditEntry::from_cbor(raw).unwrap();
            if matches!(
                e.event,
                AuditEvent::EnvelopeSent | AuditEvent::EnvelopeReceived
            ) {
                let proof = merkle::inclusion_proof(&self.tree, i as u64, size)
                    .unwrap()
                    .unwrap();
                proofs.push(
                    TlogProof {
                        extra: Some(raw.clone()),
                        index: i as u64,
                        proof,
                        checkpoint: latest.clone(),
                    }
                    .to_text(),
                );
            }
        }
        Bundle {
            format: FORMAT.into(),
            case_id: self.case,
            exporter: self.id.clone(),
            exported_at: now,
            cards: vec![
                ByteBuf::from(self.card.as_bytes().to_vec()),
                ByteBuf::from(partner.as_bytes().to_vec()),
            ],
            policy,
            entries: self.entries.iter().cloned().map(ByteBuf::from).collect(),
            checkpoints,
            envelopes: self.records.clone(),
            witnessed: self.witnessed.iter().cloned().map(ByteBuf::from).collect(),
            proofs,
            auditor: auditor.map(|a| ByteBuf::from(a.as_bytes().to_vec())),
            disclosures: auditor
                .map(|a| {
                    self.content_keys
                        .iter()
                        .map(|(id, k)| Disclosure {
                            envelope: *id,
                            key: ByteBuf::from(envelope::disclose(k, a).unwrap()),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// One envelope from `s` to `r`, received, answered and settled as two nodes do it.
fn exchange(s: &mut Side, r: &mut Side, n: u64, time: u64) {
    let cp = s.checkpoint();
    let (seq, prev, carried) = s.chain;
    let consistency = (seq > 0 && carried < s.tree.size()).then(|| CarriedProof {
        old_size: carried,
        hashes: merkle::consistency_proof(&s.tree, carried, s.tree.size())
            .unwrap()
            .unwrap(),
    });
    let message = Message::Liaison(LiaisonMessage {
        subject: format!("update {n}"),
        body: "Subscriber records for the account named in the request are attached as item E1; \
               the provider confirms preservation until the date stated."
            .into(),
        handling: Handling {
            codes: vec![HandlingCode::H1],
            ..Default::default()
        },
        ..Default::default()
    });
    let sealed = envelope::seal(
        &Sender {
            card: &s.card,
            keys: &s.keys,
        },
        &[Addressee {
            card: &r.card,
            chain: ChainLink {
                sequence: seq + 1,
                previous: prev,
            },
            consistency,
        }],
        &message,
        &SealParams {
            case_id: s.case,
            message_id: MessageId::generate(),
            sent_at: time,
            checkpoint: Some(cp.clone()),
        },
        &Limits::default(),
    )
    .unwrap()
    .remove(0);
    s.chain = (seq + 1, Some(sealed.id), s.tree.size());
    s.content_keys.push((sealed.id, sealed.key.clone()));
    r.content_keys.push((sealed.id, sealed.key.clone()));
    s.given.entry(cp.clone()).or_default();
    s.append(time, AuditEvent::EnvelopeSent, Some(&r.id), Some(sealed.id));

    // The addressee: envelope and entry, then its checkpoint, cosignature and receipt.
    r.witnessed.insert(cp.clone());
    r.append(
        time + 1,
        AuditEvent::EnvelopeReceived,
        Some(&s.id),
        Some(sealed.id),
    );
    let r_cp = r.checkpoint();
    let body = Note::parse(&cp).unwrap().text().to_string();
    let line = witness::cosign(&body, &log_key_name(&r.id), &r.keys.signing, time + 1).unwrap();
    let receipt = Receipt {
        version: envelope::PROTOCOL_VERSION,
        envelope_id: sealed.id,
        from: r.id.clone(),
        to: s.id.clone(),
        event: ReceiptEvent::Accepted,
        reason: None,
        detail: None,
        received_at: time + 1,
        checkpoint: Some(r_cp.clone()),
        cosignature: Some(line.clone().into_bytes()),
    }
    .sign(&r.keys)
    .unwrap();
    r.given.entry(r_cp.clone()).or_default();
    r.records.push(EnvelopeRecord {
        direction: Direction::Received,
        envelope: ByteBuf::from(sealed.bytes.clone()),
        receipt: Some(ByteBuf::from(receipt.bytes.clone())),
    });

    // The sender settles it.
    s.witnessed.insert(r_cp);
    s.given.entry(cp).or_default().push(line);
    let mut e = AuditEntry::from_cbor(&s.entries[s.entries.len() - 1]).unwrap();
    e.seq = s.entries.len() as u64;
    e.time = time + 2;
    e.event = AuditEvent::ReceiptReceived;
    e.receipt_hash = Some(receipt.hash);
    e.actor.user = None;
    s.push(e);
    s.records.push(EnvelopeRecord {
        direction: Direction::Sent,
        envelope: ByteBuf::from(sealed.bytes),
        receipt: Some(ByteBuf::from(receipt.bytes)),
    });
}

fn write(b: &Bundle, path: &Path) -> u64 {
    let f = std::fs::File::create(path).unwrap();
    let mut w = std::io::BufWriter::new(f);
    b.write_to(&mut w).unwrap();
    drop(w);
    std::fs::metadata(path).unwrap().len()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A directory removed when the benchmark ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("rogatory-verify-bench-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("ROGATORY_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The child: read the bundles, verify, report.
fn child(args: &[String]) {
    let start = Instant::now();
    let (auditor, paths) = match args.first().map(String::as_str) {
        Some("--key") => {
            let dir = Path::new(&args[1]);
            let keys = AgencySecretKeys::from_cose_key_set(
                &std::fs::read(dir.join("secret-keys.cose")).unwrap(),
            )
            .unwrap();
            let card =
                AgencyCard::from_bytes(&std::fs::read(dir.join("card.cose")).unwrap()).unwrap();
            (Some((keys, card)), &args[2..])
        }
        _ => (None, args),
    };
    // As the verifier's front end does it: each bundle read, checked and dropped in turn.
    let reader = auditor
        .as_ref()
        .map(|(keys, card)| Recipient { card, keys });
    let mut verifier = bundle::Verifier::new(None, &[], reader.as_ref(), paths.len());
    // The first reading of each file (all but its entries), then the second (the entries).
    let mut read = std::time::Duration::ZERO;
    for p in paths {
        let t = Instant::now();
        verifier.add_file(std::path::Path::new(p)).unwrap();
        read += t.elapsed();
    }
    let v = verifier.finish().unwrap();
    let envelopes = v.bundles.last().map_or(0, |b| b.sent + b.received);
    assert_eq!(
        v.content.len(),
        if reader.is_some() { envelopes } else { 0 }
    );
    let report = bundle::report_text(&v);
    let total = start.elapsed();
    assert!(v.ok(), "the generated bundles must verify:\n{report}");
    println!(
        "{} {} {} {}",
        read.as_secs_f64(),
        total.as_secs_f64(),
        peak_rss_kib(),
        report.len()
    );
}

fn measure(paths: &[&Path], key: Option<&Path>) -> (f64, f64, f64) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("--child");
    if let Some(k) = key {
        cmd.arg("--key").arg(k);
    }
    let out = cmd.args(paths).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    let f: Vec<f64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
    (f[0], f[1], f[2] / 1024.0)
}

/// Signatures a bundle holds that the verifier checks: cards, envelopes (outer), receipts,
/// checkpoint signatures and cosignatures, witnessed checkpoints, proofs' checkpoints.
fn signatures(b: &Bundle) -> usize {
    let notes: usize = b
        .checkpoints
        .iter()
        .map(|n| Note::parse(n).map(|n| n.signatures().len()).unwrap_or(1))
        .sum();
    b.cards.len() + 2 * b.envelopes.len() + notes + b.witnessed.len() + b.proofs.len()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1..]);
        return;
    }
    // `cargo bench` adds `--bench`; the numbers are the sizes.
    let sizes: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let entries = sizes.first().copied().unwrap_or(100_000) as usize;
    let envelopes = sizes.get(1).copied().unwrap_or(10_000);
    let dir = TempDir::new();

    let t = Instant::now();
    let case = CaseId::generate();
    let mut a = Side::new("XA.DEMO", case);
    let mut b = Side::new("XB.DEMO", case);
    a.append(T0, AuditEvent::CaseCreated, Some(&b.id.clone()), None);
    b.append(T0, AuditEvent::CaseCreated, Some(&a.id.clone()), None);
    // Per exchange each side gains 1.5 structural entries on average; the rest are reads.
    let filler = (entries as f64 / envelopes as f64 - 1.5).max(0.0);
    let mut owed = (0.0f64, 0.0f64);
    for n in 0..envelopes {
        let time = T0 + 60 + n * 30;
        if n % 2 == 0 {
            exchange(&mut a, &mut b, n, time);
        } else {
            exchange(&mut b, &mut a, n, time);
        }
        owed.0 += filler;
        owed.1 += filler;
        while owed.0 >= 1.0 && a.entries.len() < entries {
            a.append(time + 3, AuditEvent::ContentAccessed, None, None);
            owed.0 -= 1.0;
        }
        while owed.1 >= 1.0 && b.entries.len() < entries {
            b.append(time + 3, AuditEvent::ContentAccessed, None, None);
            owed.1 -= 1.0;
        }
    }
    let end = T0 + 60 + envelopes * 30 + 60;
    while a.entries.len() < entries {
        a.append(end, AuditEvent::ContentAccessed, None, None);
    }
    while b.entries.len() < entries {
        b.append(end, AuditEvent::ContentAccessed, None, None);
    }
    let ba = a.bundle(&b.card, end, None);
    let bb = b.bundle(&a.card, end, None);
    let (pa, pb) = (dir.0.join("XA.bundle"), dir.0.join("XB.bundle"));
    let (sa, sb) = (write(&ba, &pa), write(&bb, &pb));
    // The same bundle of XA exported for an auditor, and the auditor's key directory.
    let auditor = Side::new("XO.OVERSIGHT", case);
    let key_dir = dir.0.join("auditor");
    std::fs::create_dir_all(&key_dir).unwrap();
    std::fs::write(
        key_dir.join("secret-keys.cose"),
        auditor.keys.to_cose_key_set().as_slice(),
    )
    .unwrap();
    std::fs::write(key_dir.join("card.cose"), auditor.card.as_bytes()).unwrap();
    let pd = dir.0.join("XA-for-auditor.bundle");
    write(&a.bundle(&b.card, end, Some(&auditor.card)), &pd);
    println!(
        "generated in {:.1} s: each bundle {} entries, {} envelopes, {} checkpoints, {} proofs; {:.1} MB and {:.1} MB",
        t.elapsed().as_secs_f64(),
        ba.entries.len(),
        ba.envelopes.len(),
        ba.checkpoints.len(),
        ba.proofs.len(),
        sa as f64 / 1e6,
        sb as f64 / 1e6
    );

    // The bare cost, in this run: every signature once, every byte hashed once.
    let sigs = signatures(&ba);
    let msg = [7u8; 200];
    let sig = a.keys.signing.sign(&msg);
    let vk = a.keys.signing.verifying_key();
    let t = Instant::now();
    for _ in 0..sigs {
        assert!(vk.verify_strict(std::hint::black_box(&msg), &sig));
    }
    let bare_sig = t.elapsed().as_secs_f64();
    let bytes = std::fs::read(&pa).unwrap();
    let t = Instant::now();
    let digest = Sha256::digest(std::hint::black_box(&bytes));
    let bare_hash = t.elapsed().as_secs_f64();
    std::hint::black_box(digest);

    let (read1, total1, rss1) = measure(&[&pa], None);
    let (read2, total2, rss2) = measure(&[&pa, &pb], None);
    let (_, total3, rss3) = measure(&[&pd], Some(&key_dir));

    // The stand-alone verifier, as an auditor runs it.
    // A bench runs from target/release/deps; the binary is one level up.
    let exe = std::env::current_exe().unwrap();
    let dir_of = exe.parent().unwrap();
    let bin_dir = if dir_of.ends_with("deps") {
        dir_of.parent().unwrap()
    } else {
        dir_of
    };
    let verifier = bin_dir.join("rogatory-verify");
    let wall = if verifier.exists() {
        let t = Instant::now();
        let out = Command::new(&verifier).arg(&pa).arg(&pb).output().unwrap();
        assert!(out.status.success(), "rogatory-verify refused the pair");
        Some(t.elapsed().as_secs_f64())
    } else {
        None
    };

    println!(
        "bare cryptography: {sigs} Ed25519 verifications {bare_sig:.2} s, SHA-256 of {:.1} MB {:.3} s (one bundle)",
        bytes.len() as f64 / 1e6,
        bare_hash
    );
    println!(
        "one bundle ({} entries, {} envelopes): read {read1:.2} s, read + verify + report {total1:.2} s ({:.2}x the bare signatures); peak RSS {rss1:.0} MiB",
        ba.entries.len(),
        ba.envelopes.len(),
        total1 / bare_sig
    );
    println!(
        "both sides' bundles ({} entries, {} envelopes each side, cross-checked): read {read2:.2} s, read + verify + report {total2:.2} s; peak RSS {rss2:.0} MiB",
        ba.entries.len() + bb.entries.len(),
        ba.envelopes.len()
    );
    println!(
        "one bundle read by its auditor ({} messages opened with the disclosed keys and checked): read + verify + report {total3:.2} s; peak RSS {rss3:.0} MiB",
        ba.envelopes.len()
    );
    match wall {
        Some(w) => println!(
            "rogatory-verify on the pair, wall time including start-up and output: {w:.2} s"
        ),
        None => println!(
            "rogatory-verify not built beside this binary ({}): build it with --bin rogatory-verify to time it",
            PathBuf::from(&verifier).display()
        ),
    }
}
