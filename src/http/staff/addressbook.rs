//! `/app/clients`: the staff address book. A staff member keeps clients
//! (organisations) and their contacts, and may share a client with the whole
//! team; links can be filed under a client, whose contacts the create forms
//! suggest as recipients. The rules (who sees, who changes) are
//! `crate::addressbook`'s, shared with the API and the CLI. Every change is a
//! POST with the session's CSRF token, audited, then a redirect with a message.

use std::collections::HashMap;
use std::net::SocketAddr;

use hyper::header::HeaderMap;
use hyper::Response;

use super::super::pages::esc;
use super::super::respond::{brand, redirect};
use super::super::{Body, HttpContext};
use super::flash::{self, Kind};
use super::pages::{frame, script};
use super::session::Staff;
use super::views::shown;
use super::{expired, failed};
use crate::addressbook as book;
use crate::audit::{AuditEvent, Outcome};
use crate::error::{Error, ErrorKind};
use crate::policy::Protocol;
use crate::store::{Client, ClientEdit, Contact};

const PAGE: &str = "/app/clients";

/// `GET /app/clients`.
pub async fn page(ctx: &HttpContext, staff: &Staff, headers: &HeaderMap) -> Response<Body> {
    let list = match book::list_with_contacts(&ctx.db, &staff.user).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "reading the address book");
            return failed(ctx);
        }
    };
    shown(ctx, headers, |flash| {
        let cards: String = list.iter().map(|(c, k)| card(staff, c, k)).collect();
        let cards = if cards.is_empty() {
            "<p class=\"muted\">No clients yet.</p>".to_string()
        } else {
            cards
        };
        let add = post(
            "add",
            &staff.csrf,
            "<label for=\"c-name\">Name</label><input id=\"c-name\" name=\"name\" maxlength=\"200\" required>\
             <label for=\"c-notes\">Notes <span class=\"muted\">(optional)</span></label>\
             <input id=\"c-notes\" name=\"notes\" maxlength=\"2000\">\
             <label class=\"inline\"><input type=\"checkbox\" name=\"shared\" value=\"1\"> Share with the team</label>",
            "Add client",
            "",
        );
        let body = format!(
            "{STYLE}<h1>Clients</h1><p class=\"muted\">Organisations you send to and their contacts. \
             A link can be filed under a client; picking it on a create form suggests its contacts as \
             recipients. A shared client is seen and used by every staff member; only its owner \
             (and administrators) change it.</p>{cards}<h2>New client</h2>{add}{script}",
            script = script("localtime.js"),
        );
        frame(&brand(ctx), staff, "Clients", flash, &body)
    })
}

fn post(action: &str, csrf: &str, fields: &str, button: &str, class: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{PAGE}/{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         {fields}<button type=\"submit\"{class}>{button}</button></form>",
        csrf = esc(csrf),
        class = if class.is_empty() {
            String::new()
        } else {
            format!(" class=\"{class}\"")
        },
    )
}

fn card(staff: &Staff, c: &Client, contacts: &[Contact]) -> String {
    let mine = book::editable(&staff.user, c);
    let id = c.id;
    let rows: String = contacts
        .iter()
        .map(|k| {
            let remove = if mine {
                post(
                    "contact-remove",
                    &staff.csrf,
                    &format!(
                        "<input type=\"hidden\" name=\"contact\" value=\"{}\">",
                        k.id
                    ),
                    "Remove",
                    "small danger",
                )
            } else {
                String::new()
            };
            format!(
                "<tr><td>{name}</td><td>{email}</td><td>{remove}</td></tr>",
                name = if k.name.is_empty() {
                    "<span class=\"muted\">—</span>".into()
                } else {
                    esc(&k.name)
                },
                email = esc(&k.email),
            )
        })
        .collect();
    let table = if rows.is_empty() {
        "<p class=\"muted small\">No contacts.</p>".to_string()
    } else {
        format!("<table class=\"contacts\"><thead><tr><th>Name</th><th>E-mail</th><th></th></tr></thead><tbody>{rows}</tbody></table>")
    };
    let tools = if mine {
        let hidden = format!("<input type=\"hidden\" name=\"client\" value=\"{id}\">");
        format!(
            "<details><summary>Add a contact, edit or remove</summary>{add}{edit}{delete}</details>",
            add = post(
                "contact-add",
                &staff.csrf,
                &format!(
                    "{hidden}<div class=\"pair\"><span><label for=\"n-{id}\">Name</label><input id=\"n-{id}\" name=\"name\" maxlength=\"200\"></span>\
                     <span><label for=\"e-{id}\">E-mail</label><input id=\"e-{id}\" name=\"email\" type=\"email\" required></span></div>"
                ),
                "Add contact",
                "",
            ),
            edit = post(
                "edit",
                &staff.csrf,
                &format!(
                    "{hidden}<label for=\"cn-{id}\">Name</label><input id=\"cn-{id}\" name=\"name\" maxlength=\"200\" value=\"{name}\" required>\
                     <label for=\"cx-{id}\">Notes</label><input id=\"cx-{id}\" name=\"notes\" maxlength=\"2000\" value=\"{notes}\">\
                     <input type=\"hidden\" name=\"shared\" value=\"0\">\
                     <label class=\"inline\"><input type=\"checkbox\" name=\"shared\" value=\"1\"{checked}> Share with the team</label>",
                    name = esc(&c.name),
                    notes = esc(&c.notes),
                    checked = if c.shared { " checked" } else { "" },
                ),
                "Save",
                "",
            ),
            delete = post(
                "delete",
                &staff.csrf,
                &format!(
                    "{hidden}<label class=\"inline\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> \
                     Remove this client and its contacts (its links stay)</label>"
                ),
                "Remove client",
                "danger",
            ),
        )
    } else {
        String::new()
    };
    format!(
        "<section class=\"client\" id=\"client-{id}\"><h2>{name}</h2>\
         <p class=\"muted small\">{shared} · {owner} · <a href=\"/app?client={id}\">its links</a></p>{notes}{table}{tools}</section>",
        name = esc(&c.name),
        shared = if c.shared { "shared with the team" } else { "private" },
        owner = if c.owner == staff.user.name {
            "yours".to_string()
        } else {
            format!("by {}", esc(&c.owner))
        },
        notes = if c.notes.is_empty() {
            String::new()
        } else {
            format!("<p>{}</p>", esc(&c.notes))
        },
    )
}

