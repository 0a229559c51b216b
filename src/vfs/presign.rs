//! Presigned downloads: a short-lived URL at which the storage service itself
//! serves a file (S3, GCS, Azure Blob), for connectors configured with
//! `direct_downloads = true`. The bytes then never pass through wharf.

use super::{VPath, Vfs};
use crate::error::{Error, Result};

impl Vfs {
    /// A presigned GET for the file at `path`, answering with
    /// `Content-Disposition: disposition`; `None` where its connector does not
    /// hand out direct downloads (not configured, or the service cannot
    /// presign). The caller has checked that `path` is a file.
    pub async fn presign_download(
        &self,
        path: &VPath,
        disposition: &str,
    ) -> Result<Option<String>> {
        if self.table.is_virtual_dir(path) {
            return Ok(None);
        }
        let r = self.resolve(path)?;
        let connector = &r.mount.connector;
        let Some(lifetime) = connector.direct_download else {
            return Ok(None);
        };
        let op = &connector.operator;
        if connector.local_root.is_some() || !op.info().capability().presign_read {
            return Ok(None);
        }
        let signed = op
            .presign_read_with(r.file_key(), lifetime)
            .override_content_disposition(disposition)
            .await
            .map_err(|e| Error::from(e).context(format!("presigning {path}")))?;
        Ok(Some(signed.uri().to_string()))
    }
}
