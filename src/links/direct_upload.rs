//! Direct uploads into links: the browser sends the bytes straight to the S3
//! bucket, Azure container or GCS bucket of the link's folder (its connector
//! has `direct_uploads = true`) with part URLs, and wharf checks and
//! publishes the result (the service's calls are behind `vfs::DirectPlace`).
//!
//! An upload is admitted exactly as a tus upload is (`upload_admit`: the
//! creator may still write there, the size limit, the name conflict rule; one
//! use spent) and recorded in the same uploads table, with its multipart
//! upload id. Completing it lists the parts the bucket holds (every part, each
//! of the length its URL was signed for, adding up to the declared size),
//! completes the multipart upload at the staging key, reads the object back
//! once to hash it, and publishes it under a free name only if that hash is
//! the one the browser declared. Any failure removes the staged object and
//! cancels the upload (its use comes back): nothing half-visible. The sweep
//! aborts direct uploads left open.

use std::collections::HashMap;
use std::sync::Mutex;

use super::inbound::no_more;
use super::{LinkService, Uploader};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{now_ms, Link, LinkFile, Upload, UploadState};
use crate::vfs::{part_count, part_len, part_size, DirectPlace, DonePart};

/// Part URLs handed out in one request at most.
pub const MAX_URLS: usize = 100;

/// A direct upload just begun.
pub struct DirectStart {
    pub upload: Upload,
    pub part_size: u64,
    pub parts: u64,
}

/// Where a completion stands (kept in memory while it runs and a while after).
#[derive(Debug, Clone)]
pub enum Verdict {
    Verifying,
    Published(LinkFile),
    /// The upload was refused and removed: the public reason.
    Failed(String),
}

/// Completions running or finished in this process, by upload key.
#[derive(Default)]
pub(super) struct Verdicts(Mutex<HashMap<String, Verdict>>);

impl Verdicts {
    /// Marks `key` as verifying; false if it already is (or is done).
    fn start(&self, key: &str) -> bool {
        let mut map = self.0.lock().expect("verdicts");
        if map.len() > 10_000 {
            map.retain(|_, v| matches!(v, Verdict::Verifying));
        }
        match map.get(key) {
            Some(Verdict::Verifying) | Some(Verdict::Published(_)) => false,
            _ => {
                map.insert(key.to_string(), Verdict::Verifying);
                true
            }
        }
    }

    fn set(&self, key: &str, v: Verdict) {
        self.0.lock().expect("verdicts").insert(key.to_string(), v);
    }

    fn forget(&self, key: &str) {
        self.0.lock().expect("verdicts").remove(key);
    }

    pub(super) fn get(&self, key: &str) -> Option<Verdict> {
        self.0.lock().expect("verdicts").get(key).cloned()
    }
}

/// The cluster lock an upload's writer holds (the same name `uploads` uses,
/// so its sweep skips an upload being completed on any node).
fn lock_key(key: &str) -> String {
    format!("upload:{key}")
}

/// `origin` if it is fit for a header (plain URL characters only).
fn checked_origin(origin: String) -> Option<String> {
    origin
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".:/-_[]".contains(&b))
        .then_some(origin)
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The parts numbered within a file of `size` bytes: an Azure part URL binds
/// no part number (a block id is the holder's to choose), so a block past the
/// last part is no part and is neither listed nor committed.
fn within(parts: Vec<DonePart>, size: u64) -> Vec<DonePart> {
    let count = part_count(size, part_size(size));
    parts.into_iter().filter(|p| p.number <= count).collect()
}

/// Why the bucket's parts are not the declared file (`None`: they are).
fn parts_problem(parts: &[DonePart], size: u64) -> Option<String> {
    let ps = part_size(size);
    let want = part_count(size, ps);
    if parts.len() as u64 != want {
        return Some(format!(
            "{} of {want} parts arrived; send the missing ones and complete again",
            parts.len()
        ));
    }
    for (i, p) in parts.iter().enumerate() {
        let n = i as u64 + 1;
        if p.number != n {
            return Some(format!("part {n} is missing"));
        }
        if p.size != part_len(size, ps, n) {
            return Some(format!(
                "part {n} has {} bytes, not {}",
                p.size,
                part_len(size, ps, n)
            ));
        }
    }
    None
}

impl LinkService {
    /// The bucket uploads into `link` can go straight to, if its folder's
    /// connector takes direct uploads (and the creator may still write there).
    async fn direct_place_for(&self, link: &Link, who: &Uploader) -> Result<Option<DirectPlace>> {
        let inbox = self.inbox(link, who.remote).await?;
        inbox.session.direct_place(&inbox.folder).await
    }

