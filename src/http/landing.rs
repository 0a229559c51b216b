//! The landing page of a link and the three forms in front of its files:
//! password, e-mail address, code.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};

use super::forms::{self};
use super::pages;
use super::respond::{audit, brand, html, page, redirect, refused};
use super::visit::{visit, Visit};
use super::{Body, HttpContext};
use crate::audit::Outcome;
use crate::defender::{Attempt, Verdict};
use crate::links::rules_of;
use crate::mail::messages;
use crate::policy::links::{may_receive_code, normalise_email, valid_email, Gate};
use crate::policy::Op;
use crate::store::{now_ms, CodeCheck, Link, LinkKind};
/// How long an e-mailed code is valid, and how many tries it allows.
pub const CODE_MINUTES: u64 = 10;
pub const CODE_ATTEMPTS: u32 = 5;

/// A form page, with the CSRF cookie set if the visitor had none.
fn form_page(
    ctx: &HttpContext,
    headers: &HeaderMap,
    status: StatusCode,
    render: impl FnOnce(&str) -> String,
) -> Response<Body> {
    let (csrf, fresh) = forms::csrf_token(headers);
    let mut r = html(status, render(&csrf));
    if fresh {
        forms::set_cookie(
            r.headers_mut(),
            forms::CSRF_COOKIE,
            &csrf,
            "/",
            86_400,
            ctx.secure(),
        );
    }
    r
}

/// `GET /l/<token>`: the files, or the form the visitor must fill first.
pub async fn landing(
    ctx: &HttpContext,
    peer: SocketAddr,
    token: &str,
    headers: &HeaderMap,
    head: bool,
) -> Response<Body> {
    let v = match visit(ctx, token, headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let base = v.base();
    // Opened from a mail or another site, a browser withholds SameSite=Strict
    // cookies: reload once from this page (a same-site navigation) so a visitor
    // who already passed the form is not asked again.
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site");
    if cross_site && v.grant.is_none() && matches!(v.gate, Gate::Password | Gate::Email) {
        return html(StatusCode::OK, pages::reload(&brand(ctx), &base));
    }
    match &v.gate {
        Gate::Closed(status) => refused(ctx, peer, &v.link, *status, head).await,
        Gate::Password => form_page(ctx, headers, StatusCode::OK, |csrf| {
            pages::password_form(&brand(ctx), &base, csrf, None)
        }),
        Gate::Email => form_page(ctx, headers, StatusCode::OK, |csrf| {
            pages::email_form(&brand(ctx), &v.link, &base, csrf, None)
        }),
        Gate::Open if v.link.kind == LinkKind::Request => {
            super::upload::page(ctx, peer, &v, head).await
        }
        Gate::Open => {
            // A share whose creator is gone, disabled or may no longer read
            // serves nothing, its list of items included.
            if v.link.kind == LinkKind::Share {
                let may = super::target::creator_may(ctx, &v.link, Op::Read, peer).await;
                if let Err(why) = may {
                    return super::download::unavailable(ctx, peer, &v, why).await;
                }
            }
            if !head {
                audit(ctx, peer, &v.link, "link_open", Outcome::Ok, None).await;
            }
            let id = v.link.id;
            let files = ctx
                .db
                .run(move |s| s.link_files(id))
                .await
                .unwrap_or_default();
            html(
                StatusCode::OK,
                pages::landing(&brand(ctx), &v.link, &files, &base),
            )
        }
    }
}

/// What a POST to a form needs before its fields are looked at.
async fn posted(
    ctx: &HttpContext,
    token: &str,
    headers: &HeaderMap,
    body: hyper::body::Incoming,
    want: &Gate,
) -> Result<(Visit, HashMap<String, String>), Response<Body>> {
    let v = visit(ctx, token, headers).await?;
    if &v.gate != want {
        // Already past this step (or the link ended): the landing page says what next.
        return Err(redirect(&v.base()));
    }
    let form = match forms::read_form(body).await {
        Ok(f) => f,
        Err(forms::FormError::TooLarge) => {
            return Err(page(
                ctx,
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                "That form was too large.",
            ))
        }
        Err(forms::FormError::Unreadable) => {
            return Err(page(
                ctx,
                StatusCode::BAD_REQUEST,
                "Bad request",
                "That form could not be read.",
            ))
        }
    };
    if !forms::csrf_ok(headers, &form) {
        return Err(page(
            ctx,
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form has expired or came from another site. Go back, reload the page and try again.",
        ));
    }
    Ok((v, form))
}

fn throttled(ctx: &HttpContext, wait: std::time::Duration) -> Response<Body> {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let mut r = page(
        ctx,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &format!("Too many wrong attempts. Try again in {minutes} minute(s)."),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
        r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    r
}

/// How long this address must wait before guessing at this link again. Link
/// guesses are throttled per (link, address) only: they never lock the address
/// out of SFTP, FTPS or the staff pages (one NAT can hide many partners).
fn banned(ctx: &HttpContext, link: &Link, peer: SocketAddr) -> Option<std::time::Duration> {
    ctx.guesses.banned((link.id, peer.ip()))
}

/// Reserves a guess at this link's password or code before it is checked, so
/// parallel guesses cannot get more checked than the limit.
/// The guess is reserved on this node and, for every node, in the store
/// (`cluster::tries`), so a guesser spreading over nodes gets no more tries.
async fn reserve_guess<'a>(
    ctx: &'a HttpContext,
    link: &Link,
    peer: SocketAddr,
) -> Result<Guess<'a>, std::time::Duration> {
    let local = ctx
        .guesses
        .attempt((link.id, peer.ip()))
        .await
        .map_err(|r| r.wait())?;
    let config = ctx.guesses.config();
    if config.max_failures == 0 || config.ban.is_zero() {
        return Ok(Guess {
            local,
            shared: None,
        });
    }
    match crate::cluster::tries::reserve_key(&ctx.db, &guess_key(link, peer), config).await {
        Ok(Some(shared)) => Ok(Guess {
            local,
            shared: Some(shared),
        }),
        // Other nodes' failures (or tries in flight) reach the limit.
        Ok(None) => Err(std::time::Duration::from_secs(1)),
        Err(e) => {
            tracing::warn!(error = %e, "could not reserve a link guess in the store");
            Err(std::time::Duration::from_secs(1))
        }
    }
}

