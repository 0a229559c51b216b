//! A synchronous face on `tokio-postgres`, safe to call from any thread.
//!
//! The sync `postgres` crate runs each call on a runtime of its own with
//! `block_on`, which panics on a thread inside a tokio runtime (serve's startup,
//! async tests). Here the connections' I/O runs on the store's own small
//! runtime, and a caller waits for a query's answer with `futures`' executor,
//! which never enters tokio: a query only sends on and waits for channels.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::executor::block_on;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Client, GenericClient, Row, Statement, Transaction};

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

/// Statements prepared on a connection, by their SQL: each is parsed once per
/// connection, then every use is one round trip instead of two.
#[derive(Default)]
pub struct Prepared(Mutex<HashMap<String, Statement>>);

/// More distinct statements than this (searches build theirs) start afresh.
const PREPARED_MAX: usize = 256;

impl Prepared {
    fn get<C: GenericClient + Sync>(&self, c: &C, sql: &str) -> Result<Statement> {
        if let Some(s) = self.0.lock().expect("statement cache").get(sql) {
            return Ok(s.clone());
        }
        let statement = block_on(c.prepare(sql)).map_err(pg)?;
        let mut cache = self.0.lock().expect("statement cache");
        if cache.len() >= PREPARED_MAX {
            cache.clear();
        }
        cache.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

/// A pooled connection and its prepared statements.
pub struct Conn {
    client: Client,
    prepared: Prepared,
}

impl Conn {
    pub fn new(client: Client) -> Self {
        Conn {
            client,
            prepared: Prepared::default(),
        }
    }

    /// Whether the connection is gone (server restart, network): not reused.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// A transaction on a [`Conn`] (rolled back if dropped uncommitted).
pub struct Tx<'a> {
    tx: Transaction<'a>,
    prepared: &'a Prepared,
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

fn exec_on<C: GenericClient + Sync>(c: &C, cache: &Prepared, sql: &str, p: &[P]) -> Result<u64> {
    let s = cache.get(c, sql)?;
    block_on(c.execute(&s, p)).map_err(pg)
}

fn rows_on<C: GenericClient + Sync>(
    c: &C,
    cache: &Prepared,
    sql: &str,
    p: &[P],
) -> Result<Vec<Row>> {
    let s = cache.get(c, sql)?;
    block_on(c.query(&s, p)).map_err(pg)
}

fn opt_on<C: GenericClient + Sync>(
    c: &C,
    cache: &Prepared,
    sql: &str,
    p: &[P],
) -> Result<Option<Row>> {
    let s = cache.get(c, sql)?;
    block_on(c.query_opt(&s, p)).map_err(pg)
}

impl Sql for Conn {
    fn exec(&self, sql: &str, p: &[P]) -> Result<u64> {
        exec_on(&self.client, &self.prepared, sql, p)
    }
    fn rows(&self, sql: &str, p: &[P]) -> Result<Vec<Row>> {
        rows_on(&self.client, &self.prepared, sql, p)
    }
    fn opt(&self, sql: &str, p: &[P]) -> Result<Option<Row>> {
        opt_on(&self.client, &self.prepared, sql, p)
    }
}

impl Sql for Tx<'_> {
    fn exec(&self, sql: &str, p: &[P]) -> Result<u64> {
        exec_on(&self.tx, self.prepared, sql, p)
    }
    fn rows(&self, sql: &str, p: &[P]) -> Result<Vec<Row>> {
        rows_on(&self.tx, self.prepared, sql, p)
    }
    fn opt(&self, sql: &str, p: &[P]) -> Result<Option<Row>> {
        opt_on(&self.tx, self.prepared, sql, p)
    }
}

/// Starts a transaction (read committed: the statements that must not race lock
/// their rows with `FOR UPDATE` or decide in one conditional UPDATE).
pub fn begin(c: &mut Conn) -> Result<Tx<'_>> {
    let Conn { client, prepared } = c;
    let tx = block_on(client.transaction()).map_err(pg)?;
    Ok(Tx { tx, prepared })
}

pub fn commit(tx: Tx<'_>) -> Result<()> {
    block_on(tx.tx.commit()).map_err(pg)
}

/// Runs several statements (migrations) without preparing them.
pub fn batch(tx: &Tx<'_>, sql: &str) -> Result<()> {
    block_on(tx.tx.batch_execute(sql)).map_err(pg)
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
