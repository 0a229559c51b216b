//! A synchronous face on `tokio-postgres`, safe to call from any thread.
//!
//! The sync `postgres` crate runs each call on a runtime of its own with
//! `block_on`, which panics on a thread inside a tokio runtime (serve's startup,
//! async tests). Here the connections' I/O runs on the store's own small
//! runtime, and a caller waits for a query's answer with `futures`' executor,
//! which never enters tokio: a query only sends on and waits for channels.

use futures::executor::block_on;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Client, GenericClient, Row, Transaction};

use crate::error::{Error, ErrorKind, Result};

pub type P<'a> = &'a (dyn ToSql + Sync);

/// A PostgreSQL error as wharf's: constraint violations are conflicts (as the
/// SQLite store reports them), lost connections and lock conflicts are worth a
/// retry, the rest is internal.
pub fn pg(e: tokio_postgres::Error) -> Error {
    let kind = match e.code() {
        Some(code) if code.code().starts_with("23") => ErrorKind::AlreadyExists,
        Some(code)
            if code.code().starts_with("08")
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || *code == SqlState::CANNOT_CONNECT_NOW =>
        {
            ErrorKind::Unavailable
        }
        Some(_) => ErrorKind::Internal,
        None => ErrorKind::Unavailable,
    };
    // The server's message says what was wrong with the statement (for the log).
    let what = match e.as_db_error() {
        Some(db) => format!("database: {}", db.message()),
        None => "database".to_string(),
    };
    Error::new(kind, what).with_source(e)
}

/// Whether `e` is a unique violation (a name or key already taken).
pub fn is_unique_violation(e: &Error) -> bool {
    e.kind() == ErrorKind::AlreadyExists
}

/// Statements on a connection or inside a transaction.
pub trait Sql {
    fn exec(&self, sql: &str, p: &[P]) -> Result<u64>;
    fn rows(&self, sql: &str, p: &[P]) -> Result<Vec<Row>>;
    fn opt(&self, sql: &str, p: &[P]) -> Result<Option<Row>>;
    fn one(&self, sql: &str, p: &[P]) -> Result<Row> {
        self.opt(sql, p)?
            .ok_or_else(|| Error::internal("the database returned no row"))
    }
}

impl<C: GenericClient + Sync> Sql for C {
    fn exec(&self, sql: &str, p: &[P]) -> Result<u64> {
        block_on(self.execute(sql, p)).map_err(pg)
    }
    fn rows(&self, sql: &str, p: &[P]) -> Result<Vec<Row>> {
        block_on(self.query(sql, p)).map_err(pg)
    }
    fn opt(&self, sql: &str, p: &[P]) -> Result<Option<Row>> {
        block_on(self.query_opt(sql, p)).map_err(pg)
    }
}

/// Starts a transaction (read committed: the statements that must not race lock
/// their rows with `FOR UPDATE` or decide in one conditional UPDATE).
pub fn begin(c: &mut Client) -> Result<Transaction<'_>> {
    block_on(c.transaction()).map_err(pg)
}

pub fn commit(tx: Transaction<'_>) -> Result<()> {
    block_on(tx.commit()).map_err(pg)
}

pub fn batch(tx: &Transaction<'_>, sql: &str) -> Result<()> {
    block_on(tx.batch_execute(sql)).map_err(pg)
}

/// Column `i` of a row.
pub fn get<'a, T: FromSql<'a>>(r: &'a Row, i: usize) -> Result<T> {
    r.try_get(i)
        .map_err(|e| Error::internal(format!("database column {i}")).with_source(e))
}

/// A stored count or size (BIGINT) as the u32 the types hold.
pub fn get_u32(r: &Row, i: usize) -> Result<u32> {
    Ok(get::<i64>(r, i)?.clamp(0, u32::MAX as i64) as u32)
}

pub fn get_opt_u32(r: &Row, i: usize) -> Result<Option<u32>> {
    Ok(get::<Option<i64>>(r, i)?.map(|n| n.clamp(0, u32::MAX as i64) as u32))
}
