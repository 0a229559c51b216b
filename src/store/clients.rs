//! The staff address book as the store keeps it: clients (organisations) and
//! their contacts. A client belongs to the staff member who made it and can be
//! shared with the whole team.

use crate::store::Millis;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: i64,
    /// The staff member who made it (and may change it, with administrators).
    pub owner: String,
    pub name: String,
    pub notes: String,
    /// Every staff member sees it and may pick it for their links.
    pub shared: bool,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClient {
    pub owner: String,
    pub name: String,
    pub notes: String,
    pub shared: bool,
}

/// Changes to a client; `None`: left as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientEdit {
    pub name: Option<String>,
    pub notes: Option<String>,
    pub shared: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: i64,
    pub client_id: i64,
    pub name: String,
    /// Lower-case.
    pub email: String,
    pub created_at: Millis,
}
