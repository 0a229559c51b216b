//! File attributes on an `fs` connector: stat with the permission bits, and the
//! changes an SFTP client asks for (SETSTAT): permissions, access and modification
//! times, size. The target is opened inside its jail by the one resolver
//! (`guard.rs`, openat2 beneath the jail) and changed through that descriptor, so
//! a symlink inside the jail is followed and one leading out is refused.
//!
//! Permissions keep only the `rwx` bits (no setuid, setgid or sticky bit: an upload
//! service has no use for them and they are a classic escalation), and the owner
//! always keeps read and write (and search on a directory): the gateway itself
//! must still be able to serve, replace and remove what its users chmod.

use std::fs::{FileTimes, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::guard::{self, Place};
use super::local_ops::on_disk;
use super::VPath;
use crate::error::Result;

/// Attribute changes asked for; `None` leaves an attribute as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetAttrs {
    /// Truncate or extend to this size (files only).
    pub size: Option<u64>,
    /// Permission bits (`0o7777` and less; see the module doc for what is kept).
    pub mode: Option<u32>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
}

impl SetAttrs {
    pub fn is_empty(&self) -> bool {
        *self == SetAttrs::default()
    }

    /// Later changes win, attribute by attribute.
    pub fn merge(&mut self, later: SetAttrs) {
        self.size = later.size.or(self.size);
        self.mode = later.mode.or(self.mode);
        self.atime = later.atime.or(self.atime);
        self.mtime = later.mtime.or(self.mtime);
    }

    /// What changes, for the audit log: `mode 0640, mtime 1700000000`.
    pub fn describe(&self) -> String {
        let secs = |t: SystemTime| {
            t.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        };
        let mut parts = Vec::new();
        if let Some(s) = self.size {
            parts.push(format!("size {s}"));
        }
        if let Some(m) = self.mode {
            parts.push(format!("mode {:04o}", m & 0o7777));
        }
        if let Some(t) = self.atime {
            parts.push(format!("atime {}", secs(t)));
        }
        if let Some(t) = self.mtime {
            parts.push(format!("mtime {}", secs(t)));
        }
        parts.join(", ")
    }
}

/// The permission bits stored for a requested `mode` (see the module doc).
pub fn kept_mode(mode: u32, dir: bool) -> u32 {
    let owner = if dir { 0o700 } else { 0o600 };
    (mode & 0o777) | owner
}

/// Applies `attrs` to what `place` leads to (the file or directory of `path`),
/// opened inside its jail: a symlink swapped in cannot redirect the change.
pub(super) async fn set(place: Place, path: &VPath, attrs: SetAttrs) -> Result<()> {
    let shown = path.clone();
    on_disk(move || apply(&place, &attrs))
        .await
        .map_err(|e| guard::error(e, &shown, "setting attributes of"))
}

fn apply(place: &Place, attrs: &SetAttrs) -> std::io::Result<()> {
    // Read access is enough for times and permission bits, on files and
    // directories alike; the owner always keeps it (see `kept_mode`).
    let file = std::fs::File::from(place.open(libc::O_RDONLY)?);
    let meta = file.metadata()?;
    if !meta.is_dir() && !meta.is_file() {
        return Err(std::io::ErrorKind::NotFound.into());
    }
    if let Some(size) = attrs.size {
        if meta.is_dir() {
            return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
        }
        std::fs::File::from(place.open(libc::O_WRONLY)?).set_len(size)?;
    }
    if let Some(mode) = attrs.mode {
        file.set_permissions(Permissions::from_mode(kept_mode(mode, meta.is_dir())))?;
    }
    if attrs.atime.is_some() || attrs.mtime.is_some() {
        let mut times = FileTimes::new();
        if let Some(t) = attrs.atime {
            times = times.set_accessed(t);
        }
        if let Some(t) = attrs.mtime {
            times = times.set_modified(t);
        }
        file.set_times(times)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_bits_are_dropped_and_the_owner_keeps_access() {
        assert_eq!(kept_mode(0o4755, false), 0o755);
        assert_eq!(kept_mode(0o2640, false), 0o640);
        assert_eq!(kept_mode(0o000, false), 0o600);
        assert_eq!(kept_mode(0o1777, true), 0o777);
        assert_eq!(kept_mode(0o055, true), 0o755);
    }
}
