//! The staff pages under `/app`: a logged-in user's links, their details and
//! audit trail, and the actions on them. Server-rendered like the link pages,
//! with two small scripts served as files (countdowns, copy buttons).
//!
//! - `mod.rs`: routing, and the answers every staff page shares;
//! - `session.rs`: login sessions (cookie, lifetimes, re-checks);
//! - `login.rs`: signing in and out;
//! - `views.rs`: the dashboard and a link's page; `pages.rs`: their HTML;
//! - `actions.rs`: extend, edit, revoke, regenerate, resend, restore, delete;
//! - `files.rs`: staff download their link's files from its page;
//! - `flash.rs`: the message shown after an action;
//! - `send.rs`: sending files from the browser (page, draft, uploads, finish);
//! - `browse.rs`: the file browser over the user's own view (`/app/files`);
//! - `create.rs`: share from storage and request files (`/app/share`, `/app/request`);
//! - `dashboard.rs`: `/app`, the links with search, filters, sorting and pages;
//! - `tags.rs`: a link's client and reference on the forms;
//! - `addressbook.rs`: clients and their contacts (`/app/clients`).
//! - `notices.rs`: the notification feed, its bell, and the user's preferences.

mod actions;
mod addressbook;
mod bell;
mod browse;
mod create;
mod dashboard;
mod files;
mod flash;
mod login;
mod notices;
mod pages;
mod send;
mod session;
mod tags;
mod views;

use std::collections::HashMap;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::respond::{page, redirect};
use super::{forms, Body, HttpContext};

/// Routes a request whose path starts with `/app`.
pub async fn handle(ctx: &HttpContext, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    let post = req.method() == Method::POST;
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').skip(1).collect();
    let h = &parts.headers;
    // Uploads speak tus (HEAD, PATCH, DELETE, OPTIONS too); the session decides.
    if let ["send", id, "uploads", rest @ ..] = segs.as_slice() {
        if rest.len() > 1 {
            return not_found(ctx);
        }
        let Some(staff) = session::current(ctx, h).await else {
            return page(
                ctx,
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your session has ended; sign in again.",
            );
        };
        let key = rest.first().copied();
        return send::uploads(ctx, peer, &staff, id, key, &parts, body).await;
    }
    // Direct uploads of a draft (straight to the transfer store's bucket).
    if let ["send", id, "direct", rest @ ..] = segs.as_slice() {
        let Some(staff) = session::current(ctx, h).await else {
            return page(
                ctx,
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Your session has ended; sign in again.",
            );
        };
        return send::direct(ctx, peer, &staff, id, rest, &parts, body).await;
    }
    if !get && !post {
        return page(
            ctx,
            StatusCode::METHOD_NOT_ALLOWED,
            "Not allowed",
            "This request is not allowed here.",
        );
    }
    match segs.as_slice() {
        ["login"] if get => return login::show(ctx, peer, h, &parts.uri).await,
        ["login"] if post => return login::submit(ctx, peer, h, body).await,
        _ => {}
    }
    let Some(staff) = session::current(ctx, h).await else {
        return if get {
            login::to_login(ctx, h, &parts.uri)
        } else {
            // A form of a session that has ended; its cookie goes too.
            let mut r = redirect("/app/login");
            forms::clear_cookie(
                r.headers_mut(),
                session::COOKIE,
                session::PATH,
                ctx.secure(),
            );
            r
        };
    };
    // Making links needs the `share` permission (administrators have it).
    if matches!(segs.first(), Some(&("send" | "share" | "request")))
        && !crate::links::may_share(&staff.user)
    {
        return page(
            ctx,
            StatusCode::FORBIDDEN,
            "Not allowed",
            "You may not create links. Ask an administrator for the share permission.",
        );
    }
    match segs.as_slice() {
        [] | [""] if get => dashboard::dashboard(ctx, &staff, h, parts.uri.query()).await,
        ["clients"] if get => addressbook::page(ctx, &staff, h).await,
        ["clients", action] if post => match read_form(ctx, body).await {
            Ok(form) => addressbook::act(ctx, peer, &staff, action, &form).await,
            Err(r) => r,
        },
        ["send"] if get => send::page(ctx, &staff).await,
        ["files"] if get => browse::page(ctx, &staff, peer, parts.uri.query()).await,
        ["share"] if get => create::share_page(ctx, &staff, peer, parts.uri.query()).await,
        ["request"] if get => create::request_page(ctx, &staff, peer, parts.uri.query()).await,
        ["created", id] if get => create::shown(ctx, &staff, id, parts.uri.query()).await,
        ["share"] if post => match read_form(ctx, body).await {
            Ok(form) => create::share(ctx, peer, &staff, &form).await,
            Err(r) => r,
        },
        ["request"] if post => match read_form(ctx, body).await {
            Ok(form) => create::request(ctx, peer, &staff, &form).await,
            Err(r) => r,
        },
        ["send", id, "withdraw"] if post => match read_form(ctx, body).await {
            Ok(form) => send::withdraw(ctx, peer, &staff, id, &form).await,
            Err(r) => r,
        },
        ["send", "draft"] if post => match read_form(ctx, body).await {
            Ok(form) => send::draft(ctx, &staff, &form).await,
            Err(r) => r,
        },
        ["send", id, "finish"] if post => match read_form(ctx, body).await {
            Ok(form) => send::finish(ctx, peer, &staff, id, &form).await,
            Err(r) => r,
        },
        ["notifications"] if get => notices::feed(ctx, &staff, h).await,
        ["notifications", "read"] if post => match read_form(ctx, body).await {
            Ok(form) => notices::mark_read(ctx, &staff, &form).await,
            Err(r) => r,
        },
        ["preferences"] if get => notices::preferences(ctx, &staff, h).await,
        ["preferences"] if post => match read_form(ctx, body).await {
            Ok(form) => notices::save_preferences(ctx, peer, &staff, &form).await,
            Err(r) => r,
        },
        ["links", id] if get => views::detail(ctx, &staff, id, h).await,
        ["links", id, "files", file] if get => files::download(ctx, peer, &staff, id, file).await,
        ["logout"] | ["links", _, _] if post => {
            let form = match read_form(ctx, body).await {
                Ok(f) => f,
                Err(r) => return r,
            };
            match segs.as_slice() {
                ["links", id, action] => actions::act(ctx, peer, &staff, id, action, &form).await,
                _ => login::logout(ctx, peer, &staff, &form).await,
            }
        }
        _ => not_found(ctx),
    }
}

/// Reads a form body, or answers why it could not be read.
async fn read_form(
    ctx: &HttpContext,
    body: Incoming,
) -> Result<HashMap<String, String>, Response<Body>> {
    forms::read_form(body).await.map_err(|e| match e {
        forms::FormError::TooLarge => page(
            ctx,
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too large",
            "That form was too large.",
        ),
        forms::FormError::Unreadable => page(
            ctx,
            StatusCode::BAD_REQUEST,
            "Bad request",
            "That form could not be read.",
        ),
    })
}

/// Unknown pages, and links that are not the user's: the same answer.
fn not_found(ctx: &HttpContext) -> Response<Body> {
    page(
        ctx,
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page here. Go back to your links at /app.",
    )
}

/// A form without this session's CSRF token (old, or from another site).
fn expired(ctx: &HttpContext) -> Response<Body> {
    page(
        ctx,
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form has expired or came from another site. Go back, reload the page and try again.",
    )
}

fn failed(ctx: &HttpContext) -> Response<Body> {
    page(
        ctx,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The server could not do this; the details are in its log. Try again in a moment.",
    )
}
