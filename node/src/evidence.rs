//! Evidence content on disk (spec/EVIDENCE.md §3): content-addressed files beside the database,
//! sealed in the STREAM form of `rogatory_proto::evidence`, and the records that describe them.
//!
//! ```text
//! DATA/evidence/<sha256>-<key id>      an item's sealed content (the chunks one after another):
//!                                      named by the SHA-256 of its plaintext and the id of the
//!                                      key it is sealed under; complete and checked
//! DATA/evidence/staging/…              being written; never counts as anything, removed freely
//! ```
//!
//! A file enters `evidence/` only by a rename once complete and synced, so a half-written file
//! never counts as held. Content is never kept in clear: the content key is wrapped under the
//! node's storage key in the item's record (`evidence` table).
//!
//! Reading and hashing stream through one chunk at a time: memory stays constant whatever the
//! file size.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rogatory_proto::audit::entry::AuditEvent;
use rogatory_proto::evidence::{self as stream, CHUNK, ContentKey};
use rogatory_proto::ids::{AgencyId, CaseId, EnvelopeId, Sha256Digest};
use sha2::Digest;

/// Directory of evidence content, in the data directory.
pub const DIR: &str = "evidence";
/// Directory of content being written, inside [`DIR`].
pub const STAGING: &str = "staging";
/// Directory of content being received, inside [`DIR`]: `<case>-<record key>` per item.
pub const PARTIAL: &str = "partial";
/// Directory of content that arrived and did not match its manifest, inside [`DIR`].
pub const QUARANTINE: &str = "quarantine";

pub use crate::store::records::{EvidenceRecord, EvidenceState, Reported};

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

/// Bytes free for this node's user on the file system holding `dir`.
pub fn free_space(dir: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// A binary size for people.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
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

/// What a wrapped content key is bound to: the case and the item.
pub fn key_context(case: &CaseId, item_id: &str) -> Vec<u8> {
    let mut c = b"rogatory evidence key\0".to_vec();
    c.extend_from_slice(case.as_bytes());
    c.extend_from_slice(item_id.as_bytes());
    c
}

/// The file name of an item's sealed content.
pub fn blob_name(sha256: &Sha256Digest, key: &ContentKey) -> String {
    format!("{}-{}", sha256.to_hex(), hex::encode(key.id()))
}

/// Whether `name` is a blob name this module writes (no path separators, no dots).
pub fn is_blob_name(name: &str) -> bool {
    let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    name.len() == 64 + 1 + 16
        && name.as_bytes()[64] == b'-'
        && lower_hex(&name[..64])
        && lower_hex(&name[65..])
}

/// The evidence directory of a data directory (created if needed, mode 0700).
pub fn dir(data: &Path) -> Result<PathBuf> {
    let d = data.join(DIR);
    crate::files::create_private_dir(&d.join(STAGING))?;
    Ok(d)
}

/// A file hashed, and sealed if asked.
#[derive(Debug)]
pub struct Hashed {
    /// SHA-256 of the plaintext.
    pub sha256: Sha256Digest,
    /// Its size.
    pub size: u64,
    /// The sealed copy in the staging directory, and its key (for `send` items).
    pub sealed: Option<(String, ContentKey)>,
}

/// Reads `src` once, in chunks: hashes it and, with `seal`, writes its sealed form under a
/// fresh key into `data`'s staging directory (synced). `progress` is told the bytes read.
pub fn hash_and_seal(
    src: &Path,
    data: Option<&Path>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Hashed> {
    let file = File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", src.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", src.display());
    }
    let size = meta.len();
    let mut reader = BufReader::with_capacity(CHUNK, file);
    let mut hasher = sha2::Sha256::new();
    let mut out = match data {
        Some(d) => {
            let staging = dir(d)?.join(STAGING);
            let key = ContentKey::generate();
            let mut rnd = [0u8; 8];
            rogatory_proto::keys::fill_random(&mut rnd);
            let name = format!("add-{}", hex::encode(rnd));
            let path = staging.join(&name);
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            Some((f, name, key))
        }
        None => None,
    };
    let mut buf = Vec::with_capacity(CHUNK + stream::TAG);
    let mut done = 0u64;
    for index in 0..stream::chunks(size) {
        let want = stream::plain_len(size, index)?;
        // Reused: only the first chunk (or a shorter last one) changes its length.
        buf.truncate(want);
        if buf.len() < want {
            buf.resize(want, 0);
        }
        reader
            .read_exact(&mut buf)
            .with_context(|| format!("{} changed while it was read", src.display()))?;
        hasher.update(&buf);
        if let Some((f, _, key)) = out.as_mut() {
            stream::seal_chunk(key, size, index, &mut buf)?;
            f.write_all(&buf).context("cannot write the sealed copy")?;
        }
        done += want as u64;
        progress(done);
    }
    let mut extra = [0u8; 1];
    if reader.read(&mut extra)? != 0 {
        bail!("{} grew while it was read", src.display());
    }
    let sha256 = Sha256Digest(hasher.finalize().into());
    let sealed = match out {
        Some((f, name, key)) => {
            f.sync_all().context("cannot sync the sealed copy")?;
            Some((name, key))
        }
        None => None,
    };
    Ok(Hashed {
        sha256,
        size,
        sealed,
    })
}

