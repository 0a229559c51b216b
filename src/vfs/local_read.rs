//! Downloads from a local-disk (`fs`) connector, read by wharf instead of OpenDAL.
//!
//! Through OpenDAL a small download cost a stat, an open per read call and a read,
//! each a separate blocking-pool round trip (and each a thread wake-up on a busy
//! server). Here opening is one blocking task that opens the file, checks that it
//! is a regular file, and reads it whole when it is small: a small download then
//! needs no further disk access at all. Larger files are read with `pread` on the
//! one descriptor.
//!
//! A read is first tried on the async thread with `preadv2(RWF_NOWAIT)`, which
//! copies only what the page cache already holds and never waits for the disk;
//! only the rest goes to the blocking pool. A download of a cached file then
//! costs no thread hand-off per chunk: two context switches and a wake-up of a
//! pool thread (whose count grows with the concurrent downloads) per 256 KiB.
//!
//! Reads go into uninitialised buffer space (zero-filling a chunk only to
//! overwrite it cost ~5% of a download's CPU), and a stream reuses its buffer once
//! the chunks cut from it have been sent (`BytesMut::reserve` reclaims a buffer no
//! `Bytes` points into any more).
//!
//! Holding the descriptor also gives POSIX meaning to an open download: a file
//! replaced meanwhile (a new upload renamed over it) keeps being read as it was.

use std::fs::File;
use std::ops::Range;
use std::os::fd::AsRawFd;
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
                read_at(&file, 0, size as usize, &mut BytesMut::new())?
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
        let len = (range.end - range.start) as usize;
        let (chunk, _) = read_chunk(
            self.file.clone(),
            range.start,
            len,
            BytesMut::new(),
            &mut true,
        )
        .await?;
        Ok(chunk)
    }

    /// `range` (clamped, not empty) in buffer-sized chunks, each read when the
    /// consumer asks for it.
    pub(super) fn stream(&self, range: Range<u64>) -> ByteStream {
        if let Some(held) = self.held(&range) {
            return stream::once(async move { Ok(held) }).boxed();
        }
        let file = self.file.clone();
        let buffer = self.buffer as u64;
        let spare = BytesMut::new();
        stream::try_unfold((range, spare, true), move |(range, spare, mut nowait)| {
            let file = file.clone();
            async move {
                if range.is_empty() {
                    return Ok(None);
                }
                let len = (range.end - range.start).min(buffer);
                let start = range.start;
                let (chunk, spare) =
                    read_chunk(file, start, len as usize, spare, &mut nowait).await?;
                if chunk.is_empty() {
                    // Truncated since it was opened: end where the file now ends.
                    return Ok(None);
                }
                let next = start + chunk.len() as u64..range.end;
                Ok(Some((chunk, (next, spare, nowait))))
            }
        })
        .boxed()
    }

    /// The open descriptor, for a front-end that hands the bytes to the kernel
    /// (`http/sendfile.rs`); opened and checked like every local read.
    pub(super) fn file(&self) -> &Arc<File> {
        &self.file
    }

    fn held(&self, range: &Range<u64>) -> Option<Bytes> {
        (range.end <= self.head.len() as u64)
            .then(|| self.head.slice(range.start as usize..range.end as usize))
    }
}

/// Up to `len` bytes at `offset` (shorter only at the end of the file) and what
/// is left of `buf` for the next read: what the page cache holds is copied here
/// (while `*nowait`), the rest on the blocking pool. `*nowait` turns false for
/// good where reading without waiting is not available.
async fn read_chunk(
    file: Arc<File>,
    offset: u64,
    len: usize,
    mut buf: BytesMut,
    nowait: &mut bool,
) -> Result<(Bytes, BytesMut)> {
    buf.clear();
    buf.reserve(len);
    if *nowait {
        match fill(&file, offset, len, &mut buf, Wait::No) {
            Ok(Filled::Done) => return Ok((buf.split().freeze(), buf)),
            Ok(Filled::WouldBlock) => {}
            // A file system that cannot (EOPNOTSUPP), or a kernel or sandbox
            // without preadv2 (ENOSYS): the pool reads everything from here on.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENOSYS)) => {
                *nowait = false
            }
            Err(e) => return Err(e.into()),
        }
    }
    blocking(move || {
        fill(&file, offset, len, &mut buf, Wait::Yes)?;
        Ok((buf.split().freeze(), buf))
    })
    .await
}

#[derive(Clone, Copy, PartialEq)]
enum Wait {
    Yes,
    /// `RWF_NOWAIT`: only what the page cache holds, never waiting for the disk.
    No,
}

#[derive(Debug, PartialEq)]
enum Filled {
    /// `len` bytes, or up to the end of the file.
    Done,
    /// Stopped where the data is not cached (what was read stays in `buf`).
    WouldBlock,
}

