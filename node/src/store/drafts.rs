//! Drafts waiting for approval (spec/PEOPLE.md §6):
//!
//! ```text
//! drafts  draft id → Draft (sealed CBOR)                        every draft, whatever its state
//! ```
//!
//! The table was added within format 2: a store without it gets it empty when opened.

use redb::{ReadableTable, TableDefinition};

use super::records::Draft;
use super::{Batch, Store, StoreError};

/// The table of drafts; its values are sealed ([`super::sealed`]).
pub(super) const DRAFTS_NAME: &str = "drafts";
pub(super) const DRAFTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new(DRAFTS_NAME);

impl Batch<'_> {
    /// A draft, as this batch sees it.
    pub fn draft(&self, id: &[u8; 32]) -> Result<Option<Draft>, StoreError> {
        let table = self.tx.open_table(DRAFTS)?;
        let Some(v) = table.get(id)? else {
            return Ok(None);
        };
        self.store
            .open_record(DRAFTS_NAME, id, v.value(), "draft")
            .map(Some)
    }

    /// Stores a draft (a new one, or its new state).
    pub fn put_draft(&mut self, d: &Draft) -> Result<(), StoreError> {
        let bytes = self.store.seal_record(DRAFTS_NAME, &d.id.0, d)?;
        self.tx
            .open_table(DRAFTS)?
            .insert(&d.id.0, bytes.as_slice())?;
        Ok(())
    }
}

impl Store {
    /// Every draft, oldest first.
    pub fn drafts(&self) -> Result<Vec<Draft>, StoreError> {
        let tx = self.begin_read()?;
        let table = match tx.open_table(DRAFTS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out: Vec<Draft> = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            out.push(self.open_record(DRAFTS_NAME, k.value(), v.value(), "draft")?);
        }
        out.sort_by_key(|d| d.drafted_at);
        Ok(out)
    }

    /// The draft whose id starts with `prefix` (hexadecimal, at least 8 digits): a range of the
    /// table's keys, only the matches opened.
    pub fn draft_starting_with(&self, prefix: &str) -> Result<Option<Draft>, StoreError> {
        let bound = |fill: char| {
            let full: String = prefix
                .chars()
                .chain(std::iter::repeat(fill))
                .take(64)
                .collect();
            let mut b = [0u8; 32];
            hex::decode_to_slice(&full, &mut b).map(|()| b)
        };
        let (Ok(low), Ok(high)) = (bound('0'), bound('f')) else {
            return Err(StoreError::Request(format!(
                "{prefix} is not a hexadecimal draft id"
            )));
        };
        let tx = self.begin_read()?;
        let table = match tx.open_table(DRAFTS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut hits = Vec::new();
        for row in table.range::<&[u8; 32]>(&low..=&high)?.take(2) {
            let (k, v) = row?;
            hits.push(self.open_record(DRAFTS_NAME, k.value(), v.value(), "draft")?);
        }
        match hits.len() {
            0 | 1 => Ok(hits.pop()),
            _ => Err(StoreError::Request(format!(
                "several drafts start with {prefix}: give more digits"
            ))),
        }
    }
}
