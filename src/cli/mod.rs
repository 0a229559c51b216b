//! The `wharf` command line: argument definitions and dispatch. Each command family
//! lives in its own module; all of them work while `serve` runs on the same data
//! directory (SQLite in WAL mode), and changes take effect at once.

mod apikey;
mod audit;
mod clients;
mod connector;
mod cors;
mod db;
mod db_copy;
mod link;
mod user;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};
use crate::error::Result;
use crate::policy::Protocol;

#[derive(Debug, Parser)]
#[command(name = "wharf", version, about = "SFTP/FTPS gateway with shared links")]
pub struct Cli {
    /// Config file (TOML). Without one, wharf runs on its embedded default.
    #[arg(long, global = true, env = "WHARF_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Data directory: database, keys, default storage [default: ./wharf-data]
    #[arg(long, global = true, env = "WHARF_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve,
    /// Manage user accounts.
    #[command(subcommand)]
    User(user::UserCmd),
    /// Create and manage shared links.
    #[command(subcommand)]
    Link(link::LinkCmd),
    /// Keys for the admin HTTP API.
    #[command(subcommand)]
    Apikey(apikey::ApiKeyCmd),
    /// Read the audit log.
    Audit(audit::AuditArgs),
    /// The staff address book: clients (organisations).
    #[command(subcommand)]
    Client(clients::ClientCmd),
    /// The contacts of clients.
    #[command(subcommand)]
    Contact(clients::ContactCmd),
    /// Inspect storage connectors.
    #[command(subcommand)]
    Connector(connector::ConnectorCmd),
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// The metadata database (SQLite, or PostgreSQL with `[database] url`).
    #[command(subcommand)]
    Db(db::DbCmd),
    /// Ask a running node whether it is ready (its `/readyz` on `[metrics] listen`);
    /// exit status 0 when it is.
    Ping {
        /// The metrics listener to ask [default: `[metrics] listen` of the config]
        #[arg(long, value_name = "HOST:PORT")]
        addr: Option<std::net::SocketAddr>,
    },
    /// Copy the database (consistently, while serve runs) and the keys and
    /// certificates of the data directory into one file (a tar; see docs/operations.md).
    Backup {
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Bring a backup back into a new data directory (--data-dir).
    Restore {
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Load and validate the configuration, then print what it resolves to.
    Check,
}

/// Runs the parsed command. Returns the process exit code.
pub fn run(cli: Cli) -> Result<()> {
    let config = Config::load(cli.config.as_deref(), cli.data_dir.as_deref())
        .map_err(|e| crate::Error::invalid(e.to_string()))?;
    crate::logging::init(
        &config.log_level,
        cli.log_format.unwrap_or(config.log_format),
    );
    if let Command::Ping { addr } = cli.command {
        return ping(&config, addr);
    }
    // Whichever command runs first creates the data directory, owner-only.
    crate::app::prepare_data_dir(&config)?;
    if let (Command::Backup { .. } | Command::Restore { .. }, Some(url)) =
        (&cli.command, &config.database)
    {
        return Err(crate::Error::invalid(format!(
            "the database is PostgreSQL ({}): back it up with pg_dump; `wharf backup` \
             and `wharf restore` handle the SQLite database of a data directory",
            url.redacted()
        )));
    }
    match cli.command {
        Command::Ping { .. } => Ok(()),
        Command::Backup { to } => {
            let m = crate::backup::backup(&config.data_dir, &to)?;
            println!("backup written to {}", to.display());
            for f in m.files {
                println!("  {:<24} {:>12} bytes  sha256 {}", f.name, f.size, f.sha256);
            }
            Ok(())
        }
        Command::Restore { from } => {
            let m = crate::backup::restore(&from, &config.data_dir)?;
            println!(
                "restored the backup of {} (wharf {}) into {}; database integrity ok",
                m.created,
                m.wharf_version,
                config.data_dir.display()
            );
            Ok(())
        }
        Command::Serve => serve(config),
        Command::User(cmd) => user::run(&config, cmd),
        Command::Apikey(cmd) => apikey::run(&config, cmd),
        Command::Audit(args) => audit::run(&config, args),
        Command::Client(cmd) => clients::run_client(&config, cmd),
        Command::Contact(cmd) => clients::run_contact(&config, cmd),
        Command::Link(cmd) => link::run(&config, cmd),
        Command::Connector(cmd) => connector::run(&config, cmd),
        Command::Config(ConfigCmd::Check) => connector::config_check(&config),
        Command::Db(cmd) => db::run(&config, cmd),
    }
}

fn ping(config: &Config, addr: Option<std::net::SocketAddr>) -> Result<()> {
    let addr = addr.or(config.metrics.listen).ok_or_else(|| {
        crate::Error::invalid("no [metrics] listen in the configuration; give --addr")
    })?;
    match crate::health::ping(addr) {
        Ok(body) => {
            println!("ready {body}");
            Ok(())
        }
        Err(why) => Err(crate::Error::invalid(format!("{addr} is not ready: {why}"))),
    }
}

fn serve(config: Config) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let mut signal = crate::shutdown::ShutdownSignal::install()?;
        let hangup = signal.take_hangup();
        let app = crate::app::App::open(config)?;
        app.serve_with_reload(signal.wait(), hangup).await
    })
}

/// Who runs the command line: `cli:<login name>` (the administrator of the
/// machine; `--as` makes them act as a user, and the audit rows say so).
fn cli_actor() -> String {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{who}")
}

/// An audit event for an administrative change made from the command line.
fn admin_event(action: &str) -> crate::audit::AuditEvent {
    crate::audit::AuditEvent::new(Protocol::Cli, action).actor(cli_actor())
}
