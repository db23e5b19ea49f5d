//! The `rogatory` command.

use std::process::ExitCode;

/// mimalloc instead of the C library's allocator: the node allocates and frees many small
/// buffers per message on several threads, where glibc's malloc spent about a tenth of the
/// node's time (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = rogatory_node::cli::parse();
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
