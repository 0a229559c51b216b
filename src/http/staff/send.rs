//! Sending from the browser: `/app/send` lets a staff member pick files (they
//! upload at once, resumably, into a draft made on the first file), fill in
//! the title, recipients, message and rules, and get the link with a copy
//! button when the last file is in (`static/send.js`). The uploads speak tus
//! under `/app/send/<draft>/uploads` for this session's user only; the draft
//! and its copies are `links::browser_send`.

use std::collections::HashMap;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Method, Response, StatusCode};

use super::super::pages::esc;
use super::super::routes::{brand, json};
use super::super::tus::{self, Scope};
use super::super::upload::widget;
use super::super::{Body, HttpContext};
use super::pages::{frame, script};
use super::session::Staff;
use crate::audit::{AuditEvent, Outcome};
use crate::error::ErrorKind;
use crate::links::{LinkOptions, Uploader};
use crate::policy::Protocol;

/// The send page.
pub fn page(ctx: &HttpContext, staff: &Staff) -> Response<Body> {
    let presets = [
        ("1d", "1 day"),
        ("3d", "3 days"),
        ("1w", "1 week"),
        ("2w", "2 weeks"),
        ("1m", "1 month"),
        ("never", "never"),
    ];
    let options: String = presets
        .iter()
        .map(|(v, label)| {
            let selected = if *v == "1w" { " selected" } else { "" };
            format!("<option value=\"{v}\"{selected}>{label}</option>")
        })
        .collect();
    let body = format!(
        "<h1>Send files</h1>\
         <form id=\"send-form\" data-draft=\"/app/send/draft\" novalidate>\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         {widget}\
         <label for=\"title\">Title</label><input id=\"title\" name=\"title\" maxlength=\"200\">\
         <label for=\"to\">Recipients <span class=\"muted\">(e-mail addresses, comma separated; they get the link by mail)</span></label>\
         <input id=\"to\" name=\"to\" autocomplete=\"off\">\
         <label for=\"message\">Message</label><textarea id=\"message\" name=\"message\" rows=\"3\" style=\"width:100%;box-sizing:border-box;font:inherit;padding:.5rem\"></textarea>\
         <label for=\"expires\">Expires after</label><select id=\"expires\" name=\"expires\">{options}</select>\
         <label for=\"password\">Password <span class=\"muted\">(optional; give it to the recipients yourself)</span></label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\">\
         <label for=\"max_uses\">Download limit <span class=\"muted\">(optional; 1 = one-time)</span></label>\
         <input id=\"max_uses\" name=\"max_uses\" type=\"number\" min=\"1\" inputmode=\"numeric\">\
         <label for=\"allow_email\">Only these addresses may open it <span class=\"muted\">(optional; they get a code by mail)</span></label>\
         <input id=\"allow_email\" name=\"allow_email\" autocomplete=\"off\">\
         <p><button type=\"submit\" id=\"create\">Create link</button></p>\
         <p id=\"send-status\" class=\"muted\" role=\"status\"></p></form>\
         <div id=\"result\" hidden><h2>Your link is ready</h2>\
         <p><input id=\"link-url\" readonly aria-label=\"Link\"></p>\
         <p><button type=\"button\" data-copy=\"link-url\">Copy link</button> \
         <a class=\"btn\" href=\"/app\">Back to your links</a></p></div>\
         {scripts}",
        csrf = esc(&staff.csrf),
        widget = widget("", None, None),
        scripts = [script("upload.js"), script("send.js"), script("copy.js")].concat(),
    );
    super::super::routes::html(
        StatusCode::OK,
        frame(&brand(ctx), staff, "Send files", None, &body),
    )
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message }))
}

async fn audit(
    ctx: &HttpContext,
    peer: SocketAddr,
    staff: &Staff,
    action: &str,
    id: &str,
    detail: String,
) {
    ctx.audit
        .record(
            AuditEvent::new(Protocol::Http, action)
                .remote(peer)
                .actor(staff.user.name.clone())
                .path(format!("link:{id}"))
                .outcome(Outcome::Ok)
                .detail(detail),
        )
        .await;
}

