//! Link records as the store keeps them.

use crate::store::Millis;

/// What a link hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Copies held in the transfer store.
    Send,
    /// References to files or a folder where they already live.
    Share,
    /// An upload request: outside parties upload into a folder.
    Request,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Send => "send",
            LinkKind::Share => "share",
            LinkKind::Request => "request",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "send" => Some(LinkKind::Send),
            "share" => Some(LinkKind::Share),
            "request" => Some(LinkKind::Request),
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
    /// Upload requests only: where uploads go and their limits.
    pub inbound: Option<Inbound>,
    /// The SHA-256 of its token (lookups are by it); never shown.
    pub token_hash: String,
    /// The generation its token is derived at (`links::token`); `None` for a
    /// link made before tokens were derived (a random token, never shown again).
    pub generation: Option<u32>,
    /// The client (address book) the link is for.
    pub client_id: Option<i64>,
    /// What the link is about: a project, ticket, resource...
    pub reference: Option<Reference>,
}

/// What an upload request accepts. Its usage limit (`max_uses`) counts files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The full virtual path of the folder (inside the creator's home).
    pub folder: String,
    /// The largest file accepted, in bytes.
    pub max_size: Option<u64>,
    /// Mail the creator when an upload completes.
    pub notify: bool,
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
    pub inbound: Option<Inbound>,
    /// The generation `token_hash` was derived at.
    pub generation: Option<u32>,
    pub client_id: Option<i64>,
    pub reference: Option<Reference>,
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
    Token {
        hash: String,
        generation: u32,
    },
    Activate,
    /// A revoked link becomes active again (an administrator's restore).
    Restore,
}

/// New rules for a link (staff edit it); `None`: left as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkEdit {
    pub title: Option<String>,
    pub message: Option<String>,
    pub recipients: Option<Vec<String>>,
    /// `Some(None)` removes the password.
    pub password_hash: Option<Option<String>>,
    pub allowed_emails: Option<Vec<String>>,
    /// `Some(None)`: unlimited.
    pub max_uses: Option<Option<u32>>,
    /// `Some(None)`: never expires.
    pub expires_at: Option<Option<Millis>>,
    /// `Some(None)`: no client.
    pub client_id: Option<Option<i64>>,
    /// `Some(None)`: no reference.
    pub reference: Option<Option<Reference>>,
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

/// Where a resumable upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadState {
    /// Bytes are still coming (or may resume).
    Open,
    /// Published under its final name.
    Complete,
    /// Removed by the uploader or abandoned; its use (if any) was given back.
    Cancelled,
}

impl UploadState {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Open => "open",
            UploadState::Complete => "complete",
            UploadState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(UploadState::Open),
            "complete" => Some(UploadState::Complete),
            "cancelled" => Some(UploadState::Cancelled),
            _ => None,
        }
    }
}

/// A resumable upload into a link (an upload request, or a staff send draft).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub id: i64,
    /// Random, in the upload's URL; only the grant that made it may use it.
    pub key: String,
    pub link_id: i64,
    pub grant: String,
    /// The sanitised name the uploader gave.
    pub name: String,
    /// The declared length.
    pub size: u64,
    pub received: u64,
    pub state: UploadState,
    /// Whether it took one of the link's uses (given back if cancelled).
    pub counted: bool,
    /// Once complete: where it was published, and its SHA-256.
    pub path: Option<String>,
    pub sha256: Option<String>,
    pub remote: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// A direct upload (straight to an S3 bucket): its multipart upload id
    /// and the connector holding it; `None` for bytes staged by wharf.
    pub direct_id: Option<String>,
    pub direct_connector: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpload {
    pub key: String,
    pub link_id: i64,
    pub grant: String,
    pub name: String,
    pub size: u64,
    pub remote: Option<String>,
}

/// What a link's reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefType {
    Project,
    Ticket,
    Resource,
    Other,
}

impl RefType {
    pub const ALL: [RefType; 4] = [
        RefType::Project,
        RefType::Ticket,
        RefType::Resource,
        RefType::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefType::Project => "project",
            RefType::Ticket => "ticket",
            RefType::Resource => "resource",
            RefType::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A link's optional reference: a type and an id or URL (`ticket` `OPS-42`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub kind: RefType,
    pub value: String,
}

impl Reference {
    /// Parses `type:value` (`ticket:OPS-42`, `project:https://...`); a value
    /// without a known type is `other`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (kind, value) = s
            .split_once(':')
            .and_then(|(t, v)| RefType::parse(t).map(|k| (k, v)))
            .unwrap_or((RefType::Other, s));
        Self::new(kind, value)
    }

    /// A checked reference: a value of 1 to 500 characters, no control characters.
    pub fn new(kind: RefType, value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("a reference needs an id or a URL".into());
        }
        if value.chars().count() > 500 || value.chars().any(char::is_control) {
            return Err("a reference is at most 500 characters on one line".into());
        }
        Ok(Reference {
            kind,
            value: value.to_string(),
        })
    }

    /// The value as a link, when it is a web address.
    pub fn url(&self) -> Option<&str> {
        let v = self.value.as_str();
        (v.starts_with("https://") || v.starts_with("http://")).then_some(v)
    }
}

/// The order of a link list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkSort {
    #[default]
    Created,
    Expires,
    Title,
    Uses,
}

impl LinkSort {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkSort::Created => "created",
            LinkSort::Expires => "expires",
            LinkSort::Title => "title",
            LinkSort::Uses => "uses",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            LinkSort::Created,
            LinkSort::Expires,
            LinkSort::Title,
            LinkSort::Uses,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A search of links, done in SQL: every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct LinkQuery {
    /// Only this user's links (`None`: everyone's, for administrators).
    pub owner: Option<String>,
    /// Words found in the name, title, id, recipients, reference or a file name.
    pub text: Option<String>,
    /// A status as `policy::links::status` names it (`active`, `expired`...).
    pub status: Option<String>,
    pub kind: Option<LinkKind>,
    pub client_id: Option<i64>,
    pub ref_type: Option<RefType>,
    /// Part of the reference's id or URL.
    pub reference: Option<String>,
    pub sort: LinkSort,
    /// Oldest, earliest, A to Z, fewest first.
    pub ascending: bool,
    pub offset: usize,
    pub limit: usize,
    /// The time statuses are computed at.
    pub now: Millis,
    /// Keyset paging (newest first only): links older than (created_at, id).
    pub before: Option<(Millis, i64)>,
}

/// A link found by a [`LinkQuery`], with what lists show beside it.
#[derive(Debug, Clone)]
pub struct LinkRow {
    pub link: Link,
    pub files: usize,
    pub client: Option<String>,
}

/// One page of a search and how many links match in all.
#[derive(Debug, Clone)]
pub struct LinkPage {
    pub rows: Vec<LinkRow>,
    pub total: usize,
}
