//! SQL for leases: a named right (run a job, hold a lock) that one holder has
//! until a time. Taking is one conditional upsert, so two nodes can never both
//! hold a lease; a holder that dies simply stops renewing and loses it.

use rusqlite::{params, Connection};

use crate::error::Result;
use crate::store::Millis;

/// Takes `name` for `holder` until `now + ttl` if it is free, expired, or
/// already `holder`'s (which renews it). True when `holder` now has it.
pub fn take(
    c: &mut Connection,
    name: &str,
    holder: &str,
    ttl: Millis,
    now: Millis,
) -> Result<bool> {
    // PostgreSQL: the same statement with $1..$4 (the row count says who won).
    let n = c.execute(
        "INSERT INTO leases (name, holder, until_ms) VALUES (?1, ?2, ?3 + ?4)
         ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
         WHERE leases.holder = excluded.holder OR leases.until_ms <= ?3",
        params![name, holder, now, ttl],
    )?;
    Ok(n == 1)
}

/// Gives `name` up if `holder` has it; nothing happens otherwise.
pub fn release(c: &mut Connection, name: &str, holder: &str) -> Result<()> {
    c.execute(
        "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
        params![name, holder],
    )?;
    Ok(())
}

/// Who holds `name` at `now`, if anyone.
pub fn holder(c: &mut Connection, name: &str, now: Millis) -> Result<Option<String>> {
    let mut stmt = c.prepare("SELECT holder FROM leases WHERE name = ?1 AND until_ms > ?2")?;
    let mut rows = stmt.query(params![name, now])?;
    Ok(match rows.next()? {
        Some(r) => Some(r.get(0)?),
        None => None,
    })
}
