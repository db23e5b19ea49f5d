//! The node's configuration file, `rogatory.toml` in the data directory (`rogatory init` writes
//! it, commented). Every setting is optional; unknown settings are refused, so a typo is never
//! silently ignored.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// File name of the configuration in a data directory.
pub const CONFIG_FILE: &str = "rogatory.toml";

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The libp2p side.
    pub network: Network,
    /// The local API.
    pub api: Api,
    /// Size limits.
    pub limits: Limits,
    /// Delivery of the outbox.
    pub delivery: Delivery,
    /// Evidence transfers.
    pub evidence: Evidence,
    /// Partners' key histories.
    pub trust: Trust,
    /// Four-eyes approval (spec/PEOPLE.md §6).
    pub approval: Approval,
    /// Statistics (spec/STATS.md).
    pub stats: Stats,
    /// Logs.
    pub log: Log,
}

/// `[stats]` (spec/STATS.md §5).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Stats {
    /// Victim counts from 1 to `threshold − 1` are never shown; a request may ask for more,
    /// never for less.
    pub threshold: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            threshold: rogatory_proto::stats::DEFAULT_THRESHOLD,
        }
    }
}

/// `[approval]` (spec/PEOPLE.md §6).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Approval {
    /// The message types that an official without the issuing authority's role may only
    /// draft: an issuing authority approves them before they are sealed.
    pub required: Vec<rogatory_proto::message::MessageType>,
    /// The message types an official whose key the agency certified signs in their own name
    /// (spec/PEOPLE.md §5), inside the agency's signature.
    pub signed: Vec<rogatory_proto::message::MessageType>,
    /// The message types that, once an issuing authority signed them, wait for a validating
    /// authority's countersignature before they are sealed (spec/PEOPLE.md §6).
    pub validated: Vec<rogatory_proto::message::MessageType>,
    /// The message types this node accepts from partners only signed by one of their
    /// officials (refused otherwise with `officer-not-valid`).
    pub partners_signed: Vec<rogatory_proto::message::MessageType>,
    /// The message types this node accepts from partners only with a validating authority's
    /// countersignature too.
    pub partners_validated: Vec<rogatory_proto::message::MessageType>,
}

impl Default for Approval {
    fn default() -> Self {
        use rogatory_proto::message::MessageType;
        Self {
            required: vec![MessageType::MlaRequest],
            signed: vec![MessageType::MlaRequest, MessageType::PreservationRequest],
            validated: Vec::new(),
            partners_signed: Vec::new(),
            partners_validated: Vec::new(),
        }
    }
}

/// `[trust]` (spec/KEYS.md §7.6).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Trust {
    /// A partner whose key history was last confirmed longer ago than this, in seconds, is
    /// flagged as stale (status, peer list, the log): a revocation may have passed it by.
    pub max_key_age_secs: u64,
    /// Past this, in seconds, messages to it wait, with the reason, until it confirms its key
    /// history again.
    pub hold_after_secs: u64,
    /// How often, in seconds, this node signs its own key history again and asks its partners
    /// for theirs.
    pub refresh_secs: u64,
    /// Partners whose introductions of a new agency count (spec/KEYS.md §7.7); empty: agencies
    /// are pinned by fingerprint only.
    pub introducers: Vec<String>,
    /// How many of them must introduce an agency, naming the same root, for this node to pin it
    /// without a fingerprint.
    pub introductions_needed: usize,
}

impl Default for Trust {
    fn default() -> Self {
        Self {
            max_key_age_secs: 7 * 86_400,
            hold_after_secs: 30 * 86_400,
            refresh_secs: 6 * 3_600,
            introducers: Vec::new(),
            introductions_needed: 0,
        }
    }
}

impl Trust {
    /// How often to refresh.
    pub fn refresh(&self) -> Duration {
        Duration::from_secs(self.refresh_secs.max(1))
    }
}

