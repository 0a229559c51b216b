//! Wires the pieces together for `wharf serve`: data directory, store, connectors,
//! Vfs, audit writer; starts the front-ends that exist and shuts down cleanly on
//! SIGINT/SIGTERM (connections drain, the audit queue is flushed).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wharf_connectors::Connector;

use std::net::SocketAddr;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::audit::AuditLog;
use crate::config::Config;
use crate::defender::Defender;
use crate::error::{Error, Result};
use crate::ftps::{self, FtpsContext};
use crate::links::grant::GrantKeys;
use crate::links::LinkService;
use crate::login::Authenticator;
use crate::mail::Mailer;
use crate::sftp::{self, hostkey, SftpContext};
use crate::store::sqlite::SqliteStore;
use crate::store::Db;
use crate::vfs::{Mount, MountTable, Vfs};

/// Everything a running gateway shares between its front-ends.
pub struct App {
    pub config: Config,
    pub db: Db,
    pub vfs: Arc<Vfs>,
    /// Where send links keep their copies.
    pub transfers: Arc<Vfs>,
    /// Browser uploads staged on a connector (`None`: the local folder).
    pub upload_staging: Option<Arc<Vfs>>,
    pub audit: AuditLog,
    pub mailer: Mailer,
}

/// Wrong passwords or codes from one address on one link before a 15-minute pause.
const GUESSES_PER_LINK: u32 = 5;

/// How often the retention job deletes the copies of ended send links.
pub const RETENTION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Creates the data directory (owner-only: it holds the database and keys) and the
/// folders wharf keeps inside it (`outbox/`, fs connector roots such as `files/`),
/// owner-only too, whichever command runs first.
pub fn prepare_data_dir(config: &Config) -> Result<()> {
    create_private_dir(&config.data_dir)?;
    create_private_dir(&config.outbox_dir())?;
    let data = std::path::absolute(&config.data_dir)?;
    for spec in config.connectors.iter().filter(|c| c.scheme == "fs") {
        if let Some(root) = spec.options.get("root") {
            let root = std::path::absolute(root)?;
            if root.starts_with(&data) {
                create_private_dir(&root)?;
            }
        }
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::from(e).context(format!("creating {}", dir.display())))
}

/// Creates `path` empty and owner-only if it does not exist yet, so SQLite (which
/// gives its -wal and -shm files the database's mode) never makes it world-readable.
fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::from(e).context(format!("creating {}", path.display()))),
    }
}

/// Opens the store (creating and migrating it as needed): PostgreSQL when
/// `[database] url` is set, else SQLite in the data directory.
pub fn open_db(config: &Config) -> Result<Db> {
    prepare_data_dir(config)?;
    if let Some(url) = &config.database {
        let store = crate::store::postgres::PostgresStore::open(&url.0)?;
        tracing::info!(database = %url.redacted(), "using PostgreSQL");
        return Ok(Db::new(store));
    }
    create_private_file(&config.database_path())?;
    Ok(Db::new(SqliteStore::open(&config.database_path())?))
}

/// Builds every configured connector, by name.
pub fn build_connectors(config: &Config) -> Result<BTreeMap<String, Arc<Connector>>> {
    config
        .connectors
        .iter()
        .map(|spec| {
            wharf_connectors::build(spec, &config.tuning)
                .map(|mut c| {
                    c.direct_download = config.direct_downloads.get(&spec.name).copied();
                    c
                })
                .map_err(|e| Error::invalid(e.to_string()))
                .and_then(|mut c| {
                    if config.direct_uploads.contains(&spec.name) {
                        let mut b = wharf_connectors::direct_upload(spec).map_err(|e| {
                            Error::invalid(format!("connector {:?}: {e}", spec.name))
                        })?;
                        if let wharf_connectors::DirectUpload::Gcs(g) = &mut b {
                            g.set_page_origin(&config.links.base_url);
                        }
                        c.direct_upload = Some(b);
                    }
                    Ok((spec.name.clone(), Arc::new(c)))
                })
        })
        .collect()
}

