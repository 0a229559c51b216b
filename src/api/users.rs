//! `GET /api/v1/users`: administrators see every account, others their own.
//! Accounts are shown as the CLI shows them (`users::json`): never a password hash.

use hyper::Response;
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::json::{self, ok};
use crate::http::{Body, HttpContext};

pub async fn list(
    ctx: &HttpContext,
    caller: &Caller,
    raw: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    json::query(raw, &[])?;
    let admin = caller.admin();
    let me = caller.name().to_string();
    let items = ctx
        .db
        .run(move |s| {
            let users = if admin {
                s.user_list()?
            } else {
                s.user_get(&me)?.into_iter().collect()
            };
            users
                .iter()
                .map(|u| Ok(crate::users::json(u, &s.keys_of(&u.name)?)))
                .collect::<crate::Result<Vec<_>>>()
        })
        .await?;
    Ok(ok(json!({ "items": items })))
}
