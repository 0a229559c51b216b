//! SQL for the modification times clients set on object stores (see
//! `crate::vfs::TimeBook`): one row per connector and key, read per key (STAT)
//! or per folder (a listing, one query).

use rusqlite::{params, Connection, Row};

use crate::error::Result;
use crate::vfs::KeptTime;

const COLUMNS: &str = "connector, key, dir, mtime_ms, size, tag";

fn row(r: &Row<'_>) -> rusqlite::Result<KeptTime> {
    Ok(KeptTime {
        connector: r.get(0)?,
        key: r.get(1)?,
        dir: r.get(2)?,
        mtime_ms: r.get(3)?,
        size: r.get::<_, i64>(4)? as u64,
        tag: r.get(5)?,
    })
}

pub fn put(c: &mut Connection, t: &KeptTime) -> Result<()> {
    // PostgreSQL: the same upsert with $1..$6.
    c.execute(
        "INSERT INTO object_times (connector, key, dir, mtime_ms, size, tag)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(connector, key) DO UPDATE SET dir = excluded.dir,
             mtime_ms = excluded.mtime_ms, size = excluded.size, tag = excluded.tag",
        params![t.connector, t.key, t.dir, t.mtime_ms, t.size as i64, t.tag],
    )?;
    Ok(())
}

pub fn get(c: &mut Connection, connector: &str, key: &str) -> Result<Option<KeptTime>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM object_times WHERE connector = ?1 AND key = ?2"
    ))?;
    let mut rows = stmt.query(params![connector, key])?;
    Ok(match rows.next()? {
        Some(r) => Some(row(r)?),
        None => None,
    })
}

pub fn in_dir(c: &mut Connection, connector: &str, dir: &str) -> Result<Vec<KeptTime>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM object_times WHERE connector = ?1 AND dir = ?2"
    ))?;
    let rows = stmt.query_map(params![connector, dir], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn delete(c: &mut Connection, connector: &str, key: &str) -> Result<()> {
    c.execute(
        "DELETE FROM object_times WHERE connector = ?1 AND key = ?2",
        params![connector, key],
    )?;
    Ok(())
}
