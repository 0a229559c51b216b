//! The staff dashboard's search of links, in one SQL statement and a count:
//! text, status (derived from the rules at the query's time, as
//! `policy::links::status` derives it), kind, client and reference filters, an
//! order and a page. Nothing loads every link.

use rusqlite::{types::Value, Connection};

use super::links::row;
use crate::error::Result;
use crate::store::{LinkPage, LinkQuery, LinkRow, LinkSort};

/// The status of a link at `:now`, in the order `policy::links::status` checks
/// the rules: revoked, expired, exhausted, draft, active.
const STATUS: &str = "CASE WHEN l.state = 'revoked' THEN 'revoked' \
     WHEN l.expires_at IS NOT NULL AND :now >= l.expires_at THEN 'expired' \
     WHEN l.max_uses IS NOT NULL AND l.uses >= l.max_uses THEN 'exhausted' \
     WHEN l.state = 'draft' THEN 'draft' ELSE 'active' END";

/// `%text%` for LIKE, with LIKE's own characters taken literally.
fn pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

pub fn search(c: &mut Connection, q: &LinkQuery) -> Result<LinkPage> {
    let mut clauses: Vec<String> = Vec::new();
    let mut values: Vec<(&str, Value)> = vec![(":now", Value::Integer(q.now))];
    if let Some(owner) = &q.owner {
        clauses.push("l.owner = :owner".into());
        values.push((":owner", Value::Text(owner.clone())));
    }
    if let Some(text) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        // Every word must be found somewhere (in any of the fields).
        for (i, word) in text.split_whitespace().take(8).enumerate() {
            let name = [":w0", ":w1", ":w2", ":w3", ":w4", ":w5", ":w6", ":w7"][i];
            clauses.push(format!(
                "(l.title LIKE {name} ESCAPE '\\' OR l.name LIKE {name} ESCAPE '\\' \
                 OR l.public_id LIKE {name} ESCAPE '\\' OR l.recipients LIKE {name} ESCAPE '\\' \
                 OR l.ref_value LIKE {name} ESCAPE '\\' OR c.name LIKE {name} ESCAPE '\\' \
                 OR EXISTS (SELECT 1 FROM link_files f WHERE f.link_id = l.id AND f.name LIKE {name} ESCAPE '\\'))"
            ));
            values.push((name, Value::Text(pattern(word))));
        }
    }
    if let Some(status) = &q.status {
        clauses.push(format!("({STATUS}) = :status"));
        values.push((":status", Value::Text(status.clone())));
    }
    if let Some(kind) = q.kind {
        clauses.push("l.kind = :kind".into());
        values.push((":kind", Value::Text(kind.as_str().into())));
    }
    if let Some(id) = q.client_id {
        clauses.push("l.client_id = :client".into());
        values.push((":client", Value::Integer(id)));
    }
    if let Some(t) = q.ref_type {
        clauses.push("l.ref_type = :ref_type".into());
        values.push((":ref_type", Value::Text(t.as_str().into())));
    }
    if let Some(r) = q
        .reference
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        clauses.push("l.ref_value LIKE :refv ESCAPE '\\'".into());
        values.push((":refv", Value::Text(pattern(r))));
    }
    if let Some((at, id)) = q.before {
        clauses.push("(l.created_at, l.id) < (:bat, :bid)".into());
        values.push((":bat", Value::Integer(at)));
        values.push((":bid", Value::Integer(id)));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let dir = if q.ascending { "ASC" } else { "DESC" };
    // Links that never expire come after every date either way.
    let order = match q.sort {
        LinkSort::Created => format!("l.created_at {dir}, l.id {dir}"),
        LinkSort::Expires => {
            format!("l.expires_at IS NULL, l.expires_at {dir}, l.id {dir}")
        }
        LinkSort::Title => format!(
            "lower(COALESCE(NULLIF(l.name, ''), NULLIF(l.title, ''), l.public_id)) {dir}, l.id {dir}"
        ),
        LinkSort::Uses => format!("l.uses {dir}, l.id {dir}"),
    };
    let from = "FROM links l LEFT JOIN clients c ON c.id = l.client_id";
    let cols = super::links::COLS
        .split(", ")
        .map(|col| format!("l.{}", col.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let total: i64 = {
        let sql = format!("SELECT COUNT(*) {from} {filter}");
        let mut stmt = c.prepare(&sql)?;
        let named: Vec<(&str, &dyn rusqlite::ToSql)> = values
            .iter()
            .filter(|(n, _)| sql.contains(n))
            .map(|(n, v)| (*n, v as &dyn rusqlite::ToSql))
            .collect();
        stmt.query_row(named.as_slice(), |r| r.get(0))?
    };
    let sql = format!(
        "SELECT {cols}, (SELECT COUNT(*) FROM link_files f WHERE f.link_id = l.id), c.name \
         {from} {filter} ORDER BY {order} LIMIT :limit OFFSET :offset"
    );
    values.push((":limit", Value::Integer(q.limit as i64)));
    values.push((":offset", Value::Integer(q.offset as i64)));
    let mut stmt = c.prepare(&sql)?;
    let named: Vec<(&str, &dyn rusqlite::ToSql)> = values
        .iter()
        .filter(|(n, _)| sql.contains(n))
        .map(|(n, v)| (*n, v as &dyn rusqlite::ToSql))
        .collect();
    let n = super::links::COLS.split(", ").count();
    let rows = stmt.query_map(named.as_slice(), |r| {
        Ok(LinkRow {
            link: row(r)?,
            files: r.get::<_, i64>(n)? as usize,
            client: r.get(n + 1)?,
        })
    })?;
    let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(LinkPage {
        rows,
        total: total as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::pattern;

    #[test]
    fn like_characters_are_literal() {
        assert_eq!(pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
