//! The staff address book: clients (organisations) and their contacts, with the
//! rules every door (staff pages, API, CLI) applies. A client belongs to the
//! staff member who made it; shared, the whole team sees it and may pick it for
//! links. Only its owner and administrators change it or its contacts.
//! Another user's unshared client is "not found", so ids cannot be probed.

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::policy::links as rules;
use crate::store::{Client, ClientEdit, Contact, Db, NewClient, User};

/// Whether `user` sees `client` (and may pick it for a link).
pub fn visible(user: &User, client: &Client) -> bool {
    user.admin || client.shared || client.owner == user.name
}

/// Whether `user` may change `client` and its contacts.
pub fn editable(user: &User, client: &Client) -> bool {
    user.admin || client.owner == user.name
}

fn no_client(id: i64) -> Error {
    Error::not_found(format!("no client with id {id}"))
}

fn checked_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid("a client needs a name"));
    }
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "a client's name is at most 200 characters on one line",
        ));
    }
    Ok(name.to_string())
}

fn checked_notes(notes: &str) -> Result<String> {
    if notes.chars().count() > 2000 {
        return Err(Error::invalid("notes are at most 2000 characters"));
    }
    Ok(notes.trim().to_string())
}

/// The clients `user` sees, by name (administrators: every client).
pub async fn list(db: &Db, user: &User) -> Result<Vec<Client>> {
    let who = (!user.admin).then(|| user.name.clone());
    db.run(move |s| s.client_list(who.as_deref())).await
}

/// The clients `user` sees, each with its contacts.
pub async fn list_with_contacts(db: &Db, user: &User) -> Result<Vec<(Client, Vec<Contact>)>> {
    let clients = list(db, user).await?;
    db.run(move |s| {
        clients
            .into_iter()
            .map(|c| {
                let contacts = s.contacts_of(c.id)?;
                Ok((c, contacts))
            })
            .collect()
    })
    .await
}

/// Client `id` if `user` sees it.
pub async fn get(db: &Db, user: &User, id: i64) -> Result<Client> {
    let client = db
        .run(move |s| s.client_get(id))
        .await?
        .ok_or_else(|| no_client(id))?;
    if !visible(user, &client) {
        return Err(no_client(id));
    }
    Ok(client)
}

/// Client `id` if `user` may change it (denied if they only see it).
async fn get_editable(db: &Db, user: &User, id: i64) -> Result<Client> {
    let client = get(db, user, id).await?;
    if !editable(user, &client) {
        return Err(Error::denied(format!(
            "client {} belongs to {}; only they or an administrator can change it",
            client.name, client.owner
        )));
    }
    Ok(client)
}

/// A client named by its id, or by its name among those `user` sees.
pub async fn resolve(db: &Db, user: &User, id_or_name: &str) -> Result<Client> {
    if let Ok(id) = id_or_name.trim().parse::<i64>() {
        return get(db, user, id).await;
    }
    let wanted = id_or_name.trim().to_lowercase();
    let found: Vec<Client> = list(db, user)
        .await?
        .into_iter()
        .filter(|c| c.name.to_lowercase() == wanted)
        .collect();
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one client")),
        0 => Err(Error::not_found(format!("no client named {id_or_name:?}"))),
        _ => Err(Error::invalid(format!(
            "several clients are named {id_or_name:?}; give the id"
        ))),
    }
}

pub async fn create(db: &Db, user: &User, name: &str, notes: &str, shared: bool) -> Result<Client> {
    let new = NewClient {
        owner: user.name.clone(),
        name: checked_name(name)?,
        notes: checked_notes(notes)?,
        shared,
    };
    db.run(move |s| s.client_insert(&new)).await
}

pub async fn edit(db: &Db, user: &User, id: i64, edit: ClientEdit) -> Result<Client> {
    get_editable(db, user, id).await?;
    let edit = ClientEdit {
        name: edit.name.as_deref().map(checked_name).transpose()?,
        notes: edit.notes.as_deref().map(checked_notes).transpose()?,
        shared: edit.shared,
    };
    db.run(move |s| s.client_edit(id, &edit)).await?;
    get(db, user, id).await
}

/// Removes the client and its contacts; links made for it keep going.
pub async fn delete(db: &Db, user: &User, id: i64) -> Result<Client> {
    let client = get_editable(db, user, id).await?;
    db.run(move |s| s.client_delete(id)).await?;
    Ok(client)
}

/// Adds a contact (or renames the one with that address).
pub async fn add_contact(
    db: &Db,
    user: &User,
    client_id: i64,
    name: &str,
    email: &str,
) -> Result<Contact> {
    get_editable(db, user, client_id).await?;
    let email = email.trim();
    if !rules::valid_email(email) {
        return Err(Error::invalid(format!(
            "{email:?} is not an e-mail address"
        )));
    }
    let email = rules::normalise_email(email);
    let name = name.trim().to_string();
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "a contact's name is at most 200 characters on one line",
        ));
    }
    db.run(move |s| s.contact_put(client_id, &name, &email))
        .await
}

pub async fn contacts(db: &Db, user: &User, client_id: i64) -> Result<Vec<Contact>> {
    get(db, user, client_id).await?;
    db.run(move |s| s.contacts_of(client_id)).await
}

/// Removes contact `id` (of a client `user` may change).
pub async fn remove_contact(db: &Db, user: &User, id: i64) -> Result<Contact> {
    let contact = db
        .run(move |s| s.contact_get(id))
        .await?
        .ok_or_else(|| Error::not_found(format!("no contact with id {id}")))?;
    get_editable(db, user, contact.client_id)
        .await
        .map_err(|e| match e.kind() {
            crate::error::ErrorKind::NotFound => {
                Error::not_found(format!("no contact with id {id}"))
            }
            _ => e,
        })?;
    db.run(move |s| s.contact_delete(id)).await?;
    Ok(contact)
}

/// A client as the API and `--json` show it.
pub fn client_json(c: &Client, contacts: Option<&[Contact]>) -> Value {
    let mut v = json!({
        "id": c.id,
        "name": c.name,
        "owner": c.owner,
        "notes": c.notes,
        "shared": c.shared,
        "created_at": crate::store::format_ms(c.created_at),
    });
    if let Some(list) = contacts {
        v["contacts"] = Value::Array(list.iter().map(contact_json).collect());
    }
    v
}

pub fn contact_json(c: &Contact) -> Value {
    json!({
        "id": c.id,
        "client_id": c.client_id,
        "name": c.name,
        "email": c.email,
        "created_at": crate::store::format_ms(c.created_at),
    })
}
