//! SQL for leases: a named right (run a job, hold a lock) that one holder has
//! until a time. Taking is one conditional upsert, so two nodes can never both
//! hold a lease; a holder that dies simply stops renewing and loses it.

use super::conn::{get, Conn, Sql};
use crate::error::Result;
use crate::store::Millis;

/// Takes `name` for `holder` until `now + ttl` if it is free, expired, or
/// already `holder`'s (which renews it). True when `holder` now has it.
pub fn take(c: &mut Conn, name: &str, holder: &str, ttl: Millis, now: Millis) -> Result<bool> {
    // PostgreSQL re-checks the WHERE on the newest row after waiting for a
    // concurrent upsert, so exactly one of two racing nodes gets a row.
    let n = c.exec(
        "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3::BIGINT + $4::BIGINT)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
         WHERE leases.holder = excluded.holder OR leases.until_ms <= $3::BIGINT",
        &[&name, &holder, &now, &ttl],
    )?;
    Ok(n == 1)
}

/// Gives `name` up if `holder` has it; nothing happens otherwise.
pub fn release(c: &mut Conn, name: &str, holder: &str) -> Result<()> {
    c.exec(
        "DELETE FROM leases WHERE name = $1 AND holder = $2",
        &[&name, &holder],
    )?;
    Ok(())
}

/// Who holds `name` at `now`, if anyone.
pub fn holder(c: &mut Conn, name: &str, now: Millis) -> Result<Option<String>> {
    match c.opt(
        "SELECT holder FROM leases WHERE name = $1 AND until_ms > $2",
        &[&name, &now],
    )? {
        Some(r) => Ok(Some(get(&r, 0)?)),
        None => Ok(None),
    }
}
