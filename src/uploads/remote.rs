//! Staging on a connector (`[links] upload_staging_connector`, e.g. the S3
//! bucket every node reaches), so a `PATCH` on any node continues an upload
//! begun on another.
//!
//! Each request's bytes become ONE object, `<prefix><key>/<offset as 20
//! digits>`, holding exactly what that request delivered. Why not the
//! target's own multipart upload: its parts must be at least 5 MiB except the
//! last, a cut request leaves a short part that no later part may follow, and
//! other services (GCS, Azure, WebDAV, SFTP) have no such thing; objects
//! written whole and never appended to work on every OpenDAL service, and the
//! storage's own listing needs no shared state beside it.
//!
//! - The offset is the contiguous run of chunks from 0 found by listing
//!   `<key>/` (the listing is the truth, as the staging file's length is on
//!   local disk). A chunk that overlaps the run or lies past a gap (a writer
//!   that lost its lock while another went on) is not counted, and is deleted
//!   by the next writer, who holds the upload's lock.
//! - A cut request still closes its object with what arrived, so tus keeps the
//!   prefix it received; a request that sends more than the declared length
//!   writes nothing (its object is aborted). A chunk exists only once it is
//!   complete (objects appear on close), so a listing never sees half of one.
//! - Publishing reads the run's chunks in order as one stream; publishing,
//!   cancelling and the sweep delete the whole `<key>/` folder.
//!
//! Writes and reads go through a [`Vfs`] of that one connector (rooted at the
//! prefix): multipart parts, the memory budget, fs confinement come with it.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::StagedReader;
use crate::error::{ErrorKind, Result};
use crate::vfs::{FileWriter, VPath, Vfs};

/// Digits of a chunk's name: any u64 offset, sorted as text = sorted as numbers.
const DIGITS: usize = 20;

#[derive(Clone)]
pub struct RemoteStaging {
    vfs: Arc<Vfs>,
}

/// One stored chunk of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

/// One request's bytes going into a new chunk object.
pub struct RemoteWrite {
    writer: FileWriter,
    written: u64,
}

impl RemoteStaging {
    pub fn new(vfs: Arc<Vfs>) -> Self {
        RemoteStaging { vfs }
    }

    fn dir(key: &str) -> Result<VPath> {
        VPath::root().join(key)
    }

    /// Whether the connector is a local disk (folders must exist before files).
    fn local(&self) -> bool {
        self.vfs
            .mounts()
            .first()
            .is_some_and(|m| m.connector.local_root.is_some())
    }

    /// Every chunk stored for `key`, by offset (other names are skipped).
    pub async fn chunks(&self, key: &str) -> Result<Vec<Chunk>> {
        let entries = self.entries(&Self::dir(key)?).await?;
        let mut chunks: Vec<Chunk> = entries
            .into_iter()
            .filter(|e| !e.is_dir())
            .filter_map(|e| {
                let name = e.name().to_string();
                let offset = parse_chunk_name(&name)?;
                Some(Chunk {
                    name,
                    offset,
                    size: e.size,
                })
            })
            .collect();
        chunks.sort_by_key(|c| (c.offset, std::cmp::Reverse(c.size)));
        Ok(chunks)
    }

