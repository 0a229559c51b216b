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

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, StreamExt};

use super::guard::{self, Place};
use super::local_ops::on_disk;
use super::on_blocking_pool as blocking;
use super::ByteStream;
use super::VPath;
use crate::error::Result;

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
    /// Opens the file at `place` (resolved inside its jail in the same blocking
    /// task) for `path`; returns the reader and the file size.
    pub(super) async fn open(place: Place, path: &VPath, buffer: usize) -> Result<(Self, u64)> {
        let (file, head, size) = on_disk(move || {
            // O_NONBLOCK: opening a FIFO must not wait for a writer; it has no
            // effect on the regular files that are served.
            let file = File::from(place.open(libc::O_RDONLY | libc::O_NONBLOCK)?);
            let meta = file.metadata()?;
            if meta.is_dir() {
                return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
            }
            if !meta.is_file() {
                // A FIFO, socket or device: nothing wharf serves.
                return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
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
        .map_err(|e| guard::error(e, path, "open"))?;
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
