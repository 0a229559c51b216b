//! The link service: creating and managing shared links, one module that the CLI
//! and the admin API call. Rules are decided by `policy::links`; this
//! module does the I/O around them.
//!
//! - *send*: files are streamed into the transfer store (`/<public id>/<name>`),
//!   hashed on the way; the link is a draft until every copy is complete, and a
//!   failed copy removes the link and what was copied.
//! - *share*: the link refers to paths where they already live; nothing is copied.
//!   The creator must be able to read them now (and will be checked again at every
//!   access by the link server).

mod browser_send;
mod direct_upload;
mod draft;
pub mod grant;
mod inbound;
mod tags;
pub mod token;

pub use tags::may_share;

pub use direct_upload::{DirectStart, Verdict};
pub use draft::Draft;
pub use inbound::{too_large, RequestOptions, Uploader};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::TryStreamExt;

use crate::audit::AuditLog;
use crate::config::LinksConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::mail::{messages, Mailer};
use crate::policy::links::{self as rules, LinkRules, Status};
use crate::policy::{self, Op, Protocol};
use crate::session::Session;
use crate::store::{now_ms, Db, Link, LinkChange, LinkFile, LinkKind, LinkState, NewLink, User};
use crate::vfs::{VPath, Vfs};

/// What staff choose for a new link.
#[derive(Debug, Clone, Default)]
pub struct LinkOptions {
    /// For staff (lists); visitors see the title.
    pub name: String,
    pub title: String,
    pub message: String,
    pub recipients: Vec<String>,
    /// `None`: the configured default.
    pub expires: Option<String>,
    pub password: Option<String>,
    pub max_uses: Option<u32>,
    pub allowed_emails: Vec<String>,
    /// The client (address book) the link is for; it must be one the creator sees.
    pub client: Option<i64>,
    pub reference: Option<crate::store::Reference>,
    /// (e-mail, name) of the recipients staff named: stored beside the
    /// addresses and used to greet each in their mail.
    pub recipient_names: Vec<(String, String)>,
}

/// Where a file of a send link comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A local file (the CLI).
    Local(PathBuf),
    /// A path in the creator's view of the virtual tree.
    Stored(String),
}

/// Who asks for a link, for the audit rows of the files it reads.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub protocol: Protocol,
    pub remote: Option<SocketAddr>,
}

impl Origin {
    pub const CLI: Origin = Origin {
        protocol: Protocol::Cli,
        remote: None,
    };
}

/// New rules for an existing link; `None`: left as it is.
#[derive(Debug, Clone, Default)]
pub struct LinkUpdate {
    pub title: Option<String>,
    pub message: Option<String>,
    pub recipients: Option<Vec<String>>,
    /// `Some(None)` removes the password; `Some(Some(p))` sets or changes it.
    pub password: Option<Option<String>>,
    pub allowed_emails: Option<Vec<String>>,
    /// `Some(None)`: unlimited.
    pub max_uses: Option<Option<u32>>,
    /// As `extend` takes it (`never` for no expiry).
    pub expires: Option<String>,
    /// `Some(None)`: no client.
    pub client: Option<Option<i64>>,
    /// `Some(None)`: no reference.
    pub reference: Option<Option<crate::store::Reference>>,
}

/// A new link and its URL.
pub struct Created {
    pub link: Link,
    pub url: String,
    /// Why the mail to the recipients did not go out (the link works anyway).
    pub mail_error: Option<String>,
}

pub struct LinkService {
    db: Db,
    vfs: Arc<Vfs>,
    /// The transfer store, mounted at `/`.
    transfers: Arc<Vfs>,
    audit: AuditLog,
    /// `[links]`: SIGHUP swaps the parts that can change safely (`reload.rs`).
    config: crate::live::Live<LinksConfig>,
    mailer: Mailer,
    /// The product name, for mails.
    product: String,
    /// Browser uploads in progress (upload requests, staff drafts).
    uploads: crate::uploads::Uploads,
    folder_locks: inbound::FolderLocks,
    /// Direct uploads being (or lately) checked and published, by key.
    verdicts: direct_upload::Verdicts,
    /// Send links this process is copying files into (kept from the draft sweep).
    copying: draft::Copying,
    /// Link tokens are derived with it (`token.rs`); it is not in the database.
    token_key: token::TokenKey,
}

