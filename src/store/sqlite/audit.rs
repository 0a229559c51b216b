//! SQL for the audit log.

use rusqlite::{params, Connection, Row};

use crate::error::Result;
use crate::event::{AuditEvent, Outcome};
use crate::store::{AuditQuery, AuditRecord};

pub fn append(c: &mut Connection, events: &[AuditEvent]) -> Result<()> {
    let tx = c.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO audit (ts, protocol, remote, actor, action, path, bytes, outcome, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for e in events {
            stmt.execute(params![
                e.ts,
                e.protocol,
                e.remote,
                e.actor,
                e.action,
                e.path,
                e.bytes.map(|b| b as i64),
                e.outcome.as_str(),
                e.detail
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn row(r: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    let outcome: String = r.get(8)?;
    Ok(AuditRecord {
        id: r.get(0)?,
        event: AuditEvent {
            ts: r.get(1)?,
            protocol: r.get(2)?,
            remote: r.get(3)?,
            actor: r.get(4)?,
            action: r.get(5)?,
            path: r.get(6)?,
            bytes: r.get::<_, Option<i64>>(7)?.map(|b| b as u64),
            outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failed),
            detail: r.get(9)?,
            // Not stored: the log stream carries it.
            duration_ms: None,
        },
    })
}

pub fn query(c: &mut Connection, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
    // `visible_to`: what a user may read of the log is what they did and what
    // happened to their links (whose rows name `link:<public id>`).
    let mut stmt = c.prepare_cached(
        "SELECT id, ts, protocol, remote, actor, action, path, bytes, outcome, detail
         FROM audit
         WHERE (?1 IS NULL OR actor = ?1)
           AND (?2 IS NULL OR action = ?2)
           AND (?3 IS NULL OR ts >= ?3)
           AND (?5 IS NULL OR path = ?5)
           AND (?6 IS NULL OR (ts, id) < (?6, ?7))
           AND (?8 IS NULL OR actor = ?8
                OR path IN (SELECT 'link:' || public_id FROM links WHERE owner = ?8))
         ORDER BY ts DESC, id DESC
         LIMIT ?4",
    )?;
    let limit = if q.limit == 0 {
        i64::MAX
    } else {
        q.limit as i64
    };
    let (before_ts, before_id) = q.before.unzip();
    let rows = stmt.query_map(
        params![
            q.actor,
            q.action,
            q.since,
            limit,
            q.path,
            before_ts,
            before_id,
            q.visible_to
        ],
        row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use crate::event::AuditEvent;
    use crate::policy::Protocol;
    use crate::store::sqlite::SqliteStore;
    use crate::store::*;

    #[test]
    fn a_user_sees_their_own_events_and_their_links_pages_do_not_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        store
            .link_insert(
                &NewLink {
                    public_id: "mine".into(),
                    token_hash: "h".into(),
                    kind: LinkKind::Send,
                    owner: "alice".into(),
                    title: String::new(),
                    message: String::new(),
                    recipients: vec![],
                    expires_at: None,
                    max_uses: None,
                    password_hash: None,
                    allowed_emails: vec![],
                    state: LinkState::Active,
                    generation: None,
                    client_id: None,
                    reference: None,
                    name: String::new(),
                    inbound: None,
                },
                &[],
            )
            .unwrap();
        let ev = |actor: Option<&str>, path: &str| {
            let mut e = AuditEvent::new(Protocol::Http, "x").path(path);
            if let Some(a) = actor {
                e = e.actor(a);
            }
            e
        };
        store
            .audit_append(&[
                ev(Some("alice"), "/a"),
                ev(Some("bob"), "/b"),
                ev(None, "link:mine"),
                ev(None, "link:other"),
                ev(Some("bob"), "link:mine"),
            ])
            .unwrap();
        let q = AuditQuery {
            visible_to: Some("alice".into()),
            ..Default::default()
        };
        let paths: Vec<String> = store
            .audit_query(&q)
            .unwrap()
            .into_iter()
            .filter_map(|r| r.event.path)
            .collect();
        assert_eq!(paths, ["link:mine", "link:mine", "/a"]);

        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .audit_query(&AuditQuery {
                    limit: 2,
                    before,
                    ..Default::default()
                })
                .unwrap();
            let Some(last) = page.last() else { break };
            before = Some((last.event.ts, last.id));
            seen.extend(page.iter().map(|r| r.id));
        }
        assert_eq!(seen, [5, 4, 3, 2, 1]);
    }
}
