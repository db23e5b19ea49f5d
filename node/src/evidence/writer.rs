//! One item received to disk: chunks in order, each opened (checked), hashed, appended to its
//! partial file and synced now and then; at the end verified or quarantined.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use rogatory_proto::evidence::{self as stream, ContentKey};
use rogatory_proto::ids::Sha256Digest;
use sha2::Digest;

use crate::evidence::EvidenceRecord;

use super::serve::span;
use super::transfer::{Arrival, ItemKey, REFETCHES, Recorder, WriterEvent, partial_name};

/// An item's partial file, its durable prefix checked and hashed.
pub(super) struct Opened {
    hasher: sha2::Sha256,
    file: File,
    /// The first chunk not held.
    pub(super) next: u64,
}

/// Receives one item: in chunk order, checked, hashed, appended, synced now and then.
pub(super) struct Writer {
    pub(super) data: PathBuf,
    pub(super) recorder: std::sync::Arc<dyn Recorder>,
    pub(super) events: tokio::sync::mpsc::Sender<WriterEvent>,
    pub(super) record: EvidenceRecord,
    pub(super) key: ContentKey,
    pub(super) sync_every: u64,
}

impl Writer {
    fn item_key(&self) -> ItemKey {
        (self.record.case_id, self.record.key())
    }

    fn partial_path(&self) -> Result<PathBuf> {
        let d = crate::evidence::dir(&self.data)?.join(crate::evidence::PARTIAL);
        crate::files::create_private_dir(&d)?;
        Ok(d.join(partial_name(&self.record.case_id, &self.record.key())))
    }

    /// Opens the partial file and checks its durable prefix (recording it if it was shorter
    /// than recorded).
    pub(super) fn open(&self) -> Result<Opened> {
        let (hasher, file, next) = self.resume(self.record.item.size)?;
        if next != self.record.chunks_done {
            self.progress(next)?;
        }
        Ok(Opened { hasher, file, next })
    }

    /// Receives the rest of the item from `rx`; tells the event loop when it has ended.
    pub(super) fn run(self, opened: Opened, rx: std::sync::mpsc::Receiver<(u64, Vec<u8>)>) {
        let key = self.item_key();
        if let Err(e) = self.receive(opened, &rx) {
            tracing::error!(case = %key.0, item = %key.1, "evidence transfer stopped: {e:#}");
        }
        let _ = self.events.blocking_send(WriterEvent::Ended(key));
    }

