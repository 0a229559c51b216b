//! The staff dashboard's search of links, in one SQL statement and a count, as
//! the SQLite store does it: text (case-insensitive, as SQLite's LIKE is for
//! ASCII), status derived at the query's time, kind, client and reference
//! filters, an order and a page.

use tokio_postgres::types::ToSql;

use super::conn::{get, Conn, Sql, P};
use super::links::row;
use crate::error::Result;
use crate::store::{LinkPage, LinkQuery, LinkRow, LinkSort};

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

/// Positional parameters, numbered as they are added.
#[derive(Default)]
struct Params(Vec<Box<dyn ToSql + Sync>>);

impl Params {
    fn add(&mut self, v: impl ToSql + Sync + 'static) -> String {
        self.0.push(Box::new(v));
        format!("${}", self.0.len())
    }
    fn refs(&self) -> Vec<P<'_>> {
        self.0.iter().map(|v| v.as_ref() as P).collect()
    }
}

pub fn search(c: &mut Conn, q: &LinkQuery) -> Result<LinkPage> {
    let mut p = Params::default();
    let mut clauses: Vec<String> = Vec::new();
    if let Some(owner) = &q.owner {
        clauses.push(format!("l.owner = {}", p.add(owner.clone())));
    }
    if let Some(text) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        // Every word must be found somewhere (in any of the fields).
        for word in text.split_whitespace().take(8) {
            let w = p.add(pattern(word));
            clauses.push(format!(
                "(l.title ILIKE {w} OR l.name ILIKE {w} OR l.public_id ILIKE {w} \
                 OR l.recipients ILIKE {w} OR l.ref_value ILIKE {w} OR c.name ILIKE {w} \
                 OR EXISTS (SELECT 1 FROM link_files f WHERE f.link_id = l.id AND f.name ILIKE {w}))"
            ));
        }
    }
    if let Some(status) = &q.status {
        let now = p.add(q.now);
        let status_sql = format!(
            "CASE WHEN l.state = 'revoked' THEN 'revoked' \
             WHEN l.expires_at IS NOT NULL AND {now} >= l.expires_at THEN 'expired' \
             WHEN l.max_uses IS NOT NULL AND l.uses >= l.max_uses THEN 'exhausted' \
             WHEN l.state = 'draft' THEN 'draft' ELSE 'active' END"
        );
        clauses.push(format!("({status_sql}) = {}", p.add(status.clone())));
    }
    if let Some(kind) = q.kind {
        clauses.push(format!("l.kind = {}", p.add(kind.as_str().to_string())));
    }
    if let Some(id) = q.client_id {
        clauses.push(format!("l.client_id = {}", p.add(id)));
    }
    if let Some(t) = q.ref_type {
        clauses.push(format!("l.ref_type = {}", p.add(t.as_str().to_string())));
    }
    if let Some(r) = q
        .reference
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        clauses.push(format!("l.ref_value ILIKE {}", p.add(pattern(r))));
    }
    if let Some((at, id)) = q.before {
        let (a, b) = (p.add(at), p.add(id));
        clauses.push(format!("(l.created_at, l.id) < ({a}, {b})"));
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
            "lower(COALESCE(NULLIF(l.name, ''), NULLIF(l.title, ''), l.public_id)) COLLATE \"C\" {dir}, l.id {dir}"
        ),
        LinkSort::Uses => format!("l.uses {dir}, l.id {dir}"),
    };
    let from = "FROM links l LEFT JOIN clients c ON c.id = l.client_id";
    let cols = super::links::COLS
        .split(", ")
        .map(|col| format!("l.{}", col.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let total: i64 = get(
        &c.one(&format!("SELECT COUNT(*) {from} {filter}"), &p.refs())?,
        0,
    )?;
    let limit = p.add(q.limit as i64);
    let offset = p.add(q.offset as i64);
    let sql = format!(
        "SELECT {cols}, (SELECT COUNT(*) FROM link_files f WHERE f.link_id = l.id), c.name \
         {from} {filter} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    );
    let n = super::links::COLS.split(", ").count();
    let rows = c
        .rows(&sql, &p.refs())?
        .iter()
        .map(|r| {
            Ok(LinkRow {
                link: row(r)?,
                files: get::<i64>(r, n)? as usize,
                client: get(r, n + 1)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
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
