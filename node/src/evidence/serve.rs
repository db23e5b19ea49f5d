//! Chunks served to partners over `/rogatory/evidence/1` (spec/EVIDENCE.md §4): only items
//! this node listed to the asking partner, straight from their sealed files.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::Result;
use rogatory_proto::evidence::{self as stream, ChunkRequest, ChunkStatus};
use rogatory_proto::ids::AgencyId;

use crate::evidence::EvidenceState;
use crate::store::Store;

/// Answers a chunk request from `from` (blocking: call it off the event loop). Only items this
/// node listed to `from` in a manifest are served, from their sealed file.
pub fn serve(store: &Store, data: &Path, from: &AgencyId, request: &[u8]) -> Vec<u8> {
    let status = |s: ChunkStatus| vec![s as u8];
    let r = match ChunkRequest::decode(request) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(%from, "a chunk request does not parse: {e}");
            return status(ChunkStatus::BadRequest);
        }
    };
    // One lookup by key: this runs for every request of a transfer.
    let record = match store.evidence_item(&r.case, &r.item) {
        Ok(found) => found.filter(|e| {
            e.outgoing && e.peer.as_ref() == Some(from) && e.state == EvidenceState::Announced
        }),
        Err(e) => {
            tracing::error!("cannot read the evidence records: {e}");
            return status(ChunkStatus::Unavailable);
        }
    };
    let Some((record, blob)) = record.and_then(|r| r.blob.clone().map(|b| (r, b))) else {
        tracing::warn!(%from, case = %r.case, item = %r.item, "asked for evidence not listed to it");
        return status(ChunkStatus::Unknown);
    };
    let size = record.item.size;
    let chunks = stream::chunks(size);
    if r.first >= chunks || r.first + r.count > chunks {
        return status(ChunkStatus::OutOfRange);
    }
    let mut len = 0usize;
    for i in r.first..r.first + r.count {
        len += stream::plain_len(size, i).unwrap_or(0) + stream::TAG;
    }
    let mut out = vec![0u8; 1 + len];
    out[0] = ChunkStatus::Ok as u8;
    let read = (|| -> std::io::Result<()> {
        let mut f = File::open(data.join(crate::evidence::DIR).join(&blob))?;
        f.seek(SeekFrom::Start(stream::sealed_offset(r.first)))?;
        f.read_exact(&mut out[1..])
    })();
    match read {
        Ok(()) => {
            crate::evidence::BYTES_SERVED
                .fetch_add(len as u64, std::sync::atomic::Ordering::Relaxed);
            out
        }
        Err(e) => {
            tracing::error!(case = %r.case, item = %r.item, "cannot read evidence content: {e}");
            status(ChunkStatus::Unavailable)
        }
    }
}

/// How far a response of `len` bytes starting at chunk `first` reaches (the chunk after its
/// last whole one).
pub(super) fn span(size: u64, first: u64, len: usize) -> Result<u64> {
    let mut i = first;
    let mut at = 0usize;
    while i < stream::chunks(size) {
        let n = stream::plain_len(size, i)? + stream::TAG;
        if at + n > len {
            break;
        }
        at += n;
        i += 1;
    }
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::EvidenceRecord;
    use rogatory_proto::ids::{CaseId, Sha256Digest};
    use rogatory_proto::message::{EvidenceItem, TransferMode};

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

    /// Only the partner an item was listed to gets its chunks, only within the item, and a
    /// request that does not parse gets a status, never a panic.
    #[test]
    fn chunks_are_served_only_to_the_partner_the_item_was_listed_to() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path())
            .unwrap()
            .with_record_keys(crate::store::RecordKeys::new(
                &rogatory_proto::keys::AgencySecretKeys::generate(),
            ));
        let case = CaseId::from_bytes([3; 16]);
        let partner = AgencyId::new("XA.MOJ-CA").unwrap();
        let other = AgencyId::new("XC.POLICE").unwrap();
        let size = stream::CHUNK as u64 + 10;
        let blob = format!("{}-{}", "a".repeat(64), "b".repeat(16));
        let dir = crate::evidence::dir(t.path()).unwrap();
        let sealed = vec![0x42u8; stream::sealed_len(size) as usize];
        std::fs::write(dir.join(&blob), &sealed).unwrap();
        let record = |state| EvidenceRecord {
            case_id: case,
            item: item("E1", size, TransferMode::Send),
            outgoing: true,
            state,
            peer: Some(partner.clone()),
            manifest: None,
            blob: Some(blob.clone()),
            wrapped_key: None,
            chunks_done: 0,
            problem: None,
            added_at: 0,
            added_by: None,
            announced_at: None,
            reports: Vec::new(),
        };
        let put = |r: &EvidenceRecord| {
            let mut b = store.batch().unwrap();
            b.put_evidence(r).unwrap();
            b.commit().unwrap();
        };
        let ask = |from: &AgencyId, item: &str, first, count| {
            serve(
                &store,
                t.path(),
                from,
                &ChunkRequest {
                    case,
                    item: item.into(),
                    first,
                    count,
                }
                .encode(),
            )
        };
        // Staged: its manifest has not gone out, so nobody may fetch it.
        put(&record(EvidenceState::Staged));
        assert_eq!(ask(&partner, "E1", 0, 1), [ChunkStatus::Unknown as u8]);
        put(&record(EvidenceState::Announced));
        let ok = ask(&partner, "E1", 0, 2);
        assert_eq!(ok[0], ChunkStatus::Ok as u8);
        assert_eq!(&ok[1..], &sealed[..]);
        assert_eq!(ask(&other, "E1", 0, 1), [ChunkStatus::Unknown as u8]);
        assert_eq!(ask(&partner, "E9", 0, 1), [ChunkStatus::Unknown as u8]);
        assert_eq!(ask(&partner, "E1", 1, 2), [ChunkStatus::OutOfRange as u8]);
        assert_eq!(ask(&partner, "E1", 2, 1), [ChunkStatus::OutOfRange as u8]);
        assert_eq!(
            serve(&store, t.path(), &partner, b"\xa1\x00"),
            [ChunkStatus::BadRequest as u8]
        );
        // The file gone (a disk problem): unavailable, not a crash.
        std::fs::remove_file(dir.join(&blob)).unwrap();
        assert_eq!(ask(&partner, "E1", 0, 1), [ChunkStatus::Unavailable as u8]);
    }
}
