//! Resumable uploads over HTTP, speaking the tus 1.0 core protocol with its
//! `creation` and `termination` extensions (so any tus client works, and the
//! upload page's own script is one of them):
//!
//! - `OPTIONS <base>`: what the server supports;
//! - `POST <base>` with `Upload-Length` and `Upload-Metadata: filename <b64>`:
//!   declares an upload, `201` with its `Location`;
//! - `HEAD <base>/<key>`: how many bytes are safely stored (`Upload-Offset`);
//! - `PATCH <base>/<key>` with `Upload-Offset` and a body of
//!   `application/offset+octet-stream`: appends; when the last byte arrives the
//!   file is published and the answer carries `Wharf-File-Name` and
//!   `Wharf-Sha256`;
//! - `DELETE <base>/<key>`: cancels (a counted use is given back).
//!
//! Which link and uploader a request speaks for (a visitor's grant, or a staff
//! session) is decided by the caller and passed in as a [`Scope`]. Requests
//! need the `Tus-Resumable` header: a custom header cannot be sent cross-site
//! without a CORS preflight, which this server never grants.

use base64::Engine;
use http_body_util::BodyDataStream;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, LOCATION};
use hyper::{Response, StatusCode};
use percent_encoding::utf8_percent_encode;

use super::respond::text;
use super::respond::SEGMENT;
use super::{Body, HttpContext};
use crate::error::Error;
use crate::links::{LinkService, Uploader};
use crate::store::{now_ms, Link, Upload, UploadState};
use crate::uploads::AppendError;

pub const VERSION: &str = "1.0.0";

/// The link and the uploader a request acts for, and the URL uploads live under.
pub struct Scope {
    pub link: Link,
    pub uploader: Uploader,
    /// E.g. `/l/<token>/uploads`.
    pub base: String,
}

fn reply(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = text(status, message);
    tus_headers(r.headers_mut());
    r
}

fn tus_headers(h: &mut HeaderMap) {
    h.insert("tus-resumable", HeaderValue::from_static(VERSION));
}

fn set(r: &mut Response<Body>, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        r.headers_mut().insert(name, v);
    }
}

/// The answer for a refused operation, from the one public-reply table.
fn refusal(e: &Error) -> Response<Body> {
    crate::reply::log("tus", e);
    let status = StatusCode::from_u16(crate::reply::of(e.kind()).http)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(status, crate::reply::text(e))
}

/// Requests must speak tus 1.0 (and so cannot come from another site's form).
pub fn speaks_tus(headers: &HeaderMap) -> bool {
    headers
        .get("tus-resumable")
        .is_some_and(|v| v.as_bytes() == VERSION.as_bytes())
}

