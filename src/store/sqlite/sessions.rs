//! SQL for staff web sessions.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::users;
use crate::error::Result;
use crate::store::{Millis, NewWebSession, WebSession};

pub fn insert(c: &mut Connection, s: &NewWebSession) -> Result<()> {
    c.execute(
        "INSERT INTO web_sessions (token_hash, user_id, csrf, created_at, expires_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?4)",
        params![s.token_hash, s.user_id, s.csrf, s.created_at, s.expires_at],
    )?;
    Ok(())
}

pub fn touch(
    c: &mut Connection,
    token_hash: &str,
    now: Millis,
    seen_since: Millis,
) -> Result<Option<WebSession>> {
    // IMMEDIATE: the check and the "seen" mark are one step, so a session cannot
    // be refreshed by one request while another finds it idle and deletes it.
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let row = tx
        .query_row(
            "SELECT id, user_id, csrf, created_at, expires_at, last_seen_at
             FROM web_sessions WHERE token_hash = ?1",
            [token_hash],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((id, user_id, csrf, created_at, expires_at, last_seen_at)) = row else {
        return Ok(None);
    };
    if now >= expires_at || last_seen_at <= seen_since {
        tx.execute("DELETE FROM web_sessions WHERE id = ?1", [id])?;
        tx.commit()?;
        return Ok(None);
    }
    tx.execute(
        "UPDATE web_sessions SET last_seen_at = ?1 WHERE id = ?2",
        params![now, id],
    )?;
    // The foreign key removes sessions with their user, so the user is there.
    let user = users::get_by_id(&tx, user_id)?;
    tx.commit()?;
    Ok(user.map(|user| WebSession {
        id,
        user,
        csrf,
        created_at,
        expires_at,
        last_seen_at: now,
    }))
}

pub fn delete(c: &mut Connection, token_hash: &str) -> Result<()> {
    c.execute(
        "DELETE FROM web_sessions WHERE token_hash = ?1",
        [token_hash],
    )?;
    Ok(())
}

pub fn purge(c: &mut Connection, now: Millis, seen_since: Millis) -> Result<usize> {
    Ok(c.execute(
        "DELETE FROM web_sessions WHERE expires_at <= ?1 OR last_seen_at <= ?2",
        params![now, seen_since],
    )?)
}

#[cfg(test)]
mod tests {
    use crate::store::sqlite::SqliteStore;
    use crate::store::*;
    use crate::vfs::VPath;

    const NOW: Millis = 1_800_000_000_000;
    const HOUR: Millis = 3_600_000;

    fn store_with_user() -> (tempfile::TempDir, SqliteStore, User) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let user = store
            .user_insert(&NewUser {
                name: "alice".into(),
                password_hash: Some("x".into()),
                home: VPath::root(),
                perms: "all".parse().unwrap(),
                protocols: "all".parse().unwrap(),
                key_and_password: false,
            })
            .unwrap();
        (dir, store, user)
    }

    fn session(hash: &str, user: &User) -> NewWebSession {
        NewWebSession {
            token_hash: hash.into(),
            user_id: user.id,
            csrf: format!("csrf-{hash}"),
            created_at: NOW,
            expires_at: NOW + 24 * HOUR,
        }
    }

    #[test]
    fn a_session_lives_while_used_and_ends_at_its_limits() {
        let (_d, s, alice) = store_with_user();
        s.web_session_insert(&session("h1", &alice)).unwrap();
        let seen = s
            .web_session_touch("h1", NOW + HOUR, NOW + HOUR - 8 * HOUR)
            .unwrap()
            .expect("a fresh session");
        assert_eq!(seen.user, alice);
        assert_eq!(seen.csrf, "csrf-h1");
        assert_eq!(seen.last_seen_at, NOW + HOUR);
        assert!(s
            .web_session_touch("other", NOW, NOW - HOUR)
            .unwrap()
            .is_none());

        // Used every 7 hours, it outlives the idle limit...
        let t = NOW + 8 * HOUR;
        assert!(s
            .web_session_touch("h1", t, t - 8 * HOUR)
            .unwrap()
            .is_some());
        // ...but not its absolute end.
        let end = NOW + 24 * HOUR;
        assert!(s
            .web_session_touch("h1", end, end - 8 * HOUR)
            .unwrap()
            .is_none());
        assert!(
            s.web_session_touch("h1", NOW, NOW - 8 * HOUR)
                .unwrap()
                .is_none(),
            "an ended session is gone for good"
        );

        // Idle too long: gone.
        s.web_session_insert(&session("h2", &alice)).unwrap();
        let t = NOW + 9 * HOUR;
        assert!(s
            .web_session_touch("h2", t, t - 8 * HOUR)
            .unwrap()
            .is_none());
    }

    #[test]
    fn logout_purge_and_the_user_going_end_sessions() {
        let (_d, s, alice) = store_with_user();
        for h in ["a", "b", "c"] {
            s.web_session_insert(&session(h, &alice)).unwrap();
        }
        s.web_session_delete("a").unwrap();
        s.web_session_delete("unknown").unwrap();
        assert!(s.web_session_touch("a", NOW, NOW - HOUR).unwrap().is_none());
        assert!(s
            .web_session_touch("b", NOW + 2 * HOUR, NOW - HOUR)
            .unwrap()
            .is_some());
        // "c" was last seen at NOW, "b" later: an idle cut between them takes "c".
        assert_eq!(s.web_session_purge(NOW + 3 * HOUR, NOW + HOUR).unwrap(), 1);
        assert!(s
            .web_session_touch("b", NOW + 3 * HOUR, NOW + HOUR)
            .unwrap()
            .is_some());
        s.user_delete("alice").unwrap();
        assert!(s
            .web_session_touch("b", NOW + 3 * HOUR, NOW + HOUR)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_new_password_ends_the_sessions() {
        let (_d, s, alice) = store_with_user();
        s.web_session_insert(&session("a", &alice)).unwrap();
        s.user_set_password("alice", Some("y")).unwrap();
        assert!(s.web_session_touch("a", NOW, NOW - HOUR).unwrap().is_none());
    }
}
