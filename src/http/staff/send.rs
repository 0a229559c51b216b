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
use super::super::respond::{brand, json};
use super::super::tus::{self, Scope};
use super::super::upload::widget;
use super::super::{Body, HttpContext};
use super::create;
use super::pages::{frame, script};
use super::session::Staff;
use crate::audit::{AuditEvent, Outcome};
use crate::error::ErrorKind;
use crate::links::{LinkOptions, Uploader};
use crate::policy::Protocol;

/// The send page. Its rules form follows the administrator's `[links]`
/// policy: the expiry choices stop at `max_expiry` ("never" only when
/// allowed), and a required password is marked so.
pub async fn page(ctx: &HttpContext, staff: &Staff) -> Response<Body> {
    let links = ctx.links();
    let policy = &links.policy;
    let filed = super::tags::fields(&super::tags::book(ctx, staff).await, &HashMap::new());
    // Straight to the bucket when the transfer store takes direct uploads:
    // the draft's answer names the endpoint (send.js).
    let origin = ctx.service.direct_send_origin().await;
    let mut widget = widget("", None, None);
    let mut scripts = vec![script("upload.js"), script("send.js"), script("copy.js")];
    if origin.is_some() {
        widget = widget.replacen(
            "<div id=\"uploader\" ",
            "<div id=\"uploader\" data-direct=\"\" ",
            1,
        );
        scripts.insert(0, script("sha256.js"));
    }
    let body = format!(
        "<h1>Send files</h1>\
         <form id=\"send-form\" data-draft=\"/app/send/draft\" novalidate>\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         {widget}\
         <label for=\"title\">Title <span class=\"req\">(required)</span></label>\
         <input id=\"title\" name=\"title\" maxlength=\"200\" required>\
         <fieldset id=\"recipients\"><legend>Recipients <span class=\"muted\">(optional; they get the link by mail)</span></legend>\
         <div class=\"recipient\"><span><label for=\"to_name_0\">Name</label>\
         <input id=\"to_name_0\" name=\"to_name_0\" autocomplete=\"off\"></span>\
         <span><label for=\"to_email_0\">E-mail</label>\
         <input id=\"to_email_0\" name=\"to_email_0\" type=\"email\" autocomplete=\"off\" list=\"contact-list\"></span></div>\
         <p><button type=\"button\" id=\"add-recipient\" class=\"secondary\">+ Add a recipient</button></p></fieldset>\
         {filed}\
         <label for=\"message\">Message</label><textarea id=\"message\" name=\"message\" rows=\"3\"></textarea>\
         {expiry}{password}\
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
        widget = widget,
        expiry = create::expiry_select(policy, None),
        password = create::password_field(policy, "recipients"),
        scripts = scripts.concat(),
    );
    let style = "<style>fieldset{border:1px solid #d3d7de;border-radius:.5rem;margin:1rem 0;padding:.25rem .75rem}\
        legend{font-weight:600}.recipient{display:flex;gap:.5rem;flex-wrap:wrap}.recipient span{flex:1 1 12rem}\
        .recipient label{font-weight:400}legend .muted{font-weight:400}\
        .recipient+.recipient{border-top:1px dashed #d3d7de;margin-top:.75rem}button.secondary{background:#5b6270}</style>";
    let mut r = super::super::respond::html(
        StatusCode::OK,
        frame(
            &brand(ctx),
            staff,
            "Send files",
            None,
            &create::form_style(&format!("{style}{body}")),
        ),
    );
    if let Some(o) = origin {
        super::super::respond::allow_connect(r.headers_mut(), &o);
    }
    r
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
                .link(id)
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
                "direct": ctx.service.direct_uploads(&link).await
                    .map(|_| format!("/app/send/{}/direct", link.public_id)),
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

/// The names given beside the addresses (`to_name_<n>` of row `to_email_<n>`):
/// (e-mail, name), stored with the link and used to greet each recipient.
fn recipient_names(form: &HashMap<String, String>) -> Vec<(String, String)> {
    form.iter()
        .filter_map(|(k, v)| {
            let n = k.strip_prefix("to_email_")?;
            let name = form.get(&format!("to_name_{n}"))?.trim();
            let email = v.trim();
            (!email.is_empty() && !name.is_empty() && !name.chars().any(char::is_control))
                .then(|| (email.to_string(), name.chars().take(100).collect()))
        })
        .collect()
}

/// The recipients' addresses: the rows `to_email_<n>` of the page, and a
/// plain `to` list (comma separated) as older pages sent it.
fn recipients(form: &HashMap<String, String>) -> Vec<String> {
    let mut rows: Vec<(u32, String)> = form
        .iter()
        .filter_map(|(k, v)| {
            let n = k.strip_prefix("to_email_")?.parse().ok()?;
            let v = v.trim();
            (!v.is_empty()).then(|| (n, v.to_string()))
        })
        .collect();
    rows.sort();
    let mut all: Vec<String> = rows.into_iter().map(|(_, v)| v).collect();
    all.extend(list(form, "to"));
    all
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
    let Some(title) = field("title") else {
        return error(StatusCode::BAD_REQUEST, "Give the link a title.");
    };
    if let Err(t) = create::check_policy(&ctx.links().policy, form.get("password")) {
        return error(StatusCode::BAD_REQUEST, &t);
    }
    let (client, reference) = match (
        super::tags::client_of(form),
        super::tags::reference_of(form),
    ) {
        (Ok(c), Ok(r)) => (c, r),
        (Err(t), _) | (_, Err(t)) => return error(StatusCode::BAD_REQUEST, &t),
    };
    let o = LinkOptions {
        client,
        reference,
        name: String::new(),
        title,
        message: form.get("message").cloned().unwrap_or_default(),
        recipients: recipients(form),
        expires: field("expires"),
        // Passwords are taken as typed (spaces included).
        password: form.get("password").filter(|p| !p.is_empty()).cloned(),
        max_uses,
        allowed_emails: list(form, "allow_email"),
        // Stored above, on the draft, before the mails go.
        recipient_names: Vec::new(),
    };
    // The names first: the mails go out as the draft becomes a link.
    let names = recipient_names(form);
    if !names.is_empty() {
        let (pid, owner) = (id.to_string(), staff.user.name.clone());
        let stored = ctx
            .db
            .run(move |s| match s.link_by_public_id(&pid)? {
                Some(l) if l.owner == owner => s.link_recipient_names_set(l.id, &names),
                _ => Ok(()),
            })
            .await;
        if let Err(e) = stored {
            tracing::warn!(error = %e, "storing recipients' names");
        }
    }
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

/// `POST /app/send/<id>/withdraw`: a file removed from the page after it
/// finished uploading leaves the draft (copy and row), so it is never sent.
pub async fn withdraw(
    ctx: &HttpContext,
    peer: SocketAddr,
    staff: &Staff,
    id: &str,
    form: &HashMap<String, String>,
) -> Response<Body> {
    if !staff.csrf_ok(form.get("csrf")) {
        return error(StatusCode::FORBIDDEN, "This page has expired; reload it.");
    }
    let given = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    // The upload's key is the last segment of its tus URL.
    let key = given("upload").map(|u| u.rsplit('/').next().unwrap_or(u));
    let name = given("name");
    if key.is_none() && name.is_none() {
        return error(StatusCode::BAD_REQUEST, "Name the file to remove.");
    }
    match ctx
        .service
        .withdraw_draft_file(&staff.user.name, id, key, name)
        .await
    {
        Ok(removed) => {
            if removed {
                let what = name.or(key).unwrap_or_default();
                audit(
                    ctx,
                    peer,
                    staff,
                    "link_withdraw",
                    id,
                    format!("removed {what} from the draft"),
                )
                .await;
            }
            json(StatusCode::OK, &serde_json::json!({ "removed": removed }))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => error(StatusCode::NOT_FOUND, "No such draft."),
        Err(e) => {
            tracing::warn!(error = %e, "withdrawing a draft file");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The file could not be removed; try again.",
            )
        }
    }
}

/// `/app/send/<id>/direct[/...]`: direct uploads (`http/direct_upload.rs`)
/// for this user's draft only.
pub async fn direct(
    ctx: &HttpContext,
    peer: SocketAddr,
    staff: &Staff,
    id: &str,
    rest: &[&str],
    parts: &hyper::http::request::Parts,
    body: Incoming,
) -> Response<Body> {
    let link = match ctx.service.own_draft(&staff.user.name, id).await {
        Ok(l) => l,
        Err(_) => return error(StatusCode::NOT_FOUND, "No such draft."),
    };
    if !super::super::direct_upload::asked(&parts.headers) {
        return error(
            StatusCode::PRECONDITION_FAILED,
            "Direct uploads need the Wharf-Direct: 1 header.",
        );
    }
    let scope = Scope {
        link,
        uploader: Uploader {
            grant: format!("staff:{}", staff.user.name),
            remote: Some(peer),
            email: None,
        },
        base: format!("/app/send/{id}/direct"),
    };
    super::super::direct_upload::dispatch(ctx, &scope, rest, &parts.method, body).await
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
