//! What a partner's evidence manifest and status reports may record (spec/EVIDENCE.md §4.1):
//! the items, within the quotas per manifest, case and partner and the free disk space.

use std::path::{Path, PathBuf};

use anyhow::Result;
use rogatory_proto::audit::entry::AuditEvent;
use rogatory_proto::evidence::{self as stream, ContentKey};
use rogatory_proto::ids::{AgencyId, CaseId, EnvelopeId, Sha256Digest};

use super::{EvidenceRecord, EvidenceState, Reported, free_space, human_size, key_context};

/// What one node accepts to fetch (configuration `[evidence]`).
#[derive(Debug, Clone)]
pub struct Quotas {
    /// Most items in one manifest.
    pub max_items_per_manifest: usize,
    /// Most items in one case.
    pub max_items_per_case: usize,
    /// Bytes of content (sealed) per case.
    pub per_case: u64,
    /// Bytes of content (sealed) per partner, every case together.
    pub per_partner: u64,
    /// Bytes of disk space evidence never takes.
    pub keep_free: u64,
    /// The data directory, whose file system's free space is checked (`None`: not checked).
    pub data: Option<PathBuf>,
}

impl Quotas {
    /// The quotas a configuration sets, for a node whose data directory is `data`.
    pub fn from_config(c: &crate::config::Evidence, data: &Path) -> Self {
        Self {
            max_items_per_manifest: c.max_items_per_manifest,
            max_items_per_case: c.max_items_per_case,
            per_case: c.quota_per_case_gib.saturating_mul(1 << 30),
            per_partner: c.quota_per_partner_gib.saturating_mul(1 << 30),
            keep_free: c.keep_free_mib.saturating_mul(1 << 20),
            data: Some(data.to_path_buf()),
        }
    }
}

impl Default for Quotas {
    /// The default quotas, without the free-space check.
    fn default() -> Self {
        Self {
            data: None,
            ..Self::from_config(&crate::config::Evidence::default(), Path::new("."))
        }
    }
}

/// Whether an incoming record's content counts against the quotas: it is, or will be, on disk.
fn takes_space(r: &EvidenceRecord) -> bool {
    !r.outgoing
        && matches!(
            r.state,
            EvidenceState::Expected | EvidenceState::Verified | EvidenceState::Quarantined
        )
        && r.item.transfer == Some(rogatory_proto::message::TransferMode::Send)
}

