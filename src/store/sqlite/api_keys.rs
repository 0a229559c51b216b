//! SQL for API keys. A key row holds the prefix that names the key and the
//! SHA-256 of the whole key; the key itself is never stored.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::users::{is_unique_violation, user_id};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{now_ms, ApiKey, Millis, NewApiKey};

/// A use is recorded at most this often per key, so a busy client does not turn
/// every request into a database write.
const TOUCH_EVERY: Millis = 60_000;

const COLS: &str =
    "k.id, u.name, k.name, k.prefix, k.key_hash, k.created_at, k.last_used_at, k.revoked_at";

fn row(r: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: r.get(0)?,
        user: r.get(1)?,
        name: r.get(2)?,
        prefix: r.get(3)?,
        key_hash: r.get(4)?,
        created_at: r.get(5)?,
        last_used_at: r.get(6)?,
        revoked_at: r.get(7)?,
    })
}

pub fn insert(c: &mut Connection, user: &str, k: &NewApiKey) -> Result<ApiKey> {
    let uid = user_id(c, user)?;
    let res = c.execute(
        "INSERT INTO api_keys (user_id, name, prefix, key_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![uid, k.name, k.prefix, k.key_hash, now_ms()],
    );
    match res {
        Err(e) if is_unique_violation(&e) => Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("an API key with prefix {} exists", k.prefix),
        )),
        Err(e) => Err(e.into()),
        Ok(_) => by_prefix(c, &k.prefix)?.ok_or_else(|| Error::internal("API key vanished")),
    }
}

pub fn by_prefix(c: &mut Connection, prefix: &str) -> Result<Option<ApiKey>> {
    Ok(c.query_row(
        &format!(
            "SELECT {COLS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.prefix = ?1"
        ),
        [prefix],
        row,
    )
    .optional()?)
}

pub fn list(c: &mut Connection, user: Option<&str>) -> Result<Vec<ApiKey>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {COLS} FROM api_keys k JOIN users u ON u.id = k.user_id
         WHERE (?1 IS NULL OR u.name = ?1) ORDER BY k.created_at, k.id"
    ))?;
    let rows = stmt.query_map([user], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn revoke(c: &mut Connection, prefix: &str, now: Millis) -> Result<()> {
    let n = c.execute(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?1) WHERE prefix = ?2",
        params![now, prefix],
    )?;
    match n {
        0 => Err(Error::not_found(format!(
            "no API key with prefix {prefix:?}"
        ))),
        _ => Ok(()),
    }
}

pub fn touch(c: &mut Connection, id: i64, now: Millis) -> Result<()> {
    c.execute(
        "UPDATE api_keys SET last_used_at = ?1
         WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at <= ?1 - ?3)",
        params![now, id, TOUCH_EVERY],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::policy::{PermSet, ProtocolSet};
    use crate::store::sqlite::SqliteStore;
    use crate::store::*;
    use crate::vfs::VPath;

    fn store_with(users: &[&str]) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        for name in users {
            store
                .user_insert(&NewUser {
                    name: name.to_string(),
                    password_hash: None,
                    home: VPath::root(),
                    perms: PermSet::all(),
                    protocols: ProtocolSet::all(),
                    key_and_password: false,
                })
                .unwrap();
        }
        (dir, store)
    }

    fn key(prefix: &str) -> NewApiKey {
        NewApiKey {
            name: "ci".into(),
            prefix: prefix.into(),
            key_hash: format!("hash-{prefix}"),
        }
    }

    #[test]
    fn keys_are_stored_listed_revoked_and_go_with_their_user() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let a = store.api_key_insert("alice", &key("aaaa2222")).unwrap();
        assert_eq!(a.user, "alice");
        assert_eq!(a.key_hash, "hash-aaaa2222");
        assert_eq!((a.last_used_at, a.revoked_at), (None, None));
        store.api_key_insert("bob", &key("bbbb2222")).unwrap();
        let dup = store.api_key_insert("bob", &key("aaaa2222")).unwrap_err();
        assert_eq!(dup.kind(), crate::ErrorKind::AlreadyExists);
        assert_eq!(
            store
                .api_key_insert("nobody", &key("cccc2222"))
                .unwrap_err()
                .kind(),
            crate::ErrorKind::NotFound
        );
        assert_eq!(store.api_key_list(None).unwrap().len(), 2);
        let mine = store.api_key_list(Some("alice")).unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].prefix, "aaaa2222");

        store.api_key_touch(a.id, 1_000_000).unwrap();
        store.api_key_touch(a.id, 1_000_001).unwrap();
        let touched = store.api_key_by_prefix("aaaa2222").unwrap().unwrap();
        assert_eq!(
            touched.last_used_at,
            Some(1_000_000),
            "coarse: one write a minute"
        );
        store.api_key_touch(a.id, 1_060_000).unwrap();
        let touched = store.api_key_by_prefix("aaaa2222").unwrap().unwrap();
        assert_eq!(touched.last_used_at, Some(1_060_000));

        store.api_key_revoke("aaaa2222", 5).unwrap();
        store.api_key_revoke("aaaa2222", 9).unwrap();
        let revoked = store.api_key_by_prefix("aaaa2222").unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some(5), "the first revocation stays");
        assert_eq!(
            store.api_key_revoke("zzzz2222", 5).unwrap_err().kind(),
            crate::ErrorKind::NotFound
        );

        store.user_delete("bob").unwrap();
        assert!(store.api_key_by_prefix("bbbb2222").unwrap().is_none());
    }

    #[test]
    fn admin_flag() {
        let (_dir, store) = store_with(&["alice"]);
        assert!(!store.user_get("alice").unwrap().unwrap().admin);
        store.user_set_admin("alice", true).unwrap();
        assert!(store.user_get("alice").unwrap().unwrap().admin);
        assert!(store.user_set_admin("nobody", true).is_err());
    }
}
