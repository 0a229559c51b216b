//! Resumable uploads from browsers and API clients (the model of the tus 1.0
//! protocol): an upload is declared with its length, its bytes arrive in any
//! number of requests each continuing at the offset the server confirms, and
//! only when every byte is there is it published (by the link service) under
//! its final name. Nothing is held in memory and a cut connection loses only
//! what was in flight.
//!
//! Where the bytes wait ([`Staging`]): by default a local folder, one file per
//! upload (`local.rs`); with `[links] upload_staging_connector`, objects on
//! that connector (`remote.rs`), which every node of a cluster reaches, so a
//! `PATCH` on one node continues an upload begun on another. Either way one
//! request writes an upload at a time: a busy set on this node, a lease in
//! the store across nodes.
//!
//! - `names.rs`: turning an outsider's file name into one safe segment.

pub mod local;
pub mod names;
pub mod remote;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::error::{Error, Result};
use crate::store::{now_ms, Db, NewUpload, Upload, UploadState};

/// The staged bytes of a complete upload, read in order.
pub type StagedReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// Where uploads in progress are staged.
#[derive(Clone)]
pub enum Staging {
    /// A folder on this node's disk (`[links] upload_staging`).
    Local(local::LocalStaging),
    /// Chunk objects on a connector (`[links] upload_staging_connector`).
    Remote(remote::RemoteStaging),
}

/// One request's bytes on their way into staging.
enum Write {
    Local(local::LocalWrite),
    Remote(remote::RemoteWrite),
}

impl Write {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        match self {
            Write::Local(w) => w.write(chunk).await,
            Write::Remote(w) => w.write(chunk).await,
        }
    }

    /// Makes what was written durable (acknowledged bytes survive a crash).
    async fn keep(self) -> Result<()> {
        match self {
            Write::Local(w) => w.keep().await,
            Write::Remote(w) => w.keep().await,
        }
    }

    /// Keeps nothing of this request.
    async fn drop_all(self) -> Result<()> {
        match self {
            Write::Local(w) => w.drop_all().await,
            Write::Remote(w) => w.drop_all().await,
        }
    }
}

impl Staging {
    async fn writer(&self, key: &str, offset: u64) -> Result<Write> {
        Ok(match self {
            Staging::Local(s) => Write::Local(s.writer(key, offset).await?),
            Staging::Remote(s) => Write::Remote(s.writer(key, offset).await?),
        })
    }

    async fn discard(&self, key: &str) {
        match self {
            Staging::Local(s) => s.discard(key).await,
            Staging::Remote(s) => s.discard(key).await,
        }
    }
}

/// Why bytes were not taken.
#[derive(Debug)]
pub enum AppendError {
    /// Another request is writing this upload now.
    Busy,
    /// The request does not continue where the upload stands (which is given).
    Offset(u64),
    /// More bytes than the declared length: nothing of this request was kept.
    TooLong,
    /// The connection or the disk failed; what arrived is kept (HEAD tells).
    Failed(Error),
}

#[derive(Clone)]
pub struct Uploads {
    db: Db,
    staging: Staging,
    /// Keys being written: one writer per upload.
    busy: Arc<Mutex<HashSet<String>>>,
}

/// Releases an upload's writer slot when the request ends, however it ends.
struct Writing {
    busy: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.busy.lock().expect("busy lock").remove(&self.key);
    }
}

impl Uploads {
    /// Staged in the local folder `staging`.
    pub fn new(db: Db, staging: PathBuf) -> Self {
        Uploads::with_staging(db, Staging::Local(local::LocalStaging::new(staging)))
    }

    pub fn with_staging(db: Db, staging: Staging) -> Self {
        Uploads {
            db,
            staging,
            busy: Arc::default(),
        }
    }

    /// Declares an upload (and, on local disk, creates its empty staging
    /// file). With `count_use`, it takes one of the link's uses (`None`: none
    /// left).
    pub async fn begin(&self, new: NewUpload, count_use: bool) -> Result<Option<Upload>> {
        let key = new.key.clone();
        if let Staging::Local(s) = &self.staging {
            s.create(&key).await?;
        }
        let made = self
            .db
            .run(move |s| s.upload_create(&new, count_use, now_ms()))
            .await;
        if !matches!(made, Ok(Some(_))) {
            self.staging.discard(&key).await;
        }
        made
    }

    pub async fn get(&self, key: &str) -> Result<Option<Upload>> {
        let key = key.to_string();
        self.db.run(move |s| s.upload_get(&key)).await
    }

    /// How many bytes are safely staged (the staging is the truth: a cut
    /// request keeps what reached it).
    pub async fn offset(&self, up: &Upload) -> Result<u64> {
        match &self.staging {
            Staging::Local(s) => Ok(match s.offset(&up.key).await? {
                Some(len) => len.min(up.size),
                None => up.received,
            }),
            Staging::Remote(s) => Ok(s.offset(&up.key).await?.min(up.size)),
        }
    }

