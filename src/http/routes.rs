//! Request routing and the responses of the link server. Every response carries
//! the same protective headers; pages are never cached (the token is in the URL).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::pages::{self, Brand};
use super::{assets, download, staff, upload, visit, zip, Body, HttpContext};
use crate::audit::{AuditEvent, Outcome};
use crate::policy::links::Status;
use crate::policy::Protocol;
use crate::store::Link;

pub async fn handle(ctx: &HttpContext, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // Each area below takes the whole request; the rest are the link pages.
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    let mut resp = match segs.as_slice() {
        ["static", name] if get => assets::serve(ctx, name).await,
        ["api", "v1", ..] => crate::api::handle(ctx, peer, req).await,
        ["app", ..] => staff::handle(ctx, peer, req).await,
        _ => link_pages(ctx, peer, &segs, req).await,
    };
    protect(resp.headers_mut());
    resp
}

/// What outside parties open: `/l/{token}/...`, static files, the front page.
async fn link_pages(
    ctx: &HttpContext,
    peer: SocketAddr,
    segs: &[&str],
    req: Request<Incoming>,
) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    let get = req.method() == Method::GET || head;
    let post = req.method() == Method::POST;
    let (parts, body) = req.into_parts();
    let h = &parts.headers;
    let m = &parts.method;
    match segs {
        ["l", token, "uploads"] => upload::route(ctx, peer, token, None, m, h, body).await,
        ["l", token, "uploads", key] => {
            upload::route(ctx, peer, token, Some(key), m, h, body).await
        }
        ["l", token] | ["l", token, ""] if get => visit::landing(ctx, peer, token, h, head).await,
        ["l", token, "password"] if post => visit::password(ctx, peer, token, h, body).await,
        ["l", token, "email"] if post => visit::email(ctx, peer, token, h, body).await,
        ["l", token, "code"] if post => visit::code(ctx, peer, token, h, body).await,
        ["l", token, "f", rest @ ..] if get && !rest.is_empty() => {
            download::item(ctx, peer, token, rest, h, head).await
        }
        ["l", token, "zip"] if get => zip::all(ctx, peer, token, h, head).await,
        [""] if get => page(
            ctx,
            StatusCode::OK,
            "wharf",
            "This server shares files through links.",
        ),
        _ if get || post => not_found(ctx),
        _ => page(
            ctx,
            StatusCode::METHOD_NOT_ALLOWED,
            "Not allowed",
            "This request is not allowed here.",
        ),
    }
}

/// Headers on every response: no sniffing, no referrer (the token is in the URL),
/// a strict content policy, never cached, never framed.
fn protect(h: &mut hyper::HeaderMap) {
    let set = |h: &mut hyper::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(
        h,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-frame-options", "DENY");
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

pub(super) fn brand(ctx: &HttpContext) -> Brand {
    Brand {
        product: ctx.config.product_name.clone(),
        accent: ctx.config.accent.clone(),
        logo: ctx.config.logo.is_some(),
    }
}

/// A complete answer of `content_type`.
fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(super) fn html(status: StatusCode, body: String) -> Response<Body> {
    full(status, "text/html; charset=utf-8", body)
}

/// A short plain-text answer (for scripts and API clients).
pub(super) fn text(status: StatusCode, message: &str) -> Response<Body> {
    full(status, "text/plain; charset=utf-8", message.to_string())
}

/// A JSON answer: the API's, and the staff pages' script endpoints'.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    full(status, "application/json", value.to_string())
}

pub(super) fn page(
    ctx: &HttpContext,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response<Body> {
    html(status, pages::notice(&brand(ctx), title, text))
}

pub(super) fn not_found(ctx: &HttpContext) -> Response<Body> {
    page(
        ctx,
        StatusCode::NOT_FOUND,
        "Link not found",
        "This link does not exist. Check that you copied all of it.",
    )
}

/// The answer when the database or storage fails: the link may be fine, so the
/// visitor is told to come back, never that the link does not exist. The error
/// goes to the log only.
pub(super) fn try_again(ctx: &HttpContext, e: &crate::error::Error) -> Response<Body> {
    crate::reply::log("link", e);
    let mut r = page(
        ctx,
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again later",
        "This page cannot be shown right now. Please try again in a few minutes.",
    );
    r.headers_mut()
        .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("30"));
    r
}

/// The answer for a link that has ended (audited unless it is a HEAD request).
pub(super) async fn refused(
    ctx: &HttpContext,
    peer: SocketAddr,
    link: &Link,
    status: Status,
    head: bool,
) -> Response<Body> {
    if !head {
        audit(
            ctx,
            peer,
            link,
            "link_refused",
            Outcome::Denied,
            Some(status.as_str().into()),
        )
        .await;
    }
    ended_page(ctx, status)
}

pub(super) fn ended_page(ctx: &HttpContext, status: Status) -> Response<Body> {
    let text = match status {
        Status::Expired => "This link has expired. Ask the sender for a new one.",
        Status::Exhausted => {
            "This link has been used as many times as allowed. Ask the sender for a new one."
        }
        Status::Revoked => "The sender has withdrawn this link.",
        Status::Draft => "The files for this link are still being prepared. Try again in a moment.",
        Status::Active => "This link is available.",
    };
    let code = if status == Status::Draft {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::GONE
    };
    page(ctx, code, "Link not available", text)
}

pub(super) async fn audit(
    ctx: &HttpContext,
    peer: SocketAddr,
    link: &Link,
    action: &str,
    outcome: Outcome,
    detail: Option<String>,
) {
    let mut ev = AuditEvent::new(Protocol::Http, action)
        .remote(peer)
        .path(format!("link:{}", link.public_id))
        .outcome(outcome);
    if let Some(d) = detail {
        ev = ev.detail(d);
    }
    ctx.audit.record(ev).await;
}

/// 303 to a page of this server (after a form, or to the form a link needs).
pub(super) fn redirect(to: &str) -> Response<Body> {
    let mut r = html(StatusCode::SEE_OTHER, String::new());
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(hyper::header::LOCATION, v);
    }
    r
}