/// Moves a staged sealed copy into the evidence directory under its content name, after
/// checking its length; the rename is synced. An identical blob already there is kept.
pub fn commit_staged(data: &Path, staged: &str, name: &str, size: u64) -> Result<()> {
    if !staged.starts_with("add-") || staged.contains(['/', '\\', '.']) || !is_blob_name(name) {
        bail!("not a staged evidence file: {staged}");
    }
    let d = dir(data)?;
    let from = d.join(STAGING).join(staged);
    let len = fs::metadata(&from)
        .with_context(|| format!("the staged file {staged} is missing"))?
        .len();
    if len != stream::sealed_len(size) {
        bail!(
            "the staged file {staged} is {len} bytes; {} were expected",
            stream::sealed_len(size)
        );
    }
    fs::rename(&from, d.join(name)).with_context(|| format!("cannot move {staged} into place"))?;
    File::open(&d)
        .and_then(|f| f.sync_all())
        .context("cannot sync the evidence directory")?;
    Ok(())
}

/// Reads a stored item's sealed content, opening every chunk, and returns the SHA-256 of the
/// plaintext; with `out`, also writes the plaintext there. Fails on the first chunk that does
/// not open.
pub fn read_blob(
    data: &Path,
    name: &str,
    key: &ContentKey,
    size: u64,
    mut out: Option<&mut dyn Write>,
    progress: &dyn Fn(u64),
) -> Result<Sha256Digest> {
    if !is_blob_name(name) {
        bail!("not an evidence file name: {name}");
    }
    let path = data.join(DIR).join(name);
    let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata()?.len();
    if len != stream::sealed_len(size) {
        bail!(
            "{} is {len} bytes; {} were expected",
            path.display(),
            stream::sealed_len(size)
        );
    }
    let mut reader = BufReader::with_capacity(stream::SEALED_CHUNK, file);
    let mut hasher = sha2::Sha256::new();
    let mut buf = Vec::with_capacity(stream::SEALED_CHUNK);
    let mut done = 0u64;
    for index in 0..stream::chunks(size) {
        let n = stream::plain_len(size, index)? + stream::TAG;
        buf.truncate(n);
        if buf.len() < n {
            buf.resize(n, 0);
        }
        reader.read_exact(&mut buf)?;
        stream::open_chunk(key, size, index, &mut buf)?;
        hasher.update(&buf);
        if let Some(w) = out.as_mut() {
            w.write_all(&buf)?;
        }
        done += buf.len() as u64;
        progress(done);
    }
    Ok(Sha256Digest(hasher.finalize().into()))
}

/// A media type from a file name's extension (the user may give one instead).
pub fn media_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "eml" => "message/rfc822",
        "html" | "htm" => "text/html",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_hashed_sealed_and_read_back_and_a_changed_byte_is_found() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("records.csv");
        let content: Vec<u8> = (0..(2 * CHUNK + 100)).map(|i| (i % 251) as u8).collect();
        fs::write(&src, &content).unwrap();
        let data = t.path().join("data");
        let h = hash_and_seal(&src, Some(&data), &|_| {}).unwrap();
        assert_eq!(h.size, content.len() as u64);
        assert_eq!(h.sha256, Sha256Digest::of(&content));
        let (staged, key) = h.sealed.unwrap();
        let name = blob_name(&h.sha256, &key);
        assert!(is_blob_name(&name));
        commit_staged(&data, &staged, &name, h.size).unwrap();
        let stored = fs::read(data.join(DIR).join(&name)).unwrap();
        assert_eq!(stored.len() as u64, stream::sealed_len(h.size));
        assert!(
            !stored.windows(64).any(|w| w == &content[1000..1064]),
            "the content is not kept in clear"
        );
        let mut out = Vec::new();
        let d = read_blob(&data, &name, &key, h.size, Some(&mut out), &|_| {}).unwrap();
        assert_eq!(d, h.sha256);
        assert_eq!(out, content);
        // One bit changed on disk: the chunk that holds it does not open.
        let mut bad = stored.clone();
        bad[CHUNK + 40] ^= 1;
        fs::write(data.join(DIR).join(&name), &bad).unwrap();
        let e = read_blob(&data, &name, &key, h.size, None, &|_| {}).unwrap_err();
        assert!(
            format!("{e:#}").contains("chunk 1 does not verify"),
            "{e:#}"
        );
        // Truncated: refused by its length.
        fs::write(data.join(DIR).join(&name), &stored[..stored.len() - 1]).unwrap();
        assert!(read_blob(&data, &name, &key, h.size, None, &|_| {}).is_err());
        // Hash only: nothing is written.
        let h = hash_and_seal(&src, None, &|_| {}).unwrap();
        assert!(h.sealed.is_none());
        assert_eq!(h.sha256, Sha256Digest::of(&content));
        assert!(commit_staged(&data, "../x", &name, 1).is_err());
    }
}
