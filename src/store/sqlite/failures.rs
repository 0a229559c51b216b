//! SQL for failed-try counting shared by every node: a row per try being checked
//! (reserved before the credentials are looked at) or that failed, within a
//! window. Reserving counts tries in flight on every node, so parallel guesses
//! spread over nodes still get at most the limit checked.

use rusqlite::{params, Connection, TransactionBehavior};

use crate::error::Result;
use crate::store::{Ban, Millis};

/// Reserves a try for `key` unless its failures and tries in flight within
/// `window` already reach `max`: then `None`.
pub fn reserve(
    c: &mut Connection,
    key: &str,
    now: Millis,
    window: Millis,
    max: u32,
) -> Result<Option<i64>> {
    // IMMEDIATE takes the write lock first, so the count and the insert are one
    // step for every node. PostgreSQL: run the same in a transaction after
    // `SELECT pg_advisory_xact_lock(hashtext($1))`.
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM failures WHERE key = ?1 AND at_ms <= ?2",
        params![key, now - window],
    )?;
    let n: i64 = tx.query_row(
        "SELECT count(*) FROM failures WHERE key = ?1",
        params![key],
        |r| r.get(0),
    )?;
    if n >= i64::from(max) {
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO failures (key, at_ms, failed) VALUES (?1, ?2, 0)",
        params![key, now],
    )?;
    let id = tx.last_insert_rowid(); // PostgreSQL: RETURNING id
    tx.commit()?;
    Ok(Some(id))
}

/// Ends reserved try `id` of `key`: a failure is kept (and dated `now`), a
/// success or an abandoned try frees its slot. Returns the failures of `key`
/// within `window`.
pub fn settle(
    c: &mut Connection,
    id: i64,
    key: &str,
    failed: bool,
    now: Millis,
    window: Millis,
) -> Result<u32> {
    if !failed {
        c.execute("DELETE FROM failures WHERE id = ?1", [id])?;
        return Ok(0);
    }
    c.execute(
        "UPDATE failures SET failed = 1, at_ms = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    let n: i64 = c.query_row(
        "SELECT count(*) FROM failures WHERE key = ?1 AND failed = 1 AND at_ms > ?2",
        params![key, now - window],
        |r| r.get(0),
    )?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Forgets the failures of `key` (it was just banned); tries in flight stay.
pub fn clear(c: &mut Connection, key: &str) -> Result<()> {
    c.execute("DELETE FROM failures WHERE key = ?1 AND failed = 1", [key])?;
    Ok(())
}

/// Bans given or lengthened since `since` and still running at `now`.
pub fn bans_changed(c: &mut Connection, since: Millis, now: Millis) -> Result<Vec<Ban>> {
    let mut stmt = c.prepare(
        "SELECT address, until FROM bans WHERE changed_at >= ?1 AND until > ?2 ORDER BY address",
    )?;
    let bans = stmt
        .query_map(params![since, now], |r| {
            Ok(Ban {
                address: r.get(0)?,
                until: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(bans)
}

/// When the ban of `address` ends, if one runs at `now`.
pub fn ban_until(c: &mut Connection, address: &str, now: Millis) -> Result<Option<Millis>> {
    let mut stmt = c.prepare("SELECT until FROM bans WHERE address = ?1 AND until > ?2")?;
    let mut rows = stmt.query(params![address, now])?;
    Ok(match rows.next()? {
        Some(r) => Some(r.get(0)?),
        None => None,
    })
}
