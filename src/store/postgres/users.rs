//! SQL for users and their SSH keys.

use tokio_postgres::Row;

use super::conn::{begin, commit, get, is_unique_violation, Conn, Sql, P};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{now_ms, NewKey, NewUser, SshKey, User};
use crate::vfs::VPath;

const USER_COLS: &str =
    "id, name, password_hash, enabled, home, perms, protocols, created_at, key_and_password, email, admin, display_name";

fn user_row(r: &Row) -> Result<User> {
    let bad = |what: &str, e: String| Error::internal(format!("stored user {what}: {e}"));
    let home: String = get(r, 4)?;
    let perms: String = get(r, 5)?;
    let protocols: String = get(r, 6)?;
    Ok(User {
        id: get(r, 0)?,
        name: get(r, 1)?,
        password_hash: get(r, 2)?,
        enabled: get(r, 3)?,
        home: VPath::parse(&home).map_err(|e| bad("home", e.to_string()))?,
        perms: perms.parse().map_err(|e| bad("perms", e))?,
        protocols: protocols.parse().map_err(|e| bad("protocols", e))?,
        created_at: get(r, 7)?,
        key_and_password: get(r, 8)?,
        email: get(r, 9)?,
        admin: get(r, 10)?,
        display_name: get(r, 11)?,
    })
}

fn no_user(name: &str) -> Error {
    Error::not_found(format!("no user named {name:?}"))
}

pub fn insert(c: &mut Conn, u: &NewUser) -> Result<User> {
    let res = c.exec(
        "INSERT INTO users (name, password_hash, enabled, home, perms, protocols, created_at, key_and_password)
         VALUES ($1, $2, TRUE, $3, $4, $5, $6, $7)",
        &[
            &u.name,
            &u.password_hash,
            &u.home.as_str(),
            &u.perms.to_string(),
            &u.protocols.to_string(),
            &now_ms(),
            &u.key_and_password,
        ],
    );
    match res {
        Err(e) if is_unique_violation(&e) => Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("user {:?} already exists", u.name),
        )),
        Err(e) => Err(e),
        Ok(_) => get_user(c, &u.name)?.ok_or_else(|| no_user(&u.name)),
    }
}

pub fn get_user(c: &impl Sql, name: &str) -> Result<Option<User>> {
    c.opt(
        &format!("SELECT {USER_COLS} FROM users WHERE name = $1"),
        &[&name],
    )?
    .map(|r| user_row(&r))
    .transpose()
}

pub fn get_by_id(c: &impl Sql, id: i64) -> Result<Option<User>> {
    c.opt(
        &format!("SELECT {USER_COLS} FROM users WHERE id = $1"),
        &[&id],
    )?
    .map(|r| user_row(&r))
    .transpose()
}

pub fn list(c: &mut Conn) -> Result<Vec<User>> {
    // COLLATE "C": byte order, as SQLite sorts.
    c.rows(
        &format!("SELECT {USER_COLS} FROM users ORDER BY name COLLATE \"C\""),
        &[],
    )?
    .iter()
    .map(user_row)
    .collect()
}

pub fn count(c: &mut Conn) -> Result<u64> {
    let n: i64 = get(&c.one("SELECT COUNT(*) FROM users", &[])?, 0)?;
    Ok(n as u64)
}

fn update_one(c: &impl Sql, name: &str, sql: &str, value: P) -> Result<()> {
    match c.exec(sql, &[value, &name])? {
        0 => Err(no_user(name)),
        _ => Ok(()),
    }
}

/// A new (or no) password also ends the user's web sessions.
pub fn set_password(c: &mut Conn, name: &str, hash: Option<&str>) -> Result<()> {
    let tx = begin(c)?;
    update_one(
        &tx,
        name,
        "UPDATE users SET password_hash = $1 WHERE name = $2",
        &hash,
    )?;
    tx.exec(
        "DELETE FROM web_sessions WHERE user_id = (SELECT id FROM users WHERE name = $1)",
        &[&name],
    )?;
    commit(tx)
}

