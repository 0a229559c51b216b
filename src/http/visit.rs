//! A visitor on a link: which link the token names, what their grant cookie
//! proves, and what they must do next (`policy::links::gate`). A leaf under the
//! pages that serve links (`landing.rs`, `download.rs`, `upload.rs`, `meter.rs`).

use hyper::header::HeaderMap;
use hyper::Response;

use super::forms::{self, GRANT_COOKIE};
use super::respond::{not_found, try_again};
use super::{Body, HttpContext};
use crate::links::grant::Grant;
use crate::links::{rules_of, token};
use crate::policy::links::{gate, Gate, Proof};
use crate::store::{now_ms, Link};

/// A request's link and what its visitor holds.
pub struct Visit {
    pub link: Link,
    pub token: String,
    /// What grants of this link are bound to ([`grant_binding`]).
    pub token_hash: String,
    /// A valid grant for this link, if the visitor has one.
    pub grant: Option<Grant>,
    pub gate: Gate,
}

impl Visit {
    /// `/l/<token>`: where the link's pages live (and the grant cookie's path).
    pub fn base(&self) -> String {
        format!("/l/{}", self.token)
    }

    /// The visitor's grant, or a new one for an open link (downloads need one:
    /// uses are charged per grant). The cookie to set comes with a new grant.
    pub fn grant_or_new(&self, ctx: &HttpContext) -> (Grant, Option<String>) {
        match &self.grant {
            Some(g) => (g.clone(), None),
            None => {
                let g = self.new_grant(ctx);
                let cookie = ctx.keys.issue(&g);
                (g, Some(cookie))
            }
        }
    }

    pub(super) fn new_grant(&self, ctx: &HttpContext) -> Grant {
        let life = ctx.links().grant_lifetime.as_millis() as i64;
        let mut until = now_ms().saturating_add(life);
        if let Some(exp) = self.link.expires_at {
            until = until.min(exp);
        }
        Grant::new(&self.link.public_id, &self.token_hash, until)
    }

    /// Sets the grant cookie, scoped to this link's pages.
    pub fn set_grant(&self, ctx: &HttpContext, headers: &mut HeaderMap, value: &str) {
        let max_age = ctx.links().grant_lifetime.as_secs();
        forms::set_cookie(
            headers,
            GRANT_COOKIE,
            value,
            &self.base(),
            max_age,
            ctx.secure(),
        );
    }
}

/// What a grant is bound to: the token's hash, and the password's hash when
/// the link has one, so a grant made before the password was set, changed or
/// removed (staff edited the link) no longer counts.
fn grant_binding(token_hash: &str, password_hash: Option<&str>) -> String {
    match password_hash {
        None => token_hash.to_string(),
        Some(p) => {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(token_hash.as_bytes());
            h.update(b"\0");
            h.update(p.as_bytes());
            hex::encode(h.finalize())
        }
    }
}

/// Resolves the token and the grant cookie; unknown or malformed tokens get 404.
pub async fn visit(
    ctx: &HttpContext,
    token: &str,
    headers: &HeaderMap,
) -> Result<Visit, Response<Body>> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found(ctx));
    }
    let hash = token::hash(token);
    let h = hash.clone();
    let link = ctx
        .db
        .run(move |s| s.link_by_token_hash(&h))
        .await
        .map_err(|e| try_again(ctx, &e))?
        .ok_or_else(|| not_found(ctx))?;
    let now = now_ms();
    let hash = grant_binding(&hash, link.password_hash.as_deref());
    let grant = forms::cookie(headers, GRANT_COOKIE)
        .and_then(|v| ctx.keys.check(v, now))
        .filter(|g| g.is_for(&link.public_id, &hash));
    let holds_use = match &grant {
        Some(g) if link.max_uses.is_some() => {
            let (id, gid) = (link.id, g.id.clone());
            ctx.db
                .run(move |s| s.link_grant_holds(id, &gid))
                .await
                .map_err(|e| try_again(ctx, &e))?
        }
        _ => false,
    };
    let proof = Proof {
        password: grant.as_ref().is_some_and(|g| g.password),
        email: grant.as_ref().and_then(|g| g.email.clone()),
        holds_use,
    };
    let gate = gate(&rules_of(&link), &proof, now);
    Ok(Visit {
        link,
        token: token.to_string(),
        token_hash: hash,
        grant,
        gate,
    })
}
