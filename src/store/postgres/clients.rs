//! SQL for the staff address book: clients and their contacts.

use tokio_postgres::Row;

use super::conn::{begin, commit, get, is_unique_violation, Conn, Sql};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{now_ms, Client, ClientEdit, Contact, NewClient};

const CLIENT_COLS: &str = "id, owner, name, notes, shared, created_at";
const CONTACT_COLS: &str = "id, client_id, name, email, created_at";

fn client(r: &Row) -> Result<Client> {
    Ok(Client {
        id: get(r, 0)?,
        owner: get(r, 1)?,
        name: get(r, 2)?,
        notes: get(r, 3)?,
        shared: get(r, 4)?,
        created_at: get(r, 5)?,
    })
}

fn contact(r: &Row) -> Result<Contact> {
    Ok(Contact {
        id: get(r, 0)?,
        client_id: get(r, 1)?,
        name: get(r, 2)?,
        email: get(r, 3)?,
        created_at: get(r, 4)?,
    })
}

fn taken(name: &str) -> Error {
    let text = format!("there is already a client named {name:?}");
    Error::new(ErrorKind::AlreadyExists, text.clone()).with_public(text)
}

pub fn insert(c: &mut Conn, n: &NewClient) -> Result<Client> {
    let res = c.opt(
        &format!(
            "INSERT INTO clients (owner, name, notes, shared, created_at) VALUES ($1, $2, $3, $4, $5)
             RETURNING {CLIENT_COLS}"
        ),
        &[&n.owner, &n.name, &n.notes, &n.shared, &now_ms()],
    );
    match res {
        Err(e) if is_unique_violation(&e) => Err(taken(&n.name)),
        Err(e) => Err(e),
        Ok(Some(r)) => client(&r),
        Ok(None) => Err(Error::internal("client vanished after insert")),
    }
}

pub fn get_client(c: &mut Conn, id: i64) -> Result<Option<Client>> {
    c.opt(
        &format!("SELECT {CLIENT_COLS} FROM clients WHERE id = $1"),
        &[&id],
    )?
    .map(|r| client(&r))
    .transpose()
}

pub fn list(c: &mut Conn, user: Option<&str>) -> Result<Vec<Client>> {
    c.rows(
        &format!(
            "SELECT {CLIENT_COLS} FROM clients WHERE $1::TEXT IS NULL OR owner = $1 OR shared
             ORDER BY lower(name) COLLATE \"C\", id"
        ),
        &[&user],
    )?
    .iter()
    .map(client)
    .collect()
}

pub fn edit(c: &mut Conn, id: i64, e: &ClientEdit) -> Result<()> {
    let tx = begin(c)?;
    let mut n = 0;
    if let Some(name) = &e.name {
        n += tx
            .exec("UPDATE clients SET name = $1 WHERE id = $2", &[name, &id])
            .map_err(|err| {
                if is_unique_violation(&err) {
                    taken(name)
                } else {
                    err
                }
            })?;
    }
    if let Some(notes) = &e.notes {
        n += tx.exec("UPDATE clients SET notes = $1 WHERE id = $2", &[notes, &id])?;
    }
    if let Some(shared) = e.shared {
        n += tx.exec(
            "UPDATE clients SET shared = $1 WHERE id = $2",
            &[&shared, &id],
        )?;
    }
    commit(tx)?;
    if n == 0 && (e.name.is_some() || e.notes.is_some() || e.shared.is_some()) {
        return Err(Error::not_found("no such client"));
    }
    Ok(())
}

pub fn delete(c: &mut Conn, id: i64) -> Result<()> {
    let tx = begin(c)?;
    tx.exec(
        "UPDATE links SET client_id = NULL WHERE client_id = $1",
        &[&id],
    )?;
    tx.exec("DELETE FROM contacts WHERE client_id = $1", &[&id])?;
    let n = tx.exec("DELETE FROM clients WHERE id = $1", &[&id])?;
    commit(tx)?;
    match n {
        0 => Err(Error::not_found("no such client")),
        _ => Ok(()),
    }
}

pub fn put_contact(c: &mut Conn, client_id: i64, name: &str, email: &str) -> Result<Contact> {
    let r = c.one(
        &format!(
            "INSERT INTO contacts (client_id, name, email, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (client_id, email) DO UPDATE SET name = excluded.name
             RETURNING {CONTACT_COLS}"
        ),
        &[&client_id, &name, &email, &now_ms()],
    )?;
    contact(&r)
}

pub fn get_contact(c: &mut Conn, id: i64) -> Result<Option<Contact>> {
    c.opt(
        &format!("SELECT {CONTACT_COLS} FROM contacts WHERE id = $1"),
        &[&id],
    )?
    .map(|r| contact(&r))
    .transpose()
}

pub fn contacts_of(c: &mut Conn, client_id: i64) -> Result<Vec<Contact>> {
    c.rows(
        &format!(
            "SELECT {CONTACT_COLS} FROM contacts WHERE client_id = $1
             ORDER BY lower(name) COLLATE \"C\", email COLLATE \"C\""
        ),
        &[&client_id],
    )?
    .iter()
    .map(contact)
    .collect()
}

pub fn delete_contact(c: &mut Conn, id: i64) -> Result<()> {
    match c.exec("DELETE FROM contacts WHERE id = $1", &[&id])? {
        0 => Err(Error::not_found("no such contact")),
        _ => Ok(()),
    }
}
