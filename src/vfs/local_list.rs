//! Directory listings on a local-disk (`fs`) connector, read by wharf instead of
//! OpenDAL.
//!
//! OpenDAL's fs lister asks the blocking pool for each entry's type and again for
//! its metadata, two round trips per name: a folder of 2,000 files cost 4,000
//! thread hand-offs before the first download began. Here one blocking task reads a
//! page of entries with their `lstat` results.
//!
//! The directory is opened inside its jail (`guard::Place`) and read through that
//! descriptor; each name is `lstat`ed relative to it. So only symlinks need more:
//! they are resolved inside the jail (links leading out, dangling or looping are
//! left out of the listing) and then described by what they point to, with
//! their text ([`Entry::link`]) so the doors can show them as links.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::guard::{self, Place};
use super::local_ops::on_disk;
use super::{Entry, EntryStream, VPath};

/// Entries read per blocking task.
const PAGE: usize = 256;

/// Lists the directory at `place` (virtual `dir`) page by page, leaving out
/// `hidden` names (mount points shadowing stored names, the staging directory at
/// the connector root).
pub(super) async fn list(
    place: Place,
    dir: VPath,
    hidden: Vec<String>,
) -> crate::Result<EntryStream> {
    let shown = dir.clone();
    let (jail, entries) = on_disk(move || {
        let jail = place.jail()?;
        let fd = guard::beneath(jail.as_fd(), &place.rel, libc::O_RDONLY | libc::O_DIRECTORY)?;
        Ok((jail, (Dir::new(fd)?, place.rel)))
    })
    .await
    .map_err(|e| guard::error(e, &shown, "list"))?;
    let (entries, rel) = entries;
    let listing = Arc::new(Listing {
        jail,
        rel,
        dir,
        hidden,
    });
    let pages = stream::try_unfold(Some(entries), move |entries| {
        let listing = listing.clone();
        async move {
            let Some(entries) = entries else {
                return Ok::<_, crate::Error>(None);
            };
            let shown = listing.dir.clone();
            let (page, rest) = on_disk(move || listing.read_page(entries))
                .await
                .map_err(|e| guard::error(e, &shown, "list"))?;
            Ok(Some((stream::iter(page.into_iter().map(Ok)), rest)))
        }
    });
    Ok(pages.try_flatten().boxed())
}

/// One listing in progress: what its pages are read against.
struct Listing {
    /// The innermost jail, and the listed directory below it.
    jail: OwnedFd,
    rel: String,
    dir: VPath,
    hidden: Vec<String>,
}

impl Listing {
    /// Reads up to [`PAGE`] entries; the directory comes back unless the
    /// listing is complete.
    fn read_page(&self, mut entries: Dir) -> io::Result<(Vec<Entry>, Option<Dir>)> {
        let dir = &self.dir;
        let mut page = Vec::new();
        while page.len() < PAGE {
            let Some(name) = entries.next_name()? else {
                return Ok((page, None));
            };
            let Ok(name) = name.into_string() else {
                tracing::warn!(dir = %dir, "skipping a stored name that is not UTF-8");
                continue;
            };
            if self.hidden.contains(&name) {
                continue;
            }
            let Ok(path) = dir.join(&name) else {
                tracing::warn!(dir = %dir, name, "skipping a stored name that is not a valid path");
                continue;
            };
            // Gone since readdir, or a link out of the jail or to nothing: left out.
            let Some((st, link)) = self.describe(entries.fd(), &name) else {
                continue;
            };
            let Some(mut entry) = guard::entry(path, &st) else {
                continue;
            };
            entry.link = link;
            page.push(entry);
        }
        Ok((page, Some(entries)))
    }

    /// What listed `name` is, from its `lstat`: a symlink is followed only
    /// inside the jail, and its text comes along ([`guard::jail_text`]).
    fn describe(&self, dir: BorrowedFd<'_>, name: &str) -> Option<(libc::stat, Option<String>)> {
        let cname = CString::new(name).ok()?;
        let st = guard::lstat_at(dir, &cname).ok()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
            return Some((st, None));
        }
        let text = guard::readlink_at(dir, &cname)
            .ok()
            .and_then(|t| guard::jail_text(self.jail.as_fd(), t));
        let rel = if self.rel.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.rel)
        };
        let fd = guard::beneath(self.jail.as_fd(), &rel, libc::O_PATH).ok()?;
        Some((guard::fstat(fd.as_fd()).ok()?, text))
    }
}

/// An open directory stream (`fdopendir`), read a name at a time.
struct Dir(NonNull<libc::DIR>);

// SAFETY: the stream is used by one blocking task at a time (it moves between
// them, never shared).
unsafe impl Send for Dir {}

impl Dir {
    fn new(fd: OwnedFd) -> io::Result<Dir> {
        let raw = fd.into_raw_fd();
        // SAFETY: fdopendir takes over `raw` on success; on failure it is closed here.
        match NonNull::new(unsafe { libc::fdopendir(raw) }) {
            Some(dir) => Ok(Dir(dir)),
            None => {
                let e = io::Error::last_os_error();
                unsafe { libc::close(raw) };
                Err(e)
            }
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor lives as long as the stream, which `self` owns.
        unsafe { BorrowedFd::borrow_raw(libc::dirfd(self.0.as_ptr())) }
    }

    /// The next name other than `.` and `..`; `None` at the end.
    fn next_name(&mut self) -> io::Result<Option<std::ffi::OsString>> {
        use std::os::unix::ffi::OsStrExt;
        loop {
            // SAFETY: errno is reset so that the end can be told from an error;
            // the entry is read before the next readdir call.
            unsafe { *libc::__errno_location() = 0 };
            let ent = unsafe { libc::readdir64(self.0.as_ptr()) };
            if ent.is_null() {
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(0) | None => Ok(None),
                    _ => Err(e),
                };
            }
            let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            return Ok(Some(
                std::ffi::OsStr::from_bytes(name.to_bytes()).to_os_string(),
            ));
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: the stream is open and dropped once.
        unsafe { libc::closedir(self.0.as_ptr()) };
    }
}