/// Records the items of a manifest received from `from` in `case`, within the batch that accepts
/// its envelope: `send` items are expected (their content key wrapped under the storage key),
/// the others listed. A `send` item beyond a quota (per case, per partner, the free disk space
/// less what is still to arrive) is recorded `refused` with the reason, and returned, so that
/// the holder is told in the same transaction; its content is never fetched. The inner `Err` is
/// a refusal of the whole manifest: too many items (`over-quota`), or an item id the partner
/// listed before (`illegal-transition`).
#[allow(clippy::too_many_arguments)]
pub fn record_manifest(
    batch: &mut crate::store::Batch<'_>,
    case: &CaseId,
    from: &AgencyId,
    envelope: EnvelopeId,
    manifest: &rogatory_proto::message::EvidenceManifest,
    storage: &[u8; 32],
    quotas: &Quotas,
    now: u64,
) -> Result<Result<Vec<String>, crate::cases::Refusal>, crate::store::StoreError> {
    use crate::cases::Refusal;
    use rogatory_proto::case::IllegalTransition;
    let n = manifest.items.len();
    if n > quotas.max_items_per_manifest {
        return Ok(Err(Refusal::OverQuota(format!(
            "the manifest lists {n} items; this node takes at most {} in one manifest",
            quotas.max_items_per_manifest
        ))));
    }
    let in_case = batch.evidence(case)?;
    if in_case.len() + n > quotas.max_items_per_case {
        return Ok(Err(Refusal::OverQuota(format!(
            "the case would hold {} items; this node keeps at most {} in one case",
            in_case.len() + n,
            quotas.max_items_per_case
        ))));
    }
    let known: std::collections::HashSet<String> =
        in_case.iter().map(EvidenceRecord::key).collect();
    // What is already taken: this case, this partner, and what is still to arrive.
    let mut case_bytes: u64 = in_case
        .iter()
        .filter(|r| takes_space(r))
        .map(|r| stream::sealed_len(r.item.size))
        .sum();
    let mut partner_bytes = 0u64;
    let mut to_arrive = 0u64;
    for r in batch.evidence_all()? {
        if takes_space(&r) && r.peer.as_ref() == Some(from) {
            partner_bytes = partner_bytes.saturating_add(stream::sealed_len(r.item.size));
        }
        if !r.outgoing && r.state == EvidenceState::Expected {
            let done = stream::sealed_offset(r.chunks_done);
            to_arrive =
                to_arrive.saturating_add(stream::sealed_len(r.item.size).saturating_sub(done));
        }
    }
    let free = match &quotas.data {
        Some(d) => Some(free_space(d).map_err(|e| {
            crate::store::StoreError::Db(format!("cannot read the free disk space: {e}"))
        })?),
        None => None,
    };
    let mut records = Vec::with_capacity(n);
    let mut refused = Vec::new();
    for item in &manifest.items {
        let mut item = item.clone();
        let key = item.content_key.take().map(ContentKey::from_bytes);
        let send = item.transfer == Some(rogatory_proto::message::TransferMode::Send);
        let mut record = EvidenceRecord {
            case_id: *case,
            wrapped_key: match (&key, send) {
                (Some(k), true) => Some(rogatory_proto::evidence::wrap_key(
                    storage,
                    &key_context(case, &format!("{from}/{}", item.item_id)),
                    k,
                )),
                _ => None,
            },
            item,
            outgoing: false,
            state: if send {
                EvidenceState::Expected
            } else {
                EvidenceState::Listed
            },
            peer: Some(from.clone()),
            manifest: Some(envelope),
            blob: None,
            chunks_done: 0,
            problem: None,
            added_at: now,
            added_by: None,
            announced_at: None,
            reports: Vec::new(),
        };
        if send && record.wrapped_key.is_none() {
            return Ok(Err(IllegalTransition(format!(
                "item {} is to be sent but the manifest carries no content key for it",
                record.item.item_id
            ))
            .into()));
        }
        if known.contains(&record.key()) {
            return Ok(Err(IllegalTransition(format!(
                "item {} was listed by an earlier manifest of this case; item ids are unique",
                record.item.item_id
            ))
            .into()));
        }
        if send {
            let size = stream::sealed_len(record.item.size);
            let problem = if case_bytes.saturating_add(size) > quotas.per_case {
                Some(format!(
                    "its {} would take this case's evidence beyond this node's quota of {} per case",
                    human_size(size),
                    human_size(quotas.per_case)
                ))
            } else if partner_bytes.saturating_add(size) > quotas.per_partner {
                Some(format!(
                    "its {} would take the evidence from {from} beyond this node's quota of {} per partner",
                    human_size(size),
                    human_size(quotas.per_partner)
                ))
            } else {
                free.and_then(|f| {
                    let needed = size.saturating_add(to_arrive).saturating_add(quotas.keep_free);
                    (needed > f).then(|| {
                        format!(
                            "its {} do not fit in this node's free disk space ({} free, {} still to arrive, {} kept free)",
                            human_size(size),
                            human_size(f),
                            human_size(to_arrive),
                            human_size(quotas.keep_free)
                        )
                    })
                })
            };
            match problem {
                Some(p) => {
                    tracing::warn!(%case, partner = %from, item = %record.item.item_id, "evidence refused: {p}");
                    record.state = EvidenceState::Refused;
                    record.problem = Some(p);
                    record.wrapped_key = None;
                    refused.push(record.key());
                }
                None => {
                    case_bytes = case_bytes.saturating_add(size);
                    partner_bytes = partner_bytes.saturating_add(size);
                    to_arrive = to_arrive.saturating_add(size);
                }
            }
        }
        records.push(record);
    }
    for r in &records {
        batch.put_evidence(r)?;
    }
    Ok(Ok(refused))
}

