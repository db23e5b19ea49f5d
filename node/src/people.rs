//! The officials who use a node: their accounts, roles and credentials for the local API
//! (spec/PEOPLE.md §2–§3).
//!
//! An account is a file `users/<name>.json` in the data directory (mode 0600): the name, the
//! roles, whether it may read content beyond what its roles allow, the SHA-256 of its token,
//! and when it was made and disabled. The token itself is shown once, when the account is made.
//! The running node reads the directory again whenever it changes, so `rogatory user add` and
//! `user disable` take effect at the next request.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use rogatory_proto::ids::Sha256Digest;

use crate::files;

/// The directory of accounts, in the data directory.
pub const USERS_DIR: &str = "users";
/// Most accounts read.
pub const MAX_ACCOUNTS: usize = 1024;
/// The name under which a request made with the node's own token is recorded once accounts
/// exist.
pub const NODE_ADMINISTRATOR: &str = "node-administrator";

/// What an official does.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Drafts requests and messages, reads and sends for the agency's cases.
    Clerk,
    /// Issues requests in the agency's name (EIO Directive Art. 5(1); UNTOC Art. 18(15)(a)).
    IssuingAuthority,
    /// Validates what an issuing authority issued (EIO Annex A Section L).
    ValidatingAuthority,
    /// Police-to-police liaison: reads and sends liaison and preservation messages.
    LiaisonOfficer,
    /// Reads audit logs, proofs and alerts, exports bundles; no content unless granted.
    Auditor,
    /// Runs the node: keys, status, alerts, the store's check; no content.
    Administrator,
}

/// What a request may do (spec/PEOPLE.md §3).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Lists and metadata: status, cases, deadlines, inbox and outbox rows, evidence lists,
    /// alerts.
    Read,
    /// The content of messages and evidence.
    Content,
    /// Opens cases, sends and forwards messages, adds and sends evidence.
    Send,
    /// Exports a case's bundle for an auditor.
    Export,
    /// Audit logs, checkpoints, proofs, the store's check.
    Audit,
    /// The node's keys.
    Administer,
    /// Approves or rejects a draft (four eyes, spec/PEOPLE.md §6); its holder's own messages
    /// need no approval.
    Approve,
    /// Countersigns a draft awaiting validation (spec/PEOPLE.md §6).
    Validate,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::Clerk,
        Role::IssuingAuthority,
        Role::ValidatingAuthority,
        Role::LiaisonOfficer,
        Role::Auditor,
        Role::Administrator,
    ];

    /// The role's name, as written in accounts and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clerk => "clerk",
            Role::IssuingAuthority => "issuing-authority",
            Role::ValidatingAuthority => "validating-authority",
            Role::LiaisonOfficer => "liaison-officer",
            Role::Auditor => "auditor",
            Role::Administrator => "administrator",
        }
    }

    /// The role an official of this role is certified with, for those who sign in their own
    /// name (spec/PEOPLE.md §4).
    pub fn officer_role(self) -> Option<rogatory_proto::keyhist::OfficerRole> {
        use rogatory_proto::keyhist::OfficerRole as O;
        match self {
            Role::IssuingAuthority => Some(O::IssuingAuthority),
            Role::ValidatingAuthority => Some(O::ValidatingAuthority),
            Role::LiaisonOfficer => Some(O::LiaisonOfficer),
            Role::Clerk | Role::Auditor | Role::Administrator => None,
        }
    }

    /// What the role may do.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Clerk => &[Read, Content, Send, Export],
            Role::IssuingAuthority => &[Read, Content, Send, Export, Approve],
            Role::ValidatingAuthority => &[Read, Content, Export, Validate],
            Role::LiaisonOfficer => &[Read, Content, Send],
            Role::Auditor => &[Read, Audit, Export],
            Role::Administrator => &[Read, Audit, Administer],
        }
    }
}

/// An official's account.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Account {
    /// The name recorded in the audit log for what the official does.
    pub name: String,
    /// The official's roles.
    pub roles: Vec<Role>,
    /// May read content although no role of the account does (an auditor granted it).
    #[serde(default)]
    pub content: bool,
    /// SHA-256 of the account's token, hexadecimal.
    pub token_sha256: String,
    /// When the account was made (Unix seconds).
    pub created_at: u64,
    /// When it was disabled, if it was: its token is refused from then on.
    #[serde(default)]
    pub disabled_at: Option<u64>,
    /// The official's own Ed25519 public key (its COSE_Key, hexadecimal), for an account with
    /// a role that signs (spec/PEOPLE.md §4): its secret is in `users/<name>.officer`, sealed
    /// under the account's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer_key: Option<String>,
}

impl Account {
    /// The role the official is certified with: the first of the account's roles that signs.
    pub fn officer_role(&self) -> Option<rogatory_proto::keyhist::OfficerRole> {
        self.roles.iter().find_map(|r| r.officer_role())
    }

