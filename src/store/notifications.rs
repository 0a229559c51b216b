//! The staff notification feed as the store keeps it: what happened on a
//! user's links (a download, a file received, a link that expired or was used
//! up), read or not, and which of these the user also wants by mail.

use crate::store::Millis;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    /// A visitor downloaded a whole file (or a zip of several).
    Downloaded,
    /// A file arrived on an upload request.
    Uploaded,
    /// A link reached its expiry.
    Expired,
    /// A link's last use was taken.
    Exhausted,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 4] = [
        NoticeKind::Downloaded,
        NoticeKind::Uploaded,
        NoticeKind::Expired,
        NoticeKind::Exhausted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Downloaded => "downloaded",
            NoticeKind::Uploaded => "uploaded",
            NoticeKind::Expired => "link_expired",
            NoticeKind::Exhausted => "link_exhausted",
        }
    }

    pub fn parse(s: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A notification to store for the owner of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// The user (by name) it is for: the link's owner.
    pub user: String,
    pub kind: NoticeKind,
    pub link_public_id: String,
    /// What staff call the link (name, title or id) when it happened.
    pub link_label: String,
    /// The file, for downloads and uploads.
    pub file: String,
    /// Who: the visitor's verified e-mail, or their address.
    pub who: String,
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    pub kind: NoticeKind,
    pub link_public_id: String,
    pub link_label: String,
    pub file: String,
    pub who: String,
    pub bytes: Option<u64>,
    pub created_at: Millis,
    pub read_at: Option<Millis>,
}
