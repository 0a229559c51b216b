//! Who may create links (the `share` permission; administrators always), and
//! what a link is filed under: its client from the address book and its
//! reference.

use super::{LinkService, LinkUpdate};
use crate::error::{Error, Result};
use crate::policy::Perm;
use crate::store::{Client, Link, LinkEdit, User};

/// Whether `user` may create links.
pub fn may_share(user: &User) -> bool {
    user.admin || user.perms.has(Perm::Share)
}

impl LinkService {
    /// The enabled user `name`, if they may create links.
    pub(super) async fn creator(&self, name: &str) -> Result<User> {
        let user = self.owner(name).await?;
        if !may_share(&user) {
            return Err(Error::denied(format!(
                "{name} may not create links (no share permission)"
            )));
        }
        Ok(user)
    }

    /// Client `id`, if the user `owner` may file a link under it.
    pub(super) async fn client_for(&self, owner: &str, id: i64) -> Result<Client> {
        let user = self.owner(owner).await?;
        crate::addressbook::get(&self.db, &user, id)
            .await
            .map_err(|e| e.context("the link's client"))
    }

    /// The client and reference changes of an edit, checked, into `e`, and
    /// said in words for the audit log.
    pub(super) async fn edit_tags(
        &self,
        link: &Link,
        u: &LinkUpdate,
        e: &mut LinkEdit,
        said: &mut Vec<String>,
    ) -> Result<()> {
        if let Some(c) = u.client {
            if c != link.client_id {
                match c {
                    Some(id) => {
                        let client = self.client_for(&link.owner, id).await?;
                        said.push(format!("client {}", client.name));
                    }
                    None => said.push("client removed".into()),
                }
                e.client_id = Some(c);
            }
        }
        if let Some(r) = &u.reference {
            if *r != link.reference {
                said.push(match r {
                    Some(r) => format!("reference {} {}", r.kind.as_str(), r.value),
                    None => "reference removed".into(),
                });
                e.reference = Some(r.clone());
            }
        }
        Ok(())
    }
}
