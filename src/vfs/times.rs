//! Modification times kept for storage that keeps none a client can set
//! (object stores: S3, GCS, Azure Blob, WebDAV, memory).
//!
//! An object's LastModified is set by the service when it is written and can
//! only be changed by rewriting the object (S3 CopyObject onto itself: a
//! full server-side copy per SETSTAT, and not on every service); user metadata
//! such as `x-amz-meta-mtime` could carry a time, but ListObjects never returns
//! user metadata, so a listing would need one HEAD per entry. Clients that
//! compare times (`rclone sync`, `sftp put -p`, WinSCP, FileZilla) set a time
//! right after an upload and read it back in listings, so both must be cheap.
//!
//! The time a client sets is therefore kept in the metadata store (one row per
//! connector and object key, shared by every node of a cluster), with what the
//! object was when the time was set: its size and a validator made of its
//! ETag and its LastModified to the second (a listing gives LastModified in
//! milliseconds, a HEAD to the second). STAT and listings report the kept time
//! only while the object still matches, so a change made outside wharf wins and
//! shows its own LastModified. An upload through wharf forgets the time (a new
//! file is "now" unless the client sets one again, as `put -p` does after
//! writing), a delete forgets it, and a rename carries it to the new key.
//! Listings read the times of one folder in one query.
//!
//! The time is not also written as S3 user metadata (`x-amz-meta-mtime`):
//! OpenDAL sets an object's metadata when its upload starts, and the time
//! arrives later (`put -p` and WinSCP send FSETSTAT after the last WRITE, rclone
//! and FTP's MFMT after the upload), so only a rewrite of the object could carry
//! it; and wharf, reading listings, would never look at it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Entry;
use crate::error::{Error, Result};

/// A client-set modification time of an object, with what the object was then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptTime {
    /// The connector's name.
    pub connector: String,
    /// The object's key in the connector (no trailing `/`, also for a folder).
    pub key: String,
    /// The key's folder (`a/b/` for `a/b/c`, empty at the top): listings read
    /// one folder's times by it.
    pub dir: String,
    /// Milliseconds since the Unix epoch.
    pub mtime_ms: i64,
    /// The object's size when the time was set.
    pub size: u64,
    /// The object's validator when the time was set (see [`validator`]).
    pub tag: String,
}

/// Where kept times live (the metadata store). Synchronous: the Vfs calls it
/// on the blocking pool.
pub trait TimeBook: Send + Sync + 'static {
    /// Stores a time, replacing the one of the same connector and key.
    fn time_put(&self, t: &KeptTime) -> Result<()>;
    fn time_get(&self, connector: &str, key: &str) -> Result<Option<KeptTime>>;
    /// The times of every key whose folder is `dir`.
    fn times_in(&self, connector: &str, dir: &str) -> Result<Vec<KeptTime>>;
    fn time_delete(&self, connector: &str, key: &str) -> Result<()>;
}

/// The folder part of a key: `a/b/` for `a/b/c`, empty for a top-level key.
pub fn dir_of(key: &str) -> String {
    let key = key.trim_end_matches('/');
    match key.rfind('/') {
        Some(i) => key[..=i].to_string(),
        None => String::new(),
    }
}

/// What identifies an object's current version: its ETag (quotes dropped) and
/// its LastModified to the second; a folder has a fixed one.
pub fn validator(entry: &Entry) -> String {
    if entry.is_dir() {
        return "dir".into();
    }
    let secs = entry
        .modified
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let etag = entry.etag.as_deref().unwrap_or("").trim_matches('"');
    format!("{etag}@{secs}")
}

/// Milliseconds since the epoch of `t` (times before 1970 are kept as 0).
pub fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

/// Whether the object described by `entry` is unchanged since `kept` was set.
pub fn holds(entry: &Entry, kept: &KeptTime) -> bool {
    entry.size == kept.size && validator(entry) == kept.tag
}

/// Replaces `entry`'s time with the kept one if the object is unchanged since.
pub fn apply(entry: &mut Entry, kept: &KeptTime) {
    if holds(entry, kept) {
        entry.modified = Some(UNIX_EPOCH + Duration::from_millis(kept.mtime_ms.max(0) as u64));
    }
}

/// Runs `f` against the book on the blocking pool.
pub async fn run<R: Send + 'static>(
    book: &Arc<dyn TimeBook>,
    f: impl FnOnce(&dyn TimeBook) -> Result<R> + Send + 'static,
) -> Result<R> {
    let book = book.clone();
    tokio::task::spawn_blocking(move || f(book.as_ref()))
        .await
        .map_err(|e| Error::internal("a metadata task failed").with_source(e))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::VPath;

    #[test]
    fn folders_of_keys() {
        assert_eq!(dir_of("a/b/c"), "a/b/");
        assert_eq!(dir_of("a/b/"), "a/");
        assert_eq!(dir_of("c"), "");
    }

    #[test]
    fn a_changed_object_keeps_its_own_time() {
        let at = |s| Some(UNIX_EPOCH + Duration::from_millis(s));
        let mut e = Entry::dir(VPath::parse("/f").unwrap());
        e.kind = super::super::EntryKind::File;
        e.size = 3;
        e.etag = Some("\"abc\"".into());
        e.modified = at(1_700_000_000_123);
        let kept = KeptTime {
            connector: "s3".into(),
            key: "f".into(),
            dir: String::new(),
            mtime_ms: 1_000_000_000,
            size: 3,
            tag: "abc@1700000000".into(),
        };
        let mut same = e.clone();
        same.modified = at(1_700_000_000_999); // a listing's milliseconds
        apply(&mut same, &kept);
        assert_eq!(same.modified, at(1_000_000_000));
        let mut rewritten = e.clone();
        rewritten.modified = at(1_700_000_005_000);
        apply(&mut rewritten, &kept);
        assert_eq!(rewritten.modified, at(1_700_000_005_000));
        let mut resized = e;
        resized.size = 4;
        apply(&mut resized, &kept);
        assert_eq!(resized.modified, at(1_700_000_000_123));
    }
}
