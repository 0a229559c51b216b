//! The Session: the one door to files for every front-end.
//!
//! Each call runs the same steps in the same order: permission check, resolution of
//! the client's path inside the user's home, the storage call, and an audit record.
//! Front-ends speak in paths as the user sees them (`/` is their home); they never
//! see a home path, a storage key or a connector.

mod direct;
mod link;
mod transfer;

use std::net::SocketAddr;
use std::sync::Arc;

use futures::stream::{StreamExt, TryStreamExt};

pub use transfer::{Download, Upload};

use crate::audit::{AuditEvent, AuditLog, Outcome};
use crate::error::{Error, ErrorKind, Result};
use crate::policy::{self, Op, Protocol};
use crate::store::User;
use crate::vfs::{Entry, EntryStream, SetAttrs, VPath, Vfs};

/// Who acts, from where, over which protocol: stamped on every audit record.
#[derive(Clone)]
pub struct Actor {
    pub user: Arc<User>,
    pub protocol: Protocol,
    pub remote: Option<SocketAddr>,
    audit: AuditLog,
    /// Writes no audit rows: a session acting for a link, whose caller (the
    /// link server) records each access once, as the link's row.
    quiet: bool,
}

impl Actor {
    pub fn event(&self, action: &str) -> AuditEvent {
        let mut ev = AuditEvent::new(self.protocol, action).actor(self.user.name.clone());
        if let Some(r) = self.remote {
            ev = ev.remote(r);
        }
        ev
    }

    pub async fn record(&self, ev: AuditEvent) {
        if !self.quiet {
            self.audit.record(ev).await;
        }
    }

    /// For `Drop` paths, where waiting is impossible.
    pub fn record_now(&self, ev: AuditEvent) {
        if !self.quiet {
            self.audit.record_now(ev);
        }
    }
}

#[derive(Clone)]
pub struct Session {
    actor: Actor,
    /// The storage jailed to the user's home: every call below goes through it.
    vfs: Arc<Vfs>,
    /// The whole storage, only to create the home itself.
    whole: Arc<Vfs>,
}

impl Session {
    pub fn new(
        user: User,
        protocol: Protocol,
        remote: Option<SocketAddr>,
        vfs: Arc<Vfs>,
        audit: AuditLog,
    ) -> Self {
        Session {
            vfs: Arc::new(vfs.jailed(&user.home)),
            whole: vfs,
            actor: Actor {
                user: Arc::new(user),
                protocol,
                remote,
                audit,
                quiet: false,
            },
        }
    }

    /// Creates the user's home (and its parents) if it does not exist yet, so a new
    /// account works at its first login.
    pub async fn ensure_home(&self) -> Result<()> {
        let home = &self.actor.user.home;
        let mut dir = VPath::root();
        for seg in home.segments() {
            dir = dir.join(seg)?;
            match self.whole.stat(&dir).await {
                Ok(e) if e.is_dir() => continue,
                Ok(_) => {
                    return Err(Error::new(
                        ErrorKind::NotADirectory,
                        format!("home {home}: {dir} is a file"),
                    ))
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            match self.whole.mkdir(&dir).await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.context(format!("creating home {home}"))),
            }
        }
        Ok(())
    }

