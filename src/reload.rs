//! What SIGHUP does to a running gateway: it never stops it (a stock systemd
//! `ExecReload=kill -HUP $MAINPID` must not take the gateway down). It re-reads
//! the TLS certificates (FTPS, HTTPS) and the config file, applies what can change
//! safely, logs what changed, and names what needs a restart. Open sessions are
//! never touched; a bad new file keeps the old one and the log says why.
//!
//! Swapped live: certificate files' contents (new handshakes get the new pair),
//! `[log] level`, `[defender]` (limits for tries to come; bans already given keep
//! their end) and the `[links]` rules (`default_expiry`, `max_expiry`,
//! `allow_never`, `require_password`, `retention_days`, `grant_lifetime`,
//! `notify_downloads`, `notify_uploads`, `upload_conflict`: the next request uses
//! them). `[links] base_url`, `upload_staging`, `upload_staging_connector`,
//! `upload_staging_prefix`, `upload_abandon` and `reservation_timeout` are held by listeners and jobs started with the process;
//! they and every other section are logged as needing a restart.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use tokio::signal::unix::Signal;
use tokio::sync::watch;

use crate::certs::ReloadableCert;
use crate::config::{Config, LinksConfig};
use crate::defender::Defender;
use crate::links::LinkService;
use crate::logging::{self, LevelChange};

/// The running settings, and what a reload can replace in place.
pub struct Reloader {
    running: Mutex<Config>,
    certs: Vec<Arc<ReloadableCert>>,
    links: Arc<LinkService>,
    defender: Arc<Defender>,
}

impl Reloader {
    pub fn new(
        config: Config,
        certs: Vec<Arc<ReloadableCert>>,
        links: Arc<LinkService>,
        defender: Arc<Defender>,
    ) -> Reloader {
        Reloader {
            running: Mutex::new(config),
            certs,
            links,
            defender,
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
        if differs(&running.defender, &fresh.defender) {
            self.defender.reconfigure(fresh.defender);
            let d = fresh.defender;
            tracing::info!(
                max_failures = d.max_failures,
                window_secs = d.window.as_secs(),
                ban_secs = d.ban.as_secs(),
                "[defender] changed; tries from now on use it"
            );
            running.defender = fresh.defender;
        }
        let live = links_live_changes(&running.links, &fresh.links);
        if !live.is_empty() {
            let next = LinksConfig {
                base_url: running.links.base_url.clone(),
                upload_staging: running.links.upload_staging.clone(),
                upload_staging_connector: running.links.upload_staging_connector.clone(),
                upload_staging_prefix: running.links.upload_staging_prefix.clone(),
                upload_abandon: running.links.upload_abandon,
                reservation_timeout: running.links.reservation_timeout,
                signing_key: running.links.signing_key.clone(),
                ..fresh.links.clone()
            };
            self.links.reconfigure(next.clone());
            tracing::info!(
                settings = %live.join(", "),
                "[links] changed; the next requests use it"
            );
            running.links = next;
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

/// Compared through the debug form, which is never logged (it may hold
/// connector options).
fn differs(a: &dyn Debug, b: &dyn Debug) -> bool {
    format!("{a:?}") != format!("{b:?}")
}

/// The `[links]` keys that differ and that a reload puts in force.
fn links_live_changes(old: &LinksConfig, new: &LinksConfig) -> Vec<&'static str> {
    let (a, b) = (&old.policy, &new.policy);
    let checks: [(&str, bool); 9] = [
        ("default_expiry", a.default_expiry != b.default_expiry),
        ("max_expiry", a.max_expiry != b.max_expiry),
        ("allow_never", a.allow_never != b.allow_never),
        ("require_password", a.require_password != b.require_password),
        ("retention_days", old.retention != new.retention),
        ("grant_lifetime", old.grant_lifetime != new.grant_lifetime),
        (
            "notify_downloads",
            old.notify_downloads != new.notify_downloads,
        ),
        ("notify_uploads", old.notify_uploads != new.notify_uploads),
        (
            "upload_conflict",
            old.upload_conflict != new.upload_conflict,
        ),
    ];
    checks.iter().filter(|c| c.1).map(|c| c.0).collect()
}

/// What differs between the running and the new configuration and cannot be
/// swapped in a running process.
fn restart_only<'a>(old: &Config, new: &Config) -> Vec<&'a str> {
    let (l, m) = (&old.links, &new.links);
    let mut out = Vec::new();
    let checks: [(&str, bool); 16] = [
        ("[links] base_url", l.base_url != m.base_url),
        (
            "[links] upload_staging",
            l.upload_staging != m.upload_staging,
        ),
        (
            "[links] upload_staging_connector",
            l.upload_staging_connector != m.upload_staging_connector,
        ),
        (
            "[links] upload_staging_prefix",
            l.upload_staging_prefix != m.upload_staging_prefix,
        ),
        (
            "[links] upload_abandon",
            l.upload_abandon != m.upload_abandon,
        ),
        (
            "[links] reservation_timeout",
            l.reservation_timeout != m.reservation_timeout,
        ),
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
            _ = crate::shutdown::stopped(&mut stop) => return,
            got = hup.recv() => {
                if got.is_none() {
                    return;
                }
                let r = reloader.clone();
                crate::sdnotify::reloading();
                if let Err(e) = tokio::task::spawn_blocking(move || r.reload()).await {
                    tracing::error!(error = %e, "reload failed");
                }
                crate::sdnotify::notify("READY=1");
            }
        }
    }
}
