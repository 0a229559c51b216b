//! Files coming in through links: upload requests (outside parties upload into
//! a folder of the creator) and staff sending through the browser (files go
//! into a draft send link's copies). Bytes are staged by `uploads::Uploads`;
//! this module decides whether an upload may start, where a complete one is
//! published, and records it: the link's file list, the audit row (size and
//! SHA-256) and the creator's notification.
//!
//! Files are published through a Session: for a request, one acting for its
//! creator as they are now, confined to the request's folder (they must still
//! exist, be enabled and hold `write`, and the folder must still be in their
//! home: checked when an upload begins and again when it is published); for a
//! send draft, the system's session over the transfer store. The Session
//! hashes the bytes on the way; it writes no audit row, this module writes the
//! link's one. An existing file is never overwritten: the upload gets the next
//! free "name (n).ext", or is refused (`[links] upload_conflict`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::{Created, LinkOptions, LinkService};
use crate::audit::{AuditEvent, Outcome};
use crate::config::UploadConflict;
use crate::error::{Error, ErrorKind, Result};
use crate::policy::links::{self as rules, Status};
use crate::policy::{self, Op, Protocol};
use crate::session::Session;
use crate::store::{
    now_ms, Inbound, Link, LinkFile, LinkKind, LinkState, NewUpload, Upload, UploadState,
};
use crate::units::human_size;
use crate::uploads::names;
use crate::vfs::VPath;

/// What an upload request accepts beyond the common rules.
#[derive(Debug, Clone, Default)]
pub struct RequestOptions {
    /// Files accepted in all (the link's usage limit).
    pub max_files: Option<u32>,
    /// The largest file accepted, in bytes.
    pub max_size: Option<u64>,
    /// Mail the creator at each completed upload.
    pub notify: bool,
}

/// Who is uploading (for the audit row and the notification).
#[derive(Debug, Clone)]
pub struct Uploader {
    /// The visitor's grant (or the staff session): only it may continue the upload.
    pub grant: String,
    pub remote: Option<SocketAddr>,
    /// An e-mail address the visitor proved, if any.
    pub email: Option<String>,
}

impl Uploader {
    fn describe(&self) -> String {
        match (&self.email, &self.remote) {
            (Some(e), Some(r)) => format!("{e} from {}", r.ip()),
            (Some(e), None) => e.clone(),
            (None, Some(r)) => format!("a visitor from {}", r.ip()),
            (None, None) => "a visitor".into(),
        }
    }
}

/// One lock per destination folder: choosing a free name and publishing under
/// it happen together, so two uploads of "a.pdf" never pick the same name.
#[derive(Default)]
pub(super) struct FolderLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl FolderLocks {
    pub(super) fn get(&self, folder: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().expect("folder locks");
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(folder.to_string()).or_default().clone()
    }
}

/// How long a publication waits for another node's in the same folder.
const FOLDER_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

