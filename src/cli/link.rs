//! `wharf link ...`: create and manage shared links from the command line, through
//! the same service the admin API will use.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{admin_event, cli_actor};
use crate::app;
use crate::audit::AuditLog;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::links::{self, LinkOptions, LinkService, Source};
use crate::policy::links::status;
use crate::store::{format_ms, now_ms, AuditQuery, Link};

#[derive(Debug, Subcommand)]
pub enum LinkCmd {
    /// Copy files into the transfer store and create a link to the copies.
    Send {
        /// Local files, or paths in the creator's view with --from-connector.
        #[arg(required = true)]
        files: Vec<String>,
        /// FILES are paths in the virtual tree (any connector), not local files.
        #[arg(long)]
        from_connector: bool,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Share files or folders where they already live (nothing is copied).
    Share {
        /// Paths in the creator's view of the virtual tree.
        #[arg(required = true)]
        paths: Vec<String>,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// Ask someone to upload files into a folder (an upload request). The usage
    /// limit (--max-files, or --one-time) counts uploaded files.
    Request {
        /// The folder uploads go into, as the creator sees it (created if missing).
        #[arg(long)]
        folder: String,
        /// Files accepted in all.
        #[arg(long, conflicts_with_all = ["one_time", "max_downloads"])]
        max_files: Option<u32>,
        /// The largest file accepted: 500MB, 5GB, 2GiB, or bytes.
        #[arg(long)]
        max_size: Option<crate::config::ByteSize>,
        /// Do not mail the creator when a file arrives.
        #[arg(long)]
        no_notify: bool,
        #[command(flatten)]
        rules: RuleArgs,
    },
    /// List links, newest first.
    List {
        /// Only links in this status: draft, active, expired, exhausted, revoked.
        #[arg(long)]
        status: Option<String>,
        #[arg(long = "as")]
        owner: Option<String>,
        /// Words found in the name, title, id, recipients, reference, client or
        /// a file name.
        #[arg(long)]
        search: Option<String>,
        /// Only links filed under this client (id or name).
        #[arg(long)]
        client: Option<String>,
        /// Only links whose reference contains this (TYPE:TEXT narrows the type too).
        #[arg(long)]
        reference: Option<String>,
    },
    /// Show a link: its URL, status, files with size and SHA-256, uses, recent audit.
    Show { id: String },
    /// Change a link's rules: title, message, recipients, password, allowed
    /// e-mails, usage limit, expiry. Options left out stay as they are.
    Edit {
        id: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        message: Option<String>,
        /// Recipients (comma list; an empty value removes them all).
        #[arg(long, value_delimiter = ',')]
        to: Option<Vec<String>>,
        /// Read a new password from the first line of standard input.
        #[arg(long, conflicts_with = "no_password")]
        password_stdin: bool,
        /// Remove the password.
        #[arg(long)]
        no_password: bool,
        /// Only these addresses can open it (comma list; empty: anyone with the URL).
        #[arg(long, value_delimiter = ',')]
        allow_email: Option<Vec<String>>,
        /// The usage limit (downloads, or files for a request).
        #[arg(long, conflicts_with = "unlimited")]
        max_uses: Option<u32>,
        /// Remove the usage limit.
        #[arg(long)]
        unlimited: bool,
        /// 1d, 3d, 1w, 2w, 1m, never, a duration (36h) or a date (2026-12-31).
        #[arg(long)]
        expires: Option<String>,
        /// The client (id or name; an empty value removes it).
        #[arg(long)]
        client: Option<String>,
        /// TYPE:ID-OR-URL (an empty value removes it).
        #[arg(long)]
        reference: Option<String>,
    },
    /// Give a link a new expiry.
    Extend {
        id: String,
        #[arg(long)]
        expires: String,
    },
    /// Cancel a link now (its files stay until retention purges them).
    Revoke { id: String },
    /// Make a cancelled link active again while its files exist (administrators).
    Restore {
        id: String,
        /// Who asks: an administrator.
        #[arg(long = "as", default_value = "admin")]
        actor: String,
    },
    /// Replace a link's token: the old URL stops working.
    Regenerate { id: String },
    /// Mail the same link to its recipients again (the URL does not change).
    Resend { id: String },
    /// Delete a link's record and its send copies (share targets stay).
    /// Administrators only; others cancel (revoke).
    Delete {
        id: String,
        /// Who asks: an administrator.
        #[arg(long = "as", default_value = "admin")]
        actor: String,
    },
    /// Delete the copies of send links that ended longer ago than the retention.
    Purge,
}

#[derive(Debug, Args)]
pub struct RuleArgs {
    /// The user who creates the link (a share acts with this user's rights).
    #[arg(long = "as", default_value = "admin")]
    owner: String,
    /// Recipients (comma list).
    #[arg(long, value_delimiter = ',')]
    to: Vec<String>,
    /// A name for staff (link list); visitors see the title.
    #[arg(long, default_value = "")]
    name: String,
    #[arg(long, default_value = "")]
    title: String,
    #[arg(long, default_value = "")]
    message: String,
    /// 1d, 3d, 1w (default), 2w, 1m, never, a duration (36h) or a date (2026-12-31).
    #[arg(long)]
    expires: Option<String>,
    /// Read a password for the link from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// One download in all.
    #[arg(long, conflicts_with = "max_downloads")]
    one_time: bool,
    #[arg(long)]
    max_downloads: Option<u32>,
    /// Only these addresses can open it, after an e-mailed code (comma list).
    #[arg(long, value_delimiter = ',')]
    allow_email: Vec<String>,
    /// The client the link is for (id or name, from `wharf client list`).
    #[arg(long)]
    client: Option<String>,
    /// What the link is about: TYPE:ID-OR-URL, TYPE one of project, ticket,
    /// resource, other (`ticket:OPS-42`; without a type: other).
    #[arg(long)]
    reference: Option<String>,
}

/// A link creation refused for lack of the share permission is audited
/// (denied) before the error is reported.
fn refused(db: &crate::store::Db, e: Error, detail: String) -> Error {
    if e.kind() == crate::error::ErrorKind::PermissionDenied {
        let ev = admin_event("link_create")
            .outcome(crate::audit::Outcome::Denied)
            .detail(format!("{detail}: {e}"));
        if let Err(w) = db.blocking().audit_append(&[ev]) {
            tracing::warn!(error = %w, "writing the audit row of a refused link");
        }
    }
    e
}

/// The first line of standard input, as a password.
fn password_from_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        return Err(Error::invalid("no password on standard input"));
    }
    Ok(pw)
}

