//! `wharf connector list|check|cors` (`cors`: `cors.rs`) and `wharf config check`.

use clap::Subcommand;
use futures::TryStreamExt;

use crate::app;
use crate::config::Config;
use crate::error::{Error, Result};

#[derive(Debug, Subcommand)]
pub enum ConnectorCmd {
    /// List configured connectors.
    List,
    /// Connect, list the root and print the capabilities.
    Check { name: String },
    /// Print the CORS rule the bucket needs for browsers on wharf's origin
    /// (S3 PutBucketCors JSON, GCS JSON, Azure <Cors> XML); not applied.
    Cors {
        name: String,
        /// The origin to allow [default: that of `[links] base_url`]
        #[arg(long, value_name = "URL")]
        origin: Option<String>,
    },
}

pub fn run(config: &Config, cmd: ConnectorCmd) -> Result<()> {
    match cmd {
        ConnectorCmd::List => {
            for c in &config.connectors {
                let mounted: Vec<String> = config
                    .mounts
                    .iter()
                    .filter(|m| m.connector == c.name)
                    .map(|m| m.at.to_string())
                    .collect();
                println!(
                    "{:<16} {:<8} mounted at: {}",
                    c.name,
                    c.scheme,
                    if mounted.is_empty() {
                        "-".into()
                    } else {
                        mounted.join(", ")
                    }
                );
            }
            Ok(())
        }
        ConnectorCmd::Check { name } => check(config, &name),
        ConnectorCmd::Cors { name, origin } => super::cors::run(config, &name, origin.as_deref()),
    }
}

fn check(config: &Config, name: &str) -> Result<()> {
    let spec = config
        .connectors
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = config.connectors.iter().map(|c| c.name.as_str()).collect();
            Error::not_found(format!(
                "no connector named {name:?} (configured: {})",
                known.join(", ")
            ))
        })?;
    let connector =
        wharf_connectors::build(spec, &config.tuning).map_err(|e| Error::invalid(e.to_string()))?;
    let op = connector.operator.clone();
    println!("connector {} (scheme {})", connector.name, connector.scheme);
    let rt = tokio::runtime::Runtime::new()?;
    let (count, first) = rt
        .block_on(async {
            let mut lister = op.lister("/").await?;
            let mut count = 0usize;
            let mut first = Vec::new();
            while let Some(entry) = lister.try_next().await? {
                let name = entry.path().trim_end_matches('/');
                if name.is_empty() || name == wharf_connectors::PARTIAL_DIR {
                    continue;
                }
                count += 1;
                if first.len() < 10 {
                    first.push(entry.path().to_string());
                }
                if count >= 1000 {
                    break;
                }
            }
            Ok::<_, wharf_connectors::opendal::Error>((count, first))
        })
        .map_err(|e| {
            Error::from(e).context(format!("connector {name}: listing the root failed"))
        })?;
    let more = if count >= 1000 { "1000+" } else { "" };
    println!(
        "root listed: {}{more} entries",
        if more.is_empty() {
            count.to_string()
        } else {
            String::new()
        }
    );
    for p in first {
        println!("  {p}");
    }
    println!("capabilities:");
    for (cap, on) in wharf_connectors::capability_summary(&op.info().capability()) {
        println!("  {cap:<22} {}", if on { "yes" } else { "no" });
    }
    Ok(())
}

pub fn config_check(config: &Config) -> Result<()> {
    match &config.source {
        Some(p) => println!("config file: {}", p.display()),
        None => println!("config file: none (embedded default)"),
    }
    println!("data directory: {}", config.data_dir.display());
    match &config.database {
        Some(url) => println!("database: PostgreSQL {}", url.redacted()),
        None => println!("database: SQLite {}", config.database_path().display()),
    }
    app::build_connectors(config)?;
    for c in &config.connectors {
        println!("connector {:<16} scheme {}", c.name, c.scheme);
    }
    for m in &config.mounts {
        println!(
            "mount {:<20} -> {} /{}",
            m.at.to_string(),
            m.connector,
            m.root
        );
    }
    println!(
        "transfers -> {} /{}",
        config.transfers.connector, config.transfers.root
    );
    if crate::cluster::check::shared_database(config) {
        for w in crate::cluster::check::per_node_warnings(config) {
            println!("warning (several nodes): {w}");
        }
    }
    println!("config OK");
    Ok(())
}
