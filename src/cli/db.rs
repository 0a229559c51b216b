//! `wharf db`: the metadata database itself (migrations, run explicitly).

use clap::Subcommand;

use crate::config::Config;
use crate::error::Result;
use crate::store::{postgres, sqlite};

#[derive(Debug, Subcommand)]
pub enum DbCmd {
    /// Bring the database's schema to this wharf's version and print it (serve
    /// also does this at start; nodes starting together migrate once).
    Migrate,
}

pub fn run(config: &Config, cmd: DbCmd) -> Result<()> {
    match cmd {
        DbCmd::Migrate => migrate(config),
    }
}

fn migrate(config: &Config) -> Result<()> {
    match &config.database {
        Some(url) => {
            let store = postgres::PostgresStore::connect_only(&url.0)?;
            let before = store.schema_version()?;
            let after = store.migrate()?;
            println!(
                "database {}: schema version {after} (was {before})",
                url.redacted()
            );
        }
        None => {
            crate::app::open_db(config)?;
            println!(
                "database {}: schema version {}",
                config.database_path().display(),
                sqlite::SCHEMA_VERSION
            );
        }
    }
    Ok(())
}