/// Builds the Vfs from the mounts of `config`.
pub fn build_vfs(config: &Config, connectors: &BTreeMap<String, Arc<Connector>>) -> Result<Vfs> {
    let mounts = config
        .mounts
        .iter()
        .map(|m| Mount {
            at: m.at.clone(),
            connector: connectors[&m.connector].clone(),
            root: m.root.clone(),
        })
        .collect();
    let vfs = Vfs::new(MountTable::new(mounts)?, config.buffer_size)
        .with_setstat_mode(config.setstat_mode)
        .with_interrupted_uploads(config.interrupted_uploads);
    create_fs_mount_roots(&vfs)?;
    Ok(vfs)
}

/// Creates the folder of each fs mount whose root is a folder inside its
/// connector (`root = "/sent"`): the jail opens every path from the mount's
/// folder, so it must exist (OpenDAL used to create it on first write).
fn create_fs_mount_roots(vfs: &Vfs) -> Result<()> {
    for m in vfs.mounts() {
        if let (Some(base), false) = (&m.connector.local_root, m.root.is_empty()) {
            let dir = base.join(m.root.trim_matches('/'));
            std::fs::create_dir_all(&dir).map_err(|e| {
                Error::from(e).context(format!("creating the mount folder {}", dir.display()))
            })?;
        }
    }
    Ok(())
}

/// The transfer store (where send links keep their copies) as a Vfs of its own.
pub fn build_transfers(
    config: &Config,
    connectors: &BTreeMap<String, Arc<Connector>>,
) -> Result<Vfs> {
    let t = &config.transfers;
    let mount = Mount {
        at: crate::vfs::VPath::root(),
        connector: connectors[&t.connector].clone(),
        root: t.root.clone(),
    };
    let vfs = Vfs::new(MountTable::new(vec![mount])?, config.buffer_size);
    create_fs_mount_roots(&vfs)?;
    Ok(vfs)
}

/// Browser upload staging on `[links] upload_staging_connector`, as a Vfs
/// rooted at `upload_staging_prefix`; `None`: the local folder is used.
pub fn build_upload_staging(
    config: &Config,
    connectors: &BTreeMap<String, Arc<Connector>>,
) -> Result<Option<Vfs>> {
    let Some(name) = &config.links.upload_staging_connector else {
        return Ok(None);
    };
    let mount = Mount {
        at: crate::vfs::VPath::root(),
        connector: connectors[name].clone(),
        root: config.links.upload_staging_prefix.clone(),
    };
    let vfs = Vfs::new(MountTable::new(vec![mount])?, config.buffer_size);
    create_fs_mount_roots(&vfs)?;
    Ok(Some(vfs))
}

impl App {
    /// Where uploads are staged, with how long a file there may sit untouched
    /// before it is a crash's leftover: fs connectors' staging folders, and the
    /// browser upload staging (whose uploads may pause up to `upload_abandon`).
    fn staging_dirs(&self) -> Vec<(std::path::PathBuf, Duration)> {
        let mut dirs: Vec<(std::path::PathBuf, Duration)> = Vec::new();
        for vfs in [&self.vfs, &self.transfers] {
            for m in vfs.mounts() {
                if let Some(d) = &m.connector.staging_dir {
                    if !dirs.iter().any(|(x, _)| x == d) {
                        dirs.push((d.clone(), crate::sweep::STAGED_IDLE));
                    }
                }
            }
        }
        let tus_idle = self.config.links.upload_abandon + crate::sweep::STAGED_IDLE;
        dirs.push((self.config.links.upload_staging.clone(), tus_idle));
        dirs
    }

