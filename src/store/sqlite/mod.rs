//! The SQLite store: one database file in the data directory, WAL mode so the CLI
//! and a running `serve` share it, and a few pooled connections.

mod api_keys;
mod audit;
mod bans;
mod clients;
mod failures;
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

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::Connection;

use super::{
    ApiKey, AuditQuery, AuditRecord, Ban, Client, ClientEdit, CodeCheck, Contact, Link, LinkChange,
    LinkEdit, LinkFile, LinkPage, LinkQuery, Millis, NewApiKey, NewClient, NewKey, NewLink,
    NewNotification, NewUpload, NewUser, NewWebSession, NoticeKind, Notification, SshKey, Store,
    Ticket, Upload, User, WebSession,
};
use crate::error::{Error, Result};
use crate::event::AuditEvent;

pub use migrations::LATEST as SCHEMA_VERSION;

/// Idle connections kept open; more are opened on demand and closed after use.
const POOL_SIZE: usize = 4;

pub struct SqliteStore {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let store = SqliteStore {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        };
        let mut conn = store.connect()?;
        migrations::migrate(&mut conn)
            .map_err(|e| e.context(format!("database {}", path.display())))?;
        store.idle.lock().expect("pool lock").push(conn);
        Ok(store)
    }

    fn connect(&self) -> Result<Connection> {
        let conn = Connection::open(&self.path)
            .map_err(|e| Error::from(e).context(format!("opening {}", self.path.display())))?;
        // Another process (the CLI beside `serve`) may hold the write lock briefly.
        conn.busy_timeout(Duration::from_secs(10))?;
        set_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection. Called only from blocking threads.
    fn with<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R>) -> Result<R> {
        let pooled = self.idle.lock().expect("pool lock").pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&mut conn);
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < POOL_SIZE {
            idle.push(conn);
        }
        out
    }
}

impl Store for SqliteStore {
    fn user_insert(&self, user: &NewUser) -> Result<User> {
        self.with(|c| users::insert(c, user))
    }
    fn user_get(&self, name: &str) -> Result<Option<User>> {
        self.with(|c| users::get(c, name))
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
    fn client_insert(&self, client: &NewClient) -> Result<Client> {
        self.with(|c| clients::insert(c, client))
    }
    fn client_get(&self, id: i64) -> Result<Option<Client>> {
        self.with(|c| clients::get(c, id))
    }
    fn client_list(&self, user: Option<&str>) -> Result<Vec<Client>> {
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
        self.with(|c| uploads::get(c, key))
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

/// Switches the file to WAL. On a file another connection is opening at the
/// same moment (two nodes or a CLI starting with `serve`), SQLite can answer
/// "database is locked" without calling the busy handler, so the switch is
/// retried here for as long as the busy timeout would have waited.
fn set_wal(conn: &Connection) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return Ok(r?),
        }
    }
}

#[cfg(test)]
mod open_race {
    use super::*;

    /// Two nodes (or `serve` and a CLI command) opening a new database file
    /// at once both succeed. Before the WAL switch was retried, about 1 in 100
    /// such opens failed with "database is locked".
    #[test]
    fn two_opens_of_a_new_file_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut errors = Vec::new();
        for i in 0..120 {
            let path = dir.path().join(format!("{i}.db"));
            let (a, b) = std::thread::scope(|s| {
                let p1 = path.clone();
                let p2 = path.clone();
                let a = s.spawn(move || SqliteStore::open(&p1).map(drop));
                let b = s.spawn(move || SqliteStore::open(&p2).map(drop));
                (a.join().unwrap(), b.join().unwrap())
            });
            for r in [a, b] {
                if let Err(e) = r {
                    errors.push(format!("{e:?}"));
                }
            }
        }
        assert!(
            errors.is_empty(),
            "{} errors: {:?}",
            errors.len(),
            &errors[..errors.len().min(3)]
        );
    }
}
