//! `GET /api/v1/audit`: the audit log, newest first, paginated. Administrators
//! read all of it; others what they did and what happened to their links.

use hyper::Response;
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::json::{self, cursor, ok};
use super::view;
use crate::audit::parse_since;
use crate::http::{Body, HttpContext};
use crate::store::{now_ms, AuditQuery};

pub async fn query(
    ctx: &HttpContext,
    caller: &Caller,
    raw: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let q = json::query(
        raw,
        &["action", "actor", "path", "since", "limit", "cursor"],
    )?;
    let limit = json::limit(&q)?;
    let since = q
        .get("since")
        .map(|s| parse_since(s, now_ms()))
        .transpose()
        .map_err(|e| ApiError::invalid(format!("since {e}")))?;
    let query = AuditQuery {
        actor: q.get("actor").cloned(),
        action: q.get("action").cloned(),
        path: q.get("path").cloned(),
        since,
        limit: limit + 1,
        before: json::parse_cursor(&q)?,
        visible_to: (!caller.admin()).then(|| caller.name().to_string()),
    };
    let mut rows = ctx.db.run(move |s| s.audit_query(&query)).await?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| cursor(r.event.ts, r.id))
    } else {
        None
    };
    let items: Vec<_> = rows.iter().map(view::audit).collect();
    Ok(ok(json!({ "items": items, "next_cursor": next })))
}
