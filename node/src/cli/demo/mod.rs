//! `rogatory demo`: a throw-away network of three agencies on this machine, each a separate
//! `rogatory run` process on loopback, and a narrated exchange between them.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

mod officials;

use super::supervise::{Launch, NodeProcess, Passphrase};
use crate::api::wire::{
    CaseView, DeadlineRow, EvidenceRow, InboxRow, ManifestSent, MessageView, OutboxRow, QueuedRow,
    SendBody, Sent, Status,
};
use crate::client::Client;

/// Arguments of `rogatory demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to put the three data directories (default: a new directory under the system's
    /// temporary directory). It must not exist yet, or be empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The three fictional agencies: id, name, role, directory name.
const AGENCIES: [(&str, &str, &str, &str); 3] = [
    (
        "FR.DACG",
        "Central authority for mutual legal assistance (fictional)",
        "central-authority",
        "fr",
    ),
    (
        "PH.DOJ-OOC",
        "Office of Cybercrime, central authority (fictional)",
        "central-authority",
        "ph",
    ),
    (
        "BR.MJSP-DRCI",
        "Asset recovery and international cooperation department (fictional)",
        "central-authority",
        "br",
    ),
];

const MLA_REQUEST: &str = include_str!("../../../../spec/examples/mla-request.json");

/// The example MLA request, from FR.DACG's authority to PH.DOJ-OOC's: a request names its
/// requesting authority in the sender's country and its requested authority in the
/// addressee's (spec/PROTOCOL.md §5.4).
fn mla_request() -> Result<String> {
    mla_request_between("FR.DACG", "PH.DOJ-OOC")
}

/// The example MLA request, from `from`'s authority to `to`'s.
fn mla_request_between(from: &str, to: &str) -> Result<String> {
    let mut body: Value = serde_json::from_str(MLA_REQUEST)?;
    for (side, agency) in [("requesting_authority", from), ("requested_authority", to)] {
        body[side]["agency"] = agency.into();
        body[side]["country"] = agency[..2].into();
    }
    Ok(serde_json::to_string_pretty(&body)?)
}
const MLA_STATUS: &str = include_str!("../../../../spec/examples/mla-status.json");
const LIAISON: &str = include_str!("../../../../spec/examples/liaison.json");

struct Demo {
    exe: PathBuf,
    root: PathBuf,
    passphrase: PathBuf,
    nodes: Vec<Option<NodeProcess>>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i);
        }
    }
}

/// The first envelope a send queued.
fn first(r: &Sent) -> Result<&QueuedRow> {
    r.queued.first().context("nothing was queued")
}

fn step(n: u32, title: &str) {
    println!("\n== {n}. {title}");
}

fn free_port() -> Result<u16> {
    // A port free for both TCP and UDP (the node listens on TCP and QUIC).
    for _ in 0..50 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port found on 127.0.0.1")
}

impl Demo {
    fn dir(&self, i: usize) -> PathBuf {
        self.root.join(AGENCIES[i].3)
    }

    /// Runs a `rogatory` command to completion, showing it; returns its standard output.
    fn cli(&self, args: &[&str], show: bool) -> Result<String> {
        self.cli_with(args, show, None)
    }

    /// Runs a `rogatory` command as the official whose token is in `token`, showing it.
    fn cli_as(&self, token: &Path, args: &[&str]) -> Result<String> {
        self.cli_with(args, true, Some(token))
    }