    /// Opens everything; must run inside the tokio runtime (the audit writer starts).
    pub fn open(config: Config) -> Result<App> {
        crate::allocator::tune();
        let db = open_db(&config)?;
        let connectors = build_connectors(&config)?;
        // One memory budget for the buffers of every transfer, whichever store.
        let budget = crate::budget::Budget::new(config.buffer_budget);
        // Times clients set on object stores are kept in the store (`vfs::times`).
        let vfs = Arc::new(
            build_vfs(&config, &connectors)?
                .with_budget(budget.clone())
                .with_times(Arc::new(db.clone())),
        );
        let upload_staging = build_upload_staging(&config, &connectors)?
            .map(|v| Arc::new(v.with_budget(budget.clone())));
        let transfers = Arc::new(build_transfers(&config, &connectors)?.with_budget(budget));
        let mailer = Mailer::for_config(&config)?;
        let audit = AuditLog::start(db.clone(), config.audit);
        Ok(App {
            config,
            db,
            vfs,
            transfers,
            upload_staging,
            audit,
            mailer,
        })
    }

    /// Creates the first admin if needed, binds the listeners and starts serving.
    pub async fn start(self) -> Result<Running> {
        let first_admin_password = crate::users::ensure_first_admin(&self.db).await?;
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let cluster = crate::cluster::Cluster::new(self.db.clone());
        let (defender, ban_writer) = crate::defender::with_stored_bans(
            self.config.defender,
            self.db.clone(),
            stopped.clone(),
        )
        .await?;
        tasks.spawn(ban_writer);
        let auth = Authenticator::new(self.db.clone(), defender.clone(), self.audit.clone());
        // Certificates SIGHUP re-reads (FTPS, HTTPS).
        let mut certs = Vec::new();
        let links = LinkService::new(
            self.db.clone(),
            self.vfs.clone(),
            self.transfers.clone(),
            self.audit.clone(),
            self.config.links.clone(),
            self.mailer.clone(),
            self.config.http.product_name.clone(),
            crate::links::token::TokenKey::for_config(&self.config)?,
        );
        let links = Arc::new(links.with_upload_staging(self.upload_staging.clone()));
        tasks.spawn(crate::notify::expiry_sweep(
            crate::notify::Notifier::new(self.db.clone(), self.mailer.clone(), &self.config.links),
            cluster.clone(),
            stopped.clone(),
        ));
        tasks.spawn(retention(
            links.clone(),
            self.staging_dirs(),
            cluster.clone(),
            stopped.clone(),
        ));
        tasks.spawn(reservations(
            cluster.clone(),
            self.config.links.reservation_timeout,
            stopped.clone(),
        ));
        let mut sftp_addr = None;
        let mut sftp_fingerprint = None;
        if self.config.sftp.enabled {
            let keys = hostkey::load_all(&self.config.sftp.host_key, &self.config.data_dir)?;
            let described: Vec<String> = keys.iter().map(hostkey::describe).collect();
            sftp_fingerprint = Some(described.join(", "));
            let listener = sftp::bind(self.config.sftp.listen).await.map_err(|e| {
                Error::from(e).context(format!("SFTP cannot listen on {}", self.config.sftp.listen))
            })?;
            sftp_addr = Some(listener.local_addr()?);
            let ctx = Arc::new(SftpContext {
                vfs: self.vfs.clone(),
                audit: self.audit.clone(),
                auth: auth.clone(),
                config: self.config.sftp.clone(),
            });
            tasks.spawn(sftp::serve(listener, ctx, keys, stopped.clone()));
        }
        let mut ftps_explicit = None;
        let mut ftps_implicit = None;
        if self.config.ftps.enabled {
            let c = &self.config.ftps;
            let (cert, key, generate) = match (&c.certificate, &c.key) {
                (Some(cert), Some(key)) => (cert.clone(), key.clone(), false),
                _ => (
                    self.config.data_dir.join(ftps::tls::CERT_FILE),
                    self.config.data_dir.join(ftps::tls::KEY_FILE),
                    true,
                ),
            };
            let (tls, ftps_cert) = ftps::tls::server_config(&cert, &key, generate)?;
            certs.push(ftps_cert);
            let ctx = Arc::new(FtpsContext {
                vfs: self.vfs.clone(),
                audit: self.audit.clone(),
                auth: auth.clone(),
                config: c.clone(),
                tls: ftps::tls::Acceptors::new(tls),
                session_owners: Default::default(),
                stou_claims: Arc::new(ftps::stou::StouClaims::new(self.db.clone())),
                require_tls: !c.allow_plain,
            });
            let gate = ftps::gate(c, auth.known());
            for (addr, implicit) in [(c.explicit_listen, false), (c.implicit_listen, true)] {
                let Some(addr) = addr else { continue };
                let listener = ftps::bind(addr)
                    .await
                    .map_err(|e| Error::from(e).context(format!("FTPS cannot listen on {addr}")))?;
                let bound = listener.local_addr()?;
                if implicit {
                    ftps_implicit = Some(bound);
                } else {
                    ftps_explicit = Some(bound);
                }
                tasks.spawn(ftps::serve(
                    listener,
                    implicit,
                    ctx.clone(),
                    gate.clone(),
                    stopped.clone(),
                ));
            }
        }
        let mut http_addr = None;
        if self.config.http.enabled {
            let addr = self.config.http.listen;
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                Error::from(e).context(format!("the link server cannot listen on {addr}"))
            })?;
            http_addr = Some(listener.local_addr()?);
            let https = match (&self.config.http.tls_cert, &self.config.http.tls_key) {
                (Some(cert), Some(key)) => {
                    let c = crate::certs::ReloadableCert::load("HTTPS", cert, key)?;
                    certs.push(c.clone());
                    Some(crate::http::tls::Https::new(c)?)
                }
                _ => None,
            };
            let throttle = crate::config::DefenderConfig {
                max_failures: GUESSES_PER_LINK,
                window: Duration::from_secs(15 * 60),
                ban: Duration::from_secs(15 * 60),
            };
            let ctx = Arc::new(crate::http::HttpContext {
                db: self.db.clone(),
                vfs: self.vfs.clone(),
                transfers: self.transfers.clone(),
                audit: self.audit.clone(),
                config: self.config.http.clone(),
                keys: GrantKeys::for_config(&self.config)?,
                mailer: self.mailer.clone(),
                defender: defender.clone(),
                guesses: Defender::new(throttle),
                code_requests: Defender::new(throttle),
                service: links.clone(),
                auth: auth.clone(),
                tls: https,
            });
            tasks.spawn(crate::http::serve(listener, ctx, stopped.clone()));
        }
        let mut redirect_addr = None;
        if let Some(addr) = self.config.http.redirect_listen {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                Error::from(e).context(format!("the HTTP redirect cannot listen on {addr}"))
            })?;
            redirect_addr = Some(listener.local_addr()?);
            tasks.spawn(crate::http::tls::serve_redirect(
                listener,
                self.config.links.base_url.clone(),
                stopped.clone(),
            ));
        }
        let mut metrics_addr = None;
        if let Some(addr) = self.config.metrics.listen {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Error::from(e).context(format!("metrics cannot listen on {addr}")))?;
            metrics_addr = Some(listener.local_addr()?);
            let mut connectors: Vec<Arc<Connector>> = Vec::new();
            for m in self
                .vfs
                .mounts()
                .iter()
                .chain(self.transfers.mounts().iter())
                .chain(self.upload_staging.iter().flat_map(|v| v.mounts().iter()))
            {
                if !connectors.iter().any(|c| c.name == m.connector.name) {
                    connectors.push(m.connector.clone());
                }
            }
            let health = Arc::new(crate::health::Health {
                handle: crate::metrics::install(),
                db: self.db.clone(),
                audit: self.audit.clone(),
                connectors,
            });
            tasks.spawn(crate::health::serve(listener, health, stopped.clone()));
        }
        let reloader = Arc::new(crate::reload::Reloader::new(
            self.config.clone(),
            certs,
            links,
            defender,
        ));
        Ok(Running {
            http: http_addr,
            https: self.config.http.enabled && self.config.http.tls_cert.is_some(),
            redirect: redirect_addr,
            metrics: metrics_addr,
            reloader,
            ftps_explicit,
            ftps_implicit,
            sftp: sftp_addr,
            sftp_fingerprint,
            first_admin_password,
            cluster,
            stop,
            tasks,
            audit: self.audit,
            mailer: self.mailer,
        })
    }

    /// Runs until `shutdown` resolves, then drains and flushes. Prints where it
    /// listens (and, on the very first start, the admin password) on stdout.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        self.serve_with_reload(shutdown, None).await
    }

    /// [`App::serve`], re-reading certificates and settings at every `hangup`
    /// (SIGHUP) signal instead of dying of it.
    pub async fn serve_with_reload(
        self,
        shutdown: impl Future<Output = ()>,
        hangup: Option<tokio::signal::unix::Signal>,
    ) -> Result<()> {
        let data_dir = self.config.data_dir.clone();
        let mounts: Vec<String> = self
            .vfs
            .mounts()
            .iter()
            .map(|m| {
                format!(
                    "  mount {} -> connector {} ({}) root /{}",
                    m.at, m.connector.name, m.connector.scheme, m.root
                )
            })
            .collect();
        let base_url = self.config.links.base_url.clone();
        let mail = self.mailer.describe();
        let running = self.start().await?;
        if let Some(password) = &running.first_admin_password {
            announce_first_admin(&data_dir, password)?;
        }
        println!("wharf data directory: {}", data_dir.display());
        for m in mounts {
            println!("{m}");
        }
        match (running.sftp, &running.sftp_fingerprint) {
            (Some(addr), Some(fp)) => println!("SFTP listening on {addr} (host keys {fp})"),
            _ => println!("SFTP disabled"),
        }
        match running.ftps_explicit {
            Some(addr) => println!("FTPS (explicit, AUTH TLS) listening on {addr}"),
            None => println!("FTPS explicit listener disabled"),
        }
        if let Some(addr) = running.ftps_implicit {
            println!("FTPS (implicit TLS) listening on {addr}");
        }
        if let Some(addr) = running.http {
            let scheme = if running.https { "https" } else { "http" };
            println!("Link server listening on {scheme}://{addr} (public address {base_url})");
        }
        if let Some(addr) = running.redirect {
            println!("Plain HTTP on {addr} redirects to HTTPS ({base_url})");
        }
        if let Some(addr) = running.metrics {
            println!("Metrics listening on http://{addr} (/metrics, /healthz, /readyz)");
        }
        println!("Mail goes to {mail}");
        let (reload_stop, reload_stopped) = watch::channel(false);
        let reload_task = hangup.map(|hup| {
            tokio::spawn(crate::reload::on_hangup(
                hup,
                running.reloader.clone(),
                reload_stopped,
            ))
        });
        tracing::info!("wharf is running; press Ctrl-C to stop");
        crate::sdnotify::notify("READY=1\nSTATUS=serving");
        shutdown.await;
        crate::sdnotify::notify("STOPPING=1");
        let _ = reload_stop.send(true);
        if let Some(t) = reload_task {
            let _ = t.await;
        }
        running.shutdown().await;
        Ok(())
    }
}

