//! Streaming file handles: [`FileReader`] for ranged reads and [`FileWriter`] for
//! uploads that become visible only when closed.
//!
//! Neither ever holds a whole file: a read returns at most the asked range, and a
//! write buffers at most one chunk (the Vfs buffer on local disk, the service's
//! multipart size elsewhere), or a few of them in flight on a network service.
//! Local-disk uploads are written by [`super::local_write`], all others by OpenDAL.

use std::ops::Range;
use wharf_connectors::opendal;

use bytes::Bytes;
use futures::stream::{StreamExt, TryStreamExt};

use super::local_read::LocalReader;
use super::local_write::LocalWriter;
use super::parts::PartWriter;
use super::{ByteStream, VPath};
use crate::error::{Error, ErrorKind, Result};

/// The refusal of a write that is not at the end of a sequential upload.
fn sequential_only() -> Error {
    Error::new(
        ErrorKind::Unsupported,
        "writes must be sequential on this storage",
    )
    .with_public("writes must be sequential on this storage")
}

/// An open file for reading. Cheap to keep open; each read is a ranged request
/// (or, on local disk, a read on the descriptor opened with it).
pub struct FileReader {
    pub(super) source: Source,
    pub(super) size: u64,
    pub(super) path: VPath,
}

/// Who reads the bytes: wharf itself on local disk, OpenDAL everywhere else.
pub(super) enum Source {
    Local(LocalReader),
    Storage(opendal::Reader),
}

impl FileReader {
    /// File size when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn path(&self) -> &VPath {
        &self.path
    }

    /// The opened file itself when it lies on local disk (`None` on a network
    /// service): its bytes are the file's bytes, so the kernel may send them.
    pub fn local_file(&self) -> Option<std::sync::Arc<std::fs::File>> {
        match &self.source {
            Source::Local(r) => Some(r.file().clone()),
            Source::Storage(_) => None,
        }
    }

    /// Reads up to `len` bytes at `offset`; an empty result means end of file.
    /// Reads past the end are clamped instead of failing (storage would refuse them).
    pub async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let range = clamp(offset..offset.saturating_add(len as u64), self.size);
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let read = match &self.source {
            Source::Local(r) => r.read(range).await,
            Source::Storage(r) => r
                .read(range)
                .await
                .map(|b| b.to_bytes())
                .map_err(Error::from),
        };
        read.map_err(|e| e.context(format!("reading {}", self.path)))
    }

    /// Streams `range` (clamped to the file) in buffer-sized chunks.
    pub async fn stream(&self, range: Range<u64>) -> Result<ByteStream> {
        let range = clamp(range, self.size);
        if range.is_empty() {
            return Ok(futures::stream::empty().boxed());
        }
        let path = self.path.clone();
        let stream = match &self.source {
            Source::Local(r) => r.stream(range),
            Source::Storage(r) => r
                .clone()
                .into_bytes_stream(range)
                .await
                .map_err(|e| Error::from(e).context(format!("reading {path}")))?
                .map_err(Error::from)
                .boxed(),
        };
        Ok(stream
            .map_err(move |e| e.context(format!("reading {path}")))
            .boxed())
    }
}

fn clamp(range: Range<u64>, size: u64) -> Range<u64> {
    range.start.min(size)..range.end.min(size)
}

/// An upload in progress. Nothing is visible at the target until [`FileWriter::close`]
/// succeeds; an error, an [`FileWriter::abort`] or a drop leaves the old file (if any)
/// untouched and no partial file behind.
pub struct FileWriter {
    pub(super) inner: Option<Upload>,
    pub(super) path: VPath,
    pub(super) written: u64,
    /// Dropped without close (a lost connection): publish what was received
    /// (`[storage] interrupted_uploads = "keep"`) instead of discarding it.
    pub(super) keep_on_drop: bool,
    /// Largest size the storage takes (a service sent the file in one request).
    pub(super) one_shot_max: Option<u64>,
    /// This upload's buffers in the memory budget, given back when it ends
    /// (and while it idles, on local disk: [`FileWriter::idle`]).
    pub(super) reserved: Option<crate::budget::Reservation>,
    /// Where to take the reservation again after an idle spell gave it back:
    /// the budget and the bytes (local disk only).
    pub(super) refill: Option<(crate::budget::Budget, usize)>,
    /// The budget a one-request upload's reservation grows from, with the file
    /// it holds in memory.
    pub(super) grow: Option<crate::budget::Budget>,
}

