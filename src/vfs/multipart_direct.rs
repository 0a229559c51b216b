//! Direct browser uploads to S3 (`direct_uploads = true` on an s3 connector;
//! an azblob connector's calls are in `direct_azure.rs`, a gcs connector's in
//! `direct_gcs.rs`, chosen here by the connector's [`DirectUpload`], so the
//! link service sees one `DirectPlace`):
//! wharf creates a multipart upload at a staging key, hands the browser
//! presigned `UploadPart` URLs (each bound by its signature to that key, that
//! upload id, one part number and the part's length), lists the parts the
//! bucket holds (for resume and for checking), completes the upload, reads
//! the object back once to hash it, and publishes it by a copy inside the
//! bucket. Nothing is visible under a user's path until then: the staging key
//! is `.wharf-partial/direct/<upload key>` at the connector's root, which the
//! Vfs refuses and hides like an fs connector's staging folder.
//!
//! OpenDAL presigns whole-object reads and writes only, so these calls are
//! signed here (`sigv4.rs`) and sent with reqwest.

use std::sync::Arc;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use wharf_connectors::{Connector, DirectUpload, S3Bucket, PARTIAL_DIR};

use super::direct_azure::{self, Blob};
use super::direct_gcs;
use super::direct_shared::{http, now, tag, tags};
pub use super::direct_shared::{DonePart, PART_URL_LIFETIME};
use super::sigv4::{self, Req};
use super::{VPath, Vfs};
use crate::error::{Error, ErrorKind, Result};

/// The smallest part (S3's floor is 5 MiB for every part but the last).
pub const MIN_PART: u64 = 8 << 20;
/// S3's most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;

/// What the read-back of a completed upload fetches at a time.
const READ_BACK_CHUNK: usize = 8 << 20;

/// The largest object one `CopyObject` copies.
const COPY_LIMIT: u64 = 5 << 30;

/// The range size for copying `size` bytes in parts: 512 MiB, or more (whole
/// MiB) to stay within [`MAX_PARTS`].
fn copy_part(size: u64) -> u64 {
    size.div_ceil(MAX_PARTS).div_ceil(1 << 20).max(512) << 20
}

/// The part size for a file of `size` bytes: [`MIN_PART`], or larger (whole
/// MiB) when the file would need more than [`MAX_PARTS`].
pub fn part_size(size: u64) -> u64 {
    let need = size.div_ceil(MAX_PARTS);
    need.div_ceil(1 << 20).max(MIN_PART >> 20) << 20
}

/// How many parts a file of `size` bytes has at `part` bytes each.
pub fn part_count(size: u64, part: u64) -> u64 {
    size.div_ceil(part).max(1)
}

/// The length of part `n` (1-based).
pub fn part_len(size: u64, part: u64, n: u64) -> u64 {
    let start = (n - 1) * part;
    size.saturating_sub(start).min(part)
}

/// The connector (an S3 bucket taking direct uploads) a folder lies on.
#[derive(Clone)]
pub struct DirectPlace {
    connector: Arc<Connector>,
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl DirectPlace {
    fn bucket(&self) -> Result<&S3Bucket> {
        match &self.connector.direct_upload {
            Some(DirectUpload::S3(b)) => Ok(b),
            _ => Err(Error::internal("not an S3 bucket")),
        }
    }

    /// The staging blob of upload `key` when the place is an Azure container.
    fn azure_blob(&self, key: &str) -> Option<Blob<'_>> {
        match &self.connector.direct_upload {
            Some(DirectUpload::Azure(c)) => Some(Blob::new(c, &Self::staged(key))),
            _ => None,
        }
    }

    /// The GCS bucket of the place, if it is one.
    fn gcs(&self) -> Option<&wharf_connectors::GcsBucket> {
        match &self.connector.direct_upload {
            Some(DirectUpload::Gcs(b)) => Some(b),
            _ => None,
        }
    }

    /// The origin browsers send parts to (`scheme://host[:port]`), for the
    /// upload page's content policy.
    pub fn origin(&self) -> String {
        match &self.connector.direct_upload {
            Some(DirectUpload::S3(b)) => sigv4::place(b, "").1,
            Some(DirectUpload::Azure(c)) => direct_azure::origin(c),
            Some(DirectUpload::Gcs(b)) => direct_gcs::origin(b),
            None => String::new(),
        }
    }

    pub fn connector_name(&self) -> &str {
        &self.connector.name
    }

    /// The staging key of upload `key`, below the operator's root.
    pub fn staged(key: &str) -> String {
        format!("{PARTIAL_DIR}/direct/{key}")
    }