/// `[network]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Network {
    /// Multiaddrs to listen on; empty: the addresses on the agency card.
    pub listen: Vec<String>,
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Api {
    /// Where the local API listens: a loopback address (port 0: any free port). The address
    /// actually bound is written to `api.addr` in the data directory while the node runs.
    pub bind: SocketAddr,
}

impl Default for Api {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest envelope accepted or sent, in bytes.
    pub max_envelope_bytes: usize,
    /// Jobs waiting for the store worker (envelopes received, receipts, sends, evidence
    /// progress): beyond them an envelope from a partner is left unanswered (its node sends it
    /// again), a local request waits, and a verified receipt waits in the event loop.
    pub store_queue: usize,
    /// Threads that open partners' envelopes (verify, decrypt, validate) in front of the store
    /// worker; unset: as many as the machine has cores, at most 4; 0: the worker opens them
    /// itself.
    pub open_threads: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_envelope_bytes: rogatory_proto::envelope::DEFAULT_MAX_ENVELOPE_BYTES,
            store_queue: 1024,
            open_threads: None,
        }
    }
}

/// Most threads opening envelopes in front of the store worker (`limits.open_threads`).
pub const MAX_OPEN_THREADS: usize = 4;

impl Limits {
    /// The opening threads to start (`open_threads`, or the machine's cores, at most 4).
    pub fn open_threads(&self) -> usize {
        self.open_threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(MAX_OPEN_THREADS)
        })
    }
}

/// `[delivery]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Delivery {
    /// First retry delay after a failed delivery, in milliseconds; it doubles with each failure.
    pub initial_backoff_ms: u64,
    /// Longest delay between retries, in seconds. Retries never stop.
    pub max_backoff_secs: u64,
    /// Envelopes in flight to one partner at a time.
    pub in_flight: usize,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            initial_backoff_ms: 500,
            max_backoff_secs: 3600,
            in_flight: 64,
        }
    }
}

impl Delivery {
    /// The initial back-off.
    pub fn initial(&self) -> Duration {
        Duration::from_millis(self.initial_backoff_ms.max(1))
    }
    /// The longest back-off.
    pub fn max(&self) -> Duration {
        Duration::from_secs(self.max_backoff_secs.max(1))
    }
}

/// `[evidence]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Evidence {
    /// While evidence arrives, its file is synced, and the progress recorded, every this many
    /// MiB: after a restart of either node the transfer resumes from the last such point.
    pub sync_every_mib: u64,
    /// Items received at once (each has a writer thread and an open file); the others wait
    /// their turn, emergencies first.
    pub max_active_items: usize,
    /// Most items one partner's manifest may list; a larger manifest is refused whole
    /// (`over-quota`).
    pub max_items_per_manifest: usize,
    /// Most items a case may hold on this node, from every partner; a manifest that would
    /// exceed it is refused whole (`over-quota`).
    pub max_items_per_case: usize,
    /// Content of one case fetched here (or to be), in GiB; items beyond it are refused and the
    /// holder is told why.
    pub quota_per_case_gib: u64,
    /// Content from one partner fetched here (or to be), every case together, in GiB.
    pub quota_per_partner_gib: u64,
    /// Disk space, in MiB, that evidence never takes: an item is refused when the free space
    /// less what is still to arrive would fall below it, and a transfer waits while it would.
    pub keep_free_mib: u64,
}