/// The rule facts of a stored link.
pub fn rules_of(link: &Link) -> LinkRules {
    LinkRules {
        expires_at: link.expires_at,
        max_uses: link.max_uses,
        uses: link.uses,
        has_password: link.password_hash.is_some(),
        allowed_emails: link.allowed_emails.clone(),
        revoked: link.state == LinkState::Revoked,
        draft: link.state == LinkState::Draft,
    }
}

/// When an ended link ended (for retention), `None` while it has not.
pub fn ended_at(link: &Link, now: i64) -> Option<i64> {
    match rules::status(&rules_of(link), now) {
        Status::Revoked => link.ended_at,
        Status::Expired => link.expires_at,
        Status::Exhausted => link.last_used_at,
        Status::Active | Status::Draft => None,
    }
}

impl LinkService {
    // Each is one independent piece of the running server; a struct would only
    // rename the list.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Db,
        vfs: Arc<Vfs>,
        transfers: Arc<Vfs>,
        audit: AuditLog,
        config: LinksConfig,
        mailer: Mailer,
        product: String,
        token_key: token::TokenKey,
    ) -> Self {
        let uploads = crate::uploads::Uploads::new(db.clone(), config.upload_staging.clone());
        LinkService {
            db,
            vfs,
            transfers,
            audit,
            config: crate::live::Live::new(config),
            mailer,
            product,
            uploads,
            folder_locks: Default::default(),
            verdicts: Default::default(),
            copying: Default::default(),
            token_key,
        }
    }

    /// Stages browser uploads on `staging` (a Vfs of the staging connector,
    /// `[links] upload_staging_connector`) instead of the local folder.
    pub fn with_upload_staging(mut self, staging: Option<Arc<Vfs>>) -> Self {
        if let Some(vfs) = staging {
            self.uploads = crate::uploads::Uploads::with_staging(
                self.db.clone(),
                crate::uploads::Staging::Remote(crate::uploads::remote::RemoteStaging::new(vfs)),
            );
        }
        self
    }

    /// The `[links]` settings now in force.
    pub fn config(&self) -> Arc<LinksConfig> {
        self.config.get()
    }

    /// Puts new `[links]` settings in force (SIGHUP).
    pub fn reconfigure(&self, config: LinksConfig) {
        self.config.set(config);
    }

    /// Stores the names staff gave the link's recipients (before its mails go).
    async fn keep_names(&self, link: &Link, o: &LinkOptions) {
        if o.recipient_names.is_empty() {
            return;
        }
        let (id, names) = (link.id, o.recipient_names.clone());
        if let Err(e) = self
            .db
            .run(move |s| s.link_recipient_names_set(id, &names))
            .await
        {
            tracing::warn!(error = %e, "storing recipients' names");
        }
    }

    /// A link just created or finished: its URL, mailed to its recipients.
    async fn announce(&self, link: Link, token: &str) -> Created {
        let url = self.url(token);
        let mail_error = self.mail_recipients(&link, &url).await;
        Created {
            link,
            url,
            mail_error,
        }
    }

    /// Mails the link to its recipients. Errors are returned, not raised: the
    /// link exists either way and its URL is printed.
    async fn mail_recipients(&self, link: &Link, url: &str) -> Option<String> {
        if link.recipients.is_empty() {
            return None;
        }
        let files = match self.files(link).await {
            Ok(f) => f,
            Err(e) => return Some(e.to_string()),
        };
        // The sender's display name and the recipients' names: a missing one
        // only makes the mail less personal.
        let (owner, id) = (link.owner.clone(), link.id);
        let (sender, names) = self
            .db
            .run(move |s| {
                let sender = s
                    .user_get(&owner)?
                    .map(|u| u.shown_name().to_string())
                    .unwrap_or(owner);
                Ok((sender, s.link_recipient_names(id)?))
            })
            .await
            .unwrap_or_else(|_| (link.owner.clone(), Vec::new()));
        // One mail each: recipients do not see each other's addresses, and
        // each is greeted by name.
        let mut error = None;
        for to in &link.recipients {
            let name = names
                .iter()
                .find(|(e, _)| e.eq_ignore_ascii_case(to))
                .map(|(_, n)| n.as_str());
            let mail = messages::link(&self.product, link, &files, url, &sender, to, name);
            if let Err(e) = self.mailer.send(mail).await {
                error.get_or_insert(e.to_string());
            }
        }
        error
    }

    /// Mails the same link to its recipients again (the URL does not change).
    /// Returns the URL.
    pub async fn resend(&self, public_id: &str) -> Result<String> {
        let (url, mail_error) = self.resend_mail(public_id).await?;
        match mail_error {
            None => Ok(url),
            Some(e) => Err(Error::new(
                ErrorKind::Unavailable,
                format!("{e} (the URL is {url})"),
            )),
        }
    }

    /// [`LinkService::resend`] that reports a failed mail instead of raising
    /// it: the URL and why the mail failed, if it did. A link made before URLs
    /// could be shown again cannot be re-sent (regenerate it instead).
    pub async fn resend_mail(&self, public_id: &str) -> Result<(String, Option<String>)> {
        let link = self.find(public_id).await?;
        if link.recipients.is_empty() {
            return Err(Error::invalid("this link has no recipients to mail"));
        }
        let s = rules::status(&rules_of(&link), now_ms());
        if s != Status::Active {
            return Err(Error::invalid(format!(
                "the link is {}; extend or create a new one first",
                s.as_str()
            )));
        }
        let url = self.url_of(&link).ok_or_else(|| {
            Error::invalid(
                "this link was made before its URL could be shown again, so the same URL \
                 cannot be re-sent; regenerate it to mail a new one (the old one stops working)",
            )
        })?;
        let mail_error = self.mail_recipients(&link, &url).await;
        Ok((url, mail_error))
    }

    pub fn url(&self, token: &str) -> String {
        format!("{}/l/{token}", self.config().base_url)
    }

    /// The link's current URL, derived again from the token key. `None` for a
    /// link made before tokens were derived (or a database from another data
    /// directory): its URL cannot be shown, only regenerated.
    pub fn url_of(&self, link: &Link) -> Option<String> {
        self.token_key
            .shown(&link.public_id, link.generation, &link.token_hash)
            .map(|t| self.url(&t))
    }

    /// The token of `public_id` at `generation`, and its hash to store.
    fn derive(&self, public_id: &str, generation: u32) -> (String, String) {
        let t = self.token_key.token(public_id, generation);
        let h = token::hash(&t);
        (t, h)
    }

    async fn owner(&self, name: &str) -> Result<User> {
        let n = name.to_string();
        let user = self
            .db
            .run(move |s| s.user_get(&n))
            .await?
            .ok_or_else(|| Error::not_found(format!("no user named {name:?}")))?;
        if !user.enabled {
            return Err(Error::denied(format!("user {name} is disabled")));
        }
        Ok(user)
    }

    fn session(&self, user: User) -> Session {
        self.session_from(user, Origin::CLI)
    }

    fn session_from(&self, user: User, origin: Origin) -> Session {
        Session::new(
            user,
            origin.protocol,
            origin.remote,
            self.vfs.clone(),
            self.audit.clone(),
        )
    }

    /// Validates the options and builds the record (without files).
    async fn prepare(
        &self,
        owner: &str,
        kind: LinkKind,
        o: &LinkOptions,
    ) -> Result<(NewLink, String)> {
        let now = now_ms();
        let expires_at = rules::parse_expiry(o.expires.as_deref(), &self.config().policy, now)
            .map_err(Error::invalid)?;
        rules::check_new(o.password.is_some(), &self.config().policy).map_err(Error::invalid)?;
        if o.max_uses == Some(0) {
            return Err(Error::invalid("a download limit must be at least 1"));
        }
        let password_hash = match o.password.clone() {
            Some(p) => Some(crate::secret::hash_password_off_thread(p).await?),
            None => None,
        };
        if let Some(id) = o.client {
            self.client_for(owner, id).await?;
        }
        let public_id = token::new_public_id();
        let (token, token_hash) = self.derive(&public_id, token::FIRST_GENERATION);
        Ok((
            NewLink {
                public_id,
                token_hash,
                generation: Some(token::FIRST_GENERATION),
                kind,
                owner: owner.to_string(),
                title: o.title.clone(),
                message: o.message.clone(),
                recipients: emails(&o.recipients, "recipient")?,
                expires_at,
                max_uses: o.max_uses,
                password_hash,
                allowed_emails: emails(&o.allowed_emails, "allowed e-mail")?,
                state: LinkState::Draft,
                name: o.name.clone(),
                inbound: None,
                client_id: o.client,
                reference: o.reference.clone(),
            },
            token,
        ))
    }

    /// Shares files or folders where they live, as `owner` sees them.
    pub async fn share(&self, owner: &str, paths: &[String], o: &LinkOptions) -> Result<Created> {
        self.share_from(owner, paths, o, Origin::CLI).await
    }

    /// [`LinkService::share`] for a door that names who asks (the staff
    /// pages): the lookups of the shared paths are audited with it.
    pub async fn share_from(
        &self,
        owner: &str,
        paths: &[String],
        o: &LinkOptions,
        origin: Origin,
    ) -> Result<Created> {
        if paths.is_empty() {
            return Err(Error::invalid("name at least one path to share"));
        }
        let user = self.creator(owner).await?;
        policy::check(user.perms, Op::Read)
            .map_err(|p| Error::denied(format!("{owner} lacks the {} permission", p.name())))?;
        let home = user.home.clone();
        let session = self.session_from(user, origin);
        let mut files = Vec::new();
        for p in paths {
            let view = VPath::parse(p)?;
            let entry = session
                .stat(&view)
                .await
                .map_err(|e| own_view_hint(e, &home, &view))?;
            let name = entry_name(&view);
            if files.iter().any(|f: &LinkFile| f.name == name) {
                return Err(Error::invalid(format!(
                    "two shared items are named {name:?}"
                )));
            }
            files.push(LinkFile {
                id: 0,
                name,
                path: home.nest(&view).to_string(),
                is_dir: entry.is_dir(),
                size: entry.size,
                sha256: None,
            });
        }
        let (mut new, token) = self.prepare(owner, LinkKind::Share, o).await?;
        new.state = LinkState::Active;
        let link = self.db.run(move |s| s.link_insert(&new, &files)).await?;
        self.keep_names(&link, o).await;
        Ok(self.announce(link, &token).await)
    }

    /// Copies files into the transfer store and creates a send link for them.
    pub async fn send(&self, owner: &str, sources: &[Source], o: &LinkOptions) -> Result<Created> {
        if sources.is_empty() {
            return Err(Error::invalid("name at least one file to send"));
        }
        let mut draft = self.begin_send(owner, o, Origin::CLI).await?;
        for source in sources {
            if let Err(e) = draft.add(source).await {
                draft.abandon().await;
                return Err(e.context("creating the link"));
            }
        }
        draft.finish().await
    }

    /// Starts a send link as a draft, to which files are then added one by one
    /// ([`Draft::add`], [`Draft::add_stream`]). Nothing is visible to visitors
    /// until [`Draft::finish`]; a draft abandoned or dropped before that leaves
    /// neither the link nor any copy behind.
    pub async fn begin_send(
        &self,
        owner: &str,
        o: &LinkOptions,
        origin: Origin,
    ) -> Result<Draft<'_>> {
        let user = self.creator(owner).await?;
        let session = self.session_from(user, origin);
        let (new, token) = self.prepare(owner, LinkKind::Send, o).await?;
        let link = self.db.run(move |s| s.link_insert(&new, &[])).await?;
        Draft::start(self, session, link, token).await
    }

    pub async fn find(&self, public_id: &str) -> Result<Link> {
        let id = public_id.to_string();
        self.db
            .run(move |s| s.link_by_public_id(&id))
            .await?
            .ok_or_else(|| Error::not_found(format!("no link with id {public_id:?}")))
    }

    pub async fn files(&self, link: &Link) -> Result<Vec<LinkFile>> {
        let id = link.id;
        self.db.run(move |s| s.link_files(id)).await
    }

    pub async fn list(&self, owner: Option<&str>) -> Result<Vec<Link>> {
        let owner = owner.map(str::to_string);
        self.db.run(move |s| s.link_list(owner.as_deref())).await
    }

    pub async fn extend(&self, public_id: &str, expires: &str) -> Result<Link> {
        let link = self.find(public_id).await?;
        if link.state == LinkState::Revoked {
            return Err(Error::invalid("a revoked link cannot be extended"));
        }
        let at = rules::parse_expiry(Some(expires), &self.config().policy, now_ms())
            .map_err(Error::invalid)?;
        let id = link.id;
        self.db
            .run(move |s| s.link_change(id, &LinkChange::Expiry(at)))
            .await?;
        self.find(public_id).await
    }

    pub async fn revoke(&self, public_id: &str) -> Result<()> {
        let link = self.find(public_id).await?;
        if link.state == LinkState::Revoked {
            return Ok(());
        }
        let id = link.id;
        self.db
            .run(move |s| s.link_change(id, &LinkChange::Revoke(now_ms())))
            .await
    }

    /// The next generation's token; the old URL stops working (and every grant
    /// made under it). Returns the new URL.
    pub async fn regenerate(&self, public_id: &str) -> Result<String> {
        let link = self.find(public_id).await?;
        let generation = link
            .generation
            .map_or(token::FIRST_GENERATION, |g| g.saturating_add(1));
        let (token, hash) = self.derive(&link.public_id, generation);
        let id = link.id;
        self.db
            .run(move |s| s.link_change(id, &LinkChange::Token { hash, generation }))
            .await?;
        Ok(self.url(&token))
    }

    /// Makes a revoked (cancelled) link active again, while its files are kept
    /// (retention has not purged a send link's copies). Administrators only:
    /// callers check who asks.
    pub async fn restore(&self, public_id: &str) -> Result<Link> {
        let link = self.find(public_id).await?;
        if link.state != LinkState::Revoked {
            return Err(Error::invalid(
                "only a cancelled (revoked) link can be restored",
            ));
        }
        if link.kind == LinkKind::Send && self.files(&link).await?.is_empty() {
            return Err(Error::invalid(
                "the files of this link were already purged; it cannot be restored",
            ));
        }
        let id = link.id;
        self.db
            .run(move |s| s.link_change(id, &LinkChange::Restore))
            .await?;
        self.find(public_id).await
    }

    /// Changes a link's rules. The checks of a new link apply (the admin
    /// `[links]` policy among them); the password is hashed off the async
    /// threads. Returns the link and what changed, in words for the audit log
    /// (never the password).
    pub async fn edit(&self, public_id: &str, u: &LinkUpdate) -> Result<(Link, String)> {
        let link = self.find(public_id).await?;
        match link.state {
            LinkState::Draft => return Err(Error::invalid("a draft cannot be edited")),
            LinkState::Revoked => {
                return Err(Error::invalid(
                    "a cancelled link cannot be edited; an administrator may restore it first",
                ))
            }
            LinkState::Active => {}
        }
        let now = now_ms();
        let has_password = match &u.password {
            Some(p) => p.is_some(),
            None => link.password_hash.is_some(),
        };
        rules::check_edit(has_password, &self.config().policy).map_err(Error::invalid)?;
        let mut e = crate::store::LinkEdit::default();
        let mut said: Vec<String> = Vec::new();
        if let Some(t) = &u.title {
            if *t != link.title {
                e.title = Some(t.clone());
                said.push("title".into());
            }
        }
        if let Some(m) = &u.message {
            if *m != link.message {
                e.message = Some(m.clone());
                said.push("message".into());
            }
        }
        if let Some(r) = &u.recipients {
            let r = emails(r, "recipient")?;
            if r != link.recipients {
                said.push(format!("recipients {}", or_none(&r)));
                e.recipients = Some(r);
            }
        }
        if let Some(a) = &u.allowed_emails {
            let a = emails(a, "allowed e-mail")?;
            if a != link.allowed_emails {
                said.push(format!("allowed e-mails {}", or_none(&a)));
                e.allowed_emails = Some(a);
            }
        }
        if let Some(m) = u.max_uses {
            if m == Some(0) {
                return Err(Error::invalid("a usage limit must be at least 1"));
            }
            if m != link.max_uses {
                e.max_uses = Some(m);
                said.push(match m {
                    Some(n) => format!("usage limit {n}"),
                    None => "usage limit removed".into(),
                });
            }
        }
        if let Some(x) = &u.expires {
            let at =
                rules::parse_expiry(Some(x), &self.config().policy, now).map_err(Error::invalid)?;
            if at != link.expires_at {
                e.expires_at = Some(at);
                said.push(match at {
                    Some(t) => format!("expires {}", crate::store::format_ms(t)),
                    None => "never expires".into(),
                });
            }
        }
        match &u.password {
            Some(Some(p)) => {
                if p.is_empty() {
                    return Err(Error::invalid("a password cannot be empty"));
                }
                let hash = crate::secret::hash_password_off_thread(p.clone()).await?;
                e.password_hash = Some(Some(hash));
                said.push(if link.password_hash.is_some() {
                    "password changed".into()
                } else {
                    "password set".into()
                });
            }
            Some(None) if link.password_hash.is_some() => {
                e.password_hash = Some(None);
                said.push("password removed".into());
            }
            _ => {}
        }
        self.edit_tags(&link, u, &mut e, &mut said).await?;
        if said.is_empty() {
            return Ok((link, "nothing changed".into()));
        }
        let id = link.id;
        self.db.run(move |s| s.link_edit(id, &e)).await?;
        Ok((self.find(public_id).await?, said.join("; ")))
    }

    /// Deletes the record and, for send links, the copies. Share targets stay.
    pub async fn delete(&self, public_id: &str) -> Result<()> {
        let link = self.find(public_id).await?;
        self.remove_copies(&link).await?;
        let id = link.id;
        self.db.run(move |s| s.link_delete(id)).await
    }

    /// Deletes the copies of send links that ended more than the retention period
    /// ago. Returns how many links were purged. Share targets are never touched.
    pub async fn purge(&self, now: i64) -> Result<usize> {
        let retention = self.config().retention.as_millis() as i64;
        let mut purged = 0;
        for link in self.list(None).await? {
            if link.kind != LinkKind::Send {
                continue;
            }
            let Some(ended) = ended_at(&link, now) else {
                continue;
            };
            if now - ended < retention || self.files(&link).await?.is_empty() {
                continue;
            }
            self.remove_copies(&link).await?;
            purged += 1;
        }
        Ok(purged)
    }

    /// Removes a send link's copies (and their rows); nothing for a share.
    async fn remove_copies(&self, link: &Link) -> Result<()> {
        remove_copies(&self.db, &self.transfer_session(), link).await
    }
}