    /// The official's public key, if the account has one.
    pub fn officer_public_key(&self) -> Option<rogatory_proto::keys::VerifyingKey> {
        let bytes = hex::decode(self.officer_key.as_deref()?).ok()?;
        rogatory_proto::keys::VerifyingKey::from_cose_key(&bytes).ok()
    }

    /// Whether the account may do `p` now.
    pub fn may(&self, p: Permission) -> bool {
        self.disabled_at.is_none()
            && (self.roles.iter().any(|r| r.permissions().contains(&p))
                || (p == Permission::Content && self.content))
    }

    /// Everything the account may do.
    pub fn permissions(&self) -> Vec<Permission> {
        use Permission::*;
        [
            Read, Content, Send, Export, Audit, Administer, Approve, Validate,
        ]
        .into_iter()
        .filter(|p| self.may(*p))
        .collect()
    }
}

/// A name of 1 to 32 characters: lower-case letters, digits, `.`, `_` and `-`, starting with a
/// letter.
pub fn check_name(name: &str) -> Result<()> {
    let ok = (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if !ok || name == NODE_ADMINISTRATOR {
        bail!(
            "{name:?} is not a user name: 1 to 32 lower-case letters, digits, '.', '_' or '-', starting with a letter (and not {NODE_ADMINISTRATOR})"
        );
    }
    Ok(())
}

fn account_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(USERS_DIR).join(format!("{name}.json"))
}

fn officer_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(USERS_DIR).join(format!("{name}.officer"))
}

/// The official key of account `name`, opened with the account's token.
pub fn officer_key(
    dir: &Path,
    name: &str,
    token: &str,
) -> Result<rogatory_proto::keys::SigningKey> {
    check_name(name)?;
    let path = officer_path(dir, name);
    let sealed = files::read_limited(&path, 16 * 1024)
        .with_context(|| format!("{name} has no official key"))?;
    let plain = crate::secret::open_bytes(&sealed, token, &path)?;
    rogatory_proto::keys::SigningKey::from_cose_key_secret(&plain)
        .with_context(|| format!("{} is not an official key", path.display()))
}

/// Makes an account; returns it and its token (shown once: only its hash is kept).
pub fn add(dir: &Path, name: &str, roles: &[Role], content: bool) -> Result<(Account, String)> {
    check_name(name)?;
    if roles.is_empty() {
        bail!("give at least one --role");
    }
    if list(dir)?.len() >= MAX_ACCOUNTS {
        bail!("{} holds {MAX_ACCOUNTS} accounts already", dir.display());
    }
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    let mut b = [0u8; 32];
    rogatory_proto::keys::fill_random(&mut b);
    let token = format!("rgu_{}", hex::encode(b));
    // An official who signs gets a key of their own, sealed under their token: the node can
    // use it only on a request that carries that token.
    let officer = roles
        .iter()
        .any(|r| r.officer_role().is_some())
        .then(rogatory_proto::keys::SigningKey::generate);
    let account = Account {
        name: name.into(),
        roles,
        content,
        token_sha256: Sha256Digest::of(token.as_bytes()).to_hex(),
        created_at: rogatory_proto::time::now_unix(),
        disabled_at: None,
        officer_key: officer
            .as_ref()
            .map(|k| hex::encode(k.verifying_key().to_cose_key())),
    };
    files::create_private_dir(&dir.join(USERS_DIR))?;
    if let Some(k) = &officer {
        let sealed = crate::secret::seal_bytes(&k.to_cose_key_secret(), &token)?;
        files::write_atomic(&officer_path(dir, name), &sealed, true, false).with_context(|| {
            format!("cannot keep the official key of {name} (does the account exist already?)")
        })?;
    }
    files::write_atomic(
        &account_path(dir, name),
        serde_json::to_string_pretty(&account)?.as_bytes(),
        true,
        false,
    )
    .with_context(|| format!("cannot make the account {name} (does it exist already?)"))?;
    Ok((account, token))
}

/// Every account, by name.
pub fn list(dir: &Path) -> Result<Vec<Account>> {
    let users = dir.join(USERS_DIR);
    let entries = match std::fs::read_dir(&users) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", users.display())),
    };
    let mut out = Vec::new();
    for e in entries.take(MAX_ACCOUNTS + 1) {
        let path = e?.path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let bytes = files::read_limited(&path, 16 * 1024)?;
        let a: Account = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not an account", path.display()))?;
        check_name(&a.name)?;
        if path.file_stem().and_then(|s| s.to_str()) != Some(a.name.as_str()) {
            bail!("{} holds the account of {}", path.display(), a.name);
        }
        out.push(a);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Disables an account: its token is refused from the next request on. The account stays, so
/// that the audit log's names keep their meaning.
pub fn disable(dir: &Path, name: &str) -> Result<Account> {
    check_name(name)?;
    let path = account_path(dir, name);
    let bytes = files::read_limited(&path, 16 * 1024)
        .with_context(|| format!("no account {name} in {}", dir.display()))?;
    let mut a: Account = serde_json::from_slice(&bytes)?;
    if a.disabled_at.is_none() {
        a.disabled_at = Some(rogatory_proto::time::now_unix());
        files::write_atomic(
            &path,
            serde_json::to_string_pretty(&a)?.as_bytes(),
            true,
            true,
        )?;
    }
    Ok(a)
}

/// Who made a request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The node's own token while no account exists: every permission; the name is what the
    /// local client said (the login name), not authenticated.
    NodeToken(Option<String>),
    /// The node's own token once accounts exist: an administrator.
    NodeAdministrator,
    /// An official's account.
    Account(Account),
}

