//! Signing in and out of the staff pages. Passwords are checked by the shared
//! `Authenticator` (the same lock-out, timing and audit as SFTP and FTPS logins);
//! every refusal reads the same, whatever its reason. The login form itself is
//! protected by the double-submit CSRF cookie of the link pages' forms.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode, Uri};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use super::super::respond::{brand, html, page, redirect};
use super::super::{forms, pages as link_pages, Body, HttpContext};
use super::session::{self, Staff, PATH};
use super::{pages, read_form};
use crate::audit::AuditEvent;
use crate::policy::Protocol;

const LOGIN: &str = "/app/login";
const HOME: &str = "/app";
const REFUSED: &str = "Wrong name or password.";

/// Where to go after login: a path of the staff pages only, so the form cannot
/// be used to send someone to another site.
fn local_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if (n == HOME || n.starts_with("/app/") || n.starts_with("/app?"))
                && !n.contains("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => HOME,
    }
}

/// The answer to a staff page asked for without a session: the login page,
/// coming back here afterwards.
pub fn to_login(ctx: &HttpContext, headers: &HeaderMap, uri: &Uri) -> Response<Body> {
    let here = uri.path_and_query().map(|p| p.as_str()).unwrap_or(HOME);
    // From a mail or another site the browser withholds SameSite=Strict cookies:
    // reload once from this page (same-site) before asking for a login.
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    if cross_site {
        return html(StatusCode::OK, link_pages::reload(&brand(ctx), here));
    }
    let next = local_next(Some(here));
    if next == HOME {
        return redirect(LOGIN);
    }
    redirect(&format!(
        "{LOGIN}?next={}",
        utf8_percent_encode(next, NON_ALPHANUMERIC)
    ))
}

/// The login form, with the CSRF cookie set if the browser had none.
fn form(
    ctx: &HttpContext,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
) -> Response<Body> {
    let (csrf, fresh) = forms::csrf_token(headers);
    let mut r = html(status, pages::login(&brand(ctx), &csrf, next, error));
    if fresh {
        forms::set_cookie(
            r.headers_mut(),
            forms::CSRF_COOKIE,
            &csrf,
            PATH,
            86_400,
            ctx.secure(),
        );
    }
    r
}

/// `GET /app/login`.
pub async fn show(
    ctx: &HttpContext,
    peer: SocketAddr,
    headers: &HeaderMap,
    uri: &Uri,
) -> Response<Body> {
    let query = forms::parse_urlencoded(uri.query().unwrap_or("").as_bytes());
    let next = local_next(query.get("next").map(String::as_str));
    if session::current(ctx, headers).await.is_some() {
        return redirect(next);
    }
    if let Some(wait) = ctx.auth.defender().banned(peer.ip()) {
        return locked_out(ctx, wait);
    }
    form(ctx, headers, StatusCode::OK, next, None)
}

fn locked_out(ctx: &HttpContext, wait: std::time::Duration) -> Response<Body> {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let mut r = page(
        ctx,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &format!(
            "There were too many failed sign-ins from your address. Try again in {minutes} minute(s)."
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        r.headers_mut().insert(RETRY_AFTER, v);
    }
    r
}

/// `POST /app/login`.
pub async fn submit(
    ctx: &HttpContext,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Incoming,
) -> Response<Body> {
    let form_data = match read_form(ctx, body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !forms::csrf_ok(headers, &form_data) {
        return super::expired(ctx);
    }
    let field = |k: &str| form_data.get(k).map(String::as_str).unwrap_or("");
    let (name, password) = (field("name").trim(), field("password"));
    let next = local_next(Some(field("next")));
    let defender = ctx.auth.defender();
    if let Some(wait) = defender.banned(peer.ip()) {
        // Refused (and audited) before the password is looked at.
        let _ = ctx.auth.check_address(Protocol::Http, peer, name).await;
        return locked_out(ctx, wait);
    }
    match ctx
        .auth
        .password(Protocol::Http, peer, name, password)
        .await
    {
        Ok(user) => {
            let mut r = redirect(next);
            match session::start(ctx, &user, r.headers_mut()).await {
                Ok(()) => r,
                Err(e) => {
                    tracing::error!(error = %e, "starting a staff session");
                    super::failed(ctx)
                }
            }
        }
        // This failure may have been the one that locks the address out.
        Err(_) => match defender.banned(peer.ip()) {
            Some(wait) => locked_out(ctx, wait),
            None => form(ctx, headers, StatusCode::FORBIDDEN, next, Some(REFUSED)),
        },
    }
}

/// `POST /app/logout`: ends the session in the database, not only the cookie.
pub async fn logout(
    ctx: &HttpContext,
    peer: SocketAddr,
    staff: &Staff,
    form_data: &std::collections::HashMap<String, String>,
) -> Response<Body> {
    if !staff.csrf_ok(form_data.get("csrf")) {
        return super::expired(ctx);
    }
    let mut r = redirect(LOGIN);
    if let Err(e) = session::end(ctx, staff, r.headers_mut()).await {
        tracing::error!(error = %e, "ending a staff session");
        return super::failed(ctx);
    }
    ctx.audit
        .record(
            AuditEvent::new(Protocol::Http, "logout")
                .remote(peer)
                .actor(staff.user.name.clone()),
        )
        .await;
    r
}

#[cfg(test)]
mod tests {
    use super::local_next;

    #[test]
    fn only_staff_paths_come_back_after_login() {
        assert_eq!(local_next(Some("/app/links/abc")), "/app/links/abc");
        assert_eq!(local_next(Some("/app")), "/app");
        assert_eq!(local_next(Some("/app?x=1")), "/app?x=1");
        for bad in [
            "https://evil.example/app",
            "//evil.example/app",
            "/app//evil.example",
            "/app/\\evil",
            "/l/abc",
            "/application",
            "/app/x\r\nSet-Cookie: a=b",
            "",
        ] {
            assert_eq!(local_next(Some(bad)), "/app", "{bad:?}");
        }
        assert_eq!(local_next(None), "/app");
    }
}
