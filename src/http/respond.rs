//! The link server's responses: protective headers on every one, pages never
//! cached (the token is in the URL), and the small answers every handler shares
//! (pages, redirects, refusals, "try again"). A leaf under the router: handlers
//! and the API use it, it uses none of them.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

use super::pages::{self, Brand};
use super::{Body, HttpContext};
use crate::audit::{AuditEvent, Outcome};
use crate::policy::links::Status;
use crate::policy::Protocol;
use crate::store::Link;

/// A URL path segment: unreserved characters stay.
pub const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Headers on every response: no sniffing, no referrer (the token is in the URL),
/// a strict content policy, never cached, never framed.
pub(super) fn protect(h: &mut hyper::HeaderMap) {
    let set = |h: &mut hyper::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    // A page may have widened `connect-src` (`allow_connect`); nothing else.
    if !h.contains_key("content-security-policy") {
        let csp = HeaderValue::from_str(&CSP.replace("{connect}", "")).expect("a valid header");
        h.insert("content-security-policy", csp);
    }
    set(h, "x-frame-options", "DENY");
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'{connect}; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The content policy, letting the page's scripts also reach `origin` (the
/// bucket of direct uploads; plain URL characters only, checked by the caller).
pub(crate) fn allow_connect(h: &mut hyper::HeaderMap, origin: &str) {
    if let Ok(v) = HeaderValue::from_str(&CSP.replace("{connect}", &format!(" {origin}"))) {
        h.insert("content-security-policy", v);
    }
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
        .link(&link.public_id)
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