/// How much a one-request upload's reservation grows at least, at a time.
const GROW_STEP: usize = 1 << 20;
/// How long a one-request upload waits for room to grow before it fails.
pub const GROW_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Who writes the bytes: wharf itself on local disk, OpenDAL everywhere else.
pub(super) enum Upload {
    Local(LocalWriter),
    Storage(opendal::Writer),
    /// A multipart upload with growing parts (`parts.rs`).
    Parts(Box<PartWriter>),
}

impl Upload {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        match self {
            Upload::Local(w) => w.write(data).await,
            Upload::Storage(w) => Ok(w.write(data).await?),
            Upload::Parts(w) => w.write(data).await,
        }
    }

    async fn close(self, hash: bool) -> Result<Option<String>> {
        match self {
            Upload::Local(w) => w.close(hash).await,
            Upload::Storage(mut w) => match w.close().await {
                Ok(_) => Ok(None),
                Err(e) => {
                    let _ = w.abort().await;
                    Err(e.into())
                }
            },
            Upload::Parts(w) => w.close().await.map(|()| None),
        }
    }

    async fn abort(self) -> Result<()> {
        match self {
            Upload::Local(w) => w.abort().await,
            Upload::Storage(mut w) => Ok(w.abort().await?),
            Upload::Parts(w) => w.abort().await,
        }
    }
}

impl FileWriter {
    pub fn path(&self) -> &VPath {
        &self.path
    }

    /// Bytes accepted so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Whether writes may land at any offset and be read back (a staged file on
    /// local disk); elsewhere an upload is one sequential stream.
    pub fn random_access(&self) -> bool {
        matches!(self.inner, Some(Upload::Local(_)))
    }

    /// Whether a drop without close publishes what was received.
    pub fn keeps_on_drop(&self) -> bool {
        self.keep_on_drop
    }

    /// The file's size so far: its highest written end (random access), or the
    /// bytes streamed.
    pub fn size(&self) -> u64 {
        match &self.inner {
            Some(Upload::Local(w)) => w.size(),
            _ => self.written,
        }
    }

    /// Gives back this upload's share of the memory budget while it idles (the
    /// client has sent nothing for a while), so idle uploads keep no others
    /// waiting for room; the next write takes it again, waiting for room while
    /// holding none (see `crate::budget`). On local disk what was gathered is
    /// written out first; elsewhere the storage's writer keeps its part buffer
    /// filled so far, and the reservation stays with it.
    pub async fn idle(&mut self) -> Result<()> {
        if self.reserved.is_none() || self.refill.is_none() {
            return Ok(());
        }
        if let Some(Upload::Local(w)) = self.inner.as_mut() {
            if let Err(e) = w.flush().await {
                self.abort_quietly().await;
                return Err(e.context(format!("writing {}", self.path)));
            }
            self.reserved = None;
        }
        Ok(())
    }

    /// Takes back the reservation an idle spell gave away.
    async fn refill(&mut self) {
        if self.reserved.is_none() {
            if let Some((budget, bytes)) = &self.refill {
                self.reserved = Some(budget.reserve(*bytes).await);
            }
        }
    }

    /// Writes `data` at `offset`: anywhere on a random-access upload; elsewhere
    /// only at the end ([`ErrorKind::Unsupported`] otherwise).
    pub async fn write_at(&mut self, offset: u64, data: Bytes) -> Result<()> {
        self.refill().await;
        match self.inner.as_mut() {
            Some(Upload::Local(w)) => {
                let len = data.len() as u64;
                if let Err(e) = w.write_at(offset, data).await {
                    self.abort_quietly().await;
                    return Err(e.context(format!("writing {}", self.path)));
                }
                self.written += len;
                Ok(())
            }
            _ if offset == self.written => self.write(data).await,
            _ => Err(sequential_only()),
        }
    }

    /// Reads back up to `len` bytes at `offset` of a random-access upload.
    pub async fn read_at(&mut self, offset: u64, len: usize) -> Result<Bytes> {
        match self.inner.as_mut() {
            Some(Upload::Local(w)) => w.read_at(offset, len).await,
            _ => Err(Error::new(
                ErrorKind::Unsupported,
                "reading a file open for writing is not supported on this storage",
            )
            .with_public("reading a file open for writing is not supported on this storage")),
        }
    }

    /// Cuts or extends a random-access upload to `len`.
    pub async fn truncate(&mut self, len: u64) -> Result<()> {
        match self.inner.as_mut() {
            Some(Upload::Local(w)) => w.truncate(len).await,
            _ => Err(sequential_only()),
        }
    }

