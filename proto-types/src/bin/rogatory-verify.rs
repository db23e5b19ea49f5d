//! `rogatory-verify`: the offline verifier of case export bundles, on its own. It depends on
//! `rogatory-proto` only (no network, storage or async runtime), so an auditor can build and
//! run just this: `cargo install --path proto-types --features cli --bin rogatory-verify`.
//! It gives the same verdicts as `rogatory audit verify`.

use std::process::ExitCode;

use clap::Parser;
use rogatory_proto::verify_cli::{self, VerifyArgs};

/// Verify Rogatory case export bundles offline: every signature, every receipt against its
/// envelope, every inclusion proof, every checkpoint against the log, the partners'
/// cosignatures against the policy, each sender's chain of envelopes, and — given both sides'
/// bundles of a case — that what one side sent the other holds, with the same receipt, and
/// that both saw one history. Exits 0 only if everything holds, 1 if a check fails, 2 if a
/// file cannot be read.
#[derive(Debug, Parser)]
#[command(name = "rogatory-verify", version)]
struct Args {
    #[command(flatten)]
    verify: VerifyArgs,
}

fn main() -> ExitCode {
    let a = Args::parse();
    match verify_cli::run(&a.verify) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rogatory-verify: {e}");
            ExitCode::from(2)
        }
    }
}
