//! Direct uploads for visitors of an upload request whose folder lies on an
//! S3 or Azure Blob connector with `direct_uploads = true` (the page says so with
//! `data-direct`), and for staff sending from `/app/send` when the transfer
//! store is such a connector: the browser sends the bytes to the bucket,
//! these JSON endpoints under `/l/<token>/direct` (or
//! `/app/send/<draft>/direct`) hand out what it needs. The link's
//! rules and the visitor's grant are checked exactly as for tus
//! (`upload::scope`); only the grant that began an upload may continue it.
//!
//! - `POST <base>` `{"name","size"}`: begins one; `201 {"key","part_size","parts"}`;
//! - `POST <base>/<key>/urls` `{"parts":[n,...]}`: presigned part URLs,
//!   `{"urls":{"n":url},"expires_in":s}`;
//! - `GET <base>/<key>`: its state and the parts the bucket holds (resume);
//! - `POST <base>/<key>/complete` `{"sha256"}`: checks and publishes it in a
//!   task of its own; answers when done (`200 {"name","sha256"}`, or `422`
//!   with the reason), or `202` if that takes long (poll `GET`);
//! - `DELETE <base>/<key>`: cancels (the multipart upload is aborted).
//!
//! Requests need `Wharf-Direct: 1`: a custom header cannot be sent cross-site
//! without a CORS preflight, which this server never grants.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Response, StatusCode};
use serde_json::json;

use super::respond::{json, text};
use super::tus::{owned_by, Scope};
use super::upload::{request_visit, scope};
use super::{Body, HttpContext};
use crate::error::Error;
use crate::links::Verdict;
use crate::store::{Upload, UploadState};

/// How long `complete` waits for the check before answering `202`.
const COMPLETE_WAIT: Duration = Duration::from_secs(20);
const MAX_BODY: usize = 16 << 10;

fn refusal(e: &Error) -> Response<Body> {
    crate::reply::log("direct upload", e);
    let status = StatusCode::from_u16(crate::reply::of(e.kind()).http)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &json!({ "error": crate::reply::text(e) }))
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &json!({ "error": message }))
}

async fn read_json(body: Incoming) -> Result<serde_json::Value, Response<Body>> {
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| error(StatusCode::PAYLOAD_TOO_LARGE, "The request is too large."))?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|_| error(StatusCode::BAD_REQUEST, "The request is not JSON."))
}

/// `/l/<token>/direct[/<key>[/urls|/complete]]`.
pub async fn route(
    ctx: &HttpContext,
    peer: SocketAddr,
    token: &str,
    rest: &[&str],
    method: &Method,
    headers: &HeaderMap,
    body: Incoming,
) -> Response<Body> {
    let v = match request_visit(ctx, token, headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !asked(headers) {
        return text(
            StatusCode::PRECONDITION_FAILED,
            "Direct uploads need the Wharf-Direct: 1 header; use the link's page.",
        );
    }
    let key = rest.first().copied();
    let scope = match scope(ctx, peer, &v, key, "direct").await {
        Ok(s) => s,
        Err(r) => match finished(ctx, peer, &v, key, method).await {
            Some(s) => s,
            None => return r,
        },
    };
    dispatch(ctx, &scope, rest, method, body).await
}

/// The scope of the visitor's own finished upload `key` on a link that takes
/// no more (its last use was that upload): asking for its state, or
/// completing it again after a lost answer, still tells them it arrived.
async fn finished(
    ctx: &HttpContext,
    peer: SocketAddr,
    v: &super::visit::Visit,
    key: Option<&str>,
    method: &Method,
) -> Option<Scope> {
    if !matches!(*method, Method::GET | Method::POST) {
        return None;
    }
    let (grant, key) = (v.grant.as_ref()?, key?);
    let up = ctx.service.uploads().get(key).await.ok()??;
    let mine = owned_by(&up, &v.link, &grant.id) && up.direct_id.is_some();
    (mine && up.state == UploadState::Complete).then(|| Scope {
        link: v.link.clone(),
        uploader: crate::links::Uploader {
            grant: grant.id.clone(),
            remote: Some(peer),
            email: grant.email.clone(),
        },
        base: format!("{}/direct", v.base()),
    })
}

/// Whether a request carries `Wharf-Direct: 1`.
pub fn asked(headers: &HeaderMap) -> bool {
    headers.get("wharf-direct").map(|h| h.as_bytes()) == Some(b"1")
}

/// The endpoints below `scope.base`, once the caller has decided who may use
/// them (a visitor's grant on a request, a staff member on their draft).
pub async fn dispatch(
    ctx: &HttpContext,
    scope: &Scope,
    rest: &[&str],
    method: &Method,
    body: Incoming,
) -> Response<Body> {
    match (method, rest) {
        (&Method::POST, []) => begin(ctx, scope, body).await,
        (m, [key, tail @ ..]) => {
            let up = match find(ctx, scope, key).await {
                Ok(u) => u,
                Err(r) => return r,
            };
            match (m, tail) {
                (&Method::GET, []) => state(ctx, scope, &up).await,
                (&Method::POST, ["urls"]) => urls(ctx, scope, &up, body).await,
                (&Method::POST, ["complete"]) => complete(ctx, scope, up, body).await,
                (&Method::DELETE, []) => cancel(ctx, &up).await,
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "Not allowed here."),
            }
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "Not allowed here."),
    }
}

/// The direct upload named by `key`, if it is this visitor's.
async fn find(ctx: &HttpContext, scope: &Scope, key: &str) -> Result<Upload, Response<Body>> {
    let gone = || error(StatusCode::NOT_FOUND, "No such upload.");
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
    if !owned_by(&up, &scope.link, &scope.uploader.grant) || up.direct_id.is_none() {
        return Err(gone());
    }
    Ok(up)
}