/// `POST /app/send/draft`: a new draft for this user's files.
pub async fn draft(
    ctx: &HttpContext,
    staff: &Staff,
    form: &HashMap<String, String>,
) -> Response<Body> {
    if !staff.csrf_ok(form.get("csrf")) {
        return error(StatusCode::FORBIDDEN, "This page has expired; reload it.");
    }
    match ctx.service.draft(&staff.user.name).await {
        Ok(link) => json(
            StatusCode::CREATED,
            &serde_json::json!({
                "id": link.public_id,
                "uploads": format!("/app/send/{}/uploads", link.public_id),
                "finish": format!("/app/send/{}/finish", link.public_id),
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "creating a draft");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The files cannot be received now.",
            )
        }
    }
}

fn list(form: &HashMap<String, String>, key: &str) -> Vec<String> {
    form.get(key)
        .map(|v| {
            v.split([',', ';', ' ', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// `POST /app/send/<id>/finish`: the rules, and the link.
pub async fn finish(
    ctx: &HttpContext,
    peer: SocketAddr,
    staff: &Staff,
    id: &str,
    form: &HashMap<String, String>,
) -> Response<Body> {
    if !staff.csrf_ok(form.get("csrf")) {
        return error(StatusCode::FORBIDDEN, "This page has expired; reload it.");
    }
    let field = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let max_uses = match field("max_uses").map(|v| v.parse::<u32>()) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "The download limit must be a whole number.",
            )
        }
    };
    let o = LinkOptions {
        name: String::new(),
        title: field("title").unwrap_or_default(),
        message: form.get("message").cloned().unwrap_or_default(),
        recipients: list(form, "to"),
        expires: field("expires"),
        // Passwords are taken as typed (spaces included).
        password: form.get("password").filter(|p| !p.is_empty()).cloned(),
        max_uses,
        allowed_emails: list(form, "allow_email"),
    };
    match ctx.service.finish_draft(&staff.user.name, id, &o).await {
        Ok(created) => {
            audit(
                ctx,
                peer,
                staff,
                "link_create",
                id,
                "send from the browser".into(),
            )
            .await;
            let mut answer = serde_json::json!({ "id": id, "url": created.url });
            if let Some(e) = created.mail_error {
                answer["mail_error"] = e.into();
            }
            json(StatusCode::OK, &answer)
        }
        Err(e) => match e.kind() {
            ErrorKind::InvalidInput | ErrorKind::PermissionDenied => {
                error(StatusCode::BAD_REQUEST, crate::reply::text(&e))
            }
            ErrorKind::NotFound => error(StatusCode::NOT_FOUND, "No such draft."),
            _ => {
                tracing::warn!(error = %e, "finishing a draft");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The link could not be created; try again.",
                )
            }
        },
    }
}

/// `/app/send/<id>/uploads[/<key>]`: tus, for this user's draft only.
pub async fn uploads(
    ctx: &HttpContext,
    peer: SocketAddr,
    staff: &Staff,
    id: &str,
    key: Option<&str>,
    parts: &hyper::http::request::Parts,
    body: Incoming,
) -> Response<Body> {
    let (method, headers) = (&parts.method, &parts.headers);
    let link = match ctx.service.own_draft(&staff.user.name, id).await {
        Ok(l) => l,
        Err(_) => return error(StatusCode::NOT_FOUND, "No such draft."),
    };
    if method == Method::OPTIONS {
        return tus::options(None);
    }
    if !tus::speaks_tus(headers) {
        return error(StatusCode::PRECONDITION_FAILED, "Uploads speak tus 1.0.");
    }
    let scope = Scope {
        link,
        uploader: Uploader {
            grant: format!("staff:{}", staff.user.name),
            remote: Some(peer),
            email: None,
        },
        base: format!("/app/send/{id}/uploads"),
    };
    match (method, key) {
        (&Method::POST, None) => tus::create(ctx, &scope, headers).await,
        (&Method::HEAD, Some(k)) => tus::offset(ctx, &scope, k).await,
        (&Method::PATCH, Some(k)) => tus::append(ctx, &scope, k, headers, body).await,
        (&Method::DELETE, Some(k)) => tus::cancel(ctx, &scope, k).await,
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "Not allowed here."),
    }
}
