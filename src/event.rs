//! An audit event: who did what, where, from which address, with what outcome.
//! A leaf below the store (which writes events) and the audit pipeline (which
//! queues them), so neither depends on the other for the type.

use serde::Serialize;

use crate::clock::{now_ms, Millis};
use crate::policy::Protocol;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Refused by a rule: permissions, wrong password, lock-out.
    Denied,
    /// Tried and failed: storage error, aborted transfer.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(Outcome::Ok),
            "denied" => Some(Outcome::Denied),
            "failed" => Some(Outcome::Failed),
            _ => None,
        }
    }
}

/// One audited event. Built with [`AuditEvent::new`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub ts: Millis,
    pub protocol: String,
    pub remote: Option<String>,
    pub actor: Option<String>,
    pub action: String,
    pub path: Option<String>,
    pub bytes: Option<u64>,
    pub outcome: Outcome,
    pub detail: Option<String>,
    /// How long a transfer took: for the log stream and metrics, not stored.
    pub duration_ms: Option<u64>,
}

/// The audit key of a link: the `path` of every event about it, so its trail
/// is one query.
pub fn link_key(public_id: &str) -> String {
    format!("link:{public_id}")
}

impl AuditEvent {
    pub fn new(protocol: Protocol, action: &str) -> Self {
        AuditEvent {
            ts: now_ms(),
            protocol: protocol.name().into(),
            remote: None,
            actor: None,
            action: action.into(),
            path: None,
            bytes: None,
            outcome: Outcome::Ok,
            detail: None,
            duration_ms: None,
        }
    }

    /// How long the transfer this event ends took.
    pub fn took(mut self, since: std::time::Instant) -> Self {
        self.duration_ms = Some(since.elapsed().as_millis().try_into().unwrap_or(u64::MAX));
        self
    }

    pub fn remote(mut self, remote: impl ToString) -> Self {
        self.remote = Some(remote.to_string());
        self
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// About the link `public_id` ([`link_key`]).
    pub fn link(self, public_id: &str) -> Self {
        self.path(link_key(public_id))
    }

    pub fn path(mut self, path: impl ToString) -> Self {
        self.path = Some(path.to_string());
        self
    }

    pub fn bytes(mut self, bytes: u64) -> Self {
        self.bytes = Some(bytes);
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// A lower bound for reading the log, as people write it: a duration back from
/// `now` (`1h`, `7days`) or an RFC 3339 time.
pub fn parse_since(s: &str, now: Millis) -> Result<Millis, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now - d.as_millis() as i64);
    }
    humantime::parse_rfc3339_weak(s)
        .map(crate::clock::to_ms)
        .map_err(|_| format!("{s:?}: expected a duration such as 1h or 2days, or a time such as 2026-11-01T00:00:00Z"))
}
