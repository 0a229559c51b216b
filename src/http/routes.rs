//! Request routing of the link server: static files, the API, the staff pages
//! and the link pages. Every response leaves through [`super::respond::protect`].

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::respond::{not_found, page, protect};
use super::{assets, direct_upload, download, landing, staff, upload, zip, Body, HttpContext};

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
        ["l", token, "direct", rest @ ..] => {
            direct_upload::route(ctx, peer, token, rest, m, h, body).await
        }
        ["l", token] | ["l", token, ""] if get => landing::landing(ctx, peer, token, h, head).await,
        ["l", token, "password"] if post => landing::password(ctx, peer, token, h, body).await,
        ["l", token, "email"] if post => landing::email(ctx, peer, token, h, body).await,
        ["l", token, "code"] if post => landing::code(ctx, peer, token, h, body).await,
        ["l", token, "f", rest @ ..] if get && !rest.is_empty() => {
            let outlet = parts.extensions.get::<super::sendfile::Outlet>();
            download::item(ctx, peer, token, rest, h, head, outlet).await
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
