//! What staff do to their links: extend, edit, revoke (cancel), regenerate,
//! resend; administrators also restore and delete. Each is a POST carrying the
//! session's CSRF token, acts through the `LinkService` (the same rules as the
//! CLI), writes an audit row naming the user, and answers with a redirect and a
//! one-line message — a regenerated URL is also shown on the answer itself.

use std::collections::HashMap;
use std::net::SocketAddr;

use hyper::{Response, StatusCode};

use super::super::respond::{brand, html, redirect};
use super::super::{Body, HttpContext};
use super::flash::{self, Kind};
use super::pages;
use super::session::Staff;
use super::views::own_link;
use super::{expired, not_found};
use crate::audit::{AuditEvent, Outcome};
use crate::error::{Error, ErrorKind};
use crate::links::LinkUpdate;
use crate::policy::links::check_admin_action;
use crate::policy::Protocol;
use crate::store::{format_ms, Link};

/// The request of one action.
struct Act<'a> {
    ctx: &'a HttpContext,
    peer: SocketAddr,
    staff: &'a Staff,
    link: Link,
}

impl Act<'_> {
    fn page(&self) -> String {
        format!("/app/links/{}", self.link.public_id)
    }

    async fn audit(&self, action: &str, outcome: Outcome, detail: Option<String>) {
        let mut ev = AuditEvent::new(Protocol::Http, action)
            .remote(self.peer)
            .actor(self.staff.user.name.clone())
            .link(&self.link.public_id)
            .outcome(outcome);
        if let Some(d) = detail {
            ev = ev.detail(d);
        }
        self.ctx.audit.record(ev).await;
    }

    /// Back to `to` with a message.
    fn back(&self, to: &str, kind: Kind, text: &str) -> Response<Body> {
        let mut r = redirect(to);
        flash::set(self.ctx, r.headers_mut(), kind, text);
        r
    }

    /// A refused or failed action: audited, and told to the user in words they
    /// can act on (the details of unexpected errors go to the log only).
    async fn failed(&self, action: &str, e: Error) -> Response<Body> {
        let (outcome, text) = match e.kind() {
            ErrorKind::InvalidInput | ErrorKind::NotFound | ErrorKind::PermissionDenied => {
                (Outcome::Denied, crate::reply::text(&e).to_string())
            }
            _ => {
                tracing::error!(link = %self.link.public_id, action, error = %e, "staff action failed");
                (
                    Outcome::Failed,
                    "That did not work; the server log has the details.".to_string(),
                )
            }
        };
        self.audit(action, outcome, Some(e.to_string())).await;
        self.back(&self.page(), Kind::Error, &text)
    }
}

/// `POST /app/links/{public_id}/{action}`.
pub async fn act(
    ctx: &HttpContext,
    peer: SocketAddr,
    staff: &Staff,
    public_id: &str,
    action: &str,
    form: &HashMap<String, String>,
) -> Response<Body> {
    if !staff.csrf_ok(form.get("csrf")) {
        return expired(ctx);
    }
    let Some(link) = own_link(ctx, staff, public_id).await else {
        return not_found(ctx);
    };
    let a = Act {
        ctx,
        peer,
        staff,
        link,
    };
    match action {
        "extend" => extend(&a, form.get("expires").map(String::as_str)).await,
        "revoke" => revoke(&a).await,
        "regenerate" => regenerate(&a).await,
        "resend" => resend(&a).await,
        "edit" => edit(&a, form).await,
        "restore" => restore(&a).await,
        "delete" => delete(&a, form.get("confirm").is_some_and(|c| !c.is_empty())).await,
        _ => not_found(ctx),
    }
}

async fn extend(a: &Act<'_>, expires: Option<&str>) -> Response<Body> {
    let Some(expires) = expires.filter(|e| !e.trim().is_empty()) else {
        return a.back(&a.page(), Kind::Error, "Choose a new expiry.");
    };
    match a.ctx.service.extend(&a.link.public_id, expires).await {
        Ok(link) => {
            let until = link
                .expires_at
                .map(format_ms)
                .unwrap_or_else(|| "never".into());
            a.audit("link_extend", Outcome::Ok, Some(format!("expires {until}")))
                .await;
            let text = match link.expires_at {
                Some(_) => format!("The link now expires {until}."),
                None => "The link now never expires.".into(),
            };
            a.back(&a.page(), Kind::Done, &text)
        }
        Err(e) => a.failed("link_extend", e).await,
    }
}

async fn revoke(a: &Act<'_>) -> Response<Body> {
    match a.ctx.service.revoke(&a.link.public_id).await {
        Ok(()) => {
            a.audit("link_revoke", Outcome::Ok, None).await;
            a.back(
                &a.page(),
                Kind::Done,
                "The link is revoked: visitors are told it was withdrawn.",
            )
        }
        Err(e) => a.failed("link_revoke", e).await,
    }
}

