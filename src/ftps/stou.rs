//! The names STOU has handed out whose uploads are still running. An upload is
//! published only when it ends, so a lookup alone cannot tell two STOU commands
//! racing for the same name apart: each would find the name free and the later
//! upload would replace the earlier one. A name is claimed here, atomically with
//! the check, and released when its upload task ends (done, failed or aborted),
//! by which time a finished upload is visible to the lookup.
//!
//! A claim is taken in this process first (both FTPS listeners share it; no
//! database round trip for a name this node is already uploading to) and then
//! as a lock in the store (`cluster::lock`), so two nodes on one database never
//! hand out the same name either. A node that dies holding a claim loses it
//! after the lock's lifetime.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::cluster::LockGuard;
use crate::error::Result;
use crate::store::Db;

/// The claimed names, as full virtual paths (the user's home included, so two
/// users' `/a.txt` are different names).
pub struct StouClaims {
    held: Mutex<HashSet<String>>,
    db: Db,
}

impl StouClaims {
    pub fn new(db: Db) -> Self {
        StouClaims {
            held: Mutex::default(),
            db,
        }
    }

    /// Claims `key` unless it is already claimed, here or on another node.
    pub async fn claim(self: &Arc<Self>, key: String) -> Result<Option<StouClaim>> {
        let Some(mut claim) = self.claim_here(key.clone()) else {
            return Ok(None);
        };
        // Dropping `claim` on the way out gives the local claim back.
        claim._lock = crate::cluster::lock(&self.db, "stou", &format!("stou:{key}")).await?;
        Ok(claim._lock.is_some().then_some(claim))
    }

    fn claim_here(self: &Arc<Self>, key: String) -> Option<StouClaim> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(key.clone()).then(|| StouClaim {
            claims: self.clone(),
            key,
            _lock: None,
        })
    }
}

/// One claimed name, released when dropped (the store's lock by a spawned task).
pub struct StouClaim {
    claims: Arc<StouClaims>,
    key: String,
    _lock: Option<LockGuard>,
}

impl Drop for StouClaim {
    fn drop(&mut self) {
        let mut held = self.claims.held.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_claimed_once_here_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let claims = Arc::new(StouClaims::new(Db::new(store)));
        let first = claims.claim_here("/u/a".into());
        assert!(first.is_some());
        assert!(claims.claim_here("/u/a".into()).is_none());
        assert!(claims.claim_here("/v/a".into()).is_some());
        drop(first);
        assert!(claims.claim_here("/u/a".into()).is_some());
    }
}
