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
    /// Copy an installation's SQLite database into an empty PostgreSQL one
    /// (users, keys, API keys, links and their files, grants, uploads, clients,
    /// notifications, audit, bans), keeping ids, hashes and timestamps. Stop
    /// wharf first; afterwards point `[database] url` at the PostgreSQL database.
    Copy {
        /// The SQLite database: `sqlite:PATH` (e.g. sqlite:wharf-data/wharf.db).
        #[arg(long, value_name = "sqlite:PATH")]
        from: String,
        /// The PostgreSQL database: `postgresql://user:password@host:5432/wharf`
        /// [default: `[database] url` of the config, which keeps the password
        /// out of the command line]
        #[arg(long, value_name = "URL")]
        to: Option<String>,
    },
}

pub fn run(config: &Config, cmd: DbCmd) -> Result<()> {
    match cmd {
        DbCmd::Migrate => migrate(config),
        DbCmd::Copy { from, to } => super::db_copy::copy(config, &from, to.as_deref()),
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
