//! The admin HTTP API: JSON under `/api/v1` on the link server, authenticated
//! with API keys and acting as the key's user, with that user's permissions.
//! `docs/api.md` describes it for people, `docs/openapi.json` for programs.
//!
//! - `routes.rs`: the route table (the OpenAPI document is checked against it);
//! - `auth.rs`: bearer keys, the defender, the caller;
//! - `error.rs`: JSON errors with stable codes; `json.rs`: bodies, query
//!   strings, cursors;
//! - `links.rs`: list, show, edit and manage links; `create.rs`: new links from JSON;
//!   `upload.rs`: new send links from uploaded files (multipart);
//! - `audit.rs`, `users.rs`: reading the audit log and the accounts;
//! - `view.rs`: what a response shows of a link or an audit row;
//! - `openapi.rs`: the document.

mod audit;
mod auth;
mod create;
mod error;
mod json;
mod links;
mod openapi;
mod routes;
mod upload;
mod users;
mod view;

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Request, Response};

pub use openapi::{operations as documented_operations, DOCUMENT as OPENAPI};
pub use routes::ROUTES;

use auth::Caller;
use error::ApiError;
use routes::Route;

use crate::audit::Outcome;
use crate::http::{Body, HttpContext};

/// Answers a request under `/api/v1/`.
pub async fn handle(ctx: &HttpContext, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let matched = match routes::find(req.method(), req.uri().path()) {
        Ok(m) => m,
        Err(e) => return e.response(),
    };
    if matched.route == Route::OpenApi {
        return openapi::serve();
    }
    let caller = match auth::authenticate(ctx, peer, req.headers()).await {
        Ok(c) => c,
        Err(e) => return e.response(),
    };
    let id = matched.id.as_deref().unwrap_or_default();
    let query = req.uri().query().map(str::to_string);
    let query = query.as_deref();
    let res = match matched.route {
        Route::ListLinks => links::list(ctx, &caller, query).await,
        Route::CreateLink => create::create(ctx, &caller, req).await,
        Route::GetLink => links::show(ctx, &caller, id).await,
        Route::DeleteLink => links::delete(ctx, &caller, id).await,
        Route::ExtendLink => links::extend(ctx, &caller, id, req.into_body()).await,
        Route::RevokeLink => links::revoke(ctx, &caller, id, req.into_body()).await,
        Route::RegenerateLink => links::regenerate(ctx, &caller, id, req.into_body()).await,
        Route::ResendLink => links::resend(ctx, &caller, id, req.into_body()).await,
        Route::EditLink => links::edit(ctx, &caller, id, req.into_body()).await,
        Route::RestoreLink => links::restore(ctx, &caller, id, req.into_body()).await,
        Route::Audit => audit::query(ctx, &caller, query).await,
        Route::Users => users::list(ctx, &caller, query).await,
        Route::EditUser => users::edit(ctx, &caller, id, req.into_body()).await,
        Route::OpenApi => Ok(openapi::serve()),
    };
    res.unwrap_or_else(ApiError::response)
}

/// Writes the audit row of a change made through the API — actor, protocol
/// http, address, `api key <prefix>`, the outcome — and passes the result on.
/// The row is written before the answer, so a client that reads the log right
/// after a change finds it there.
async fn record<T>(
    ctx: &HttpContext,
    caller: &Caller,
    action: &str,
    link: Option<&str>,
    note: &str,
    res: Result<T, ApiError>,
) -> Result<T, ApiError> {
    let mut ev = caller.event(action);
    if let Some(id) = link {
        ev = ev.path(format!("link:{id}"));
    }
    let mut detail = format!("api key {}", caller.prefix);
    if !note.is_empty() {
        detail = format!("{detail}; {note}");
    }
    if let Err(e) = &res {
        let outcome = match e.code {
            "forbidden" | "not_found" => Outcome::Denied,
            _ => Outcome::Failed,
        };
        ev = ev.outcome(outcome);
        detail = format!("{detail}; {}: {}", e.code, e.message);
    }
    ev = ev.detail(detail);
    let row = ev.clone();
    if let Err(e) = ctx.db.run(move |s| s.audit_append(&[row])).await {
        tracing::warn!(error = %e, "writing an API audit row directly failed; queueing it");
        ctx.audit.record(ev).await;
    }
    res
}
