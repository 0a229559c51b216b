//! SQL for the notification feed, the users' mail preferences and the names
//! of links' recipients.

use rusqlite::{params, Connection, Row};

use crate::error::Result;
use crate::store::{Link, Millis, NewNotification, NoticeKind, Notification};

const COLS: &str = "id, kind, link_public_id, link_label, file, who, bytes, created_at, read_at";

fn row(r: &Row<'_>) -> rusqlite::Result<Notification> {
    let kind: String = r.get(1)?;
    Ok(Notification {
        id: r.get(0)?,
        kind: NoticeKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                format!("unknown notification kind {kind:?}").into(),
            )
        })?,
        link_public_id: r.get(2)?,
        link_label: r.get(3)?,
        file: r.get(4)?,
        who: r.get(5)?,
        bytes: r.get::<_, Option<i64>>(6)?.map(|b| b.max(0) as u64),
        created_at: r.get(7)?,
        read_at: r.get(8)?,
    })
}

/// Stores a notification; `None` when the user is gone, or when the link
/// already has this once-only notice (expired, exhausted).
pub fn add(c: &mut Connection, n: &NewNotification, now: Millis) -> Result<Option<i64>> {
    let changed = c.execute(
        "INSERT OR IGNORE INTO notifications
             (user_id, kind, link_public_id, link_label, file, who, bytes, created_at)
         SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM users WHERE name = ?1",
        params![
            n.user,
            n.kind.as_str(),
            n.link_public_id,
            n.link_label,
            n.file,
            n.who,
            n.bytes.map(|b| b as i64),
            now
        ],
    )?;
    Ok((changed == 1).then(|| c.last_insert_rowid()))
}

/// Newest first.
pub fn of(c: &mut Connection, user: &str, limit: usize) -> Result<Vec<Notification>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {COLS} FROM notifications
         WHERE user_id = (SELECT id FROM users WHERE name = ?1)
         ORDER BY created_at DESC, id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![user, limit as i64], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn unread(c: &mut Connection, user: &str) -> Result<u64> {
    let n: i64 = c.query_row(
        "SELECT COUNT(*) FROM notifications
         WHERE user_id = (SELECT id FROM users WHERE name = ?1) AND read_at IS NULL",
        [user],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// Marks one notification of `user` (or, with `None`, all of them) read.
pub fn mark_read(c: &mut Connection, user: &str, id: Option<i64>, now: Millis) -> Result<usize> {
    Ok(c.execute(
        "UPDATE notifications SET read_at = ?3
         WHERE user_id = (SELECT id FROM users WHERE name = ?1)
           AND read_at IS NULL AND (?2 IS NULL OR id = ?2)",
        params![user, id, now],
    )?)
}

/// The user's explicit choices: (kind, also by mail).
pub fn prefs(c: &mut Connection, user: &str) -> Result<Vec<(NoticeKind, bool)>> {
    let mut stmt = c.prepare(
        "SELECT kind, email FROM notification_prefs
         WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
    )?;
    let rows = stmt.query_map([user], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (kind, email) = r?;
        if let Some(k) = NoticeKind::parse(&kind) {
            out.push((k, email));
        }
    }
    Ok(out)
}

pub fn set_pref(c: &mut Connection, user: &str, kind: NoticeKind, email: bool) -> Result<()> {
    c.execute(
        "INSERT INTO notification_prefs (user_id, kind, email)
         SELECT id, ?2, ?3 FROM users WHERE name = ?1
         ON CONFLICT (user_id, kind) DO UPDATE SET email = excluded.email",
        params![user, kind.as_str(), email],
    )?;
    Ok(())
}

/// Active links (of `owner`, or everyone's) that expired in (`since`, `now`]
/// and have no expiry notice yet.
pub fn newly_expired(
    c: &mut Connection,
    owner: Option<&str>,
    since: Millis,
    now: Millis,
) -> Result<Vec<Link>> {
    let ids: Vec<String> = {
        let mut stmt = c.prepare(
            "SELECT public_id FROM links l
             WHERE state = 'active' AND expires_at IS NOT NULL
               AND expires_at > ?1 AND expires_at <= ?2
               AND (?3 IS NULL OR owner = ?3)
               AND NOT EXISTS (SELECT 1 FROM notifications n
                               WHERE n.link_public_id = l.public_id AND n.kind = 'link_expired')
             LIMIT 1000",
        )?;
        let rows = stmt.query_map(params![since, now, owner], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut out = Vec::new();
    for id in ids {
        if let Some(l) = super::links::by_public_id(c, &id)? {
            out.push(l);
        }
    }
    Ok(out)
}

/// Replaces the names of a link's recipients: (e-mail, name).
pub fn set_recipient_names(
    c: &mut Connection,
    link_id: i64,
    names: &[(String, String)],
) -> Result<()> {
    let tx = c.transaction()?;
    tx.execute("DELETE FROM link_recipients WHERE link_id = ?1", [link_id])?;
    for (email, name) in names {
        if name.trim().is_empty() {
            continue;
        }
        tx.execute(
            "INSERT OR REPLACE INTO link_recipients (link_id, email, name) VALUES (?1, ?2, ?3)",
            params![link_id, email.to_ascii_lowercase(), name.trim()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// (e-mail in lower case, name) of a link's named recipients.
pub fn recipient_names(c: &mut Connection, link_id: i64) -> Result<Vec<(String, String)>> {
    let mut stmt =
        c.prepare("SELECT email, name FROM link_recipients WHERE link_id = ?1 ORDER BY email")?;
    let rows = stmt.query_map([link_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
