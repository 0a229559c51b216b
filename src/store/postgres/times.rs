//! SQL for the modification times clients set on object stores (see
//! `crate::vfs::TimeBook`): one row per connector and key, read per key (STAT)
//! or per folder (a listing, one query).

use tokio_postgres::Row;

use super::conn::{get as col, Conn, Sql};
use crate::error::Result;
use crate::vfs::KeptTime;

const COLUMNS: &str = "connector, key, dir, mtime_ms, size, tag";

fn row(r: &Row) -> Result<KeptTime> {
    Ok(KeptTime {
        connector: col(r, 0)?,
        key: col(r, 1)?,
        dir: col(r, 2)?,
        mtime_ms: col(r, 3)?,
        size: col::<i64>(r, 4)? as u64,
        tag: col(r, 5)?,
    })
}

pub fn put(c: &mut Conn, t: &KeptTime) -> Result<()> {
    c.exec(
        "INSERT INTO object_times (connector, key, dir, mtime_ms, size, tag)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (connector, key) DO UPDATE SET dir = excluded.dir,
             mtime_ms = excluded.mtime_ms, size = excluded.size, tag = excluded.tag",
        &[
            &t.connector,
            &t.key,
            &t.dir,
            &t.mtime_ms,
            &(t.size as i64),
            &t.tag,
        ],
    )?;
    Ok(())
}

pub fn get(c: &mut Conn, connector: &str, key: &str) -> Result<Option<KeptTime>> {
    match c.opt(
        &format!("SELECT {COLUMNS} FROM object_times WHERE connector = $1 AND key = $2"),
        &[&connector, &key],
    )? {
        Some(r) => Ok(Some(row(&r)?)),
        None => Ok(None),
    }
}

pub fn in_dir(c: &mut Conn, connector: &str, dir: &str) -> Result<Vec<KeptTime>> {
    c.rows(
        &format!("SELECT {COLUMNS} FROM object_times WHERE connector = $1 AND dir = $2"),
        &[&connector, &dir],
    )?
    .iter()
    .map(row)
    .collect()
}

pub fn delete(c: &mut Conn, connector: &str, key: &str) -> Result<()> {
    c.exec(
        "DELETE FROM object_times WHERE connector = $1 AND key = $2",
        &[&connector, &key],
    )?;
    Ok(())
}
