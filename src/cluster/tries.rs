//! Login tries counted in the database, so that every node sees every node's:
//! a try is reserved in the store before its credentials are checked (tries in
//! flight on all nodes plus failures never exceed the limit), a failure stays
//! counted for the window, and the node whose failure reaches the limit stores
//! the ban, which the others pick up (`defender::with_stored_bans`).
//!
//! This sits beside the in-memory defender, which still answers the cheap
//! checks (a known ban, slots of this node) without a database round trip.

use std::net::IpAddr;
use std::time::Duration;

use crate::clock::now_ms;
use crate::config::DefenderConfig;
use crate::error::Result;
use crate::store::{Db, Millis};

fn ms(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

/// The store key of an address's login tries.
pub fn login_key(ip: IpAddr) -> String {
    format!("login:{ip}")
}

/// A try reserved in the store. Dropped unreported (a success, or the client
/// went away), it frees its slot in a spawned task: dropping never blocks.
pub struct SharedTry {
    db: Db,
    id: i64,
    key: String,
    window: Millis,
    open: bool,
}

/// What the store says to a new try.
pub enum Reserved {
    Try(SharedTry),
    /// Failures and tries in flight on all nodes already reach the limit.
    Full,
    /// A node banned the address; this long is left.
    Banned(Duration),
}

/// Reserves a login try from `ip`, unless a node banned it or the slots are
/// full: one round trip, so a ban given a moment ago on another node holds
/// here before this node's poll of the bans sees it.
pub async fn reserve(db: &Db, ip: IpAddr, config: DefenderConfig) -> Result<Reserved> {
    let window = ms(config.window);
    let max = config.max_failures;
    let key = login_key(ip);
    let k = key.clone();
    let found = db
        .run(move |s| {
            let now = now_ms();
            if let Some(until) = s.ban_until(&ip.to_string(), now)? {
                return Ok(Err(until - now));
            }
            Ok(Ok(s.failure_reserve(&k, now, window, max)?))
        })
        .await?;
    Ok(match found {
        Err(left) => Reserved::Banned(Duration::from_millis(left.max(0) as u64)),
        Ok(None) => Reserved::Full,
        Ok(Some(id)) => Reserved::Try(SharedTry {
            db: db.clone(),
            id,
            key,
            window,
            open: true,
        }),
    })
}

/// Reserves a try for any `key` (a link guess: `guess:<link>:<address>`);
/// `None` while failures and tries in flight on all nodes reach the limit.
pub async fn reserve_key(db: &Db, key: &str, config: DefenderConfig) -> Result<Option<SharedTry>> {
    let window = ms(config.window);
    let max = config.max_failures;
    let k = key.to_string();
    let id = db
        .run(move |s| s.failure_reserve(&k, now_ms(), window, max))
        .await?;
    Ok(id.map(|id| SharedTry {
        db: db.clone(),
        id,
        key: key.to_string(),
        window,
        open: true,
    }))
}

/// Counts one event of `key` at once (a code request); `None` when the
/// events of all nodes within the window already reach the limit.
pub async fn count(db: &Db, key: &str, config: DefenderConfig) -> Result<Option<u32>> {
    match reserve_key(db, key, config).await? {
        Some(t) => Ok(Some(t.failed().await?)),
        None => Ok(None),
    }
}

impl SharedTry {
    /// The credentials were right: the slot is freed now (awaited, unlike a drop).
    pub async fn succeeded(mut self) {
        self.open = false;
        let (id, key, window) = (self.id, self.key.clone(), self.window);
        if let Err(e) = self
            .db
            .run(move |s| s.failure_settle(id, &key, false, now_ms(), window))
            .await
        {
            tracing::warn!(error = %e, "could not free a login slot in the store; it runs out with the window");
        }
    }

    /// The credentials were wrong: the failure stays counted. Returns the
    /// failures of its key within the window, on all nodes.
    pub async fn failed(mut self) -> Result<u32> {
        self.open = false;
        let (id, key, window) = (self.id, self.key.clone(), self.window);
        self.db
            .run(move |s| s.failure_settle(id, &key, true, now_ms(), window))
            .await
    }
}

impl Drop for SharedTry {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let (db, id, key, window) = (self.db.clone(), self.id, self.key.clone(), self.window);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = db
                    .run(move |s| s.failure_settle(id, &key, false, now_ms(), window))
                    .await;
            });
        }
        // Outside a runtime (never in `serve`) the row runs out with the window.
    }
}

/// Stores a ban of `ip` for `ban` and forgets its counted failures, so every
/// node refuses it from its next look at the bans.
pub async fn ban(db: &Db, ip: IpAddr, ban: Duration) -> Result<()> {
    let until = now_ms().saturating_add(ms(ban));
    db.run(move |s| {
        s.ban_put(&ip.to_string(), until, now_ms())?;
        s.failures_clear(&login_key(ip))
    })
    .await
}
