//! SQL for login lock-outs: bans are kept so that a restart does not lift them.

use rusqlite::{params, Connection};

use crate::error::Result;
use crate::store::{Ban, Millis};

/// Records a ban of `address` until `until`; an existing longer ban stays.
pub fn put(c: &mut Connection, address: &str, until: Millis, now: Millis) -> Result<()> {
    c.execute(
        // `changed_at` moves only when the ban gets longer: other nodes poll it.
        // PostgreSQL: GREATEST(bans.until, excluded.until), and `bans.` before
        // the old row's columns.
        "INSERT INTO bans (address, until, created_at, changed_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT(address) DO UPDATE SET until = max(until, excluded.until),
             changed_at = CASE WHEN excluded.until > until THEN excluded.changed_at ELSE changed_at END",
        params![address, until, now],
    )?;
    Ok(())
}

/// The bans still running at `now`; ended ones are deleted on the way.
pub fn active(c: &mut Connection, now: Millis) -> Result<Vec<Ban>> {
    c.execute("DELETE FROM bans WHERE until <= ?1", [now])?;
    let mut stmt = c.prepare("SELECT address, until FROM bans ORDER BY address")?;
    let bans = stmt
        .query_map([], |r| {
            Ok(Ban {
                address: r.get(0)?,
                until: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(bans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_are_kept_until_they_end_and_never_shortened() {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::migrations::migrate(&mut c).unwrap();
        put(&mut c, "192.0.2.1", 2_000, 0).unwrap();
        put(&mut c, "192.0.2.1", 1_500, 10).unwrap();
        put(&mut c, "192.0.2.2", 900, 0).unwrap();
        let bans = active(&mut c, 1_000).unwrap();
        assert_eq!(bans.len(), 1);
        assert_eq!(
            (bans[0].address.as_str(), bans[0].until),
            ("192.0.2.1", 2_000)
        );
        assert!(active(&mut c, 2_000).unwrap().is_empty());
    }
}
