//! Helpers for the workspace integration tests: locating the real `rogatory` binary and running
//! it as a separate process, as an operator or a script would.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Path of the stand-alone verifier `rogatory-verify` (package `rogatory-proto`, feature
/// `cli`), built (or brought up to date) on first use, like [`rogatory_bin`].
pub fn verify_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = rogatory_bin()
            .with_file_name(format!("rogatory-verify{}", std::env::consts::EXE_SUFFIX));
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "-p",
            "rogatory-proto",
            "--features",
            "cli",
            "--bin",
            "rogatory-verify",
        ]);
        if bin.parent().is_some_and(|p| p.ends_with("release")) {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building rogatory-verify failed");
        assert!(bin.exists(), "{} not found", bin.display());
        bin
    })
}

/// Path of the `rogatory` binary built from this workspace, built (or brought up to date) on
/// first use.
pub fn rogatory_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // A test executable lives in target/<profile>/deps/, a binary of this crate in
        // target/<profile>/; `rogatory` is built into target/<profile>/.
        let exe = std::env::current_exe().expect("test executable path");
        let mut profile_dir = exe.parent().expect("target dir");
        if profile_dir.ends_with("deps") {
            profile_dir = profile_dir.parent().expect("target dir");
        }
        let bin = profile_dir.join(format!("rogatory{}", std::env::consts::EXE_SUFFIX));
        // Always (re)build: `cargo test -p rogatory-tests` alone does not rebuild the binary, and
        // a stale one would test old code. When it is up to date this takes a fraction of a second.
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "-p",
            "rogatory-node",
            "--bin",
            "rogatory",
        ]);
        if profile_dir.ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building the rogatory binary failed");
        assert!(bin.exists(), "{} not found", bin.display());
        bin
    })
}

/// The result of one run of the binary.
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Panics with the whole output unless the command succeeded.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the command failed.
    pub fn failed(self) -> Self {
        assert_ne!(
            self.code, 0,
            "command unexpectedly succeeded:\n{}",
            self.stdout
        );
        self
    }
}

/// Runs `rogatory ARGS…` in `dir`.
pub fn rogatory(dir: &Path, args: &[&str]) -> Run {
    rogatory_with(dir, args, &[])
}

/// Runs `rogatory ARGS…` in `dir` with extra environment variables (and none of the caller's
/// `ROGATORY_*` ones), with no standard input.
pub fn rogatory_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(rogatory_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("ROGATORY_DATA_DIR")
        .env_remove("ROGATORY_PASSPHRASE")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run rogatory");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// The repository's spec/ directory.
pub fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec")
}

/// The passphrase the tests give nodes set up with encrypted keys.
pub const TEST_PASSPHRASE: (&str, &str) = ("ROGATORY_PASSPHRASE", "correct horse battery staple");

/// Runs `rogatory` with the words of `line` (no word contains a space) and the test passphrase.
pub fn run_line(dir: &Path, line: &str) -> Run {
    let args: Vec<&str> = line.split_whitespace().collect();
    rogatory_with(dir, &args, &[TEST_PASSPHRASE])
}

/// The fingerprint of a card file, as `rogatory card show` prints it.
pub fn fingerprint(dir: &Path, card: &str) -> String {
    let out = run_line(dir, &format!("card show {card} --json"))
        .ok()
        .stdout;
    let v: serde_json::Value = serde_json::from_str(&out).expect("card show --json");
    v["fingerprint"].as_str().unwrap_or_default().to_string()
}

/// Sets up agencies XA.MOJ-CA, XB.DOJ-CA and XC.POLICE in `xa`, `xb`, `xc` under `dir` with
/// `init` (encrypted keys, `extra` appended to each command line), and exports their cards as
/// `xa.card`, `xb.card`, `xc.card`.
pub fn init_three(dir: &Path, extra: &str) {
    for (id, sub) in [
        ("XA.MOJ-CA", "xa"),
        ("XB.DOJ-CA", "xb"),
        ("XC.POLICE", "xc"),
    ] {
        run_line(
            dir,
            &format!("init --agency {id} --name {sub} --data-dir {sub} {extra}"),
        )
        .ok();
        run_line(
            dir,
            &format!("card export --data-dir {sub} --out {sub}.card"),
        )
        .ok();
    }
}

/// A free TCP port on 127.0.0.1 (taken by the OS, then released for a node to bind).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Agencies as separate `rogatory run` processes on 127.0.0.1, each pinned to all the others,
/// with encrypted keys. Every node still running is killed when the cluster is dropped.
pub struct Cluster {
    /// Agency ids.
    pub ids: Vec<String>,
    /// Their data directories.
    pub dirs: Vec<PathBuf>,
    nodes: Vec<Option<rogatory_node::cli::supervise::NodeProcess>>,
}

