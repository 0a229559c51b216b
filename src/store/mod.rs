//! Metadata storage behind a narrow interface.
//!
//! [`Store`] is synchronous and object-safe: the SQLite implementation runs it on
//! blocking threads, and a PostgreSQL store for multi-node deployments can implement
//! the same trait. Async code reaches it only through [`Db::run`], which moves the
//! work off the runtime, so no connection is held across network I/O.

mod clients;
mod links;
mod notifications;
pub mod postgres;
mod sessions;
pub mod sqlite;
mod types;

use std::sync::Arc;

pub use clients::*;
pub use links::*;
pub use notifications::*;
pub use sessions::*;
pub use types::*;

use crate::error::{Error, Result};
use crate::event::AuditEvent;

pub trait Store: Send + Sync + 'static {
    fn user_insert(&self, user: &NewUser) -> Result<User>;
    fn user_get(&self, name: &str) -> Result<Option<User>>;
    fn user_list(&self) -> Result<Vec<User>>;
    fn user_count(&self) -> Result<u64>;
    /// `None` removes the password (key-only login).
    fn user_set_password(&self, name: &str, hash: Option<&str>) -> Result<()>;
    fn user_set_enabled(&self, name: &str, enabled: bool) -> Result<()>;
    fn user_set_key_and_password(&self, name: &str, on: bool) -> Result<()>;
    fn user_set_email(&self, name: &str, email: Option<&str>) -> Result<()>;
    fn user_set_perms(&self, name: &str, perms: crate::policy::PermSet) -> Result<()>;
    fn user_set_admin(&self, name: &str, admin: bool) -> Result<()>;
    /// Removes the user and their keys.
    fn user_delete(&self, name: &str) -> Result<()>;

    fn key_insert(&self, user: &str, key: &NewKey) -> Result<SshKey>;
    fn key_delete(&self, user: &str, fingerprint: &str) -> Result<()>;
    fn keys_of(&self, user: &str) -> Result<Vec<SshKey>>;

    /// Stores a new API key of `user` (its prefix must be unused).
    fn api_key_insert(&self, user: &str, key: &NewApiKey) -> Result<ApiKey>;
    fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKey>>;
    /// Oldest first; `user` filters.
    fn api_key_list(&self, user: Option<&str>) -> Result<Vec<ApiKey>>;
    /// Ends a key at `now`; revoking a revoked key changes nothing.
    fn api_key_revoke(&self, prefix: &str, now: Millis) -> Result<()>;
    /// Records a use of a key (coarsely: at most one write a minute per key).
    fn api_key_touch(&self, id: i64, now: Millis) -> Result<()>;

    /// Inserts a link and its files in one transaction.
    fn link_insert(&self, link: &NewLink, files: &[LinkFile]) -> Result<Link>;
    fn link_by_token_hash(&self, token_hash: &str) -> Result<Option<Link>>;
    fn link_by_public_id(&self, public_id: &str) -> Result<Option<Link>>;
    /// Newest first; `owner` filters.
    fn link_list(&self, owner: Option<&str>) -> Result<Vec<Link>>;
    /// A search of links with its filters, order and page, done in SQL.
    fn link_search(&self, query: &LinkQuery) -> Result<LinkPage>;
    fn link_files(&self, link_id: i64) -> Result<Vec<LinkFile>>;
    fn link_add_file(&self, link_id: i64, file: &LinkFile) -> Result<()>;
    fn link_change(&self, link_id: i64, change: &LinkChange) -> Result<()>;
    /// Applies staff's new rules to a link.
    fn link_edit(&self, link_id: i64, edit: &LinkEdit) -> Result<()>;
    /// Gives a draft its rules and token (from `link`) and activates it; false
    /// if it is not a draft.
    fn link_finish_draft(&self, link_id: i64, link: &NewLink) -> Result<bool>;
    fn link_delete(&self, link_id: i64) -> Result<()>;
    /// Forgets a link's files (after their copies are deleted); the link stays.
    fn link_delete_files(&self, link_id: i64) -> Result<()>;
    /// Takes one use if the link is active, unexpired at `now` and under its limit,
    /// in one conditional UPDATE: concurrent requests can never beat the limit.
    fn link_reserve_use(&self, link_id: i64, now: Millis) -> Result<bool>;
    /// Gives back a use whose transfer failed.
    fn link_refund_use(&self, link_id: i64) -> Result<()>;
    /// Starts a download under a grant: what it costs (docs/links.md).
    fn link_begin_download(&self, link_id: i64, grant: &str, now: Millis) -> Result<Ticket>;
    /// Ends a download begun with a `Shared` or `Reserved` ticket.
    fn link_end_download(&self, link_id: i64, grant: &str, complete: bool) -> Result<()>;
    /// Marks the grant's downloads in flight as alive at `now`.
    fn link_touch_download(&self, link_id: i64, grant: &str, now: Millis) -> Result<()>;
    /// Gives back the uses of downloads not seen alive since `before`.
    fn link_refund_stale(&self, before: Millis) -> Result<u64>;
    /// Whether the grant holds a use (charged or in flight).
    fn link_grant_holds(&self, link_id: i64, grant: &str) -> Result<bool>;
    /// Stores a pending e-mail code (hashed), replacing an older one.
    fn link_code_put(
        &self,
        link_id: i64,
        email: &str,
        hash: &str,
        expires_at: Millis,
    ) -> Result<()>;
    /// Checks an entered code; every try counts, a valid one is used up.
    fn link_code_try(
        &self,
        link_id: i64,
        email: &str,
        hash: &str,
        now: Millis,
        max_attempts: u32,
    ) -> Result<CodeCheck>;

    /// Creates a resumable upload; with `count_use` it takes one of the link's
    /// uses in the same transaction, and is refused (`None`) when none is left.
    fn upload_create(
        &self,
        upload: &NewUpload,
        count_use: bool,
        now: Millis,
    ) -> Result<Option<Upload>>;
    fn upload_get(&self, key: &str) -> Result<Option<Upload>>;
    fn uploads_of(&self, link_id: i64) -> Result<Vec<Upload>>;
    fn upload_progress(&self, id: i64, received: u64, now: Millis) -> Result<()>;
    /// Marks an open upload complete and records the file on its link.
    fn upload_complete(&self, id: i64, file: &LinkFile, now: Millis) -> Result<()>;
    /// Cancels an open upload, giving its use back; false if it was not open.
    fn upload_cancel(&self, id: i64, now: Millis) -> Result<bool>;
    /// Open uploads untouched since `before`.
    fn uploads_stale(&self, before: Millis) -> Result<Vec<Upload>>;
    /// Records that an open upload goes straight to the bucket (its multipart
    /// upload id, the connector) and touches it.
    fn upload_set_direct(
        &self,
        id: i64,
        upload_id: &str,
        connector: &str,
        now: Millis,
    ) -> Result<()>;

    /// Stores a new client (its name must be new for its owner).
    fn client_insert(&self, client: &NewClient) -> Result<Client>;
    fn client_get(&self, id: i64) -> Result<Option<Client>>;
    /// The clients `user` sees (theirs and the shared ones; every client with
    /// `user` `None`), by name.
    fn client_list(&self, user: Option<&str>) -> Result<Vec<Client>>;
    fn client_edit(&self, id: i64, edit: &ClientEdit) -> Result<()>;
    /// Removes a client and its contacts; its links keep going without one.
    fn client_delete(&self, id: i64) -> Result<()>;
    /// Adds a contact to a client (an address already there is updated).
    fn contact_put(&self, client_id: i64, name: &str, email: &str) -> Result<Contact>;
    fn contact_get(&self, id: i64) -> Result<Option<Contact>>;
    /// A client's contacts, by name.
    fn contacts_of(&self, client_id: i64) -> Result<Vec<Contact>>;
    fn contact_delete(&self, id: i64) -> Result<()>;

    /// Starts a staff web session.
    fn web_session_insert(&self, session: &NewWebSession) -> Result<()>;
    /// The session whose token hashes to `token_hash` if it is before its absolute
    /// end at `now` and was last seen after `seen_since` (the idle limit); it is
    /// then marked seen at `now`. A session past either limit is deleted.
    fn web_session_touch(
        &self,
        token_hash: &str,
        now: Millis,
        seen_since: Millis,
    ) -> Result<Option<WebSession>>;
    /// Ends a session (logout); nothing happens for an unknown hash.
    fn web_session_delete(&self, token_hash: &str) -> Result<()>;
    /// Deletes every session past either limit; returns how many.
    fn web_session_purge(&self, now: Millis, seen_since: Millis) -> Result<usize>;

    /// Appends events in one transaction.
    fn audit_append(&self, events: &[AuditEvent]) -> Result<()>;
    /// Newest first.
    fn audit_query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>>;

    /// Records a login lock-out of `address` until `until` (a longer one stays).
    fn ban_put(&self, address: &str, until: Millis, now: Millis) -> Result<()>;
    /// The lock-outs still running at `now` (ended ones are forgotten).
    fn bans_active(&self, now: Millis) -> Result<Vec<Ban>>;

    /// `None` clears it (mails and pages then use the user name).
    fn user_set_display_name(&self, name: &str, display: Option<&str>) -> Result<()>;

    /// Stores a notification for its user; `None` if the user is gone or the
    /// link already has this once-only notice (expired, exhausted).
    fn notification_add(&self, n: &NewNotification, now: Millis) -> Result<Option<i64>>;
    /// The user's newest notifications first.
    fn notifications_of(&self, user: &str, limit: usize) -> Result<Vec<Notification>>;
    fn notifications_unread(&self, user: &str) -> Result<u64>;
    /// Marks one of the user's notifications read (`None`: all); how many changed.
    fn notifications_mark_read(&self, user: &str, id: Option<i64>, now: Millis) -> Result<usize>;
    /// The user's explicit mail choices per kind (kinds not listed: the default).
    fn notification_prefs(&self, user: &str) -> Result<Vec<(NoticeKind, bool)>>;
    fn notification_pref_set(&self, user: &str, kind: NoticeKind, email: bool) -> Result<()>;
    /// Active links (of `owner`, or all) whose expiry fell in (`since`, `now`]
    /// and that have no expiry notice yet.
    fn links_newly_expired(
        &self,
        owner: Option<&str>,
        since: Millis,
        now: Millis,
    ) -> Result<Vec<Link>>;
    /// Replaces the names of a link's recipients: (e-mail, name).
    fn link_recipient_names_set(&self, link_id: i64, names: &[(String, String)]) -> Result<()>;
    /// (e-mail in lower case, name) of the link's named recipients.
    fn link_recipient_names(&self, link_id: i64) -> Result<Vec<(String, String)>>;

    // --- Several nodes (issue 15): rules every node must share are decided here.

    /// Takes lease `name` for `holder` until `now + ttl` if it is free, expired
    /// or already `holder`'s (renewing it); true when `holder` has it now.
    fn lease_take(&self, name: &str, holder: &str, ttl: Millis, now: Millis) -> Result<bool>;
    /// Gives lease `name` up if `holder` has it.
    fn lease_release(&self, name: &str, holder: &str) -> Result<()>;
    /// Who holds lease `name` at `now`.
    fn lease_holder(&self, name: &str, now: Millis) -> Result<Option<String>>;
    /// Reserves a try for `key` before it is checked, unless failures and tries
    /// in flight within `window` already reach `max` (`None`).
    fn failure_reserve(
        &self,
        key: &str,
        now: Millis,
        window: Millis,
        max: u32,
    ) -> Result<Option<i64>>;
    /// Ends reserved try `id`: a failure is kept, anything else frees the slot.
    /// Returns the failures of `key` within `window`.
    fn failure_settle(
        &self,
        id: i64,
        key: &str,
        failed: bool,
        now: Millis,
        window: Millis,
    ) -> Result<u32>;
    /// Forgets the failures of `key` (after a ban).
    fn failures_clear(&self, key: &str) -> Result<()>;
    /// Bans given or lengthened since `since`, still running at `now`.
    fn bans_changed(&self, since: Millis, now: Millis) -> Result<Vec<Ban>>;
    /// When the ban of `address` ends, if one runs at `now`.
    fn ban_until(&self, address: &str, now: Millis) -> Result<Option<Millis>>;

    // --- Modification times clients set on object stores (`crate::vfs::TimeBook`).

    /// Stores a kept time, replacing the one of the same connector and key.
    fn object_time_put(&self, t: &crate::vfs::KeptTime) -> Result<()>;
    fn object_time_get(&self, connector: &str, key: &str) -> Result<Option<crate::vfs::KeptTime>>;
    /// The kept times of every key whose folder is `dir`.
    fn object_times_in(&self, connector: &str, dir: &str) -> Result<Vec<crate::vfs::KeptTime>>;
    fn object_time_delete(&self, connector: &str, key: &str) -> Result<()>;
}

