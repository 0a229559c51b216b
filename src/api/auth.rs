//! Who calls: `Authorization: Bearer <API key>`, checked against the stored hash.
//! The request then acts as the key's user, with that user's permissions.
//!
//! A banned address is refused (429) before its key is looked at. Every wrong,
//! malformed, unknown or revoked key, and a key of a disabled account, answers the
//! same 401, is audited with the real reason, and counts against the address in
//! the defender shared with SFTP and FTPS logins. A missing header is not a guess
//! and counts nothing. An account without the `http` protocol gets 403.

use std::net::SocketAddr;

use hyper::header::{HeaderMap, AUTHORIZATION};

use super::error::ApiError;
use crate::apikeys;
use crate::audit::{AuditEvent, Outcome};
use crate::defender::Verdict;
use crate::http::HttpContext;
use crate::policy::Protocol;
use crate::store::{now_ms, ApiKey, User};

/// The user a request acts as, and the key that says so.
pub struct Caller {
    pub user: User,
    /// The key's prefix: names the key in audit rows.
    pub prefix: String,
    pub remote: SocketAddr,
}

impl Caller {
    pub fn admin(&self) -> bool {
        self.user.admin
    }

    pub fn name(&self) -> &str {
        &self.user.name
    }

    /// An audit event done by this caller through the API.
    pub fn event(&self, action: &str) -> AuditEvent {
        AuditEvent::new(Protocol::Http, action)
            .remote(self.remote)
            .actor(self.user.name.clone())
            .detail(format!("api key {}", self.prefix))
    }
}

pub async fn authenticate(
    ctx: &HttpContext,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    if let Some(left) = ctx.defender.banned(peer.ip()) {
        return Err(ApiError::rate_limited(left.as_secs()));
    }
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "send an API key: Authorization: Bearer wharf_...",
        ));
    };
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(prefix) = key.and_then(apikeys::prefix_of) else {
        return Err(refuse(ctx, peer, None, None, "malformed key").await);
    };
    let key = key.unwrap_or_default().to_string();
    let p = prefix.to_string();
    let stored: Option<(ApiKey, Option<User>)> = ctx
        .db
        .run(move |s| match s.api_key_by_prefix(&p)? {
            Some(k) => {
                let user = s.user_get(&k.user)?;
                Ok(Some((k, user)))
            }
            None => Ok(None),
        })
        .await?;
    let Some((stored, user)) = stored else {
        return Err(refuse(ctx, peer, Some(prefix), None, "unknown key").await);
    };
    let why = match &user {
        _ if !apikeys::matches(&key, &stored.key_hash) => Some("wrong key"),
        _ if stored.revoked_at.is_some() => Some("revoked key"),
        None => Some("the key's user no longer exists"),
        Some(u) if !u.enabled => Some("account disabled"),
        Some(_) => None,
    };
    let user = match (user, why) {
        (Some(u), None) => u,
        (u, why) => {
            let name = u.map(|u| u.name);
            let why = why.unwrap_or("refused");
            return Err(refuse(ctx, peer, Some(prefix), name.as_deref(), why).await);
        }
    };
    let caller = Caller {
        user,
        prefix: prefix.to_string(),
        remote: peer,
    };
    if !caller.user.protocols.has(Protocol::Http) {
        ctx.audit
            .record(
                caller
                    .event("login_failed")
                    .outcome(Outcome::Denied)
                    .detail(format!(
                        "api key {prefix}: http is not allowed for this account"
                    )),
            )
            .await;
        return Err(ApiError::forbidden(
            "this account may not use the API (http is not among its protocols)",
        ));
    }
    let id = stored.id;
    if let Err(e) = ctx.db.run(move |s| s.api_key_touch(id, now_ms())).await {
        tracing::warn!(error = %e, "recording the use of an API key failed");
    }
    Ok(caller)
}

/// The one answer to a bad key; the reason goes to the audit log only.
async fn refuse(
    ctx: &HttpContext,
    peer: SocketAddr,
    prefix: Option<&str>,
    user: Option<&str>,
    why: &str,
) -> ApiError {
    let mut ev = AuditEvent::new(Protocol::Http, "login_failed")
        .remote(peer)
        .outcome(Outcome::Denied)
        .detail(match prefix {
            Some(p) => format!("api key {p}: {why}"),
            None => format!("api key: {why}"),
        });
    if let Some(u) = user {
        ev = ev.actor(u.to_string());
    }
    ctx.audit.record(ev).await;
    if let Verdict::Banned(for_) = ctx.defender.failure(peer.ip()) {
        tracing::warn!(remote = %peer.ip(), ban_secs = for_.as_secs(), "address locked out after repeated bad API keys");
        ctx.audit
            .record(
                AuditEvent::new(Protocol::Http, "address_banned")
                    .remote(peer)
                    .outcome(Outcome::Denied)
                    .detail(format!("locked out for {}s", for_.as_secs())),
            )
            .await;
    }
    ApiError::unauthorized("the API key is not valid")
}
