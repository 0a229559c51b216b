//! SQL for the staff address book: clients and their contacts.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::{Error, ErrorKind, Result};
use crate::store::{now_ms, Client, ClientEdit, Contact, NewClient};

const CLIENT_COLS: &str = "id, owner, name, notes, shared, created_at";
const CONTACT_COLS: &str = "id, client_id, name, email, created_at";

fn client(r: &Row<'_>) -> rusqlite::Result<Client> {
    Ok(Client {
        id: r.get(0)?,
        owner: r.get(1)?,
        name: r.get(2)?,
        notes: r.get(3)?,
        shared: r.get(4)?,
        created_at: r.get(5)?,
    })
}

fn contact(r: &Row<'_>) -> rusqlite::Result<Contact> {
    Ok(Contact {
        id: r.get(0)?,
        client_id: r.get(1)?,
        name: r.get(2)?,
        email: r.get(3)?,
        created_at: r.get(4)?,
    })
}

fn taken(name: &str) -> Error {
    let text = format!("there is already a client named {name:?}");
    Error::new(ErrorKind::AlreadyExists, text.clone()).with_public(text)
}

fn unique(e: &rusqlite::Error) -> bool {
    super::users::is_unique_violation(e)
}

pub fn insert(c: &mut Connection, n: &NewClient) -> Result<Client> {
    let res = c.execute(
        "INSERT INTO clients (owner, name, notes, shared, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![n.owner, n.name, n.notes, n.shared, now_ms()],
    );
    match res {
        Err(e) if unique(&e) => Err(taken(&n.name)),
        Err(e) => Err(e.into()),
        Ok(_) => {
            let id = c.last_insert_rowid();
            get(c, id)?.ok_or_else(|| Error::internal("client vanished after insert"))
        }
    }
}

pub fn get(c: &mut Connection, id: i64) -> Result<Option<Client>> {
    Ok(c.query_row(
        &format!("SELECT {CLIENT_COLS} FROM clients WHERE id = ?1"),
        [id],
        client,
    )
    .optional()?)
}

pub fn list(c: &mut Connection, user: Option<&str>) -> Result<Vec<Client>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {CLIENT_COLS} FROM clients WHERE ?1 IS NULL OR owner = ?1 OR shared = 1
         ORDER BY lower(name), id"
    ))?;
    let rows = stmt.query_map([user], client)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn edit(c: &mut Connection, id: i64, e: &ClientEdit) -> Result<()> {
    let tx = c.transaction()?;
    let mut n = 0;
    if let Some(name) = &e.name {
        n += tx
            .execute(
                "UPDATE clients SET name = ?1 WHERE id = ?2",
                params![name, id],
            )
            .map_err(|err| {
                if unique(&err) {
                    taken(name)
                } else {
                    err.into()
                }
            })?;
    }
    if let Some(notes) = &e.notes {
        n += tx.execute(
            "UPDATE clients SET notes = ?1 WHERE id = ?2",
            params![notes, id],
        )?;
    }
    if let Some(shared) = e.shared {
        n += tx.execute(
            "UPDATE clients SET shared = ?1 WHERE id = ?2",
            params![shared, id],
        )?;
    }
    tx.commit()?;
    if n == 0 && (e.name.is_some() || e.notes.is_some() || e.shared.is_some()) {
        return Err(Error::not_found("no such client"));
    }
    Ok(())
}

pub fn delete(c: &mut Connection, id: i64) -> Result<()> {
    let tx = c.transaction()?;
    // Links keep going without a client (also without foreign keys enforced).
    tx.execute(
        "UPDATE links SET client_id = NULL WHERE client_id = ?1",
        [id],
    )?;
    tx.execute("DELETE FROM contacts WHERE client_id = ?1", [id])?;
    let n = tx.execute("DELETE FROM clients WHERE id = ?1", [id])?;
    tx.commit()?;
    match n {
        0 => Err(Error::not_found("no such client")),
        _ => Ok(()),
    }
}

pub fn put_contact(c: &mut Connection, client_id: i64, name: &str, email: &str) -> Result<Contact> {
    c.execute(
        "INSERT INTO contacts (client_id, name, email, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (client_id, email) DO UPDATE SET name = excluded.name",
        params![client_id, name, email, now_ms()],
    )?;
    Ok(c.query_row(
        &format!("SELECT {CONTACT_COLS} FROM contacts WHERE client_id = ?1 AND email = ?2"),
        params![client_id, email],
        contact,
    )?)
}

pub fn get_contact(c: &mut Connection, id: i64) -> Result<Option<Contact>> {
    Ok(c.query_row(
        &format!("SELECT {CONTACT_COLS} FROM contacts WHERE id = ?1"),
        [id],
        contact,
    )
    .optional()?)
}

pub fn contacts_of(c: &mut Connection, client_id: i64) -> Result<Vec<Contact>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {CONTACT_COLS} FROM contacts WHERE client_id = ?1 ORDER BY lower(name), email"
    ))?;
    let rows = stmt.query_map([client_id], contact)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete_contact(c: &mut Connection, id: i64) -> Result<()> {
    match c.execute("DELETE FROM contacts WHERE id = ?1", [id])? {
        0 => Err(Error::not_found("no such contact")),
        _ => Ok(()),
    }
}
