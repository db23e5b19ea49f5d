//! Moving a store written by the previous format to this release's (spec/BACKUP.md §4): a new
//! store file written in one transaction, then moved over the old one, so that either every
//! record is moved and the format number changed, or nothing is.
//!
//! Format 1 → 2: the values of `received`, `case-records` and `evidence`, in clear in format 1,
//! are sealed ([`super::sealed`]: encrypted under a key derived from the node's keys, bound to
//! their table and key, signed with the agency key); each is first decoded as the record it must
//! be, so a damaged one stops the migration instead of being sealed. The tables added since are
//! made empty. Nothing else changes: the logs, their checkpoints, the outbox and the chains
//! are the same bytes.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable};

use super::records::{CaseRecord, EvidenceRecord, MAX_OUTBOX_ENTRY, Received};
use super::{RecordKeys, STORE_FILE, STORE_FORMAT, StoreError, sealed};

/// The formats this release moves to its own.
pub const MIGRATES_FROM: &[u64] = &[1];

/// What a migration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The format found.
    pub from: u64,
    /// The format now.
    pub to: u64,
    /// Records sealed.
    pub sealed: usize,
}

/// The format of the store in `dir`, read without opening it as this release's store.
pub fn format_of(dir: &Path) -> Result<u64, StoreError> {
    let db = redb::ReadOnlyDatabase::open(dir.join(STORE_FILE))?;
    let tx = db.begin_read()?;
    let found = tx
        .open_table(super::META)?
        .get("format")?
        .map(|v| v.value());
    found.ok_or_else(|| StoreError::Corrupt("the store names no format".into()))
}

/// Moves the store in `dir` to [`STORE_FORMAT`]; `keys` seal what the new format seals. A store
/// already of this format is left as it is.
///
/// The new store is written as a new file beside the old, every table copied in one
/// transaction, then moved over it: the old file is untouched until then, and the new one holds
/// nothing of what the old format kept in clear (redb keeps freed pages in its file, so
/// rewriting the records in place would leave their old bytes behind).
pub fn migrate(dir: &Path, keys: &RecordKeys) -> Result<Migrated, StoreError> {
    let from = format_of(dir)?;
    if from == STORE_FORMAT {
        return Ok(Migrated {
            from,
            to: from,
            sealed: 0,
        });
    }
    if !MIGRATES_FROM.contains(&from) {
        return Err(StoreError::Format { found: from });
    }
    let next = dir.join(format!("{STORE_FILE}.migrating"));
    let _ = std::fs::remove_file(&next);
    let result = write_next(dir, &next, keys);
    match result {
        Ok(sealed) => {
            std::fs::rename(&next, dir.join(STORE_FILE))
                .map_err(|e| StoreError::Db(format!("cannot move the migrated store: {e}")))?;
            crate::files::sync_dir(dir).map_err(|e| StoreError::Db(format!("{e:#}")))?;
            Ok(Migrated {
                from,
                to: STORE_FORMAT,
                sealed,
            })
        }
        Err(e) => {
            let _ = std::fs::remove_file(&next);
            Err(e)
        }
    }
}