pub fn set_key_and_password(c: &mut Conn, name: &str, on: bool) -> Result<()> {
    update_one(
        c,
        name,
        "UPDATE users SET key_and_password = $1 WHERE name = $2",
        &on,
    )
}

pub fn set_perms(c: &mut Conn, name: &str, perms: &str) -> Result<()> {
    update_one(
        c,
        name,
        "UPDATE users SET perms = $1 WHERE name = $2",
        &perms,
    )
}

pub fn set_display_name(c: &mut Conn, name: &str, display: Option<&str>) -> Result<()> {
    update_one(
        c,
        name,
        "UPDATE users SET display_name = $1 WHERE name = $2",
        &display,
    )
}

pub fn set_email(c: &mut Conn, name: &str, email: Option<&str>) -> Result<()> {
    update_one(
        c,
        name,
        "UPDATE users SET email = $1 WHERE name = $2",
        &email,
    )
}

pub fn set_admin(c: &mut Conn, name: &str, admin: bool) -> Result<()> {
    update_one(
        c,
        name,
        "UPDATE users SET admin = $1 WHERE name = $2",
        &admin,
    )
}

pub fn set_enabled(c: &mut Conn, name: &str, enabled: bool) -> Result<()> {
    update_one(
        c,
        name,
        "UPDATE users SET enabled = $1 WHERE name = $2",
        &enabled,
    )
}

pub fn delete(c: &mut Conn, name: &str) -> Result<()> {
    match c.exec("DELETE FROM users WHERE name = $1", &[&name])? {
        0 => Err(no_user(name)),
        _ => Ok(()),
    }
}

pub(super) fn user_id(c: &impl Sql, name: &str) -> Result<i64> {
    match c.opt("SELECT id FROM users WHERE name = $1", &[&name])? {
        Some(r) => get(&r, 0),
        None => Err(no_user(name)),
    }
}

const KEY_COLS: &str = "id, algorithm, openssh, comment, fingerprint, created_at";

fn key_row(r: &Row) -> Result<SshKey> {
    Ok(SshKey {
        id: get(r, 0)?,
        algorithm: get(r, 1)?,
        openssh: get(r, 2)?,
        comment: get(r, 3)?,
        fingerprint: get(r, 4)?,
        created_at: get(r, 5)?,
    })
}

pub fn key_insert(c: &mut Conn, user: &str, k: &NewKey) -> Result<SshKey> {
    let uid = user_id(c, user)?;
    let res = c.opt(
        &format!(
            "INSERT INTO user_keys (user_id, algorithm, openssh, comment, fingerprint, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {KEY_COLS}"
        ),
        &[
            &uid,
            &k.algorithm,
            &k.openssh,
            &k.comment,
            &k.fingerprint,
            &now_ms(),
        ],
    );
    match res {
        Err(e) if is_unique_violation(&e) => Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("user {user:?} already has key {}", k.fingerprint),
        )),
        Err(e) => Err(e),
        Ok(Some(r)) => key_row(&r),
        Ok(None) => Err(Error::internal("key vanished after insert")),
    }
}

pub fn key_delete(c: &mut Conn, user: &str, fingerprint: &str) -> Result<()> {
    let uid = user_id(c, user)?;
    match c.exec(
        "DELETE FROM user_keys WHERE user_id = $1 AND fingerprint = $2",
        &[&uid, &fingerprint],
    )? {
        0 => Err(Error::not_found(format!(
            "user {user:?} has no key {fingerprint}"
        ))),
        _ => Ok(()),
    }
}

pub fn keys_of(c: &mut Conn, user: &str) -> Result<Vec<SshKey>> {
    let uid = user_id(c, user)?;
    c.rows(
        &format!("SELECT {KEY_COLS} FROM user_keys WHERE user_id = $1 ORDER BY id"),
        &[&uid],
    )?
    .iter()
    .map(key_row)
    .collect()
}
