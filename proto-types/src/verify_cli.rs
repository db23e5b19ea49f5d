//! The offline verifier's front end, shared by `rogatory-verify` and `rogatory audit verify`
//! so that both give the same verdicts from the same code (feature `cli`). It is the one part
//! of this crate that reads and writes files; the checks themselves are [`crate::bundle`].

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::audit::note::Policy;
use crate::bundle;
use crate::card::AgencyCard;
use crate::envelope::Recipient;
use crate::keys::AgencySecretKeys;

/// What to verify, and how to report it.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The bundles (from `rogatory case export`), one per agency.
    #[arg(required = true)]
    pub bundles: Vec<PathBuf>,
    /// A tlog-policy obtained independently, instead of each bundle's own.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// An agency card obtained independently (repeatable): it replaces the bundles' copy, and
    /// only its keys are trusted for that agency (unless its root is also given with --root).
    #[arg(long = "card")]
    pub cards: Vec<PathBuf>,
    /// An agency's root fingerprint obtained from the agency itself, as `AGENCY=FINGERPRINT`
    /// (repeatable): the bundles' key history of that agency must start from that root, and
    /// every key it certifies, before and after rotations, is then trusted (spec/KEYS.md).
    #[arg(long = "root", value_name = "AGENCY=FINGERPRINT")]
    pub roots: Vec<String>,
    /// Print the verdict as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report (timeline chart, parties, receipts, results)
    /// to this file, for a court clerk to open in any browser.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// The auditor's key directory (`rogatory keygen --out DIR`: `secret-keys.cose` and
    /// `card.cose`): reads the content a bundle exported `--for-auditor` discloses to that
    /// auditor, checking each message against its sender's signature and its envelope.
    #[arg(long, value_name = "AUDITOR-KEY")]
    pub key: Option<PathBuf>,
    /// Instead of the verdict, recompute the statistics of the bundles' cases (spec/STATS.md)
    /// from the content they disclose to the auditor (--key): the figures `rogatory stats`
    /// gives on the exporting node, for the cases the bundles hold. Each bundle is verified
    /// first (alone); if one fails, its findings are printed and no figure is.
    #[arg(long, requires = "key")]
    pub stats: bool,
    /// With --stats: the period's first day (YYYY-MM-DD) or second (YYYY-MM-DDTHH:MM:SSZ).
    #[arg(long, requires = "stats")]
    pub from: Option<String>,
    /// With --stats: the period's last day or second (default: now).
    #[arg(long, requires = "stats")]
    pub until: Option<String>,
    /// With --stats: victim counts from 1 to THRESHOLD − 1 are suppressed.
    #[arg(long, requires = "stats", default_value_t = crate::stats::DEFAULT_THRESHOLD)]
    pub threshold: u64,
    /// With --stats: the output format (--json is the same as --format json; --html writes
    /// the statistics' HTML report).
    #[arg(long, requires = "stats", value_enum, default_value_t = crate::stats::render::Format::Table)]
    pub format: crate::stats::render::Format,
}

/// An auditor's keys and card.
pub struct AuditorKeys {
    /// The secret keys.
    pub keys: AgencySecretKeys,
    /// The auditor's card.
    pub card: AgencyCard,
}

/// Reads an auditor's key directory (or its `secret-keys.cose`, with `card.cose` beside it):
/// keys in clear, as `rogatory keygen` writes them.
pub fn load_auditor_keys(path: &Path) -> Result<AuditorKeys, InputError> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let secret = if path.is_dir() {
        dir.join("secret-keys.cose")
    } else {
        path.to_path_buf()
    };
    if !secret.exists() && dir.join("secret-keys.enc").exists() {
        return Err(InputError(format!(
            "{}: the keys there are encrypted under a passphrase; give `rogatory audit verify --key` that directory, or keys made by `rogatory keygen`",
            dir.display()
        )));
    }
    let raw = zeroize::Zeroizing::new(read(&secret, 1 << 16)?);
    let keys = AgencySecretKeys::from_cose_key_set(&raw)
        .map_err(|e| InputError(format!("{}: {e}", secret.display())))?;
    let card_path = dir.join("card.cose");
    let card = AgencyCard::from_bytes(&read(&card_path, 1 << 20)?)
        .map_err(|e| InputError(format!("{}: {e}", card_path.display())))?;
    if card.signing_key() != keys.signing.verifying_key()
        || card.encryption_key() != keys.encryption.public_key()
    {
        return Err(InputError(format!(
            "{}: the card is not the card of these keys",
            card_path.display()
        )));
    }
    Ok(AuditorKeys { keys, card })
}

