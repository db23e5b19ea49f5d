//! `rogatory console`: where the running node's console is, and opening it in a browser.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

/// Arguments of `rogatory console`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The data directory of the running node.
    #[arg(long, env = "ROGATORY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the address only; do not open a browser.
    #[arg(long)]
    pub no_open: bool,
}

/// Runs `rogatory console`.
pub(super) fn run(a: ConsoleArgs) -> Result<ExitCode> {
    let dir = super::init::data_dir(a.data_dir)?;
    let (addr, _) = crate::api::locate(&dir)
        .map_err(|e| anyhow::Error::new(crate::client::NotRunning(format!("{e:#}"))))?;
    let url = format!("http://{addr}/");
    println!("console on {url}");
    println!(
        "Sign in with your own token (the file ROGATORY_TOKEN_FILE names), or, while the node has no accounts, with its token in {}.",
        dir.join(crate::api::TOKEN_FILE).display()
    );
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    if !a.no_open && desktop {
        match std::process::Command::new("xdg-open")
            .arg(&url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(_) => println!("Opened in your browser."),
            Err(e) => println!("Open it in a browser on this machine (xdg-open: {e})."),
        }
    } else {
        println!("Open it in a browser on this machine: it answers on the loopback address only.");
    }
    Ok(ExitCode::SUCCESS)
}
