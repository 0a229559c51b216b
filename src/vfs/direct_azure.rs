//! Direct browser uploads to Azure Blob (`direct_uploads = true` on an
//! azblob connector): the Azure counterpart of the S3 multipart calls in
//! `multipart_direct.rs`, which dispatches here.
//!
//! The browser sends each part as a `Put Block` to the staging blob of its
//! upload, at a URL carrying a service SAS that wharf signs with the account
//! key: resource `b` (that one blob, whose name holds the upload key),
//! permission `w` only, expiring after [`PART_URL_LIFETIME`], HTTPS only when
//! the endpoint is. Block ids are base64 of `<upload key>-<part number, five
//! digits>`: all of one length (Azure requires it within a blob), and wharf
//! commits only the ids of its own upload. A SAS binds no length, so the
//! lengths are checked from the block list before anything is committed.
//!
//! wharf's own calls (Get Block List, Put Block List, Copy Blob, Delete Blob)
//! are signed with Shared Key here: OpenDAL (0.59) exposes none of them.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use wharf_connectors::AzureContainer;

use super::direct_shared::{http, now, tag, tags, DonePart, PART_URL_LIFETIME};
use super::sigv4::{amz_date, encode};
use crate::error::{Error, ErrorKind, Result};

/// The service version wharf's requests and SAS tokens speak (the SAS
/// string-to-sign of 2020-12-06 and later, with the encryption scope line).
const VERSION: &str = "2020-12-06";

/// How long a Copy Blob left pending by the service is waited for.
const COPY_WAIT: Duration = Duration::from_secs(3600);

/// One blob of a container, by its full name (the connector's root included).
pub(super) struct Blob<'a> {
    c: &'a AzureContainer,
    name: String,
}