    /// The entries of `dir`; none when it does not exist.
    async fn entries(&self, dir: &VPath) -> Result<Vec<crate::vfs::Entry>> {
        match self.vfs.list(dir).await {
            Ok(s) => s.try_collect().await,
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The staged length: the contiguous run of chunks from 0.
    pub async fn offset(&self, key: &str) -> Result<u64> {
        let (_, at) = run(&self.chunks(key).await?);
        Ok(at)
    }

    /// Starts the chunk of a request continuing at `offset` (the caller holds
    /// the upload's lock and has checked `offset` against [`Self::offset`]).
    /// Chunks outside the run are deleted first: they would confuse the count.
    pub async fn writer(&self, key: &str, offset: u64) -> Result<RemoteWrite> {
        let dir = Self::dir(key)?;
        let chunks = self.chunks(key).await?;
        let (kept, _) = run(&chunks);
        for c in chunks.iter().filter(|c| !kept.contains(c)) {
            let _ = self.vfs.delete(&dir.join(&c.name)?).await;
        }
        if self.local() {
            match self.vfs.mkdir(&dir).await {
                Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        let path = dir.join(&chunk_name(offset))?;
        let writer = self
            .vfs
            .create_checked(&path)
            .await
            .map_err(|e| e.context("staging the upload"))?;
        Ok(RemoteWrite { writer, written: 0 })
    }

    /// The run's chunks in order, as one stream.
    pub async fn open(&self, key: &str) -> Result<StagedReader> {
        let dir = Self::dir(key)?;
        let (kept, _) = run(&self.chunks(key).await?);
        let paths = kept
            .iter()
            .map(|c| dir.join(&c.name))
            .collect::<Result<Vec<_>>>()?;
        let vfs = self.vfs.clone();
        let bytes = futures::stream::iter(paths)
            .then(move |p| {
                let vfs = vfs.clone();
                async move {
                    let reader = vfs.open(&p).await?;
                    reader.stream(0..reader.size()).await
                }
            })
            .try_flatten()
            .map_err(std::io::Error::other)
            .boxed();
        Ok(Box::new(tokio_util::io::StreamReader::new(bytes)))
    }

    /// Deletes every object under `<key>/`.
    pub async fn discard(&self, key: &str) {
        if let Err(e) = self.remove(key).await {
            tracing::warn!(upload = %key, error = %e, "removing a staged upload");
        }
    }

    async fn remove(&self, key: &str) -> Result<()> {
        let dir = Self::dir(key)?;
        for e in self.entries(&dir).await? {
            if !e.is_dir() {
                match self.vfs.delete(&e.path).await {
                    Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        // A folder on local disk (object stores keep none once empty).
        match self.vfs.rmdir(&dir).await {
            Err(e) if self.local() && e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The upload keys that have a folder under the prefix.
    pub async fn keys(&self) -> Result<Vec<String>> {
        Ok(self
            .entries(&VPath::root())
            .await?
            .into_iter()
            .filter(|e| e.is_dir())
            .map(|e| e.name().to_string())
            .filter(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect())
    }
}

impl RemoteWrite {
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.written += chunk.len() as u64;
        self.writer.write(chunk).await
    }

    /// Keeps what arrived as the request's chunk (nothing arrived: no chunk).
    pub async fn keep(self) -> Result<()> {
        if self.written == 0 {
            return self.writer.abort().await;
        }
        self.writer
            .close()
            .await
            .map(|_| ())
            .map_err(|e| e.context("staging the upload"))
    }

    /// Keeps nothing of this request.
    pub async fn drop_all(self) -> Result<()> {
        self.writer.abort().await
    }
}

fn chunk_name(offset: u64) -> String {
    format!("{offset:0DIGITS$}")
}

fn parse_chunk_name(name: &str) -> Option<u64> {
    if name.len() != DIGITS || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// The chunks (sorted by offset) that make the contiguous run from 0, and
/// where it ends. Empty chunks count for nothing.
fn run(chunks: &[Chunk]) -> (Vec<Chunk>, u64) {
    let mut at = 0u64;
    let mut kept = Vec::new();
    for c in chunks {
        if c.offset == at && c.size > 0 {
            at += c.size;
            kept.push(c.clone());
        }
    }
    (kept, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(offset: u64, size: u64) -> Chunk {
        Chunk {
            name: chunk_name(offset),
            offset,
            size,
        }
    }

    #[test]
    fn names_sort_as_offsets_and_round_trip() {
        assert_eq!(chunk_name(0), "00000000000000000000");
        assert_eq!(parse_chunk_name(&chunk_name(u64::MAX)), Some(u64::MAX));
        assert!(chunk_name(9) < chunk_name(10));
        assert_eq!(parse_chunk_name("12"), None);
        assert_eq!(parse_chunk_name("0000000000000000000a"), None);
    }

    #[test]
    fn the_offset_is_the_contiguous_run_from_zero() {
        assert_eq!(run(&[]).1, 0);
        assert_eq!(run(&[c(0, 10), c(10, 5)]).1, 15);
        // A gap: what lies past it does not count.
        assert_eq!(run(&[c(0, 10), c(20, 5)]).1, 10);
        // An overlap (a writer that lost its lock): skipped.
        let (kept, at) = run(&[c(0, 10), c(5, 10), c(10, 3)]);
        assert_eq!(at, 13);
        assert_eq!(kept, vec![c(0, 10), c(10, 3)]);
        // Nothing at 0: nothing staged.
        assert_eq!(run(&[c(4, 10)]).1, 0);
    }
}