fn guess_key(link: &Link, peer: SocketAddr) -> String {
    format!("guess:{}:{}", link.id, peer.ip())
}

/// A reserved guess: on this node, and in the store for every node.
struct Guess<'a> {
    local: Attempt<'a, (i64, IpAddr)>,
    shared: Option<crate::cluster::tries::SharedTry>,
}

impl Guess<'_> {
    /// A right password or code: both slots are freed.
    async fn succeeded(self) {
        if let Some(s) = self.shared {
            s.succeeded().await;
        }
        self.local.succeeded();
    }
}

/// Counts a wrong password or code against the (link, address), on all nodes.
async fn count_failure(ctx: &HttpContext, guess: Guess<'_>, link: &Link, peer: SocketAddr) {
    let config = ctx.guesses.config();
    let mut verdict = Verdict::Allowed;
    if let Some(s) = guess.shared {
        if let Ok(n) = s.failed().await {
            if n >= config.max_failures {
                ctx.guesses.restore_ban((link.id, peer.ip()), config.ban);
                verdict = Verdict::Banned(config.ban);
            }
        }
    }
    if let (Verdict::Banned(d), _) | (_, Verdict::Banned(d)) = (verdict, guess.local.failed()) {
        tracing::warn!(link = %link.public_id, remote = %peer.ip(), ban = ?d, "link guesses throttled");
    }
}