    /// Appends a request body at `offset`. Returns the new offset.
    ///
    /// The work runs in a task of its own: if the server drops the request
    /// (its connection is gone), what arrived is still kept, not lost with a
    /// writer that never closed.
    pub async fn append<S, E>(&self, up: &Upload, offset: u64, body: S) -> Result<u64, AppendError>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let this = self.clone();
        let up = up.clone();
        tokio::spawn(async move { this.append_here(&up, offset, body).await })
            .await
            .unwrap_or_else(|e| {
                Err(AppendError::Failed(
                    Error::internal("the upload task failed").with_source(e),
                ))
            })
    }

    async fn append_here<S, E>(&self, up: &Upload, offset: u64, body: S) -> Result<u64, AppendError>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let _slot = {
            let mut busy = self.busy.lock().expect("busy lock");
            if !busy.insert(up.key.clone()) {
                return Err(AppendError::Busy);
            }
            Writing {
                busy: self.busy.clone(),
                key: up.key.clone(),
            }
        };
        // One writer across nodes too: the store decides (a lease per upload).
        let lease = match crate::cluster::lock(&self.db, "uploads", &lock_key(&up.key)).await {
            Ok(Some(l)) => l,
            Ok(None) => return Err(AppendError::Busy),
            Err(e) => return Err(AppendError::Failed(e)),
        };
        let res = self.append_locked(up, offset, body).await;
        lease.release().await;
        res
    }

    async fn append_locked<S, E>(
        &self,
        up: &Upload,
        offset: u64,
        body: S,
    ) -> Result<u64, AppendError>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let at = self.offset(up).await.map_err(AppendError::Failed)?;
        if at != offset {
            return Err(AppendError::Offset(at));
        }
        let mut out = self
            .staging
            .writer(&up.key, offset)
            .await
            .map_err(AppendError::Failed)?;
        let room = up.size - offset;
        let mut written = 0u64;
        let mut body = body;
        let mut cut = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    cut = Some(Error::new(
                        crate::error::ErrorKind::Unavailable,
                        format!("the upload was interrupted: {e}"),
                    ));
                    break;
                }
            };
            if written + chunk.len() as u64 > room {
                // Declared one length, sent more: keep nothing of this request.
                out.drop_all().await.map_err(AppendError::Failed)?;
                return Err(AppendError::TooLong);
            }
            written += chunk.len() as u64;
            out.write(chunk).await.map_err(AppendError::Failed)?;
        }
        // What is acknowledged must survive a crash (synced, or stored whole).
        out.keep().await.map_err(AppendError::Failed)?;
        let now_at = offset + written;
        let id = up.id;
        let _ = self
            .db
            .run(move |s| s.upload_progress(id, now_at, now_ms()))
            .await;
        match cut {
            Some(e) => Err(AppendError::Failed(e)),
            None => Ok(now_at),
        }
    }

    /// The staged bytes, in order, for publishing a complete upload.
    pub async fn open_staged(&self, up: &Upload) -> Result<StagedReader> {
        match &self.staging {
            Staging::Local(s) => s.open(&up.key).await,
            Staging::Remote(s) => s.open(&up.key).await,
        }
    }

    /// Forgets the staged bytes (after publishing, or when cancelled).
    pub async fn discard(&self, up: &Upload) {
        self.staging.discard(&up.key).await;
    }

    /// Cancels an open upload (its use is given back) and removes its bytes.
    pub async fn cancel(&self, up: &Upload) -> Result<bool> {
        let id = up.id;
        let was_open = self.db.run(move |s| s.upload_cancel(id, now_ms())).await?;
        self.discard(up).await;
        Ok(was_open)
    }

    /// Cancels uploads untouched since `before`. Returns how many. On a
    /// staging connector, also removes the chunks of uploads no longer open
    /// (a cancel or a publish whose clean-up failed, a request that was still
    /// writing when its upload was cancelled).
    pub async fn sweep(&self, before: crate::store::Millis) -> Result<usize> {
        let stale = self.db.run(move |s| s.uploads_stale(before)).await?;
        let mut n = 0;
        for up in stale {
            if self.busy.lock().expect("busy lock").contains(&up.key) {
                continue;
            }
            // Being written on another node (its lease is renewed while it writes).
            if self.being_written(&up.key).await? {
                continue;
            }
            if self.cancel(&up).await? {
                n += 1;
            }
        }
        if let Staging::Remote(s) = &self.staging {
            if let Err(e) = self.sweep_chunks(s).await {
                tracing::warn!(error = %e, "sweeping staged chunks failed; will retry");
            }
        }
        Ok(n)
    }

    /// Deletes the chunk folders of uploads that are not open (or unknown).
    async fn sweep_chunks(&self, s: &remote::RemoteStaging) -> Result<()> {
        for key in s.keys().await? {
            let open = self
                .get(&key)
                .await?
                .is_some_and(|u| u.state == UploadState::Open);
            if !open && !self.being_written(&key).await? {
                s.discard(&key).await;
            }
        }
        Ok(())
    }

    /// Whether a request (on any node) holds the upload's writer lease.
    async fn being_written(&self, key: &str) -> Result<bool> {
        let name = format!("lock:{}", lock_key(key));
        Ok(self
            .db
            .run(move |s| s.lease_holder(&name, now_ms()))
            .await?
            .is_some())
    }
}

/// The cluster lock of an upload's writer.
fn lock_key(key: &str) -> String {
    format!("upload:{key}")
}