/// Where the first-start password goes when no terminal is attached.
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";

/// Shows the first admin's password once: on an interactive terminal it is
/// printed; otherwise (systemd, a container) stdout ends up in a journal or a log
/// collector, so it is written owner-only to `data_dir/initial-admin-password` and
/// only that path is printed and logged.
fn announce_first_admin(data_dir: &Path, password: &str) -> Result<()> {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        println!(
            "First start: created user \"admin\" (home /, all permissions) with password:\n\n    {password}\n\nKeep it now; it is not stored in clear and will not be shown again.\nChange it with: wharf user passwd admin --password-stdin"
        );
        return Ok(());
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(INITIAL_PASSWORD_FILE);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::from(e).context(format!("writing {}", path.display())))?;
    f.write_all(format!("{password}\n").as_bytes())?;
    f.sync_all()?;
    println!(
        "First start: created user \"admin\" (home /, all permissions); its password is in {}",
        path.display()
    );
    tracing::warn!(
        path = %path.display(),
        "first start: the password of user admin was written to this file (owner-only); read it, then change the password with `wharf user passwd admin` and delete the file"
    );
    Ok(())
}

/// A started gateway: where it listens, and how to stop it.
pub struct Running {
    pub sftp: Option<SocketAddr>,
    /// The link server.
    pub http: Option<SocketAddr>,
    /// Explicit FTPS (AUTH TLS) and implicit FTPS listeners.
    pub ftps_explicit: Option<SocketAddr>,
    pub ftps_implicit: Option<SocketAddr>,
    pub sftp_fingerprint: Option<String>,
    /// Set on the very first start only; shown once, never logged.
    pub first_admin_password: Option<String>,
    /// Whether the link server speaks HTTPS.
    pub https: bool,
    /// The plain-HTTP listener that redirects to HTTPS.
    pub redirect: Option<SocketAddr>,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub metrics: Option<SocketAddr>,
    /// What SIGHUP calls (tests may call it directly).
    pub reloader: Arc<crate::reload::Reloader>,
    /// This node's id and the job leases it ran (several nodes, one database).
    pub cluster: crate::cluster::Cluster,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    audit: AuditLog,
    mailer: Mailer,
}

