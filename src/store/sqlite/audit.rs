//! SQL for the audit log.

use rusqlite::{params, Connection, Row};

use crate::audit::{AuditEvent, Outcome};
use crate::error::Result;
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
        },
    })
}

pub fn query(c: &mut Connection, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, ts, protocol, remote, actor, action, path, bytes, outcome, detail
         FROM audit
         WHERE (?1 IS NULL OR actor = ?1)
           AND (?2 IS NULL OR action = ?2)
           AND (?3 IS NULL OR ts >= ?3)
           AND (?5 IS NULL OR path = ?5)
         ORDER BY ts DESC, id DESC
         LIMIT ?4",
    )?;
    let limit = if q.limit == 0 {
        i64::MAX
    } else {
        q.limit as i64
    };
    let rows = stmt.query_map(params![q.actor, q.action, q.since, limit, q.path], row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
