//! What the API shows of a link, a user and an audit row. Built field by field,
//! so no token, token hash or password hash can ever slip into a response.

use serde_json::{json, Value};

use crate::links::rules_of;
use crate::policy::links::status;
use crate::store::{format_ms, AuditRecord, Link, LinkFile, Millis};

pub fn link(l: &Link, now: Millis) -> Value {
    json!({
        "id": l.public_id,
        "kind": l.kind.as_str(),
        "status": status(&rules_of(l), now).as_str(),
        "owner": l.owner,
        "name": l.name,
        "title": l.title,
        "message": l.message,
        "recipients": l.recipients,
        "created_at": format_ms(l.created_at),
        "expires_at": l.expires_at.map(format_ms),
        "ended_at": l.ended_at.map(format_ms),
        "last_used_at": l.last_used_at.map(format_ms),
        "uses": l.uses,
        "max_uses": l.max_uses,
        "has_password": l.password_hash.is_some(),
        "allowed_emails": l.allowed_emails,
        // Upload requests: where files go (full path) and what is accepted.
        "folder": l.inbound.as_ref().map(|i| &i.folder),
        "max_size": l.inbound.as_ref().and_then(|i| i.max_size),
        "notify": l.inbound.as_ref().map(|i| i.notify),
        "client_id": l.client_id,
        "reference": l.reference.as_ref().map(|r| json!({ "type": r.kind.as_str(), "value": r.value })),
    })
}

/// A link with its files (name, size, SHA-256 of send copies; folders of shares).
pub fn link_with_files(l: &Link, files: &[LinkFile], now: Millis) -> Value {
    let mut v = link(l, now);
    v["files"] = files
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "size": f.size,
                "is_dir": f.is_dir,
                "sha256": f.sha256,
            })
        })
        .collect();
    v
}

pub fn audit(r: &AuditRecord) -> Value {
    let e = &r.event;
    json!({
        "id": r.id,
        "time": format_ms(e.ts),
        "protocol": e.protocol,
        "remote": e.remote,
        "actor": e.actor,
        "action": e.action,
        "path": e.path,
        "bytes": e.bytes,
        "outcome": e.outcome.as_str(),
        "detail": e.detail,
    })
}