impl Running {
    /// Stops accepting, lets sessions drain, then flushes the audit log.
    pub async fn shutdown(mut self) {
        tracing::info!("shutting down");
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.cluster.release_jobs().await;
        self.mailer.drain(Duration::from_secs(15)).await;
        self.audit.shutdown().await;
        if self.audit.dropped() > 0 {
            tracing::error!(
                dropped = self.audit.dropped(),
                "audit events were lost during this run"
            );
        }
        tracing::info!("stopped");
    }
}

/// Deletes the copies of ended send links past their retention, drops abandoned
/// uploads and removes staged files left by a crash: at start, then every
/// [`RETENTION_INTERVAL`], until shutdown.
async fn retention(
    links: Arc<LinkService>,
    staging: Vec<(std::path::PathBuf, Duration)>,
    cluster: crate::cluster::Cluster,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        // Staging folders may be this node's own disk: each node sweeps them
        // (by age, so sweeping a shared one twice is harmless).
        for (dir, idle) in &staging {
            match crate::sweep::staged_leftovers(vec![dir.clone()], *idle).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(files = n, dir = %dir.display(), "removed staged files left by a crash")
                }
                Err(e) => tracing::warn!(error = %e, "sweeping staged files failed"),
            }
        }
        if !cluster.turn("retention", RETENTION_INTERVAL).await {
            tokio::select! {
                _ = crate::shutdown::stopped(&mut stop) => return,
                _ = tokio::time::sleep(RETENTION_INTERVAL) => {}
            }
            continue;
        }
        match links.purge(crate::clock::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                links = n,
                "retention: deleted the copies of ended send links"
            ),
            Err(e) => tracing::warn!(error = %e, "retention job failed; will retry"),
        }
        match links.sweep_uploads(crate::clock::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "dropped abandoned uploads"),
            Err(e) => tracing::warn!(error = %e, "sweeping abandoned uploads failed"),
        }
        cluster.renew("retention", RETENTION_INTERVAL).await;
        tokio::select! {
            _ = crate::shutdown::stopped(&mut stop) => return,
            _ = tokio::time::sleep(RETENTION_INTERVAL) => {}
        }
    }
}

/// Gives back the uses of downloads that never settled, every
/// [`crate::sweep::reservation_period`], until shutdown.
async fn reservations(
    cluster: crate::cluster::Cluster,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let period = crate::sweep::reservation_period(timeout);
    loop {
        tokio::select! {
            _ = crate::shutdown::stopped(&mut stop) => return,
            _ = tokio::time::sleep(period) => {}
        }
        // One node at a time (job lease); any node may take over.
        if !cluster.turn("refund", period).await {
            continue;
        }
        match crate::sweep::stale_reservations(cluster.db(), timeout).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                uses = n,
                "gave back the uses of downloads that never settled"
            ),
            Err(e) => tracing::warn!(error = %e, "sweeping stale download reservations failed"),
        }
    }
}
