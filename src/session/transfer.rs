//! Upload and download handles that audit themselves when they end.
//!
//! An upload is hashed (SHA-256) while it streams; it is audited as `ok` when
//! closed, and as `failed` (with the bytes received) when aborted or dropped, e.g.
//! by a lost connection. A download counts the bytes served.

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
    hasher: Sha256,
    actor: Actor,
    path: VPath,
}

impl Upload {
    pub(super) fn new(writer: FileWriter, actor: Actor, path: VPath) -> Self {
        Upload {
            started: std::time::Instant::now(),
            writer: Some(writer),
            hasher: Sha256::new(),
            actor,
            path,
        }
    }

    pub fn path(&self) -> &VPath {
        &self.path
    }

    pub fn written(&self) -> u64 {
        self.writer.as_ref().map_or(0, FileWriter::written)
    }

    /// Appends the next bytes of the file.
    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        let writer = self.writer.as_mut().expect("upload used after its end");
        self.hasher.update(&data);
        if let Err(e) = writer.write(data).await {
            self.fail(e.kind().as_str()).await;
            return Err(e);
        }
        Ok(())
    }

    /// Commits the file; returns its size and SHA-256 (hex).
    pub async fn close(mut self) -> Result<(u64, String)> {
        let writer = self.writer.take().expect("upload used after its end");
        let sha = hex::encode(std::mem::take(&mut self.hasher).finalize());
        match writer.close().await {
            Ok(bytes) => {
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
        // discards the staged data; here it is only recorded.
        if let Some(writer) = &self.writer {
            self.actor.record_now(
                self.actor
                    .event("upload")
                    .path(&self.path)
                    .bytes(writer.written())
                    .outcome(Outcome::Failed)
                    .detail("interrupted"),
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
