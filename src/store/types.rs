//! Records the store reads and writes.

use crate::policy::{PermSet, ProtocolSet};
use crate::vfs::VPath;

pub use crate::clock::{format_ms, from_ms, now_ms, to_ms, Millis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    /// Argon2id PHC string; `None` when the user logs in by key only.
    pub password_hash: Option<String>,
    pub enabled: bool,
    /// The user's root: every path they send is resolved inside it.
    pub home: VPath,
    pub perms: PermSet,
    pub protocols: ProtocolSet,
    /// SFTP logins need both a listed key and the password (two factors).
    pub key_and_password: bool,
    /// Where link notifications go.
    pub email: Option<String>,
    pub created_at: Millis,
    /// Sees and manages every user's links and the whole audit log through the
    /// admin API (file access still follows home and permissions).
    pub admin: bool,
    /// What mails and pages call the user ("Ann Smith"); `None`: their name.
    pub display_name: Option<String>,
}

impl User {
    /// The display name, else the user name.
    pub fn shown_name(&self) -> &str {
        self.display_name
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub password_hash: Option<String>,
    pub home: VPath,
    pub perms: PermSet,
    pub protocols: ProtocolSet,
    pub key_and_password: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshKey {
    pub id: i64,
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, ...
    pub algorithm: String,
    /// The key in OpenSSH format without its comment.
    pub openssh: String,
    pub comment: String,
    /// `SHA256:...` as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone)]
pub struct NewKey {
    pub algorithm: String,
    pub openssh: String,
    pub comment: String,
    pub fingerprint: String,
}

/// An API key as stored: never the key itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    /// The user the key acts as.
    pub user: String,
    /// A label for people (`ci`, `backup job`).
    pub name: String,
    /// The non-secret part that names the key (`wharf_<prefix>_...`).
    pub prefix: String,
    /// SHA-256 (hex) of the whole key.
    pub key_hash: String,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
}

/// Filters for reading the audit log; all optional.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Exact path, e.g. `link:abc123` for a link's trail.
    pub path: Option<String>,
    pub since: Option<Millis>,
    pub limit: usize,
    /// Only rows older than this (time, id): the next page after that row.
    pub before: Option<(Millis, i64)>,
    /// Only what this user may see: events they did, and events on their links.
    pub visible_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub event: crate::event::AuditEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_is_total() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ms(i64::MAX), "9999-12-31T23:59:59Z");
    }
}