/// Reads into the free space of `buf` (reserved by the caller) from where its
/// filled part ends, until it holds `len` bytes or the file ends.
fn fill(
    file: &File,
    offset: u64,
    len: usize,
    buf: &mut BytesMut,
    wait: Wait,
) -> std::io::Result<Filled> {
    while buf.len() < len {
        let filled = buf.len();
        let spare = &mut buf.spare_capacity_mut()[..len - filled];
        let at = (offset + filled as u64) as libc::off_t;
        match read_once(file, spare, at, wait) {
            Ok(0) => break,
            // SAFETY: the first `n` bytes of the spare capacity were just written.
            Ok(n) => unsafe { buf.set_len(filled + n) },
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) if wait == Wait::No => return Ok(Filled::WouldBlock),
                _ => return Err(e),
            },
        }
    }
    Ok(Filled::Done)
}

/// One read into `spare` (uninitialised memory) at `at`; the count it wrote.
fn read_once(
    file: &File,
    spare: &mut [std::mem::MaybeUninit<u8>],
    at: libc::off_t,
    wait: Wait,
) -> std::io::Result<usize> {
    let (fd, ptr, len) = (file.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len());
    // SAFETY: the read writes at most `len` bytes at `ptr`, which is `spare`;
    // the caller counts as initialised only the bytes reported written.
    let n = match wait {
        Wait::Yes => unsafe { libc::pread(fd, ptr, len, at) },
        #[cfg(target_os = "linux")]
        Wait::No => {
            let iov = libc::iovec {
                iov_base: ptr,
                iov_len: len,
            };
            // SAFETY: as above, through one iovec over the same memory.
            unsafe { libc::preadv2(fd, &iov, 1, at, libc::RWF_NOWAIT) }
        }
        // No such read elsewhere: every read then goes to the pool.
        #[cfg(not(target_os = "linux"))]
        Wait::No => return Err(std::io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Reads up to `len` bytes at `offset` into the free space of `buf` (grown, or
/// its allocation reclaimed, as needed); shorter only at the end of the file.
/// What is left of `buf` serves the next read.
fn read_at(file: &File, offset: u64, len: usize, buf: &mut BytesMut) -> std::io::Result<Bytes> {
    buf.clear();
    buf.reserve(len);
    fill(file, offset, len, buf, Wait::Yes)?;
    Ok(buf.split().freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_into_a_reused_buffer_keep_every_chunk_intact() {
        let (content, f) = numbered(300_001);
        let mut spare = BytesMut::new();
        let mut chunks = Vec::new();
        let mut at = 0;
        loop {
            let chunk = read_at(&f, at, 65_536, &mut spare).unwrap();
            if chunk.is_empty() {
                break;
            }
            at += chunk.len() as u64;
            // Every other chunk is let go at once, so its buffer space is
            // reclaimed for the next read while the others are still held.
            if chunks.len() % 2 == 0 {
                chunks.push(chunk);
            } else {
                chunks.push(Bytes::copy_from_slice(&chunk));
                drop(chunk);
            }
        }
        assert_eq!(chunks.concat(), content);
        // Short only at the end.
        assert!(chunks[..chunks.len() - 1].iter().all(|c| c.len() == 65_536));
        assert_eq!(read_at(&f, 299_999, 10, &mut spare).unwrap().len(), 2);
    }

    fn numbered(len: u32) -> (Vec<u8>, Arc<File>) {
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&content).unwrap();
        (content, Arc::new(f))
    }

    #[tokio::test]
    async fn chunks_read_from_the_page_cache_or_the_pool_are_the_file() {
        let (content, file) = numbered(1_000_003);
        for first_nowait in [true, false] {
            let mut nowait = first_nowait;
            let (mut at, mut spare, mut got) = (0u64, BytesMut::new(), Vec::new());
            loop {
                let (chunk, rest) = read_chunk(file.clone(), at, 262_144, spare, &mut nowait)
                    .await
                    .unwrap();
                if chunk.is_empty() {
                    break;
                }
                at += chunk.len() as u64;
                got.extend_from_slice(&chunk);
                spare = rest;
            }
            assert_eq!(got, content, "nowait first: {first_nowait}");
        }
        // Past the end: short, then empty.
        let (tail, _) = read_chunk(file.clone(), 999_990, 100, BytesMut::new(), &mut true)
            .await
            .unwrap();
        assert_eq!(&tail[..], &content[999_990..]);
    }

    #[test]
    fn a_read_cut_short_is_finished_from_where_it_stopped() {
        // What the pool does after a page-cache read stopped partway.
        let (content, file) = numbered(100_000);
        let mut buf = BytesMut::new();
        buf.reserve(70_000);
        assert_eq!(
            fill(&file, 1_000, 12_345, &mut buf, Wait::Yes).unwrap(),
            Filled::Done
        );
        assert_eq!(buf.len(), 12_345);
        assert_eq!(
            fill(&file, 1_000, 70_000, &mut buf, Wait::Yes).unwrap(),
            Filled::Done
        );
        assert_eq!(&buf[..], &content[1_000..71_000]);
    }
}
