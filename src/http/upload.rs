//! Upload requests for visitors: the upload page (the rules passed, a grant in
//! hand) and `/l/<token>/uploads[/<key>]`, the tus endpoints, which act for the
//! visitor's grant only. The bytes and their publishing are `tus.rs`,
//! `uploads` and `links::inbound`.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Response, StatusCode};

use super::pages::{self, esc, human_size};
use super::respond::{audit, brand, html, not_found, text};
use super::tus::{self, Scope};
use super::visit::{visit, Visit};
use super::{Body, HttpContext};
use crate::audit::Outcome;
use crate::links::Uploader;
use crate::policy::links::{Gate, Status};
use crate::policy::Op;
use crate::store::{format_ms, Link, LinkKind};

/// The page of an open upload request; gives the visitor a grant if they had
/// none (their uploads are bound to it).
pub async fn page(ctx: &HttpContext, peer: SocketAddr, v: &Visit, head: bool) -> Response<Body> {
    // A creator who may no longer take files (gone, disabled, `write` taken
    // away) ends the request: said at once, not after a file was sent.
    if let Err(why) = super::target::creator_may(ctx, &v.link, Op::Write, peer).await {
        let said = "This link no longer accepts files. Ask the sender for a new one.";
        return super::download::gone(ctx, peer, v, why, said).await;
    }
    if !head {
        audit(ctx, peer, &v.link, "link_open", Outcome::Ok, None).await;
    }
    let (_, cookie) = v.grant_or_new(ctx);
    let origin = ctx.service.direct_uploads(&v.link).await;
    let direct = origin.as_ref().map(|_| format!("{}/direct", v.base()));
    let body = request_page(&v.link, &format!("{}/uploads", v.base()), direct.as_deref());
    let scripts: &[&str] = if direct.is_some() {
        &["sha256.js", "upload.js"]
    } else {
        &["upload.js"]
    };
    let mut r = html(
        StatusCode::OK,
        pages::layout_with_scripts(&brand(ctx), title(&v.link), &body, scripts),
    );
    if let Some(o) = origin {
        super::respond::allow_connect(r.headers_mut(), &o);
    }
    if let Some(c) = cookie {
        v.set_grant(ctx, r.headers_mut(), &c);
    }
    r
}

fn title(link: &Link) -> &str {
    if link.title.is_empty() {
        "Upload files"
    } else {
        &link.title
    }
}

fn request_page(link: &Link, endpoint: &str, direct: Option<&str>) -> String {
    let inbound = link.inbound.as_ref();
    // Pieces of HTML (each value escaped): the count left is a live element
    // that upload.js keeps counting down as files are sent.
    let mut limits = Vec::new();
    if let Some(n) = link.max_uses {
        let left = n.saturating_sub(link.uses);
        limits.push(format!(
            "up to {n} file(s), <span id=\"left\" data-left=\"{left}\">{left}</span> left"
        ));
    }
    if let Some(m) = inbound.and_then(|i| i.max_size) {
        limits.push(format!("each up to {}", esc(&human_size(m))));
    }
    if let Some(t) = link.expires_at {
        limits.push(format!("until {}", esc(&format_ms(t))));
    }
    let limits = if limits.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"muted\">You can upload {}.</p>",
            limits.join(", ")
        )
    };
    let message = if link.message.is_empty() {
        String::new()
    } else {
        format!(
            "<p style=\"white-space:pre-wrap\">{}</p>",
            esc(&link.message)
        )
    };
    format!(
        "<h1>{title}</h1><p class=\"muted\">{owner} asks you to upload files.</p>{message}{limits}{widget}",
        title = esc(title(link)),
        owner = esc(&link.owner),
        widget = request_widget(endpoint, inbound.and_then(|i| i.max_size), link.max_uses, direct),
    )
}

/// The widget of an upload request: a finished file is the sender's (published
/// into their folder), so the page says removing it only clears the list.
/// With `direct`, files go straight to the bucket through that endpoint.
fn request_widget(
    endpoint: &str,
    max_size: Option<u64>,
    max_files: Option<u32>,
    direct: Option<&str>,
) -> String {
    let mut extra = " data-complete=\"kept\"".to_string();
    if let Some(d) = direct {
        extra.push_str(&format!(" data-direct=\"{}\"", esc(d)));
    }
    widget_with(endpoint, max_size, max_files, &extra)
}

/// The drop zone, picker and per-file list that `static/upload.js` drives.
pub fn widget(endpoint: &str, max_size: Option<u64>, max_files: Option<u32>) -> String {
    widget_with(endpoint, max_size, max_files, "")
}

fn widget_with(
    endpoint: &str,
    max_size: Option<u64>,
    max_files: Option<u32>,
    extra: &str,
) -> String {
    let mut data = format!("data-endpoint=\"{}\"{extra}", esc(endpoint));
    if let Some(m) = max_size {
        data.push_str(&format!(" data-max-size=\"{m}\""));
    }
    if let Some(n) = max_files {
        data.push_str(&format!(" data-max-files=\"{n}\""));
    }
    format!(
        "<style>{WIDGET_STYLE}</style>\
         <div id=\"uploader\" {data}>\
         <div id=\"drop\" class=\"drop\"><p>Drag files here, or</p>\
         <label class=\"pick\">Choose files<input id=\"pick\" type=\"file\" multiple></label></div>\
         <ul id=\"queue\" class=\"queue\" aria-live=\"polite\"></ul>\
         <noscript><p class=\"err\">Uploading needs JavaScript.</p></noscript></div>"
    )
}

