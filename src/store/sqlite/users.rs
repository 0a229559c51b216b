//! SQL for users and their SSH keys.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::{Error, ErrorKind, Result};
use crate::store::{now_ms, NewKey, NewUser, SshKey, User};
use crate::vfs::VPath;

const USER_COLS: &str =
    "id, name, password_hash, enabled, home, perms, protocols, created_at, key_and_password, email, admin, display_name";

fn user_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let bad = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let home: String = r.get(4)?;
    let perms: String = r.get(5)?;
    let protocols: String = r.get(6)?;
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        password_hash: r.get(2)?,
        enabled: r.get(3)?,
        home: VPath::parse(&home).map_err(|e| bad(4, e.to_string()))?,
        perms: perms.parse().map_err(|e| bad(5, e))?,
        protocols: protocols.parse().map_err(|e| bad(6, e))?,
        created_at: r.get(7)?,
        key_and_password: r.get(8)?,
        email: r.get(9)?,
        admin: r.get(10)?,
        display_name: r.get(11)?,
    })
}

fn no_user(name: &str) -> Error {
    Error::not_found(format!("no user named {name:?}"))
}

pub fn insert(c: &mut Connection, u: &NewUser) -> Result<User> {
    let res = c.execute(
        "INSERT INTO users (name, password_hash, enabled, home, perms, protocols, created_at, key_and_password)
         VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7)",
        params![
            u.name,
            u.password_hash,
            u.home.as_str(),
            u.perms.to_string(),
            u.protocols.to_string(),
            now_ms(),
            u.key_and_password
        ],
    );
    match res {
        Err(e) if is_unique_violation(&e) => Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("user {:?} already exists", u.name),
        )),
        Err(e) => Err(e.into()),
        Ok(_) => get(c, &u.name)?.ok_or_else(|| no_user(&u.name)),
    }
}

pub fn get(c: &mut Connection, name: &str) -> Result<Option<User>> {
    Ok(c.query_row(
        &format!("SELECT {USER_COLS} FROM users WHERE name = ?1"),
        [name],
        user_row,
    )
    .optional()?)
}

pub fn get_by_id(c: &Connection, id: i64) -> Result<Option<User>> {
    Ok(c.query_row(
        &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
        [id],
        user_row,
    )
    .optional()?)
}

pub fn list(c: &mut Connection) -> Result<Vec<User>> {
    let mut stmt = c.prepare(&format!("SELECT {USER_COLS} FROM users ORDER BY name"))?;
    let rows = stmt.query_map([], user_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn count(c: &mut Connection) -> Result<u64> {
    let n: i64 = c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
    Ok(n as u64)
}

fn update_one(c: &Connection, name: &str, sql: &str, value: &dyn rusqlite::ToSql) -> Result<()> {
    match c.execute(sql, params![value, name])? {
        0 => Err(no_user(name)),
        _ => Ok(()),
    }
}

/// A new (or no) password also ends the user's web sessions: whoever knew the
/// old one must not stay logged in.
pub fn set_password(c: &mut Connection, name: &str, hash: Option<&str>) -> Result<()> {
    let tx = c.transaction()?;
    update_one(
        &tx,
        name,
        "UPDATE users SET password_hash = ?1 WHERE name = ?2",
        &hash,
    )?;
    tx.execute(
        "DELETE FROM web_sessions WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
        [name],
    )?;
    tx.commit()?;
    Ok(())
}

pub fn set_key_and_password(c: &mut Connection, name: &str, on: bool) -> Result<()> {
    update_one(
        c,
        name,
        "UPDATE users SET key_and_password = ?1 WHERE name = ?2",
        &on,
    )
}

pub fn set_perms(c: &mut Connection, name: &str, perms: &str) -> Result<()> {
    update_one(
        c,
        name,
        "UPDATE users SET perms = ?1 WHERE name = ?2",
        &perms,
    )
}

pub fn set_display_name(c: &mut Connection, name: &str, display: Option<&str>) -> Result<()> {
    update_one(
        c,
        name,
        "UPDATE users SET display_name = ?1 WHERE name = ?2",
        &display,
    )
}

pub fn set_email(c: &mut Connection, name: &str, email: Option<&str>) -> Result<()> {
    update_one(
        c,
        name,
        "UPDATE users SET email = ?1 WHERE name = ?2",
        &email,
    )
}

pub fn set_admin(c: &mut Connection, name: &str, admin: bool) -> Result<()> {
    update_one(
        c,
        name,
        "UPDATE users SET admin = ?1 WHERE name = ?2",
        &admin,
    )
}

pub fn set_enabled(c: &mut Connection, name: &str, enabled: bool) -> Result<()> {
    update_one(
        c,
        name,
        "UPDATE users SET enabled = ?1 WHERE name = ?2",
        &enabled,
    )
}

pub fn delete(c: &mut Connection, name: &str) -> Result<()> {
    match c.execute("DELETE FROM users WHERE name = ?1", [name])? {
        0 => Err(no_user(name)),
        _ => Ok(()),
    }
}

pub(super) fn user_id(c: &mut Connection, name: &str) -> Result<i64> {
    c.query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| no_user(name))
}

const KEY_COLS: &str = "id, algorithm, openssh, comment, fingerprint, created_at";

fn key_row(r: &Row<'_>) -> rusqlite::Result<SshKey> {
    Ok(SshKey {
        id: r.get(0)?,
        algorithm: r.get(1)?,
        openssh: r.get(2)?,
        comment: r.get(3)?,
        fingerprint: r.get(4)?,
        created_at: r.get(5)?,
    })
}

pub fn key_insert(c: &mut Connection, user: &str, k: &NewKey) -> Result<SshKey> {
    let uid = user_id(c, user)?;
    let res = c.execute(
        "INSERT INTO user_keys (user_id, algorithm, openssh, comment, fingerprint, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            uid,
            k.algorithm,
            k.openssh,
            k.comment,
            k.fingerprint,
            now_ms()
        ],
    );
    match res {
        Err(e) if is_unique_violation(&e) => Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("user {user:?} already has key {}", k.fingerprint),
        )),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(c.query_row(
            &format!("SELECT {KEY_COLS} FROM user_keys WHERE id = ?1"),
            [c.last_insert_rowid()],
            key_row,
        )?),
    }
}

pub fn key_delete(c: &mut Connection, user: &str, fingerprint: &str) -> Result<()> {
    let uid = user_id(c, user)?;
    match c.execute(
        "DELETE FROM user_keys WHERE user_id = ?1 AND fingerprint = ?2",
        params![uid, fingerprint],
    )? {
        0 => Err(Error::not_found(format!(
            "user {user:?} has no key {fingerprint}"
        ))),
        _ => Ok(()),
    }
}

pub fn keys_of(c: &mut Connection, user: &str) -> Result<Vec<SshKey>> {
    let uid = user_id(c, user)?;
    let mut stmt = c.prepare(&format!(
        "SELECT {KEY_COLS} FROM user_keys WHERE user_id = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([uid], key_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}