impl LinkService {
    /// Takes the folder's publication lock across nodes (lease
    /// `lock:folder:<folder>`), waiting while another node publishes there.
    pub(super) async fn folder_lock(&self, folder: &str) -> Result<crate::cluster::LockGuard> {
        let key = format!("folder:{folder}");
        let deadline = tokio::time::Instant::now() + FOLDER_WAIT;
        loop {
            if let Some(l) = crate::cluster::lock(&self.db, "links", &key).await? {
                return Ok(l);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "another upload into this folder is being published; retry in a moment",
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Creates an upload request into `folder` (as `owner` sees it; created if
    /// missing and the owner may).
    pub async fn request(
        &self,
        owner: &str,
        folder: &str,
        r: &RequestOptions,
        o: &LinkOptions,
    ) -> Result<Created> {
        let user = self.creator(owner).await?;
        policy::check(user.perms, Op::Write)
            .map_err(|p| Error::denied(format!("{owner} lacks the {} permission", p.name())))?;
        if o.max_uses.is_some() && r.max_files.is_some() {
            return Err(Error::invalid(
                "give the file limit once (max files counts uploads)",
            ));
        }
        if r.max_files == Some(0) || r.max_size == Some(0) {
            return Err(Error::invalid("limits must be at least 1"));
        }
        let view = VPath::parse(folder)?;
        let home = user.home.clone();
        let session = self.session(user);
        // Like `mkdir -p` inside the home: each missing folder on the way is made.
        let mut at = VPath::root();
        for seg in view.segments() {
            at = at.join(seg)?;
            match session.stat(&at).await {
                Ok(e) if e.is_dir() => {}
                Ok(_) => return Err(Error::invalid(format!("{at} is not a folder"))),
                Err(e) if e.kind() == ErrorKind::NotFound => session.mkdir(&at).await?,
                Err(e) => return Err(e),
            }
        }
        let mut o = o.clone();
        o.max_uses = r.max_files.or(o.max_uses);
        let (mut new, token) = self.prepare(owner, LinkKind::Request, &o).await?;
        new.state = LinkState::Active;
        new.inbound = Some(Inbound {
            folder: home.nest(&view).to_string(),
            max_size: r.max_size,
            notify: r.notify,
        });
        let link = self.db.run(move |s| s.link_insert(&new, &[])).await?;
        self.keep_names(&link, &o).await;
        Ok(self.announce(link, &token).await)
    }

    /// Declares an upload of `size` bytes named `raw_name` into `link`. An upload
    /// request spends one use per file (given back if the upload is cancelled);
    /// a staff draft spends none.
    pub async fn upload_begin(
        &self,
        link: &Link,
        who: &Uploader,
        raw_name: &str,
        size: u64,
    ) -> Result<Upload> {
        let new = self.upload_admit(link, who, raw_name, size).await?;
        let count_use = new.1;
        self.uploads
            .begin(new.0, count_use)
            .await?
            .ok_or_else(no_more)
    }

    /// The checks an upload passes before it starts (tus or direct): the new
    /// upload's row and whether it spends one of the link's uses.
    pub(super) async fn upload_admit(
        &self,
        link: &Link,
        who: &Uploader,
        raw_name: &str,
        size: u64,
    ) -> Result<(NewUpload, bool)> {
        let name = names::sanitise(raw_name);
        let count_use = match (link.kind, &link.inbound) {
            (LinkKind::Request, Some(_)) => {
                if let Some(why) = too_large(link, &name, size) {
                    return Err(Error::invalid(why));
                }
                // A creator who can no longer take files stops the request
                // before any byte moves.
                let inbox = match self.inbox(link, who.remote).await {
                    Ok(inbox) => inbox,
                    Err(e) => {
                        self.record_refusal(link, &name, who, &e).await;
                        return Err(e);
                    }
                };
                if self.config().upload_conflict == UploadConflict::Refuse {
                    let target = inbox.folder.join(&name)?;
                    if inbox.session.stat_for(Op::Write, &target).await.is_ok() {
                        return Err(taken(&name));
                    }
                }
                true
            }
            (LinkKind::Send, None) if link.state == LinkState::Draft => false,
            _ => return Err(Error::invalid("this link does not take uploads")),
        };
        let new = NewUpload {
            key: hex::encode(crate::secret::random_bytes::<16>()),
            link_id: link.id,
            grant: who.grant.clone(),
            name,
            size,
            remote: who.remote.map(|r| r.to_string()),
        };
        Ok((new, count_use))
    }

    /// Whether new upload requests notify their creator (`[links] notify_uploads`).
    pub fn notify_uploads_default(&self) -> bool {
        self.config().notify_uploads
    }

    /// Drops uploads untouched for `[links] upload_abandon`, giving their uses
    /// back and freeing their staged bytes, and browser drafts never finished.
    /// Returns how many.
    pub async fn sweep_uploads(&self, now: crate::store::Millis) -> Result<usize> {
        let idle = self.config().upload_abandon.as_millis() as i64;
        // Direct uploads' parts live in the bucket: abort them first.
        self.sweep_direct(now - idle).await?;
        let n = self.uploads.sweep(now - idle).await?;
        Ok(n + self.sweep_drafts(now - idle).await?)
    }

    pub fn uploads(&self) -> &crate::uploads::Uploads {
        &self.uploads
    }

    /// Publishes a fully staged upload and records it. Returns the file as
    /// published (its final name, path and SHA-256). A refused publication (the
    /// folder now leads out of the creator's home, a permission lost) is
    /// audited as denied, another failure as failed.
    pub async fn upload_complete(
        &self,
        link: &Link,
        up: &Upload,
        who: &Uploader,
    ) -> Result<LinkFile> {
        let res = self.publish(link, up, who).await;
        if let Err(e) = &res {
            self.record_refusal(link, &up.name, who, e).await;
        }
        res
    }

    /// The `link_upload` row of an upload refused (`denied`) or failed.
    pub(super) async fn record_refusal(&self, link: &Link, name: &str, who: &Uploader, e: &Error) {
        let outcome = match e.kind() {
            ErrorKind::PermissionDenied => Outcome::Denied,
            _ => Outcome::Failed,
        };
        let mut ev = AuditEvent::new(Protocol::Http, "link_upload")
            .link(&link.public_id)
            .outcome(outcome)
            .detail(format!("{name}: {}", e.kind().as_str()));
        if let Some(r) = who.remote {
            ev = ev.remote(r);
        }
        self.audit.record(ev).await;
    }

    /// Where `link`'s uploads are published, and who publishes them: for a
    /// request, a session acting for its creator, confined to its folder, as
    /// long as they may still write there (else PermissionDenied, the reason
    /// in the context); for a send draft, the system's session over the
    /// transfer store, into the link's own folder.
    pub(super) async fn inbox(&self, link: &Link, remote: Option<SocketAddr>) -> Result<Inbox> {
        match (link.kind, &link.inbound) {
            (LinkKind::Request, Some(inbound)) => {
                let stored = VPath::parse(&inbound.folder)?;
                let no_longer = |why: &str| {
                    Error::new(
                        ErrorKind::PermissionDenied,
                        format!("this link no longer accepts files ({why})"),
                    )
                    .with_public("This link no longer accepts files. Ask the sender for a new one.")
                };
                let session = self
                    .creator_session(link, Some(&stored), remote)
                    .await
                    .map_err(no_longer)?;
                if session.allows(Op::Write).is_err() {
                    return Err(no_longer("creator lost a permission it needs"));
                }
                let folder = session
                    .view(&stored)
                    .ok_or_else(|| no_longer("outside the creator's home"))?;
                Ok(Inbox {
                    session,
                    folder,
                    stored,
                })
            }
            (LinkKind::Send, None) => {
                let dir = VPath::root().join(&link.public_id)?;
                Ok(Inbox {
                    session: self.transfer_session(),
                    folder: dir.clone(),
                    stored: dir,
                })
            }
            _ => Err(Error::invalid("this link does not take uploads")),
        }
    }

    async fn publish(&self, link: &Link, up: &Upload, who: &Uploader) -> Result<LinkFile> {
        if up.state != UploadState::Open {
            return Err(Error::invalid("the upload is no longer open"));
        }
        let inbox = self.inbox(link, who.remote).await?;
        let (session, folder) = (&inbox.session, &inbox.folder);
        if link.kind == LinkKind::Send {
            session.mkdir(folder).await.or_else(|e| match e.kind() {
                ErrorKind::AlreadyExists => Ok(()),
                _ => Err(e),
            })?;
        }
        let lock = self.folder_locks.get(inbox.stored.as_ref());
        let _held = lock.lock().await;
        // Other nodes publish into the same folder: the store decides too.
        let cluster_lock = self.folder_lock(folder.as_ref()).await?;
        let refuse = link.kind == LinkKind::Request
            && self.config().upload_conflict == UploadConflict::Refuse;
        let name = self.free_name(session, folder, &up.name, refuse).await?;
        let target = folder.join(&name)?;
        let staged = self.uploads.open_staged(up).await?;
        let mut upload = session.create(&target).await?;
        if let Err(e) = upload.copy_from(staged, session.buffer_size()).await {
            let _ = upload.abort(e.kind().as_str()).await;
            return Err(e.context("publishing the upload"));
        }
        let written = upload.written();
        if written != up.size {
            let _ = upload.abort("short").await;
            return Err(Error::internal(format!(
                "the staged upload has {written} of {} bytes",
                up.size
            )));
        }
        let (size, sha256) = upload.close().await?;
        let file = LinkFile {
            id: 0,
            name: name.clone(),
            path: inbox.stored.join(&name)?.to_string(),
            is_dir: false,
            size,
            sha256: Some(sha256),
        };
        let (id, f) = (up.id, file.clone());
        self.db
            .run(move |s| s.upload_complete(id, &f, now_ms()))
            .await?;
        cluster_lock.release().await;
        self.uploads.discard(up).await;
        self.record_upload(link, &file, who, false).await;
        Ok(file)
    }

    /// `name`, or the next free "name (n).ext" (or a refusal, by config). Send
    /// drafts always number: their files are named by the staff member.
    pub(super) async fn free_name(
        &self,
        session: &Session,
        folder: &VPath,
        name: &str,
        refuse: bool,
    ) -> Result<String> {
        for n in 0..10_000u32 {
            let candidate = if n == 0 {
                name.to_string()
            } else {
                names::numbered(name, n)
            };
            match session.stat_for(Op::Write, &folder.join(&candidate)?).await {
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(candidate),
                Err(e) => return Err(e),
                Ok(_) if refuse => return Err(taken(name)),
                Ok(_) => continue,
            }
        }
        Err(taken(name))
    }

    /// The `link_upload` row of a published file; a `direct` one (sent
    /// straight to the bucket) carries no byte count, since none passed
    /// through wharf (its hash is still the one wharf read back).
    pub(super) async fn record_upload(
        &self,
        link: &Link,
        file: &LinkFile,
        who: &Uploader,
        direct: bool,
    ) {
        let mut ev = AuditEvent::new(Protocol::Http, "link_upload")
            .link(&link.public_id)
            .outcome(Outcome::Ok)
            .detail(format!(
                "{} sha256 {}{}",
                file.path,
                file.sha256.as_deref().unwrap_or("-"),
                if direct { " direct" } else { "" }
            ));
        if !direct {
            ev = ev.bytes(file.size);
        }
        if let Some(r) = who.remote {
            ev = ev.remote(r);
        }
        if let Some(e) = &who.email {
            ev = ev.actor(e.clone());
        }
        self.audit.record(ev).await;
        // Only files from outside are news: a staff member's own uploads into
        // a send draft are not.
        if link.kind != LinkKind::Request {
            return;
        }
        // The use count as it is now (this upload included).
        let fresh = self.find(&link.public_id).await.unwrap_or(link.clone());
        let notifier =
            crate::notify::Notifier::new(self.db.clone(), self.mailer.clone(), &self.config());
        notifier
            .emit(crate::notify::Event::Uploaded {
                link: &fresh,
                file,
                who: &who.describe(),
            })
            .await;
        notifier.if_exhausted(&fresh).await;
    }

    /// Whether `link` takes uploads now: an upload request that is active (or
    /// used up by uploads still in progress, which keep their use), or a
    /// staff draft.
    pub fn accepts_uploads(link: &Link, now: crate::store::Millis, holds_use: bool) -> bool {
        match link.kind {
            LinkKind::Request => match rules::status(&super::rules_of(link), now) {
                Status::Active => true,
                Status::Exhausted => holds_use,
                _ => false,
            },
            LinkKind::Send => link.state == LinkState::Draft,
            LinkKind::Share => false,
        }
    }
}

/// Where a link's uploads go: the session that publishes them, the folder in
/// its view, and the folder as the link's files store it.
pub(super) struct Inbox {
    pub(super) session: Session,
    pub(super) folder: VPath,
    pub(super) stored: VPath,
}

/// Why a file of `size` bytes is more than the request accepts (`None`: it is not).
pub fn too_large(link: &Link, name: &str, size: u64) -> Option<String> {
    let max = link.inbound.as_ref()?.max_size.filter(|m| size > *m)?;
    Some(format!(
        "{name} is {}; this link accepts files up to {}.",
        human_size(size),
        human_size(max)
    ))
}

/// A link whose uses are all taken.
pub(super) fn no_more() -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        "this link accepts no more files",
    )
}

fn taken(name: &str) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        format!("a file named {name:?} is already there; rename it and upload again"),
    )
}
