//! SQL for login lock-outs, shared by every node on the database.

use super::conn::{get, Conn, Sql};
use crate::error::Result;
use crate::store::{Ban, Millis};

/// Records a ban of `address` until `until`; an existing longer ban stays.
pub fn put(c: &mut Conn, address: &str, until: Millis, now: Millis) -> Result<()> {
    c.exec(
        // `changed_at` moves only when the ban gets longer: other nodes poll it.
        "INSERT INTO bans (address, until, created_at, changed_at) VALUES ($1, $2, $3, $3)
         ON CONFLICT (address) DO UPDATE SET until = GREATEST(bans.until, excluded.until),
             changed_at = CASE WHEN excluded.until > bans.until THEN excluded.changed_at
                               ELSE bans.changed_at END",
        &[&address, &until, &now],
    )?;
    Ok(())
}

/// The bans still running at `now`; ended ones are deleted on the way.
pub fn active(c: &mut Conn, now: Millis) -> Result<Vec<Ban>> {
    c.exec("DELETE FROM bans WHERE until <= $1", &[&now])?;
    c.rows(
        "SELECT address, until FROM bans ORDER BY address COLLATE \"C\"",
        &[],
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
