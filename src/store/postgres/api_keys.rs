//! SQL for API keys: the prefix names a key, only the key's SHA-256 is stored.

use tokio_postgres::Row;

use super::conn::{get, is_unique_violation, Conn, Sql};
use super::users::user_id;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{now_ms, ApiKey, Millis, NewApiKey};

/// A use is recorded at most this often per key.
const TOUCH_EVERY: Millis = 60_000;

const COLS: &str =
    "k.id, u.name, k.name, k.prefix, k.key_hash, k.created_at, k.last_used_at, k.revoked_at";

fn row(r: &Row) -> Result<ApiKey> {
    Ok(ApiKey {
        id: get(r, 0)?,
        user: get(r, 1)?,
        name: get(r, 2)?,
        prefix: get(r, 3)?,
        key_hash: get(r, 4)?,
        created_at: get(r, 5)?,
        last_used_at: get(r, 6)?,
        revoked_at: get(r, 7)?,
    })
}

pub fn insert(c: &mut Conn, user: &str, k: &NewApiKey) -> Result<ApiKey> {
    let uid = user_id(c, user)?;
    let res = c.exec(
        "INSERT INTO api_keys (user_id, name, prefix, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[&uid, &k.name, &k.prefix, &k.key_hash, &now_ms()],
    );
    match res {
        Err(e) if is_unique_violation(&e) => Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("an API key with prefix {} exists", k.prefix),
        )),
        Err(e) => Err(e),
        Ok(_) => by_prefix(c, &k.prefix)?.ok_or_else(|| Error::internal("API key vanished")),
    }
}

pub fn by_prefix(c: &mut Conn, prefix: &str) -> Result<Option<ApiKey>> {
    c.opt(
        &format!(
            "SELECT {COLS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.prefix = $1"
        ),
        &[&prefix],
    )?
    .map(|r| row(&r))
    .transpose()
}

pub fn list(c: &mut Conn, user: Option<&str>) -> Result<Vec<ApiKey>> {
    c.rows(
        &format!(
            "SELECT {COLS} FROM api_keys k JOIN users u ON u.id = k.user_id
             WHERE ($1::TEXT IS NULL OR u.name = $1) ORDER BY k.created_at, k.id"
        ),
        &[&user],
    )?
    .iter()
    .map(row)
    .collect()
}

pub fn revoke(c: &mut Conn, prefix: &str, now: Millis) -> Result<()> {
    let n = c.exec(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE prefix = $2",
        &[&now, &prefix],
    )?;
    match n {
        0 => Err(Error::not_found(format!(
            "no API key with prefix {prefix:?}"
        ))),
        _ => Ok(()),
    }
}

pub fn touch(c: &mut Conn, id: i64, now: Millis) -> Result<()> {
    c.exec(
        "UPDATE api_keys SET last_used_at = $1
         WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $1::BIGINT - $3::BIGINT)",
        &[&now, &id, &TOUCH_EVERY],
    )?;
    Ok(())
}
