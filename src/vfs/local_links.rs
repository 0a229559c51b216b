//! Symbolic and hard links on a local-disk (`fs`) connector (SFTP SYMLINK,
//! READLINK, `hardlink@openssh.com`). Each is one blocking task that resolves
//! the directory of the name inside its jail ([`Place::parent`]) and acts with
//! `symlinkat`, `readlinkat` or `linkat` on the last name, so no symlink swapped
//! in meanwhile redirects it. What a symlink's text leads to is checked by the
//! Session before it is written (it must stay inside the home) and again by
//! the jail at every use (a link moved elsewhere cannot lead out either).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};

use super::guard::{self, Place};
use super::local_ops::on_disk;
use super::VPath;
use crate::error::Result;

/// Creates the symlink `place` with the text `target`.
pub(super) async fn symlink(place: Place, target: String, path: &VPath) -> Result<()> {
    on_disk(move || {
        let (dir, name) = place.parent()?;
        let text = CString::new(target)?;
        // SAFETY: symlinkat of NUL-terminated strings in a directory we hold.
        check(unsafe { libc::symlinkat(text.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
    })
    .await
    .map_err(|e| guard::error(e, path, "symlink"))
}

/// The text of the symlink `place` (the name itself, not followed), as
/// [`guard::jail_text`] shows it; an absolute text outside the jail is refused
/// as leading out.
pub(super) async fn readlink(place: Place, path: &VPath) -> Result<String> {
    on_disk(move || {
        let jail = place.jail()?;
        let (dir, name) = place.parent()?;
        let text = guard::readlink_at(dir.as_fd(), &name)?;
        guard::jail_text(jail.as_fd(), text)
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EXDEV))
    })
    .await
    .map_err(|e| guard::error(e, path, "readlink"))
}

/// Makes `to` a second name of the file `from` (`linkat`, the name at `from`
/// itself: a symlink there is linked, not followed).
pub(super) async fn hardlink(from: Place, to: Place, shown: &VPath) -> Result<()> {
    on_disk(move || {
        let (from_dir, from_name) = from.parent()?;
        let (to_dir, to_name) = to.parent()?;
        // SAFETY: linkat of NUL-terminated names in directories we hold.
        check(unsafe {
            libc::linkat(
                from_dir.as_raw_fd(),
                from_name.as_ptr(),
                to_dir.as_raw_fd(),
                to_name.as_ptr(),
                0,
            )
        })
    })
    .await
    .map_err(|e| guard::error(e, shown, "hardlink"))
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