async fn regenerate(a: &Act<'_>) -> Response<Body> {
    match a.ctx.service.regenerate(&a.link.public_id).await {
        Ok(url) => {
            a.audit("link_regenerate", Outcome::Ok, None).await;
            let text = "The link has a new URL; the old one no longer works.";
            html(
                StatusCode::OK,
                pages::new_url(&brand(a.ctx), a.staff, &a.link, text, &url),
            )
        }
        Err(e) => a.failed("link_regenerate", e).await,
    }
}

async fn resend(a: &Act<'_>) -> Response<Body> {
    if a.link.recipients.is_empty() {
        return a.back(
            &a.page(),
            Kind::Error,
            "This link has no recipients to mail.",
        );
    }
    match a.ctx.service.resend_mail(&a.link.public_id).await {
        Ok((_, None)) => {
            let to = a.link.recipients.join(", ");
            a.audit("link_resend", Outcome::Ok, Some(format!("to {to}")))
                .await;
            a.back(
                &a.page(),
                Kind::Done,
                &format!("Mailed the link again to {to}."),
            )
        }
        Ok((_, Some(mail_error))) => {
            a.audit(
                "link_resend",
                Outcome::Failed,
                Some(format!("mail not sent: {mail_error}")),
            )
            .await;
            let text = format!(
                "The mail could not be sent ({mail_error}). Copy the link from this page and \
                 pass it on yourself, or try again later."
            );
            a.back(&a.page(), Kind::Error, &text)
        }
        Err(e) => a.failed("link_resend", e).await,
    }
}

/// What the edit form asks for, as the service takes it: fields left as they
/// were change nothing; an empty password keeps the password.
fn update_of(form: &HashMap<String, String>) -> Result<LinkUpdate, Error> {
    let list = |k: &str| {
        form.get(k).map(|v| {
            v.split([',', '\n', ' '])
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
    };
    let password = if form.get("no_password").is_some_and(|v| !v.is_empty()) {
        Some(None)
    } else {
        form.get("password")
            .filter(|p| !p.is_empty())
            .map(|p| Some(p.clone()))
    };
    let max_uses = match form.get("max_uses").map(|m| m.trim()) {
        None => None,
        Some("") => Some(None),
        Some(m) => Some(Some(m.parse::<u32>().map_err(|_| {
            Error::invalid(format!("the usage limit {m:?} is not a whole number"))
        })?)),
    };
    // The client and reference fields are on the edit form: present means
    // "set to this" (empty: none).
    let client = match form.contains_key("client") {
        true => Some(super::tags::client_of(form).map_err(Error::invalid)?),
        false => None,
    };
    let reference = match form.contains_key("ref_value") {
        true => Some(super::tags::reference_of(form).map_err(Error::invalid)?),
        false => None,
    };
    Ok(LinkUpdate {
        client,
        reference,
        title: form.get("title").map(|t| t.trim().to_string()),
        message: form.get("message").map(|m| m.replace("\r\n", "\n")),
        recipients: list("recipients"),
        password,
        allowed_emails: list("allowed_emails"),
        max_uses,
        expires: form
            .get("expires")
            .filter(|e| !e.trim().is_empty())
            .cloned(),
    })
}

async fn edit(a: &Act<'_>, form: &HashMap<String, String>) -> Response<Body> {
    let update = match update_of(form) {
        Ok(u) => u,
        Err(e) => return a.failed("link_edit", e).await,
    };
    match a.ctx.service.edit(&a.link.public_id, &update).await {
        Ok((_, changed)) => {
            a.audit("link_edit", Outcome::Ok, Some(changed.clone()))
                .await;
            a.back(&a.page(), Kind::Done, &format!("Saved: {changed}."))
        }
        Err(e) => a.failed("link_edit", e).await,
    }
}

async fn restore(a: &Act<'_>) -> Response<Body> {
    if let Err(why) = check_admin_action("restore", a.staff.user.admin) {
        return a.failed("link_restore", Error::denied(why)).await;
    }
    match a.ctx.service.restore(&a.link.public_id).await {
        Ok(_) => {
            a.audit("link_restore", Outcome::Ok, None).await;
            a.back(&a.page(), Kind::Done, "The link is active again.")
        }
        Err(e) => a.failed("link_restore", e).await,
    }
}

async fn delete(a: &Act<'_>, confirmed: bool) -> Response<Body> {
    if let Err(why) = check_admin_action("delete", a.staff.user.admin) {
        return a.failed("link_delete", Error::denied(why)).await;
    }
    if !confirmed {
        return a.back(
            &a.page(),
            Kind::Error,
            "Tick the box to confirm the deletion.",
        );
    }
    match a.ctx.service.delete(&a.link.public_id).await {
        Ok(()) => {
            a.audit("link_delete", Outcome::Ok, None).await;
            let text = format!("The link {} is deleted.", a.link.public_id);
            a.back("/app", Kind::Done, &text)
        }
        Err(e) => a.failed("link_delete", e).await,
    }
}
