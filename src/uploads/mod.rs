//! Resumable uploads from browsers and API clients (the model of the tus 1.0
//! protocol): an upload is declared with its length, its bytes arrive in any
//! number of requests each continuing at the offset the server confirms, and
//! only when every byte is there is it published (by the link service) under
//! its final name. Bytes are staged in a local folder, one file per upload;
//! nothing is held in memory and a cut connection loses only what was in flight.
//!
//! - `names.rs`: turning an outsider's file name into one safe segment.

pub mod names;

use std::collections::HashSet;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::store::{now_ms, Db, NewUpload, Upload};

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
    staging: PathBuf,
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
    pub fn new(db: Db, staging: PathBuf) -> Self {
        Uploads {
            db,
            staging,
            busy: Arc::default(),
        }
    }

    fn staged(&self, key: &str) -> PathBuf {
        self.staging.join(format!("{key}.part"))
    }

    /// Declares an upload and creates its empty staging file. With `count_use`,
    /// it takes one of the link's uses (`None`: none left).
    pub async fn begin(&self, new: NewUpload, count_use: bool) -> Result<Option<Upload>> {
        create_private_dir(&self.staging).await?;
        let path = self.staged(&new.key);
        tokio::fs::File::create(&path)
            .await
            .map_err(|e| Error::from(e).context("creating the upload's staging file"))?;
        let made = self
            .db
            .run(move |s| s.upload_create(&new, count_use, now_ms()))
            .await;
        if !matches!(made, Ok(Some(_))) {
            let _ = tokio::fs::remove_file(&path).await;
        }
        made
    }

    pub async fn get(&self, key: &str) -> Result<Option<Upload>> {
        let key = key.to_string();
        self.db.run(move |s| s.upload_get(&key)).await
    }

    /// How many bytes are safely staged (the staging file is the truth: a cut
    /// request keeps what reached it).
    pub async fn offset(&self, up: &Upload) -> Result<u64> {
        match tokio::fs::metadata(self.staged(&up.key)).await {
            Ok(m) => Ok(m.len().min(up.size)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(up.received),
            Err(e) => Err(e.into()),
        }
    }

    /// Appends a request body at `offset`. Returns the new offset.
    pub async fn append<S, E>(&self, up: &Upload, offset: u64, body: S) -> Result<u64, AppendError>
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
        let path = self.staged(&up.key);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .await
            .map_err(|e| AppendError::Failed(Error::from(e).context("opening the staging file")))?;
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let fail = |e: std::io::Error| AppendError::Failed(Error::from(e).context("staging"));
        file.seek(SeekFrom::Start(offset)).await.map_err(fail)?;
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
                let _ = file.flush().await;
                file.get_mut().set_len(offset).await.map_err(fail)?;
                return Err(AppendError::TooLong);
            }
            file.write_all(&chunk).await.map_err(fail)?;
            written += chunk.len() as u64;
        }
        // What is acknowledged must survive a crash: flush and sync first.
        file.flush().await.map_err(fail)?;
        file.get_ref().sync_data().await.map_err(fail)?;
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

    /// The staged bytes, for publishing a complete upload.
    pub async fn open_staged(&self, up: &Upload) -> Result<tokio::fs::File> {
        tokio::fs::File::open(self.staged(&up.key))
            .await
            .map_err(|e| Error::from(e).context("opening the staged upload"))
    }

    /// Forgets the staging file (after publishing, or when cancelled).
    pub async fn discard(&self, up: &Upload) {
        match tokio::fs::remove_file(self.staged(&up.key)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(upload = %up.key, error = %e, "removing a staged upload"),
        }
    }

    /// Cancels an open upload (its use is given back) and removes its bytes.
    pub async fn cancel(&self, up: &Upload) -> Result<bool> {
        let id = up.id;
        let was_open = self.db.run(move |s| s.upload_cancel(id, now_ms())).await?;
        self.discard(up).await;
        Ok(was_open)
    }

    /// Cancels uploads untouched since `before`. Returns how many.
    pub async fn sweep(&self, before: crate::store::Millis) -> Result<usize> {
        let stale = self.db.run(move |s| s.uploads_stale(before)).await?;
        let mut n = 0;
        for up in stale {
            if self.busy.lock().expect("busy lock").contains(&up.key) {
                continue;
            }
            // Being written on another node (its lease is renewed while it writes).
            let name = format!("lock:{}", lock_key(&up.key));
            if self
                .db
                .run(move |s| s.lease_holder(&name, now_ms()))
                .await?
                .is_some()
            {
                continue;
            }
            if self.cancel(&up).await? {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// The cluster lock of an upload's writer.
fn lock_key(key: &str) -> String {
    format!("upload:{key}")
}

async fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    if tokio::fs::metadata(dir).await.is_ok() {
        return Ok(());
    }
    let d = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&d)
    })
    .await
    .map_err(|e| Error::internal("staging task failed").with_source(e))?
    .map_err(|e| Error::from(e).context(format!("creating {}", dir.display())))
}
