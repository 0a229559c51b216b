//! `wharf audit`: read the audit log, newest first, as a table or JSON lines.

use clap::Args;

use crate::app;
use crate::audit::parse_since;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{format_ms, now_ms, AuditQuery};

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events of this user (the actor).
    #[arg(long)]
    user: Option<String>,
    /// Only events newer than this: a duration (`1h`, `7days`) or an RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Only this action: login, login_failed, upload, download, delete, mkdir, rmdir,
    /// rename, user_add, ...
    #[arg(long)]
    action: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// One JSON object per line, for machines (`jq` reads it as is).
    #[arg(long)]
    json: bool,
}

pub fn run(config: &Config, args: AuditArgs) -> Result<()> {
    let query = AuditQuery {
        actor: args.user,
        action: args.action,
        path: None,
        since: args
            .since
            .as_deref()
            .map(|s| parse_since(s, now_ms()))
            .transpose()
            .map_err(|e| Error::invalid(format!("--since {e}")))?,
        limit: args.limit,
        ..Default::default()
    };
    let db = app::open_db(config)?;
    let rows = db.blocking().audit_query(&query)?;
    if args.json {
        for r in rows {
            let mut v = serde_json::to_value(&r.event)
                .map_err(|e| Error::internal("json").with_source(e))?;
            v["time"] = format_ms(r.event.ts).into();
            v["id"] = r.id.into();
            println!("{v}");
        }
        return Ok(());
    }
    println!(
        "{:<20} {:<5} {:<21} {:<16} {:<14} {:<7} {:>12}  PATH / DETAIL",
        "TIME", "PROTO", "REMOTE", "ACTOR", "ACTION", "OUTCOME", "BYTES"
    );
    for r in rows {
        let e = r.event;
        let tail = match (&e.path, &e.detail) {
            (Some(p), Some(d)) => format!("{p}  ({d})"),
            (Some(p), None) => p.clone(),
            (None, Some(d)) => format!("({d})"),
            (None, None) => String::new(),
        };
        println!(
            "{:<20} {:<5} {:<21} {:<16} {:<14} {:<7} {:>12}  {}",
            format_ms(e.ts),
            e.protocol,
            e.remote.as_deref().unwrap_or("-"),
            e.actor.as_deref().unwrap_or("-"),
            e.action,
            e.outcome.as_str(),
            e.bytes.map_or("-".to_string(), |b| b.to_string()),
            tail
        );
    }
    Ok(())
}
