//! The notification feed (`/app/notifications`: what happened on the user's
//! links, newest first, marked read one by one or all at once), the bell with
//! the unread count in every staff page's header, and the user's preferences
//! (`/app/preferences`: display name, which notifications also go by mail).

use std::collections::HashMap;
use std::net::SocketAddr;

use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};

use super::super::pages::{esc, human_size, script};
use super::super::respond::{brand, html, redirect};
use super::super::{Body, HttpContext};
use super::flash::{self, Kind};
use super::pages::{frame, when};
use super::session::Staff;
use super::{expired, failed};
use crate::audit::{AuditEvent, Outcome};
use crate::notify::{mail_default, Notifier};
use crate::policy::Protocol;
use crate::store::{now_ms, NoticeKind, Notification};

/// How many notifications the feed shows.
const FEED: usize = 200;

const STYLE: &str = "<style>ul.feed{list-style:none;padding:0;margin:0}ul.feed li{display:flex;gap:.75rem;justify-content:space-between;\
align-items:flex-start;border-top:1px solid #e3e5e9;padding:.7rem 0}ul.feed li.unread{font-weight:600}\
ul.feed li.unread::before{content:'';flex:none;width:.5rem;height:.5rem;margin-top:.45rem;border-radius:50%;background:#a4161a}\
ul.feed li .what{flex:1;overflow-wrap:anywhere}ul.feed li .when{font-weight:400}\
ul.feed form{margin:0}ul.feed button{padding:.25rem .6rem;font-size:.8rem}\
.prefs label{font-weight:400;display:flex;gap:.5rem;align-items:center;margin:.4rem 0}\
.prefs input[type=checkbox]{width:auto}</style>";

fn describe(n: &Notification) -> String {
    let link = format!(
        "<a href=\"/app/links/{id}\">{label}</a>",
        id = esc(&n.link_public_id),
        label = esc(&n.link_label)
    );
    let size = n
        .bytes
        .map(|b| format!(" ({})", human_size(b)))
        .unwrap_or_default();
    match n.kind {
        NoticeKind::Downloaded => format!(
            "<strong>{file}</strong>{size} was downloaded from {link} by {who}",
            file = esc(&n.file),
            who = esc(&n.who)
        ),
        NoticeKind::Uploaded => format!(
            "<strong>{file}</strong>{size} was uploaded to {link} by {who}",
            file = esc(&n.file),
            who = esc(&n.who)
        ),
        NoticeKind::Expired => format!("{link} has expired"),
        NoticeKind::Exhausted => format!("{link} is used up (no uses left)"),
    }
}

fn kind_label(k: NoticeKind) -> &'static str {
    match k {
        NoticeKind::Downloaded => "A file is downloaded",
        NoticeKind::Uploaded => "A file is received on an upload request",
        NoticeKind::Expired => "A link expires",
        NoticeKind::Exhausted => "A link is used up",
    }
}

/// The page with the message of the last action, shown once.
fn shown(
    ctx: &HttpContext,
    headers: &HeaderMap,
    staff: &Staff,
    title: &str,
    body: &str,
) -> Response<Body> {
    let mut cookies = HeaderMap::new();
    let message = flash::take(ctx, headers, &mut cookies);
    let mut r = html(
        StatusCode::OK,
        frame(&brand(ctx), staff, title, message.as_ref(), body),
    );
    r.headers_mut().extend(cookies);
    r
}

/// `GET /app/notifications`.
pub async fn feed(ctx: &HttpContext, staff: &Staff, headers: &HeaderMap) -> Response<Body> {
    // Links that expired since the last sweep are noticed now, not within the hour.
    let notifier = Notifier::new(ctx.db.clone(), ctx.mailer.clone(), &ctx.links());
    notifier
        .expired(Some(staff.user.name.clone()), now_ms())
        .await;
    let user = staff.user.name.clone();
    let list = match ctx
        .db
        .run(move |s| {
            Ok((
                s.notifications_of(&user, FEED)?,
                s.notifications_unread(&user)?,
            ))
        })
        .await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "reading notifications");
            return failed(ctx);
        }
    };
    let (list, unread) = list;
    // The header counts what is unread now (the sweep above may have added some).
    let mut staff = staff.clone();
    staff.unread = unread;
    let csrf = esc(&staff.csrf);
    let items: String = list
        .iter()
        .map(|n| {
            let read = if n.read_at.is_none() {
                format!(
                    "<form method=\"post\" action=\"/app/notifications/read\">\
                     <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                     <input type=\"hidden\" name=\"id\" value=\"{}\">\
                     <button type=\"submit\">Mark read</button></form>",
                    n.id
                )
            } else {
                String::new()
            };
            format!(
                "<li class=\"{cls}\" data-kind=\"{kind}\"><div class=\"what\">{what}\
                 <div class=\"muted small when\">{when}</div></div>{read}</li>",
                cls = if n.read_at.is_none() {
                    "unread"
                } else {
                    "read"
                },
                kind = n.kind.as_str(),
                what = describe(n),
                when = when(n.created_at),
            )
        })
        .collect();
    let all = if unread > 0 {
        format!(
            "<form method=\"post\" action=\"/app/notifications/read\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\">Mark all read</button></form>"
        )
    } else {
        String::new()
    };
    let body = if list.is_empty() {
        "<p class=\"muted\">Nothing yet. Downloads, files received, and links that expire \
         or are used up will appear here.</p>"
            .to_string()
    } else {
        format!("<ul class=\"feed\">{items}</ul>")
    };
    let page = format!(
        "{STYLE}<h1>Notifications</h1><p class=\"muted\" id=\"unread\">{unread} unread · \
         <a href=\"/app/preferences\">Which also go by e-mail</a></p>{all}{body}{script}",
        script = script("localtime.js"),
    );
    shown(ctx, headers, &staff, "Notifications", &page)
}

