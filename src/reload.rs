//! What SIGHUP does to a running gateway: it never stops it (a stock systemd
//! `ExecReload=kill -HUP $MAINPID` must not take the gateway down). It re-reads
//! the TLS certificates (FTPS, HTTPS) and the config file, applies what can change
//! safely, logs what changed, and names what needs a restart. Open sessions are
//! never touched; a bad new file keeps the old one and the log says why.
//!
//! Swapped live: certificate files' contents (new handshakes get the new pair),
//! `[log] level`. Every other change, `[links]` and `[defender]` included (their
//! values are copied into the services at start), is logged as needing a restart.

use std::sync::{Arc, Mutex};

use tokio::signal::unix::Signal;
use tokio::sync::watch;

use crate::certs::ReloadableCert;
use crate::config::Config;
use crate::logging::{self, LevelChange};

/// The running settings and the certificates that a reload can replace.
pub struct Reloader {
    running: Mutex<Config>,
    certs: Vec<Arc<ReloadableCert>>,
}

impl Reloader {
    pub fn new(config: Config, certs: Vec<Arc<ReloadableCert>>) -> Reloader {
        Reloader {
            running: Mutex::new(config),
            certs,
        }
    }

    /// Re-reads certificates and configuration; every outcome goes to the log.
    /// Blocking (file reads): call from a blocking thread.
    pub fn reload(&self) {
        tracing::info!("SIGHUP: reloading certificates and settings");
        for cert in &self.certs {
            match cert.reload() {
                Ok(Some(fingerprint)) => tracing::info!(
                    file = %cert.cert_path().display(),
                    %fingerprint,
                    "{} certificate reloaded; new connections get it",
                    cert.what()
                ),
                Ok(None) => tracing::info!(
                    file = %cert.cert_path().display(),
                    "{} certificate unchanged",
                    cert.what()
                ),
                Err(e) => tracing::error!(
                    fingerprint = %cert.fingerprint(),
                    "{} certificate not reloaded, still serving the old one: {e}",
                    cert.what()
                ),
            }
        }
        let mut running = self.running.lock().expect("reload lock");
        let fresh = match Config::load(running.source.as_deref(), Some(&running.data_dir)) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("configuration not reloaded, the running settings stay: {e}");
                return;
            }
        };
        if fresh.log_level != running.log_level {
            match logging::set_level(&fresh.log_level) {
                Ok(LevelChange::Changed | LevelChange::NotInstalled) => {
                    tracing::info!(level = %fresh.log_level, "log level changed");
                    running.log_level = fresh.log_level.clone();
                }
                Ok(LevelChange::Overridden) => {
                    tracing::warn!("[log] level changed in the file, but WHARF_LOG is set and wins")
                }
                Err(e) => tracing::error!("[log] level not changed: {e}"),
            }
        }
        let restart: Vec<&str> = restart_only(&running, &fresh);
        if restart.is_empty() {
            tracing::info!("reload done");
        } else {
            tracing::warn!(
                sections = %restart.join(", "),
                "these settings changed and take effect only after a restart"
            );
        }
    }
}

/// Sections whose values differ between the running and the new configuration
/// and that cannot be swapped in a running process. Compared through their debug
/// form, which is never logged (it may hold connector options).
fn restart_only<'a>(old: &Config, new: &Config) -> Vec<&'a str> {
    let differs =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    let mut out = Vec::new();
    let checks: [(&str, bool); 12] = [
        ("[links]", differs(&old.links, &new.links)),
        ("[defender]", differs(&old.defender, &new.defender)),
        ("[log] format", old.log_format != new.log_format),
        ("[sftp]", differs(&old.sftp, &new.sftp)),
        ("[ftps]", differs(&old.ftps, &new.ftps)),
        ("[http]", differs(&old.http, &new.http)),
        ("[mail]", differs(&old.mail, &new.mail)),
        ("[metrics]", differs(&old.metrics, &new.metrics)),
        ("[audit]", differs(&old.audit, &new.audit)),
        (
            "[storage]",
            old.buffer_size != new.buffer_size
                || old.buffer_budget != new.buffer_budget
                || differs(&old.tuning, &new.tuning),
        ),
        (
            "connectors and mounts",
            differs(&old.connectors, &new.connectors) || old.mounts != new.mounts,
        ),
        ("[transfers]", old.transfers != new.transfers),
    ];
    for (name, changed) in checks {
        if changed {
            out.push(name);
        }
    }
    out
}

/// Runs [`Reloader::reload`] at every SIGHUP until `stop` turns true.
pub async fn on_hangup(mut hup: Signal, reloader: Arc<Reloader>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = crate::app::stopped(&mut stop) => return,
            got = hup.recv() => {
                if got.is_none() {
                    return;
                }
                let r = reloader.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || r.reload()).await {
                    tracing::error!(error = %e, "reload failed");
                }
            }
        }
    }
}