/// `POST /l/<token>/password`.
pub async fn password(
    ctx: &HttpContext,
    peer: SocketAddr,
    token: &str,
    headers: &HeaderMap,
    body: hyper::body::Incoming,
) -> Response<Body> {
    let (v, form) = match posted(ctx, token, headers, body, &Gate::Password).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let guess = match reserve_guess(ctx, &v.link, peer).await {
        Ok(g) => g,
        Err(wait) => {
            audit(
                ctx,
                peer,
                &v.link,
                "link_password_throttled",
                Outcome::Denied,
                None,
            )
            .await;
            return throttled(ctx, wait);
        }
    };
    let given = form.get("password").cloned().unwrap_or_default();
    let hash = v.link.password_hash.clone().unwrap_or_default();
    // argon2 takes tens of milliseconds of CPU: off the async threads.
    let ok = tokio::task::spawn_blocking(move || crate::secret::verify_password(&given, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        count_failure(ctx, guess, &v.link, peer).await;
        audit(
            ctx,
            peer,
            &v.link,
            "link_password_failed",
            Outcome::Denied,
            None,
        )
        .await;
        let base = v.base();
        return form_page(ctx, headers, StatusCode::FORBIDDEN, |csrf| {
            pages::password_form(
                &brand(ctx),
                &base,
                csrf,
                Some("That password is not right."),
            )
        });
    }
    guess.succeeded().await;
    audit(ctx, peer, &v.link, "link_password_ok", Outcome::Ok, None).await;
    let mut g = v.grant.clone().unwrap_or_else(|| v.new_grant(ctx));
    g.password = true;
    let mut r = redirect(&v.base());
    v.set_grant(ctx, r.headers_mut(), &ctx.keys.issue(&g));
    r
}

/// `POST /l/<token>/email`: mails a code if the address is on the list. The
/// answer is the same page either way, sent before any mail goes out.
pub async fn email(
    ctx: &HttpContext,
    peer: SocketAddr,
    token: &str,
    headers: &HeaderMap,
    body: hyper::body::Incoming,
) -> Response<Body> {
    let (v, form) = match posted(ctx, token, headers, body, &Gate::Email).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let base = v.base();
    let address = normalise_email(form.get("email").map(String::as_str).unwrap_or(""));
    if !valid_email(&address) {
        return form_page(ctx, headers, StatusCode::BAD_REQUEST, |csrf| {
            pages::email_form(
                &brand(ctx),
                &v.link,
                &base,
                csrf,
                Some("That is not an e-mail address."),
            )
        });
    }
    let key = (v.link.id, peer.ip());
    if let Some(wait) = ctx
        .code_requests
        .banned(key)
        .or_else(|| banned(ctx, &v.link, peer))
    {
        audit(
            ctx,
            peer,
            &v.link,
            "link_code_throttled",
            Outcome::Denied,
            Some(address),
        )
        .await;
        return throttled(ctx, wait);
    }
    // Counted on every node too: past the limit, this node throttles as well.
    let counted = crate::cluster::tries::count(
        &ctx.db,
        &format!("code:{}:{}", v.link.id, peer.ip()),
        ctx.code_requests.config(),
    )
    .await;
    if ctx.code_requests.config().max_failures > 0 && matches!(counted, Ok(None)) {
        ctx.code_requests
            .restore_ban(key, ctx.code_requests.config().ban);
        audit(
            ctx,
            peer,
            &v.link,
            "link_code_throttled",
            Outcome::Denied,
            Some(address),
        )
        .await;
        return throttled(ctx, ctx.code_requests.config().window);
    }
    ctx.code_requests.failure(key);
    if may_receive_code(&rules_of(&v.link), &address) {
        let code = format!("{:06}", rand::random_range(0..1_000_000u32));
        let hash = ctx.keys.mac(&[&v.link.id.to_string(), &address, &code]);
        let expires = now_ms() + (CODE_MINUTES * 60_000) as i64;
        let (id, a) = (v.link.id, address.clone());
        match ctx
            .db
            .run(move |s| s.link_code_put(id, &a, &hash, expires))
            .await
        {
            Ok(()) => {
                ctx.mailer.send_later(messages::code(
                    &ctx.config.product_name,
                    &address,
                    &code,
                    CODE_MINUTES,
                ));
                audit(
                    ctx,
                    peer,
                    &v.link,
                    "link_code_sent",
                    Outcome::Ok,
                    Some(address.clone()),
                )
                .await;
            }
            Err(e) => tracing::error!(error = %e, "storing an e-mail code"),
        }
    } else {
        audit(
            ctx,
            peer,
            &v.link,
            "link_code_refused",
            Outcome::Denied,
            Some(address.clone()),
        )
        .await;
    }
    form_page(ctx, headers, StatusCode::OK, |csrf| {
        pages::code_form(
            &brand(ctx),
            &v.link,
            &base,
            csrf,
            &address,
            CODE_MINUTES,
            None,
        )
    })
}

/// `POST /l/<token>/code`.
pub async fn code(
    ctx: &HttpContext,
    peer: SocketAddr,
    token: &str,
    headers: &HeaderMap,
    body: hyper::body::Incoming,
) -> Response<Body> {
    let (v, form) = match posted(ctx, token, headers, body, &Gate::Email).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let base = v.base();
    let address = normalise_email(form.get("email").map(String::as_str).unwrap_or(""));
    let guess = match reserve_guess(ctx, &v.link, peer).await {
        Ok(g) => g,
        Err(wait) => {
            audit(
                ctx,
                peer,
                &v.link,
                "link_code_throttled",
                Outcome::Denied,
                Some(address),
            )
            .await;
            return throttled(ctx, wait);
        }
    };
    let entered: String = form
        .get("code")
        .map(|c| c.chars().filter(|c| !c.is_whitespace()).collect())
        .unwrap_or_default();
    let answer = if entered.len() == 6 && entered.bytes().all(|b| b.is_ascii_digit()) {
        let hash = ctx.keys.mac(&[&v.link.id.to_string(), &address, &entered]);
        let (id, a) = (v.link.id, address.clone());
        ctx.db
            .run(move |s| s.link_code_try(id, &a, &hash, now_ms(), CODE_ATTEMPTS))
            .await
            .unwrap_or(CodeCheck::Missing)
    } else {
        CodeCheck::Wrong
    };
    if answer != CodeCheck::Valid {
        count_failure(ctx, guess, &v.link, peer).await;
        audit(
            ctx,
            peer,
            &v.link,
            "link_code_failed",
            Outcome::Denied,
            Some(address.clone()),
        )
        .await;
        return form_page(ctx, headers, StatusCode::FORBIDDEN, |csrf| {
            pages::code_form(
                &brand(ctx),
                &v.link,
                &base,
                csrf,
                &address,
                CODE_MINUTES,
                Some("That code is not right or has expired. Check the latest message, or ask for a new code."),
            )
        });
    }
    guess.succeeded().await;
    audit(
        ctx,
        peer,
        &v.link,
        "link_verified",
        Outcome::Ok,
        Some(address.clone()),
    )
    .await;
    let mut g = v.grant.clone().unwrap_or_else(|| v.new_grant(ctx));
    g.email = Some(address);
    let mut r = redirect(&base);
    v.set_grant(ctx, r.headers_mut(), &ctx.keys.issue(&g));
    r
}
