//! `rogatory audit verify-store`: every case's tree re-derived from its stored entries and
//! checked against every stored subtree hash and signed checkpoint; every sealed record's
//! signature checked.

use redb::ReadableTable;
use rogatory_proto::audit::merkle::{self, MemoryTree};
use rogatory_proto::audit::note::NoteVerifier;
use rogatory_proto::ids::CaseId;

use super::*;

/// One finding of [`Store::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The case.
    pub case: CaseId,
    /// The entry concerned, when one can be named.
    pub entry: Option<u64>,
    /// What is wrong.
    pub problem: String,
}

/// The result of [`Store::verify`].
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Sealed records (case, evidence, inbox) whose signature was checked.
    pub records: u64,
    /// Cases checked.
    pub cases: usize,
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// Everything that is wrong; empty when the store is intact.
    pub findings: Vec<Finding>,
}

impl Store {
    /// Re-derives every case's tree from its stored entries and checks it against every stored
    /// subtree hash and every signed checkpoint. The work is proportional to the records stored,
    /// whatever keys an attacker wrote.
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<VerifyReport, StoreError> {
        self.verify_with(std::slice::from_ref(verifier))
    }

    /// [`Self::verify`] for an agency whose signing key changed: a checkpoint or record
    /// verifies with any of `verifiers` (the agency's keys over time, one name).
    pub fn verify_with(&self, verifiers: &[NoteVerifier]) -> Result<VerifyReport, StoreError> {
        let Some(verifier) = verifiers.first() else {
            return Ok(VerifyReport::default());
        };
        let mut report = VerifyReport::default();
        let tx = self.begin_read()?;
        let log = tx.open_table(LOG)?;
        let mut registered = std::collections::BTreeSet::new();
        for row in tx.open_table(CASES)?.iter()? {
            registered.insert(*row?.0.value());
        }
        // Every case that has records, found by seeking past each case's key range.
        let mut cases = registered.clone();
        let mut from = [0u8; 16];
        loop {
            let next = log.range((&from, 0u64, 0u8, 0u64)..)?.next().transpose()?;
            let Some((k, _)) = next else { break };
            let c = *k.value().0;
            cases.insert(c);
            match u128::from_be_bytes(c).checked_add(1) {
                Some(n) => from = n.to_be_bytes(),
                None => break,
            }
        }
        for key in cases {
            report.cases += 1;
            let case = CaseId::from_bytes(key);
            let mut find = |entry: Option<u64>, problem: String| {
                report.findings.push(Finding {
                    case,
                    entry,
                    problem,
                });
            };
            if !registered.contains(&key) {
                find(
                    None,
                    "records are stored for a case that was never registered".into(),
                );
            }
            let mut tree = MemoryTree::new();
            let mut contiguous = true;
            let mut next_entry = 0u64;
            let mut checkpoints = Vec::new();
            let mut nodes = Vec::new();
            let mut records = 0u64;
            for row in log.range((&key, 0u64, 0u8, 0u64)..=(&key, u64::MAX, u8::MAX, u64::MAX))? {
                let (k, v) = row?;
                let (_, leaf, kind, x) = k.value();
                records += 1;
                match kind {
                    ENTRY if x == 0 => {
                        if leaf != next_entry {
                            find(
                                Some(next_entry),
                                if leaf == next_entry + 1 {
                                    "the entry is missing".to_string()
                                } else {
                                    format!("entries {next_entry} to {} are missing", leaf - 1)
                                },
                            );
                            contiguous = false;
                        }
                        next_entry = leaf.saturating_add(1);
                        let bytes = v.value();
                        match AuditEntry::from_cbor(bytes) {
                            Ok(e) if e.seq == leaf && e.case_id == case => {}
                            Ok(_) => find(
                                Some(leaf),
                                "the entry names another position or case".into(),
                            ),
                            Err(e) => find(Some(leaf), format!("the entry does not decode: {e}")),
                        }
                        match log.get(node_key(&key, 0, leaf))? {
                            Some(h) if h.value() == leaf_hash(bytes).as_slice() => {}
                            Some(_) => find(
                                Some(leaf),
                                "the entry was changed after it was logged: its hash differs from the logged leaf hash".into(),
                            ),
                            None => find(Some(leaf), "the logged leaf hash is missing".into()),
                        }
                        if contiguous {
                            tree.push(bytes);
                        }
                        report.entries += 1;
                    }
                    NODE => nodes.push((x, leaf, v.value().to_vec())),
                    CHECKPOINT if x == 0 => {
                        checkpoints.push((leaf.saturating_add(1), v.value().to_vec()))
                    }
                    _ => find(
                        Some(leaf),
                        format!(
                            "a record of unknown kind or key ({kind}, {x}) is stored at this entry"
                        ),
                    ),
                }
            }
            if records == 0 {
                find(
                    None,
                    "the case is registered but its log is empty: it was deleted".into(),
                );
                continue;
            }
            // Every stored subtree hash must be the one the entries give: proofs are built from them.
            let mut stored_nodes = 0u64;
            for (level, leaf, hash) in nodes {
                let level = u32::try_from(level).unwrap_or(u32::MAX);
                let span = 1u64.checked_shl(level).unwrap_or(0);
                let aligned = span != 0 && leaf.checked_add(1).is_some_and(|l| l % span == 0);
                if !aligned {
                    find(
                        Some(leaf),
                        format!(
                            "a subtree hash of level {level} is stored at a key no append writes"
                        ),
                    );
                    continue;
                }
                let index = ((leaf + 1) >> level) - 1;
                if leaf >= tree.size() {
                    find(
                        Some(leaf),
                        format!("a subtree hash ({level}, {index}) lies beyond the entries"),
                    );
                    continue;
                }
                stored_nodes += 1;
                if tree.node(level, index).ok().as_ref().map(|h| h.as_slice())
                    != Some(hash.as_slice())
                {
                    let (first, last) = (index << level, leaf);
                    if level == 0 {
                        find(
                            Some(leaf),
                            "the stored leaf hash differs from the entry".into(),
                        );
                    } else {
                        find(
                            None,
                            format!(
                                "the stored subtree hash ({level}, {index}) over entries {first} to {last} differs from those entries"
                            ),
                        );
                    }
                }
            }
            let n = tree.size();
            let expected_nodes: u64 = (0..64).map(|l| n >> l).sum();
            if contiguous && stored_nodes < expected_nodes {
                find(
                    None,
                    format!(
                        "{} subtree hashes are missing",
                        expected_nodes - stored_nodes
                    ),
                );
            }
            let mut latest = 0u64;
            let mut matched = 0u64;
            let origin = case_origin_from(verifier, &case);
            for (at, note) in checkpoints {
                report.checkpoints += 1;
                latest = latest.max(at);
                let verified = verifiers
                    .iter()
                    .map(|v| rogatory_proto::audit::note::verify_checkpoint(&note, v, &[]))
                    .reduce(|a, b| a.or(b))
                    .unwrap_or_else(|| {
                        rogatory_proto::audit::note::verify_checkpoint(&note, verifier, &[])
                    });
                match verified {
                    Err(e) => find(
                        None,
                        format!("the checkpoint at size {at} does not verify: {e}"),
                    ),
                    Ok((cp, _)) if cp.size != at || cp.origin != origin => find(
                        None,
                        format!(
                            "the checkpoint stored at size {at} is for size {} of {}",
                            cp.size, cp.origin
                        ),
                    ),
                    Ok((cp, _)) => {
                        if at > n {
                            find(
                                Some(n),
                                format!(
                                    "the checkpoint at size {at} signs entries that are no longer stored (only {n} are)"
                                ),
                            );
                        } else if merkle::root(&tree, at).ok() == Some(cp.root) {
                            matched = at;
                        } else {
                            find(
                                Some(matched),
                                if matched == at - 1 {
                                    format!(
                                        "the entry no longer hashes to the root signed at size {at}"
                                    )
                                } else {
                                    format!(
                                        "entries {matched} to {} no longer hash to the root signed at size {at}",
                                        at - 1
                                    )
                                },
                            );
                        }
                    }
                }
            }
            if latest > next_entry {
                find(
                    Some(next_entry),
                    if latest == next_entry + 1 {
                        "the entry is missing".to_string()
                    } else {
                        format!("entries {next_entry} to {} are missing", latest - 1)
                    },
                );
            } else if contiguous && latest < next_entry {
                find(
                    None,
                    format!(
                        "the latest checkpoint is at size {latest} but {next_entry} entries are stored (a checkpoint was rolled back or removed)"
                    ),
                );
            }
        }
        // Name each changed entry once.
        report.findings.dedup();
        self.verify_records(verifiers, &mut report)?;
        Ok(report)
    }