pub fn options(max_size: Option<u64>) -> Response<Body> {
    let mut r = reply(StatusCode::NO_CONTENT, "");
    set(&mut r, "tus-version", VERSION);
    set(&mut r, "tus-extension", "creation,termination");
    if let Some(m) = max_size {
        set(&mut r, "tus-max-size", m);
    }
    r
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The file name from `Upload-Metadata` (`filename` as tus clients send it).
fn file_name(headers: &HeaderMap) -> Option<String> {
    let meta = headers.get("upload-metadata")?.to_str().ok()?;
    meta.split(',').find_map(|pair| {
        let mut kv = pair.trim().splitn(2, ' ');
        let key = kv.next()?;
        let value = kv.next().unwrap_or("");
        if key != "filename" && key != "name" {
            return None;
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()?;
        String::from_utf8(raw).ok()
    })
}

pub async fn create(ctx: &HttpContext, scope: &Scope, headers: &HeaderMap) -> Response<Body> {
    let Some(size) = header_u64(headers, "upload-length") else {
        return reply(
            StatusCode::BAD_REQUEST,
            "Upload-Length is required (deferred lengths are not supported)",
        );
    };
    let Some(name) = file_name(headers) else {
        return reply(
            StatusCode::BAD_REQUEST,
            "Upload-Metadata must carry the file name (filename, base64)",
        );
    };
    // Refused before any byte moves, with the status that says so.
    if let Some(why) = crate::links::too_large(&scope.link, &name, size) {
        return reply(StatusCode::PAYLOAD_TOO_LARGE, &why);
    }
    let up = match ctx
        .service
        .upload_begin(&scope.link, &scope.uploader, &name, size)
        .await
    {
        Ok(up) => up,
        Err(e) => return refusal(&e),
    };
    let mut r = if size == 0 {
        // Nothing to send: complete at once.
        match ctx
            .service
            .upload_complete(&scope.link, &up, &scope.uploader)
            .await
        {
            Ok(file) => published(StatusCode::CREATED, 0, &file),
            Err(e) => return refusal(&e),
        }
    } else {
        reply(StatusCode::CREATED, "")
    };
    set(&mut r, "upload-offset", 0);
    let location = format!("{}/{}", scope.base, up.key);
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// Another visitor of the same link cannot see or continue an upload.
pub(super) fn owned_by(up: &Upload, link: &Link, grant: &str) -> bool {
    up.link_id == link.id && crate::secret::constant_time_eq(up.grant.as_bytes(), grant.as_bytes())
}

/// The upload named by `key`, if it belongs to this link and uploader.
async fn find(ctx: &HttpContext, scope: &Scope, key: &str) -> Result<Upload, Response<Body>> {
    let gone = || reply(StatusCode::NOT_FOUND, "No such upload.");
    if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(gone());
    }
    let up = ctx
        .service
        .uploads()
        .get(key)
        .await
        .ok()
        .flatten()
        .ok_or_else(gone)?;
    // Direct uploads (straight to the bucket) have their own endpoints.
    if !owned_by(&up, &scope.link, &scope.uploader.grant) || up.direct_id.is_some() {
        return Err(gone());
    }
    Ok(up)
}

pub async fn offset(ctx: &HttpContext, scope: &Scope, key: &str) -> Response<Body> {
    let up = match find(ctx, scope, key).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let at = match up.state {
        UploadState::Cancelled => return reply(StatusCode::GONE, "This upload was cancelled."),
        UploadState::Complete => up.size,
        UploadState::Open => match ctx.service.uploads().offset(&up).await {
            Ok(n) => n,
            Err(e) => return refusal(&e),
        },
    };
    let mut r = reply(StatusCode::OK, "");
    set(&mut r, "upload-offset", at);
    set(&mut r, "upload-length", up.size);
    if let (UploadState::Complete, Some(sha)) = (up.state, &up.sha256) {
        set(&mut r, "wharf-sha256", sha);
    }
    r
}

pub async fn append(
    ctx: &HttpContext,
    scope: &Scope,
    key: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Response<Body> {
    let up = match find(ctx, scope, key).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let octets = headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/offset+octet-stream");
    if !octets {
        return reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/offset+octet-stream",
        );
    }
    let Some(offset) = header_u64(headers, "upload-offset") else {
        return reply(StatusCode::BAD_REQUEST, "Upload-Offset is required");
    };
    match up.state {
        UploadState::Cancelled => return reply(StatusCode::GONE, "This upload was cancelled."),
        UploadState::Complete => {
            let mut r = reply(StatusCode::NO_CONTENT, "");
            set(&mut r, "upload-offset", up.size);
            return r;
        }
        UploadState::Open => {}
    }
    let uploads = ctx.service.uploads();
    let at = match uploads.append(&up, offset, BodyDataStream::new(body)).await {
        Ok(n) => n,
        Err(AppendError::Busy) => {
            return reply(
                StatusCode::LOCKED,
                "Another request is writing this upload; retry in a moment.",
            )
        }
        Err(AppendError::Offset(at)) => {
            let mut r = reply(
                StatusCode::CONFLICT,
                &format!("The upload stands at byte {at}; continue from there."),
            );
            set(&mut r, "upload-offset", at);
            return r;
        }
        Err(AppendError::TooLong) => {
            return reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "More bytes than the declared Upload-Length.",
            )
        }
        Err(AppendError::Failed(e)) => return refusal(&e),
    };
    if at < up.size {
        let mut r = reply(StatusCode::NO_CONTENT, "");
        set(&mut r, "upload-offset", at);
        return r;
    }
    match ctx
        .service
        .upload_complete(&scope.link, &up, &scope.uploader)
        .await
    {
        Ok(file) => published(StatusCode::NO_CONTENT, at, &file),
        Err(e) => {
            // The bytes stay staged: a PATCH at the final offset retries this.
            let mut r = refusal(&e);
            set(&mut r, "upload-offset", at);
            r
        }
    }
}

fn published(status: StatusCode, at: u64, file: &crate::store::LinkFile) -> Response<Body> {
    let mut r = reply(status, "");
    set(&mut r, "upload-offset", at);
    set(
        &mut r,
        "wharf-file-name",
        utf8_percent_encode(&file.name, SEGMENT),
    );
    if let Some(sha) = &file.sha256 {
        set(&mut r, "wharf-sha256", sha);
    }
    r
}

pub async fn cancel(ctx: &HttpContext, scope: &Scope, key: &str) -> Response<Body> {
    let up = match find(ctx, scope, key).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    if up.state == UploadState::Complete {
        return reply(
            StatusCode::CONFLICT,
            "This upload is complete; ask the link's owner to remove the file.",
        );
    }
    match ctx.service.uploads().cancel(&up).await {
        Ok(_) => reply(StatusCode::NO_CONTENT, ""),
        Err(e) => refusal(&e),
    }
}

/// Whether the visitor's upload `key` is open and holds one of the link's
/// uses (so a request used up by uploads in flight still takes their bytes).
pub async fn holds_use(ctx: &HttpContext, link: &Link, grant: &str, key: &str) -> bool {
    let up = ctx.service.uploads().get(key).await.ok().flatten();
    up.is_some_and(|u| owned_by(&u, link, grant) && u.state == UploadState::Open && u.counted)
        && LinkService::accepts_uploads(link, now_ms(), true)
}
