//! Direct downloads (`direct_downloads = true` on a connector): once every
//! link rule has passed and the use is taken, a single-file download answers
//! `303 See Other` to a short-lived presigned GET at the storage service, which
//! then serves the bytes (and any `Range`) itself. The use is charged when the
//! URL is handed out: wharf cannot see the transfer end (docs/links.md). Zips
//! and folder pages stay proxied.

use super::target::Target;

/// The presigned URL for the target file, answering with `disposition`, if
/// its connector hands out direct downloads; a presigning failure falls back
/// to the proxied download.
pub async fn presigned(t: &Target, disposition: &str) -> Option<String> {
    match t.session.presign_download(&t.path, disposition).await {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(error = %e, "presigning a direct download; proxying it");
            None
        }
    }
}
