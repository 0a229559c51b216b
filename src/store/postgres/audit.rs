//! SQL for the audit log.

use tokio_postgres::Row;

use super::conn::{begin, commit, get, Conn, Sql};
use crate::error::Result;
use crate::event::{AuditEvent, Outcome};
use crate::store::{AuditQuery, AuditRecord};

pub fn append(c: &mut Conn, events: &[AuditEvent]) -> Result<()> {
    let tx = begin(c)?;
    for e in events {
        tx.exec(
            "INSERT INTO audit (ts, protocol, remote, actor, action, path, bytes, outcome, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &e.ts,
                &e.protocol,
                &e.remote,
                &e.actor,
                &e.action,
                &e.path,
                &e.bytes.map(|b| b as i64),
                &e.outcome.as_str(),
                &e.detail,
            ],
        )?;
    }
    commit(tx)
}

fn row(r: &Row) -> Result<AuditRecord> {
    let outcome: String = get(r, 8)?;
    Ok(AuditRecord {
        id: get(r, 0)?,
        event: AuditEvent {
            ts: get(r, 1)?,
            protocol: get(r, 2)?,
            remote: get(r, 3)?,
            actor: get(r, 4)?,
            action: get(r, 5)?,
            path: get(r, 6)?,
            bytes: get::<Option<i64>>(r, 7)?.map(|b| b as u64),
            outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failed),
            detail: get(r, 9)?,
            duration_ms: None,
        },
    })
}

pub fn query(c: &mut Conn, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
    let limit = if q.limit == 0 {
        i64::MAX
    } else {
        q.limit as i64
    };
    let (before_ts, before_id) = q.before.unzip();
    c.rows(
        "SELECT id, ts, protocol, remote, actor, action, path, bytes, outcome, detail
         FROM audit
         WHERE ($1::TEXT IS NULL OR actor = $1)
           AND ($2::TEXT IS NULL OR action = $2)
           AND ($3::BIGINT IS NULL OR ts >= $3)
           AND ($5::TEXT IS NULL OR path = $5)
           AND ($6::BIGINT IS NULL OR (ts, id) < ($6, $7::BIGINT))
           AND ($8::TEXT IS NULL OR actor = $8
                OR path IN (SELECT 'link:' || public_id FROM links WHERE owner = $8))
         ORDER BY ts DESC, id DESC
         LIMIT $4",
        &[
            &q.actor,
            &q.action,
            &q.since,
            &limit,
            &q.path,
            &before_ts,
            &before_id,
            &q.visible_to,
        ],
    )?
    .iter()
    .map(row)
    .collect()
}