/// The store keeps the Vfs's modification times of object stores.
impl crate::vfs::TimeBook for Db {
    fn time_put(&self, t: &crate::vfs::KeptTime) -> Result<()> {
        self.0.object_time_put(t)
    }
    fn time_get(&self, connector: &str, key: &str) -> Result<Option<crate::vfs::KeptTime>> {
        self.0.object_time_get(connector, key)
    }
    fn times_in(&self, connector: &str, dir: &str) -> Result<Vec<crate::vfs::KeptTime>> {
        self.0.object_times_in(connector, dir)
    }
    fn time_delete(&self, connector: &str, key: &str) -> Result<()> {
        self.0.object_time_delete(connector, key)
    }
}

/// A login lock-out kept across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// An IP address, as text.
    pub address: String,
    pub until: Millis,
}

/// The async handle to the store, cheap to clone.
#[derive(Clone)]
pub struct Db(Arc<dyn Store>);

impl Db {
    pub fn new(store: impl Store) -> Self {
        Db(Arc::new(store))
    }

    /// Runs `f` against the store on a blocking thread.
    pub async fn run<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&dyn Store) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| Error::internal("database task failed").with_source(e))?
    }

    /// Direct access for synchronous callers (the CLI, tests, blocking threads).
    pub fn blocking(&self) -> &dyn Store {
        self.0.as_ref()
    }
}
