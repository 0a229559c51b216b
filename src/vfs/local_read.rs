//! Downloads from a local-disk (`fs`) connector, read by wharf instead of OpenDAL.
//!
//! Through OpenDAL a small download cost a stat, an open per read call and a read,
//! each a separate blocking-pool round trip (and each a thread wake-up on a busy
//! server). Here opening is one blocking task that opens the file, checks that it
//! is a regular file, and reads it whole when it is small: a small download then
//! needs no further disk access at all. Larger files are read with `pread` on the
//! one descriptor, a buffer per blocking task.
//!
//! Holding the descriptor also gives POSIX meaning to an open download: a file
//! replaced meanwhile (a new upload renamed over it) keeps being read as it was.

use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, StreamExt};

use super::io::ByteStream;
use super::on_blocking_pool as blocking;
use super::VPath;
use crate::error::{Error, ErrorKind, Result};

/// Files up to this size are read whole when opened; it bounds what an idle open
/// handle holds.
const READ_WHOLE_MAX: u64 = 64 * 1024;

pub(super) struct LocalReader {
    file: Arc<File>,
    /// The first bytes of the file, read at open (the whole file when small).
    head: Bytes,
    buffer: usize,
}

impl LocalReader {
    /// Opens `target` (already checked to lie inside the root) for `path`; returns
    /// the reader and the file size.
    pub(super) async fn open(target: PathBuf, path: &VPath, buffer: usize) -> Result<(Self, u64)> {
        let (file, head, size) = blocking(move || {
            // O_NONBLOCK: opening a FIFO must not wait for a writer; it has no
            // effect on the regular files that are served.
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&target)?;
            let meta = file.metadata()?;
            if meta.is_dir() {
                return Err(std::io::ErrorKind::IsADirectory.into());
            }
            if !meta.is_file() {
                // A FIFO, socket or device: nothing wharf serves.
                return Err(std::io::ErrorKind::NotFound.into());
            }
            let size = meta.len();
            let head = if size <= READ_WHOLE_MAX {
                read_at(&file, 0, size as usize)?
            } else {
                Bytes::new()
            };
            Ok((file, head, size))
        })
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound | ErrorKind::NotADirectory => {
                Error::not_found(format!("{path}: no such file or directory"))
            }
            ErrorKind::IsADirectory => {
                Error::new(ErrorKind::IsADirectory, format!("{path} is a directory"))
            }
            _ => e.context(format!("open {path}")),
        })?;
        let reader = LocalReader {
            file: Arc::new(file),
            head,
            buffer,
        };
        Ok((reader, size))
    }

    /// `range` (already clamped to the size at open, not empty) as one read.
    pub(super) async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        if let Some(held) = self.held(&range) {
            return Ok(held);
        }
        let file = self.file.clone();
        let len = (range.end - range.start) as usize;
        blocking(move || read_at(&file, range.start, len)).await
    }

    /// `range` (clamped, not empty) in buffer-sized chunks, each read when the
    /// consumer asks for it.
    pub(super) fn stream(&self, range: Range<u64>) -> ByteStream {
        if let Some(held) = self.held(&range) {
            return stream::once(async move { Ok(held) }).boxed();
        }
        let file = self.file.clone();
        let buffer = self.buffer as u64;
        stream::try_unfold(range, move |range| {
            let file = file.clone();
            async move {
                if range.is_empty() {
                    return Ok(None);
                }
                let len = (range.end - range.start).min(buffer);
                let start = range.start;
                let chunk = blocking(move || read_at(&file, start, len as usize)).await?;
                if chunk.is_empty() {
                    // Truncated since it was opened: end where the file now ends.
                    return Ok(None);
                }
                let next = start + chunk.len() as u64..range.end;
                Ok(Some((chunk, next)))
            }
        })
        .boxed()
    }

    fn held(&self, range: &Range<u64>) -> Option<Bytes> {
        (range.end <= self.head.len() as u64)
            .then(|| self.head.slice(range.start as usize..range.end as usize))
    }
}

/// Reads up to `len` bytes at `offset`; shorter only at the end of the file.
fn read_at(file: &File, offset: u64, len: usize) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(len);
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf.freeze())
}