    /// Opens and hashes the durable prefix of the partial file; returns the hasher, the file
    /// positioned at its end, and the chunks it holds.
    fn resume(&self, size: u64) -> Result<(sha2::Sha256, File, u64)> {
        let path = self.partial_path()?;
        let mut f = crate::files::open_no_follow(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let len = f.metadata()?.len();
        let mut done = self
            .record
            .chunks_done
            .min(len / stream::SEALED_CHUNK as u64)
            .min(stream::chunks(size));
        let mut hasher = sha2::Sha256::new();
        let mut buf = Vec::with_capacity(stream::SEALED_CHUNK);
        f.seek(SeekFrom::Start(0))?;
        for i in 0..done {
            let n = stream::plain_len(size, i)? + stream::TAG;
            buf.truncate(n);
            if buf.len() < n {
                buf.resize(n, 0);
            }
            f.read_exact(&mut buf)?;
            if stream::open_chunk(&self.key, size, i, &mut buf).is_err() {
                tracing::warn!(case = %self.record.case_id, chunk = i, "a stored chunk of a partial transfer does not open: fetching it again");
                done = i;
                break;
            }
            hasher.update(&buf);
        }
        f.set_len(stream::sealed_offset(done))?;
        f.seek(SeekFrom::Start(stream::sealed_offset(done)))?;
        Ok((hasher, f, done))
    }

    fn receive(
        &self,
        opened: Opened,
        rx: &std::sync::mpsc::Receiver<(u64, Vec<u8>)>,
    ) -> Result<()> {
        let size = self.record.item.size;
        let chunks = stream::chunks(size);
        let key = self.item_key();
        let Opened {
            mut hasher,
            mut file,
            mut next,
        } = opened;
        let mut held: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut unsynced = 0u64;
        let mut failed_at: HashMap<u64, u32> = HashMap::new();
        while next < chunks {
            let (first, bytes) = rx
                .recv()
                .context("the node is stopping; the transfer resumes at its next start")?;
            if first < next {
                let _ = self
                    .events
                    .blocking_send(WriterEvent::Consumed(key.clone()));
                continue;
            }
            held.insert(first, bytes);
            // Take responses in chunk order. A response asked for again (after a chunk that did
            // not open) may overlap others: chunks already written are skipped.
            loop {
                // Drop what is wholly behind.
                while let Some((&f, b)) = held.first_key_value() {
                    if f < next && span(size, f, b.len())? <= next {
                        held.remove(&f);
                        let _ = self
                            .events
                            .blocking_send(WriterEvent::Consumed(key.clone()));
                    } else {
                        break;
                    }
                }
                let Some((&f, _)) = held.range(..=next).next_back() else {
                    break;
                };
                let Some(bytes) = held.remove(&f) else {
                    break;
                };
                let _ = self
                    .events
                    .blocking_send(WriterEvent::Consumed(key.clone()));
                let mut at = 0usize;
                for i in f..next {
                    at += stream::plain_len(size, i)? + stream::TAG;
                }
                let mut broken = None;
                while at < bytes.len() && next < chunks {
                    let n = stream::plain_len(size, next)? + stream::TAG;
                    if bytes.len() < at + n {
                        broken = Some(next);
                        break;
                    }
                    let mut c = bytes[at..at + n].to_vec();
                    file.write_all(&c)?;
                    if stream::open_chunk(&self.key, size, next, &mut c).is_err() {
                        broken = Some(next);
                        break;
                    }
                    hasher.update(&c);
                    crate::evidence::BYTES_FETCHED
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    at += n;
                    next += 1;
                    unsynced += n as u64;
                }
                if broken.is_none() && at != bytes.len() {
                    broken = Some(next);
                }
                if let Some(b) = broken {
                    // Undo the chunk written, and ask for it again; a chunk that keeps failing
                    // quarantines the item.
                    file.set_len(stream::sealed_offset(b))?;
                    file.seek(SeekFrom::Start(stream::sealed_offset(b)))?;
                    let n = failed_at.entry(b).or_insert(0);
                    *n += 1;
                    tracing::warn!(case = %key.0, item = %key.1, chunk = b, times = *n, "a chunk from the holder does not open");
                    if *n > REFETCHES {
                        return self.quarantine(
                            file,
                            format!("chunk {b} from the holder does not verify (asked {n} times)"),
                        );
                    }
                    let _ = self
                        .events
                        .blocking_send(WriterEvent::Refetch(key.clone(), b));
                    break;
                }
                if unsynced >= self.sync_every {
                    file.sync_data()?;
                    self.progress(next)?;
                    let _ = self
                        .events
                        .blocking_send(WriterEvent::Progress(key.clone()));
                    unsynced = 0;
                }
            }
        }
        file.sync_all()?;
        let sha = Sha256Digest(hasher.finalize().into());
        if Some(sha) != self.record.item.sha256 {
            return self.quarantine(
                file,
                format!(
                    "the content's SHA-256 is {}, not the manifest's",
                    sha.to_hex()
                ),
            );
        }
        drop(file);
        let name = crate::evidence::blob_name(&sha, &self.key);
        let dir = crate::evidence::dir(&self.data)?;
        std::fs::rename(self.partial_path()?, dir.join(&name))?;
        File::open(&dir)?.sync_all()?;
        self.arrived(Arrival::Verified { blob: name })?;
        tracing::info!(case = %key.0, item = %key.1, size, "evidence received and verified");
        Ok(())
    }

    fn quarantine(&self, file: File, problem: String) -> Result<()> {
        drop(file);
        let d = crate::evidence::dir(&self.data)?.join(crate::evidence::QUARANTINE);
        crate::files::create_private_dir(&d)?;
        let from = self.partial_path()?;
        let to = d.join(from.file_name().context("partial file name")?);
        std::fs::rename(&from, &to)?;
        tracing::error!(case = %self.record.case_id, item = %self.record.key(), "evidence quarantined: {problem}");
        self.arrived(Arrival::Quarantined { problem })
    }

    fn progress(&self, done: u64) -> Result<()> {
        self.recorder
            .progress(self.record.case_id, self.record.key(), done)
            .context("cannot record the progress")
    }

    fn arrived(&self, outcome: Arrival) -> Result<()> {
        self.recorder
            .arrived(self.record.case_id, self.record.key(), outcome)
            .context("cannot record the arrival")
    }
}
