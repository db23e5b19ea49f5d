//! Running nodes as separate processes: what `rogatory demo` does for its three agencies, and
//! what the integration tests do for theirs. A node is started with `rogatory run`, its output
//! copied to `node.log` in its data directory, and taken as up when it prints `api on ADDR`
//! (its API listens and its signals are taken over); it is stopped with SIGTERM, cleanly, or
//! killed with SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// How long a node has to say it is up.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping node has to exit before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// How a started node gets its passphrase.
#[derive(Debug, Clone)]
pub enum Passphrase {
    /// `--passphrase-file PATH`.
    File(PathBuf),
    /// `ROGATORY_PASSPHRASE` in its environment (the node drops it at once).
    Env(String),
}

/// What to start.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `rogatory` executable.
    pub exe: PathBuf,
    /// The node's data directory.
    pub dir: PathBuf,
    /// Its passphrase.
    pub passphrase: Passphrase,
    /// Environment variables to set.
    pub env: Vec<(String, String)>,
    /// At most this many open descriptors (`ulimit -n`), as a service manager may set.
    pub nofile: Option<u32>,
    /// A command that runs the node (its program and arguments come after), such as
    /// `ip netns exec NAME`, which must become the node by `exec` (same process id).
    pub wrap: Vec<String>,
}

impl Launch {
    /// Starting the node of `dir` with `exe`.
    pub fn new(exe: &Path, dir: &Path, passphrase: Passphrase) -> Self {
        Self {
            exe: exe.to_path_buf(),
            dir: dir.to_path_buf(),
            passphrase,
            env: Vec::new(),
            nofile: None,
            wrap: Vec::new(),
        }
    }
}

/// A running node process.
#[derive(Debug)]
pub struct NodeProcess {
    child: Option<Child>,
    dir: PathBuf,
}

/// The log file of a node started here.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("node.log")
}

impl NodeProcess {
    /// Starts a node and waits until it says it is up.
    pub fn start(l: &Launch) -> Result<Self> {
        let dir = &l.dir;
        let _ = std::fs::remove_file(dir.join(crate::api::ADDR_FILE));
        let log = {
            let mut o = std::fs::OpenOptions::new();
            o.create(true).append(true);
            std::os::unix::fs::OpenOptionsExt::custom_flags(
                &mut o,
                rustix::fs::OFlags::NOFOLLOW.bits() as i32,
            );
            o.open(log_path(dir))
                .with_context(|| format!("cannot open {}", log_path(dir).display()))?
        };
        let mut cmd = match (l.nofile, l.wrap.split_first()) {
            (None, None) => Command::new(&l.exe),
            (None, Some((program, args))) => {
                let mut c = Command::new(program);
                c.args(args).arg(&l.exe);
                c
            }
            (Some(n), _) => {
                // The shell sets the limit, then becomes the node (same process id).
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$@\"")])
                    .arg("sh")
                    .args(&l.wrap)
                    .arg(&l.exe);
                c
            }
        };
        cmd.args(["run", "--data-dir"])
            .arg(dir)
            .env_remove("ROGATORY_DATA_DIR");
        match &l.passphrase {
            Passphrase::File(p) => {
                cmd.arg("--passphrase-file").arg(p);
            }
            Passphrase::Env(v) => {
                cmd.env("ROGATORY_PASSPHRASE", v);
            }
        }
        for (k, v) in &l.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.try_clone()?)
            .spawn()
            .with_context(|| format!("cannot start {}", l.exe.display()))?;
        // Up when the node prints `api on ADDR`; its output goes to the log meanwhile.
        let stdout = child.stdout.take().context("no output from the node")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::{BufRead, Write};
            let mut log = log;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = writeln!(log, "{line}");
                if line.starts_with("api on ") {
                    let _ = tx.send(());
                }
            }
        });
        let mut node = NodeProcess {
            child: Some(child),
            dir: dir.clone(),
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(()) => Ok(node),
            Err(e) => {
                node.kill();
                let why = match e {
                    std::sync::mpsc::RecvTimeoutError::Disconnected => "exited",
                    std::sync::mpsc::RecvTimeoutError::Timeout => "did not start within 60 s",
                };
                bail!(
                    "the node of {} {why}; its log ({}):\n{}",
                    dir.display(),
                    log_path(dir).display(),
                    std::fs::read_to_string(log_path(dir)).unwrap_or_default()
                )
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops it with SIGTERM (a clean shutdown) and waits for it to exit; kills it if it has
    /// not within [`STOP_TIMEOUT`].
    pub fn stop(&mut self) -> Result<ExitStatus> {
        let Some(mut c) = self.child.take() else {
            bail!("the node of {} is not running", self.dir.display());
        };
        let pid = rustix::process::Pid::from_raw(c.id() as i32).context("a process id")?;
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        // Its exit, waited for on a thread, is the event; the child is reaped only there, so
        // its process id cannot be reused before a SIGKILL after the timeout reaches it.
        let (exited_tx, exited) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = c.wait();
            let _ = exited_tx.send(());
            status
        });
        let timed_out = exited.recv_timeout(STOP_TIMEOUT).is_err();
        if timed_out {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        let status = waiter.join().map_err(|_| {
            anyhow::anyhow!("waiting for the node of {} failed", self.dir.display())
        })??;
        if timed_out {
            bail!(
                "the node of {} did not stop within {STOP_TIMEOUT:?} and was killed ({status})",
                self.dir.display()
            );
        }
        Ok(status)
    }

    /// Kills it with SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
    }
}
