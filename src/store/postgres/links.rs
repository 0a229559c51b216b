//! SQL for links and their files.

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::conn::{begin, commit, get, get_opt_u32, get_u32, Conn, Sql, P};
use crate::error::{Error, Result};
use crate::store::{
    now_ms, Inbound, Link, LinkChange, LinkEdit, LinkFile, LinkKind, LinkState, Millis, NewLink,
    RefType, Reference,
};

pub(super) const COLS: &str = "id, public_id, kind, owner, title, message, recipients, expires_at, \
                    max_uses, uses, password_hash, allowed_emails, state, created_at, ended_at, last_used_at, name, \
                    folder, max_size, notify_uploads, generation, token_hash, \
                    client_id, ref_type, ref_value";

fn list_of(s: String) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

pub(super) fn row(r: &Row) -> Result<Link> {
    let bad = |v: &str| Error::internal(format!("stored link: unknown value {v:?}"));
    let kind: String = get(r, 2)?;
    let state: String = get(r, 12)?;
    Ok(Link {
        id: get(r, 0)?,
        public_id: get(r, 1)?,
        kind: LinkKind::parse(&kind).ok_or_else(|| bad(&kind))?,
        owner: get(r, 3)?,
        title: get(r, 4)?,
        message: get(r, 5)?,
        recipients: list_of(get(r, 6)?),
        expires_at: get(r, 7)?,
        max_uses: get_opt_u32(r, 8)?,
        uses: get_u32(r, 9)?,
        password_hash: get(r, 10)?,
        allowed_emails: list_of(get(r, 11)?),
        state: LinkState::parse(&state).ok_or_else(|| bad(&state))?,
        created_at: get(r, 13)?,
        ended_at: get(r, 14)?,
        last_used_at: get(r, 15)?,
        name: get(r, 16)?,
        inbound: match get::<Option<String>>(r, 17)? {
            Some(folder) => Some(Inbound {
                folder,
                max_size: get::<Option<i64>>(r, 18)?.map(|n| n as u64),
                notify: get(r, 19)?,
            }),
            None => None,
        },
        generation: get_opt_u32(r, 20)?,
        token_hash: get(r, 21)?,
        client_id: get(r, 22)?,
        reference: match (get::<Option<String>>(r, 23)?, get::<Option<String>>(r, 24)?) {
            (Some(t), Some(value)) => Some(Reference {
                kind: RefType::parse(&t).ok_or_else(|| bad(&t))?,
                value,
            }),
            _ => None,
        },
    })
}

fn one(c: &impl Sql, clause: &str, value: P) -> Result<Option<Link>> {
    c.opt(
        &format!("SELECT {COLS} FROM links WHERE {clause}"),
        &[value],
    )?
    .map(|r| row(&r))
    .transpose()
}

fn opt_i64(v: Option<u32>) -> Option<i64> {
    v.map(i64::from)
}

pub fn insert(c: &mut Conn, l: &NewLink, files: &[LinkFile]) -> Result<Link> {
    let tx = begin(c)?;
    let r = tx.one(
        "INSERT INTO links (public_id, token_hash, kind, owner, title, message, recipients, expires_at,
                            max_uses, password_hash, allowed_emails, state, created_at, name,
                            folder, max_size, notify_uploads, generation, client_id, ref_type, ref_value)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                 $19, $20, $21)
         RETURNING id",
        &[
            &l.public_id,
            &l.token_hash,
            &l.kind.as_str(),
            &l.owner,
            &l.title,
            &l.message,
            &l.recipients.join(","),
            &l.expires_at,
            &opt_i64(l.max_uses),
            &l.password_hash,
            &l.allowed_emails.join(","),
            &l.state.as_str(),
            &now_ms(),
            &l.name,
            &l.inbound.as_ref().map(|i| i.folder.clone()),
            &l.inbound.as_ref().and_then(|i| i.max_size).map(|n| n as i64),
            &l.inbound.as_ref().is_some_and(|i| i.notify),
            &opt_i64(l.generation),
            &l.client_id,
            &l.reference.as_ref().map(|r| r.kind.as_str()),
            &l.reference.as_ref().map(|r| r.value.clone()),
        ],
    )?;
    let id: i64 = get(&r, 0)?;
    for f in files {
        add_file_on(&tx, id, f)?;
    }
    commit(tx)?;
    by_public_id(c, &l.public_id)?.ok_or_else(|| Error::internal("link vanished after insert"))
}