    /// Checks every sealed record's signature with the agency's key (the verifier key's): a
    /// record changed, moved to another key or table, or written by another key is named.
    fn verify_records(
        &self,
        verifiers: &[NoteVerifier],
        report: &mut VerifyReport,
    ) -> Result<(), StoreError> {
        let tx = self.begin_read()?;
        let found = |case: CaseId, table: &str, k: &[u8], v: &[u8], report: &mut VerifyReport| {
            report.records += 1;
            let checked = verifiers
                .iter()
                .map(|verifier| sealed::check(verifier.key(), table, k, v))
                .reduce(|a, b| a.or(b))
                .unwrap_or(Ok(()));
            if let Err(why) = checked {
                report.findings.push(Finding {
                    case,
                    entry: None,
                    problem: format!(
                        "the {} record ({}) was altered: {why}",
                        table,
                        sealed::describe(table, k)
                    ),
                });
            }
        };
        for row in tx.open_table(CASE_RECORDS)?.iter()? {
            let (k, v) = row?;
            found(
                CaseId::from_bytes(*k.value()),
                CASE_RECORDS_NAME,
                k.value(),
                v.value(),
                report,
            );
        }
        for row in tx.open_table(EVIDENCE)?.iter()? {
            let (k, v) = row?;
            let (case, item) = k.value();
            found(
                CaseId::from_bytes(*case),
                EVIDENCE_NAME,
                &evidence_key(case, item),
                v.value(),
                report,
            );
        }
        for row in tx.open_table(RECEIVED)?.iter()? {
            let (k, v) = row?;
            // The inbox record's case is inside its sealing: the node log stands for it.
            found(NODE_LOG, RECEIVED_NAME, k.value(), v.value(), report);
        }
        match tx.open_table(super::drafts::DRAFTS) {
            Ok(t) => {
                for row in t.iter()? {
                    let (k, v) = row?;
                    // A draft's case is inside its sealing: the node log stands for it.
                    found(
                        NODE_LOG,
                        super::drafts::DRAFTS_NAME,
                        k.value(),
                        v.value(),
                        report,
                    );
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}

fn case_origin_from(verifier: &NoteVerifier, case: &CaseId) -> String {
    format!("{}/case/{case}", verifier.name())
}