impl Default for Evidence {
    fn default() -> Self {
        Self {
            sync_every_mib: 64,
            max_active_items: 4,
            max_items_per_manifest: 1000,
            max_items_per_case: 10_000,
            quota_per_case_gib: 512,
            quota_per_partner_gib: 2048,
            keep_free_mib: 1024,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// `human` (default) or `json`.
    pub format: LogFormat,
}

/// How logs are written (to standard error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Reads `rogatory.toml` from a data directory.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        if !dir.is_dir() {
            bail!(
                "no data directory at {}: create a node there with `rogatory init`",
                dir.display()
            );
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} holds no node (no {CONFIG_FILE}): create one with `rogatory init`",
                dir.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let c: Config = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid configuration", path.display()))?;
        if !c.api.bind.ip().is_loopback() {
            bail!(
                "{}: api.bind must be a loopback address (127.0.0.1 or ::1), not {}",
                path.display(),
                c.api.bind
            );
        }
        let most = rogatory_proto::envelope::DEFAULT_MAX_ENVELOPE_BYTES;
        if c.limits.max_envelope_bytes > most {
            bail!(
                "{}: limits.max_envelope_bytes is at most {most} (what the transport reads)",
                path.display()
            );
        }
        if c.limits.store_queue == 0 {
            bail!("{}: limits.store_queue must be at least 1", path.display());
        }
        if c.limits.open_threads > Some(MAX_OPEN_THREADS) {
            bail!(
                "{}: limits.open_threads is at most {}",
                path.display(),
                MAX_OPEN_THREADS
            );
        }
        if c.delivery.in_flight == 0 {
            bail!("{}: delivery.in_flight must be at least 1", path.display());
        }
        if c.trust.max_key_age_secs == 0 || c.trust.hold_after_secs < c.trust.max_key_age_secs {
            bail!(
                "{}: trust.max_key_age_secs must be at least 1, and trust.hold_after_secs at least as long",
                path.display()
            );
        }
        if !c.trust.introducers.is_empty()
            && !(1..=c.trust.introducers.len()).contains(&c.trust.introductions_needed)
        {
            bail!(
                "{}: trust.introductions_needed must be between 1 and the number of trust.introducers",
                path.display()
            );
        }
        for i in &c.trust.introducers {
            rogatory_proto::ids::AgencyId::new(i)
                .with_context(|| format!("{}: trust.introducers: {i:?}", path.display()))?;
        }
        if !(2..=1000).contains(&c.stats.threshold) {
            bail!(
                "{}: stats.threshold must be between 2 and 1000",
                path.display()
            );
        }
        if c.evidence.max_active_items == 0 || c.evidence.max_active_items > 64 {
            bail!(
                "{}: evidence.max_active_items must be between 1 and 64",
                path.display()
            );
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_typos_and_non_loopback_api() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(CONFIG_FILE), "").unwrap();
        let c = Config::load(d.path()).unwrap();
        assert_eq!(c.delivery.in_flight, 64);
        assert!(c.api.bind.ip().is_loopback());
        std::fs::write(d.path().join(CONFIG_FILE), "[delivery]\nin_fligt = 3\n").unwrap();
        let e = format!("{:#}", Config::load(d.path()).unwrap_err());
        assert!(e.contains("in_fligt"), "{e}");
        std::fs::write(d.path().join(CONFIG_FILE), "[api]\nbind = \"0.0.0.0:1\"\n").unwrap();
        let e = format!("{:#}", Config::load(d.path()).unwrap_err());
        assert!(e.contains("loopback"), "{e}");
        std::fs::write(d.path().join(CONFIG_FILE), "[log]\nformat = \"json\"\n").unwrap();
        assert_eq!(Config::load(d.path()).unwrap().log.format, LogFormat::Json);
        std::fs::write(
            d.path().join(CONFIG_FILE),
            "[limits]\nmax_envelope_bytes = 999999999\n",
        )
        .unwrap();
        let e = format!("{:#}", Config::load(d.path()).unwrap_err());
        assert!(e.contains("at most"), "{e}");
        std::fs::write(d.path().join(CONFIG_FILE), "[limits]\nopen_threads = 9\n").unwrap();
        let e = format!("{:#}", Config::load(d.path()).unwrap_err());
        assert!(e.contains("open_threads is at most 4"), "{e}");
        std::fs::write(d.path().join(CONFIG_FILE), "[limits]\nopen_threads = 0\n").unwrap();
        assert_eq!(Config::load(d.path()).unwrap().limits.open_threads(), 0);
        let e = format!("{:#}", Config::load(&d.path().join("nope")).unwrap_err());
        assert!(e.contains("rogatory init"), "{e}");
    }
}
