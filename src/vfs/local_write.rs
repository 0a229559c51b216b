//! Uploads to a local-disk (`fs`) connector, written by wharf instead of OpenDAL.
//!
//! OpenDAL's fs writer costs about ten blocking-pool round trips per file (it
//! re-creates the staging and parent directories, checks, opens, writes, flushes,
//! syncs, renames and stats, each as its own hop), which made many small uploads
//! slower than OpenSSH. Here data is gathered up to one buffer and each step that
//! touches the disk is a single blocking task: a small file costs one task in all
//! (create, write, fsync, rename), a large one a task per buffer plus one to finish.
//!
//! The semantics are those of every other upload: the data is staged under a random
//! name in the connector's staging directory and renamed over the target only once
//! it is complete and synced, so a reader sees the old file or the new one, never a
//! part. The target's directory is never created here: if it vanished during the
//! upload, the upload fails instead of bringing it back.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::guard::{self, Place};
use super::on_blocking_pool as blocking;
use crate::error::Result;

/// An upload staged on local disk.
pub(super) struct LocalWriter {
    disk: Arc<Mutex<Staged>>,
    /// Where the file is published, resolved inside its jail at close.
    target: Place,
    pending: Vec<Bytes>,
    pending_len: usize,
    buffer: usize,
    /// Whether a blocking task was ever handed the staged file, so dropping the
    /// writer has something to clean up.
    touched: bool,
}

/// The on-disk side, shared with the blocking tasks. A task cut off by a dropped
/// connection still runs to its end; the lock orders it before the clean-up, and
/// `finished` stops any step queued behind the clean-up from creating the file again.
struct Staged {
    path: PathBuf,
    file: Option<File>,
    finished: bool,
}

impl LocalWriter {
    pub(super) fn new(staging_dir: &Path, target: Place, buffer: usize) -> Self {
        let name = format!("{:032x}", rand::random::<u128>());
        LocalWriter {
            disk: Arc::new(Mutex::new(Staged {
                path: staging_dir.join(name),
                file: None,
                finished: false,
            })),
            target,
            pending: Vec::new(),
            pending_len: 0,
            buffer,
            touched: false,
        }
    }

    /// Queues `data`, writing the queue out once it holds a buffer's worth. On an
    /// error the staged file is gone and the writer must not be used again.
    pub(super) async fn write(&mut self, data: Bytes) -> Result<()> {
        self.pending_len += data.len();
        self.pending.push(data);
        if self.pending_len < self.buffer {
            return Ok(());
        }
        let pending = self.take_pending();
        self.on_disk(move |staged| staged.append(&pending)).await
    }

    /// Writes what is queued, syncs it to disk and renames it over the target.
    pub(super) async fn close(mut self) -> Result<()> {
        let pending = self.take_pending();
        let target = self.target.clone();
        let result = self
            .on_disk(move |staged| {
                staged.append(&pending)?;
                let file = staged.file.take().expect("append opened the file");
                // Durable before visible: after a crash the target holds the old file
                // or the whole new one.
                file.sync_all()?;
                drop(file);
                publish(&staged.path, &target)?;
                staged.finished = true;
                Ok(())
            })
            .await;
        // Published: nothing is left for a drop to clean. (A failed step has
        // discarded the file already; a drop after it just confirms that.)
        if result.is_ok() {
            self.touched = false;
        }
        result
    }

    /// Removes the staged data; the target is left as it was.
    pub(super) async fn abort(mut self) -> Result<()> {
        self.pending.clear();
        if !std::mem::take(&mut self.touched) {
            return Ok(());
        }
        let disk = self.disk.clone();
        blocking(move || lock(&disk).discard()).await
    }

    fn take_pending(&mut self) -> Vec<Bytes> {
        self.pending_len = 0;
        std::mem::take(&mut self.pending)
    }

    /// Runs one step on the staged file in a blocking task; a failed step removes it.
    async fn on_disk(
        &mut self,
        step: impl FnOnce(&mut Staged) -> std::io::Result<()> + Send + 'static,
    ) -> Result<()> {
        self.touched = true;
        let disk = self.disk.clone();
        blocking(move || {
            let mut staged = lock(&disk);
            if staged.finished {
                return Err(std::io::Error::other("the upload already ended"));
            }
            let result = step(&mut staged);
            if result.is_err() {
                staged.discard()?;
            }
            result
        })
        .await
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        // A dropped connection drops its writer: clean up off the async worker when
        // a runtime is there to take it.
        if !self.touched {
            return;
        }
        let disk = self.disk.clone();
        let discard = move || {
            if let Err(e) = lock(&disk).discard() {
                tracing::warn!(error = %e, "removing an abandoned upload failed");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(discard)),
            Err(_) => discard(),
        }
    }
}

impl Staged {
    fn append(&mut self, pending: &[Bytes]) -> std::io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&self.path)?,
            ),
        };
        for chunk in pending {
            file.write_all(chunk)?;
        }
        Ok(())
    }

    /// Ends the upload without publishing it: the staged file (if any) is removed.
    fn discard(&mut self) -> std::io::Result<()> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(());
        }
        self.file = None;
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Renames the staged file over `target`: its folder is resolved inside the
/// jail and the last name replaced with `renameat` (a symlink there is replaced,
/// never followed), in the same task, so no link swapped in can redirect it.
fn publish(staged: &Path, target: &Place) -> std::io::Result<()> {
    let (dir, name) = target.parent().map_err(|e| match e.raw_os_error() {
        Some(libc::EXDEV) | Some(libc::ELOOP) | Some(libc::EPERM) => outside(),
        _ => e,
    })?;
    // A symlink at the target that leads out of the jail is not replaced either:
    // writing to it is refused like writing through it (one inside is replaced).
    let is_link = guard::lstat_at(dir.as_fd(), &name)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
    if is_link {
        if let Err(e) = target.open(libc::O_PATH) {
            if matches!(e.raw_os_error(), Some(libc::EXDEV) | Some(libc::ELOOP)) {
                return Err(outside());
            }
        }
    }
    let from = std::ffi::CString::new(staged.as_os_str().as_bytes())?;
    // SAFETY: renameat of NUL-terminated names; `dir` is a descriptor we hold.
    let rc = unsafe {
        libc::renameat(
            libc::AT_FDCWD,
            from.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn outside() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        "the target leads outside the permitted folder",
    )
}

fn lock(disk: &Mutex<Staged>) -> MutexGuard<'_, Staged> {
    // A panic in another step leaves nothing half-updated that matters here.
    disk.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