/// Refuses `action` unless `actor` is an enabled administrator.
async fn admin_only(db: &crate::store::Db, actor: &str, action: &str) -> Result<()> {
    let name = actor.to_string();
    let user = db
        .run(move |s| s.user_get(&name))
        .await?
        .ok_or_else(|| Error::not_found(format!("no user named {actor:?}")))?;
    crate::policy::links::check_admin_action(action, user.admin && user.enabled)
        .map_err(Error::denied)
}

/// The client named on the command line, as `owner` sees it.
async fn client_of(db: &crate::store::Db, owner: &str, given: &str) -> Result<i64> {
    let name = owner.to_string();
    let user = db
        .run(move |s| s.user_get(&name))
        .await?
        .ok_or_else(|| Error::not_found(format!("no user named {owner:?}")))?;
    Ok(crate::addressbook::resolve(db, &user, given).await?.id)
}

/// Any client, by id or (unique) name.
async fn any_client(db: &crate::store::Db, given: &str) -> Result<i64> {
    let wanted = given.trim().to_lowercase();
    let all = db.run(|s| s.client_list(None)).await?;
    let found: Vec<_> = all
        .iter()
        .filter(|c| c.id.to_string() == wanted || c.name.to_lowercase() == wanted)
        .collect();
    match found.as_slice() {
        [one] => Ok(one.id),
        [] => Err(Error::not_found(format!("no client {given:?}"))),
        _ => Err(Error::invalid(format!(
            "several clients are named {given:?}; give the id"
        ))),
    }
}

fn reference_of(given: &str) -> Result<crate::store::Reference> {
    crate::store::Reference::parse(given).map_err(Error::invalid)
}

/// What an audit row of a link made with `--as` says: who ran the command
/// (the administrator) acting as which user.
fn acting(kind: &str, owner: &str) -> String {
    format!("{kind}; {} acting as {owner}", cli_actor())
}