impl LinkService {
    /// A session acting for the link's creator as they are now (see
    /// [`Session::for_link`]), confined to `within` (a shared folder, a
    /// request's folder) or to their home. Their permissions are checked by
    /// the session at each call. `Err` says why the link cannot act for them
    /// (for the audit log; visitors get a generic answer).
    pub async fn creator_session(
        &self,
        link: &Link,
        within: Option<&VPath>,
        remote: Option<SocketAddr>,
    ) -> std::result::Result<Session, &'static str> {
        let owner = link.owner.clone();
        let user = self
            .db
            .run(move |s| s.user_get(&owner))
            .await
            .map_err(|_| "user lookup failed")?
            .ok_or("creator no longer exists")?;
        Session::for_link(user, remote, self.vfs.clone(), within, self.audit.clone())
    }

    /// The system acting over the transfer store (send links' copies).
    pub fn transfer_session(&self) -> Session {
        Session::system(self.transfers.clone(), Protocol::Http, self.audit.clone())
    }
}

/// Removes a send link's copies (and their rows); nothing for a share. The link
/// record stays for the audit trail.
async fn remove_copies(db: &Db, transfers: &Session, link: &Link) -> Result<()> {
    if link.kind != LinkKind::Send {
        return Ok(());
    }
    let dir = VPath::root().join(&link.public_id)?;
    let id = link.id;
    let files = db.run(move |s| s.link_files(id)).await?;
    for f in &files {
        match transfers.delete(&VPath::parse(&f.path)?).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // Also copies of a failed creation that never got a row.
    if let Ok(mut listing) = transfers.list(&dir).await {
        while let Some(entry) = listing.try_next().await? {
            let _ = transfers.delete(&entry.path).await;
        }
        let _ = transfers.rmdir(&dir).await;
    }
    let public_id = link.public_id.clone();
    db.run(move |s| {
        if s.link_by_public_id(&public_id)?.is_some() {
            s.link_delete_files(id)?;
        }
        Ok(())
    })
    .await
}

/// A path not found that begins with the creator's home was most likely typed
/// as the storage holds it: paths are in the creator's own view (their home
/// is their `/`), so say that, with the path as typed (nothing else of the
/// storage's layout).
fn own_view_hint(e: Error, home: &VPath, view: &VPath) -> Error {
    if e.kind() != ErrorKind::NotFound || home.is_root() || !view.starts_with(home) {
        return e;
    }
    Error::not_found(format!(
        "{view}: no such file or folder among your files (paths are as you see them: \
         your home folder is /)"
    ))
}

/// Checked, normalised e-mail addresses (`what` names them in errors).
fn emails(list: &[String], what: &str) -> Result<Vec<String>> {
    list.iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(|e| {
            if rules::valid_email(e) {
                Ok(rules::normalise_email(e))
            } else {
                Err(Error::invalid(format!(
                    "{what} {e:?} is not an e-mail address"
                )))
            }
        })
        .collect()
}

fn or_none(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

fn entry_name(p: &VPath) -> String {
    p.file_name().unwrap_or("files").to_string()
}