/// `POST /app/notifications/read`: one (`id`) or all.
pub async fn mark_read(
    ctx: &HttpContext,
    staff: &Staff,
    form: &HashMap<String, String>,
) -> Response<Body> {
    if !staff.csrf_ok(form.get("csrf")) {
        return expired(ctx);
    }
    let id = form.get("id").and_then(|v| v.parse::<i64>().ok());
    let user = staff.user.name.clone();
    if let Err(e) = ctx
        .db
        .run(move |s| s.notifications_mark_read(&user, id, now_ms()))
        .await
    {
        tracing::error!(error = %e, "marking notifications read");
        return failed(ctx);
    }
    redirect("/app/notifications")
}

/// `GET /app/preferences`.
pub async fn preferences(ctx: &HttpContext, staff: &Staff, headers: &HeaderMap) -> Response<Body> {
    let user = staff.user.name.clone();
    let prefs = match ctx.db.run(move |s| s.notification_prefs(&user)).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "reading notification preferences");
            return failed(ctx);
        }
    };
    let boxes: String = NoticeKind::ALL
        .into_iter()
        .map(|k| {
            let on = prefs
                .iter()
                .find(|(p, _)| *p == k)
                .map(|(_, on)| *on)
                .unwrap_or_else(|| mail_default(k, &ctx.links()));
            format!(
                "<label><input type=\"checkbox\" name=\"mail_{kind}\" id=\"mail_{kind}\"{checked}> {label}</label>",
                kind = k.as_str(),
                checked = if on { " checked" } else { "" },
                label = kind_label(k),
            )
        })
        .collect();
    let address = match &staff.user.email {
        Some(e) => format!("Mails go to <strong>{}</strong>.", esc(e)),
        None => "You have no e-mail address on file, so nothing is mailed; an administrator \
                 can set one."
            .to_string(),
    };
    let page = format!(
        "{STYLE}<h1>Preferences</h1>\
         <form method=\"post\" action=\"/app/preferences\" class=\"prefs\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"display_name\" style=\"display:block;font-weight:600\">Display name \
         <span class=\"muted\">(recipients see it: \"… has shared files with you\")</span></label>\
         <input id=\"display_name\" name=\"display_name\" maxlength=\"80\" value=\"{display}\" placeholder=\"{user}\">\
         <h2 style=\"font-size:1.1rem;margin-top:1.5rem\">Notifications by e-mail</h2>\
         <p class=\"muted\">Every notification appears under the bell; tick those you also want by e-mail. {address}</p>\
         {boxes}\
         <p><button type=\"submit\">Save</button></p></form>",
        csrf = esc(&staff.csrf),
        display = esc(staff.user.display_name.as_deref().unwrap_or_default()),
        user = esc(&staff.user.name),
    );
    shown(ctx, headers, staff, "Preferences", &page)
}

/// `POST /app/preferences`.
pub async fn save_preferences(
    ctx: &HttpContext,
    peer: SocketAddr,
    staff: &Staff,
    form: &HashMap<String, String>,
) -> Response<Body> {
    if !staff.csrf_ok(form.get("csrf")) {
        return expired(ctx);
    }
    let display = match crate::users::check_display_name(
        form.get("display_name").map(String::as_str).unwrap_or(""),
    ) {
        Ok(d) => d,
        Err(e) => {
            let mut r = redirect("/app/preferences");
            flash::set(
                ctx,
                r.headers_mut(),
                Kind::Error,
                e.public_text()
                    .unwrap_or("That display name cannot be used."),
            );
            return r;
        }
    };
    // An unticked box is absent from the form: it means "not by mail".
    let choices: Vec<(NoticeKind, bool)> = NoticeKind::ALL
        .into_iter()
        .map(|k| (k, form.contains_key(&format!("mail_{}", k.as_str()))))
        .collect();
    let user = staff.user.name.clone();
    let (d, c) = (display.clone(), choices.clone());
    if let Err(e) = ctx
        .db
        .run(move |s| {
            s.user_set_display_name(&user, d.as_deref())?;
            for (k, on) in c {
                s.notification_pref_set(&user, k, on)?;
            }
            Ok(())
        })
        .await
    {
        tracing::error!(error = %e, "saving preferences");
        return failed(ctx);
    }
    let by_mail: Vec<&str> = choices
        .iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| k.as_str())
        .collect();
    ctx.audit
        .record(
            AuditEvent::new(Protocol::Http, "user_preferences")
                .remote(peer)
                .actor(staff.user.name.clone())
                .outcome(Outcome::Ok)
                .detail(format!(
                    "display name {}; by e-mail: {}",
                    display.as_deref().unwrap_or("(none)"),
                    if by_mail.is_empty() {
                        "none".to_string()
                    } else {
                        by_mail.join(", ")
                    }
                )),
        )
        .await;
    let mut r = redirect("/app/preferences");
    flash::set(
        ctx,
        r.headers_mut(),
        Kind::Done,
        "Your preferences are saved.",
    );
    r
}