fn add_file_on(c: &impl Sql, link_id: i64, f: &LinkFile) -> Result<()> {
    c.exec(
        "INSERT INTO link_files (link_id, name, path, is_dir, size, sha256) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&link_id, &f.name, &f.path, &f.is_dir, &(f.size as i64), &f.sha256],
    )?;
    Ok(())
}

pub fn add_file(c: &mut Conn, link_id: i64, f: &LinkFile) -> Result<()> {
    add_file_on(c, link_id, f)
}

pub fn by_token_hash(c: &mut Conn, hash: &str) -> Result<Option<Link>> {
    one(c, "token_hash = $1", &hash)
}

pub fn by_public_id(c: &impl Sql, id: &str) -> Result<Option<Link>> {
    one(c, "public_id = $1", &id)
}

pub fn list(c: &mut Conn, owner: Option<&str>) -> Result<Vec<Link>> {
    c.rows(
        &format!(
            "SELECT {COLS} FROM links WHERE ($1::TEXT IS NULL OR owner = $1)
             ORDER BY created_at DESC, id DESC"
        ),
        &[&owner],
    )?
    .iter()
    .map(row)
    .collect()
}

pub fn files(c: &mut Conn, link_id: i64) -> Result<Vec<LinkFile>> {
    c.rows(
        "SELECT id, name, path, is_dir, size, sha256 FROM link_files WHERE link_id = $1
         ORDER BY name COLLATE \"C\"",
        &[&link_id],
    )?
    .iter()
    .map(|r| {
        Ok(LinkFile {
            id: get(r, 0)?,
            name: get(r, 1)?,
            path: get(r, 2)?,
            is_dir: get(r, 3)?,
            size: get::<i64>(r, 4)? as u64,
            sha256: get(r, 5)?,
        })
    })
    .collect()
}

fn changed(n: u64) -> Result<()> {
    match n {
        0 => Err(Error::not_found("no such link")),
        _ => Ok(()),
    }
}

pub fn change(c: &mut Conn, id: i64, ch: &LinkChange) -> Result<()> {
    let n = match ch {
        LinkChange::Expiry(at) => c.exec(
            "UPDATE links SET expires_at = $1 WHERE id = $2",
            &[at, &id],
        )?,
        LinkChange::Revoke(at) => c.exec(
            "UPDATE links SET state = 'revoked', ended_at = $1 WHERE id = $2 AND state != 'revoked'",
            &[at, &id],
        )?,
        LinkChange::Token { hash, generation } => c.exec(
            "UPDATE links SET token_hash = $1, generation = $2 WHERE id = $3",
            &[hash, &i64::from(*generation), &id],
        )?,
        LinkChange::Activate => c.exec(
            "UPDATE links SET state = 'active' WHERE id = $1 AND state = 'draft'",
            &[&id],
        )?,
        LinkChange::Restore => c.exec(
            "UPDATE links SET state = 'active', ended_at = NULL WHERE id = $1 AND state = 'revoked'",
            &[&id],
        )?,
    };
    changed(n)
}

