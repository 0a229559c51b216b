//! `wharf db copy`: an installation's SQLite database copied into PostgreSQL,
//! table by table, in one PostgreSQL transaction. Rows keep their ids (foreign
//! keys hold), hashes and timestamps exactly; this is not done through the
//! `Store` trait, which would make new ids and new timestamps. Each column is
//! converted by the type PostgreSQL gives it (SQLite's 0/1 → BOOLEAN).

use rusqlite::types::ValueRef;
use tokio_postgres::types::ToSql;

use super::conn::{begin, commit, get, Sql};
use super::{migrations, PostgresStore};
use crate::error::{Error, Result};

/// The tables copied, parents before children. Leases (who runs a job now) and
/// login tries in progress are of the running nodes, not of the installation.
pub const TABLES: &[&str] = &[
    "users",
    "user_keys",
    "api_keys",
    "web_sessions",
    "clients",
    "contacts",
    "links",
    "link_files",
    "link_grants",
    "link_codes",
    "link_uploads",
    "link_recipients",
    "notifications",
    "notification_prefs",
    "audit",
    "bans",
    "object_times",
];

/// Rows per INSERT: one round trip per row would make a long audit log take
/// minutes; PostgreSQL allows 65535 parameters per statement.
const BATCH: usize = 500;

/// A value on its way from SQLite to a PostgreSQL column.
enum Val {
    Bool(Option<bool>),
    Int(Option<i64>),
    Text(Option<String>),
}

impl Val {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Val::Bool(v) => v,
            Val::Int(v) => v,
            Val::Text(v) => v,
        }
    }
}

impl PostgresStore {
    /// Copies every table of [`TABLES`] from `source` (a SQLite database at
    /// this wharf's schema version) into this database, which is migrated
    /// first and must hold none of their rows. Returns the rows copied per table.
    pub fn import_sqlite(&self, source: &rusqlite::Connection) -> Result<Vec<(String, u64)>> {
        self.migrate()?;
        let shown = self.shown.clone();
        self.with(|c| {
            let version = migrations::current(c)?;
            if version != migrations::LATEST {
                return Err(Error::invalid(format!(
                    "the database {shown} is at schema version {version}, not {}",
                    migrations::LATEST
                )));
            }
            let tx = begin(c)?;
            let mut taken = Vec::new();
            for table in TABLES {
                let n: i64 = get(
                    &tx.one(
                        &format!("SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1) t"),
                        &[],
                    )?,
                    0,
                )?;
                if n > 0 {
                    taken.push(*table);
                }
            }
            if !taken.is_empty() {
                return Err(Error::invalid(format!(
                    "the database {shown} already holds data (tables {}); `wharf db copy` \
                     only fills an empty database: give it a new one",
                    taken.join(", ")
                )));
            }
            // Read the SQLite side as one snapshot.
            source.execute_batch("BEGIN")?;
            let mut counts = Vec::new();
            for table in TABLES {
                let n = copy_table(&tx, source, table)
                    .map_err(|e| e.context(format!("copying table {table}")))?;
                counts.push((table.to_string(), n));
            }
            source.execute_batch("COMMIT")?;
            commit(tx)?;
            Ok(counts)
        })
    }
}

fn copy_table(tx: &impl Sql, source: &rusqlite::Connection, table: &str) -> Result<u64> {
    let columns: Vec<(String, String)> = tx
        .rows(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )?
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
        .collect::<Result<_>>()?;
    if columns.is_empty() {
        return Err(Error::internal(format!("no table {table} in PostgreSQL")));
    }
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let list = names.join(", ");
    let mut select = source.prepare(&format!("SELECT {list} FROM {table}"))?;
    let mut rows = select.query([])?;
    let mut n = 0u64;
    let mut pending: Vec<Val> = Vec::with_capacity(BATCH * columns.len());
    while let Some(row) = rows.next()? {
        for (i, (name, ty)) in columns.iter().enumerate() {
            pending.push(convert(table, name, ty, row.get_ref(i)?)?);
        }
        n += 1;
        if pending.len() == BATCH * columns.len() {
            insert(tx, table, &list, columns.len(), &pending)?;
            pending.clear();
        }
    }
    if !pending.is_empty() {
        insert(tx, table, &list, columns.len(), &pending)?;
    }
    if names.contains(&"id") {
        // The next id PostgreSQL hands out comes after the copied ones.
        tx.exec(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
            ),
            &[],
        )?;
    }
    Ok(n)
}

/// One SQLite value as the PostgreSQL column type `ty` takes it.
fn convert(table: &str, name: &str, ty: &str, v: ValueRef<'_>) -> Result<Val> {
    Ok(match (ty, v) {
        ("boolean", ValueRef::Null) => Val::Bool(None),
        ("boolean", ValueRef::Integer(x)) => Val::Bool(Some(x != 0)),
        ("bigint" | "integer", ValueRef::Null) => Val::Int(None),
        ("bigint" | "integer", ValueRef::Integer(x)) => Val::Int(Some(x)),
        ("text", ValueRef::Null) => Val::Text(None),
        ("text", ValueRef::Text(t)) => Val::Text(Some(String::from_utf8_lossy(t).into_owned())),
        (ty, v) => {
            return Err(Error::invalid(format!(
                "{table}.{name}: a SQLite {:?} value cannot go into a PostgreSQL {ty} column",
                v.data_type()
            )))
        }
    })
}

/// Inserts `vals` (whole rows of `width` columns) in one statement.
fn insert(tx: &impl Sql, table: &str, list: &str, width: usize, vals: &[Val]) -> Result<()> {
    let rows: Vec<String> = (0..vals.len() / width)
        .map(|r| {
            let marks: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    let sql = format!("INSERT INTO {table} ({list}) VALUES {}", rows.join(", "));
    let params: Vec<&(dyn ToSql + Sync)> = vals.iter().map(Val::as_sql).collect();
    tx.exec(&sql, &params)?;
    Ok(())
}
