//! Log setup: `tracing` to stderr, as text for people or JSON for machines.
//! The filter comes from `WHARF_LOG` (same syntax as `RUST_LOG`), else the config.
//! The filter sits behind tracing-subscriber's reload layer so SIGHUP can change
//! `[log] level` without a restart ([`set_level`]); the format cannot change.
//! Secrets never reach the log: config values print as `..`, and no code path logs
//! a password, token or key.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::config::LogFormat;

/// The handle of the installed filter; unset when another subscriber was first
/// (tests) or before [`init`].
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// rustls warns about routine client behaviour (an IP address sent as SNI by lftp
/// and Python); keep it to errors unless the filter asks for it.
fn quiet(f: &str) -> String {
    if f.contains("rustls") {
        f.to_string()
    } else {
        format!("{f},rustls=error")
    }
}

fn env_override() -> Option<String> {
    std::env::var("WHARF_LOG").ok().filter(|f| !f.is_empty())
}

pub fn init(level: &str, format: LogFormat) {
    let filter = env_override()
        .and_then(|f| EnvFilter::try_new(quiet(&f)).ok())
        .or_else(|| EnvFilter::try_new(quiet(level)).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::stderr().is_terminal();
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests) is harmless: keep the first subscriber.
    let installed = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_ansi(false),
            )
            .try_init(),
    };
    if installed.is_ok() {
        let _ = FILTER.set(handle);
    }
}

/// What [`set_level`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum LevelChange {
    Changed,
    /// `WHARF_LOG` is set and wins over the file.
    Overridden,
    /// No reloadable subscriber is installed (tests).
    NotInstalled,
}

/// Replaces the filter with `level` (the `[log] level` syntax). A filter that does
/// not parse is an error and the old one stays.
pub fn set_level(level: &str) -> Result<LevelChange, String> {
    if env_override().is_some() {
        return Ok(LevelChange::Overridden);
    }
    let filter = EnvFilter::try_new(quiet(level)).map_err(|e| format!("{level:?}: {e}"))?;
    let Some(handle) = FILTER.get() else {
        return Ok(LevelChange::NotInstalled);
    };
    handle.reload(filter).map_err(|e| e.to_string())?;
    Ok(LevelChange::Changed)
}
