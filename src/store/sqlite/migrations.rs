//! Versioned schema migrations, tracked in SQLite's `user_version`.
//!
//! A migration is appended, never edited. A database written by a newer wharf
//! (a version this build does not know) is refused instead of being guessed at.

use rusqlite::Connection;

use crate::error::{Error, ErrorKind, Result};

/// Migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: users, their SSH keys, the audit log.
    r#"
    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        password_hash TEXT,
        enabled       INTEGER NOT NULL DEFAULT 1,
        home          TEXT NOT NULL,
        perms         TEXT NOT NULL,
        protocols     TEXT NOT NULL,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE user_keys (
        id          INTEGER PRIMARY KEY,
        user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        algorithm   TEXT NOT NULL,
        openssh     TEXT NOT NULL,
        comment     TEXT NOT NULL DEFAULT '',
        fingerprint TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        UNIQUE (user_id, fingerprint)
    );
    CREATE TABLE audit (
        id       INTEGER PRIMARY KEY,
        ts       INTEGER NOT NULL,
        protocol TEXT NOT NULL,
        remote   TEXT,
        actor    TEXT,
        action   TEXT NOT NULL,
        path     TEXT,
        bytes    INTEGER,
        outcome  TEXT NOT NULL,
        detail   TEXT
    );
    CREATE INDEX audit_ts ON audit(ts);
    CREATE INDEX audit_actor_ts ON audit(actor, ts);
    CREATE INDEX audit_action_ts ON audit(action, ts);
    "#,
    // 2: accounts that must present both an SSH key and their password.
    r#"
    ALTER TABLE users ADD COLUMN key_and_password INTEGER NOT NULL DEFAULT 0;
    "#,
    // 3: shared links and their files. Only a hash of each link's token is stored.
    r#"
    CREATE TABLE links (
        id             INTEGER PRIMARY KEY,
        public_id      TEXT NOT NULL UNIQUE,
        token_hash     TEXT NOT NULL UNIQUE,
        kind           TEXT NOT NULL,
        owner          TEXT NOT NULL,
        title          TEXT NOT NULL DEFAULT '',
        message        TEXT NOT NULL DEFAULT '',
        recipients     TEXT NOT NULL DEFAULT '',
        expires_at     INTEGER,
        max_uses       INTEGER,
        uses           INTEGER NOT NULL DEFAULT 0,
        password_hash  TEXT,
        allowed_emails TEXT NOT NULL DEFAULT '',
        state          TEXT NOT NULL,
        created_at     INTEGER NOT NULL,
        ended_at       INTEGER,
        last_used_at   INTEGER
    );
    CREATE INDEX links_owner ON links(owner, created_at);
    CREATE TABLE link_files (
        id      INTEGER PRIMARY KEY,
        link_id INTEGER NOT NULL REFERENCES links(id) ON DELETE CASCADE,
        name    TEXT NOT NULL,
        path    TEXT NOT NULL,
        is_dir  INTEGER NOT NULL DEFAULT 0,
        size    INTEGER NOT NULL DEFAULT 0,
        sha256  TEXT,
        UNIQUE (link_id, name)
    );
    "#,
    // 4: what visitors of links hold: grants (uses are charged per grant), e-mail
    // codes; a staff-facing link name; users' e-mail addresses (notifications).
    r#"
    ALTER TABLE links ADD COLUMN name TEXT NOT NULL DEFAULT '';
    ALTER TABLE users ADD COLUMN email TEXT;
    CREATE TABLE link_grants (
        link_id    INTEGER NOT NULL REFERENCES links(id) ON DELETE CASCADE,
        grant_id   TEXT NOT NULL,
        charged    INTEGER NOT NULL DEFAULT 0,
        inflight   INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (link_id, grant_id)
    );
    CREATE TABLE link_codes (
        link_id    INTEGER NOT NULL REFERENCES links(id) ON DELETE CASCADE,
        email      TEXT NOT NULL,
        code_hash  TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (link_id, email)
    );
    "#,
    // 5: upload requests (inbound links into a folder) and resumable uploads,
    // from outside parties and from staff sending through the browser.
    r#"
    ALTER TABLE links ADD COLUMN folder TEXT;
    ALTER TABLE links ADD COLUMN max_size INTEGER;
    ALTER TABLE links ADD COLUMN notify_uploads INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE link_uploads (
        id         INTEGER PRIMARY KEY,
        key        TEXT NOT NULL UNIQUE,
        link_id    INTEGER NOT NULL REFERENCES links(id) ON DELETE CASCADE,
        grant_id   TEXT NOT NULL,
        name       TEXT NOT NULL,
        size       INTEGER NOT NULL,
        received   INTEGER NOT NULL DEFAULT 0,
        state      TEXT NOT NULL,
        counted    INTEGER NOT NULL DEFAULT 0,
        path       TEXT,
        sha256     TEXT,
        remote     TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX link_uploads_state ON link_uploads(state, updated_at);
    "#,
    // 6: API keys for the admin HTTP API (only a SHA-256 of each key is stored;
    // the prefix finds the row), and administrators, who see every user's links.
    r#"
    ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE api_keys (
        id           INTEGER PRIMARY KEY,
        user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name         TEXT NOT NULL DEFAULT '',
        prefix       TEXT NOT NULL UNIQUE,
        key_hash     TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at   INTEGER
    );
    CREATE INDEX api_keys_user ON api_keys(user_id);
    "#,
    // 7: staff web sessions. Only a hash of each session's cookie is stored; a
    // session ends with its user.
    r#"
    CREATE TABLE web_sessions (
        id           INTEGER PRIMARY KEY,
        token_hash   TEXT NOT NULL UNIQUE,
        user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf         TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL
    );
    CREATE INDEX web_sessions_user ON web_sessions(user_id);
    "#,
    // 8: when a download's reservation was taken or last seen alive, so a sweep
    // can give back the uses of downloads that never settled (a crash, kill -9).
    r#"
    ALTER TABLE link_grants ADD COLUMN reserved_at INTEGER NOT NULL DEFAULT 0;
    "#,
    // 9: login lock-outs (the defender's bans), so a restart does not lift them.
    r#"
    CREATE TABLE bans (
        address    TEXT PRIMARY KEY,
        until      INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    "#,
    // 10: the generation a link's token is derived at (links/token.rs), so staff
    // can be shown the URL again; NULL for older links, whose tokens were random.
    r#"
    ALTER TABLE links ADD COLUMN generation INTEGER;
    "#,
    // 11 (staff portal: roles, address book, references): creating links is the
    // `share` permission, which every existing user keeps; clients (organisations)
    // and their contacts, per staff member and shareable with the team; a link's
    // client and reference (type and an id or URL).
    r#"
    UPDATE users SET perms = CASE WHEN perms = '' THEN 'share' ELSE perms || ',share' END;
    CREATE TABLE clients (
        id         INTEGER PRIMARY KEY,
        owner      TEXT NOT NULL,
        name       TEXT NOT NULL,
        notes      TEXT NOT NULL DEFAULT '',
        shared     INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        UNIQUE (owner, name)
    );
    CREATE TABLE contacts (
        id         INTEGER PRIMARY KEY,
        client_id  INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
        name       TEXT NOT NULL DEFAULT '',
        email      TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (client_id, email)
    );
    ALTER TABLE links ADD COLUMN client_id INTEGER REFERENCES clients(id) ON DELETE SET NULL;
    ALTER TABLE links ADD COLUMN ref_type TEXT;
    ALTER TABLE links ADD COLUMN ref_value TEXT;
    CREATE INDEX links_client ON links(client_id);
    CREATE INDEX links_created ON links(created_at);
    "#,
    // 12 (notifications): the staff notification feed and which events also go
    // by mail, users' display names (mail subjects, greetings), and the names
    // of a link's recipients beside their addresses. Expired and exhausted
    // notices are written once per link (the partial unique index).
    r#"
    ALTER TABLE users ADD COLUMN display_name TEXT;
    CREATE TABLE notifications (
        id             INTEGER PRIMARY KEY,
        user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        kind           TEXT NOT NULL,
        link_public_id TEXT NOT NULL DEFAULT '',
        link_label     TEXT NOT NULL DEFAULT '',
        file           TEXT NOT NULL DEFAULT '',
        who            TEXT NOT NULL DEFAULT '',
        bytes          INTEGER,
        created_at     INTEGER NOT NULL,
        read_at        INTEGER
    );
    CREATE INDEX notifications_user ON notifications(user_id, created_at);
    CREATE UNIQUE INDEX notifications_once ON notifications(link_public_id, kind)
        WHERE kind IN ('link_expired', 'link_exhausted');
    CREATE TABLE notification_prefs (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        kind    TEXT NOT NULL,
        email   INTEGER NOT NULL,
        PRIMARY KEY (user_id, kind)
    );
    CREATE TABLE link_recipients (
        link_id INTEGER NOT NULL REFERENCES links(id) ON DELETE CASCADE,
        email   TEXT NOT NULL,
        name    TEXT NOT NULL,
        PRIMARY KEY (link_id, email)
    );
    "#,
    // 13 (cluster): rules several nodes must share live in the database. A
    // lease names who runs a job or holds a lock until when; a failure row is a
    // login try being checked (`failed` 0) or one that failed (1), counted by
    // every node; bans remember when they last changed so nodes pick new ones up.
    r#"
    CREATE TABLE leases (
        name     TEXT PRIMARY KEY,
        holder   TEXT NOT NULL,
        until_ms INTEGER NOT NULL
    );
    CREATE TABLE failures (
        id     INTEGER PRIMARY KEY,
        key    TEXT NOT NULL,
        at_ms  INTEGER NOT NULL,
        failed INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX failures_key ON failures(key, at_ms);
    ALTER TABLE bans ADD COLUMN changed_at INTEGER NOT NULL DEFAULT 0;
    "#,
    // 14 (direct uploads): an upload going straight to an S3 bucket keeps its
    // multipart upload id and connector, so the sweep can abort it.
    r#"
    ALTER TABLE link_uploads ADD COLUMN direct_id TEXT;
    ALTER TABLE link_uploads ADD COLUMN direct_connector TEXT;
    "#,
    // 15: modification times clients set on object stores, with the object's
    // size and validator when set (`crate::vfs::TimeBook`); listings read one
    // folder's rows.
    r#"
    CREATE TABLE object_times (
        connector TEXT NOT NULL,
        key       TEXT NOT NULL,
        dir       TEXT NOT NULL,
        mtime_ms  INTEGER NOT NULL,
        size      INTEGER NOT NULL,
        tag       TEXT NOT NULL,
        PRIMARY KEY (connector, key)
    );
    CREATE INDEX object_times_dir ON object_times(connector, dir);
    "#,
];

/// The schema version this build writes.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

pub fn migrate(conn: &mut Connection) -> Result<()> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > LATEST {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "the database has schema version {current}, newer than this wharf knows \
                 ({LATEST}); run the wharf version that wrote it or a newer one"
            ),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        // IMMEDIATE, and the version read again under the write lock: nodes
        // starting together on one database migrate each step once.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > i as u32 {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|e| Error::from(e).context(format!("migration {}", i + 1)))?;
        tx.pragma_update(None, "user_version", (i + 1) as u32)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_the_future() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, LATEST);
        conn.pragma_update(None, "user_version", LATEST + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn users_of_older_databases_keep_creating_links() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..10] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 10).unwrap();
        for (name, perms) in [("a", "list,read"), ("b", "")] {
            conn.execute(
                "INSERT INTO users (name, home, perms, protocols, created_at) VALUES (?1, '/', ?2, 'sftp', 0)",
                [name, perms],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let perms: Vec<String> = conn
            .prepare("SELECT perms FROM users ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(perms, ["list,read,share", "share"]);
        let p: crate::policy::PermSet = perms[0].parse().unwrap();
        assert!(p.has(crate::policy::Perm::Share));
    }
}
