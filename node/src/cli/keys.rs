//! `rogatory keys …`: the agency's root of trust, rotation and revocation of its online keys
//! (spec/KEYS.md).
//!
//! Every change is a statement of the key history signed by the root. Where the root key is
//! at hand (`--root-key FILE`, or still in the data directory) a command prepares, signs and
//! applies in one go. Where it is on another machine (or k of n officials hold it), `--prepare`
//! writes the statement, `keys root sign` adds each root signature, and `--apply` takes it up.
//! A running node restarts itself on the new keys; nothing queued is lost.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rogatory_proto::card::{AgencyCard, CardDetails, KeyUse};
use rogatory_proto::keyhist::{KeyHistory, RevocationReason, StatementBody, statement};
use rogatory_proto::keys::{EncryptionSecretKey, SigningKey};
use rogatory_proto::time::{format_unix, now_unix, parse_utc};

use crate::files;
use crate::keydir::{self, KeyDir, ROOT_KEY_ENCRYPTED, ROOT_KEY_FILE};

/// `rogatory keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// The root of trust: show it, move its key off this machine, sign a prepared statement.
    #[command(subcommand)]
    Root(RootCommand),
    /// Show the agency's key history: every statement, who signed it, every key and its state.
    History {
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace the online signing key, the encryption key, or both (the default): a new card,
    /// certified by the root and endorsed by the key it replaces. Partners learn it over the
    /// network; envelopes already sealed or in flight are still delivered and answered.
    Rotate(RotateArgs),
    /// Revoke an online key (a lost machine, a compromise): partners then refuse anything it
    /// signs, whatever time it claims. Revoking a current key also rotates it.
    Revoke(RevokeArgs),
}

/// `rogatory keys root` subcommands.
#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// The root's fingerprint, threshold and keys, and whether its key is still on this machine.
    Show {
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Write the root key to FILE (removable media, an offline machine) and remove it from the
    /// data directory (unless --keep); it stays encrypted if it was.
    Export {
        /// Where to write it (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// The data directory.
        #[arg(long, env = "ROGATORY_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Keep a copy in the data directory (not advised: the node's machine then holds it).
        #[arg(long)]
        keep: bool,
    },
    /// Generate a root key for one holder of a k-of-n root: FILE holds the secret key
    /// (encrypted under a passphrase unless --insecure-plaintext-keys), FILE.pub its public key,
    /// for `keys root change --key`.
    Keygen {
        /// Where to write the secret key (must not exist); the public key goes to FILE.pub.
        #[arg(long)]
        out: PathBuf,
        /// Write the secret key in clear (mode 0600): tests only.
        #[arg(long)]
        insecure_plaintext_keys: bool,
    },
    /// Replace the root set: K of the keys given must then sign every later statement. The
    /// statement is signed by the current root and by the new one (each new key at hand with
    /// --new-root-key, or --prepare for the holders to sign); the fingerprint does not change.
    Change(ChangeArgs),
    /// Add a root key's signature to a statement prepared with `--prepare` (on the machine
    /// that holds the root key; each holder of a k-of-n root signs in turn).
    Sign {
        /// The statement file.
        statement: PathBuf,
        /// The root key file.
        #[arg(long)]
        root_key: PathBuf,
        /// Where to write the signed statement (default: over the input).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `rogatory keys root change`.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// How many of the new root's keys must sign (1 to their number).
    #[arg(long)]
    threshold: u32,
    /// A key of the new root: a public key file (FILE.pub from `keys root keygen`) or a root
    /// key file (repeatable; 1 to 16 keys).
    #[arg(long = "key", required = true)]
    keys: Vec<PathBuf>,
    /// A new root key at hand, to sign the change with (repeatable); the current root signs too.
    #[arg(long = "new-root-key")]
    new_root_keys: Vec<PathBuf>,
    #[command(flatten)]
    how: Signing,
}

/// How a change is signed and applied.
#[derive(Debug, Args)]
pub struct Signing {
    /// The root key file (default: the one in the data directory, if still there).
    #[arg(long)]
    pub(crate) root_key: Option<PathBuf>,
    /// Write the statement to this file for the root's holders to sign (`keys root sign`),
    /// instead of signing it here.
    #[arg(long, value_name = "FILE", conflicts_with = "apply")]
    pub(crate) prepare: Option<PathBuf>,
    /// Apply a statement the root's holders signed.
    #[arg(long, value_name = "FILE")]
    pub(crate) apply: Option<PathBuf>,
    /// The data directory.
    #[arg(long, env = "ROGATORY_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
}

/// `rogatory keys rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Replace the signing key (with --encryption: both; neither: both).
    #[arg(long)]
    signing: bool,
    /// Replace the encryption key.
    #[arg(long)]
    encryption: bool,
    /// New listen addresses for the card (repeatable; default: as they are).
    #[arg(long = "address")]
    addresses: Vec<String>,
    #[command(flatten)]
    how: Signing,
}

