//! Staff login sessions. The `wharf_staff` cookie holds 256 random bits; the
//! database keeps only their SHA-256, the user, a per-session CSRF token and the
//! session's times. A session ends after [`IDLE`] without a request, at
//! [`LIFETIME`] after login whatever the activity, at logout, when the user's
//! password changes, and as soon as the user may no longer log in over HTTP
//! (checked at every request, not only at login).

use std::time::Duration;

use hyper::header::HeaderMap;

use super::super::forms;
use super::super::HttpContext;
use crate::error::Result;
use crate::links::token;
use crate::policy::Protocol;
use crate::secret::random_bytes;
use crate::store::{now_ms, NewWebSession, User};

pub const COOKIE: &str = "wharf_staff";
/// Where the session cookie goes: the staff pages only, never the link pages.
pub const PATH: &str = "/app";
/// Without a request for this long, a session ends (a forgotten browser tab).
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// A session ends this long after login, however busy (a stolen cookie ages out).
pub const LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The logged-in staff user of a request.
#[derive(Clone)]
pub struct Staff {
    pub user: User,
    /// The token every form of this session carries.
    pub csrf: String,
    token_hash: String,
    /// Unread notifications, for the bell in the header.
    pub unread: u64,
}

impl Staff {
    /// Whether a form came from a page of this session (constant time).
    pub fn csrf_ok(&self, given: Option<&String>) -> bool {
        given.is_some_and(|g| forms::same_secret(&self.csrf, g))
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

/// Whether `user` may use the staff pages now: the login rules for HTTP, and a
/// password (sessions are opened with one).
fn allowed(user: &User) -> bool {
    user.password_hash.is_some() && crate::login::refusal(user, Protocol::Http).is_none()
}

/// The session of the request's cookie, if it is live and its user still allowed.
pub async fn current(ctx: &HttpContext, headers: &HeaderMap) -> Option<Staff> {
    let value = forms::cookie(headers, COOKIE)?;
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hash = token::hash(value);
    let h = hash.clone();
    let now = now_ms();
    let session = match ctx
        .db
        .run(move |s| {
            let Some(session) = s.web_session_touch(&h, now, now - ms(IDLE))? else {
                return Ok(None);
            };
            let unread = s.notifications_unread(&session.user.name)?;
            Ok(Some((session, unread)))
        })
        .await
    {
        Ok(s) => s?,
        Err(e) => {
            tracing::error!(error = %e, "reading a staff session");
            return None;
        }
    };
    let (session, unread) = session;
    if !allowed(&session.user) {
        let h = hash.clone();
        if let Err(e) = ctx.db.run(move |s| s.web_session_delete(&h)).await {
            tracing::error!(error = %e, "ending a staff session");
        }
        return None;
    }
    Some(Staff {
        user: session.user,
        csrf: session.csrf,
        token_hash: hash,
        unread,
    })
}

/// Opens a session for a user who just logged in and sets its cookie.
pub async fn start(ctx: &HttpContext, user: &User, headers: &mut HeaderMap) -> Result<()> {
    let (token, token_hash) = token::new_token();
    let now = now_ms();
    let new = NewWebSession {
        token_hash,
        user_id: user.id,
        csrf: hex::encode(random_bytes::<32>()),
        created_at: now,
        expires_at: now + ms(LIFETIME),
    };
    ctx.db
        .run(move |s| {
            // Logins are rare: a good moment to forget ended sessions.
            s.web_session_purge(now, now - ms(IDLE))?;
            s.web_session_insert(&new)
        })
        .await?;
    forms::set_cookie(
        headers,
        COOKIE,
        &token,
        PATH,
        LIFETIME.as_secs(),
        ctx.secure(),
    );
    Ok(())
}

/// Ends the session (logout) and removes its cookie.
pub async fn end(ctx: &HttpContext, staff: &Staff, headers: &mut HeaderMap) -> Result<()> {
    let h = staff.token_hash.clone();
    ctx.db.run(move |s| s.web_session_delete(&h)).await?;
    forms::clear_cookie(headers, COOKIE, PATH, ctx.secure());
    Ok(())
}