async fn begin(ctx: &HttpContext, scope: &Scope, body: Incoming) -> Response<Body> {
    let req = match read_json(body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (Some(name), Some(size)) = (req["name"].as_str(), req["size"].as_u64()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Give the file's name and size: {\"name\": ..., \"size\": ...}.",
        );
    };
    if let Some(why) = crate::links::too_large(&scope.link, name, size) {
        return error(StatusCode::PAYLOAD_TOO_LARGE, &why);
    }
    match ctx
        .service
        .direct_begin(&scope.link, &scope.uploader, name, size)
        .await
    {
        Ok(d) => json(
            StatusCode::CREATED,
            &json!({
                "key": d.upload.key,
                "location": format!("{}/{}", scope.base, d.upload.key),
                "part_size": d.part_size,
                "parts": d.parts,
                "size": size,
            }),
        ),
        Err(e) => refusal(&e),
    }
}

async fn urls(ctx: &HttpContext, scope: &Scope, up: &Upload, body: Incoming) -> Response<Body> {
    let req = match read_json(body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(numbers) = req["parts"]
        .as_array()
        .and_then(|a| a.iter().map(|n| n.as_u64()).collect::<Option<Vec<u64>>>())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "Give the part numbers: {\"parts\": [1, 2, ...]}.",
        );
    };
    match ctx
        .service
        .direct_part_urls(&scope.link, up, &scope.uploader, &numbers)
        .await
    {
        Ok(urls) => {
            let map: serde_json::Map<String, serde_json::Value> = urls
                .into_iter()
                .map(|(n, u)| (n.to_string(), json!(u)))
                .collect();
            json(
                StatusCode::OK,
                &json!({
                    "urls": map,
                    "expires_in": crate::vfs::PART_URL_LIFETIME.as_secs(),
                }),
            )
        }
        Err(e) => refusal(&e),
    }
}

/// The answer about a finished upload, from its row.
fn done(up: &Upload) -> serde_json::Value {
    let name = up
        .path
        .as_deref()
        .and_then(|p| p.rsplit('/').next())
        .unwrap_or(&up.name);
    json!({ "state": "complete", "name": name, "sha256": up.sha256 })
}

fn published(file: &crate::store::LinkFile) -> Response<Body> {
    json(
        StatusCode::OK,
        &json!({ "state": "complete", "name": file.name, "sha256": file.sha256 }),
    )
}

async fn state(ctx: &HttpContext, scope: &Scope, up: &Upload) -> Response<Body> {
    match ctx.service.direct_verdict(&up.key).await {
        Some(Verdict::Verifying) => return json(StatusCode::OK, &json!({ "state": "verifying" })),
        Some(Verdict::Published(f)) => return published(&f),
        Some(Verdict::Failed(why)) if up.state != UploadState::Open => {
            return json(StatusCode::OK, &json!({ "state": "failed", "error": why }))
        }
        _ => {}
    }
    match up.state {
        UploadState::Complete => return json(StatusCode::OK, &done(up)),
        UploadState::Cancelled => {
            return json(StatusCode::OK, &json!({ "state": "cancelled" }));
        }
        UploadState::Open => {}
    }
    match ctx
        .service
        .direct_parts(&scope.link, up, &scope.uploader)
        .await
    {
        Ok(parts) => {
            let ps = crate::vfs::part_size(up.size);
            let done: Vec<_> = parts
                .iter()
                .map(|p| json!({ "number": p.number, "size": p.size }))
                .collect();
            json(
                StatusCode::OK,
                &json!({
                    "state": "open",
                    "size": up.size,
                    "part_size": ps,
                    "parts": crate::vfs::part_count(up.size, ps),
                    "done": done,
                }),
            )
        }
        Err(e) => refusal(&e),
    }
}

async fn complete(ctx: &HttpContext, scope: &Scope, up: Upload, body: Incoming) -> Response<Body> {
    let req = match read_json(body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(sha) = req["sha256"].as_str().map(str::to_string) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Give the file's SHA-256: {\"sha256\": \"...\"}.",
        );
    };
    if up.state == UploadState::Complete {
        return json(StatusCode::OK, &done(&up));
    }
    if !ctx.service.direct_claim(&up.key) {
        return json(StatusCode::ACCEPTED, &json!({ "state": "verifying" }));
    }
    // Off the request path: reading the object back takes as long as the
    // file is large, and must finish even if the visitor goes away.
    let service: Arc<crate::links::LinkService> = ctx.service.clone();
    let (link, who) = (scope.link.clone(), scope.uploader.clone());
    let task = tokio::spawn(async move { service.direct_complete(&link, &up, &who, &sha).await });
    match tokio::time::timeout(COMPLETE_WAIT, task).await {
        Ok(Ok(Ok(file))) => published(&file),
        Ok(Ok(Err(e))) => {
            let mut r = refusal(&e);
            if r.status() == StatusCode::BAD_REQUEST {
                *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            }
            r
        }
        Ok(Err(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, "The check failed."),
        Err(_) => json(StatusCode::ACCEPTED, &json!({ "state": "verifying" })),
    }
}

async fn cancel(ctx: &HttpContext, up: &Upload) -> Response<Body> {
    if up.state == UploadState::Complete {
        return error(
            StatusCode::CONFLICT,
            "This upload is complete; ask the link's owner to remove the file.",
        );
    }
    match ctx.service.direct_cancel(up).await {
        Ok(_) => text(StatusCode::NO_CONTENT, ""),
        Err(e) => refusal(&e),
    }
}
