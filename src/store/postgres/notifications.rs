//! SQL for the notification feed, the users' mail preferences and the names
//! of links' recipients.

use tokio_postgres::Row;

use super::conn::{begin, commit, get, Conn, Sql};
use crate::error::{Error, Result};
use crate::store::{Link, Millis, NewNotification, NoticeKind, Notification};

const COLS: &str = "id, kind, link_public_id, link_label, file, who, bytes, created_at, read_at";

fn row(r: &Row) -> Result<Notification> {
    let kind: String = get(r, 1)?;
    Ok(Notification {
        id: get(r, 0)?,
        kind: NoticeKind::parse(&kind)
            .ok_or_else(|| Error::internal(format!("unknown notification kind {kind:?}")))?,
        link_public_id: get(r, 2)?,
        link_label: get(r, 3)?,
        file: get(r, 4)?,
        who: get(r, 5)?,
        bytes: get::<Option<i64>>(r, 6)?.map(|b| b.max(0) as u64),
        created_at: get(r, 7)?,
        read_at: get(r, 8)?,
    })
}

/// Stores a notification; `None` when the user is gone, or when the link
/// already has this once-only notice (the partial unique index).
pub fn add(c: &mut Conn, n: &NewNotification, now: Millis) -> Result<Option<i64>> {
    let r = c.opt(
        "INSERT INTO notifications
             (user_id, kind, link_public_id, link_label, file, who, bytes, created_at)
         SELECT id, $2, $3, $4, $5, $6, $7, $8 FROM users WHERE name = $1
         ON CONFLICT DO NOTHING
         RETURNING id",
        &[
            &n.user,
            &n.kind.as_str(),
            &n.link_public_id,
            &n.link_label,
            &n.file,
            &n.who,
            &n.bytes.map(|b| b as i64),
            &now,
        ],
    )?;
    r.map(|r| get(&r, 0)).transpose()
}

/// Newest first.
pub fn of(c: &mut Conn, user: &str, limit: usize) -> Result<Vec<Notification>> {
    c.rows(
        &format!(
            "SELECT {COLS} FROM notifications
             WHERE user_id = (SELECT id FROM users WHERE name = $1)
             ORDER BY created_at DESC, id DESC LIMIT $2"
        ),
        &[&user, &(limit as i64)],
    )?
    .iter()
    .map(row)
    .collect()
}

pub fn unread(c: &mut Conn, user: &str) -> Result<u64> {
    let n: i64 = get(
        &c.one(
            "SELECT COUNT(*) FROM notifications
             WHERE user_id = (SELECT id FROM users WHERE name = $1) AND read_at IS NULL",
            &[&user],
        )?,
        0,
    )?;
    Ok(n as u64)
}

/// Marks one notification of `user` (or, with `None`, all of them) read.
pub fn mark_read(c: &mut Conn, user: &str, id: Option<i64>, now: Millis) -> Result<usize> {
    Ok(c.exec(
        "UPDATE notifications SET read_at = $3
         WHERE user_id = (SELECT id FROM users WHERE name = $1)
           AND read_at IS NULL AND ($2::BIGINT IS NULL OR id = $2)",
        &[&user, &id, &now],
    )? as usize)
}

/// The user's explicit choices: (kind, also by mail).
pub fn prefs(c: &mut Conn, user: &str) -> Result<Vec<(NoticeKind, bool)>> {
    let rows = c.rows(
        "SELECT kind, email FROM notification_prefs
         WHERE user_id = (SELECT id FROM users WHERE name = $1)",
        &[&user],
    )?;
    let mut out = Vec::new();
    for r in rows {
        let kind: String = get(&r, 0)?;
        if let Some(k) = NoticeKind::parse(&kind) {
            out.push((k, get(&r, 1)?));
        }
    }
    Ok(out)
}

pub fn set_pref(c: &mut Conn, user: &str, kind: NoticeKind, email: bool) -> Result<()> {
    c.exec(
        "INSERT INTO notification_prefs (user_id, kind, email)
         SELECT id, $2, $3 FROM users WHERE name = $1
         ON CONFLICT (user_id, kind) DO UPDATE SET email = excluded.email",
        &[&user, &kind.as_str(), &email],
    )?;
    Ok(())
}

/// Active links (of `owner`, or everyone's) that expired in (`since`, `now`]
/// and have no expiry notice yet.
pub fn newly_expired(
    c: &mut Conn,
    owner: Option<&str>,
    since: Millis,
    now: Millis,
) -> Result<Vec<Link>> {
    let ids: Vec<String> = c
        .rows(
            "SELECT public_id FROM links l
             WHERE state = 'active' AND expires_at IS NOT NULL
               AND expires_at > $1 AND expires_at <= $2
               AND ($3::TEXT IS NULL OR owner = $3)
               AND NOT EXISTS (SELECT 1 FROM notifications n
                               WHERE n.link_public_id = l.public_id AND n.kind = 'link_expired')
             LIMIT 1000",
            &[&since, &now, &owner],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect::<Result<_>>()?;
    let mut out = Vec::new();
    for id in ids {
        if let Some(l) = super::links::by_public_id(c, &id)? {
            out.push(l);
        }
    }
    Ok(out)
}

/// Replaces the names of a link's recipients: (e-mail, name).
pub fn set_recipient_names(c: &mut Conn, link_id: i64, names: &[(String, String)]) -> Result<()> {
    let tx = begin(c)?;
    tx.exec(
        "DELETE FROM link_recipients WHERE link_id = $1",
        &[&link_id],
    )?;
    for (email, name) in names {
        if name.trim().is_empty() {
            continue;
        }
        tx.exec(
            "INSERT INTO link_recipients (link_id, email, name) VALUES ($1, $2, $3)
             ON CONFLICT (link_id, email) DO UPDATE SET name = excluded.name",
            &[&link_id, &email.to_ascii_lowercase(), &name.trim()],
        )?;
    }
    commit(tx)
}

/// (e-mail in lower case, name) of a link's named recipients.
pub fn recipient_names(c: &mut Conn, link_id: i64) -> Result<Vec<(String, String)>> {
    c.rows(
        "SELECT email, name FROM link_recipients WHERE link_id = $1 ORDER BY email COLLATE \"C\"",
        &[&link_id],
    )?
    .iter()
    .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
    .collect()
}
