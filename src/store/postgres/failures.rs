//! SQL for failed-try counting shared by every node: a row per try being checked
//! (reserved before the credentials are looked at) or that failed, within a
//! window. Reserving counts tries in flight on every node, so parallel guesses
//! spread over nodes still get at most the limit checked.

use super::conn::{begin, commit, get, Conn, Sql};
use crate::error::Result;
use crate::store::{Ban, Millis};

/// Reserves a try for `key` unless its failures and tries in flight within
/// `window` already reach `max`: then `None`.
pub fn reserve(
    c: &mut Conn,
    key: &str,
    now: Millis,
    window: Millis,
    max: u32,
) -> Result<Option<i64>> {
    let tx = begin(c)?;
    // Counting then inserting must be one step for every node: a lock per key
    // (held to the end of the transaction) serialises the tries of one key only.
    tx.exec("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key])?;
    tx.exec(
        "DELETE FROM failures WHERE key = $1 AND at_ms <= $2",
        &[&key, &(now - window)],
    )?;
    let n: i64 = get(
        &tx.one("SELECT count(*) FROM failures WHERE key = $1", &[&key])?,
        0,
    )?;
    if n >= i64::from(max) {
        return Ok(None);
    }
    let id: i64 = get(
        &tx.one(
            "INSERT INTO failures (key, at_ms, failed) VALUES ($1, $2, FALSE) RETURNING id",
            &[&key, &now],
        )?,
        0,
    )?;
    commit(tx)?;
    Ok(Some(id))
}

/// Ends reserved try `id` of `key`: a failure is kept (and dated `now`), a
/// success or an abandoned try frees its slot. Returns the failures of `key`
/// within `window`.
pub fn settle(
    c: &mut Conn,
    id: i64,
    key: &str,
    failed: bool,
    now: Millis,
    window: Millis,
) -> Result<u32> {
    if !failed {
        c.exec("DELETE FROM failures WHERE id = $1", &[&id])?;
        return Ok(0);
    }
    c.exec(
        "UPDATE failures SET failed = TRUE, at_ms = $2 WHERE id = $1",
        &[&id, &now],
    )?;
    let n: i64 = get(
        &c.one(
            "SELECT count(*) FROM failures WHERE key = $1 AND failed AND at_ms > $2",
            &[&key, &(now - window)],
        )?,
        0,
    )?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Forgets the failures of `key` (it was just banned); tries in flight stay.
pub fn clear(c: &mut Conn, key: &str) -> Result<()> {
    c.exec("DELETE FROM failures WHERE key = $1 AND failed", &[&key])?;
    Ok(())
}

/// Bans given or lengthened since `since` and still running at `now`.
pub fn bans_changed(c: &mut Conn, since: Millis, now: Millis) -> Result<Vec<Ban>> {
    c.rows(
        "SELECT address, until FROM bans WHERE changed_at >= $1 AND until > $2
         ORDER BY address COLLATE \"C\"",
        &[&since, &now],
    )?
    .iter()
    .map(|r| {
        Ok(Ban {
            address: get(r, 0)?,
            until: get(r, 1)?,
        })
    })
    .collect()
}

/// When the ban of `address` ends, if one runs at `now`.
pub fn ban_until(c: &mut Conn, address: &str, now: Millis) -> Result<Option<Millis>> {
    match c.opt(
        "SELECT until FROM bans WHERE address = $1 AND until > $2",
        &[&address, &now],
    )? {
        Some(r) => Ok(Some(get(&r, 0)?)),
        None => Ok(None),
    }
}
