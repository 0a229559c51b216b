//! Static files of the link server: the scripts and styles compiled into the
//! binary (pages allow no inline script), and the operator's logo.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;

use super::respond::not_found;
use super::{Body, HttpContext};

/// Name, content type, bytes.
const EMBEDDED: &[(&str, &str, &str)] = &[
    ("copy.js", JS, include_str!("static/copy.js")),
    ("upload.js", JS, include_str!("static/upload.js")),
    ("sha256.js", JS, include_str!("static/sha256.js")),
    ("send.js", JS, include_str!("static/send.js")),
    ("countdown.js", JS, include_str!("static/countdown.js")),
    ("contacts.js", JS, include_str!("static/contacts.js")),
    ("localtime.js", JS, include_str!("static/localtime.js")),
];

const JS: &str = "text/javascript; charset=utf-8";

pub async fn serve(ctx: &HttpContext, name: &str) -> Response<Body> {
    if name == "logo" {
        return logo(ctx).await;
    }
    match EMBEDDED.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, text)) => bytes(kind, Bytes::from_static(text.as_bytes())),
        None => not_found(ctx),
    }
}

fn bytes(kind: &'static str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    r
}

/// The configured logo, read on each request (it is small and rarely asked for).
async fn logo(ctx: &HttpContext) -> Response<Body> {
    let Some(path) = &ctx.config.logo else {
        return not_found(ctx);
    };
    let kind = match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    match tokio::fs::read(path).await {
        Ok(data) => bytes(kind, Bytes::from(data)),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "reading the logo");
            not_found(ctx)
        }
    }
}