    /// Sends a signed request; the body of a 2xx answer, else an error (the
    /// bucket's code in the context, never its URL).
    async fn call(&self, r: Req<'_>, body: Vec<u8>) -> Result<(u16, String)> {
        let (url, headers) = sigv4::sign(self.bucket()?, &r, &body, now());
        let method = reqwest::Method::from_bytes(r.method.as_bytes())
            .map_err(|_| Error::internal("bad method"))?;
        let mut req = http().request(method, url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("the bucket did not answer: {}", e.without_url()),
            )
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, text))
    }

    fn failed(what: &str, status: u16, text: &str) -> Error {
        let code = tag(text, "Code").unwrap_or("no code");
        let kind = match status {
            404 => ErrorKind::NotFound,
            403 => ErrorKind::PermissionDenied,
            400 => ErrorKind::InvalidInput,
            _ => ErrorKind::Unavailable,
        };
        Error::new(
            kind,
            format!("{what}: the bucket answered {status} ({code})"),
        )
    }

    /// CreateMultipartUpload at the staging key of `key`: the upload id.
    /// Azure has nothing to create (the staging blob's blocks arrive under
    /// it), nor GCS (each part gets its session when its URL is asked for):
    /// their ids are constants.
    pub async fn create(&self, key: &str) -> Result<String> {
        if self.azure_blob(key).is_some() {
            return Ok("azblob".into());
        }
        if self.gcs().is_some() {
            return Ok("gcs".into());
        }
        self.create_at(&Self::staged(key)).await
    }

    /// CreateMultipartUpload at object `obj` (below the operator's root).
    async fn create_at(&self, obj: &str) -> Result<String> {
        let r = Req {
            method: "POST",
            key: obj,
            query: vec![("uploads".into(), String::new())],
            headers: vec![],
        };
        let (status, text) = self.call(r, Vec::new()).await?;
        if status != 200 {
            return Err(Self::failed("starting a multipart upload", status, &text));
        }
        tag(&text, "UploadId")
            .map(unescape)
            .ok_or_else(|| Error::internal("the bucket gave no UploadId"))
    }

    /// A presigned UploadPart URL for part `n` of `len` bytes (Azure: a
    /// Put Block URL under a write-only SAS on the staging blob; the length
    /// is checked from the block list instead; GCS: the URI of a resumable
    /// upload session, started now, for the part's own object).
    pub async fn part_url(&self, key: &str, upload_id: &str, n: u64, len: u64) -> Result<String> {
        if let Some(blob) = self.azure_blob(key) {
            return blob.part_url(key, n);
        }
        if let Some(b) = self.gcs() {
            return direct_gcs::part_url(b, &Self::staged(key), n, len).await;
        }
        let staged = Self::staged(key);
        let r = Req {
            method: "PUT",
            key: &staged,
            query: vec![
                ("partNumber".into(), n.to_string()),
                ("uploadId".into(), upload_id.to_string()),
            ],
            headers: vec![("content-length".into(), len.to_string())],
        };
        Ok(sigv4::presign(
            self.bucket()?,
            &r,
            now(),
            PART_URL_LIFETIME.as_secs(),
        ))
    }

    /// ListParts: every part the bucket holds, by number; `None` if the
    /// upload is gone (completed, aborted, or never was).
    pub async fn parts(&self, key: &str, upload_id: &str) -> Result<Option<Vec<DonePart>>> {
        if let Some(blob) = self.azure_blob(key) {
            return blob.parts(key).await.map(Some);
        }
        if self.gcs().is_some() {
            return direct_gcs::parts(&self.connector.operator, &Self::staged(key))
                .await
                .map(Some);
        }
        let staged = Self::staged(key);
        let mut out = Vec::new();
        let mut marker = 0u64;
        for _ in 0..(MAX_PARTS / 1000 + 2) {
            let mut query = vec![("uploadId".into(), upload_id.to_string())];
            if marker > 0 {
                query.push(("part-number-marker".into(), marker.to_string()));
            }
            let r = Req {
                method: "GET",
                key: &staged,
                query,
                headers: vec![],
            };
            let (status, text) = self.call(r, Vec::new()).await?;
            if status == 404 {
                return Ok(None);
            }
            if status != 200 {
                return Err(Self::failed("listing the uploaded parts", status, &text));
            }
            for p in tags(&text, "Part") {
                let number = tag(p, "PartNumber").and_then(|n| n.trim().parse().ok());
                let size = tag(p, "Size").and_then(|n| n.trim().parse().ok());
                let etag = tag(p, "ETag").map(unescape);
                if let (Some(number), Some(size), Some(etag)) = (number, size, etag) {
                    out.push(DonePart { number, size, etag });
                }
            }
            let truncated = tag(&text, "IsTruncated").is_some_and(|t| t.trim() == "true");
            let next = tag(&text, "NextPartNumberMarker").and_then(|n| n.trim().parse().ok());
            match (truncated, next) {
                (true, Some(n)) if n > marker => marker = n,
                _ => break,
            }
        }
        out.sort_by_key(|p| p.number);
        out.dedup_by_key(|p| p.number);
        Ok(Some(out))
    }

    /// CompleteMultipartUpload with `parts` (as listed).
    pub async fn complete(&self, key: &str, upload_id: &str, parts: &[DonePart]) -> Result<()> {
        if let Some(blob) = self.azure_blob(key) {
            return blob.commit(parts).await;
        }
        if self.gcs().is_some() {
            return direct_gcs::complete(&self.connector.operator, &Self::staged(key), parts).await;
        }
        self.complete_at(&Self::staged(key), upload_id, parts).await
    }

    async fn complete_at(&self, obj: &str, upload_id: &str, parts: &[DonePart]) -> Result<()> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for p in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                p.number,
                escape(&p.etag)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let r = Req {
            method: "POST",
            key: obj,
            query: vec![("uploadId".into(), upload_id.to_string())],
            headers: vec![],
        };
        let (status, text) = self.call(r, xml.into_bytes()).await?;
        // S3 may answer 200 with an error document.
        if status != 200 || text.contains("<Error>") {
            return Err(Self::failed("completing the upload", status, &text));
        }
        Ok(())
    }

    /// AbortMultipartUpload; an upload already gone counts as aborted.
    pub async fn abort(&self, key: &str, upload_id: &str) -> Result<()> {
        if let Some(blob) = self.azure_blob(key) {
            return blob.abort().await;
        }
        if self.gcs().is_some() {
            return direct_gcs::remove_parts(&self.connector.operator, &Self::staged(key)).await;
        }
        self.abort_at(&Self::staged(key), upload_id).await
    }

    async fn abort_at(&self, obj: &str, upload_id: &str) -> Result<()> {
        let r = Req {
            method: "DELETE",
            key: obj,
            query: vec![("uploadId".into(), upload_id.to_string())],
            headers: vec![],
        };
        let (status, text) = self.call(r, Vec::new()).await?;
        match status {
            200..=299 | 404 => Ok(()),
            _ => Err(Self::failed("aborting the upload", status, &text)),
        }
    }

    /// Copies object `from` (of `size` bytes) to `to` inside the bucket, in
    /// `part`-byte ranges (S3 `UploadPartCopy`): how objects larger than one
    /// `CopyObject` allows (5 GiB) are published. Aborted on failure.
    pub async fn copy_in_parts(&self, from: &str, to: &str, size: u64, part: u64) -> Result<()> {
        let id = self.create_at(to).await?;
        let res = match self.copy_parts(from, to, &id, size, part).await {
            Ok(parts) => self.complete_at(to, &id, &parts).await,
            Err(e) => Err(e),
        };
        if res.is_err() {
            let _ = self.abort_at(to, &id).await;
        }
        res
    }

    async fn copy_parts(
        &self,
        from: &str,
        to: &str,
        upload_id: &str,
        size: u64,
        part: u64,
    ) -> Result<Vec<DonePart>> {
        let b = self.bucket()?;
        let source = format!(
            "/{}/{}",
            sigv4::encode(&b.bucket, false),
            sigv4::encode(&format!("{}{from}", b.root), true)
        );
        let mut out = Vec::new();
        for n in 1..=part_count(size, part) {
            let len = part_len(size, part, n);
            let start = (n - 1) * part;
            let r = Req {
                method: "PUT",
                key: to,
                query: vec![
                    ("partNumber".into(), n.to_string()),
                    ("uploadId".into(), upload_id.to_string()),
                ],
                headers: vec![
                    ("x-amz-copy-source".into(), source.clone()),
                    (
                        "x-amz-copy-source-range".into(),
                        format!("bytes={start}-{}", start + len - 1),
                    ),
                ],
            };
            let (status, text) = self.call(r, Vec::new()).await?;
            if status != 200 || text.contains("<Error>") {
                return Err(Self::failed("copying a part", status, &text));
            }
            let etag = tag(&text, "ETag")
                .map(unescape)
                .ok_or_else(|| Error::internal("the bucket gave no ETag for a copied part"))?;
            out.push(DonePart {
                number: n,
                size: len,
                etag,
            });
        }
        Ok(out)
    }

    /// The size and SHA-256 of the staged object, read back once, streamed.
    /// What the read holds (one chunk) is drawn from `budget` first, so many
    /// completions at once wait for room like other transfers.
    pub async fn hash_staged(
        &self,
        key: &str,
        budget: &crate::budget::Budget,
    ) -> Result<(u64, String)> {
        let _reserved = budget.reserve(READ_BACK_CHUNK).await;
        let op = &self.connector.operator;
        let staged = Self::staged(key);
        let reader = op
            .reader_with(&staged)
            .chunk(READ_BACK_CHUNK)
            .await
            .map_err(|e| Error::from(e).context("reading the uploaded file back"))?;
        let mut stream = reader
            .into_bytes_stream(..)
            .await
            .map_err(|e| Error::from(e).context("reading the uploaded file back"))?;
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| Error::from(e).context("reading the uploaded file back"))?;
            n += chunk.len() as u64;
            h.update(&chunk);
        }
        Ok((n, hex::encode(h.finalize())))
    }

    /// Removes the staged object (absent is fine).
    pub async fn delete_staged(&self, key: &str) -> Result<()> {
        self.connector
            .operator
            .delete(&Self::staged(key))
            .await
            .map_err(|e| Error::from(e).context("removing the staged upload"))
    }
}