impl Cluster {
    /// Sets up `ids` under `root` (one directory per agency, named by its lowercase id), each
    /// listening on its own loopback port, with retries capped at `max_backoff_secs`.
    pub fn new(root: &Path, ids: &[&str], max_backoff_secs: u64) -> Self {
        Self::with_transport(root, ids, max_backoff_secs, "tcp")
    }

    /// Like [`Cluster::new`], the nodes listening on `transport` only: `tcp` or `quic`.
    pub fn with_transport(
        root: &Path,
        ids: &[&str],
        max_backoff_secs: u64,
        transport: &str,
    ) -> Self {
        let listens = ids
            .iter()
            .map(|_| {
                let port = free_port();
                match transport {
                    "quic" => format!("/ip4/127.0.0.1/udp/{port}/quic-v1"),
                    _ => format!("/ip4/127.0.0.1/tcp/{port}"),
                }
            })
            .collect::<Vec<_>>();
        Self::listening(root, ids, max_backoff_secs, &listens)
    }

    /// Like [`Cluster::new`], agency `i` listening on `listens[i]` (multiaddrs separated by
    /// spaces, which its card gives partners to dial).
    pub fn listening(root: &Path, ids: &[&str], max_backoff_secs: u64, listens: &[String]) -> Self {
        let mut dirs = Vec::new();
        for (id, listen) in ids.iter().zip(listens) {
            let sub = id.to_ascii_lowercase();
            let listen = listen
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" --listen ");
            run_line(
                root,
                &format!("init --agency {id} --name {sub} --data-dir {sub} --listen {listen}"),
            )
            .ok();
            run_line(
                root,
                &format!("card export --data-dir {sub} --out {sub}.card"),
            )
            .ok();
            let cfg = root.join(&sub).join("rogatory.toml");
            let text = std::fs::read_to_string(&cfg).unwrap().replace(
                "max_backoff_secs = 3600",
                &format!("max_backoff_secs = {max_backoff_secs}"),
            );
            std::fs::write(&cfg, text).unwrap();
            dirs.push(root.join(&sub));
        }
        for (i, a) in ids.iter().enumerate() {
            for (j, b) in ids.iter().enumerate() {
                if i != j {
                    let card = format!("{}.card", b.to_ascii_lowercase());
                    run_line(
                        root,
                        &format!(
                            "peer add {card} --fingerprint {} --data-dir {}",
                            fingerprint(root, &card),
                            a.to_ascii_lowercase()
                        ),
                    )
                    .ok();
                }
            }
        }
        Self {
            ids: ids.iter().map(|s| s.to_string()).collect(),
            nodes: ids.iter().map(|_| None).collect(),
            dirs,
        }
    }

    /// Starts node `i` and waits until its API answers.
    pub fn start(&mut self, i: usize) {
        self.start_with(i, None);
    }

    /// Starts node `i` with at most `nofile` open descriptors (`ulimit -n`, soft and hard, as
    /// a service manager's default of 1,024 would leave it), and waits until its API answers.
    pub fn start_limited(&mut self, i: usize, nofile: u32) {
        self.start_with(i, Some(nofile));
    }

    /// Starts node `i` through `wrap` (e.g. `ip netns exec NAME`: on a host of its own), and
    /// waits until its API answers.
    pub fn start_wrapped(&mut self, i: usize, wrap: &[&str]) {
        self.start_launch(i, None, wrap);
    }

    fn start_with(&mut self, i: usize, nofile: Option<u32>) {
        self.start_launch(i, nofile, &[]);
    }

    fn start_launch(&mut self, i: usize, nofile: Option<u32>, wrap: &[&str]) {
        use rogatory_node::cli::supervise::{Launch, NodeProcess, Passphrase};
        let mut launch = Launch::new(
            rogatory_bin(),
            &self.dirs[i],
            Passphrase::Env(TEST_PASSPHRASE.1.into()),
        );
        launch.nofile = nofile;
        launch.wrap = wrap.iter().map(|s| s.to_string()).collect();
        launch.env.push((
            "ROGATORY_LOG".into(),
            std::env::var("ROGATORY_LOG").unwrap_or_else(|_| "info".into()),
        ));
        match NodeProcess::start(&launch) {
            Ok(n) => self.nodes[i] = Some(n),
            Err(e) => panic!("node {}: {e:#}", self.ids[i]),
        }
    }

    /// Kills node `i` with SIGKILL: no chance to finish anything.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut n) = self.nodes[i].take() {
            n.kill();
        }
    }

    /// Stops node `i` with SIGTERM and waits for its clean exit.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut n) = self.nodes[i].take() {
            let status = n.stop().expect("the node stops");
            assert!(
                status.success(),
                "node {} exited with {status}",
                self.ids[i]
            );
        }
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].as_ref().and_then(|n| n.pid())
    }

    /// A client of node `i`'s local API.
    pub fn api(&self, i: usize) -> rogatory_node::client::Client {
        rogatory_node::client::Client::connect(&self.dirs[i])
            .expect("the node's API")
            .as_user("test-clerk")
    }

    /// Sends a message through node `i`; returns the API's answer.
    pub fn send(
        &self,
        i: usize,
        to: &str,
        case: &str,
        kind: &str,
        body: &serde_json::Value,
    ) -> serde_json::Value {
        self.api(i)
            .post::<serde_json::Value>(
                "/v1/send",
                &serde_json::json!({ "to": [to], "case": case, "type": kind, "body": body }),
            )
            .expect("send")
    }

    /// Node 0 sends the example MLA request to node 1 in a new case and waits until it is
    /// delivered (`POST /v1/send?wait=`); returns the case id.
    pub fn first_request(&self) -> String {
        let sent = self
            .api(0)
            .post::<serde_json::Value>(
                "/v1/send?wait=60",
                &serde_json::json!({ "to": [self.ids[1]], "case": "new", "type": "mla-request",
                                     "body": example("mla-request.json") }),
            )
            .expect("send");
        assert_eq!(sent["queued"][0]["state"], "delivered", "{sent}");
        sent["case_id"].as_str().expect("a case id").to_string()
    }

    /// Waits until node `i`'s outbox has at least `n` settled (delivered or rejected) entries;
    /// returns the outbox.
    pub fn wait_settled(
        &self,
        i: usize,
        n: usize,
        within: std::time::Duration,
    ) -> Vec<serde_json::Value> {
        // The node answers once `n` are settled, or when `within` is over.
        let rows: serde_json::Value = self
            .api(i)
            .get::<serde_json::Value>(&format!(
                "/v1/outbox?settled={n}&wait={}",
                within.as_secs().max(1)
            ))
            .expect("outbox");
        let rows = rows.as_array().cloned().unwrap_or_default();
        let settled = rows
            .iter()
            .filter(|r| matches!(r["state"].as_str(), Some("delivered" | "rejected")))
            .count();
        assert!(
            settled >= n,
            "only {settled} of {n} settled within {within:?}"
        );
        rows
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Polls `f` until it holds: for state another process writes to files, where there is no
/// event to wait on. Fails after `within`.
pub fn eventually(within: std::time::Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !f() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Threads of a process (`/proc/PID/status`).
pub fn threads_of(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Open descriptors of a process (`/proc/PID/fd`).
pub fn descriptors_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Raises this process's soft limit of open descriptors to its hard limit (a test that opens
/// many connections itself).
pub fn raise_descriptor_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    l.current = l.maximum;
    let _ = setrlimit(Resource::Nofile, l);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// An agency's key directory as its node has it (keys encrypted under the test passphrase), for
/// a test that seals envelopes with an agency's real keys.
pub fn load_keys(dir: &Path) -> rogatory_node::keydir::KeyDir {
    let path = dir.join(rogatory_node::keydir::SECRET_KEYS_ENCRYPTED);
    let raw = std::fs::read(&path).expect("encrypted keys");
    let keys = rogatory_node::secret::open(&raw, TEST_PASSPHRASE.1, &path).expect("open keys");
    let history = rogatory_node::keydir::own_history(dir).expect("key history");
    let card = history.current_card().clone();
    rogatory_node::keydir::KeyDir {
        keys,
        card,
        history,
    }
}

/// Delivers one envelope over libp2p with `from`'s identity to the node of `to` (its card and
/// the first address on it) and returns the receipt, as `rogatory deliver` does.
pub fn deliver(
    from: &rogatory_node::keydir::KeyDir,
    to: &rogatory_proto::card::AgencyCard,
    envelope: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let addr: libp2p::Multiaddr = to.body().addresses[0].parse().expect("address on the card");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(rogatory_node::net::deliver(from, to, addr, envelope))
        .map_err(|e| format!("{e:#}"))
}

/// An example message body from spec/examples/.
pub fn example(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(spec_dir().join("examples").join(name)).expect("example");
    serde_json::from_str(&text).expect("example JSON")
}

/// A fresh agency (keys in clear, a signed card) in `root/ID`, for in-process tests and the
/// load generator.
pub fn agency(root: &Path, id: &str) -> rogatory_node::keydir::KeyDir {
    use rogatory_proto::card::{CardDetails, Role};
    rogatory_node::keydir::KeyDir::create(
        &root.join(id),
        CardDetails {
            id: rogatory_proto::ids::AgencyId::new(id).expect("agency id"),
            name: id.into(),
            roles: vec![Role::CentralAuthority],
            addresses: vec![],
            languages: vec!["en".into()],
            legal_bases: vec![],
            issued_at: 1_700_000_000,
        },
    )
    .expect("agency keys")
}

/// A small deterministic generator (xorshift64*), seeded from `ROGATORY_TEST_SEED` or the clock
/// and printed, so a failing run can be replayed.
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from `ROGATORY_TEST_SEED`, or the clock; the seed is printed.
    pub fn seeded() -> Self {
        let seed = std::env::var("ROGATORY_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(7)
                    | 1
            });
        eprintln!("ROGATORY_TEST_SEED={seed}");
        Rng(seed)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}
