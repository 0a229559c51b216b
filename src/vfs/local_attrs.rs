//! File attributes on an `fs` connector: stat with the permission bits, and the
//! changes an SFTP client asks for (SETSTAT): permissions, access and modification
//! times, size. Paths come from [`super::Vfs`], which has already checked them
//! against the root (`guard.rs`), symlinks resolved; the changes follow symlinks,
//! so they land on the checked target.
//!
//! Permissions keep only the `rwx` bits (no setuid, setgid or sticky bit: an upload
//! service has no use for them and they are a classic escalation), and the owner
//! always keeps read and write (and search on a directory): the gateway itself
//! must still be able to serve, replace and remove what its users chmod.

use std::fs::{FileTimes, OpenOptions, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Entry, EntryKind, VPath};
use crate::error::{Error, ErrorKind, Result};

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

/// Stats `target` (the file of `path`), with its permission bits.
pub async fn stat(target: PathBuf, path: &VPath) -> Result<Entry> {
    let meta = match tokio::fs::metadata(&target).await {
        Ok(m) => m,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Err(Error::not_found(format!(
                "{path}: no such file or directory"
            )))
        }
        Err(e) => return Err(Error::from(e).context(format!("stat {path}"))),
    };
    let kind = if meta.is_dir() {
        EntryKind::Dir
    } else if meta.is_file() {
        EntryKind::File
    } else {
        return Err(Error::not_found(format!("{path}: no such file")));
    };
    Ok(Entry {
        path: path.clone(),
        kind,
        size: if kind == EntryKind::File {
            meta.len()
        } else {
            0
        },
        modified: meta.modified().ok(),
        mode: Some(meta.permissions().mode() & 0o7777),
    })
}

/// Applies `attrs` to `target` (the file or directory of `path`).
pub async fn set(target: PathBuf, path: &VPath, attrs: SetAttrs) -> Result<()> {
    let shown = path.clone();
    tokio::task::spawn_blocking(move || apply(&target, &attrs))
        .await
        .map_err(|e| Error::internal(format!("setting attributes: {e}")))?
        .map_err(|e| {
            let kind = e.kind();
            let err = match kind {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => {
                    Error::not_found(format!("{shown}: no such file or directory"))
                }
                std::io::ErrorKind::IsADirectory => Error::new(
                    ErrorKind::IsADirectory,
                    format!("{shown} is a directory: it has no size to set"),
                ),
                _ => Error::from(e).context(format!("setting attributes of {shown}")),
            };
            err
        })
}

fn apply(target: &std::path::Path, attrs: &SetAttrs) -> std::io::Result<()> {
    let meta = std::fs::metadata(target)?;
    if let Some(size) = attrs.size {
        if meta.is_dir() {
            return Err(std::io::ErrorKind::IsADirectory.into());
        }
        OpenOptions::new().write(true).open(target)?.set_len(size)?;
    }
    if let Some(mode) = attrs.mode {
        let mode = kept_mode(mode, meta.is_dir());
        std::fs::set_permissions(target, Permissions::from_mode(mode))?;
    }
    if attrs.atime.is_some() || attrs.mtime.is_some() {
        let mut times = FileTimes::new();
        if let Some(t) = attrs.atime {
            times = times.set_accessed(t);
        }
        if let Some(t) = attrs.mtime {
            times = times.set_modified(t);
        }
        // Opening read-only works for directories too; the owner always keeps
        // read permission (see `kept_mode`).
        std::fs::File::open(target)?.set_times(times)?;
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
