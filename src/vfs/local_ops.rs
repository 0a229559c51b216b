//! Stat, delete, mkdir, rmdir and rename on a local-disk (`fs`) connector, done
//! by wharf with the `*at` syscalls instead of OpenDAL's path-based calls: each
//! is one blocking task that resolves the place inside its jail
//! ([`guard::Place`]) and acts on the descriptor it got, so a symlink swapped in
//! meanwhile cannot send the operation out of the jail.

use std::os::fd::{AsFd, AsRawFd};

use super::guard::{self, Place};
use super::{Entry, VPath};
use crate::error::{Error, Result};

/// What `place` leads to (a symlink inside the jail is followed). FIFOs, sockets
/// and devices count as absent: nothing wharf serves.
pub(super) async fn stat(place: Place, path: &VPath) -> Result<Entry> {
    let shown = path.clone();
    let st = on_disk(move || place.stat())
        .await
        .map_err(|e| guard::error(e, path, "stat"))?;
    guard::entry(shown, &st).ok_or_else(|| Error::not_found(format!("{path}: no such file")))
}

/// The name itself: a symlink is described by what it leads to (which must
/// lie inside the jail, as for [`stat`]) with its text in [`Entry::link`]
/// ([`guard::jail_text`]); anything else as [`stat`] describes it. The jail
/// itself has no name to look at and is stated.
pub(super) async fn lstat(place: Place, path: &VPath) -> Result<Entry> {
    if place.rel.is_empty() {
        return stat(place, path).await;
    }
    let shown = path.clone();
    let (st, text) = on_disk(move || {
        let (dir, name) = place.parent()?;
        let own = guard::lstat_at(dir.as_fd(), &name)?;
        if own.st_mode & libc::S_IFMT != libc::S_IFLNK {
            return Ok((own, None));
        }
        let text = guard::readlink_at(dir.as_fd(), &name)?;
        let text = guard::jail_text(place.jail()?.as_fd(), text);
        Ok((place.stat()?, text))
    })
    .await
    .map_err(|e| guard::error(e, path, "stat"))?;
    let mut entry = guard::entry(shown, &st)
        .ok_or_else(|| Error::not_found(format!("{path}: no such file")))?;
    entry.link = text;
    Ok(entry)
}

/// Removes the name itself (a symlink inside the jail is removed, not what it
/// points to). The caller has checked it is not a directory.
pub(super) async fn delete(place: Place, path: &VPath) -> Result<()> {
    at(place, path, "delete", |dir, name| {
        let st = guard::lstat_at(dir, name)?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
        }
        // SAFETY: unlinkat of a NUL-terminated name in a directory we hold.
        check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) })
    })
    .await
}

pub(super) async fn mkdir(place: Place, path: &VPath) -> Result<()> {
    at(place, path, "mkdir", |dir, name| {
        // SAFETY: mkdirat of a NUL-terminated name in a directory we hold.
        check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o777) })
    })
    .await
}

pub(super) async fn rmdir(place: Place, path: &VPath) -> Result<()> {
    at(place, path, "rmdir", |dir, name| {
        // SAFETY: unlinkat of a NUL-terminated name in a directory we hold.
        check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })
    })
    .await
}

/// Moves `from` to `to` (both inside their jails) with one `renameat`; an
/// existing file at `to` is replaced.
pub(super) async fn rename(from: Place, to: Place, shown: &VPath) -> Result<()> {
    on_disk(move || {
        let (from_dir, from_name) = from.parent()?;
        let (to_dir, to_name) = to.parent()?;
        // SAFETY: renameat of NUL-terminated names in directories we hold.
        check(unsafe {
            libc::renameat(
                from_dir.as_raw_fd(),
                from_name.as_ptr(),
                to_dir.as_raw_fd(),
                to_name.as_ptr(),
            )
        })
    })
    .await
    .map_err(|e| guard::error(e, shown, "rename"))
}

/// Runs `op` on the name of `place` in its directory, resolved inside the jail.
async fn at(
    place: Place,
    path: &VPath,
    what: &str,
    op: impl FnOnce(std::os::fd::BorrowedFd<'_>, &std::ffi::CStr) -> std::io::Result<()>
        + Send
        + 'static,
) -> Result<()> {
    on_disk(move || {
        let (dir, name) = place.parent()?;
        op(dir.as_fd(), &name)
    })
    .await
    .map_err(|e| guard::error(e, path, what))
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Runs local-disk work on the blocking pool, as one task, keeping the io error
/// (its errno says whether a link led out of the jail).
pub(super) async fn on_disk<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}
