//! The PostgreSQL store, for several wharf nodes on one database: the same
//! [`Store`] as the SQLite one, file by file, with the SQL differences kept here
//! (`$n` placeholders, BIGINT and BOOLEAN columns, `RETURNING`, `ON CONFLICT`).
//!
//! Rules SQLite keeps with `BEGIN IMMEDIATE` (one writer at a time) are kept here
//! per row, so they hold across nodes: a conditional UPDATE decides in one
//! statement (PostgreSQL re-checks its WHERE on the newest row version after
//! waiting for a concurrent writer), and a transaction that reads before it
//! writes first locks the row it decides on with `SELECT … FOR UPDATE` (always
//! the link before its grants, so two such transactions cannot deadlock).

mod api_keys;
mod audit;
mod bans;
mod clients;
mod conn;
mod failures;
mod import;
mod leases;
mod link_search;
mod links;
mod migrations;
mod notifications;
mod sessions;
mod times;
mod uploads;
mod users;
mod visits;

use std::sync::{Arc, Mutex};

use tokio_postgres::config::SslMode;
use tokio_postgres::NoTls;

use conn::Conn;

use super::{
    ApiKey, AuditQuery, AuditRecord, Ban, Client as AddressClient, ClientEdit, CodeCheck, Contact,
    Link, LinkChange, LinkEdit, LinkFile, LinkPage, LinkQuery, Millis, NewApiKey, NewClient,
    NewKey, NewLink, NewNotification, NewUpload, NewUser, NewWebSession, NoticeKind, Notification,
    SshKey, Store, Ticket, Upload, User, WebSession,
};
use crate::error::{Error, ErrorKind, Result};
use crate::event::AuditEvent;

pub use import::TABLES as COPIED_TABLES;
pub use migrations::LATEST as SCHEMA_VERSION;

/// Idle connections kept open; more are opened on demand and closed after use.
const POOL_SIZE: usize = 16;

/// A `postgresql://` URL with its password replaced, fit for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".into();
    };
    let (auth, host) = match rest.rfind('@') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => return url.to_string(),
    };
    let user = auth.split(':').next().unwrap_or("");
    let host = match host.split_once('?') {
        // Query parameters may carry a password too.
        Some((h, _)) => format!("{h}?…"),
        None => host.to_string(),
    };
    format!("{scheme}://{user}:***@{host}")
}

pub struct PostgresStore {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// Drives the connections' I/O; dropped without waiting (see `Drop`).
    rt: Option<tokio::runtime::Runtime>,
    idle: Mutex<Vec<Conn>>,
    /// The URL without its password, for messages.
    shown: Arc<str>,
}

impl PostgresStore {
    /// Connects to the database at `url` and migrates it.
    pub fn open(url: &str) -> Result<Self> {
        let store = Self::connect_only(url)?;
        store.migrate()?;
        Ok(store)
    }

    /// Connects without migrating (tests, `wharf db migrate`).
    pub fn connect_only(url: &str) -> Result<Self> {
        let shown: Arc<str> = redact_url(url).into();
        let (url, root_cert) = tls_params(url);
        let config: tokio_postgres::Config = url.parse().map_err(|_| {
            // The parser's message may quote the URL: do not pass it on.
            Error::invalid(format!("[database] url {shown} is not a PostgreSQL URL"))
        })?;
        let tls = match config.get_ssl_mode() {
            SslMode::Require => Some(rustls_connector(root_cert.as_deref())?),
            _ => None,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wharf-postgres")
            .enable_all()
            .build()?;
        let store = PostgresStore {
            config,
            tls,
            rt: Some(rt),
            idle: Mutex::new(Vec::new()),
            shown,
        };
        let conn = store.connect()?;
        store.idle.lock().expect("pool lock").push(conn);
        Ok(store)
    }

    /// Brings the schema to this wharf's version; returns it.
    pub fn migrate(&self) -> Result<u32> {
        self.with(migrations::migrate)
            .map_err(|e| e.context(format!("database {}", self.shown)))
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<u32> {
        self.with(migrations::current)
    }

    fn connect(&self) -> Result<Conn> {
        let rt = self.rt.as_ref().expect("runtime");
        let config = self.config.clone();
        let tls = self.tls.clone();
        let task = rt.spawn(async move {
            let client = match tls {
                Some(tls) => {
                    let (client, connection) = config.connect(tls).await?;
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!(error = %e, "database connection ended");
                        }
                    });
                    client
                }
                None => {
                    let (client, connection) = config.connect(NoTls).await?;
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!(error = %e, "database connection ended");
                        }
                    });
                    client
                }
            };
            Ok::<_, tokio_postgres::Error>(client)
        });
        match futures::executor::block_on(task) {
            Ok(Ok(client)) => Ok(Conn::new(client)),
            Ok(Err(e)) => {
                // The cause (refused, TLS certificate, authentication) is in the
                // source; neither holds the password.
                let why = match std::error::Error::source(&e) {
                    Some(cause) => format!("{e}: {cause}"),
                    None => e.to_string(),
                };
                Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot connect to the database {}: {why}", self.shown),
                ))
            }
            Err(e) => Err(Error::internal("database connect task failed").with_source(e)),
        }
    }

    /// Runs `f` on a pooled connection (a closed one is replaced).
    fn with<R>(&self, f: impl FnOnce(&mut Conn) -> Result<R>) -> Result<R> {
        let pooled = loop {
            let next = self.idle.lock().expect("pool lock").pop();
            match next {
                Some(c) if c.is_closed() => continue,
                other => break other,
            }
        };
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&mut conn);
        if !conn.is_closed() {
            let mut idle = self.idle.lock().expect("pool lock");
            if idle.len() < POOL_SIZE {
                idle.push(conn);
            }
        }
        out
    }
}