impl RuleArgs {
    async fn options(&self, db: &crate::store::Db) -> Result<LinkOptions> {
        let client = match &self.client {
            Some(c) => Some(client_of(db, &self.owner, c).await?),
            None => None,
        };
        let reference = self.reference.as_deref().map(reference_of).transpose()?;
        let password = if self.password_stdin {
            Some(password_from_stdin()?)
        } else {
            None
        };
        Ok(LinkOptions {
            name: self.name.clone(),
            title: self.title.clone(),
            message: self.message.clone(),
            recipients: self.to.clone(),
            expires: self.expires.clone(),
            password,
            max_uses: if self.one_time {
                Some(1)
            } else {
                self.max_downloads
            },
            allowed_emails: self.allow_email.clone(),
            client,
            reference,
            recipient_names: Vec::new(),
        })
    }
}

pub fn run(config: &Config, cmd: LinkCmd) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let db = app::open_db(config)?;
        let connectors = app::build_connectors(config)?;
        let vfs = Arc::new(app::build_vfs(config, &connectors)?);
        let transfers = Arc::new(app::build_transfers(config, &connectors)?);
        let audit = AuditLog::start(db.clone(), config.audit);
        let service = LinkService::new(
            db.clone(),
            vfs,
            transfers,
            audit.clone(),
            config.links.clone(),
            crate::mail::Mailer::for_config(config)?,
            config.http.product_name.clone(),
            links::token::TokenKey::for_config(config)?,
        )
        .with_upload_staging(app::build_upload_staging(config, &connectors)?.map(Arc::new));
        let res = dispatch(&service, &db, cmd).await;
        audit.shutdown().await;
        res
    })
}

