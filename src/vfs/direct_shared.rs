//! What the direct-upload services share (`multipart_direct.rs` for S3,
//! `direct_azure.rs` for Azure Blob): the lifetime of part URLs, a part as
//! the service lists it, the HTTP client, the clock, and reading the XML the
//! services answer with.

use std::sync::OnceLock;
use std::time::Duration;

/// How long a part URL works.
pub const PART_URL_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// A part the bucket holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DonePart {
    pub number: u64,
    pub size: u64,
    pub etag: String,
}

pub(super) fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        // CompleteMultipartUpload of many parts takes S3 minutes.
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build()
            .expect("an HTTP client")
    })
}

pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The text of the first `<tag>` in `xml`.
pub(super) fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

/// Every `<tag>` block of `xml`.
pub(super) fn tags<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(s) = rest.find(&open) {
        let after = &rest[s + open.len()..];
        let Some(e) = after.find(&close) else { break };
        out.push(&after[..e]);
        rest = &after[e + close.len()..];
    }
    out
}