impl Drop for PostgresStore {
    /// A runtime dropped normally waits for its threads, which panics inside
    /// another runtime (a store dropped by an async test or at serve's end).
    fn drop(&mut self) {
        self.idle.lock().map(|mut i| i.clear()).ok();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Takes out of the URL's parameters what `tokio-postgres` does not parse:
/// `sslrootcert=PATH` (the CA that signed the server's certificate) and the
/// `sslmode`s `verify-ca`/`verify-full`, which become `require` (wharf always
/// verifies the server's certificate and name).
fn tls_params(url: &str) -> (String, Option<std::path::PathBuf>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut root = None;
    let mut kept = Vec::new();
    for param in query.split('&') {
        match param.split_once('=') {
            Some(("sslrootcert", path)) => {
                let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
                root = Some(std::path::PathBuf::from(path.into_owned()));
            }
            Some(("sslmode", "verify-ca" | "verify-full")) => kept.push("sslmode=require"),
            _ => kept.push(param),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, root)
}

/// TLS for `sslmode=require` (aws-lc-rs): the server's certificate must chain
/// to `sslrootcert` if given, else to the platform's roots, and name the host.
fn rustls_connector(
    root_cert: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .and_then(|i| i.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::invalid(format!(
                        "[database] url: cannot read sslrootcert {}: {e}",
                        path.display()
                    ))
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::invalid(format!(
                    "[database] url: no certificate in sslrootcert {}",
                    path.display()
                )));
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal("TLS for the database").with_source(e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl Store for PostgresStore {
    fn user_insert(&self, user: &NewUser) -> Result<User> {
        self.with(|c| users::insert(c, user))
    }
    fn user_get(&self, name: &str) -> Result<Option<User>> {
        self.with(|c| users::get_user(c, name))
    }
    fn user_list(&self) -> Result<Vec<User>> {
        self.with(users::list)
    }
    fn user_count(&self) -> Result<u64> {
        self.with(users::count)
    }
    fn user_set_password(&self, name: &str, hash: Option<&str>) -> Result<()> {
        self.with(|c| users::set_password(c, name, hash))
    }
    fn user_set_enabled(&self, name: &str, enabled: bool) -> Result<()> {
        self.with(|c| users::set_enabled(c, name, enabled))
    }
    fn user_set_key_and_password(&self, name: &str, on: bool) -> Result<()> {
        self.with(|c| users::set_key_and_password(c, name, on))
    }
    fn user_set_perms(&self, name: &str, perms: crate::policy::PermSet) -> Result<()> {
        self.with(|c| users::set_perms(c, name, &perms.to_string()))
    }
    fn user_set_admin(&self, name: &str, admin: bool) -> Result<()> {
        self.with(|c| users::set_admin(c, name, admin))
    }
    fn user_set_email(&self, name: &str, email: Option<&str>) -> Result<()> {
        self.with(|c| users::set_email(c, name, email))
    }
    fn user_delete(&self, name: &str) -> Result<()> {
        self.with(|c| users::delete(c, name))
    }
    fn key_insert(&self, user: &str, key: &NewKey) -> Result<SshKey> {
        self.with(|c| users::key_insert(c, user, key))
    }
    fn key_delete(&self, user: &str, fingerprint: &str) -> Result<()> {
        self.with(|c| users::key_delete(c, user, fingerprint))
    }
    fn keys_of(&self, user: &str) -> Result<Vec<SshKey>> {
        self.with(|c| users::keys_of(c, user))
    }
    fn api_key_insert(&self, user: &str, key: &NewApiKey) -> Result<ApiKey> {
        self.with(|c| api_keys::insert(c, user, key))
    }
    fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>> {
        self.with(|c| api_keys::by_prefix(c, prefix))
    }
    fn api_key_list(&self, user: Option<&str>) -> Result<Vec<ApiKey>> {
        self.with(|c| api_keys::list(c, user))
    }
    fn api_key_revoke(&self, prefix: &str, now: Millis) -> Result<()> {
        self.with(|c| api_keys::revoke(c, prefix, now))
    }
    fn api_key_touch(&self, id: i64, now: Millis) -> Result<()> {
        self.with(|c| api_keys::touch(c, id, now))
    }
    fn link_insert(&self, link: &NewLink, files: &[LinkFile]) -> Result<Link> {
        self.with(|c| links::insert(c, link, files))
    }
    fn link_by_token_hash(&self, token_hash: &str) -> Result<Option<Link>> {
        self.with(|c| links::by_token_hash(c, token_hash))
    }
    fn link_by_public_id(&self, public_id: &str) -> Result<Option<Link>> {
        self.with(|c| links::by_public_id(c, public_id))
    }
    fn link_list(&self, owner: Option<&str>) -> Result<Vec<Link>> {
        self.with(|c| links::list(c, owner))
    }
    fn link_search(&self, query: &LinkQuery) -> Result<LinkPage> {
        self.with(|c| link_search::search(c, query))
    }
    fn client_insert(&self, client: &NewClient) -> Result<AddressClient> {
        self.with(|c| clients::insert(c, client))
    }
    fn client_get(&self, id: i64) -> Result<Option<AddressClient>> {
        self.with(|c| clients::get_client(c, id))
    }
    fn client_list(&self, user: Option<&str>) -> Result<Vec<AddressClient>> {
        self.with(|c| clients::list(c, user))
    }
    fn client_edit(&self, id: i64, edit: &ClientEdit) -> Result<()> {
        self.with(|c| clients::edit(c, id, edit))
    }
    fn client_delete(&self, id: i64) -> Result<()> {
        self.with(|c| clients::delete(c, id))
    }
    fn contact_put(&self, client_id: i64, name: &str, email: &str) -> Result<Contact> {
        self.with(|c| clients::put_contact(c, client_id, name, email))
    }
    fn contact_get(&self, id: i64) -> Result<Option<Contact>> {
        self.with(|c| clients::get_contact(c, id))
    }
    fn contacts_of(&self, client_id: i64) -> Result<Vec<Contact>> {
        self.with(|c| clients::contacts_of(c, client_id))
    }
    fn contact_delete(&self, id: i64) -> Result<()> {
        self.with(|c| clients::delete_contact(c, id))
    }
    fn link_files(&self, link_id: i64) -> Result<Vec<LinkFile>> {
        self.with(|c| links::files(c, link_id))
    }
    fn link_add_file(&self, link_id: i64, file: &LinkFile) -> Result<()> {
        self.with(|c| links::add_file(c, link_id, file))
    }
    fn link_change(&self, link_id: i64, change: &LinkChange) -> Result<()> {
        self.with(|c| links::change(c, link_id, change))
    }
    fn link_edit(&self, link_id: i64, edit: &LinkEdit) -> Result<()> {
        self.with(|c| links::edit(c, link_id, edit))
    }
    fn link_finish_draft(&self, link_id: i64, link: &NewLink) -> Result<bool> {
        self.with(|c| links::finish_draft(c, link_id, link))
    }
    fn link_delete(&self, link_id: i64) -> Result<()> {
        self.with(|c| links::delete(c, link_id))
    }
    fn link_delete_files(&self, link_id: i64) -> Result<()> {
        self.with(|c| links::delete_files(c, link_id))
    }
    fn link_reserve_use(&self, link_id: i64, now: Millis) -> Result<bool> {
        self.with(|c| links::reserve_use(c, link_id, now))
    }
    fn link_refund_use(&self, link_id: i64) -> Result<()> {
        self.with(|c| links::refund_use(c, link_id))
    }
    fn link_begin_download(&self, link_id: i64, grant: &str, now: Millis) -> Result<Ticket> {
        self.with(|c| visits::begin_download(c, link_id, grant, now))
    }
    fn link_end_download(&self, link_id: i64, grant: &str, complete: bool) -> Result<()> {
        self.with(|c| visits::end_download(c, link_id, grant, complete))
    }
    fn link_touch_download(&self, link_id: i64, grant: &str, now: Millis) -> Result<()> {
        self.with(|c| visits::touch_download(c, link_id, grant, now))
    }
    fn link_refund_stale(&self, before: Millis) -> Result<u64> {
        self.with(|c| visits::refund_stale(c, before))
    }
    fn link_grant_holds(&self, link_id: i64, grant: &str) -> Result<bool> {
        self.with(|c| visits::grant_holds(c, link_id, grant))
    }
    fn link_code_put(
        &self,
        link_id: i64,
        email: &str,
        hash: &str,
        expires_at: Millis,
    ) -> Result<()> {
        self.with(|c| visits::put_code(c, link_id, email, hash, expires_at))
    }
    fn link_code_try(
        &self,
        link_id: i64,
        email: &str,
        hash: &str,
        now: Millis,
        max_attempts: u32,
    ) -> Result<CodeCheck> {
        self.with(|c| visits::try_code(c, link_id, email, hash, now, max_attempts))
    }
    fn upload_create(
        &self,
        upload: &NewUpload,
        count_use: bool,
        now: Millis,
    ) -> Result<Option<Upload>> {
        self.with(|c| uploads::create(c, upload, count_use, now))
    }
    fn upload_get(&self, key: &str) -> Result<Option<Upload>> {
        self.with(|c| uploads::get_upload(c, key))
    }
    fn uploads_of(&self, link_id: i64) -> Result<Vec<Upload>> {
        self.with(|c| uploads::of_link(c, link_id))
    }
    fn upload_progress(&self, id: i64, received: u64, now: Millis) -> Result<()> {
        self.with(|c| uploads::progress(c, id, received, now))
    }
    fn upload_complete(&self, id: i64, file: &LinkFile, now: Millis) -> Result<()> {
        self.with(|c| uploads::complete(c, id, file, now))
    }
    fn upload_cancel(&self, id: i64, now: Millis) -> Result<bool> {
        self.with(|c| uploads::cancel(c, id, now))
    }
    fn uploads_stale(&self, before: Millis) -> Result<Vec<Upload>> {
        self.with(|c| uploads::stale(c, before))
    }
    fn upload_set_direct(
        &self,
        id: i64,
        upload_id: &str,
        connector: &str,
        now: Millis,
    ) -> Result<()> {
        self.with(|c| uploads::set_direct(c, id, upload_id, connector, now))
    }
    fn web_session_insert(&self, session: &NewWebSession) -> Result<()> {
        self.with(|c| sessions::insert(c, session))
    }
    fn web_session_touch(
        &self,
        token_hash: &str,
        now: Millis,
        seen_since: Millis,
    ) -> Result<Option<WebSession>> {
        self.with(|c| sessions::touch(c, token_hash, now, seen_since))
    }
    fn web_session_delete(&self, token_hash: &str) -> Result<()> {
        self.with(|c| sessions::delete(c, token_hash))
    }
    fn web_session_purge(&self, now: Millis, seen_since: Millis) -> Result<usize> {
        self.with(|c| sessions::purge(c, now, seen_since))
    }
    fn audit_append(&self, events: &[AuditEvent]) -> Result<()> {
        self.with(|c| audit::append(c, events))
    }
    fn ban_put(&self, address: &str, until: Millis, now: Millis) -> Result<()> {
        self.with(|c| bans::put(c, address, until, now))
    }
    fn bans_active(&self, now: Millis) -> Result<Vec<Ban>> {
        self.with(|c| bans::active(c, now))
    }
    fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        self.with(|c| audit::query(c, query))
    }

    fn user_set_display_name(&self, name: &str, display: Option<&str>) -> Result<()> {
        self.with(|c| users::set_display_name(c, name, display))
    }

    fn notification_add(&self, n: &NewNotification, now: Millis) -> Result<Option<i64>> {
        self.with(|c| notifications::add(c, n, now))
    }
    fn notifications_of(&self, user: &str, limit: usize) -> Result<Vec<Notification>> {
        self.with(|c| notifications::of(c, user, limit))
    }
    fn notifications_unread(&self, user: &str) -> Result<u64> {
        self.with(|c| notifications::unread(c, user))
    }
    fn notifications_mark_read(&self, user: &str, id: Option<i64>, now: Millis) -> Result<usize> {
        self.with(|c| notifications::mark_read(c, user, id, now))
    }
    fn notification_prefs(&self, user: &str) -> Result<Vec<(NoticeKind, bool)>> {
        self.with(|c| notifications::prefs(c, user))
    }
    fn notification_pref_set(&self, user: &str, kind: NoticeKind, email: bool) -> Result<()> {
        self.with(|c| notifications::set_pref(c, user, kind, email))
    }
    fn links_newly_expired(
        &self,
        owner: Option<&str>,
        since: Millis,
        now: Millis,
    ) -> Result<Vec<Link>> {
        self.with(|c| notifications::newly_expired(c, owner, since, now))
    }
    fn link_recipient_names_set(&self, link_id: i64, names: &[(String, String)]) -> Result<()> {
        self.with(|c| notifications::set_recipient_names(c, link_id, names))
    }
    fn link_recipient_names(&self, link_id: i64) -> Result<Vec<(String, String)>> {
        self.with(|c| notifications::recipient_names(c, link_id))
    }

    fn lease_take(&self, name: &str, holder: &str, ttl: Millis, now: Millis) -> Result<bool> {
        self.with(|c| leases::take(c, name, holder, ttl, now))
    }
    fn lease_release(&self, name: &str, holder: &str) -> Result<()> {
        self.with(|c| leases::release(c, name, holder))
    }
    fn lease_holder(&self, name: &str, now: Millis) -> Result<Option<String>> {
        self.with(|c| leases::holder(c, name, now))
    }
    fn failure_reserve(
        &self,
        key: &str,
        now: Millis,
        window: Millis,
        max: u32,
    ) -> Result<Option<i64>> {
        self.with(|c| failures::reserve(c, key, now, window, max))
    }
    fn failure_settle(
        &self,
        id: i64,
        key: &str,
        failed: bool,
        now: Millis,
        window: Millis,
    ) -> Result<u32> {
        self.with(|c| failures::settle(c, id, key, failed, now, window))
    }
    fn failures_clear(&self, key: &str) -> Result<()> {
        self.with(|c| failures::clear(c, key))
    }
    fn bans_changed(&self, since: Millis, now: Millis) -> Result<Vec<Ban>> {
        self.with(|c| failures::bans_changed(c, since, now))
    }
    fn ban_until(&self, address: &str, now: Millis) -> Result<Option<Millis>> {
        self.with(|c| failures::ban_until(c, address, now))
    }

    fn object_time_put(&self, t: &crate::vfs::KeptTime) -> Result<()> {
        self.with(|c| times::put(c, t))
    }
    fn object_time_get(&self, connector: &str, key: &str) -> Result<Option<crate::vfs::KeptTime>> {
        self.with(|c| times::get(c, connector, key))
    }
    fn object_times_in(&self, connector: &str, dir: &str) -> Result<Vec<crate::vfs::KeptTime>> {
        self.with(|c| times::in_dir(c, connector, dir))
    }
    fn object_time_delete(&self, connector: &str, key: &str) -> Result<()> {
        self.with(|c| times::delete(c, connector, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact_url("postgresql://wharf:p@ss:w0rd@db:5432/wharf"),
            "postgresql://wharf:***@db:5432/wharf"
        );
        assert_eq!(
            redact_url("postgres://wharf@db/wharf?password=x"),
            "postgres://wharf:***@db/wharf?…"
        );
        assert_eq!(redact_url("not a url"), "(not a URL)");
    }

    #[test]
    fn tls_parameters_tokio_postgres_does_not_parse_are_taken_out() {
        assert_eq!(
            tls_params("postgresql://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=w"),
            (
                "postgresql://u@h/db?sslmode=require&application_name=w".to_string(),
                Some("/etc/ca.pem".into())
            )
        );
        assert_eq!(
            tls_params("postgresql://u@h/db?sslrootcert=/ca.pem"),
            ("postgresql://u@h/db".to_string(), Some("/ca.pem".into()))
        );
        assert_eq!(
            tls_params("postgresql://u@h/db"),
            ("postgresql://u@h/db".to_string(), None)
        );
    }

    #[test]
    fn an_unreachable_database_is_unavailable_and_its_password_is_not_shown() {
        let err = PostgresStore::open("postgresql://wharf:hunter2@127.0.0.1:1/wharf")
            .err()
            .expect("nothing listens on port 1");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        let text = format!("{err} {err:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("wharf:***@127.0.0.1:1"), "{text}");
        let bad = PostgresStore::open("postgresql://wharf:hunter2@[bad/x")
            .err()
            .unwrap();
        assert!(!format!("{bad} {bad:?}").contains("hunter2"));
    }
}
