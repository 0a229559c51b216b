//! `wharf db copy --from sqlite:PATH --to postgresql://…`: moves an installation
//! from its SQLite database to PostgreSQL (see docs/scale-out.md). The SQLite
//! file is only read, and must be at this wharf's schema version; the
//! PostgreSQL database is migrated and must be empty; everything is copied in
//! one PostgreSQL transaction, so a failed copy leaves nothing behind.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{postgres, sqlite};

pub fn copy(config: &Config, from: &str, to: Option<&str>) -> Result<()> {
    let to = match (to, &config.database) {
        (Some(to), _) => to,
        (None, Some(url)) => url.0.as_str(),
        (None, None) => {
            return Err(Error::invalid(
                "give the PostgreSQL database with --to postgresql://… or as [database] url \
                 in the config",
            ))
        }
    };
    let path = from.strip_prefix("sqlite:").ok_or_else(|| {
        Error::invalid(format!(
            "--from {from}: give the SQLite database as sqlite:PATH"
        ))
    })?;
    let path = Path::new(path.strip_prefix("//").unwrap_or(path));
    if !(to.starts_with("postgresql://") || to.starts_with("postgres://")) {
        return Err(Error::invalid(format!(
            "--to {}: give the PostgreSQL database as postgresql://user:password@host:port/name",
            postgres::redact_url(to)
        )));
    }
    let source = open_source(path)?;
    let store = postgres::PostgresStore::connect_only(to)?;
    let counts = store.import_sqlite(&source)?;
    println!(
        "copied {} into {} (schema version {}):",
        path.display(),
        postgres::redact_url(to),
        postgres::SCHEMA_VERSION
    );
    for (table, n) in &counts {
        println!("  {table:<20} {n:>10}");
    }
    println!("now set [database] url to this database and start wharf");
    Ok(())
}

/// Opens the SQLite database read-only at this wharf's schema version.
fn open_source(path: &Path) -> Result<Connection> {
    if !path.is_file() {
        return Err(Error::invalid(format!(
            "--from: no SQLite database at {}",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::from(e).context(format!("opening {}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < sqlite::SCHEMA_VERSION {
        return Err(Error::invalid(format!(
            "{} has schema version {version}, older than this wharf's ({}): run \
             `wharf db migrate` on it first (with this wharf, on the SQLite data directory)",
            path.display(),
            sqlite::SCHEMA_VERSION
        )));
    }
    if version > sqlite::SCHEMA_VERSION {
        return Err(Error::invalid(format!(
            "{} has schema version {version}, newer than this wharf knows ({}); \
             copy it with the wharf version that wrote it or a newer one",
            path.display(),
            sqlite::SCHEMA_VERSION
        )));
    }
    if postgres::SCHEMA_VERSION != sqlite::SCHEMA_VERSION {
        return Err(Error::internal("the SQLite and PostgreSQL schemas differ"));
    }
    Ok(conn)
}
