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

/// `PATCH /api/v1/users/{name}`: what an administrator changes of an account
/// here: whether it may create links (`share`), or all its permissions.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    share: Option<bool>,
    perms: Option<String>,
}

pub async fn edit(
    ctx: &HttpContext,
    caller: &Caller,
    name: &str,
    body: hyper::body::Incoming,
) -> Result<Response<Body>, ApiError> {
    let res = async {
        let req: Edit = json::read_json(body).await?;
        if !caller.admin() {
            return Err(ApiError::forbidden(
                "only administrators may change accounts",
            ));
        }
        let n = name.to_string();
        let user = ctx
            .db
            .run(move |s| s.user_get(&n))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no user named {name:?}")))?;
        let mut perms = match &req.perms {
            Some(p) => p
                .parse::<crate::policy::PermSet>()
                .map_err(ApiError::invalid)?,
            None => user.perms,
        };
        if let Some(on) = req.share {
            perms = crate::users::with_share(perms, on);
        }
        let n = name.to_string();
        let v = ctx
            .db
            .run(move |s| {
                s.user_set_perms(&n, perms)?;
                let u = s
                    .user_get(&n)?
                    .ok_or_else(|| crate::Error::not_found("the user vanished"))?;
                Ok(crate::users::json(&u, &s.keys_of(&n)?))
            })
            .await?;
        Ok((v, perms.to_string()))
    }
    .await;
    let note = res
        .as_ref()
        .map(|(_, p)| format!("perms {p}"))
        .unwrap_or_default();
    let (v, _) = super::record_at(
        ctx,
        caller,
        "user_perms",
        Some(format!("user:{name}")),
        &note,
        res,
    )
    .await?;
    Ok(ok(v))
}