    pub fn user(&self) -> &User {
        &self.actor.user
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The full virtual path of a path in the user's view: always inside the home.
    fn full(&self, path: &VPath) -> VPath {
        self.actor.user.home.nest(path)
    }

    /// Whether the user's permissions allow `op` (no storage call, nothing
    /// audited): `Err` names the missing permission. The link server asks it
    /// before an access, to tell a link whose creator lost a permission (the
    /// link no longer works) from a path refused inside it.
    pub fn allows(&self, op: Op) -> std::result::Result<(), policy::Perm> {
        policy::check(self.actor.user.perms, op)
    }

    /// Checks `op` on `path`; a refusal is audited and returned as PermissionDenied.
    async fn allow(&self, op: Op, action: &str, path: &VPath) -> Result<()> {
        match self.allows(op) {
            Ok(()) => Ok(()),
            Err(missing) => {
                let why = format!("needs the {} permission", missing.name());
                self.actor
                    .record(
                        self.actor
                            .event(action)
                            .path(path)
                            .outcome(Outcome::Denied)
                            .detail(why.clone()),
                    )
                    .await;
                Err(Error::denied(format!("{path}: permission denied ({why})"))
                    .with_public(format!("Permission denied ({why})")))
            }
        }
    }

    /// Records the outcome of a change (mkdir, delete, ...) and passes the result on.
    async fn audited<T>(&self, action: &str, path: &VPath, res: Result<T>) -> Result<T> {
        let mut ev = self.actor.event(action).path(path);
        if let Err(e) = &res {
            let outcome = match e.kind() {
                ErrorKind::PermissionDenied => Outcome::Denied,
                _ => Outcome::Failed,
            };
            ev = ev.outcome(outcome).detail(e.kind().as_str());
        }
        self.actor.record(ev).await;
        res.map_err(|e| self.hide_home(e))
    }

    /// Lookups are not audited, but a refusal is (a path leading out of the
    /// home through a symlink): it is recorded as `denied`.
    async fn refusal_audited<T>(&self, action: &str, path: &VPath, res: Result<T>) -> Result<T> {
        if let Err(e) = &res {
            if e.kind() == ErrorKind::PermissionDenied {
                return self.audited(action, path, res).await;
            }
        }
        res.map_err(|e| self.hide_home(e))
    }

    /// Errors reach clients: make sure they speak of the user's paths, not the full
    /// virtual path of their home.
    fn hide_home(&self, e: Error) -> Error {
        let home = self.actor.user.home.as_str();
        if home == "/" {
            return e;
        }
        e.map_text(|t| t.replace(home, ""))
    }

    pub async fn stat(&self, path: &VPath) -> Result<Entry> {
        self.stat_for(Op::Stat, path).await
    }

    /// The figures of the disk holding `path` (SFTP `statvfs@openssh.com`).
    pub async fn statvfs(&self, path: &VPath) -> Result<crate::vfs::FsStats> {
        self.allow(Op::Stat, "statvfs", path).await?;
        let res = self.vfs.statvfs(&self.full(path)).await;
        self.refusal_audited("statvfs", path, res).await
    }

    /// Creates the symlink `link` leading to `target` (SFTP SYMLINK; local disk
    /// only). `target` is read in the user's view (relative to the link's folder
    /// unless absolute) and clamped to the home like any path; the link is
    /// written with a relative text, so it leads to the same file inside the
    /// home wherever the home lies on disk. Needs `write`; audited.
    pub async fn symlink(&self, target: &str, link: &VPath) -> Result<()> {
        self.allow(Op::Write, "symlink", link).await?;
        let res = async {
            let dir = link
                .parent()
                .ok_or_else(|| Error::denied("/ is your home directory"))?;
            let to = if target.starts_with('/') {
                VPath::parse(target)?
            } else {
                VPath::parse(&format!("{dir}/{target}"))?
            };
            let text = relative(&dir, &to);
            self.vfs.symlink(&self.full(link), &text).await
        }
        .await;
        self.audited("symlink", link, res).await
    }

    /// As [`Session::stat`], but a symlink is described as one: its text is in
    /// [`Entry::link`] as the user may see it (SFTP LSTAT).
    pub async fn lstat(&self, path: &VPath) -> Result<Entry> {
        self.allow(Op::Stat, "stat", path).await?;
        let res = self.vfs.lstat(&self.full(path)).await;
        let mut entry = self.refusal_audited("stat", path, res).await?;
        entry.link = entry
            .link
            .take()
            .and_then(|t| shown_link(&self.actor.user.home, path, t));
        entry.path = path.clone();
        Ok(entry)
    }

    /// The text of the symlink `link` (SFTP READLINK; local disk only), as the
    /// user may see it (see [`shown_link`]); one leading out of the
    /// home is refused.
    pub async fn readlink(&self, link: &VPath) -> Result<String> {
        self.allow(Op::Stat, "readlink", link).await?;
        let res = self.vfs.readlink(&self.full(link)).await;
        let text = self.refusal_audited("readlink", link, res).await?;
        match shown_link(&self.actor.user.home, link, text) {
            Some(text) => Ok(text),
            None => {
                let e = Error::denied(format!("{link} leads outside the permitted folder"));
                self.audited("readlink", link, Err(e)).await
            }
        }
    }

    /// Makes `to` a second name of the file `from` (`hardlink@openssh.com`; local
    /// disk only). Needs `read` on `from` and `write` on `to`; audited.
    pub async fn hardlink(&self, from: &VPath, to: &VPath) -> Result<()> {
        self.allow(Op::Read, "hardlink", from).await?;
        self.allow(Op::Write, "hardlink", to).await?;
        let res = self.vfs.hardlink(&self.full(from), &self.full(to)).await;
        let ev = self
            .actor
            .event("hardlink")
            .path(from)
            .detail(format!("to {to}"));
        let ev = match &res {
            Ok(()) => ev,
            Err(e) => ev
                .outcome(match e.kind() {
                    ErrorKind::PermissionDenied => Outcome::Denied,
                    _ => Outcome::Failed,
                })
                .detail(format!("to {to}: {}", e.kind().as_str())),
        };
        self.actor.record(ev).await;
        res.map_err(|e| self.hide_home(e))
    }

    /// Lists a directory as a stream of entries in the user's view.
    pub async fn list(&self, dir: &VPath) -> Result<EntryStream> {
        self.allow(Op::List, "list", dir).await?;
        let home = self.actor.user.home.clone();
        let res = self.vfs.list(&self.full(dir)).await;
        let stream = self.refusal_audited("list", dir, res).await?;
        Ok(stream
            .map_ok(move |mut e| {
                e.path = e.path.relative_to(&home).unwrap_or_else(VPath::root);
                e.link = e.link.take().and_then(|t| shown_link(&home, &e.path, t));
                e
            })
            .boxed())
    }

    /// Checks the permission to read `path` (a refusal is audited), for a file
    /// read through a handle already open (SFTP: a file this channel writes).
    pub async fn check_read(&self, path: &VPath) -> Result<()> {
        self.allow(Op::Read, "download", path).await
    }

    /// Opens a file for download; the download is audited when the handle ends.
    pub async fn open_read(&self, path: &VPath) -> Result<Download> {
        self.allow(Op::Read, "download", path).await?;
        match self.vfs.open(&self.full(path)).await {
            Ok(reader) => Ok(Download::new(reader, self.actor.clone(), path.clone())),
            Err(e) => self.audited("download", path, Err(e)).await,
        }
    }

    /// A short-lived presigned GET for `path` answering with `disposition`, if
    /// its connector hands out direct downloads (`None` otherwise). The caller
    /// audits the hand-out: the bytes never pass through this session.
    pub async fn presign_download(
        &self,
        path: &VPath,
        disposition: &str,
    ) -> Result<Option<String>> {
        self.allow(Op::Read, "download", path).await?;
        self.vfs
            .presign_download(&self.full(path), disposition)
            .await
    }

    /// Starts an upload; it becomes visible and is audited (bytes, SHA-256) on close.
    pub async fn create(&self, path: &VPath) -> Result<Upload> {
        self.create_with(path, true).await
    }

    async fn create_with(&self, path: &VPath, check: bool) -> Result<Upload> {
        self.allow(Op::Write, "upload", path).await?;
        let full = self.full(path);
        let writer = if check {
            self.vfs.create(&full).await
        } else {
            self.vfs.create_checked(&full).await
        };
        match writer {
            Ok(writer) => Ok(Upload::new(writer, self.actor.clone(), path.clone())),
            Err(e) => self.audited("upload", path, Err(e)).await,
        }
    }

    /// Whether uploads to `path` are random-access (local disk): writes at any
    /// offset, reads of what was written, updates in place of an old file.
    pub fn random_writes(&self, path: &VPath) -> bool {
        self.vfs.random_writes(&self.full(path))
    }

    /// Opens `path` for update after [`Session::check_create`] passed: a
    /// random-access upload seeded with the current content, published
    /// atomically at close (a crash leaves the old version). Local disk only.
    pub async fn create_update_checked(&self, path: &VPath) -> Result<Upload> {
        self.allow(Op::Write, "upload", path).await?;
        match self.vfs.create_seeded(&self.full(path)).await {
            Ok(writer) => Ok(Upload::seeded(writer, self.actor.clone(), path.clone())),
            Err(e) => self.audited("upload", path, Err(e)).await,
        }
    }

    /// Checks that an upload to `path` could start (permission, directory), without
    /// starting it. The refusal is audited like a refused upload. `current` is
    /// what the caller's own lookup of `path` found (`None`: nothing there).
    pub async fn check_create(&self, path: &VPath, current: Option<&Entry>) -> Result<()> {
        self.allow(Op::Write, "upload", path).await?;
        let res = self.vfs.check_create_known(&self.full(path), current).await;
        self.refusal_audited("upload", path, res).await
    }

    /// Starts an upload that keeps the first `keep` bytes of the existing file (a
    /// resumed or appended upload): they are streamed into the new version first,
    /// so the file is still replaced atomically when the upload closes.
    pub async fn create_keeping(&self, path: &VPath, keep: u64) -> Result<Upload> {
        self.create_keeping_with(path, keep, true).await
    }

    /// [`Session::create_keeping`] after [`Session::check_create`] just passed
    /// (SFTP checks at OPEN and starts at the first WRITE): the storage lookups
    /// are not repeated; the permission still is.
    pub async fn create_keeping_checked(&self, path: &VPath, keep: u64) -> Result<Upload> {
        self.create_keeping_with(path, keep, false).await
    }

    async fn create_keeping_with(&self, path: &VPath, keep: u64, check: bool) -> Result<Upload> {
        if keep == 0 {
            return self.create_with(path, check).await;
        }
        let old = self.open_read(path).await?;
        if keep > old.size() {
            return Err(Error::invalid(format!(
                "{path} has {} bytes; cannot resume at {keep}",
                old.size()
            )));
        }
        let mut upload = self.create_with(path, check).await?;
        let mut chunks = old.stream(0..keep).await?;
        while let Some(chunk) = chunks.try_next().await? {
            upload.write(chunk).await?;
        }
        old.finish(true).await;
        Ok(upload)
    }

    pub async fn delete(&self, path: &VPath) -> Result<()> {
        self.allow(Op::Delete, "delete", path).await?;
        let res = self.vfs.delete(&self.full(path)).await;
        self.audited("delete", path, res).await
    }

    pub async fn mkdir(&self, path: &VPath) -> Result<()> {
        self.allow(Op::Mkdir, "mkdir", path).await?;
        let res = self.vfs.mkdir(&self.full(path)).await;
        self.audited("mkdir", path, res).await
    }

    pub async fn rmdir(&self, path: &VPath) -> Result<()> {
        self.allow(Op::Rmdir, "rmdir", path).await?;
        if path.is_root() {
            return self
                .audited(
                    "rmdir",
                    path,
                    Err(Error::denied("/ is your home directory")),
                )
                .await;
        }
        let res = self.vfs.rmdir(&self.full(path)).await;
        self.audited("rmdir", path, res).await
    }

    /// Changes a file's permissions, times or size (SFTP SETSTAT); needs the
    /// `write` permission; audited as `setstat` with what changed. Where storage
    /// keeps no attributes this is refused, or answered OK and ignored, as
    /// `[storage] setstat_mode` says.
    pub async fn set_attrs(&self, path: &VPath, attrs: &SetAttrs) -> Result<()> {
        if attrs.is_empty() {
            return self.stat(path).await.map(drop);
        }
        self.allow(Op::SetAttrs, "setstat", path).await?;
        let full = self.full(path);
        let res = self.vfs.set_attrs(&full, attrs).await;
        let rest = SetAttrs {
            atime: None,
            mtime: None,
            ..attrs.clone()
        };
        if matches!(res, Ok(true)) && self.vfs.keeps_only_times(&full) && !rest.is_empty() {
            // Only the times were kept; the rest was ignored (a refusal is an
            // error, recorded below).
            let times = SetAttrs {
                atime: attrs.atime,
                mtime: attrs.mtime,
                ..Default::default()
            };
            let ev = self.actor.event("setstat").path(path).detail(format!(
                "{}; ignored (storage keeps none): {}",
                times.describe(),
                rest.describe()
            ));
            self.actor.record(ev).await;
            return Ok(());
        }
        self.record_setstat(path, attrs, &res).await;
        res.map(drop).map_err(|e| self.hide_home(e))
    }

    /// Checks the permission to change attributes of `path` (a refusal is
    /// audited), for a change applied to an upload still open.
    pub async fn allow_set_attrs(&self, path: &VPath) -> Result<()> {
        self.allow(Op::SetAttrs, "setstat", path).await
    }

    /// Checks, before an upload is published, which attribute changes asked on
    /// its open handle will apply: those to apply after publication (see
    /// [`Session::set_attrs`]; `None` when nothing will, ignored ones audited
    /// now), and the answer to give the client. Where storage keeps only times
    /// (object stores) and `setstat_mode` refuses the rest, the times still
    /// apply and the client is told the rest was refused.
    pub async fn check_set_attrs(
        &self,
        path: &VPath,
        attrs: &SetAttrs,
    ) -> (Option<SetAttrs>, Result<()>) {
        if attrs.is_empty() {
            return (None, Ok(()));
        }
        if let Err(e) = self.allow(Op::SetAttrs, "setstat", path).await {
            return (None, Err(e));
        }
        let full = self.full(path);
        let rest = SetAttrs {
            atime: None,
            mtime: None,
            ..attrs.clone()
        };
        if self.vfs.keeps_only_times(&full)
            && attrs.mtime.is_some()
            && !rest.is_empty()
            && self.vfs.refuses_unkept_attrs()
        {
            let res = Err(Error::new(
                ErrorKind::Unsupported,
                format!("{path}: this storage keeps no permissions or sizes (the time is kept)"),
            ));
            self.record_setstat(path, &rest, &res).await;
            let times = SetAttrs {
                atime: attrs.atime,
                mtime: attrs.mtime,
                ..Default::default()
            };
            return (Some(times), res.map(drop));
        }
        let res = self.vfs.attrs_supported(&full, attrs);
        if !matches!(res, Ok(true)) {
            self.record_setstat(path, attrs, &res).await;
        }
        match res {
            Ok(true) => (Some(attrs.clone()), Ok(())),
            Ok(false) => (None, Ok(())),
            Err(e) => (None, Err(self.hide_home(e))),
        }
    }

    async fn record_setstat(&self, path: &VPath, attrs: &SetAttrs, res: &Result<bool>) {
        let ev = self.actor.event("setstat").path(path);
        let ev = match res {
            Ok(true) => ev.detail(attrs.describe()),
            Ok(false) => ev.detail(format!(
                "ignored (storage keeps none): {}",
                attrs.describe()
            )),
            Err(e) => ev
                .outcome(match e.kind() {
                    ErrorKind::PermissionDenied => Outcome::Denied,
                    _ => Outcome::Failed,
                })
                .detail(format!("{}: {}", attrs.describe(), e.kind().as_str())),
        };
        self.actor.record(ev).await;
    }

    /// Renames within the user's home. With `overwrite`, an existing file is replaced.
    pub async fn rename(&self, from: &VPath, to: &VPath, overwrite: bool) -> Result<()> {
        self.allow(Op::Rename, "rename", from).await?;
        if from.is_root() {
            return self
                .audited(
                    "rename",
                    from,
                    Err(Error::denied("/ is your home directory")),
                )
                .await;
        }
        let res = self
            .vfs
            .rename(&self.full(from), &self.full(to), overwrite)
            .await;
        let ev = self
            .actor
            .event("rename")
            .path(from)
            .detail(format!("to {to}"));
        let ev = match &res {
            Ok(()) => ev,
            Err(e) => ev
                .outcome(Outcome::Failed)
                .detail(format!("to {to}: {}", e.kind().as_str())),
        };
        self.actor.record(ev).await;
        res.map_err(|e| self.hide_home(e))
    }
}

/// A symlink text of the link `link` (user's view) from the Vfs, as the user
/// may see it: a relative text that stays inside the home as it is; an
/// absolute one (a virtual path) as the user's absolute path when it lies
/// in the home. `None` otherwise: its text would speak of what lies outside.
fn shown_link(home: &VPath, link: &VPath, text: String) -> Option<String> {
    if text.starts_with('/') {
        let to = VPath::parse(&text).ok()?;
        return to.relative_to(home).map(|p| p.to_string());
    }
    let mut depth = link.parent().map_or(0, |d| d.segments().count()) as isize;
    let inside = text.split('/').all(|seg| {
        match seg {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        depth >= 0
    });
    inside.then_some(text)
}

/// The text of a relative symlink in `dir` that leads to `to` (both in the
/// same tree): `../` for each folder of `dir` not shared, then the rest of `to`.
fn relative(dir: &VPath, to: &VPath) -> String {
    let a: Vec<&str> = dir.segments().collect();
    let b: Vec<&str> = to.segments().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<&str> = vec![".."; a.len() - common];
    parts.extend(&b[common..]);
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests;