/// Writes the migrated store to `next`; returns how many records it sealed.
fn write_next(dir: &Path, next: &Path, keys: &RecordKeys) -> Result<usize, StoreError> {
    let old = redb::ReadOnlyDatabase::open(dir.join(STORE_FILE))?;
    let rx = old.begin_read()?;
    let db = Database::builder().create(next)?;
    let tx = db.begin_write()?;
    // Tables copied as they are; a table a store of format 1 never made is made empty.
    copy_tables!(
        rx,
        tx,
        super::META,
        super::CASES,
        super::LOG,
        super::INBOX,
        super::RECEIPTS,
        super::OUTBOX,
        super::QUEUE,
        super::CHAIN_IN,
        super::CHAIN_OUT,
        super::WITNESSED,
        super::WITNESS_OUT,
        super::ALERTS,
    );
    let mut sealed = 0;
    // The records format 1 kept in clear: each decoded, then sealed in its place.
    macro_rules! seal {
        ($table:expr, $name:expr, $record:ty, $what:literal, |$k:ident| $key:expr) => {{
            let mut to = tx.open_table($table)?;
            match rx.open_table($table) {
                Ok(from) => {
                    for row in from.iter()? {
                        let (k, v) = row?;
                        let $k = k.value();
                        check::<$record>(v.value(), $what)?;
                        let key: Vec<u8> = $key;
                        let v = sealed::seal(keys, $name, &key, v.value());
                        to.insert($k, v.as_slice())?;
                        sealed += 1;
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }};
    }
    seal!(
        super::RECEIVED,
        super::RECEIVED_NAME,
        Received,
        "inbox record",
        |k| k.to_vec()
    );
    seal!(
        super::CASE_RECORDS,
        super::CASE_RECORDS_NAME,
        CaseRecord,
        "case record",
        |k| k.to_vec()
    );
    seal!(
        super::EVIDENCE,
        super::EVIDENCE_NAME,
        EvidenceRecord,
        "evidence record",
        |k| { super::evidence_key(k.0, k.1) }
    );
    tx.open_table(super::drafts::DRAFTS)?;
    let mut meta = tx.open_table(super::META)?;
    meta.insert("format", STORE_FORMAT)?;
    super::table_versions(&mut meta)?;
    drop(meta);
    tx.commit()?;
    drop(db);
    std::fs::File::open(next)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::Db(format!("cannot sync the migrated store: {e}")))?;
    crate::files::restrict(next).map_err(|e| StoreError::Db(format!("{e:#}")))?;
    Ok(sealed)
}

/// A format-1 value must decode as the record it is before it is sealed.
fn check<R: serde::de::DeserializeOwned + serde::Serialize>(
    plain: &[u8],
    what: &'static str,
) -> Result<(), StoreError> {
    rogatory_proto::cbor::from_slice::<R>(plain, MAX_OUTBOX_ENTRY, what)
        .map(|_| ())
        .map_err(|e| {
            StoreError::Corrupt(format!(
                "a {what} of format 1 does not decode ({e}); nothing was migrated"
            ))
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use rogatory_proto::case::Side;
    use rogatory_proto::ids::{AgencyId, CaseId};
    use rogatory_proto::keys::AgencySecretKeys;

    use super::*;
    use crate::store::Store;
    use crate::store::records::CaseKind;

    /// A store as format 1 wrote it: the format number 1, a case record in clear.
    fn format_1(dir: &Path, value: &[u8], case: &CaseId) {
        drop(Store::open(dir).unwrap());
        let db = Database::create(dir.join(STORE_FILE)).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(crate::store::META)
            .unwrap()
            .insert("format", 1)
            .unwrap();
        tx.open_table(crate::store::CASE_RECORDS)
            .unwrap()
            .insert(case.as_bytes(), value)
            .unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn a_format_1_store_is_sealed_in_one_transaction_or_not_at_all() {
        let agency = AgencySecretKeys::generate();
        let keys = RecordKeys::new(&agency);
        let case = CaseId::generate();
        let mut record = CaseRecord::new(
            case,
            CaseKind::Mla,
            Side::Requesting,
            AgencyId::new("XB.DOJ-CA").unwrap(),
            1_790_000_100,
        );
        record.reference = Some("XA-2026-CY-0173".into());
        let clear = rogatory_proto::cbor::to_vec(&record).unwrap();

        // A damaged record stops the migration; the store stays format 1, as it was.
        let d = tempfile::tempdir().unwrap();
        format_1(d.path(), &clear[..clear.len() - 3], &case);
        let e = migrate(d.path(), &keys).unwrap_err();
        assert!(e.to_string().contains("nothing was migrated"), "{e}");
        assert_eq!(format_of(d.path()).unwrap(), 1);
        assert!(Store::open(d.path()).is_err(), "format 1 is still refused");

        // A sound one: sealed, readable with the keys, no longer in clear; format 2.
        let d = tempfile::tempdir().unwrap();
        format_1(d.path(), &clear, &case);
        let done = migrate(d.path(), &keys).unwrap();
        assert_eq!(
            done,
            Migrated {
                from: 1,
                to: STORE_FORMAT,
                sealed: 1
            }
        );
        let file = std::fs::read(d.path().join(STORE_FILE)).unwrap();
        assert!(!file.windows(15).any(|w| w == b"XA-2026-CY-0173"));
        let store = Store::open(d.path())
            .unwrap()
            .with_record_keys(RecordKeys::new(&agency));
        assert_eq!(store.case_record(&case).unwrap(), Some(record));
        // Again: nothing to do.
        drop(store);
        assert_eq!(migrate(d.path(), &keys).unwrap().sealed, 0);
    }
}
