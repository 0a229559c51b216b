//! Sending from the browser: a staff member's send link is a draft while their
//! files upload (one resumable upload per file, through `links::inbound`, into
//! the draft's copies in the transfer store), and becomes a link when they
//! finish: the rules they filled in are applied, a token is made (the only time
//! its URL exists), and the recipients are mailed. Drafts never finished are
//! deleted with their copies after `[links] upload_abandon`.

use super::{Created, LinkOptions, LinkService};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Link, LinkKind, LinkState, Millis, UploadState};

impl LinkService {
    /// A new, empty draft send link owned by `owner`.
    pub async fn draft(&self, owner: &str) -> Result<Link> {
        self.owner(owner).await?;
        let (new, _unused_token) = self
            .prepare(owner, LinkKind::Send, &LinkOptions::default())
            .await?;
        let link = self.db.run(move |s| s.link_insert(&new, &[])).await?;
        let dir = crate::vfs::VPath::root().join(&link.public_id)?;
        self.transfers.mkdir(&dir).await?;
        Ok(link)
    }

    /// `owner`'s draft `public_id` (anything else is "not found").
    pub async fn own_draft(&self, owner: &str, public_id: &str) -> Result<Link> {
        let link = self.find(public_id).await?;
        if link.owner != owner || link.kind != LinkKind::Send || link.state != LinkState::Draft {
            return Err(Error::not_found(format!("no draft with id {public_id:?}")));
        }
        Ok(link)
    }

    /// Applies the rules, activates the draft and mails its recipients. Every
    /// upload must be complete and there must be at least one file.
    pub async fn finish_draft(
        &self,
        owner: &str,
        public_id: &str,
        o: &LinkOptions,
    ) -> Result<Created> {
        let link = self.own_draft(owner, public_id).await?;
        let id = link.id;
        let uploads = self.db.run(move |s| s.uploads_of(id)).await?;
        let running = uploads
            .iter()
            .filter(|u| u.state == UploadState::Open)
            .count();
        if running > 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{running} file(s) are still uploading"),
            ));
        }
        if self.files(&link).await?.is_empty() {
            return Err(Error::invalid("add at least one file"));
        }
        let (mut new, _) = self.prepare(owner, LinkKind::Send, o).await?;
        // The draft keeps its id: the token is derived from it.
        let (token, hash) = self.derive(&link.public_id, super::token::FIRST_GENERATION);
        new.public_id = link.public_id.clone();
        new.token_hash = hash;
        new.state = LinkState::Active;
        let done = self.db.run(move |s| s.link_finish_draft(id, &new)).await?;
        if !done {
            return Err(Error::not_found(format!("no draft with id {public_id:?}")));
        }
        let link = self.find(public_id).await?;
        Ok(self.announce(link, &token).await)
    }

    /// Deletes drafts (with their copies) begun before `before`, never finished
    /// and with no upload in progress. Returns how many.
    pub async fn sweep_drafts(&self, before: Millis) -> Result<usize> {
        let mut n = 0;
        for link in self.list(None).await? {
            // Send links this process is still copying into are not abandoned.
            let stale = link.kind == LinkKind::Send
                && link.state == LinkState::Draft
                && link.created_at < before
                && !self.copying.contains(link.id);
            if !stale {
                continue;
            }
            // Uploads still moving keep their draft (stale ones were swept first).
            let id = link.id;
            let uploads = self.db.run(move |s| s.uploads_of(id)).await?;
            if uploads.iter().any(|u| u.state == UploadState::Open) {
                continue;
            }
            self.delete(&link.public_id).await?;
            n += 1;
        }
        Ok(n)
    }
}
