//! The `wharf` binary: parses the command line and reports errors with an exit code
//! (2 for usage errors, from clap; 1 for everything else).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = wharf::cli::Cli::parse();
    match wharf::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
