//! SQL for staff web sessions.

use super::conn::{begin, commit, get, Conn, Sql};
use super::users;
use crate::error::Result;
use crate::store::{Millis, NewWebSession, WebSession};

pub fn insert(c: &mut Conn, s: &NewWebSession) -> Result<()> {
    c.exec(
        "INSERT INTO web_sessions (token_hash, user_id, csrf, created_at, expires_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $5, $4)",
        &[
            &s.token_hash,
            &s.user_id,
            &s.csrf,
            &s.created_at,
            &s.expires_at,
        ],
    )?;
    Ok(())
}

pub fn touch(
    c: &mut Conn,
    token_hash: &str,
    now: Millis,
    seen_since: Millis,
) -> Result<Option<WebSession>> {
    // The row is locked while checked and marked seen, so a request refreshing
    // it and one finding it idle (on any node) cannot interleave.
    let tx = begin(c)?;
    let row = tx.opt(
        "SELECT id, user_id, csrf, created_at, expires_at, last_seen_at
         FROM web_sessions WHERE token_hash = $1 FOR UPDATE",
        &[&token_hash],
    )?;
    let Some(r) = row else {
        return Ok(None);
    };
    let (id, user_id, csrf, created_at, expires_at, last_seen_at): (
        i64,
        i64,
        String,
        i64,
        i64,
        i64,
    ) = (
        get(&r, 0)?,
        get(&r, 1)?,
        get(&r, 2)?,
        get(&r, 3)?,
        get(&r, 4)?,
        get(&r, 5)?,
    );
    if now >= expires_at || last_seen_at <= seen_since {
        tx.exec("DELETE FROM web_sessions WHERE id = $1", &[&id])?;
        commit(tx)?;
        return Ok(None);
    }
    tx.exec(
        "UPDATE web_sessions SET last_seen_at = $1 WHERE id = $2",
        &[&now, &id],
    )?;
    let user = users::get_by_id(&tx, user_id)?;
    commit(tx)?;
    Ok(user.map(|user| WebSession {
        id,
        user,
        csrf,
        created_at,
        expires_at,
        last_seen_at: now,
    }))
}

pub fn delete(c: &mut Conn, token_hash: &str) -> Result<()> {
    c.exec(
        "DELETE FROM web_sessions WHERE token_hash = $1",
        &[&token_hash],
    )?;
    Ok(())
}

pub fn purge(c: &mut Conn, now: Millis, seen_since: Millis) -> Result<usize> {
    Ok(c.exec(
        "DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
        &[&now, &seen_since],
    )? as usize)
}
