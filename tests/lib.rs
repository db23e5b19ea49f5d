//! Helpers for the workspace integration tests: locating the real `rogatory` binary and running
//! it as a separate process, as an operator or a script would.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Path of the `rogatory` binary built from this workspace, built (or brought up to date) on
/// first use.
pub fn rogatory_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // The test executable lives in target/<profile>/deps/; the binary in target/<profile>/.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
        let bin = profile_dir.join(format!("rogatory{}", std::env::consts::EXE_SUFFIX));
        // Always (re)build: `cargo test -p rogatory-tests` alone does not rebuild the binary, and
        // a stale one would test old code. When it is up to date this takes a fraction of a second.
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
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
