//! `wharf apikey ...`: keys for the admin HTTP API. A key is printed once, when
//! it is created; only its hash is stored, so it can be revoked but never shown.

use clap::Subcommand;

use super::admin_event;
use crate::apikeys;
use crate::app;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{format_ms, now_ms, NewApiKey};

#[derive(Debug, Subcommand)]
pub enum ApiKeyCmd {
    /// Create a key that acts as USER (printed once).
    Create {
        #[arg(long)]
        user: String,
        /// A label for people (what the key is for).
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List keys (prefix, label, user, created, last used, revoked); never the keys.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a key by its prefix (as `apikey list` prints it).
    Revoke { prefix: String },
}

pub fn run(config: &Config, cmd: ApiKeyCmd) -> Result<()> {
    let db = app::open_db(config)?;
    let store = db.blocking();
    match cmd {
        ApiKeyCmd::Create { user, name } => {
            let account = store
                .user_get(&user)?
                .ok_or_else(|| Error::not_found(format!("no user named {user:?}")))?;
            // A prefix collision (about 40 random bits) is retried, not reported.
            let (key, stored) = loop {
                let k = apikeys::generate();
                let new = NewApiKey {
                    name: name.clone(),
                    prefix: k.prefix.clone(),
                    key_hash: k.hash.clone(),
                };
                match store.api_key_insert(&user, &new) {
                    Ok(stored) => break (k.key, stored),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            };
            store.audit_append(&[admin_event("apikey_create")
                .path(format!("apikey:{}", stored.prefix))
                .detail(format!("for {user}"))])?;
            println!(
                "created API key {} for {user}{}",
                stored.prefix,
                if name.is_empty() {
                    String::new()
                } else {
                    format!(" ({name})")
                }
            );
            // The only time the key exists in clear.
            println!("{key}");
            println!("Keep it now: only its hash is stored and it cannot be shown again.");
            if !account.protocols.has(crate::policy::Protocol::Http) {
                eprintln!("warning: {user} may not use http, so the API refuses this key");
            }
            Ok(())
        }
        ApiKeyCmd::List { user } => {
            println!(
                "{:<10} {:<20} {:<16} {:<21} {:<21} REVOKED",
                "PREFIX", "NAME", "USER", "CREATED", "LAST USED"
            );
            let when = |t: Option<i64>| t.map(format_ms).unwrap_or_else(|| "-".into());
            for k in store.api_key_list(user.as_deref())? {
                println!(
                    "{:<10} {:<20} {:<16} {:<21} {:<21} {}",
                    k.prefix,
                    if k.name.is_empty() { "-" } else { &k.name },
                    k.user,
                    format_ms(k.created_at),
                    when(k.last_used_at),
                    when(k.revoked_at)
                );
            }
            Ok(())
        }
        ApiKeyCmd::Revoke { prefix } => {
            store.api_key_revoke(&prefix, now_ms())?;
            store.audit_append(&[admin_event("apikey_revoke").path(format!("apikey:{prefix}"))])?;
            println!("revoked API key {prefix}");
            Ok(())
        }
    }
}