    /// Commits the upload; returns the number of bytes written and, when asked
    /// (random-access uploads written out of order), the SHA-256 of the content.
    pub async fn close_hashed(mut self, hash: bool) -> Result<(u64, Option<String>)> {
        let writer = self
            .inner
            .take()
            .ok_or_else(|| Error::internal("close after close"))?;
        let size = match &writer {
            Upload::Local(w) => w.size(),
            Upload::Storage(_) | Upload::Parts(_) => self.written,
        };
        let sha = writer
            .close(hash)
            .await
            .map_err(|e| e.context(format!("completing {}", self.path)))?;
        Ok((size, sha))
    }

    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        self.refill().await;
        let len = data.len() as u64;
        if self.inner.is_none() {
            return Err(Error::internal("write after close"));
        }
        if let Some(max) = self.one_shot_max.filter(|max| self.written + len > *max) {
            self.abort_quietly().await;
            let msg = format!(
                "files over {} MiB cannot be uploaded to this storage",
                max / (1024 * 1024)
            );
            return Err(Error::new(ErrorKind::Unsupported, msg.clone()).with_public(msg));
        }
        if let Err(e) = self.grow_to(self.written + len).await {
            self.abort_quietly().await;
            return Err(e);
        }
        let writer = self
            .inner
            .as_mut()
            .ok_or_else(|| Error::internal("write after close"))?;
        if let Err(e) = writer.write(data).await {
            self.abort_quietly().await;
            return Err(e.context(format!("writing {}", self.path)));
        }
        self.written += len;
        Ok(())
    }

    /// Reserves room for `size` bytes held in memory by a one-request upload
    /// (nothing to do for others), waiting [`GROW_WAIT`] at most.
    async fn grow_to(&mut self, size: u64) -> Result<()> {
        let Some(budget) = &self.grow else {
            return Ok(());
        };
        let held = self.reserved.as_ref().map_or(0, |r| r.bytes());
        let need = usize::try_from(size).unwrap_or(usize::MAX);
        if need <= held {
            return Ok(());
        }
        if need > budget.total() {
            let msg = format!(
                "files over {} MiB cannot be uploaded to this storage with this server's memory budget",
                budget.total() / (1024 * 1024)
            );
            return Err(Error::new(ErrorKind::Unsupported, msg.clone()).with_public(msg));
        }
        let step = (need - held).max(GROW_STEP).min(budget.total() - held);
        match tokio::time::timeout(GROW_WAIT, budget.reserve(step)).await {
            Ok(more) => {
                match &mut self.reserved {
                    Some(r) => r.merge(more),
                    None => self.reserved = Some(more),
                }
                Ok(())
            }
            Err(_) => {
                let msg =
                    "the server is short of memory for uploads to this storage; try again later";
                Err(Error::new(ErrorKind::Unavailable, msg).with_public(msg))
            }
        }
    }

    /// Commits the upload; returns the number of bytes written.
    pub async fn close(self) -> Result<u64> {
        self.close_hashed(false).await.map(|(n, _)| n)
    }

    /// Drops the upload; the target is left as it was.
    pub async fn abort(mut self) -> Result<()> {
        if let Some(writer) = self.inner.take() {
            writer
                .abort()
                .await
                .map_err(|e| e.context(format!("aborting {}", self.path)))?;
        }
        Ok(())
    }

    async fn abort_quietly(&mut self) {
        if let Some(writer) = self.inner.take() {
            if let Err(e) = writer.abort().await {
                tracing::warn!(path = %self.path, error = %e, "abort of a failed upload failed");
            }
        }
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        // A dropped connection drops its writer: clean up the staged data in the
        // background so the caller's drop stays synchronous. A local writer cleans
        // up after itself when dropped.
        // With `keep_on_drop`, a storage upload is completed instead: its bytes
        // were sent in order, so what is published is the prefix received.
        let upload = self.inner.take();
        if let Some(Upload::Parts(writer)) = upload {
            let path = self.path.clone();
            let keep = self.keep_on_drop && self.written > 0;
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    // A failed close aborts the upload itself.
                    let (what, result) = if keep {
                        ("keeping an interrupted upload", writer.close().await)
                    } else {
                        ("abort of an abandoned upload", writer.abort().await)
                    };
                    if let Err(e) = result {
                        tracing::warn!(%path, error = %e, "{what} failed");
                    }
                });
            }
        } else if let Some(Upload::Storage(mut writer)) = upload {
            let path = self.path.clone();
            // Nothing received: nothing to keep (an empty object must not
            // replace the old file).
            let keep = self.keep_on_drop && self.written > 0;
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if keep {
                        match writer.close().await {
                            Ok(_) => return,
                            Err(e) => {
                                tracing::warn!(%path, error = %e, "keeping an interrupted upload failed")
                            }
                        }
                    }
                    if let Err(e) = writer.abort().await {
                        tracing::warn!(%path, error = %e, "abort of an abandoned upload failed");
                    }
                });
            }
        }
    }
}
