//! SQL for resumable uploads into links. Creating one takes a use of the link
//! with the links' conditional UPDATE in the same transaction (its row lock is
//! held until commit), so the file limit holds under concurrent uploads on any
//! node; cancelling gives it back.

use tokio_postgres::Row;

use super::conn::{begin, commit, get, Conn, Sql};
use crate::error::{Error, Result};
use crate::store::{LinkFile, Millis, NewUpload, Upload, UploadState};

const COLS: &str = "id, key, link_id, grant_id, name, size, received, state, counted, path, \
                    sha256, remote, created_at, updated_at, direct_id, direct_connector";

fn row(r: &Row) -> Result<Upload> {
    let state: String = get(r, 7)?;
    Ok(Upload {
        id: get(r, 0)?,
        key: get(r, 1)?,
        link_id: get(r, 2)?,
        grant: get(r, 3)?,
        name: get(r, 4)?,
        size: get::<i64>(r, 5)? as u64,
        received: get::<i64>(r, 6)? as u64,
        state: UploadState::parse(&state)
            .ok_or_else(|| Error::internal(format!("unknown upload state {state:?}")))?,
        counted: get(r, 8)?,
        path: get(r, 9)?,
        sha256: get(r, 10)?,
        remote: get(r, 11)?,
        created_at: get(r, 12)?,
        updated_at: get(r, 13)?,
        direct_id: get(r, 14)?,
        direct_connector: get(r, 15)?,
    })
}

/// Creates an upload; with `count_use`, only if the link has a use left (else
/// `None`).
pub fn create(c: &mut Conn, u: &NewUpload, count_use: bool, now: Millis) -> Result<Option<Upload>> {
    let tx = begin(c)?;
    if count_use && !super::links::reserve_use(&tx, u.link_id, now)? {
        return Ok(None);
    }
    tx.exec(
        "INSERT INTO link_uploads (key, link_id, grant_id, name, size, received, state, counted,
                                   remote, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 0, 'open', $6, $7, $8, $8)",
        &[
            &u.key,
            &u.link_id,
            &u.grant,
            &u.name,
            &(u.size as i64),
            &count_use,
            &u.remote,
            &now,
        ],
    )?;
    commit(tx)?;
    get_upload(c, &u.key)
}

pub fn get_upload(c: &impl Sql, key: &str) -> Result<Option<Upload>> {
    c.opt(
        &format!("SELECT {COLS} FROM link_uploads WHERE key = $1"),
        &[&key],
    )?
    .map(|r| row(&r))
    .transpose()
}

pub fn of_link(c: &mut Conn, link_id: i64) -> Result<Vec<Upload>> {
    c.rows(
        &format!("SELECT {COLS} FROM link_uploads WHERE link_id = $1 ORDER BY id"),
        &[&link_id],
    )?
    .iter()
    .map(row)
    .collect()
}

pub fn progress(c: &mut Conn, id: i64, received: u64, now: Millis) -> Result<()> {
    c.exec(
        "UPDATE link_uploads SET received = $2, updated_at = $3 WHERE id = $1 AND state = 'open'",
        &[&id, &(received as i64), &now],
    )?;
    Ok(())
}

/// Marks the upload complete and records the published file on its link (a
/// file published again under the same name replaces the older row).
pub fn complete(c: &mut Conn, id: i64, file: &LinkFile, now: Millis) -> Result<()> {
    let tx = begin(c)?;
    let link_id: i64 = match tx.opt(
        "SELECT link_id FROM link_uploads WHERE id = $1 AND state = 'open' FOR UPDATE",
        &[&id],
    )? {
        Some(r) => get(&r, 0)?,
        None => return Err(Error::not_found("the upload is no longer open")),
    };
    tx.exec(
        "UPDATE link_uploads SET state = 'complete', received = size, path = $2, sha256 = $3,
                                 updated_at = $4 WHERE id = $1",
        &[&id, &file.path, &file.sha256, &now],
    )?;
    tx.exec(
        "INSERT INTO link_files (link_id, name, path, is_dir, size, sha256)
         VALUES ($1, $2, $3, FALSE, $4, $5)
         ON CONFLICT (link_id, name) DO UPDATE
           SET path = excluded.path, size = excluded.size, sha256 = excluded.sha256",
        &[
            &link_id,
            &file.name,
            &file.path,
            &(file.size as i64),
            &file.sha256,
        ],
    )?;
    tx.exec(
        "UPDATE links SET last_used_at = $2 WHERE id = $1",
        &[&link_id, &now],
    )?;
    commit(tx)
}

/// Cancels an open upload and gives its use back. Returns whether it was open.
pub fn cancel(c: &mut Conn, id: i64, now: Millis) -> Result<bool> {
    let tx = begin(c)?;
    let open: Option<(i64, bool)> = match tx.opt(
        "SELECT link_id, counted FROM link_uploads WHERE id = $1 AND state = 'open' FOR UPDATE",
        &[&id],
    )? {
        Some(r) => Some((get(&r, 0)?, get(&r, 1)?)),
        None => None,
    };
    let Some((link_id, counted)) = open else {
        return Ok(false);
    };
    tx.exec(
        "UPDATE link_uploads SET state = 'cancelled', updated_at = $2 WHERE id = $1",
        &[&id, &now],
    )?;
    if counted {
        super::links::refund_use(&tx, link_id)?;
    }
    commit(tx)?;
    Ok(true)
}

/// Open uploads untouched since `before` (abandoned: to be cancelled).
pub fn stale(c: &mut Conn, before: Millis) -> Result<Vec<Upload>> {
    c.rows(
        &format!(
            "SELECT {COLS} FROM link_uploads WHERE state = 'open' AND updated_at < $1 ORDER BY id"
        ),
        &[&before],
    )?
    .iter()
    .map(row)
    .collect()
}

/// Marks an open upload as going straight to the bucket: its multipart upload
/// id and the connector holding it. Touches it (the sweep counts from here).
pub fn set_direct(
    c: &mut Conn,
    id: i64,
    upload_id: &str,
    connector: &str,
    now: Millis,
) -> Result<()> {
    c.exec(
        "UPDATE link_uploads SET direct_id = $2, direct_connector = $3, updated_at = $4
         WHERE id = $1 AND state = 'open'",
        &[&id, &upload_id, &connector, &now],
    )?;
    Ok(())
}