/// `origin` of the container's endpoint (`scheme://host[:port]`).
pub(super) fn origin(c: &AzureContainer) -> String {
    let (scheme, rest) = c
        .endpoint
        .split_once("://")
        .unwrap_or(("https", &c.endpoint));
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// The block id of part `n` of upload `key` (base64, one length for all).
pub(super) fn block_id(key: &str, n: u64) -> String {
    B64.encode(format!("{key}-{n:05}"))
}

/// The part number a block id of upload `key` stands for (`None`: not one
/// of this upload's).
fn part_of(key: &str, id: &str) -> Option<u64> {
    let raw = B64.decode(id).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let (k, n) = text.rsplit_once('-')?;
    (k == key && n.len() == 5 && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse().ok())
        .flatten()
        .filter(|n| *n > 0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (SAS times).
fn iso_time(secs: u64) -> String {
    let d = amz_date(secs);
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &d[0..4],
        &d[4..6],
        &d[6..8],
        &d[9..11],
        &d[11..13],
        &d[13..15]
    )
}

fn hmac_b64(key_b64: &str, text: &str) -> Result<String> {
    let key = B64
        .decode(key_b64.trim())
        .map_err(|_| Error::invalid("the azblob account_key is not base64"))?;
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("any key length");
    m.update(text.as_bytes());
    Ok(B64.encode(m.finalize().into_bytes()))
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
        format!("{what}: the container answered {status} ({code})"),
    )
}

/// The service SAS string-to-sign (version 2020-12-06 and later) for write
/// access to blob `name`, until `expiry`, over `protocol` (`""` or `https`).
fn sas_string(c: &AzureContainer, name: &str, expiry: &str, protocol: &str) -> String {
    [
        "w",
        "",
        expiry,
        &format!("/blob/{}/{}/{name}", c.account_name, c.container),
        "",
        "",
        protocol,
        VERSION,
        "b",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ]
    .join("\n")
}

/// An answer of the service: status, headers, body text.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl<'a> Blob<'a> {
    /// Blob `key` below the connector's root.
    pub(super) fn new(c: &'a AzureContainer, key: &str) -> Blob<'a> {
        Blob {
            c,
            name: format!("{}{key}", c.root),
        }
    }

    /// The URL path after the host: the endpoint's path (an emulator's
    /// account), the container, the encoded name.
    fn path(&self) -> String {
        let rest = self.c.endpoint.split_once("://").map_or("", |(_, r)| r);
        let base = rest.find('/').map_or("", |i| &rest[i..]);
        format!(
            "{base}/{}/{}",
            encode(&self.c.container, false),
            encode(&self.name, true)
        )
    }

    fn url(&self) -> String {
        format!("{}/{}", origin(self.c), self.path().trim_start_matches('/'))
    }

    /// A URL at which a browser may `Put Block` part `n` of upload `key`
    /// into this blob, for [`PART_URL_LIFETIME`].
    pub(super) fn part_url(&self, key: &str, n: u64) -> Result<String> {
        let expiry = iso_time(now() + PART_URL_LIFETIME.as_secs());
        let protocol = if self.c.endpoint.starts_with("https://") {
            "https"
        } else {
            ""
        };
        let sig = hmac_b64(
            &self.c.account_key,
            &sas_string(self.c, &self.name, &expiry, protocol),
        )?;
        let mut url = format!(
            "{}?comp=block&blockid={}&sv={VERSION}&sr=b&sp=w&se={}",
            self.url(),
            encode(&block_id(key, n), false),
            encode(&expiry, false)
        );
        if !protocol.is_empty() {
            url.push_str("&spr=https");
        }
        url.push_str(&format!("&sig={}", encode(&sig, false)));
        Ok(url)
    }

    /// Sends a Shared Key-signed request with `query` and extra `x-ms-*`
    /// headers (lowercase names).
    async fn call(
        &self,
        method: &str,
        query: &[(&str, &str)],
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Answer> {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let mut ms = headers;
        ms.push(("x-ms-date".into(), date));
        ms.push(("x-ms-version".into(), VERSION.into()));
        ms.sort();
        let canon_headers: String = ms.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let mut q: Vec<(&str, &str)> = query.to_vec();
        q.sort();
        let mut resource = format!("/{}{}", self.c.account_name, self.path());
        for (k, v) in &q {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let len = if body.is_empty() {
            String::new()
        } else {
            body.len().to_string()
        };
        let to_sign = format!("{method}\n\n\n{len}\n\n\n\n\n\n\n\n\n{canon_headers}{resource}");
        let sig = hmac_b64(&self.c.account_key, &to_sign)?;
        let mut url = self.url();
        for (i, (k, v)) in q.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("{k}={}", encode(v, false)));
        }
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| Error::internal("bad method"))?;
        let mut req = http().request(method, url).body(body).header(
            "authorization",
            format!("SharedKey {}:{sig}", self.c.account_name),
        );
        for (k, v) in ms {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("the container did not answer: {}", e.without_url()),
            )
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Ok(Answer {
            status,
            headers,
            text,
        })
    }

    /// Every uncommitted block of this blob as (id, size); none when the
    /// blob does not exist (no block has arrived yet).
    async fn uncommitted(&self) -> Result<Vec<(String, u64)>> {
        let a = self
            .call(
                "GET",
                &[("blocklisttype", "uncommitted"), ("comp", "blocklist")],
                vec![],
                Vec::new(),
            )
            .await?;
        if a.status == 404 {
            return Ok(Vec::new());
        }
        if a.status != 200 {
            return Err(failed("listing the uploaded blocks", a.status, &a.text));
        }
        let list = tag(&a.text, "UncommittedBlocks").unwrap_or("");
        Ok(tags(list, "Block")
            .into_iter()
            .filter_map(|b| {
                let id = tag(b, "Name")?.trim().to_string();
                let size = tag(b, "Size")?.trim().parse().ok()?;
                Some((id, size))
            })
            .collect())
    }

    /// The parts of upload `key` this blob holds, by number (block ids of
    /// other uploads or forms are left out: they are never committed).
    pub(super) async fn parts(&self, key: &str) -> Result<Vec<DonePart>> {
        let mut out: Vec<DonePart> = self
            .uncommitted()
            .await?
            .into_iter()
            .filter_map(|(id, size)| {
                part_of(key, &id).map(|number| DonePart {
                    number,
                    size,
                    etag: id,
                })
            })
            .collect();
        // A block sent again replaces the first; keep the last listed.
        out.reverse();
        out.sort_by_key(|p| p.number);
        out.dedup_by_key(|p| p.number);
        Ok(out)
    }

    /// Put Block List: commits `parts` (as listed), in order.
    pub(super) async fn commit(&self, parts: &[DonePart]) -> Result<()> {
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for p in parts {
            xml.push_str(&format!("<Uncommitted>{}</Uncommitted>", p.etag));
        }
        xml.push_str("</BlockList>");
        let a = self
            .call("PUT", &[("comp", "blocklist")], vec![], xml.into_bytes())
            .await?;
        if a.status != 201 {
            return Err(failed("committing the blocks", a.status, &a.text));
        }
        Ok(())
    }

    /// Removes the blob and its uncommitted blocks: a blob with blocks only
    /// cannot be deleted (Azure drops such blocks after 7 days), so an empty
    /// block list is committed first, which discards them, and the blob is
    /// then deleted. Absent is fine.
    pub(super) async fn abort(&self) -> Result<()> {
        if !self.uncommitted().await?.is_empty() {
            self.commit(&[]).await?;
        }
        let a = self.call("DELETE", &[], vec![], Vec::new()).await?;
        match a.status {
            200..=299 | 404 => Ok(()),
            _ => Err(failed("removing the staged blob", a.status, &a.text)),
        }
    }

    /// Copy Blob of this blob to `to` inside the account, waiting (bounded)
    /// while the service reports the copy pending.
    pub(super) async fn copy_to(&self, to: &Blob<'_>) -> Result<()> {
        let a = to
            .call(
                "PUT",
                &[],
                vec![("x-ms-copy-source".into(), self.url())],
                Vec::new(),
            )
            .await?;
        if !(200..=299).contains(&a.status) {
            return Err(failed("copying the blob", a.status, &a.text));
        }
        let mut status = copy_status(&a.headers);
        let deadline = std::time::Instant::now() + COPY_WAIT;
        while status == "pending" && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let a = to.call("HEAD", &[], vec![], Vec::new()).await?;
            if a.status != 200 {
                return Err(failed("following the copy", a.status, &a.text));
            }
            status = copy_status(&a.headers);
        }
        match status.as_str() {
            "success" | "" => Ok(()),
            other => Err(Error::new(
                ErrorKind::Unavailable,
                format!("copying the blob: the container reports {other}"),
            )),
        }
    }
}

