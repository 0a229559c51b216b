//! `GET /api/v1/users`: administrators see every account, others their own.
//! Accounts are shown as the CLI shows them (`users::json`): never a password hash.
//! `PATCH /api/v1/users/{name}`: a user's display name (their own, or any for
//! administrators).

use hyper::body::Incoming;
use hyper::Response;
use serde::Deserialize;
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

/// What `PATCH /api/v1/users/{name}` may change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEdit {
    /// `""` or `null` goes back to the user name.
    #[serde(default)]
    display_name: Option<Option<String>>,
}

pub async fn edit(
    ctx: &HttpContext,
    caller: &Caller,
    name: &str,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let res = async {
        let req: UserEdit = json::read_json(body).await?;
        // Another user's account is answered like an unknown one.
        if !caller.admin() && caller.name() != name {
            return Err(ApiError::not_found(format!("no user named {name:?}")));
        }
        let mut note = String::new();
        let n = name.to_string();
        if let Some(d) = req.display_name {
            let d = crate::users::check_display_name(d.as_deref().unwrap_or(""))?;
            note = format!("display name {}", d.as_deref().unwrap_or("(none)"));
            let n = n.clone();
            ctx.db
                .run(move |s| s.user_set_display_name(&n, d.as_deref()))
                .await?;
        }
        let user = ctx
            .db
            .run(move |s| {
                let u = s
                    .user_get(&n)?
                    .ok_or_else(|| crate::Error::not_found(format!("no user named {n:?}")))?;
                Ok(crate::users::json(&u, &s.keys_of(&u.name)?))
            })
            .await?;
        Ok::<_, ApiError>((user, note))
    }
    .await;
    let (v, note) = match res {
        Ok((v, note)) => (Ok(v), note),
        Err(e) => (Err(e), String::new()),
    };
    let v = super::record(ctx, caller, "user_profile", None, &note, v).await?;
    Ok(ok(v))
}
