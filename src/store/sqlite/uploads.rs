//! SQL for resumable uploads into links. Creating one takes a use of the link
//! (upload requests count files) in the same IMMEDIATE transaction, so the
//! file limit holds under concurrent uploads; cancelling gives it back.

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::error::{Error, Result};
use crate::store::{LinkFile, Millis, NewUpload, Upload, UploadState};

const COLS: &str = "id, key, link_id, grant_id, name, size, received, state, counted, path, \
                    sha256, remote, created_at, updated_at, direct_id, direct_connector";

fn row(r: &Row<'_>) -> rusqlite::Result<Upload> {
    let state: String = r.get(7)?;
    Ok(Upload {
        id: r.get(0)?,
        key: r.get(1)?,
        link_id: r.get(2)?,
        grant: r.get(3)?,
        name: r.get(4)?,
        size: r.get::<_, i64>(5)? as u64,
        received: r.get::<_, i64>(6)? as u64,
        state: UploadState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                7,
                rusqlite::types::Type::Text,
                format!("unknown upload state {state:?}").into(),
            )
        })?,
        counted: r.get(8)?,
        path: r.get(9)?,
        sha256: r.get(10)?,
        remote: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
        direct_id: r.get(14)?,
        direct_connector: r.get(15)?,
    })
}

/// Creates an upload; with `count_use`, only if the link has a use left (else
/// `None`). The use is taken with the links' conditional UPDATE.
pub fn create(
    c: &mut Connection,
    u: &NewUpload,
    count_use: bool,
    now: Millis,
) -> Result<Option<Upload>> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if count_use && !super::links::reserve_use(&tx, u.link_id, now)? {
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO link_uploads (key, link_id, grant_id, name, size, received, state, counted,
                                   remote, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, 'open', ?6, ?7, ?8, ?8)",
        params![
            u.key,
            u.link_id,
            u.grant,
            u.name,
            u.size as i64,
            count_use,
            u.remote,
            now
        ],
    )?;
    tx.commit()?;
    get(c, &u.key)
}

pub fn get(c: &Connection, key: &str) -> Result<Option<Upload>> {
    Ok(c.query_row(
        &format!("SELECT {COLS} FROM link_uploads WHERE key = ?1"),
        [key],
        row,
    )
    .optional()?)
}

pub fn of_link(c: &Connection, link_id: i64) -> Result<Vec<Upload>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {COLS} FROM link_uploads WHERE link_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([link_id], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn progress(c: &Connection, id: i64, received: u64, now: Millis) -> Result<()> {
    c.execute(
        "UPDATE link_uploads SET received = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'open'",
        params![id, received as i64, now],
    )?;
    Ok(())
}

/// Marks the upload complete and records the published file on its link (a
/// file published again under the same name replaces the older row).
pub fn complete(c: &mut Connection, id: i64, file: &LinkFile, now: Millis) -> Result<()> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let link_id: i64 = tx
        .query_row(
            "SELECT link_id FROM link_uploads WHERE id = ?1 AND state = 'open'",
            [id],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| Error::not_found("the upload is no longer open"))?;
    tx.execute(
        "UPDATE link_uploads SET state = 'complete', received = size, path = ?2, sha256 = ?3,
                                 updated_at = ?4 WHERE id = ?1",
        params![id, file.path, file.sha256, now],
    )?;
    tx.execute(
        "INSERT INTO link_files (link_id, name, path, is_dir, size, sha256)
         VALUES (?1, ?2, ?3, 0, ?4, ?5)
         ON CONFLICT (link_id, name) DO UPDATE
           SET path = excluded.path, size = excluded.size, sha256 = excluded.sha256",
        params![link_id, file.name, file.path, file.size as i64, file.sha256],
    )?;
    tx.execute(
        "UPDATE links SET last_used_at = ?2 WHERE id = ?1",
        params![link_id, now],
    )?;
    tx.commit()?;
    Ok(())
}

/// Cancels an open upload and gives its use back. Returns whether it was open.
pub fn cancel(c: &mut Connection, id: i64, now: Millis) -> Result<bool> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let open: Option<(i64, bool)> = tx
        .query_row(
            "SELECT link_id, counted FROM link_uploads WHERE id = ?1 AND state = 'open'",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((link_id, counted)) = open else {
        return Ok(false);
    };
    tx.execute(
        "UPDATE link_uploads SET state = 'cancelled', updated_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    if counted {
        super::links::refund_use(&tx, link_id)?;
    }
    tx.commit()?;
    Ok(true)
}

/// Open uploads untouched since `before` (abandoned: to be cancelled).
pub fn stale(c: &Connection, before: Millis) -> Result<Vec<Upload>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {COLS} FROM link_uploads WHERE state = 'open' AND updated_at < ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([before], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Marks an open upload as going straight to the bucket: its multipart upload
/// id and the connector holding it. Touches it (the sweep counts from here).
pub fn set_direct(
    c: &Connection,
    id: i64,
    upload_id: &str,
    connector: &str,
    now: Millis,
) -> Result<()> {
    c.execute(
        "UPDATE link_uploads SET direct_id = ?2, direct_connector = ?3, updated_at = ?4
         WHERE id = ?1 AND state = 'open'",
        params![id, upload_id, connector, now],
    )?;
    Ok(())
}