async fn dispatch(service: &LinkService, db: &crate::store::Db, cmd: LinkCmd) -> Result<()> {
    let record = |action: &str, link: &str, detail: Option<String>| {
        let mut ev = admin_event(action).link(link);
        if let Some(d) = detail {
            ev = ev.detail(d);
        }
        db.blocking().audit_append(&[ev])
    };
    match cmd {
        LinkCmd::Send {
            files,
            from_connector,
            rules,
        } => {
            let sources: Vec<Source> = files
                .into_iter()
                .map(|f| {
                    if from_connector {
                        Source::Stored(f)
                    } else {
                        Source::Local(PathBuf::from(f))
                    }
                })
                .collect();
            let created = service
                .send(&rules.owner, &sources, &rules.options(db).await?)
                .await
                .map_err(|e| refused(db, e, acting("send", &rules.owner)))?;
            record(
                "link_create",
                &created.link.public_id,
                Some(acting("send", &rules.owner)),
            )?;
            print_created(service, &created).await
        }
        LinkCmd::Share { paths, rules } => {
            let created = service
                .share(&rules.owner, &paths, &rules.options(db).await?)
                .await
                .map_err(|e| refused(db, e, acting("share", &rules.owner)))?;
            record(
                "link_create",
                &created.link.public_id,
                Some(acting("share", &rules.owner)),
            )?;
            print_created(service, &created).await
        }
        LinkCmd::Request {
            folder,
            max_files,
            max_size,
            no_notify,
            rules,
        } => {
            let r = links::RequestOptions {
                max_files,
                max_size: max_size.map(|s| s.0),
                notify: service.notify_uploads_default() && !no_notify,
            };
            let what = format!("request into {folder}");
            let created = service
                .request(&rules.owner, &folder, &r, &rules.options(db).await?)
                .await
                .map_err(|e| refused(db, e, acting(&what, &rules.owner)))?;
            record(
                "link_create",
                &created.link.public_id,
                Some(acting(&what, &rules.owner)),
            )?;
            print_created(service, &created).await
        }
        LinkCmd::List {
            status: wanted,
            owner,
            search,
            client,
            reference,
        } => {
            const STATUSES: [&str; 5] = ["draft", "active", "expired", "exhausted", "revoked"];
            if let Some(w) = wanted.as_deref().filter(|w| !STATUSES.contains(w)) {
                return Err(Error::invalid(format!(
                    "unknown status {w:?} (known: {})",
                    STATUSES.join(", ")
                )));
            }
            let client_id = match (&client, &owner) {
                (Some(c), Some(o)) => Some(client_of(db, o, c).await?),
                // The administrator running the CLI sees every client.
                (Some(c), None) => Some(any_client(db, c).await?),
                (None, _) => None,
            };
            let (ref_type, reference) = match reference.as_deref() {
                Some(r) => match r.split_once(':') {
                    Some((t, v)) if crate::store::RefType::parse(t).is_some() => {
                        (crate::store::RefType::parse(t), Some(v.to_string()))
                    }
                    _ => (None, Some(r.to_string())),
                },
                None => (None, None),
            };
            let now = now_ms();
            let mut query = crate::store::LinkQuery {
                owner,
                text: search,
                status: wanted,
                client_id,
                ref_type,
                reference,
                limit: 500,
                now,
                ..Default::default()
            };
            println!(
                "{:<12} {:<6} {:<10} {:<14} {:<21} {:>9}  NAME",
                "ID", "KIND", "STATUS", "OWNER", "EXPIRES", "USES"
            );
            // Page by page (the search runs in the database), newest first.
            loop {
                let q = query.clone();
                let page = db.run(move |s| s.link_search(&q)).await?;
                for row in &page.rows {
                    let link = &row.link;
                    println!(
                        "{:<12} {:<6} {:<10} {:<14} {:<21} {:>9}  {}",
                        link.public_id,
                        link.kind.as_str(),
                        status(&links::rules_of(link), now).as_str(),
                        link.owner,
                        expiry(link),
                        uses(link),
                        if link.name.is_empty() {
                            &link.title
                        } else {
                            &link.name
                        }
                    );
                }
                match page.rows.last() {
                    Some(l) if page.rows.len() == query.limit => {
                        query.before = Some((l.link.created_at, l.link.id))
                    }
                    _ => break,
                }
            }
            Ok(())
        }
        LinkCmd::Show { id } => {
            let link = service.find(&id).await?;
            show(service, db, &link).await
        }
        LinkCmd::Extend { id, expires } => {
            let link = service.extend(&id, &expires).await?;
            record(
                "link_extend",
                &id,
                Some(format!("expires {}", expiry(&link))),
            )?;
            println!("link {id} now expires {}", expiry(&link));
            Ok(())
        }
        LinkCmd::Edit {
            id,
            client,
            reference,
            title,
            message,
            to,
            password_stdin,
            no_password,
            allow_email,
            max_uses,
            unlimited,
            expires,
        } => {
            let link = service.find(&id).await?;
            let client = match client.as_deref().map(str::trim) {
                None => None,
                Some("") => Some(None),
                Some(c) => Some(Some(client_of(db, &link.owner, c).await?)),
            };
            let reference = match reference.as_deref().map(str::trim) {
                None => None,
                Some("") => Some(None),
                Some(r) => Some(Some(reference_of(r)?)),
            };
            let update = links::LinkUpdate {
                client,
                reference,
                title,
                message,
                recipients: to,
                password: if no_password {
                    Some(None)
                } else if password_stdin {
                    Some(Some(password_from_stdin()?))
                } else {
                    None
                },
                allowed_emails: allow_email,
                max_uses: if unlimited {
                    Some(None)
                } else {
                    max_uses.map(Some)
                },
                expires,
            };
            let (_, changed) = service.edit(&id, &update).await?;
            record("link_edit", &id, Some(changed.clone()))?;
            println!("link {id}: {changed}");
            Ok(())
        }
        LinkCmd::Restore { id, actor } => {
            admin_only(db, &actor, "restore").await?;
            service.restore(&id).await?;
            record("link_restore", &id, Some(format!("by {actor}")))?;
            println!("restored link {id}");
            Ok(())
        }
        LinkCmd::Revoke { id } => {
            service.revoke(&id).await?;
            record("link_revoke", &id, None)?;
            println!("revoked link {id}");
            Ok(())
        }
        LinkCmd::Regenerate { id } => {
            let url = service.regenerate(&id).await?;
            record("link_regenerate", &id, None)?;
            println!("link {id} has a new URL (the old one no longer works):\n{url}");
            Ok(())
        }
        LinkCmd::Resend { id } => {
            let url = service.resend(&id).await?;
            record("link_resend", &id, None)?;
            println!("mailed link {id} again (the same URL):\n{url}");
            Ok(())
        }
        LinkCmd::Delete { id, actor } => {
            admin_only(db, &actor, "delete").await?;
            service.delete(&id).await?;
            record("link_delete", &id, Some(format!("by {actor}")))?;
            println!("deleted link {id}");
            Ok(())
        }
        LinkCmd::Purge => {
            let n = service.purge(now_ms()).await?;
            println!("purged the copies of {n} ended send link(s)");
            Ok(())
        }
    }
}

