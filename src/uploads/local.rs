//! Staging on this node's disk (`[links] upload_staging`, the default): one
//! file per upload, `<key>.part`, whose length is the upload's offset. A
//! request's bytes are flushed and synced before they are acknowledged.

use std::io::SeekFrom;
use std::path::PathBuf;

use bytes::Bytes;
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::StagedReader;
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct LocalStaging {
    dir: PathBuf,
}

/// One request's bytes going into the staging file at its offset.
pub struct LocalWrite {
    file: BufWriter<tokio::fs::File>,
    offset: u64,
}

impl LocalStaging {
    pub fn new(dir: PathBuf) -> Self {
        LocalStaging { dir }
    }

    fn staged(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.part"))
    }

    /// Creates the upload's empty staging file.
    pub async fn create(&self, key: &str) -> Result<()> {
        create_private_dir(&self.dir).await?;
        tokio::fs::File::create(self.staged(key))
            .await
            .map_err(|e| Error::from(e).context("creating the upload's staging file"))?;
        Ok(())
    }

    /// The staged length (`None`: no staging file).
    pub async fn offset(&self, key: &str) -> Result<Option<u64>> {
        match tokio::fs::metadata(self.staged(key)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn writer(&self, key: &str, offset: u64) -> Result<LocalWrite> {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(self.staged(key))
            .await
            .map_err(|e| Error::from(e).context("opening the staging file"))?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        file.seek(SeekFrom::Start(offset))
            .await
            .map_err(staging_error)?;
        Ok(LocalWrite { file, offset })
    }

    pub async fn open(&self, key: &str) -> Result<StagedReader> {
        let file = tokio::fs::File::open(self.staged(key))
            .await
            .map_err(|e| Error::from(e).context("opening the staged upload"))?;
        Ok(Box::new(file))
    }

    pub async fn discard(&self, key: &str) {
        match tokio::fs::remove_file(self.staged(key)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(upload = %key, error = %e, "removing a staged upload"),
        }
    }
}

impl LocalWrite {
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.file.write_all(&chunk).await.map_err(staging_error)
    }

    /// Keeps what was written: what is acknowledged must survive a crash, so
    /// flush and sync first.
    pub async fn keep(mut self) -> Result<()> {
        self.file.flush().await.map_err(staging_error)?;
        self.file.get_ref().sync_data().await.map_err(staging_error)
    }

    /// Keeps nothing of this request: the file is cut back to where it began.
    pub async fn drop_all(mut self) -> Result<()> {
        let _ = self.file.flush().await;
        self.file
            .get_mut()
            .set_len(self.offset)
            .await
            .map_err(staging_error)
    }
}

fn staging_error(e: std::io::Error) -> Error {
    Error::from(e).context("staging")
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