impl Vfs {
    /// Where files uploaded into `folder` can go straight to the bucket:
    /// `None` unless its connector takes direct uploads.
    pub fn direct_place(&self, folder: &VPath) -> Result<Option<DirectPlace>> {
        if self.table.is_virtual_dir(folder) {
            return Ok(None);
        }
        let r = self.resolve(folder)?;
        Ok(r.mount
            .connector
            .direct_upload
            .as_ref()
            .map(|_| DirectPlace {
                connector: r.mount.connector.clone(),
            }))
    }

    /// The direct-upload connector called `name` among the mounts, for the
    /// sweep (which has an upload's connector name, not its folder).
    pub fn direct_place_named(&self, name: &str) -> Option<DirectPlace> {
        self.mounts()
            .iter()
            .find(|m| m.connector.name == name && m.connector.direct_upload.is_some())
            .map(|m| DirectPlace {
                connector: m.connector.clone(),
            })
    }

    /// Publishes the staged object of upload `key` (`size` bytes) at
    /// `target`: a copy inside the bucket (one `CopyObject` up to 5 GiB, in
    /// ranges above; Azure Copy Blob; GCS rewrite, through OpenDAL), then the staged object is removed. `target` must lie on
    /// the same connector.
    pub async fn direct_publish(
        &self,
        place: &DirectPlace,
        key: &str,
        target: &VPath,
        size: u64,
    ) -> Result<()> {
        let r = self.resolve(target)?;
        if !Arc::ptr_eq(&r.mount.connector, &place.connector) {
            return Err(Error::internal(
                "the upload's folder moved to another connector",
            ));
        }
        let staged = DirectPlace::staged(key);
        if let Some(DirectUpload::Azure(c)) = &place.connector.direct_upload {
            Blob::new(c, &staged)
                .copy_to(&Blob::new(c, r.file_key()))
                .await
                .map_err(|e| e.context(format!("publishing {target}")))?;
        } else if size > COPY_LIMIT && place.bucket().is_ok() {
            place
                .copy_in_parts(&staged, r.file_key(), size, copy_part(size))
                .await
                .map_err(|e| e.context(format!("publishing {target}")))?;
        } else {
            place
                .connector
                .operator
                .copy(&staged, r.file_key())
                .await
                .map_err(|e| Error::from(e).context(format!("publishing {target}")))?;
        }
        let _ = place.delete_staged(key).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_file() {
        assert_eq!(part_size(1), MIN_PART);
        assert_eq!(part_count(0, MIN_PART), 1);
        assert_eq!(part_count(MIN_PART * 2 + 1, MIN_PART), 3);
        assert_eq!(part_len(MIN_PART * 2 + 1, MIN_PART, 3), 1);
        let big = 200u64 << 30;
        let p = part_size(big);
        assert!(part_count(big, p) <= MAX_PARTS);
        assert_eq!(p % (1 << 20), 0);
    }

    #[test]
    fn list_parts_xml() {
        let xml = "<ListPartsResult><IsTruncated>false</IsTruncated><Part><PartNumber>2</PartNumber><ETag>&quot;b&quot;</ETag><Size>5</Size></Part><Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag><Size>9</Size></Part></ListPartsResult>";
        let parts: Vec<_> = tags(xml, "Part");
        assert_eq!(parts.len(), 2);
        assert_eq!(tag(parts[0], "ETag").map(unescape).unwrap(), "\"b\"");
    }
}
