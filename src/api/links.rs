//! Link endpoints other than creation: list (paginated), show (with the URL),
//! edit, extend, revoke, regenerate, resend; restore and delete for
//! administrators. A caller sees and manages their own links; an administrator
//! anyone's. Another user's link answers 404, as a missing one does, so ids of
//! other users' links cannot be probed.

use hyper::body::Incoming;
use hyper::Response;
use serde::{Deserialize, Deserializer};
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::json::{self, cursor, ok};
use super::{record, view};
use crate::http::{Body, HttpContext};
use crate::policy::links::check_admin_action;
use crate::store::{now_ms, Link};

/// A body with nothing in it (`{}` or empty): actions that take no options.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extend {
    /// As `wharf link extend --expires` takes it: `7d`, `never`, a date...
    expires: String,
}

/// `PATCH` body: the rules to change. `password` and `max_uses` tell "left
/// out" (unchanged) from `null` (removed).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    title: Option<String>,
    message: Option<String>,
    recipients: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    password: Option<Option<String>>,
    allowed_emails: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    max_uses: Option<Option<u32>>,
    expires: Option<String>,
    /// `null` removes the client.
    #[serde(default, deserialize_with = "present")]
    client_id: Option<Option<i64>>,
    /// `null` removes the reference.
    #[serde(default, deserialize_with = "present")]
    reference: Option<Option<super::create::RefJson>>,
}

/// A field that is present, `null` included.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

pub async fn list(
    ctx: &HttpContext,
    caller: &Caller,
    raw: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let q = json::query(
        raw,
        &[
            "limit",
            "cursor",
            "owner",
            "all",
            "q",
            "status",
            "kind",
            "client",
            "ref_type",
            "reference",
        ],
    )?;
    let limit = json::limit(&q)?;
    let all = json::flag(&q, "all")?;
    let owner = match (q.get("owner"), all) {
        (Some(_), true) => return Err(ApiError::invalid("give owner or all, not both")),
        (None, true) if caller.admin() => None,
        (Some(o), false) if o == caller.name() || caller.admin() => Some(o.clone()),
        (None, false) => Some(caller.name().to_string()),
        _ => {
            return Err(ApiError::forbidden(
                "only administrators may list other users' links",
            ))
        }
    };
    let query = filters(&q, owner, json::parse_cursor(&q)?, limit + 1)?;
    let mut page = ctx
        .db
        .run(move |s| s.link_search(&query))
        .await?
        .rows
        .into_iter()
        .map(|r| r.link)
        .collect::<Vec<_>>();
    let next = if page.len() > limit {
        page.truncate(limit);
        page.last().map(|l| cursor(l.created_at, l.id))
    } else {
        None
    };
    let now = now_ms();
    let items: Vec<_> = page.iter().map(|l| view::link(l, now)).collect();
    Ok(ok(json!({ "items": items, "next_cursor": next })))
}

/// The list's filters as a store query (newest first, keyset pages): `q`
/// (words in the name, title, id, recipients, reference, client or a file
/// name), `status`, `kind`, `client` (id), `ref_type`, `reference` (part of it).
fn filters(
    q: &std::collections::HashMap<String, String>,
    owner: Option<String>,
    before: Option<(crate::store::Millis, i64)>,
    limit: usize,
) -> Result<crate::store::LinkQuery, ApiError> {
    const STATUSES: [&str; 5] = ["draft", "active", "expired", "exhausted", "revoked"];
    let status = match q.get("status") {
        Some(s) if !STATUSES.contains(&s.as_str()) => {
            return Err(ApiError::invalid(format!(
                "status must be one of {}",
                STATUSES.join(", ")
            )))
        }
        s => s.cloned(),
    };
    let kind = match q.get("kind") {
        Some(k) => Some(
            crate::store::LinkKind::parse(k)
                .ok_or_else(|| ApiError::invalid("kind must be one of send, share, request"))?,
        ),
        None => None,
    };
    let client_id = match q.get("client") {
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::invalid("client must be a client's id"))?,
        ),
        None => None,
    };
    let ref_type = match q.get("ref_type") {
        Some(t) => Some(crate::store::RefType::parse(t).ok_or_else(|| {
            ApiError::invalid("ref_type must be one of project, ticket, resource, other")
        })?),
        None => None,
    };
    Ok(crate::store::LinkQuery {
        owner,
        text: q.get("q").cloned(),
        status,
        kind,
        client_id,
        ref_type,
        reference: q.get("reference").cloned(),
        limit,
        now: now_ms(),
        before,
        ..Default::default()
    })
}

/// The link `id` if the caller may see it; 404 otherwise.
pub async fn visible(ctx: &HttpContext, caller: &Caller, id: &str) -> Result<Link, ApiError> {
    let link = ctx.service.find(id).await?;
    if link.owner != caller.name() && !caller.admin() {
        // The same answer as for a link that does not exist.
        return Err(ApiError::not_found(format!("no link with id {id:?}")));
    }
    Ok(link)
}

