//! Log setup: `tracing` to stderr, as text for people or JSON for machines.
//! The filter comes from `WHARF_LOG` (same syntax as `RUST_LOG`), else the config.
//! Secrets never reach the log: config values print as `..`, and no code path logs
//! a password, token or key.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(level: &str, format: LogFormat) {
    // rustls warns about routine client behaviour (an IP address sent as SNI by
    // lftp and Python); keep it to errors unless the filter asks for it.
    let quiet = |f: String| {
        if f.contains("rustls") {
            f
        } else {
            format!("{f},rustls=error")
        }
    };
    let filter = std::env::var("WHARF_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(quiet(f)).ok())
        .or_else(|| EnvFilter::try_new(quiet(level.to_string())).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
