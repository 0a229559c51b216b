//! The `wharf` binary: parses the command line and reports errors with an exit code
//! (2 for usage errors, from clap; 1 for everything else).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = wharf::cli::Cli::parse();
    if !matches!(cli.command, wharf::cli::Command::Serve) {
        // Commands that print (`wharf audit | head`) should end quietly when the
        // reader goes away, as Unix tools do, instead of panicking on EPIPE. The
        // server keeps Rust's default (ignored), so a closed socket is an error.
        // SAFETY: called before any thread is started; SIG_DFL is always valid.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match wharf::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