/// Applies a partner's `evidence-status` to the items this node handed over to it, within the
/// batch that accepts its envelope (spec/EVIDENCE.md §6): each item's state follows the report
/// and its chain of custody is extended with the partner's entries, each recorded with the time
/// this node received it. Returns the audit event of each item, in order. The inner `Err` is a
/// refusal that changed nothing: `unauthorized` for an item that is not this node's or was not
/// handed to `from`, or custody entries that are not `from`'s own acts in the time since the
/// hand-over (spec/PROTOCOL.md §5.4); `illegal-transition` for another SHA-256, or a report that
/// does not follow the item's state (verified, quarantined or refused once, after the
/// hand-over; exported after verified).
pub fn record_status(
    batch: &mut crate::store::Batch<'_>,
    case: &CaseId,
    from: &AgencyId,
    status: &rogatory_proto::message::EvidenceStatus,
    envelope: EnvelopeId,
    now: u64,
) -> Result<Result<Vec<(Sha256Digest, AuditEvent)>, crate::cases::Refusal>, crate::store::StoreError>
{
    use rogatory_proto::case::IllegalTransition;
    use rogatory_proto::case::authz::{Unauthorized, check_custody_report};
    use rogatory_proto::message::{ItemState, TransferMode};
    let illegal = |m: String| Ok(Err(IllegalTransition(m).into()));
    let mut records = Vec::with_capacity(status.items.len());
    let mut events = Vec::with_capacity(status.items.len());
    for it in &status.items {
        let id = &it.item_id;
        let Some(mut r) = batch
            .evidence_item(case, id)?
            .filter(|r| r.outgoing && r.peer.as_ref() == Some(from))
        else {
            return Ok(Err(Unauthorized(format!(
                "item {id} was not handed over to {from} in this case"
            ))
            .into()));
        };
        if r.item.sha256 != it.sha256 {
            return illegal(format!(
                "the report on item {id} names another SHA-256 than its manifest"
            ));
        }
        let (Some(state), Some(sha256)) = (it.state, it.sha256) else {
            return illegal(format!("the report on item {id} is incomplete"));
        };
        let handed_over_at = r.announced_at.unwrap_or(r.added_at);
        if let Err(e) = check_custody_report(it, from, handed_over_at, now) {
            return Ok(Err(e.into()));
        }
        let sent = r.item.transfer == Some(TransferMode::Send);
        let (next, event) = match (r.state, state) {
            (EvidenceState::Announced, ItemState::Verified) if sent => {
                (EvidenceState::Verified, AuditEvent::EvidenceVerified)
            }
            (EvidenceState::Announced, ItemState::Quarantined) if sent => {
                (EvidenceState::Quarantined, AuditEvent::EvidenceQuarantined)
            }
            (EvidenceState::Announced, ItemState::Refused) if sent => {
                (EvidenceState::Refused, AuditEvent::EvidenceRefused)
            }
            (EvidenceState::Verified, ItemState::Exported) => {
                (EvidenceState::Verified, AuditEvent::EvidenceExported)
            }
            (now, _) => {
                return illegal(format!(
                    "item {id} is {} here; a report that it was {} does not follow",
                    now.as_str(),
                    state.as_str()
                ));
            }
        };
        r.state = next;
        if matches!(state, ItemState::Quarantined | ItemState::Refused) {
            r.problem.clone_from(&it.problem);
        }
        r.reports.push(Reported {
            first: r.item.custody.len(),
            count: it.custody.len(),
            by: from.clone(),
            recorded_at: now,
            envelope,
        });
        r.item.custody.extend(it.custody.iter().cloned());
        events.push((sha256, event));
        records.push(r);
    }
    for r in &records {
        batch.put_evidence(r)?;
    }
    Ok(Ok(events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use rogatory_proto::message::{EvidenceItem, EvidenceManifest, TransferMode};

    fn item(id: &str, size: u64, mode: TransferMode) -> EvidenceItem {
        EvidenceItem {
            item_id: id.into(),
            description: "records".into(),
            media_type: "text/csv".into(),
            size,
            sha256: Some(Sha256Digest([1; 32])),
            transfer: Some(mode),
            ..Default::default()
        }
    }

    /// A partner's manifest that repeats an item id, or lists a `send` item without its key,
    /// is refused and records nothing.
    #[test]
    fn a_manifest_that_repeats_an_item_or_lacks_a_key_is_refused_whole() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path())
            .unwrap()
            .with_record_keys(crate::store::RecordKeys::new(
                &rogatory_proto::keys::AgencySecretKeys::generate(),
            ));
        let case = CaseId::from_bytes([4; 16]);
        let from = AgencyId::new("XB.DOJ-CA").unwrap();
        let storage = [9u8; 32];
        let env = Sha256Digest([5; 32]);
        let mut send = item("E1", 10, TransferMode::Send);
        send.content_key = Some([7; 32]);
        let manifest = |items| EvidenceManifest {
            request: None,
            items,
            note: None,
        };
        let quotas = crate::evidence::Quotas {
            max_items_per_manifest: 3,
            max_items_per_case: 5,
            per_case: stream::sealed_len(100) + stream::sealed_len(10),
            ..Default::default()
        };
        let record = |m: &EvidenceManifest| {
            let mut b = store.batch().unwrap();
            let r = crate::evidence::record_manifest(
                &mut b, &case, &from, env, m, &storage, &quotas, 0,
            )
            .unwrap();
            b.commit().unwrap();
            r.map_err(|e| e.to_string())
        };
        let keyless = item("E2", 10, TransferMode::Send);
        assert!(
            record(&manifest(vec![keyless]))
                .unwrap_err()
                .contains("no content key")
        );
        assert!(store.evidence(&case).unwrap().is_empty());
        // Too many items: refused whole.
        let many = (0..4)
            .map(|i| item(&format!("H{i}"), 1, TransferMode::HashOnly))
            .collect();
        assert!(record(&manifest(many)).unwrap_err().contains("at most 3"));
        assert!(record(&manifest(vec![send.clone()])).unwrap().is_empty());
        let again = record(&manifest(vec![item("E3", 1, TransferMode::HashOnly), send]));
        assert!(again.unwrap_err().contains("earlier manifest"));
        // Beyond the case's quota: listed, refused, keyless, and returned to tell the holder.
        let mut big = item("E4", 101, TransferMode::Send);
        big.content_key = Some([8; 32]);
        let mut fits = item("E5", 100, TransferMode::Send);
        fits.content_key = Some([8; 32]);
        assert_eq!(
            record(&manifest(vec![big, fits])).unwrap(),
            ["XB.DOJ-CA/E4"]
        );
        let e4 = store.evidence_item(&case, "XB.DOJ-CA/E4").unwrap().unwrap();
        assert_eq!(e4.state, EvidenceState::Refused);
        assert!(e4.problem.unwrap().contains("quota"));
        assert!(e4.wrapped_key.is_none());
        let e5 = store.evidence_item(&case, "XB.DOJ-CA/E5").unwrap().unwrap();
        assert_eq!(e5.state, EvidenceState::Expected);
        // The case holds 3 items; 3 more would be 6, beyond 5.
        let three = (0..3)
            .map(|i| item(&format!("H{i}"), 1, TransferMode::HashOnly))
            .collect();
        assert!(record(&manifest(three)).unwrap_err().contains("at most 5"));
        for k in ["XB.DOJ-CA/E4", "XB.DOJ-CA/E5"] {
            let mut b = store.batch().unwrap();
            let mut r = b.evidence_item(&case, k).unwrap().unwrap();
            r.state = EvidenceState::Listed;
            b.put_evidence(&r).unwrap();
            b.commit().unwrap();
        }
        let held = store.evidence(&case).unwrap();
        let keys: Vec<String> = held.iter().map(EvidenceRecord::key).collect();
        assert_eq!(
            keys,
            ["XB.DOJ-CA/E1", "XB.DOJ-CA/E4", "XB.DOJ-CA/E5"],
            "nothing of the refused manifests was kept"
        );
        assert_eq!(held[0].state, EvidenceState::Expected);
        // Its key is kept wrapped, and unwraps under the storage key only.
        let w = held[0].wrapped_key.clone().unwrap();
        let ctx = crate::evidence::key_context(&case, &held[0].key());
        assert_eq!(
            stream::unwrap_key(&storage, &ctx, &w).unwrap().as_bytes(),
            &[7; 32]
        );
    }

    /// A partner's report on evidence is applied only to items handed over to that partner, with
    /// their SHA-256, in order (verified or quarantined once, exported after verified); a refused
    /// report changes nothing, not even its other items.
    #[test]
    fn an_evidence_report_must_name_an_item_handed_to_its_sender_in_order() {
        use rogatory_proto::audit::entry::AuditEvent;
        use rogatory_proto::message::{CustodyEntry, EvidenceStatus, ItemState, ItemStatus};
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path())
            .unwrap()
            .with_record_keys(crate::store::RecordKeys::new(
                &rogatory_proto::keys::AgencySecretKeys::generate(),
            ));
        let case = CaseId::from_bytes([6; 16]);
        let partner = AgencyId::new("XA.MOJ-CA").unwrap();
        let other = AgencyId::new("XC.POLICE").unwrap();
        let mut b = store.batch().unwrap();
        for (id, mode, state) in [
            ("E1", TransferMode::Send, EvidenceState::Announced),
            ("E2", TransferMode::HashOnly, EvidenceState::Announced),
            ("E3", TransferMode::Send, EvidenceState::Staged),
        ] {
            b.put_evidence(&EvidenceRecord {
                case_id: case,
                item: item(id, 10, mode),
                outgoing: true,
                state,
                peer: (state != EvidenceState::Staged).then(|| partner.clone()),
                manifest: None,
                blob: None,
                wrapped_key: None,
                chunks_done: 0,
                problem: None,
                added_at: 0,
                added_by: None,
                announced_at: None,
                reports: Vec::new(),
            })
            .unwrap();
        }
        b.commit().unwrap();
        let news = |id: &str, state, sha| ItemStatus {
            item_id: id.into(),
            sha256: Some(Sha256Digest([sha; 32])),
            state: Some(state),
            custody: vec![CustodyEntry {
                at: "2026-12-04T10:00:00Z".into(),
                actor: "XA.MOJ-CA".into(),
                action: state.as_str().into(),
                note: None,
            }],
            problem: None,
        };
        let report = |from: &AgencyId, items: Vec<ItemStatus>| {
            let mut b = store.batch().unwrap();
            let r = crate::evidence::record_status(
                &mut b,
                &case,
                from,
                &EvidenceStatus { items },
                Sha256Digest([9; 32]),
                rogatory_proto::time::parse_utc("2026-12-04T12:00:00Z").unwrap(),
            )
            .unwrap();
            b.commit().unwrap();
            r
        };
        for (from, items, says) in [
            (
                &other,
                vec![news("E1", ItemState::Verified, 1)],
                "not handed over to XC.POLICE",
            ),
            (
                &partner,
                vec![news("E9", ItemState::Verified, 1)],
                "not handed over",
            ),
            (
                &partner,
                vec![news("E3", ItemState::Verified, 1)],
                "not handed over",
            ),
            (
                &partner,
                vec![news("E1", ItemState::Verified, 2)],
                "another SHA-256",
            ),
            (
                &partner,
                vec![news("E1", ItemState::Exported, 1)],
                "announced here",
            ),
            (
                &partner,
                vec![news("E2", ItemState::Verified, 1)],
                "announced here",
            ),
            (
                &partner,
                vec![
                    news("E1", ItemState::Verified, 1),
                    news("E2", ItemState::Verified, 1),
                ],
                "item E2",
            ),
        ] {
            let e = report(from, items).unwrap_err();
            assert!(e.to_string().contains(says), "{says}: {e}");
        }
        let untouched = store.evidence(&case).unwrap();
        assert!(untouched.iter().all(|r| r.item.custody.is_empty()));
        assert_eq!(untouched[0].state, EvidenceState::Announced);

        let events = report(&partner, vec![news("E1", ItemState::Verified, 1)]).unwrap();
        assert_eq!(
            events,
            [(Sha256Digest([1; 32]), AuditEvent::EvidenceVerified)]
        );
        let e = report(&partner, vec![news("E1", ItemState::Quarantined, 1)]).unwrap_err();
        assert!(e.to_string().contains("verified here"), "{e}");
        let events = report(&partner, vec![news("E1", ItemState::Exported, 1)]).unwrap();
        assert_eq!(
            events,
            [(Sha256Digest([1; 32]), AuditEvent::EvidenceExported)]
        );
        let r = store.evidence_item(&case, "E1").unwrap().unwrap();
        assert_eq!(r.state, EvidenceState::Verified);
        let actions: Vec<_> = r.item.custody.iter().map(|c| c.action.as_str()).collect();
        assert_eq!(actions, ["verified", "exported"]);
    }
}