/// `rogatory keys revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The key to revoke: its key id (at least 8 hex digits), or `signing` / `encryption` for
    /// the current one.
    key: String,
    /// Why: compromised, superseded or retired.
    #[arg(long)]
    reason: RevocationReason,
    /// From when the key is to be treated as no longer the agency's, for auditors: Unix seconds
    /// or `YYYY-MM-DDTHH:MM:SSZ` (default: now).
    #[arg(long)]
    effective: Option<String>,
    #[command(flatten)]
    how: Signing,
}

pub(crate) fn run(c: KeysCommand) -> Result<ExitCode> {
    // One passphrase prompt for the whole command (keys, prepared keys, root key).
    keydir::remember_passphrase();
    match c {
        KeysCommand::Root(r) => root(r),
        KeysCommand::History { data_dir, json } => {
            let dir = super::init::data_dir(data_dir)?;
            let h = keydir::own_history(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&history_json(&h))?);
            } else {
                print_history(&h);
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Rotate(a) => rotate(a),
        KeysCommand::Revoke(a) => revoke(a),
    }
}

fn root(c: RootCommand) -> Result<ExitCode> {
    match c {
        RootCommand::Show { data_dir } => {
            let dir = super::init::data_dir(data_dir)?;
            let h = keydir::own_history(&dir)?;
            let (threshold, keys) = h.root();
            println!("Root of {}: fingerprint {}", h.agency(), h.fingerprint());
            println!("  {threshold} of {} key(s) must sign:", keys.len());
            for k in keys {
                println!("    {}", hex::encode(k.id()));
            }
            match root_in_dir(&dir) {
                Some(p) => println!(
                    "  The root key is still in {} (move it off this machine: `rogatory keys root export`).",
                    p.display()
                ),
                None => println!("  The root key is not on this machine."),
            }
            Ok(ExitCode::SUCCESS)
        }
        RootCommand::Export {
            out,
            data_dir,
            keep,
        } => {
            let dir = super::init::data_dir(data_dir)?;
            let from = root_in_dir(&dir)
                .with_context(|| format!("{} holds no root key", dir.display()))?;
            // Check it is a root key of this agency before it moves.
            let key = keydir::load_root_key(&from)?;
            let h = keydir::own_history(&dir)?;
            if !h.root().1.contains(key.verifying_key()) {
                bail!("{} is not a key of {}'s root", from.display(), h.agency());
            }
            let bytes = files::read_limited(&from, 64 * 1024)?;
            files::write_atomic(&out, &bytes, true, false)?;
            if !keep {
                std::fs::remove_file(&from)
                    .with_context(|| format!("cannot remove {}", from.display()))?;
            }
            println!(
                "Wrote the root key of {} to {}{}",
                h.agency(),
                out.display(),
                if keep {
                    ""
                } else {
                    "; it is no longer in the data directory"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        RootCommand::Keygen {
            out,
            insecure_plaintext_keys,
        } => {
            let public = PathBuf::from(format!("{}.pub", out.display()));
            for p in [&out, &public] {
                if std::fs::symlink_metadata(p).is_ok() {
                    bail!(
                        "{} already exists: refusing to overwrite a key",
                        p.display()
                    );
                }
            }
            let key = SigningKey::generate();
            let protection = if insecure_plaintext_keys {
                keydir::Protection::Plaintext
            } else {
                let what = format!("the new root key {}", out.display());
                keydir::Protection::Passphrase(crate::secret::passphrase(
                    keydir::passphrase_file(),
                    &what,
                    true,
                )?)
            };
            files::write_atomic(
                &out,
                &protection.wrap(&key.to_cose_key_secret())?,
                true,
                false,
            )?;
            files::write_atomic(&public, &key.verifying_key().to_cose_key(), false, false)?;
            println!(
                "Wrote the root key {}… to {} and its public key to {}",
                &hex::encode(key.verifying_key().id())[..16],
                out.display(),
                public.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        RootCommand::Change(a) => change(a),
        RootCommand::Sign {
            statement: path,
            root_key,
            out,
        } => {
            let key = keydir::load_root_key(&root_key)?;
            let bytes =
                files::read_limited(&path, rogatory_proto::keyhist::MAX_HISTORY_BYTES as u64)?;
            // What `--prepare` wrote: the statements, in order.
            let statements = rogatory_proto::keyhist::decode_history(&bytes)?;
            let mut signed = Vec::with_capacity(statements.len());
            for s in &statements {
                let parsed = statement::parse(s)?;
                println!(
                    "Statement {} ({:?}) of {}, taking effect at {}: signed with root key {}…",
                    parsed.body.seq,
                    parsed.body.kind,
                    parsed.body.agency,
                    format_unix(parsed.body.at),
                    &hex::encode(key.verifying_key().id())[..16]
                );
                signed.push(statement::add_signature(s, &key)?);
            }
            let out = out.unwrap_or(path);
            files::write_atomic(
                &out,
                &rogatory_proto::keyhist::encode_history(&signed),
                false,
                true,
            )?;
            println!("Written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A public root key from a file: a public COSE_Key (`keys root keygen`'s FILE.pub), or the
/// public half of a root key file.
fn public_root_key(path: &Path) -> Result<rogatory_proto::keys::VerifyingKey> {
    let bytes = files::read_limited(path, 64 * 1024)?;
    match rogatory_proto::keys::VerifyingKey::from_cose_key(&bytes) {
        Ok(k) => Ok(k),
        Err(_) => Ok(keydir::load_root_key(path)?.verifying_key().clone()),
    }
}

fn change(a: ChangeArgs) -> Result<ExitCode> {
    let dir = super::init::data_dir(a.how.data_dir.clone())?;
    if let Some(file) = &a.how.apply {
        return apply(&dir, file);
    }
    let h = keydir::own_history(&dir)?;
    if h.is_bare_card() {
        bail!(
            "{} has no key history (its card is its own root): its root cannot change",
            h.agency()
        );
    }
    let keys = a
        .keys
        .iter()
        .map(|p| public_root_key(p).with_context(|| format!("--key {}", p.display())))
        .collect::<Result<Vec<_>>>()?;
    let set = rogatory_proto::keyhist::RootSet::new(a.threshold, &keys);
    set.parse().context("the new root")?;
    before_preparing(&dir, &a.how)?;
    let body = h.next_root(set, now_unix());
    let mut bytes = statement::sign(&body, &[])?;
    for p in &a.new_root_keys {
        let k = keydir::load_root_key(p)?;
        if !keys.contains(k.verifying_key()) {
            bail!(
                "--new-root-key {}: not one of the new root's keys",
                p.display()
            );
        }
        bytes = statement::add_signature(&bytes, &k)?;
    }
    let code = finish(&dir, h, vec![bytes], &a.how)?;
    if a.how.prepare.is_none()
        && let Some(old) = root_in_dir(&dir)
        && let Ok(k) = keydir::load_root_key(&old)
        && !keys.contains(k.verifying_key())
    {
        println!(
            "{} is no longer a key of the root: remove it (or keep it offline as a record).",
            old.display()
        );
    }
    Ok(code)
}

fn root_in_dir(dir: &Path) -> Option<PathBuf> {
    [ROOT_KEY_ENCRYPTED, ROOT_KEY_FILE]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
}

fn rotate(a: RotateArgs) -> Result<ExitCode> {
    let dir = super::init::data_dir(a.how.data_dir.clone())?;
    if let Some(file) = &a.how.apply {
        return apply(&dir, file);
    }
    let kd = KeyDir::load(&dir)?;
    if kd.history.is_bare_card() {
        bail!(
            "{} has no key history (its card is its own root, made before roots existed): its keys cannot rotate; set up a new node with `rogatory init`",
            kd.history.agency()
        );
    }
    before_preparing(&dir, &a.how)?;
    let (signing, encryption) = match (a.signing, a.encryption) {
        (false, false) => (true, true),
        x => x,
    };
    let now = now_unix();
    let (body, new_keys) = next_card(
        &kd,
        kd.history.next_card(&kd.card, now),
        signing.then(SigningKey::generate),
        encryption.then(EncryptionSecretKey::generate),
        &a.addresses,
    )?;
    keydir::write_next_keys(&dir, &new_keys)?;
    // Endorsed by the signing key it replaces: partners see a routine rotation.
    let bytes = statement::sign(&body, &[&kd.keys.signing])?;
    finished(&dir, finish(&dir, kd.history, vec![bytes], &a.how), &a.how)
}

/// A rotation refused by the history (the root's signatures do not suffice) leaves no
/// prepared keys behind: the next attempt starts afresh.
fn finished(dir: &Path, r: Result<ExitCode>, how: &Signing) -> Result<ExitCode> {
    if r.is_err() && how.prepare.is_none() {
        keydir::discard_next_keys(dir);
    }
    r
}

/// A card statement built on `skeleton` (its place in the history) with new keys where given.
fn next_card(
    kd: &KeyDir,
    skeleton: StatementBody,
    signing: Option<SigningKey>,
    encryption: Option<EncryptionSecretKey>,
    addresses: &[String],
) -> Result<(StatementBody, rogatory_proto::keys::AgencySecretKeys)> {
    let new_keys = kd.keys.rotated(signing, encryption);
    let b = kd.card.body();
    let card = AgencyCard::issue(
        CardDetails {
            id: b.id.clone(),
            name: b.name.clone(),
            roles: b.roles.clone(),
            addresses: if addresses.is_empty() {
                b.addresses.clone()
            } else {
                addresses.to_vec()
            },
            languages: b.languages.clone(),
            legal_bases: b.legal_bases.clone(),
            issued_at: skeleton.at,
        },
        &new_keys,
    )?;
    let body = StatementBody {
        card: Some(card.as_bytes().to_vec()),
        ..skeleton
    };
    Ok((body, new_keys))
}

fn revoke(a: RevokeArgs) -> Result<ExitCode> {
    let dir = super::init::data_dir(a.how.data_dir.clone())?;
    if let Some(file) = &a.how.apply {
        return apply(&dir, file);
    }
    let kd = KeyDir::load(&dir)?;
    let h = &kd.history;
    if h.is_bare_card() {
        bail!(
            "{} has no key history (its card is its own root): its keys cannot be revoked",
            h.agency()
        );
    }
    let card = h.current_card();
    let kid = match a.key.as_str() {
        "signing" => *card.signing_key().id(),
        "encryption" => *card.encryption_key().id(),
        prefix => {
            let prefix = prefix.to_ascii_lowercase();
            if prefix.len() < 8 {
                bail!("give at least 8 hex digits of the key id");
            }
            let found: Vec<rogatory_proto::keys::KeyId> = h
                .keys()
                .iter()
                .map(|k| k.kid)
                .chain(h.officers().iter().map(|o| *o.key.id()))
                .filter(|kid| hex::encode(kid).starts_with(&prefix))
                .collect();
            match found.as_slice() {
                [k] => *k,
                [] => bail!("{} never had a key {prefix}…", h.agency()),
                _ => bail!("several keys start with {prefix}: give more digits"),
            }
        }
    };
    before_preparing(&dir, &a.how)?;
    let now = now_unix();
    let effective = match &a.effective {
        None => now,
        Some(t) => t
            .parse::<u64>()
            .ok()
            .or_else(|| parse_utc(t))
            .with_context(|| format!("--effective {t}: Unix seconds or YYYY-MM-DDTHH:MM:SSZ"))?,
    };
    let revoke = h.next_revoke(&kid, a.reason, effective, now);
    let mut statements = vec![statement::sign(&revoke, &[])?];
    // A current key revoked is replaced at once: the node keeps working under new keys. The
    // new card follows the revocation; only the root signs it (the old key may be in the
    // wrong hands).
    let current_signing = &kid == card.signing_key().id();
    let current_encryption = &kid == card.encryption_key().id();
    if current_signing || current_encryption {
        let skeleton = StatementBody {
            seq: revoke.seq + 1,
            prev: Some(statement::body_hash(&revoke)?),
            kind: rogatory_proto::keyhist::StatementKind::Card,
            revoke: None,
            officer: None,
            ..revoke.clone()
        };
        let (body, new_keys) = next_card(
            &kd,
            skeleton,
            current_signing.then(SigningKey::generate),
            current_encryption.then(EncryptionSecretKey::generate),
            &[],
        )?;
        keydir::write_next_keys(&dir, &new_keys)?;
        statements.push(statement::sign(&body, &[])?);
    }
    finished(&dir, finish(&dir, kd.history, statements, &a.how), &a.how)
}

/// Before new keys are written: the root key is at hand (unless the statements are only
/// prepared), and no other rotation is prepared (its keys would be overwritten, and the
/// statement its root holders are signing would no longer apply).
pub(crate) fn before_preparing(dir: &Path, how: &Signing) -> Result<()> {
    if how.prepare.is_none() && how.root_key.is_none() && root_in_dir(dir).is_none() {
        bail!(
            "the root key is not on this machine: give --root-key FILE, or --prepare FILE for its holders; nothing was changed"
        );
    }
    if let Some(k) = &how.root_key {
        keydir::load_root_key(k)?;
    }
    if [keydir::NEXT_KEYS_FILE, keydir::NEXT_KEYS_ENCRYPTED]
        .iter()
        .any(|n| dir.join(n).exists())
    {
        bail!(
            "a rotation is already prepared in {} (secret-keys.next.*): apply it with --apply FILE, or remove that file to start again; nothing was changed",
            dir.display()
        );
    }
    Ok(())
}

/// Signs `statements` with the root (or writes them for its holders) and applies them.
pub(crate) fn finish(
    dir: &Path,
    history: KeyHistory,
    statements: Vec<Vec<u8>>,
    how: &Signing,
) -> Result<ExitCode> {
    if let Some(out) = &how.prepare {
        let file = rogatory_proto::keyhist::encode_history(&statements);
        files::write_atomic(out, &file, false, false)?;
        println!(
            "Wrote {} statement(s) of {} to {} for the root's holders: each runs `rogatory keys root sign {} --root-key FILE`, then `--apply {}` here.",
            statements.len(),
            history.agency(),
            out.display(),
            out.display(),
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let root_path = how
        .root_key
        .clone()
        .or_else(|| root_in_dir(dir))
        .context("the root key is not on this machine: give --root-key FILE, or --prepare FILE for its holders")?;
    let root = keydir::load_root_key(&root_path)?;
    let signed = statements
        .iter()
        .map(|s| statement::add_signature(s, &root))
        .collect::<Result<Vec<_>, _>>()?;
    commit(dir, history, &signed)
}

pub(crate) fn apply(dir: &Path, file: &Path) -> Result<ExitCode> {
    let bytes = files::read_limited(file, rogatory_proto::keyhist::MAX_HISTORY_BYTES as u64)?;
    let statements = rogatory_proto::keyhist::decode_history(&bytes)?;
    commit(dir, keydir::own_history(dir)?, &statements)
}

/// Verifies `statements` on top of the history, writes it, and has a running node take it up.
fn commit(dir: &Path, mut history: KeyHistory, statements: &[Vec<u8>]) -> Result<ExitCode> {
    for s in statements {
        history
            .apply(s)
            .context("the statement does not extend this agency's key history")?;
    }
    // The node must hold the secret keys of the card it will run on: the current ones, or
    // those prepared with the statement.
    let card = history.current_card();
    let held = |k: &rogatory_proto::keys::AgencySecretKeys| {
        k.signing.verifying_key() == card.signing_key()
            && k.encryption.public_key() == card.encryption_key()
    };
    let current = KeyDir::load(dir)?;
    if !held(&current.keys) && !keydir::read_next_keys(dir)?.as_ref().is_some_and(held) {
        bail!(
            "this node does not hold the secret keys of the new card (the keys prepared with the statement are gone: was another rotation prepared since?); nothing was changed"
        );
    }
    keydir::commit_history(dir, &history)?;
    for s in &history.summaries()[history.summaries().len() - statements.len()..] {
        println!(
            "Statement {} ({:?}) of {} takes effect at {}",
            s.seq,
            s.kind,
            history.agency(),
            format_unix(s.at)
        );
    }
    let card = history.current_card();
    println!(
        "Current keys: signing {}…, encryption {}…; the fingerprint stays {}",
        &hex::encode(card.signing_key().id())[..16],
        &hex::encode(card.encryption_key().id())[..16],
        history.fingerprint()
    );
    match crate::client::Client::connect(dir) {
        Ok(c) => {
            let _: serde_json::Value = c
                .post("/v1/keys/reload", &serde_json::json!({}))
                .context("the running node did not take up the new keys (restart it)")?;
            drop(c);
            wait_restarted(dir, card, history.statements().len() as u64)?;
            println!("The node runs on the new keys.");
        }
        Err(_) => println!("The node takes up the new keys when it next starts."),
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits (at most a minute) until the node in `dir` answers as the peer of `card`'s key, on
/// a key history of `statements` statements (a statement that changes no key, such as an
/// official's certificate, leaves the peer id as it was).
fn wait_restarted(dir: &Path, card: &AgencyCard, statements: u64) -> Result<()> {
    let want = crate::net::peer_id(card)?.to_string();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let now = crate::client::Client::connect(dir)
            .and_then(|c| c.get::<crate::api::wire::Status>("/v1/status"))
            .map(|s| (s.peer_id, s.key_history_statements));
        if now
            .as_ref()
            .is_ok_and(|(p, n)| p == &want && *n == statements)
        {
            return Ok(());
        }
        if std::time::Instant::now() > until {
            bail!(
                "the node in {} did not come back on the new keys within a minute: look at its log",
                dir.display()
            );
        }
        // A restart takes a moment: the node finishes what it holds, then starts again.
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn history_json(h: &KeyHistory) -> serde_json::Value {
    serde_json::json!({
        "agency": h.agency().as_str(),
        "fingerprint": h.fingerprint(),
        "statements": h.summaries().iter().map(|s| serde_json::json!({
            "seq": s.seq,
            "kind": format!("{:?}", s.kind).to_lowercase(),
            "at": format_unix(s.at),
            "hash": s.hash.to_hex(),
            "signers": s.signers.iter().map(hex::encode).collect::<Vec<_>>(),
            "endorsed_by_previous_key": s.endorsed_by_previous_key,
        })).collect::<Vec<_>>(),
        "keys": h.keys().iter().map(super::card::key_json).collect::<Vec<_>>(),
    })
}

pub(crate) fn print_history(h: &KeyHistory) {
    println!(
        "Key history of {} (root fingerprint {}):",
        h.agency(),
        h.fingerprint()
    );
    if h.is_bare_card() {
        println!("  none: a bare card, its own root");
    }
    for s in h.summaries() {
        println!(
            "  {:>3}  {:<8} {}  signed by {}{}",
            s.seq,
            format!("{:?}", s.kind).to_lowercase(),
            format_unix(s.at),
            s.signers
                .iter()
                .map(|k| format!("{}…", &hex::encode(k)[..8]))
                .collect::<Vec<_>>()
                .join(", "),
            if s.endorsed_by_previous_key {
                " (endorsed by the key it replaces)"
            } else {
                ""
            }
        );
    }
    println!("Keys:");
    for k in h.keys() {
        println!(
            "  {} {}…  {} – {}  {}",
            match k.usage {
                KeyUse::Sign => "sign   ",
                KeyUse::Encrypt => "encrypt",
            },
            &hex::encode(k.kid)[..16],
            format_unix(k.from),
            k.until.map(format_unix).unwrap_or_else(|| "…".into()),
            super::card::key_state(k)
        );
    }
    if !h.officers().is_empty() {
        println!("Officials:");
    }
    for o in h.officers() {
        println!(
            "  {:<20} {:<22} {}…  {} – {}  {}",
            o.name,
            o.role.as_str(),
            &hex::encode(o.key.id())[..16],
            format_unix(o.from),
            format_unix(o.until),
            match &o.revoked {
                Some(r) => format!("revoked ({})", r.reason.as_str()),
                None => "certified".into(),
            }
        );
    }
}
