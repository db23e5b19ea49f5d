//! `rogatory stats`: the figures of a period, from the running node (spec/STATS.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use rogatory_proto::stats::Figures;
use rogatory_proto::stats::render::{self, Format};

use super::online::Common;

/// Arguments of `rogatory stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The period's first day (YYYY-MM-DD) or second (YYYY-MM-DDTHH:MM:SSZ); default: the
    /// beginning.
    #[arg(long)]
    pub from: Option<String>,
    /// The period's last day or second; default: now.
    #[arg(long)]
    pub until: Option<String>,
    /// Victim counts from 1 to THRESHOLD − 1 are never shown, nor any count from which one
    /// could be worked out (default and least: the node's `[stats] threshold`, 5 unless set).
    #[arg(long)]
    pub threshold: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the output to this new file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write a self-contained HTML report with charts (SVG, no script) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

/// The query string of `GET /v1/stats` for these arguments.
fn query(a: &StatsArgs) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(t) = a.threshold {
        q.append_pair("threshold", &t.to_string());
    }
    if let Some(f) = &a.from {
        q.append_pair("from", f);
    }
    if let Some(u) = &a.until {
        q.append_pair("until", u);
    }
    format!("/v1/stats?{}", q.finish())
}

/// Runs `rogatory stats`.
pub(super) fn run(a: StatsArgs) -> Result<ExitCode> {
    let figures: Figures = super::cases::client(&a.common)?.get(&query(&a))?;
    let format = if a.common.json {
        Format::Json
    } else {
        a.format
    };
    let out = render::render(&figures, format);
    if let Some(path) = &a.html {
        crate::files::write_atomic(path, render::html(&figures).as_bytes(), false, true)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("HTML report: {}", path.display());
    }
    match &a.out {
        Some(path) => crate::files::write_atomic(path, out.as_bytes(), false, false)
            .with_context(|| format!("writing {}", path.display()))?,
        None => print!("{out}"),
    }
    Ok(ExitCode::SUCCESS)
}
