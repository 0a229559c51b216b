//! Upload and download handles that audit themselves when they end.
//!
//! An upload is hashed (SHA-256) while it streams; it is audited as `ok` when
//! closed, and as `failed` (with the bytes received) when aborted or dropped, e.g.
//! by a lost connection. With `[storage] interrupted_uploads = "keep"` a dropped
//! (or [`Upload::interrupted`]) upload publishes the bytes received and is
//! audited as `failed` with `partial` in its detail. A random-access upload (local
//! disk) written out of order, or seeded with the old file, is hashed from the
//! staged file at close instead. A download counts the bytes served.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::Actor;
use crate::audit::Outcome;
use crate::error::Result;
use crate::vfs::{ByteStream, FileReader, FileWriter, VPath};

pub struct Upload {
    /// When it began, for the duration in its event.
    started: std::time::Instant,
    writer: Option<FileWriter>,
    /// Boxed: keeps `Upload` small enough to move around in front-end enums.
    hasher: Box<Sha256>,
    /// How far the stream hash covers; `in_order` turns false at the first write
    /// elsewhere (the hash is then read back from the file at close).
    hashed: u64,
    in_order: bool,
    actor: Actor,
    path: VPath,
}

impl Upload {
    pub(super) fn new(writer: FileWriter, actor: Actor, path: VPath) -> Self {
        Upload {
            started: std::time::Instant::now(),
            writer: Some(writer),
            hasher: Box::new(Sha256::new()),
            hashed: 0,
            in_order: true,
            actor,
            path,
        }
    }

    /// An upload seeded with the old file's content: its hash is read back at close.
    pub(super) fn seeded(writer: FileWriter, actor: Actor, path: VPath) -> Self {
        let mut up = Upload::new(writer, actor, path);
        up.in_order = false;
        up
    }

    /// Whether writes may land anywhere and be read back (see [`FileWriter::random_access`]).
    pub fn random_access(&self) -> bool {
        self.writer.as_ref().is_some_and(FileWriter::random_access)
    }

    /// The file's size so far.
    pub fn size(&self) -> u64 {
        self.writer.as_ref().map_or(0, FileWriter::size)
    }

    pub fn path(&self) -> &VPath {
        &self.path
    }

    pub fn written(&self) -> u64 {
        self.writer.as_ref().map_or(0, FileWriter::written)
    }

