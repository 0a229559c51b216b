//! Link records as the store keeps them.

use crate::store::Millis;

/// What a link hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Copies held in the transfer store.
    Send,
    /// References to files or a folder where they already live.
    Share,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Send => "send",
            LinkKind::Share => "share",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "send" => Some(LinkKind::Send),
            "share" => Some(LinkKind::Share),
            _ => None,
        }
    }
}

/// The stored state; `expired` and `exhausted` are derived from the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Draft,
    Active,
    Revoked,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Draft => "draft",
            LinkState::Active => "active",
            LinkState::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "draft" => Some(LinkState::Draft),
            "active" => Some(LinkState::Active),
            "revoked" => Some(LinkState::Revoked),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub id: i64,
    /// Short id for staff (`wharf link show ID`); not a secret.
    pub public_id: String,
    pub kind: LinkKind,
    /// The user who created it; a share acts with this user's rights.
    pub owner: String,
    pub title: String,
    pub message: String,
    pub recipients: Vec<String>,
    pub expires_at: Option<Millis>,
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub password_hash: Option<String>,
    pub allowed_emails: Vec<String>,
    pub state: LinkState,
    pub created_at: Millis,
    /// When it was revoked (expiry and exhaustion are derived).
    pub ended_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    /// A name for staff (lists); visitors see the title.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    pub public_id: String,
    pub token_hash: String,
    pub kind: LinkKind,
    pub owner: String,
    pub title: String,
    pub message: String,
    pub recipients: Vec<String>,
    pub expires_at: Option<Millis>,
    pub max_uses: Option<u32>,
    pub password_hash: Option<String>,
    pub allowed_emails: Vec<String>,
    pub state: LinkState,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFile {
    pub id: i64,
    /// The name visitors see.
    pub name: String,
    /// Send: the key in the transfer store. Share: the full virtual path.
    pub path: String,
    /// A shared folder (browsable inside itself only).
    pub is_dir: bool,
    pub size: u64,
    pub sha256: Option<String>,
}

/// Changes staff can make to a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    Expiry(Option<Millis>),
    Revoke(Millis),
    /// A new token: the old URL stops working.
    Token(String),
    Activate,
}

/// What a download under a grant costs (docs/links.md, "Counting uses").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticket {
    /// The grant's use is already charged: nothing more to count.
    Free,
    /// Another download of the same grant holds a reserved use: ride on it.
    Shared,
    /// A use was reserved for this download.
    Reserved,
    /// No use left (or the link is no longer active).
    Refused,
}

/// The answer to an entered e-mail code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Valid,
    Wrong,
    /// No code pending, expired, or out of attempts.
    Missing,
}
