//! The names STOU has handed out whose uploads are still running. An upload is
//! published only when it ends, so a lookup alone cannot tell two STOU commands
//! racing for the same name apart: each would find the name free and the later
//! upload would replace the earlier one. A name is claimed here, atomically with
//! the check, and released when its upload task ends (done, failed or aborted),
//! by which time a finished upload is visible to the lookup. Claims are per
//! gateway process (shared by both FTPS listeners).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The claimed names, as full virtual paths (the user's home included, so two
/// users' `/a.txt` are different names).
#[derive(Default)]
pub struct StouClaims(Mutex<HashSet<String>>);

impl StouClaims {
    /// Claims `key` unless it is already claimed.
    pub fn claim(self: &Arc<Self>, key: String) -> Option<StouClaim> {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(key.clone()).then(|| StouClaim {
            claims: self.clone(),
            key,
        })
    }
}

/// One claimed name, released when dropped.
pub struct StouClaim {
    claims: Arc<StouClaims>,
    key: String,
}

impl Drop for StouClaim {
    fn drop(&mut self) {
        let mut held = self.claims.0.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_claimed_once_until_released() {
        let claims = Arc::new(StouClaims::default());
        let first = claims.claim("/u/a".into());
        assert!(first.is_some());
        assert!(claims.claim("/u/a".into()).is_none());
        assert!(claims.claim("/v/a".into()).is_some());
        drop(first);
        assert!(claims.claim("/u/a".into()).is_some());
    }
}