/// Applies staff's new rules in one statement (nothing if nothing changes).
pub fn edit(c: &mut Conn, id: i64, e: &LinkEdit) -> Result<()> {
    let mut sets: Vec<&str> = Vec::new();
    let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    let mut put = |col: &'static str, v: Box<dyn ToSql + Sync>| {
        sets.push(col);
        values.push(v);
    };
    if let Some(v) = &e.title {
        put("title", Box::new(v.clone()));
    }
    if let Some(v) = &e.message {
        put("message", Box::new(v.clone()));
    }
    if let Some(v) = &e.recipients {
        put("recipients", Box::new(v.join(",")));
    }
    if let Some(v) = &e.password_hash {
        put("password_hash", Box::new(v.clone()));
    }
    if let Some(v) = &e.allowed_emails {
        put("allowed_emails", Box::new(v.join(",")));
    }
    if let Some(v) = e.max_uses {
        put("max_uses", Box::new(opt_i64(v)));
    }
    if let Some(v) = e.expires_at {
        put("expires_at", Box::new(v));
    }
    if let Some(v) = e.client_id {
        put("client_id", Box::new(v));
    }
    if let Some(v) = &e.reference {
        put(
            "ref_type",
            Box::new(v.as_ref().map(|r| r.kind.as_str().to_string())),
        );
        put("ref_value", Box::new(v.as_ref().map(|r| r.value.clone())));
    }
    if sets.is_empty() {
        return Ok(());
    }
    let assignments: Vec<String> = sets
        .iter()
        .enumerate()
        .map(|(i, col)| format!("{col} = ${}", i + 1))
        .collect();
    let sql = format!(
        "UPDATE links SET {} WHERE id = ${}",
        assignments.join(", "),
        sets.len() + 1
    );
    values.push(Box::new(id));
    let params: Vec<P> = values.iter().map(|v| v.as_ref() as P).collect();
    changed(c.exec(&sql, &params)?)
}

/// Gives a draft its rules and token and makes it active; false if it was not
/// (or no longer) a draft.
pub fn finish_draft(c: &mut Conn, id: i64, l: &NewLink) -> Result<bool> {
    let n = c.exec(
        "UPDATE links SET token_hash = $2, title = $3, message = $4, recipients = $5,
                          expires_at = $6, max_uses = $7, password_hash = $8,
                          allowed_emails = $9, name = $10, state = 'active', generation = $11,
                          client_id = $12, ref_type = $13, ref_value = $14
         WHERE id = $1 AND state = 'draft'",
        &[
            &id,
            &l.token_hash,
            &l.title,
            &l.message,
            &l.recipients.join(","),
            &l.expires_at,
            &opt_i64(l.max_uses),
            &l.password_hash,
            &l.allowed_emails.join(","),
            &l.name,
            &opt_i64(l.generation),
            &l.client_id,
            &l.reference.as_ref().map(|r| r.kind.as_str()),
            &l.reference.as_ref().map(|r| r.value.clone()),
        ],
    )?;
    Ok(n == 1)
}

pub fn delete(c: &mut Conn, id: i64) -> Result<()> {
    changed(c.exec("DELETE FROM links WHERE id = $1", &[&id])?)
}

pub fn delete_files(c: &mut Conn, link_id: i64) -> Result<()> {
    c.exec("DELETE FROM link_files WHERE link_id = $1", &[&link_id])?;
    Ok(())
}

/// One statement decides and counts: a concurrent UPDATE of the row waits for
/// this one and then re-checks the WHERE on the new `uses`, so N requests on a
/// one-time link (from any node) see exactly one row updated.
pub fn reserve_use(c: &impl Sql, id: i64, now: Millis) -> Result<bool> {
    let n = c.exec(
        "UPDATE links SET uses = uses + 1, last_used_at = $2
         WHERE id = $1 AND state = 'active'
           AND (expires_at IS NULL OR expires_at > $2)
           AND (max_uses IS NULL OR uses < max_uses)",
        &[&id, &now],
    )?;
    Ok(n == 1)
}

pub fn refund_use(c: &impl Sql, id: i64) -> Result<()> {
    c.exec(
        "UPDATE links SET uses = uses - 1 WHERE id = $1 AND uses > 0",
        &[&id],
    )?;
    Ok(())
}

/// Locks the link's row until the transaction ends: the order every
/// transaction deciding on a link's uses and grants takes its locks in.
pub(super) fn lock(c: &impl Sql, id: i64) -> Result<()> {
    c.exec("SELECT 1 FROM links WHERE id = $1 FOR UPDATE", &[&id])?;
    Ok(())
}
