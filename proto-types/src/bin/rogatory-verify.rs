//! `rogatory-verify`: the offline verifier of case export bundles, on its own. It depends on
//! `rogatory-proto` only (no network, storage or async runtime), so an auditor can build and
//! run just this: `cargo install --path proto-types --features cli --bin rogatory-verify`.
//! It gives the same verdicts as `rogatory audit verify`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rogatory_proto::audit::note::Policy;
use rogatory_proto::bundle::{self, Bundle};
use rogatory_proto::card::AgencyCard;

/// Verify Rogatory case export bundles offline: every signature, every receipt against its
/// envelope, every inclusion proof, every checkpoint against the log, the partners'
/// cosignatures against the policy, each sender's chain of envelopes, and — given both sides'
/// bundles of a case — that what one side sent the other holds, with the same receipt, and
/// that both saw one history. Exits 0 only if everything holds, 1 if a check fails, 2 if a
/// file cannot be read.
#[derive(Debug, Parser)]
#[command(name = "rogatory-verify", version)]
struct Args {
    /// The bundles (from `rogatory case export`), one per agency.
    #[arg(required = true)]
    bundles: Vec<PathBuf>,
    /// A tlog-policy obtained independently, instead of each bundle's own.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// An agency card obtained independently (repeatable): it replaces the bundles' copy.
    #[arg(long = "card")]
    cards: Vec<PathBuf>,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
}

fn read(path: &PathBuf, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    f.take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(out)
}

fn run(a: &Args) -> Result<bool, String> {
    let policy = match &a.policy {
        Some(p) => {
            let text = String::from_utf8(read(p, 1 << 20)?)
                .map_err(|_| format!("{}: not text", p.display()))?;
            Some(Policy::parse(&text).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    let mut cards = Vec::new();
    for c in &a.cards {
        cards.push(
            AgencyCard::from_bytes(&read(c, 1 << 20)?)
                .map_err(|e| format!("{}: {e}", c.display()))?,
        );
    }
    let mut bundles = Vec::new();
    for p in &a.bundles {
        let f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
        bundles.push(Bundle::read_from(f).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    let v = bundle::verify(&bundles, policy.as_ref(), &cards);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", bundle::report_text(&v));
    }
    Ok(v.ok())
}

fn main() -> ExitCode {
    let a = Args::parse();
    match run(&a) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rogatory-verify: {e}");
            ExitCode::from(2)
        }
    }
}