impl Caller {
    /// Whether the caller may do `p`.
    pub fn may(&self, p: Permission) -> bool {
        match self {
            Caller::NodeToken(_) => true,
            Caller::NodeAdministrator => Role::Administrator.permissions().contains(&p),
            Caller::Account(a) => a.may(p),
        }
    }

    /// The name recorded in the audit log.
    pub fn name(&self) -> Option<String> {
        match self {
            Caller::NodeToken(n) => n.clone(),
            Caller::NodeAdministrator => Some(NODE_ADMINISTRATOR.into()),
            Caller::Account(a) => Some(a.name.clone()),
        }
    }
}

/// The accounts as the API reads them: again whenever the directory changed.
#[derive(Debug)]
pub struct Accounts {
    dir: PathBuf,
    cache: Mutex<(Option<SystemTime>, Vec<Account>)>,
}

/// What a token is.
pub enum Lookup {
    /// No account exists.
    NoAccounts,
    /// This account's (perhaps disabled).
    Found(Account),
    /// No account's.
    Unknown,
}

impl Accounts {
    /// The accounts of the data directory `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            cache: Mutex::new((None, Vec::new())),
        }
    }

    /// The account whose token is `token`. Blocking: it may read the directory.
    pub fn find(&self, token: &str) -> Lookup {
        let users = self.dir.join(USERS_DIR);
        let changed = std::fs::metadata(&users).and_then(|m| m.modified()).ok();
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if cache.0 != changed || changed.is_none() {
            match list(&self.dir) {
                Ok(all) => *cache = (changed, all),
                Err(e) => {
                    // Unreadable accounts admit nobody (but the node's own token, as an
                    // administrator): refusing is safe, guessing is not.
                    tracing::error!("the accounts cannot be read: {e:#}");
                    return Lookup::Unknown;
                }
            }
        }
        if cache.1.is_empty() {
            return Lookup::NoAccounts;
        }
        let hash = Sha256Digest::of(token.as_bytes()).to_hex();
        cache
            .1
            .iter()
            .find(|a| a.token_sha256 == hash)
            .cloned()
            .map_or(Lookup::Unknown, Lookup::Found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_made_listed_found_and_disabled() {
        let d = tempfile::tempdir().unwrap();
        let accounts = Accounts::new(d.path());
        assert!(matches!(accounts.find("x"), Lookup::NoAccounts));
        let (a, token) = add(d.path(), "clara", &[Role::Clerk], false).unwrap();
        assert!(a.may(Permission::Send) && a.may(Permission::Content));
        assert!(!a.may(Permission::Audit));
        assert!(add(d.path(), "clara", &[Role::Auditor], false).is_err());
        assert!(add(d.path(), "Clara", &[Role::Auditor], false).is_err());
        assert!(add(d.path(), "x", &[], false).is_err());
        let (aude, _) = add(d.path(), "aude", &[Role::Auditor], false).unwrap();
        assert!(aude.may(Permission::Audit) && !aude.may(Permission::Content));
        let (granted, _) = add(d.path(), "gil", &[Role::Auditor], true).unwrap();
        assert!(granted.officer_key.is_none());
        let (ivan, ivan_token) = add(d.path(), "ivan", &[Role::IssuingAuthority], false).unwrap();
        let key = officer_key(d.path(), "ivan", &ivan_token).unwrap();
        assert_eq!(Some(key.verifying_key().clone()), ivan.officer_public_key());
        assert!(
            officer_key(d.path(), "ivan", &token).is_err(),
            "another token opens nothing"
        );
        assert!(granted.may(Permission::Content) && !granted.may(Permission::Send));
        match accounts.find(&token) {
            Lookup::Found(f) => assert_eq!(f.name, "clara"),
            _ => panic!("not found"),
        }
        assert!(matches!(accounts.find("rgu_00"), Lookup::Unknown));
        let names: Vec<String> = list(d.path())
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["aude", "clara", "gil", "ivan"]);
        disable(d.path(), "clara").unwrap();
        match accounts.find(&token) {
            Lookup::Found(f) => assert!(!f.may(Permission::Read)),
            _ => panic!("a disabled account is still found, and refused"),
        }
    }
}
