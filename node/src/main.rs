//! The `rogatory` command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = rogatory_node::cli::Cli::parse();
    match rogatory_node::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            rogatory_node::cli::exit_code(&err)
        }
    }
}
