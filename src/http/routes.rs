//! Request routing and the responses of the link server. Every response carries
//! the same protective headers; pages are never cached (the token is in the URL).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::pages::{self, Brand};
use super::{Body, HttpContext};
use crate::audit::{AuditEvent, Outcome};
use crate::links::{rules_of, token};
use crate::policy::links::{gate, Gate, Proof, Status};
use crate::policy::Protocol;
use crate::store::{now_ms, Link};

pub async fn handle(ctx: &HttpContext, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut resp = match (req.method(), segs.as_slice()) {
        (&Method::GET | &Method::HEAD, ["l", token]) => landing(ctx, peer, token, req.method() == Method::HEAD).await,
        (&Method::GET | &Method::HEAD, ["l", _, "f", _]) => page(
            ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            "Download not available yet",
            "This server does not serve downloads yet. Ask the sender to use SFTP or FTPS meanwhile.",
        ),
        (&Method::GET | &Method::HEAD, [""]) => page(ctx, StatusCode::OK, "wharf", "This server shares files through links."),
        (&Method::GET | &Method::HEAD, _) => not_found(ctx),
        _ => page(ctx, StatusCode::METHOD_NOT_ALLOWED, "Not allowed", "This request is not allowed here."),
    };
    protect(resp.headers_mut());
    resp
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
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-frame-options", "DENY");
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn brand(ctx: &HttpContext) -> Brand {
    Brand {
        product: ctx.config.product_name.clone(),
        accent: ctx.config.accent.clone(),
    }
}

fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn page(ctx: &HttpContext, status: StatusCode, title: &str, text: &str) -> Response<Body> {
    html(status, pages::notice(&brand(ctx), title, text))
}

fn not_found(ctx: &HttpContext) -> Response<Body> {
    page(
        ctx,
        StatusCode::NOT_FOUND,
        "Link not found",
        "This link does not exist. Check that you copied all of it.",
    )
}

/// The link for a token from a URL, if the token is well-formed and known.
async fn find(ctx: &HttpContext, token: &str) -> Option<Link> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hash = token::hash(token);
    ctx.db
        .run(move |s| s.link_by_token_hash(&hash))
        .await
        .ok()
        .flatten()
}

fn ended_page(ctx: &HttpContext, status: Status) -> Response<Body> {
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

async fn audit(
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

async fn landing(ctx: &HttpContext, peer: SocketAddr, token: &str, head: bool) -> Response<Body> {
    let Some(link) = find(ctx, token).await else {
        return not_found(ctx);
    };
    let proof = Proof::default();
    match gate(&rules_of(&link), &proof, now_ms()) {
        Gate::Closed(status) => {
            audit(ctx, peer, &link, "link_refused", Outcome::Denied, Some(status.as_str().into())).await;
            ended_page(ctx, status)
        }
        Gate::Password | Gate::Email => page(
            ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            "Protected link",
            "This link is protected by a password or an e-mail check, which this server cannot verify yet.",
        ),
        Gate::Open => {
            if !head {
                audit(ctx, peer, &link, "link_open", Outcome::Ok, None).await;
            }
            let id = link.id;
            let files = ctx.db.run(move |s| s.link_files(id)).await.unwrap_or_default();
            html(StatusCode::OK, pages::landing(&brand(ctx), &link, &files, &format!("/l/{token}")))
        }
    }
}