/// Why verification could not run (exit code 2): a file that cannot be read or is not what it
/// should be. A bundle that fails a check is a verdict, not an error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(String);

fn read(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    let f =
        std::fs::File::open(path).map_err(|e| InputError(format!("{}: {e}", path.display())))?;
    let mut out = Vec::new();
    f.take(limit)
        .read_to_end(&mut out)
        .map_err(|e| InputError(format!("{}: {e}", path.display())))?;
    Ok(out)
}

/// Writes `bytes` to a new temporary file beside `path` (created exclusively, under a random
/// name: a symbolic link planted there is never followed), syncs it and renames it into place
/// (a link at `path` itself is replaced, not written through): a reader never sees half a
/// report, and a report said written is on disk.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut rnd = [0u8; 8];
    crate::keys::fill_random(&mut rnd);
    let tmp = dir.join(format!(
        ".{}.{}.partial",
        name.to_string_lossy(),
        hex::encode(rnd)
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Reads the inputs, verifies, prints the report on standard output (and writes the HTML
/// report if asked). Returns whether every check held.
pub fn run(a: &VerifyArgs) -> Result<bool, InputError> {
    let auditor = match &a.key {
        Some(k) => Some(load_auditor_keys(k)?),
        None => None,
    };
    run_as(a, auditor.as_ref())
}

/// A period bound: `YYYY-MM-DD` (its first second, or with `end` its last) or
/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn period_bound(s: &str, end: bool) -> Option<u64> {
    if let Some(t) = crate::time::parse_utc(s) {
        return Some(t);
    }
    let day = crate::case::Day::parse(s)?;
    let first = u64::try_from(day.0).ok()?.checked_mul(86_400)?;
    Some(if end { first + 86_399 } else { first })
}

/// `--stats`: each bundle verified alone, its disclosed messages gathered per case, and the
/// figures computed as the exporting node computes them.
fn run_stats(
    a: &VerifyArgs,
    policy: Option<&Policy>,
    cards: &[AgencyCard],
    roots: &[(crate::ids::AgencyId, String)],
    reader: &Recipient<'_>,
) -> Result<bool, InputError> {
    use std::collections::BTreeMap;
    let bound = |v: &Option<String>, end: bool, default: u64| match v {
        None => Ok(default),
        Some(s) => period_bound(s, end).ok_or_else(|| {
            InputError(format!(
                "{s:?}: give the period as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
            ))
        }),
    };
    let from = bound(&a.from, false, 0)?;
    let until = bound(&a.until, true, crate::time::now_unix())?;
    if until < from || a.threshold < 1 {
        return Err(InputError(
            "the period ends before it starts, or the threshold is 0".into(),
        ));
    }
    let mut agency: Option<String> = None;
    let mut cases: BTreeMap<String, crate::stats::CaseMessages> = BTreeMap::new();
    let mut ok = true;
    for p in &a.bundles {
        let mut verifier = bundle::Verifier::new(policy, cards, Some(reader), 1);
        verifier.pin_roots(roots.to_vec());
        verifier
            .add_file(p)
            .map_err(|e| InputError(format!("{}: {e}", p.display())))?;
        let v = verifier
            .finish()
            .map_err(|e| InputError(format!("{}: cannot be read again: {e}", p.display())))?;
        let exporter = v
            .bundles
            .first()
            .map(|b| b.exporter.clone())
            .unwrap_or_default();
        match &agency {
            None => agency = Some(exporter.clone()),
            Some(x) if *x != exporter => {
                return Err(InputError(format!(
                    "{}: exported by {exporter}, the others by {x}: give one agency's bundles",
                    p.display()
                )));
            }
            Some(_) => {}
        }
        if !v.ok() {
            ok = false;
            eprintln!("{}: does not verify", p.display());
            eprint!("{}", bundle::report_text(&v));
            continue;
        }
        let case = v.case_id.clone();
        let id: crate::ids::CaseId = case
            .parse()
            .map_err(|_| InputError(format!("{}: case id {case}", p.display())))?;
        let entry = cases
            .entry(case.clone())
            .or_insert_with(|| crate::stats::CaseMessages {
                case_id: id,
                messages: Vec::new(),
            });
        if !entry.messages.is_empty() {
            return Err(InputError(format!(
                "{}: a second bundle of case {case}",
                p.display()
            )));
        }
        // Each envelope's place in the exporter's log of the case (spec/STATS.md §4).
        let mut logged: BTreeMap<String, u64> = BTreeMap::new();
        for e in &v.timeline {
            if e.agency == exporter
                && (e.event == "envelope-sent" || e.event == "envelope-received")
                && let Some(id) = &e.envelope
            {
                logged.entry(id.to_hex()).or_insert(e.seq);
            }
        }
        for m in &v.content {
            let parse = || -> Option<crate::stats::StatMessage> {
                let kind = m.message_type.parse().ok()?;
                Some(crate::stats::StatMessage {
                    from: crate::ids::AgencyId::new(&m.from).ok()?,
                    to: crate::ids::AgencyId::new(&m.to).ok()?,
                    sent_at: m.sent_at,
                    position: *logged.get(&m.envelope)?,
                    message: crate::message::Message::from_json(kind, &m.content).ok()?,
                })
            };
            entry.messages.push(parse().ok_or_else(|| {
                InputError(format!(
                    "{}: disclosed message {} cannot be read again, or is in no entry of the exporter's log",
                    p.display(),
                    m.envelope
                ))
            })?);
        }
        if v.bundles.iter().any(|b| b.disclosed < b.sent + b.received) {
            eprintln!(
                "{}: not every envelope's content is disclosed; the figures count only those that are",
                p.display()
            );
        }
    }
    if !ok {
        return Ok(false);
    }
    let Some(agency) = agency else {
        return Err(InputError("no bundle given".into()));
    };
    let params = crate::stats::Params {
        agency: crate::ids::AgencyId::new(&agency)
            .map_err(|e| InputError(format!("exporter {agency}: {e}")))?,
        from,
        until,
        threshold: a.threshold,
    };
    let material: Vec<_> = cases.into_values().collect();
    let figures = crate::stats::compute(&material, &params);
    if let Some(path) = &a.html {
        write_whole(path, crate::stats::render::html(&figures).as_bytes())
            .map_err(|e| InputError(format!("cannot write {}: {e}", path.display())))?;
    }
    let format = if a.json {
        crate::stats::render::Format::Json
    } else {
        a.format
    };
    print!("{}", crate::stats::render::render(&figures, format));
    Ok(true)
}

/// [`run`] with the auditor's keys already loaded (the node reads encrypted ones too).
pub fn run_as(a: &VerifyArgs, auditor: Option<&AuditorKeys>) -> Result<bool, InputError> {
    let policy = match &a.policy {
        Some(p) => {
            let text = String::from_utf8(read(p, 1 << 20)?)
                .map_err(|_| InputError(format!("{}: not text", p.display())))?;
            Some(Policy::parse(&text).map_err(|e| InputError(format!("{}: {e}", p.display())))?)
        }
        None => None,
    };
    let mut cards = Vec::new();
    for c in &a.cards {
        cards.push(
            AgencyCard::from_bytes(&read(c, 1 << 20)?)
                .map_err(|e| InputError(format!("{}: {e}", c.display())))?,
        );
    }
    let mut roots = Vec::new();
    for r in &a.roots {
        let (agency, fp) = r
            .split_once('=')
            .ok_or_else(|| InputError(format!("--root {r}: expected AGENCY=FINGERPRINT")))?;
        let agency = crate::ids::AgencyId::new(agency)
            .map_err(|e| InputError(format!("--root {r}: {e}")))?;
        roots.push((agency, fp.to_string()));
    }
    let reader = auditor.map(|k| Recipient {
        card: &k.card,
        keys: &k.keys,
    });
    if a.stats {
        let reader = reader.as_ref().ok_or_else(|| {
            InputError("--stats reads the disclosed content: give the auditor's --key".into())
        })?;
        return run_stats(a, policy.as_ref(), &cards, &roots, reader);
    }
    // Each bundle is read as a stream, twice (spec/BUNDLE.md §3): never held whole.
    let mut verifier =
        bundle::Verifier::new(policy.as_ref(), &cards, reader.as_ref(), a.bundles.len());
    verifier.pin_roots(roots);
    for p in &a.bundles {
        verifier
            .add_file(p)
            .map_err(|e| InputError(format!("{}: {e}", p.display())))?;
    }
    let v = verifier
        .finish()
        .map_err(|e| InputError(format!("a bundle cannot be read again: {e}")))?;
    if let Some(path) = &a.html {
        write_whole(path, bundle::report_html(&v).as_bytes())
            .map_err(|e| InputError(format!("cannot write {}: {e}", path.display())))?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| InputError(e.to_string()))?
        );
    } else {
        print!("{}", bundle::report_text(&v));
    }
    if let Some(path) = &a.html
        && !a.json
    {
        println!("HTML report: {}", path.display());
    }
    Ok(v.ok())
}