    /// The bucket's origin if the upload page of `link` should send files
    /// straight to it (the page's content policy must allow it).
    pub async fn direct_uploads(&self, link: &Link) -> Option<String> {
        let who = Uploader {
            grant: String::new(),
            remote: None,
            email: None,
        };
        checked_origin(self.direct_place_for(link, &who).await.ok()??.origin())
    }

    /// The bucket's origin if staff sends (into the transfer store) go
    /// straight to it.
    pub async fn direct_send_origin(&self) -> Option<String> {
        let place = self
            .transfer_session()
            .direct_place(&crate::vfs::VPath::root())
            .await
            .ok()??;
        checked_origin(place.origin())
    }

    /// Declares a direct upload of `size` bytes named `raw_name` (admitted as
    /// a tus upload is) and starts its multipart upload at the staging key.
    pub async fn direct_begin(
        &self,
        link: &Link,
        who: &Uploader,
        raw_name: &str,
        size: u64,
    ) -> Result<DirectStart> {
        if size == 0 {
            return Err(Error::invalid(
                "an empty file has no parts; send it through the ordinary upload",
            ));
        }
        let (new, count_use) = self.upload_admit(link, who, raw_name, size).await?;
        let place = self.direct_place_for(link, who).await?.ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "this link's folder takes no direct uploads",
            )
        })?;
        let mut up = self
            .db
            .run(move |s| s.upload_create(&new, count_use, now_ms()))
            .await?
            .ok_or_else(no_more)?;
        let upload_id = match place.create(&up.key).await {
            Ok(id) => id,
            Err(e) => {
                let id = up.id;
                let _ = self.db.run(move |s| s.upload_cancel(id, now_ms())).await;
                return Err(e);
            }
        };
        let (id, uid, conn) = (up.id, upload_id.clone(), place.connector_name().to_string());
        self.db
            .run(move |s| s.upload_set_direct(id, &uid, &conn, now_ms()))
            .await?;
        up.direct_id = Some(upload_id);
        up.direct_connector = Some(place.connector_name().to_string());
        let ps = part_size(size);
        Ok(DirectStart {
            parts: part_count(size, ps),
            part_size: ps,
            upload: up,
        })
    }

    /// The place and multipart id of an open direct upload.
    async fn open_direct(
        &self,
        link: &Link,
        up: &Upload,
        who: &Uploader,
    ) -> Result<(DirectPlace, String)> {
        let Some(upload_id) = up.direct_id.clone() else {
            return Err(Error::not_found("not a direct upload"));
        };
        if up.state != UploadState::Open {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the upload is no longer open",
            ));
        }
        let place = self
            .direct_place_for(link, who)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Unsupported, "direct uploads were turned off"))?;
        Ok((place, upload_id))
    }

    /// Presigned URLs for parts `numbers` of an open direct upload (each
    /// signed for its own length); keeps the upload from the sweep.
    pub async fn direct_part_urls(
        &self,
        link: &Link,
        up: &Upload,
        who: &Uploader,
        numbers: &[u64],
    ) -> Result<Vec<(u64, String)>> {
        if numbers.len() > MAX_URLS {
            return Err(Error::invalid(format!(
                "ask for at most {MAX_URLS} parts at once"
            )));
        }
        let (place, upload_id) = self.open_direct(link, up, who).await?;
        let ps = part_size(up.size);
        let count = part_count(up.size, ps);
        let mut out = Vec::with_capacity(numbers.len());
        for &n in numbers {
            if n == 0 || n > count {
                return Err(Error::invalid(format!("parts are numbered 1 to {count}")));
            }
            let len = part_len(up.size, ps, n);
            out.push((n, place.part_url(&up.key, &upload_id, n, len).await?));
        }
        let (id, received) = (up.id, up.received);
        let _ = self
            .db
            .run(move |s| s.upload_progress(id, received, now_ms()))
            .await;
        Ok(out)
    }

    /// The parts the bucket holds for an open direct upload (to resume).
    pub async fn direct_parts(
        &self,
        link: &Link,
        up: &Upload,
        who: &Uploader,
    ) -> Result<Vec<DonePart>> {
        let (place, upload_id) = self.open_direct(link, up, who).await?;
        let parts = place
            .parts(&up.key, &upload_id)
            .await?
            .ok_or_else(|| Error::not_found("the bucket no longer holds this upload"))?;
        Ok(within(parts, up.size))
    }

    /// How the completion of upload `key` stands: in this process, or
    /// `Verifying` while any node holds its lock (completing it).
    pub async fn direct_verdict(&self, key: &str) -> Option<Verdict> {
        if let Some(v) = self.verdicts.get(key) {
            return Some(v);
        }
        let name = format!("lock:{}", lock_key(key));
        match self.db.run(move |s| s.lease_holder(&name, now_ms())).await {
            Ok(Some(_)) => Some(Verdict::Verifying),
            _ => None,
        }
    }

    /// Starts completing a direct upload: false if one is already running
    /// (or done). [`LinkService::direct_complete`] then does the work.
    pub fn direct_claim(&self, key: &str) -> bool {
        self.verdicts.start(key)
    }

    /// Completes a direct upload (claimed with [`LinkService::direct_claim`])
    /// whose browser declared SHA-256 `sha256`: the checks and the publishing
    /// described at the top. Meant to run in its own task: it reads the whole
    /// object back.
    pub async fn direct_complete(
        &self,
        link: &Link,
        up: &Upload,
        who: &Uploader,
        sha256: &str,
    ) -> Result<LinkFile> {
        // One completion at a time across nodes (the uploads sweep leaves an
        // upload alone while this lock is held).
        let lock = crate::cluster::lock(&self.db, "links", &lock_key(&up.key)).await;
        let Ok(Some(lock)) = lock else {
            self.verdicts.forget(&up.key);
            return Err(Error::new(
                ErrorKind::Unavailable,
                "this upload is being checked; ask again in a moment",
            ));
        };
        // As it is now: another node may have finished it meanwhile.
        let up = match self.uploads.get(&up.key).await {
            Ok(Some(now)) => now,
            _ => up.clone(),
        };
        let up = &up;
        if let (UploadState::Complete, Some(path)) = (up.state, &up.path) {
            lock.release().await;
            let file = LinkFile {
                id: 0,
                name: path.rsplit('/').next().unwrap_or(path).to_string(),
                path: path.clone(),
                is_dir: false,
                size: up.size,
                sha256: up.sha256.clone(),
            };
            self.verdicts.set(&up.key, Verdict::Published(file.clone()));
            return Ok(file);
        }
        let res = self.direct_complete_inner(link, up, who, sha256).await;
        lock.release().await;
        match &res {
            Ok(f) => self.verdicts.set(&up.key, Verdict::Published(f.clone())),
            Err(e) => {
                let still_open = matches!(
                    self.uploads.get(&up.key).await,
                    Ok(Some(u)) if u.state == UploadState::Open
                );
                if still_open {
                    // Parts missing (or the bucket busy): nothing was
                    // removed; the visitor sends the rest and asks again.
                    self.verdicts.forget(&up.key);
                } else {
                    self.record_refusal(link, &up.name, who, e).await;
                    let why = crate::reply::text(e).to_string();
                    self.verdicts.set(&up.key, Verdict::Failed(why));
                }
            }
        }
        res
    }

    async fn direct_complete_inner(
        &self,
        link: &Link,
        up: &Upload,
        who: &Uploader,
        sha256: &str,
    ) -> Result<LinkFile> {
        let sha256 = sha256.to_ascii_lowercase();
        if !is_sha256(&sha256) {
            return Err(Error::invalid("give the file's SHA-256 as 64 hex digits"));
        }
        let (place, upload_id) = self.open_direct(link, up, who).await?;
        // Keeps it from the sweep while it is checked.
        let (id, received) = (up.id, up.received);
        let _ = self
            .db
            .run(move |s| s.upload_progress(id, received, now_ms()))
            .await;
        let parts = place
            .parts(&up.key, &upload_id)
            .await?
            .ok_or_else(|| Error::not_found("the bucket no longer holds this upload"))?;
        let parts = within(parts, up.size);
        // Missing parts: the upload stays open, the browser sends them.
        if let Some(why) = parts_problem(&parts, up.size) {
            return Err(Error::new(ErrorKind::InvalidInput, why.clone()).with_public(why));
        }
        // From here on a failure removes everything: the visitor starts again.
        let res = self
            .direct_verify_publish(link, up, who, &place, &upload_id, &parts, &sha256)
            .await;
        if res.is_err() {
            let _ = place.abort(&up.key, &upload_id).await;
            let _ = place.delete_staged(&up.key).await;
            let id = up.id;
            let _ = self.db.run(move |s| s.upload_cancel(id, now_ms())).await;
        }
        res
    }

    #[allow(clippy::too_many_arguments)]
    async fn direct_verify_publish(
        &self,
        link: &Link,
        up: &Upload,
        who: &Uploader,
        place: &DirectPlace,
        upload_id: &str,
        parts: &[DonePart],
        sha256: &str,
    ) -> Result<LinkFile> {
        place.complete(&up.key, upload_id, parts).await?;
        let (size, read) = place.hash_staged(&up.key, self.vfs.budget()).await?;
        if size != up.size {
            let why = format!("the bucket holds {size} of {} bytes", up.size);
            return Err(Error::new(ErrorKind::InvalidInput, why.clone()).with_public(why));
        }
        if read != sha256 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the file in the bucket does not match its SHA-256; upload it again",
            )
            .with_public("The file that arrived does not match its SHA-256; upload it again."));
        }
        let inbox = self.inbox(link, who.remote).await?;
        let (session, folder) = (&inbox.session, &inbox.folder);
        if link.kind == crate::store::LinkKind::Send {
            session.mkdir(folder).await.or_else(|e| match e.kind() {
                ErrorKind::AlreadyExists => Ok(()),
                _ => Err(e),
            })?;
        }
        let lock = self.folder_locks.get(inbox.stored.as_ref());
        let _held = lock.lock().await;
        let cluster_lock = self.folder_lock(folder.as_ref()).await?;
        let refuse = link.kind == crate::store::LinkKind::Request
            && self.config().upload_conflict == crate::config::UploadConflict::Refuse;
        let name = self.free_name(session, folder, &up.name, refuse).await?;
        let target = folder.join(&name)?;
        session
            .direct_publish(place, &up.key, &target, size)
            .await?;
        let file = LinkFile {
            id: 0,
            name: name.clone(),
            path: inbox.stored.join(&name)?.to_string(),
            is_dir: false,
            size,
            sha256: Some(read),
        };
        let (id, f) = (up.id, file.clone());
        self.db
            .run(move |s| s.upload_complete(id, &f, now_ms()))
            .await?;
        cluster_lock.release().await;
        self.record_upload(link, &file, who, true).await;
        Ok(file)
    }

    /// Cancels an open direct upload: the multipart upload is aborted, the
    /// use given back.
    pub async fn direct_cancel(&self, up: &Upload) -> Result<bool> {
        self.direct_abort(up).await;
        let id = up.id;
        self.db.run(move |s| s.upload_cancel(id, now_ms())).await
    }

    /// Aborts the multipart upload of `up` and removes any staged object,
    /// whatever became of its link (the sweep's part).
    async fn direct_abort(&self, up: &Upload) {
        let (Some(upload_id), Some(conn)) = (&up.direct_id, &up.direct_connector) else {
            return;
        };
        let place = self
            .vfs
            .direct_place_named(conn)
            .or_else(|| self.transfers.direct_place_named(conn));
        let Some(place) = place else {
            tracing::warn!(upload = %up.key, connector = %conn, "a direct upload's connector is gone; its parts stay in the bucket");
            return;
        };
        if let Err(e) = place.abort(&up.key, upload_id).await {
            tracing::warn!(upload = %up.key, error = %e, "aborting a direct upload");
        }
        let _ = place.delete_staged(&up.key).await;
    }

    /// Aborts direct uploads untouched since `before` (their rows are then
    /// cancelled by the uploads sweep). Returns how many.
    pub(super) async fn sweep_direct(&self, before: crate::store::Millis) -> Result<usize> {
        let stale = self.db.run(move |s| s.uploads_stale(before)).await?;
        let mut n = 0;
        for up in stale.iter().filter(|u| u.direct_id.is_some()) {
            if matches!(self.verdicts.get(&up.key), Some(Verdict::Verifying)) {
                continue;
            }
            // Being completed on another node.
            let name = format!("lock:{}", lock_key(&up.key));
            if self
                .db
                .run(move |s| s.lease_holder(&name, now_ms()))
                .await?
                .is_some()
            {
                continue;
            }
            self.direct_abort(up).await;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_must_be_whole() {
        let size = (8 << 20) * 2 + 10;
        let p = |number, size| DonePart {
            number,
            size,
            etag: "e".into(),
        };
        let good = vec![p(1, 8 << 20), p(2, 8 << 20), p(3, 10)];
        assert_eq!(parts_problem(&good, size), None);
        assert!(parts_problem(&good[..2], size).unwrap().contains("2 of 3"));
        let short = vec![p(1, 8 << 20), p(2, 5), p(3, 10)];
        assert!(parts_problem(&short, size).unwrap().contains("part 2"));
        let gap = vec![p(1, 8 << 20), p(3, 10), p(4, 10)];
        assert!(parts_problem(&gap, size).unwrap().contains("part 2"));
    }
}