    fn cli_with(&self, args: &[&str], show: bool, token: Option<&Path>) -> Result<String> {
        if show {
            let shown: Vec<String> = args
                .iter()
                .map(|a| {
                    if a.contains(' ') {
                        format!("\"{a}\"")
                    } else {
                        a.to_string()
                    }
                })
                .collect();
            let env = token
                .map(|t| format!("{}={} ", crate::client::TOKEN_FILE_ENV, t.display()))
                .unwrap_or_default();
            println!("$ {env}rogatory {}", shown.join(" "));
        }
        let mut command = Command::new(&self.exe);
        match token {
            Some(t) => command.env(crate::client::TOKEN_FILE_ENV, t),
            None => command.env_remove(crate::client::TOKEN_FILE_ENV),
        };
        // The audit log and chains of custody name the local user; on a machine that has no
        // login name in the environment, the demo's commands are a duty clerk's.
        if crate::client::local_user() == "unknown" {
            command.env("ROGATORY_USER", "duty-clerk");
        }
        let out = command
            .args(args)
            .arg("--passphrase-file")
            .arg(&self.passphrase)
            .env_remove("ROGATORY_DATA_DIR")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run rogatory {}", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "`rogatory {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn start(&mut self, i: usize) -> Result<()> {
        let dir = self.dir(i);
        println!(
            "$ rogatory run --data-dir {}   (in the background; log in {})",
            dir.display(),
            super::supervise::log_path(&dir).display()
        );
        let launch = Launch::new(&self.exe, &dir, Passphrase::File(self.passphrase.clone()));
        let node = NodeProcess::start(&launch)
            .with_context(|| format!("the node of {}", AGENCIES[i].0))?;
        self.nodes[i] = Some(node);
        Ok(())
    }

    /// Stops a node with SIGTERM (a clean shutdown) and waits for it to exit (20 s at most,
    /// then SIGKILL).
    fn stop(&mut self, i: usize) {
        if let Some(mut n) = self.nodes[i].take()
            && let Err(e) = n.stop()
        {
            eprintln!("{e:#}");
        }
    }

    fn api(&self, i: usize) -> Result<Client> {
        Ok(Client::connect(&self.dir(i))?.as_user("duty-officer"))
    }

    /// Sends through agency `i`'s API, showing the equivalent command.
    fn send(&self, i: usize, to: &str, case: &str, kind: &str, body: &str) -> Result<Sent> {
        let file = self.root.join(format!("{kind}.json"));
        crate::files::write_atomic(&file, body.as_bytes(), false, true)?;
        println!(
            "$ rogatory send --data-dir {} --to {to} --case {case} --type {kind} --body {}",
            self.dir(i).display(),
            file.display()
        );
        let body: Value = serde_json::from_str(body)?;
        let r = self.post_send(i, to, case, kind, body)?;
        let q = first(&r)?;
        println!(
            "  sealed for {to} (envelope {}, #{} of the case's chain to {to}) and queued",
            &q.envelope_id[..16],
            q.sequence
        );
        Ok(r)
    }

    /// `POST /v1/send` through agency `i`.
    fn post_send(&self, i: usize, to: &str, case: &str, kind: &str, body: Value) -> Result<Sent> {
        self.api(i)?.post(
            "/v1/send",
            &SendBody {
                to: vec![to.to_string()],
                case: case.to_string(),
                kind: kind.to_string(),
                body,
            },
        )
    }

    /// Sends a status or stage update through agency `i` (showing the equivalent command) and
    /// waits until the partner's receipt is recorded.
    fn update(
        &self,
        i: usize,
        to: &str,
        case: &str,
        kind: &str,
        shown: &str,
        body: Value,
    ) -> Result<()> {
        println!("$ rogatory {shown} --data-dir {}", self.dir(i).display());
        let r = self.post_send(i, to, case, kind, body)?;
        let id = first(&r)?.envelope_id.clone();
        let row = self.settled(i, &id, Duration::from_secs(60))?;
        println!(
            "  → {to}: {}",
            row.receipt
                .as_ref()
                .map_or("no receipt", |r| r.event.as_str())
        );
        // The requesting side's update is a proposal until the requested side's node confirms
        // it (spec/CASES.md §4): wait for that too.
        let c: CaseView = self
            .api(i)?
            .get(&format!("/v1/cases/{}?wait=60", r.case_id))?;
        if !c.proposals.is_empty() {
            bail!("{to} did not confirm the update within a minute");
        }
        if c.summary.our_side == "requesting" {
            println!("  ← {to} confirmed it: it stands in both histories");
        }
        Ok(())
    }

    /// Agency `i`'s view of a case: its status and the updates (who, what), one line each.
    fn view(&self, i: usize, case: &str) -> Result<Vec<String>> {
        let c: CaseView = self.api(i)?.get(&format!("/v1/cases/{case}"))?;
        let mut lines = vec![format!("status {}", c.summary.status)];
        for u in &c.updates {
            lines.push(format!(
                "{} {}",
                u.by,
                u.status
                    .as_deref()
                    .or(u.stage.as_deref())
                    .unwrap_or_default()
            ));
        }
        Ok(lines)
    }

    /// Prints both agencies' views of a case and says whether they are identical.
    fn compare(&self, a: usize, b: usize, case: &str) -> Result<()> {
        let (va, vb) = (self.view(a, case)?, self.view(b, case)?);
        println!("  {:<40} {}", AGENCIES[a].0, AGENCIES[b].0);
        for k in 0..va.len().max(vb.len()) {
            println!(
                "  {:<40} {}",
                va.get(k).map(String::as_str).unwrap_or(""),
                vb.get(k).map(String::as_str).unwrap_or("")
            );
        }
        if va == vb {
            println!("  both views are identical");
            Ok(())
        } else {
            bail!("the two views of case {case} differ")
        }
    }

    /// Waits until agency `i`'s outbox shows the envelope settled; returns its row.
    fn settled(&self, i: usize, envelope: &str, within: Duration) -> Result<OutboxRow> {
        // The node answers when the envelope is settled, or when `within` is over.
        let row: OutboxRow = self.api(i)?.get(&format!(
            "/v1/outbox/{envelope}?wait={}",
            within.as_secs().max(1)
        ))?;
        if matches!(row.state.as_str(), "delivered" | "rejected") {
            Ok(row)
        } else {
            bail!("envelope {envelope} was not delivered within {within:?}")
        }
    }

    fn outbox_state(&self, i: usize, envelope: &str) -> Result<String> {
        let rows: Vec<OutboxRow> = self.api(i)?.get("/v1/outbox")?;
        Ok(rows
            .into_iter()
            .find(|r| r.envelope_id == envelope)
            .map_or_else(|| "unknown".to_string(), |r| r.state))
    }
}

/// PH.DOJ-OOC hands over evidence in the MLA case: subscriber records, sent through the nodes,
/// and seized material listed by its hashes only; FR.DACG's node fetches, verifies and exports
/// the records, and holds nothing of the material.
fn evidence(demo: &Demo, case: &str) -> Result<()> {
    println!("PH.DOJ-OOC hands over the evidence it gathered (spec/EVIDENCE.md):");
    let files = demo.root.join("seized");
    crate::files::create_private_dir(&files)?;
    // Fictional records: example.org accounts, documentation addresses (RFC 5737).
    let mut records = String::from("account,login_ip,login_at\n");
    for n in 0..40_000u32 {
        records.push_str(&format!(
            "user{}@mail.example.org,198.51.100.{},2026-11-{:02}T{:02}:{:02}:00Z\n",
            n % 97,
            n % 250,
            1 + n % 28,
            n % 24,
            n % 60
        ));
    }
    let records_path = files.join("subscriber-records.csv");
    crate::files::write_atomic(&records_path, records.as_bytes(), false, false)?;
    let mut material = vec![0u8; 256 * 1024];
    rogatory_proto::keys::fill_random(&mut material);
    let material_path = files.join("seized-material.bin");
    crate::files::write_atomic(&material_path, &material, false, false)?;
    let ph = demo.dir(1).display().to_string();
    let fr = demo.dir(0).display().to_string();
    print!(
        "{}",
        demo.cli(
            &[
                "evidence",
                "add",
                case,
                &records_path.display().to_string(),
                "--description",
                "Subscriber records produced by the provider",
                "--seized-from",
                "mail service provider",
                "--method",
                "production order",
                "--data-dir",
                &ph,
            ],
            true,
        )?
    );
    print!(
        "{}",
        demo.cli(
            &[
                "evidence",
                "add",
                case,
                &material_path.display().to_string(),
                "--mode",
                "hash-only",
                "--description",
                "Seized video files: hashes only, the content never leaves PH.DOJ-OOC",
                "--perceptual-hash",
                "PDQ:f8f8f0cee0f4a84f06370a22038f63f0",
                "--data-dir",
                &ph,
            ],
            true,
        )?
    );
    let sent: ManifestSent = serde_json::from_str(&demo.cli(
        &[
            "evidence",
            "send",
            case,
            "--to",
            "FR.DACG",
            "--data-dir",
            &ph,
            "--json",
        ],
        true,
    )?)?;
    let id = sent
        .queued
        .first()
        .context("the manifest was not queued")?
        .envelope_id
        .clone();
    demo.settled(1, &id, Duration::from_secs(60))?;
    println!(
        "  the manifest is delivered; FR.DACG's node fetches E1's sealed chunks and checks them"
    );
    let got: Vec<EvidenceRow> = demo.api(0)?.get(&format!("/v1/evidence/{case}?wait=120"))?;
    if got.first().map(|r| r.state.as_str()) != Some("verified") {
        bail!("FR.DACG did not receive E1: {got:?}");
    }
    let out = demo.root.join("exported-subscriber-records.csv");
    print!(
        "{}",
        demo.cli(
            &[
                "evidence",
                "export",
                case,
                "E1",
                "--out",
                &out.display().to_string(),
                "--data-dir",
                &fr,
            ],
            true,
        )?
    );
    if std::fs::read(&out)? != records.as_bytes() {
        bail!("the exported records differ from those added");
    }
    println!("  exported byte for byte as PH.DOJ-OOC added them");
    // FR.DACG's node told PH.DOJ-OOC's of the arrival, the check and the export
    // (evidence-status envelopes): both sides now hold the same chain of custody.
    let queued: Vec<OutboxRow> = demo.api(0)?.get("/v1/outbox")?;
    let n = queued.len();
    let rows: Vec<OutboxRow> = demo
        .api(0)?
        .get(&format!("/v1/outbox?settled={n}&wait=60"))?;
    let settled = rows
        .iter()
        .filter(|r| matches!(r.state.as_str(), "delivered" | "rejected"))
        .count();
    if settled < n {
        bail!("FR.DACG's reports on E1 were not delivered to PH.DOJ-OOC");
    }
    let mut chains = Vec::new();
    for (who, dir) in [("PH.DOJ-OOC", &ph), ("FR.DACG", &fr)] {
        println!("{who}'s view, with each item's chain of custody:");
        print!(
            "{}",
            demo.cli(
                &["evidence", "list", case, "--custody", "--data-dir", dir],
                true
            )?
        );
        let list = demo.api(if who == "FR.DACG" { 0 } else { 1 })?;
        let items: Vec<EvidenceRow> = list.get(&format!("/v1/evidence/{case}"))?;
        let custody: Vec<Value> = items.into_iter().map(|r| r.custody).collect();
        chains.push(custody);
    }
    let verified_there = chains[0]
        .first()
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter().any(|e| {
                e["action"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("verified"))
            })
        });
    if chains[0] != chains[1] || !verified_there {
        bail!("the two sides' chains of custody differ");
    }
    println!(
        "  both custody chains are identical: added, handed over, received, verified and exported"
    );
    // The hash-only material: in no file under FR.DACG's node, nor under PH.DOJ-OOC's.
    let probe = &material[1000..1064];
    for (who, dir) in [("FR.DACG", demo.dir(0)), ("PH.DOJ-OOC", demo.dir(1))] {
        if holds(&dir, probe)? {
            bail!("{who}'s node holds the hash-only material");
        }
    }
    println!("  the hash-only material is in no file of either node: only its hashes travelled");
    Ok(())
}

/// Whether any file under `dir` contains `needle`.
fn holds(dir: &Path, needle: &[u8]) -> Result<bool> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            if holds(&p, needle)? {
                return Ok(true);
            }
        } else if p.is_file()
            && std::fs::read(&p)?
                .windows(needle.len())
                .any(|w| w == needle)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The fingerprint of an agency's root, from the file its `card export` wrote.
fn fingerprint(card: &Path) -> Result<String> {
    Ok(crate::keydir::load_history(card)?.fingerprint())
}

pub(crate) fn run(a: DemoArgs) -> Result<ExitCode> {
    let root = match a.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!(
            "rogatory-demo-{}",
            rogatory_proto::time::format_unix(rogatory_proto::time::now_unix())
                .replace([':', '-'], "")
        )),
    };
    if root.exists() && std::fs::read_dir(&root)?.next().is_some() {
        bail!(
            "{} exists and is not empty; give another --dir",
            root.display()
        );
    }
    crate::files::create_private_dir(&root)?;
    // A fresh random passphrase protects the three demo nodes' keys, as in a real set-up.
    let mut pw = [0u8; 16];
    rogatory_proto::keys::fill_random(&mut pw);
    let passphrase = root.join("passphrase");
    crate::files::write_atomic(&passphrase, hex::encode(pw).as_bytes(), true, false)?;
    let mut demo = Demo {
        exe: std::env::current_exe().context("cannot find the rogatory binary")?,
        root: root.clone(),
        passphrase,
        nodes: vec![None, None, None],
    };
    let t0 = Instant::now();
    println!(
        "Rogatory demo: three agencies, each its own node process on this machine (loopback)."
    );
    println!("Everything lives in {}", root.display());

    step(
        1,
        "Each agency sets up its node: encrypted keys, a signed agency card, a config",
    );
    let mut cards = Vec::new();
    for (i, (id, name, role, _)) in AGENCIES.iter().enumerate() {
        let port = free_port()?;
        let dir = demo.dir(i).display().to_string();
        let tcp = format!("/ip4/127.0.0.1/tcp/{port}");
        let quic = format!("/ip4/127.0.0.1/udp/{port}/quic-v1");
        demo.cli(
            &[
                "init",
                "--agency",
                id,
                "--name",
                name,
                "--role",
                role,
                "--data-dir",
                &dir,
                "--listen",
                &tcp,
                "--listen",
                &quic,
            ],
            true,
        )?;
        // Short back-off for the demo, so a restarted partner is reached within seconds.
        let cfg = demo.dir(i).join(crate::config::CONFIG_FILE);
        let text = std::fs::read_to_string(&cfg)?
            .replace("max_backoff_secs = 3600", "max_backoff_secs = 4")
            .replace("initial_backoff_ms = 500", "initial_backoff_ms = 250");
        crate::files::write_atomic(&cfg, text.as_bytes(), false, true)?;
        let card = root.join(format!("{}.card", AGENCIES[i].3));
        demo.cli(
            &[
                "card",
                "export",
                "--data-dir",
                &dir,
                "--out",
                &card.display().to_string(),
            ],
            false,
        )?;
        println!(
            "  {id}: card {} fingerprint {}",
            card.display(),
            fingerprint(&card)?
        );
        cards.push(card);
    }

    step(
        2,
        "They pin each other's cards, comparing fingerprints read out over another channel",
    );
    for i in 0..3 {
        for (j, card) in cards.iter().enumerate() {
            if i == j {
                continue;
            }
            let fp = fingerprint(card)?;
            let dir = demo.dir(i).display().to_string();
            let card = card.display().to_string();
            demo.cli(
                &[
                    "peer",
                    "add",
                    &card,
                    "--fingerprint",
                    &fp,
                    "--data-dir",
                    &dir,
                ],
                i == 0 && j == 1,
            )?;
        }
    }
    println!("  (and likewise for every pair: each node now accepts only the other two)");

    step(3, "The three nodes start");
    for i in 0..3 {
        demo.start(i)?;
    }
    let st: Status = demo.api(0)?.get("/v1/status")?;
    println!(
        "  {} runs as libp2p peer {} (its agency key), listening on {}",
        st.agency,
        st.peer_id,
        st.listening.join(", ")
    );

    step(
        4,
        "FR.DACG sends a mutual legal assistance request to PH.DOJ-OOC",
    );
    let sent_at = Instant::now();
    let r = demo.send(0, "PH.DOJ-OOC", "new", "mla-request", &mla_request()?)?;
    let case = r.case_id.clone();
    let env1 = first(&r)?.envelope_id.clone();
    println!("  a new case: {case}");
    let row = demo.settled(0, &env1, Duration::from_secs(60))?;
    let receipt = row
        .receipt
        .context("a settled envelope without its receipt")?;
    println!(
        "  delivered in {:.0} ms: PH.DOJ-OOC's signed receipt says {} at {} (receipt {}…), verified and recorded by FR.DACG",
        sent_at.elapsed().as_secs_f64() * 1000.0,
        receipt.event,
        receipt.received_at,
        &receipt.receipt_hash[..16]
    );

    step(
        5,
        "PH.DOJ-OOC reads it (the reading is itself an audit entry) and answers",
    );
    println!("$ rogatory inbox --data-dir {}", demo.dir(1).display());
    let inbox: Vec<InboxRow> = demo.api(1)?.get("/v1/inbox")?;
    for m in &inbox {
        println!(
            "  {}  from {}  {}  case {}",
            &m.envelope_id[..16],
            m.from,
            m.kind,
            m.case_id
        );
    }
    println!(
        "$ rogatory message show {} --data-dir {}",
        &env1[..16],
        demo.dir(1).display()
    );
    let m: MessageView = demo.api(1)?.get(&format!("/v1/messages/{env1}"))?;
    let content = m.content.unwrap_or_default();
    println!(
        "  {} from {}: \"{}\" (read by {}, logged)",
        m.kind.unwrap_or_default(),
        m.from,
        content["subject"]
            .as_str()
            .or(content["summary_of_facts"].as_str())
            .unwrap_or_default()
            .chars()
            .take(70)
            .collect::<String>(),
        m.accessed_by.unwrap_or_default()
    );
    let r = demo.send(1, "FR.DACG", &case, "mla-status", MLA_STATUS)?;
    let env2 = first(&r)?.envelope_id.clone();
    let row = demo.settled(1, &env2, Duration::from_secs(60))?;
    println!("  the status answer reached FR.DACG: {}", row.state);

    step(
        6,
        "FR.DACG informs BR.MJSP-DRCI in the same case (a liaison message)",
    );
    let r = demo.send(0, "BR.MJSP-DRCI", &case, "liaison", LIAISON)?;
    let env3 = first(&r)?.envelope_id.clone();
    demo.settled(0, &env3, Duration::from_secs(60))?;
    println!("  delivered, with BR.MJSP-DRCI's signed receipt");
    println!(
        "  FR.DACG replaces its online keys mid-case (routine rotation): its root certifies the new card"
    );
    let before: Status = demo.api(0)?.get("/v1/status")?;
    let rotated = demo.cli(
        &[
            "keys",
            "rotate",
            "--data-dir",
            &demo.dir(0).display().to_string(),
        ],
        true,
    )?;
    for line in rotated.lines() {
        println!("  {line}");
    }
    let after: Status = demo.api(0)?.get("/v1/status")?;
    println!(
        "  the node restarted as peer {} (was {}); its partners learn the new card from it, checked against the root they pinned: no new telephone call",
        after.peer_id, before.peer_id
    );

    step(
        7,
        "BR.MJSP-DRCI's node goes down; FR.DACG's next message waits for it",
    );
    println!("  (stopping the node of BR.MJSP-DRCI with SIGTERM)");
    demo.stop(2);
    let r = demo.send(0, "BR.MJSP-DRCI", &case, "liaison", LIAISON)?;
    let env4 = first(&r)?.envelope_id.clone();
    // The first attempt fails once every address of BR's card has failed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while demo.outbox_state(0, &env4)? != "waiting-for-retry" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("$ rogatory outbox --data-dir {}", demo.dir(0).display());
    println!("  {}  {}", &env4[..16], demo.outbox_state(0, &env4)?);
    let st: Status = demo.api(0)?.get("/v1/status")?;
    if let Some(p) = st.peers.iter().find(|p| p.agency == "BR.MJSP-DRCI") {
        println!(
            "  FR.DACG keeps retrying with back-off: {} failure(s) so far, last: {}",
            p.failures,
            p.last_error.as_deref().unwrap_or("-")
        );
    }
    println!("  BR.MJSP-DRCI's node comes back:");
    demo.start(2)?;
    let row = demo.settled(0, &env4, Duration::from_secs(120))?;
    println!(
        "  delivered after the restart: {} (receipt at {})",
        row.state,
        row.receipt
            .as_ref()
            .map(|r| r.received_at.as_str())
            .unwrap_or_default()
    );

    step(
        8,
        "PH.DOJ-OOC works the MLA request through its lifecycle; FR.DACG answers its question",
    );
    let mla = |status: &str, extra: Value| {
        let mut v = json!({
            "status": status,
            "effective_at": rogatory_proto::time::format_unix(rogatory_proto::time::now_unix()),
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    };
    demo.update(
        1,
        "FR.DACG",
        &case,
        "mla-status",
        &format!("case update {case} more-information-requested --item \"the exact login times\""),
        mla(
            "more-information-requested",
            json!({ "items": ["the exact login times"] }),
        ),
    )?;
    demo.update(
        0,
        "PH.DOJ-OOC",
        &case,
        "mla-status",
        &format!("case update {case} information-provided --note \"…\""),
        mla(
            "information-provided",
            json!({ "note": "Login times are in the attached log extract" }),
        ),
    )?;
    for status in ["executing", "executed", "closed"] {
        if status == "executed" {
            // What the execution produced is handed over before it is reported executed.
            evidence(&demo, &case)?;
        }
        demo.update(
            1,
            "FR.DACG",
            &case,
            "mla-status",
            &format!("case update {case} {status}"),
            mla(status, json!({})),
        )?;
    }
    println!("Each side's view of the case (rogatory case show {case}):");
    demo.compare(0, 1, &case)?;

    step(
        9,
        "An extradition between FR.DACG and BR.MJSP-DRCI, with its statutory deadlines",
    );
    let today = rogatory_proto::case::Day::of_unix(rogatory_proto::time::now_unix());
    let date = |d: i64| today.plus(d).to_string();
    let stage = |stage: &str, d: i64, extra: Value| {
        let mut v = json!({
            "stage": stage,
            "person_reference": "FR-WANTED-2026-0042",
            "effective_date": date(d),
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    };
    println!(
        "$ rogatory extradition update new provisional-arrest-requested --date {} --to BR.MJSP-DRCI --person FR-WANTED-2026-0042 --data-dir {}",
        date(-25),
        demo.dir(0).display()
    );
    let r = demo.post_send(
        0,
        "BR.MJSP-DRCI",
        "new",
        "extradition-status",
        stage("provisional-arrest-requested", -25, json!({})),
    )?;
    let ext = r.case_id.clone();
    let opened = first(&r)?.envelope_id.clone();
    demo.settled(0, &opened, Duration::from_secs(60))?;
    println!("  a new extradition case: {ext}");
    let show = |d: i64, stage_name: &str| {
        format!("extradition update {ext} {stage_name} --date {}", date(d))
    };
    demo.update(
        2,
        "FR.DACG",
        &ext,
        "extradition-status",
        &show(-24, "arrested"),
        stage("arrested", -24, json!({})),
    )?;
    println!("$ rogatory deadlines --data-dir {}", demo.dir(2).display());
    let deadlines: Vec<DeadlineRow> = demo.api(2)?.get("/v1/deadlines?within=30")?;
    for d in &deadlines {
        println!(
            "  due {}  {}  {}: {}",
            d.due,
            if d.overdue { "OVERDUE" } else { "open   " },
            d.rule,
            d.source
        );
    }
    demo.update(
        0,
        "BR.MJSP-DRCI",
        &ext,
        "extradition-status",
        &show(-10, "formal-request-received"),
        stage("formal-request-received", -10, json!({})),
    )?;
    demo.update(
        2,
        "FR.DACG",
        &ext,
        "extradition-status",
        &show(-8, "hearing-scheduled"),
        stage(
            "hearing-scheduled",
            -8,
            json!({ "scheduled_for": date(-4) }),
        ),
    )?;
    demo.update(
        2,
        "FR.DACG",
        &ext,
        "extradition-status",
        &show(-4, "hearing-held"),
        stage("hearing-held", -4, json!({})),
    )?;
    demo.update(
        2,
        "FR.DACG",
        &ext,
        "extradition-status",
        &show(-3, "judicial-decision"),
        stage("judicial-decision", -3, json!({ "decision": "granted" })),
    )?;
    demo.update(
        2,
        "FR.DACG",
        &ext,
        "extradition-status",
        &show(-1, "executive-decision"),
        stage("executive-decision", -1, json!({ "decision": "granted" })),
    )?;
    demo.update(
        2,
        "FR.DACG",
        &ext,
        "extradition-status",
        &show(0, "surrender-scheduled"),
        stage(
            "surrender-scheduled",
            0,
            json!({ "scheduled_for": date(2) }),
        ),
    )?;
    demo.update(
        2,
        "FR.DACG",
        &ext,
        "extradition-status",
        &show(0, "surrendered"),
        stage("surrendered", 0, json!({})),
    )?;
    println!("Each side's view of the extradition (rogatory case show {ext}):");
    demo.compare(0, 2, &ext)?;
    let c: CaseView = demo.api(0)?.get(&format!("/v1/cases/{ext}"))?;
    for d in &c.deadlines {
        println!(
            "  deadline {:<20} due {}  {}",
            d.rule,
            d.due,
            d.met
                .as_deref()
                .map(|m| format!("met {m}"))
                .unwrap_or_else(|| "open".into())
        );
    }

    officials::run(&demo, 10)?;

    step(
        11,
        "FR.DACG and PH.DOJ-OOC each export the MLA case for an auditor (spec/BUNDLE.md)",
    );
    let mut bundles = Vec::new();
    for (i, name) in [(0usize, "fr"), (1, "ph")] {
        let out = root
            .join(format!("{name}-case.bundle"))
            .display()
            .to_string();
        print!(
            "{}",
            demo.cli(
                &[
                    "case",
                    "export",
                    &case,
                    "--out",
                    &out,
                    "--data-dir",
                    &demo.dir(i).display().to_string()
                ],
                true
            )?
        );
        bundles.push(out);
    }

    step(
        12,
        "The nodes stop; every audit log verifies; the auditor verifies both bundles offline and writes an HTML report",
    );
    for i in 0..3 {
        demo.stop(i);
    }
    for (i, (id, ..)) in AGENCIES.iter().enumerate() {
        let dir = demo.dir(i).display().to_string();
        let out = demo.cli(&["audit", "verify-store", "--data-dir", &dir], i == 0)?;
        println!("  {id}: {}", out.lines().last().unwrap_or_default());
    }
    // No node, no network, no secret: the two files and the verifier.
    let report = root.join("case-report.html").display().to_string();
    // The auditor obtained the two agencies' root fingerprints from them: with those alone,
    // every key each agency used (before and after FR.DACG's rotation) is trusted.
    let pins: Vec<String> = (0..2)
        .map(|i| Ok(format!("{}={}", AGENCIES[i].0, fingerprint(&cards[i])?)))
        .collect::<Result<_>>()?;
    let verdict = demo.cli(
        &[
            "audit",
            "verify",
            &bundles[0],
            &bundles[1],
            "--root",
            &pins[0],
            "--root",
            &pins[1],
            "--html",
            &report,
        ],
        true,
    )?;
    // The summary, with the head of the merged timeline.
    let mut in_timeline = 0;
    for line in verdict.lines() {
        if line.starts_with("Timeline") {
            in_timeline = 1;
        } else if in_timeline > 0 && line.is_empty() {
            if in_timeline > 7 {
                println!("    … {} more", in_timeline - 7);
            }
            in_timeline = 0;
        } else if in_timeline > 0 {
            in_timeline += 1;
            if in_timeline > 7 {
                continue;
            }
        }
        println!("  {line}");
    }

    println!(
        "\nDone in {:.1} s. The three data directories are kept in {}:",
        t0.elapsed().as_secs_f64(),
        root.display()
    );
    for (i, (id, ..)) in AGENCIES.iter().enumerate() {
        println!("  {id:<14} {}", demo.dir(i).display());
    }
    println!(
        "Look around with the other commands, e.g.\n  rogatory audit log {case} --data-dir {}\n  rogatory outbox --data-dir {}\n  rogatory run --data-dir {} --passphrase-file {}\nDelete the directory when done.",
        demo.dir(1).display(),
        demo.dir(0).display(),
        demo.dir(0).display(),
        demo.passphrase.display()
    );
    Ok(ExitCode::SUCCESS)
}