fn expiry(link: &Link) -> String {
    link.expires_at
        .map(format_ms)
        .unwrap_or_else(|| "never".into())
}

fn uses(link: &Link) -> String {
    match link.max_uses {
        Some(m) => format!("{}/{m}", link.uses),
        None => link.uses.to_string(),
    }
}

async fn print_created(service: &LinkService, created: &links::Created) -> Result<()> {
    let link = &created.link;
    let files = service.files(link).await?;
    println!(
        "created {} link {} ({} item(s), expires {})",
        link.kind.as_str(),
        link.public_id,
        files.len(),
        expiry(link)
    );
    // `wharf link show` prints it again (derived from the data directory's key).
    println!("{}", created.url);
    if !link.recipients.is_empty() {
        match &created.mail_error {
            None => println!("mailed to {}", link.recipients.join(", ")),
            Some(e) => eprintln!(
                "warning: the mail to {} was not sent ({e}); send them the URL yourself",
                link.recipients.join(", ")
            ),
        }
    }
    Ok(())
}

async fn show(service: &LinkService, db: &crate::store::Db, link: &Link) -> Result<()> {
    let s = status(&links::rules_of(link), now_ms());
    println!("id:          {}", link.public_id);
    println!(
        "url:         {}",
        service.url_of(link).unwrap_or_else(|| {
            "(made before URLs could be shown again; regenerate it for a new one)".into()
        })
    );
    println!("kind:        {}", link.kind.as_str());
    println!("status:      {}", s.as_str());
    println!("owner:       {}", link.owner);
    println!("name:        {}", link.name);
    println!("title:       {}", link.title);
    println!("recipients:  {}", link.recipients.join(", "));
    if let Some(id) = link.client_id {
        let name = db
            .run(move |s| s.client_get(id))
            .await?
            .map(|c| c.name)
            .unwrap_or_default();
        println!("client:      {name} ({id})");
    }
    if let Some(r) = &link.reference {
        println!("reference:   {} {}", r.kind.as_str(), r.value);
    }
    println!("created:     {}", format_ms(link.created_at));
    println!("expires:     {}", expiry(link));
    println!("uses:        {}", uses(link));
    println!(
        "last use:    {}",
        link.last_used_at
            .map(format_ms)
            .unwrap_or_else(|| "-".into())
    );
    println!(
        "password:    {}",
        if link.password_hash.is_some() {
            "yes"
        } else {
            "no"
        }
    );
    println!(
        "allowed:     {}",
        if link.allowed_emails.is_empty() {
            "anyone with the URL".into()
        } else {
            link.allowed_emails.join(", ")
        }
    );
    if let Some(i) = &link.inbound {
        println!("folder:      {}", i.folder);
        println!(
            "max size:    {}",
            i.max_size
                .map(|m| format!("{m} bytes"))
                .unwrap_or_else(|| "no limit".into())
        );
        println!("notify:      {}", if i.notify { "yes" } else { "no" });
    }
    let files = service.files(link).await?;
    println!("files:       {}", files.len());
    for f in files {
        let kind = if f.is_dir { "folder" } else { "file" };
        println!(
            "  {:<30} {:>12}  {:<6} {}",
            f.name,
            f.size,
            kind,
            f.sha256.as_deref().unwrap_or("-")
        );
    }
    let recent = db.blocking().audit_query(&AuditQuery {
        path: Some(crate::event::link_key(&link.public_id)),
        limit: 10,
        ..Default::default()
    })?;
    println!("recent audit:");
    for r in recent {
        let e = r.event;
        println!(
            "  {} {} {} {}",
            format_ms(e.ts),
            e.action,
            e.outcome.as_str(),
            e.actor.unwrap_or_default()
        );
    }
    Ok(())
}
