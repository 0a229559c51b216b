//! Sessions that act for a link rather than for someone logged in: the link's
//! creator over HTTP (a share served, an upload request's files published),
//! or the system over the transfer store (a send link's copies). They are
//! ordinary sessions — the creator's permissions are checked at each call,
//! paths are resolved inside the creator's home, on fs through the same jail —
//! with two differences: they can be confined further (to the shared folder,
//! the request's folder), and they write no audit rows of their own, since
//! the link server records each access once, as the link's row (`link:<id>`:
//! `link_download`, `link_zip`, `link_upload`, `link_unavailable`, ...).

use std::net::SocketAddr;
use std::sync::Arc;

use super::Session;
use crate::audit::AuditLog;
use crate::error::Result;
use crate::policy::{Op, PermSet, Protocol, ProtocolSet};
use crate::store::User;
use crate::vfs::{Entry, VPath, Vfs};

impl Session {
    /// A session acting for `creator` (as the store holds them now) for a link
    /// visited from `remote`, confined to `within` (a full virtual path: a
    /// shared folder, a request's folder) or else to their home. A disabled
    /// creator acts for nothing, and `within` must lie inside the creator's
    /// home (a home moved since the link was made leaves it outside). `Err`
    /// says why not, for the link's audit row; visitors get a generic answer.
    pub fn for_link(
        creator: User,
        remote: Option<SocketAddr>,
        vfs: Arc<Vfs>,
        within: Option<&VPath>,
        audit: AuditLog,
    ) -> std::result::Result<Session, &'static str> {
        if !creator.enabled {
            return Err("creator is disabled");
        }
        let mut session = Session::new(creator, Protocol::Http, remote, vfs, audit);
        session.actor.quiet = true;
        if let Some(dir) = within {
            if session.view(dir).is_none() {
                return Err("outside the creator's home");
            }
            session.vfs = Arc::new(session.vfs.jailed(dir));
        }
        Ok(session)
    }

    /// The system acting over the transfer store for send links (copies made,
    /// served, withdrawn and purged): every file permission, the whole store
    /// as its home, no audit rows (the link service records the link's).
    pub fn system(transfers: Arc<Vfs>, protocol: Protocol, audit: AuditLog) -> Session {
        let user = User {
            id: 0,
            name: "wharf".into(),
            password_hash: None,
            enabled: true,
            home: VPath::root(),
            perms: PermSet::all(),
            protocols: ProtocolSet::default(),
            key_and_password: false,
            email: None,
            created_at: 0,
            admin: false,
            display_name: None,
        };
        let mut session = Session::new(user, protocol, None, transfers, audit);
        session.actor.quiet = true;
        session
    }

    /// The storage's preferred chunk size, for copies into an upload.
    pub fn buffer_size(&self) -> usize {
        self.vfs.buffer_size()
    }

    /// `full` (a virtual path as links store it) in the user's view; `None`
    /// when it lies outside their home.
    pub fn view(&self, full: &VPath) -> Option<VPath> {
        full.relative_to(&self.actor.user.home)
    }

    /// Looks `path` up before doing `op` on it (the link server finds what an
    /// item is before serving it, or whether a name is free before publishing
    /// under it): needs the permission of `op`, not `list`.
    pub async fn stat_for(&self, op: Op, path: &VPath) -> Result<Entry> {
        self.allow(op, "stat", path).await?;
        let res = self.vfs.stat(&self.full(path)).await;
        let mut entry = self.refusal_audited("stat", path, res).await?;
        entry.path = path.clone();
        Ok(entry)
    }
}
