//! `GET /api/v1/users`: administrators see every account, others their own.
//! Accounts are shown as the CLI shows them (`users::json`): never a password hash.
//! `PATCH /api/v1/users/{name}`: a user's display name (their own, or any for
//! administrators); permissions and `share` (administrators).

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

/// What `PATCH /api/v1/users/{name}` may change: the display name (a user
/// their own, administrators anyone's), whether the account may create links
/// (`share`) or all its permissions (administrators only).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEdit {
    /// `""` or `null` goes back to the user name.
    #[serde(default)]
    display_name: Option<Option<String>>,
    share: Option<bool>,
    perms: Option<String>,
}

pub async fn edit(
    ctx: &HttpContext,
    caller: &Caller,
    name: &str,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let req: UserEdit = json::read_json(body).await?;
    // Another user's account is answered like an unknown one.
    if !caller.admin() && caller.name() != name {
        return Err(ApiError::not_found(format!("no user named {name:?}")));
    }
    let perms_asked = req.share.is_some() || req.perms.is_some();
    if perms_asked && !caller.admin() {
        return Err(ApiError::forbidden(
            "only administrators may change permissions",
        ));
    }
    if let Some(d) = req.display_name {
        let res = async {
            let d = crate::users::check_display_name(d.as_deref().unwrap_or(""))?;
            let note = format!("display name {}", d.as_deref().unwrap_or("(none)"));
            let n = name.to_string();
            ctx.db
                .run(move |s| {
                    s.user_get(&n)?
                        .ok_or_else(|| crate::Error::not_found(format!("no user named {n:?}")))?;
                    s.user_set_display_name(&n, d.as_deref())
                })
                .await?;
            Ok::<_, ApiError>(note)
        }
        .await;
        let note = res.as_ref().cloned().unwrap_or_default();
        super::record(ctx, caller, "user_profile", None, &note, res).await?;
    }
    if perms_asked {
        let res = async {
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
            ctx.db.run(move |s| s.user_set_perms(&n, perms)).await?;
            Ok::<_, ApiError>(perms.to_string())
        }
        .await;
        let note = res
            .as_ref()
            .map(|p| format!("perms {p}"))
            .unwrap_or_default();
        super::record_at(
            ctx,
            caller,
            "user_perms",
            Some(format!("user:{name}")),
            &note,
            res,
        )
        .await?;
    }
    let n = name.to_string();
    let v = ctx
        .db
        .run(move |s| {
            let u = s
                .user_get(&n)?
                .ok_or_else(|| crate::Error::not_found(format!("no user named {n:?}")))?;
            Ok(crate::users::json(&u, &s.keys_of(&u.name)?))
        })
        .await?;
    Ok(ok(v))
}