    /// Appends the next bytes of the file.
    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        let at = self.size();
        self.write_at(at, data).await
    }

    /// Appends everything `from` yields, `buffer` bytes at a time (a staged
    /// file published through a link). A failed read leaves the upload open
    /// for the caller to abort; a failed write has already ended it.
    pub async fn copy_from(
        &mut self,
        mut from: impl tokio::io::AsyncRead + Unpin,
        buffer: usize,
    ) -> Result<()> {
        use tokio::io::AsyncReadExt;
        let mut buf = bytes::BytesMut::with_capacity(buffer);
        loop {
            buf.reserve(buffer);
            if from.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
            self.write(buf.split().freeze()).await?;
        }
    }

    /// Writes at `offset`: anywhere on a random-access upload, only at the end
    /// elsewhere (refused as unsupported, and the upload stays usable).
    pub async fn write_at(&mut self, offset: u64, data: Bytes) -> Result<()> {
        let writer = self.writer.as_mut().expect("upload used after its end");
        if !writer.random_access() && offset != writer.written() {
            return writer.write_at(offset, data).await;
        }
        if self.in_order && offset == self.hashed {
            self.hasher.update(&data);
            self.hashed += data.len() as u64;
        } else {
            self.in_order = false;
        }
        if let Err(e) = writer.write_at(offset, data).await {
            self.fail(e.kind().as_str()).await;
            return Err(e);
        }
        Ok(())
    }

    /// The client has sent nothing for a while: gives back the upload's share
    /// of the memory budget until its next write (see [`FileWriter::idle`]).
    pub async fn idle(&mut self) -> Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        if let Err(e) = writer.idle().await {
            self.fail(e.kind().as_str()).await;
            return Err(e);
        }
        Ok(())
    }

    /// Reads back what was written (random-access uploads only).
    pub async fn read_at(&mut self, offset: u64, len: usize) -> Result<Bytes> {
        let writer = self.writer.as_mut().expect("upload used after its end");
        writer.read_at(offset, len).await
    }

    /// Cuts or extends the file (random-access uploads only).
    pub async fn truncate(&mut self, len: u64) -> Result<()> {
        let writer = self.writer.as_mut().expect("upload used after its end");
        if len != self.hashed {
            self.in_order = false;
        }
        if let Err(e) = writer.truncate(len).await {
            if e.kind() != crate::error::ErrorKind::Unsupported {
                self.fail(e.kind().as_str()).await;
            }
            return Err(e);
        }
        Ok(())
    }

    /// The connection carrying the upload was lost: with `interrupted_uploads =
    /// "keep"` the bytes received are published (and audited as partial), else
    /// the upload is discarded like [`Upload::abort`].
    pub async fn interrupted(self, why: &str) -> Result<()> {
        if self
            .writer
            .as_ref()
            .is_some_and(|w| w.keeps_on_drop() && w.size() > 0)
        {
            drop(self);
            return Ok(());
        }
        self.abort(why).await
    }

    /// Commits the file; returns its size and SHA-256 (hex).
    pub async fn close(mut self) -> Result<(u64, String)> {
        let writer = self.writer.take().expect("upload used after its end");
        let streamed = hex::encode(std::mem::take(&mut self.hasher).finalize());
        match writer.close_hashed(!self.in_order).await {
            Ok((bytes, read_back)) => {
                let sha = read_back.unwrap_or(streamed);
                self.actor
                    .record(
                        self.actor
                            .event("upload")
                            .path(&self.path)
                            .bytes(bytes)
                            .took(self.started)
                            .detail(format!("sha256 {sha}")),
                    )
                    .await;
                Ok((bytes, sha))
            }
            Err(e) => {
                self.record_failure(0, e.kind().as_str()).await;
                Err(e)
            }
        }
    }

    /// Drops the upload; the target stays as it was.
    pub async fn abort(mut self, why: &str) -> Result<()> {
        self.fail(why).await;
        Ok(())
    }

    async fn fail(&mut self, why: &str) {
        if let Some(writer) = self.writer.take() {
            let bytes = writer.written();
            if let Err(e) = writer.abort().await {
                tracing::warn!(path = %self.path, error = %e, "discarding an upload failed");
            }
            self.record_failure(bytes, why).await;
        }
    }

    async fn record_failure(&self, bytes: u64, why: &str) {
        self.actor
            .record(
                self.actor
                    .event("upload")
                    .path(&self.path)
                    .bytes(bytes)
                    .outcome(Outcome::Failed)
                    .detail(why.to_string()),
            )
            .await;
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Dropped without close: the connection went away. The writer's own drop
        // discards the staged data (or publishes it, `keep`); here it is recorded.
        if let Some(writer) = &self.writer {
            let (bytes, detail) = if writer.keeps_on_drop() && writer.size() > 0 {
                (writer.size(), "interrupted; partial file kept for resume")
            } else {
                (writer.written(), "interrupted")
            };
            self.actor.record_now(
                self.actor
                    .event("upload")
                    .path(&self.path)
                    .bytes(bytes)
                    .outcome(Outcome::Failed)
                    .detail(detail),
            );
        }
    }
}

pub struct Download {
    /// When it began, for the duration in its event.
    started: std::time::Instant,
    reader: FileReader,
    sent: AtomicU64,
    actor: Actor,
    path: VPath,
    /// Set once the outcome is recorded, so the drop does not record it again.
    recorded: bool,
}

impl Download {
    pub(super) fn new(reader: FileReader, actor: Actor, path: VPath) -> Self {
        Download {
            started: std::time::Instant::now(),
            reader,
            sent: AtomicU64::new(0),
            actor,
            path,
            recorded: false,
        }
    }

    pub fn size(&self) -> u64 {
        self.reader.size()
    }

    pub fn path(&self) -> &VPath {
        &self.path
    }

    /// The file opened for this download (after the permission check and
    /// through the same jail as every read) when it lies on local disk; `None`
    /// on a network service. For the link server's kernel copy
    /// (`http/sendfile.rs`); bytes sent that way count only through
    /// [`Download::add_sent`], like streamed ones.
    pub fn local_file(&self) -> Option<std::sync::Arc<std::fs::File>> {
        self.reader.local_file()
    }

    /// Reads up to `len` bytes at `offset` (empty at end of file).
    pub async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        let data = self.reader.read_at(offset, len).await?;
        self.sent.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(data)
    }

    /// Streams a range; bytes count as sent when the caller reports them with
    /// [`Download::add_sent`] (only the front-end knows what reached the client).
    pub async fn stream(&self, range: std::ops::Range<u64>) -> Result<ByteStream> {
        self.reader.stream(range).await
    }

    pub fn add_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    /// Ends the download and records it; `complete` says whether the client got
    /// everything it asked for.
    pub async fn finish(mut self, complete: bool) {
        self.recorded = true;
        self.actor.record(self.event(complete)).await;
    }

    fn event(&self, complete: bool) -> crate::audit::AuditEvent {
        let ev = self
            .actor
            .event("download")
            .path(&self.path)
            .bytes(self.sent.load(Ordering::Relaxed))
            .took(self.started);
        if complete {
            ev
        } else {
            ev.outcome(Outcome::Failed).detail("interrupted")
        }
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        if !self.recorded {
            self.actor.record_now(self.event(false));
        }
    }
}