pub async fn show(
    ctx: &HttpContext,
    caller: &Caller,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    let link = visible(ctx, caller, id).await?;
    let files = ctx.service.files(&link).await?;
    let mut v = view::link_with_files(&link, &files, now_ms());
    // Only the owner and administrators get here (`visible`).
    v["url"] = json!(ctx.service.url_of(&link));
    Ok(ok(v))
}

pub async fn edit(
    ctx: &HttpContext,
    caller: &Caller,
    id: &str,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let res = async {
        let req: Edit = json::read_json(body).await?;
        visible(ctx, caller, id).await?;
        let reference = match &req.reference {
            None => None,
            Some(None) => Some(None),
            Some(Some(r)) => Some(Some(r.checked()?)),
        };
        let update = crate::links::LinkUpdate {
            client: req.client_id,
            reference,
            title: req.title,
            message: req.message,
            recipients: req.recipients,
            password: req.password,
            allowed_emails: req.allowed_emails,
            max_uses: req.max_uses,
            expires: req.expires,
        };
        let (link, changed) = ctx.service.edit(id, &update).await?;
        let files = ctx.service.files(&link).await?;
        Ok::<_, ApiError>((view::link_with_files(&link, &files, now_ms()), changed))
    }
    .await;
    // What changed goes to the audit row (never the password itself).
    let (v, note) = match res {
        Ok((v, changed)) => (Ok(v), changed),
        Err(e) => (Err(e), String::new()),
    };
    let v = record(ctx, caller, "link_edit", Some(id), &note, v).await?;
    Ok(ok(v))
}

pub async fn restore(
    ctx: &HttpContext,
    caller: &Caller,
    id: &str,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let res = async {
        let NoOptions {} = json::read_optional_json(body).await?;
        visible(ctx, caller, id).await?;
        check_admin_action("restore", caller.admin()).map_err(ApiError::forbidden)?;
        let link = ctx.service.restore(id).await?;
        let files = ctx.service.files(&link).await?;
        Ok::<_, ApiError>(view::link_with_files(&link, &files, now_ms()))
    }
    .await;
    let v = record(ctx, caller, "link_restore", Some(id), "", res).await?;
    Ok(ok(v))
}

pub async fn extend(
    ctx: &HttpContext,
    caller: &Caller,
    id: &str,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let res = async {
        let req: Extend = json::read_json(body).await?;
        visible(ctx, caller, id).await?;
        let link = ctx.service.extend(id, &req.expires).await?;
        let files = ctx.service.files(&link).await?;
        Ok::<_, ApiError>(view::link_with_files(&link, &files, now_ms()))
    }
    .await;
    let v = record(ctx, caller, "link_extend", Some(id), "", res).await?;
    Ok(ok(v))
}

pub async fn revoke(
    ctx: &HttpContext,
    caller: &Caller,
    id: &str,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let res = async {
        let NoOptions {} = json::read_optional_json(body).await?;
        visible(ctx, caller, id).await?;
        ctx.service.revoke(id).await?;
        let link = ctx.service.find(id).await?;
        let files = ctx.service.files(&link).await?;
        Ok::<_, ApiError>(view::link_with_files(&link, &files, now_ms()))
    }
    .await;
    let v = record(ctx, caller, "link_revoke", Some(id), "", res).await?;
    Ok(ok(v))
}

pub async fn regenerate(
    ctx: &HttpContext,
    caller: &Caller,
    id: &str,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let res = async {
        let NoOptions {} = json::read_optional_json(body).await?;
        visible(ctx, caller, id).await?;
        Ok::<_, ApiError>(ctx.service.regenerate(id).await?)
    }
    .await;
    let url = record(ctx, caller, "link_regenerate", Some(id), "", res).await?;
    // With link creation, the only answer that carries a URL.
    Ok(ok(json!({ "url": url })))
}

pub async fn resend(
    ctx: &HttpContext,
    caller: &Caller,
    id: &str,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let res = async {
        let NoOptions {} = json::read_optional_json(body).await?;
        let link = visible(ctx, caller, id).await?;
        // The same URL is mailed again; the answer names who got it.
        let (_url, mail_error) = ctx.service.resend_mail(id).await?;
        match mail_error {
            None => Ok::<_, ApiError>(link.recipients),
            Some(e) => Err(ApiError::new(
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!(
                    "the mail to {} was not sent ({e}); the link still works: resend \
                     again later, or pass its URL on yourself",
                    link.recipients.join(", ")
                ),
            )),
        }
    }
    .await;
    let to = record(ctx, caller, "link_resend", Some(id), "", res).await?;
    Ok(ok(json!({ "mailed_to": to })))
}

pub async fn delete(
    ctx: &HttpContext,
    caller: &Caller,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    let res = async {
        visible(ctx, caller, id).await?;
        check_admin_action("delete", caller.admin()).map_err(ApiError::forbidden)?;
        Ok::<_, ApiError>(ctx.service.delete(id).await?)
    }
    .await;
    record(ctx, caller, "link_delete", Some(id), "", res).await?;
    Ok(json::no_content())
}
