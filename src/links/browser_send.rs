//! Sending from the browser: a staff member's send link is a draft while their
//! files upload (one resumable upload per file, through `links::inbound`, into
//! the draft's copies in the transfer store), and becomes a link when they
//! finish: the rules they filled in are applied, a token is made (the only time
//! its URL exists), and the recipients are mailed. Drafts never finished are
//! deleted with their copies after `[links] upload_abandon`.

use super::{Created, LinkOptions, LinkService};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{now_ms, Link, LinkKind, LinkState, Millis, NewLink, UploadState};

impl LinkService {
    /// A new, empty draft send link owned by `owner`.
    pub async fn draft(&self, owner: &str) -> Result<Link> {
        self.creator(owner).await?;
        // The rules are applied at finish: a draft must not fail because the
        // policy wants a password or caps the expiry under its default. Its
        // expiry (capped like any) only shows; drafts are swept by age.
        let new = self.draft_record(owner)?;
        let link = self.db.run(move |s| s.link_insert(&new, &[])).await?;
        let dir = crate::vfs::VPath::root().join(&link.public_id)?;
        self.transfer_session().mkdir(&dir).await?;
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
        self.creator(owner).await?;
        let done = self.db.run(move |s| s.link_finish_draft(id, &new)).await?;
        if !done {
            return Err(Error::not_found(format!("no draft with id {public_id:?}")));
        }
        let link = self.find(public_id).await?;
        Ok(self.announce(link, &token).await)
    }

    /// A draft's record: no rules yet (they come with [`Self::finish_draft`]),
    /// the default expiry capped by the policy, a token nobody will know.
    fn draft_record(&self, owner: &str) -> Result<NewLink> {
        let config = self.config();
        let p = &config.policy;
        let life = match p.max_expiry {
            Some(m) if m < p.default_expiry => m,
            _ => p.default_expiry,
        };
        let (_unused_token, token_hash) = super::token::new_token();
        Ok(NewLink {
            public_id: super::token::new_public_id(),
            token_hash,
            kind: LinkKind::Send,
            owner: owner.to_string(),
            title: String::new(),
            message: String::new(),
            recipients: Vec::new(),
            expires_at: Some(now_ms() + life.as_millis() as i64),
            max_uses: None,
            password_hash: None,
            allowed_emails: Vec::new(),
            state: LinkState::Draft,
            name: String::new(),
            inbound: None,
            // Random until the draft is finished: its URL never exists.
            generation: None,
            client_id: None,
            reference: None,
        })
    }

    /// Takes a file out of `owner`'s draft `public_id` (a file removed from
    /// the send page): `key` is its upload, `name` the file's name in the
    /// draft (either may be given). An upload still open is cancelled; a
    /// complete one loses its copy and its row, so it never reaches the
    /// recipients. Returns whether anything was withdrawn (asking twice is
    /// not an error).
    pub async fn withdraw_draft_file(
        &self,
        owner: &str,
        public_id: &str,
        key: Option<&str>,
        name: Option<&str>,
    ) -> Result<bool> {
        let link = self.own_draft(owner, public_id).await?;
        let mut path = None;
        if let Some(key) = key {
            match self.uploads.get(key).await? {
                Some(up) if up.link_id == link.id => match up.state {
                    UploadState::Open if up.direct_id.is_some() => {
                        return self.direct_cancel(&up).await
                    }
                    UploadState::Open => return self.uploads.cancel(&up).await,
                    UploadState::Complete => path = up.path.clone(),
                    UploadState::Cancelled => return Ok(false),
                },
                _ => return Err(Error::not_found(format!("no upload {key:?} in this draft"))),
            }
        }
        let id = link.id;
        let files = self.files(&link).await?;
        let Some(gone) = files
            .iter()
            .find(|f| match (&path, name) {
                (Some(p), _) => &f.path == p,
                (None, Some(n)) => f.name == n,
                (None, None) => false,
            })
            .cloned()
        else {
            return Ok(false);
        };
        match self
            .transfer_session()
            .delete(&crate::vfs::VPath::parse(&gone.path)?)
            .await
        {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let keep: Vec<_> = files.into_iter().filter(|f| f.path != gone.path).collect();
        self.db
            .run(move |s| {
                s.link_delete_files(id)?;
                for f in &keep {
                    s.link_add_file(id, f)?;
                }
                Ok(())
            })
            .await?;
        Ok(true)
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
            // Nor those another node is copying into.
            let name = format!("lock:{}", super::draft::lock_key(link.id));
            if self
                .db
                .run(move |s| s.lease_holder(&name, crate::clock::now_ms()))
                .await?
                .is_some()
            {
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