const STYLE: &str = "<style>section.client{border:1px solid #d3d7de;border-radius:.5rem;padding:.25rem 1rem 1rem;margin:1rem 0}\
section.client h2{margin:.6rem 0 .2rem}section.client details{margin-top:.75rem}section.client summary{cursor:pointer}\
section.client form{margin:.5rem 0}.pair{display:flex;gap:.5rem;flex-wrap:wrap}.pair span{flex:1 1 12rem}\
table.contacts form{margin:0}button.small{padding:.2rem .6rem;font-size:.85rem}button.danger{background:#a4161a}\
label.inline{font-weight:400;display:flex;gap:.5rem;align-items:center}label.inline input{width:auto}</style>";

fn id_of(form: &HashMap<String, String>, key: &str) -> Result<i64, Error> {
    form.get(key)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::invalid("that form is missing what it acts on"))
}

/// `POST /app/clients/{action}`.
pub async fn act(
    ctx: &HttpContext,
    peer: SocketAddr,
    staff: &Staff,
    action: &str,
    form: &HashMap<String, String>,
) -> Response<Body> {
    if !staff.csrf_ok(form.get("csrf")) {
        return expired(ctx);
    }
    let text = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let user = &staff.user;
    let db = &ctx.db;
    let (audit, result): (&str, Result<(String, String), Error>) = match action {
        "add" => (
            "client_create",
            book::create(
                db,
                user,
                &text("name"),
                &text("notes"),
                form.contains_key("shared"),
            )
            .await
            .map(|c| {
                (
                    format!("client:{}", c.id),
                    format!("Client {} added.", c.name),
                )
            }),
        ),
        "edit" => (
            "client_edit",
            match id_of(form, "client") {
                Ok(id) => {
                    // A hidden "0" before the box: the last value read wins.
                    let edit = ClientEdit {
                        name: form.get("name").map(|v| v.trim().to_string()),
                        notes: form.get("notes").map(|v| v.trim().to_string()),
                        shared: form.get("shared").map(|v| v == "1"),
                    };
                    book::edit(db, user, id, edit)
                        .await
                        .map(|c| (format!("client:{id}"), format!("Client {} saved.", c.name)))
                }
                Err(e) => Err(e),
            },
        ),
        "delete" => (
            "client_delete",
            match id_of(form, "client") {
                Ok(_) if form.get("confirm").map(String::as_str) != Some("yes") => {
                    Err(Error::invalid("tick the box to confirm the removal"))
                }
                Ok(id) => book::delete(db, user, id).await.map(|c| {
                    (
                        format!("client:{id}"),
                        format!("Client {} removed.", c.name),
                    )
                }),
                Err(e) => Err(e),
            },
        ),
        "contact-add" => (
            "contact_add",
            match id_of(form, "client") {
                Ok(id) => book::add_contact(db, user, id, &text("name"), &text("email"))
                    .await
                    .map(|k| {
                        (
                            format!("client:{id}"),
                            format!("Contact {} added.", k.email),
                        )
                    }),
                Err(e) => Err(e),
            },
        ),
        "contact-remove" => (
            "contact_remove",
            match id_of(form, "contact") {
                Ok(id) => book::remove_contact(db, user, id).await.map(|k| {
                    (
                        format!("client:{}", k.client_id),
                        format!("Contact {} removed.", k.email),
                    )
                }),
                Err(e) => Err(e),
            },
        ),
        _ => return super::not_found(ctx),
    };
    let (outcome, path, detail, kind, message) = match result {
        Ok((path, message)) => (
            Outcome::Ok,
            Some(path),
            message.clone(),
            Kind::Done,
            message,
        ),
        Err(e) => {
            let refused = matches!(
                e.kind(),
                ErrorKind::InvalidInput
                    | ErrorKind::NotFound
                    | ErrorKind::PermissionDenied
                    | ErrorKind::AlreadyExists
            );
            if refused {
                let t = crate::reply::text(&e).to_string();
                (Outcome::Denied, None, e.to_string(), Kind::Error, t)
            } else {
                tracing::error!(action, error = %e, "address book change failed");
                (
                    Outcome::Failed,
                    None,
                    e.to_string(),
                    Kind::Error,
                    "That did not work; the server log has the details.".to_string(),
                )
            }
        }
    };
    let mut ev = AuditEvent::new(Protocol::Http, audit)
        .remote(peer)
        .actor(user.name.clone())
        .outcome(outcome)
        .detail(detail);
    if let Some(p) = path {
        ev = ev.path(p);
    }
    ctx.audit.record(ev).await;
    let mut r = redirect(PAGE);
    flash::set(ctx, r.headers_mut(), kind, &message);
    r
}
