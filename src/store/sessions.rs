//! Staff web sessions as the store keeps them. The cookie's token is never
//! stored: lookups are by its SHA-256, so a copy of the database opens no session.

use crate::store::{Millis, User};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebSession {
    pub token_hash: String,
    pub user_id: i64,
    /// The per-session token every staff form must carry.
    pub csrf: String,
    pub created_at: Millis,
    /// The absolute end, whatever the activity.
    pub expires_at: Millis,
}

/// A live session and its user as they are now (the caller re-checks that the
/// user may still use the staff pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub id: i64,
    pub user: User,
    pub csrf: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub last_seen_at: Millis,
}
