//! The pages a logged-in user reads: the dashboard of their links and a link's
//! detail page. Only the user's own links exist here (an administrator may
//! open any link's page, to restore or delete it); another user's link is
//! answered like an unknown one.

use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};

use super::super::respond::{brand, html};
use super::super::{Body, HttpContext};
use super::flash::{self, Flash};
use super::pages::{self, Detail};
use super::session::Staff;
use super::{failed, not_found};
use crate::policy::links::parse_expiry;
use crate::store::{now_ms, AuditQuery, Link};

/// The expiry presets staff pick from when extending: (value, label).
const PRESETS: [(&str, &str); 6] = [
    ("1d", "1 day from now"),
    ("3d", "3 days from now"),
    ("1w", "1 week from now"),
    ("2w", "2 weeks from now"),
    ("1m", "1 month from now"),
    ("never", "never"),
];

/// How much of a link's trail its page shows.
const TRAIL: usize = 200;

/// The user's link `public_id`, or `None` (unknown, or someone else's; an
/// administrator reaches every link).
pub async fn own_link(ctx: &HttpContext, staff: &Staff, public_id: &str) -> Option<Link> {
    match ctx.service.find(public_id).await {
        Ok(link) if link.owner == staff.user.name || staff.user.admin => Some(link),
        Ok(_) => None,
        Err(e) => {
            if e.kind() != crate::error::ErrorKind::NotFound {
                tracing::error!(error = %e, "reading a link");
            }
            None
        }
    }
}

/// `GET /app/links/{public_id}`.
pub async fn detail(
    ctx: &HttpContext,
    staff: &Staff,
    public_id: &str,
    headers: &HeaderMap,
) -> Response<Body> {
    let Some(link) = own_link(ctx, staff, public_id).await else {
        return not_found(ctx);
    };
    let files = match ctx.service.files(&link).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "reading link files");
            return failed(ctx);
        }
    };
    let query = AuditQuery {
        path: Some(crate::event::link_key(&link.public_id)),
        limit: TRAIL,
        ..AuditQuery::default()
    };
    let trail = match ctx.db.run(move |s| s.audit_query(&query)).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "reading a link's audit trail");
            return failed(ctx);
        }
    };
    let now = now_ms();
    let presets: Vec<(&str, &str)> = PRESETS
        .into_iter()
        .filter(|(v, _)| parse_expiry(Some(v), &ctx.links().policy, now).is_ok())
        .collect();
    let url = ctx.service.url_of(&link);
    let book = super::tags::book(ctx, staff).await;
    // The link's client, if the viewer sees it.
    let client = link
        .client_id
        .and_then(|id| book.iter().find(|(c, _)| c.id == id))
        .map(|(c, _)| c.clone());
    let d = Detail {
        client: client.as_ref(),
        book: &book,
        url: url.as_deref(),
        admin: staff.user.admin,
        link: &link,
        files: &files,
        trail: &trail,
        presets: &presets,
        now,
    };
    shown(ctx, headers, |flash| {
        pages::detail(&brand(ctx), staff, flash, &d)
    })
}

/// A page with the message of the last action, which is shown once.
pub(super) fn shown(
    ctx: &HttpContext,
    headers: &HeaderMap,
    render: impl FnOnce(Option<&Flash>) -> String,
) -> Response<Body> {
    let mut cookies = HeaderMap::new();
    let message = flash::take(ctx, headers, &mut cookies);
    let mut r = html(StatusCode::OK, render(message.as_ref()));
    r.headers_mut().extend(cookies);
    r
}