fn copy_status(h: &reqwest::header::HeaderMap) -> String {
    h.get("x-ms-copy-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_name_their_upload() {
        let key = "0123456789abcdef0123456789abcdef";
        let a = block_id(key, 1);
        assert_eq!(a.len(), block_id(key, 10_000).len());
        assert_eq!(part_of(key, &a), Some(1));
        assert_eq!(part_of(key, &block_id(key, 10_000)), Some(10_000));
        let other = "f123456789abcdef0123456789abcdef";
        assert_eq!(part_of(other, &a), None);
        assert_eq!(part_of(key, "bm90IG9uZQ=="), None);
    }

    #[test]
    fn times_and_places() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        let c = AzureContainer {
            endpoint: "http://127.0.0.1:10000/devstoreaccount1".into(),
            container: "wharf".into(),
            account_name: "devstoreaccount1".into(),
            account_key: "a2V5".into(),
            root: "r/".into(),
        };
        assert_eq!(origin(&c), "http://127.0.0.1:10000");
        let b = Blob::new(&c, ".wharf-partial/direct/k");
        assert_eq!(
            b.path(),
            "/devstoreaccount1/wharf/r/.wharf-partial/direct/k"
        );
        assert_eq!(
            b.url(),
            "http://127.0.0.1:10000/devstoreaccount1/wharf/r/.wharf-partial/direct/k"
        );
        assert!(sas_string(&c, &b.name, "E", "")
            .starts_with("w\n\nE\n/blob/devstoreaccount1/wharf/r/.wharf-partial/direct/k\n"));
        assert_eq!(sas_string(&c, "n", "E", "").split('\n').count(), 16);
        assert!(!b.part_url("k", 1).unwrap().contains("spr="));
    }

    /// On an HTTPS endpoint the SAS is for HTTPS only (and says so in the
    /// string it signs).
    #[test]
    fn https_endpoints_get_https_only_urls() {
        let c = AzureContainer {
            endpoint: "https://acct.blob.core.windows.net".into(),
            container: "files".into(),
            account_name: "acct".into(),
            account_key: "a2V5".into(),
            root: String::new(),
        };
        let b = Blob::new(&c, "x");
        let url = b.part_url("k", 2).unwrap();
        assert!(
            url.starts_with("https://acct.blob.core.windows.net/files/x?comp=block&blockid="),
            "{url}"
        );
        assert!(
            url.contains("&sr=b&sp=w&se=") && url.contains("&spr=https&sig="),
            "{url}"
        );
        assert!(sas_string(&c, "x", "E", "https").contains("\nhttps\n2020-12-06\nb\n"));
    }
}
