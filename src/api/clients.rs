//! The address book in the API: `/api/v1/clients` (list, create, show, edit,
//! delete) and `/api/v1/contacts` (list a client's, add, remove). The rules are
//! `crate::addressbook`'s: a caller sees their own and shared clients (an
//! administrator every one), and changes only their own (an administrator
//! any). Another user's unshared client answers 404. Changes are audited
//! (`client_create`, `client_edit`, `client_delete`, `contact_add`,
//! `contact_remove`) with the path `client:<id>`.

use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::json::{self, no_content, ok};
use super::record_at;
use crate::addressbook as book;
use crate::http::{Body, HttpContext};
use crate::store::ClientEdit;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    name: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    shared: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditClient {
    name: Option<String>,
    notes: Option<String>,
    shared: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    client_id: i64,
    #[serde(default)]
    name: String,
    email: String,
}

fn id_of(id: &str, what: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found(format!("no {what} with id {id:?}")))
}

fn path(id: i64) -> Option<String> {
    Some(format!("client:{id}"))
}

pub async fn list(
    ctx: &HttpContext,
    caller: &Caller,
    raw: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    json::query(raw, &[])?;
    let items: Vec<_> = book::list_with_contacts(&ctx.db, &caller.user)
        .await?
        .iter()
        .map(|(c, k)| book::client_json(c, Some(k)))
        .collect();
    Ok(ok(json!({ "items": items })))
}

pub async fn show(
    ctx: &HttpContext,
    caller: &Caller,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    let id = id_of(id, "client")?;
    let client = book::get(&ctx.db, &caller.user, id).await?;
    let contacts = book::contacts(&ctx.db, &caller.user, id).await?;
    Ok(ok(book::client_json(&client, Some(&contacts))))
}

pub async fn create(
    ctx: &HttpContext,
    caller: &Caller,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let res = async {
        let req: NewClient = json::read_json(body).await?;
        Ok::<_, ApiError>(
            book::create(&ctx.db, &caller.user, &req.name, &req.notes, req.shared).await?,
        )
    }
    .await;
    let p = res.as_ref().ok().and_then(|c| path(c.id));
    let note = res.as_ref().map(|c| c.name.clone()).unwrap_or_default();
    let client = record_at(ctx, caller, "client_create", p, &note, res).await?;
    Ok(crate::http::json(
        StatusCode::CREATED,
        &book::client_json(&client, Some(&[])),
    ))
}

pub async fn edit(
    ctx: &HttpContext,
    caller: &Caller,
    id: &str,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let id = id_of(id, "client")?;
    let res = async {
        let req: EditClient = json::read_json(body).await?;
        let edit = ClientEdit {
            name: req.name,
            notes: req.notes,
            shared: req.shared,
        };
        let client = book::edit(&ctx.db, &caller.user, id, edit).await?;
        let contacts = book::contacts(&ctx.db, &caller.user, id).await?;
        Ok::<_, ApiError>(book::client_json(&client, Some(&contacts)))
    }
    .await;
    let v = record_at(ctx, caller, "client_edit", path(id), "", res).await?;
    Ok(ok(v))
}

pub async fn delete(
    ctx: &HttpContext,
    caller: &Caller,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    let id = id_of(id, "client")?;
    let res = book::delete(&ctx.db, &caller.user, id)
        .await
        .map_err(ApiError::from);
    let note = res.as_ref().map(|c| c.name.clone()).unwrap_or_default();
    record_at(ctx, caller, "client_delete", path(id), &note, res).await?;
    Ok(no_content())
}

pub async fn contacts(
    ctx: &HttpContext,
    caller: &Caller,
    raw: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let q = json::query(raw, &["client"])?;
    let client = q
        .get("client")
        .ok_or_else(|| ApiError::invalid("give the client whose contacts to list (?client=ID)"))?;
    let id = id_of(client, "client")?;
    let items: Vec<_> = book::contacts(&ctx.db, &caller.user, id)
        .await?
        .iter()
        .map(book::contact_json)
        .collect();
    Ok(ok(json!({ "items": items })))
}

pub async fn add_contact(
    ctx: &HttpContext,
    caller: &Caller,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let mut at = None;
    let res = async {
        let req: NewContact = json::read_json(body).await?;
        at = path(req.client_id);
        Ok::<_, ApiError>(
            book::add_contact(&ctx.db, &caller.user, req.client_id, &req.name, &req.email).await?,
        )
    }
    .await;
    let note = res.as_ref().map(|k| k.email.clone()).unwrap_or_default();
    let contact = record_at(ctx, caller, "contact_add", at, &note, res).await?;
    Ok(crate::http::json(
        StatusCode::CREATED,
        &book::contact_json(&contact),
    ))
}

pub async fn remove_contact(
    ctx: &HttpContext,
    caller: &Caller,
    id: &str,
) -> Result<Response<Body>, ApiError> {
    let id = id_of(id, "contact")?;
    let res = book::remove_contact(&ctx.db, &caller.user, id)
        .await
        .map_err(ApiError::from);
    let at = res.as_ref().ok().and_then(|k| path(k.client_id));
    let note = res.as_ref().map(|k| k.email.clone()).unwrap_or_default();
    record_at(ctx, caller, "contact_remove", at, &note, res).await?;
    Ok(no_content())
}