const WIDGET_STYLE: &str = "[hidden]{display:none!important}.drop{border:2px dashed #9aa1ad;border-radius:.75rem;padding:1.5rem;text-align:center;margin:1rem 0}\
.drop.over{border-color:#1d1f23;background:#eef0f3}.drop p{margin:.25rem}\
label.pick{display:inline-block;font-weight:600;cursor:pointer;text-decoration:underline}\
label.pick input{position:absolute;width:1px;height:1px;opacity:0}\
.queue{list-style:none;padding:0;margin:0}.item{border-top:1px solid #e3e5e9;padding:.6rem 0}\
.item .head{display:flex;justify-content:space-between;gap:1rem}.item .name{font-weight:600;word-break:break-all}\
.item .state{font-size:.85rem;color:#5b6270}.item[data-state=complete] .state{color:#1a7f37}\
.item[data-state=failed] .state,.item[data-state=failed] .info{color:#a4161a}\
.barline{display:flex;align-items:center;gap:.5rem}.barline progress{flex:1;height:.9rem}\
.pct{font-size:.85rem;min-width:3rem;text-align:right}.info{font-size:.85rem;color:#5b6270}\
.hash{font-family:monospace;font-size:.75rem;color:#5b6270;word-break:break-all}\
.actions button{font-size:.85rem;padding:.3rem .7rem;margin:.3rem .3rem 0 0}";

/// `/l/<token>/uploads` and `/l/<token>/uploads/<key>`.
pub async fn route(
    ctx: &HttpContext,
    peer: SocketAddr,
    token: &str,
    key: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    body: Incoming,
) -> Response<Body> {
    let v = match request_visit(ctx, token, headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if method == Method::OPTIONS {
        return tus::options(v.link.inbound.as_ref().and_then(|i| i.max_size));
    }
    if !tus::speaks_tus(headers) {
        return text(
            StatusCode::PRECONDITION_FAILED,
            "Uploads speak tus 1.0 (Tus-Resumable: 1.0.0); use the link's page.",
        );
    }
    let scope = match scope(ctx, peer, &v, key, "uploads").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match (method, key) {
        (&Method::POST, None) => tus::create(ctx, &scope, headers).await,
        (&Method::HEAD, Some(k)) => tus::offset(ctx, &scope, k).await,
        (&Method::PATCH, Some(k)) => tus::append(ctx, &scope, k, headers, body).await,
        (&Method::DELETE, Some(k)) => tus::cancel(ctx, &scope, k).await,
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "Not allowed here."),
    }
}

/// The visit of an upload request's token (another kind of link: not found).
pub(super) async fn request_visit(
    ctx: &HttpContext,
    token: &str,
    headers: &HeaderMap,
) -> Result<Visit, Response<Body>> {
    match visit(ctx, token, headers).await {
        Ok(v) if v.link.kind == LinkKind::Request => Ok(v),
        Ok(_) => Err(not_found(ctx)),
        Err(r) => Err(r),
    }
}

/// The scope of an upload request (tus or direct, under `/l/<token>/<area>`):
/// the visitor's grant, and the link's rules. New uploads need the link
/// open; an upload (`key`) already holding a use may finish even if that use
/// was the last one.
pub(super) async fn scope(
    ctx: &HttpContext,
    peer: SocketAddr,
    v: &Visit,
    key: Option<&str>,
    area: &str,
) -> Result<Scope, Response<Body>> {
    let Some(grant) = v.grant.clone() else {
        return Err(text(
            StatusCode::FORBIDDEN,
            "Open the link's page first (cookies must be allowed).",
        ));
    };
    let scope = Scope {
        link: v.link.clone(),
        uploader: Uploader {
            grant: grant.id.clone(),
            remote: Some(peer),
            email: grant.email.clone(),
        },
        base: format!("{}/{area}", v.base()),
    };
    let open = match &v.gate {
        Gate::Open => true,
        Gate::Closed(Status::Exhausted) if key.is_some() => {
            if !tus::holds_use(ctx, &v.link, &grant.id, key.unwrap_or_default()).await {
                return Err(text(StatusCode::NOT_FOUND, "No such upload."));
            }
            true
        }
        Gate::Closed(Status::Exhausted) => {
            return Err(text(
                StatusCode::GONE,
                "This link has received as many files as it accepts.",
            ))
        }
        Gate::Closed(_) => false,
        Gate::Password | Gate::Email => {
            return Err(text(
                StatusCode::FORBIDDEN,
                "Open the link's page and pass its checks first.",
            ))
        }
    };
    if !open {
        return Err(text(
            StatusCode::GONE,
            "This link no longer accepts files. Ask the sender for a new one.",
        ));
    }
    Ok(scope)
}
