//! Notifications to the owner of a link: a file downloaded, a file received on
//! an upload request, a link that expired or was used up. Each is stored for
//! the staff feed (`/app/notifications`) and, as the user's preferences say
//! (defaults from `[links] notify_downloads` / `notify_uploads`), mailed.
//!
//! Built on the spot from the database, the mailer and the `[links]` config
//! (cheap clones), by the link server's download settlement, the upload
//! request's publishing and the expiry sweep.

use crate::config::LinksConfig;
use crate::mail::{messages, Mailer};
use crate::store::{now_ms, Db, Link, LinkFile, Millis, NewNotification, NoticeKind};

/// How far back the expiry sweep looks: links that expired before that (an
/// old database meeting this feature) are not announced all at once.
const EXPIRY_LOOKBACK: i64 = 7 * 24 * 3600 * 1000;

/// One thing that happened on a link.
pub enum Event<'a> {
    Downloaded {
        link: &'a Link,
        file: &'a str,
        bytes: u64,
        /// The visitor's verified e-mail, or their address.
        who: &'a str,
    },
    Uploaded {
        link: &'a Link,
        file: &'a LinkFile,
        who: &'a str,
    },
    Expired {
        link: &'a Link,
    },
    Exhausted {
        link: &'a Link,
    },
}

impl Event<'_> {
    fn kind(&self) -> NoticeKind {
        match self {
            Event::Downloaded { .. } => NoticeKind::Downloaded,
            Event::Uploaded { .. } => NoticeKind::Uploaded,
            Event::Expired { .. } => NoticeKind::Expired,
            Event::Exhausted { .. } => NoticeKind::Exhausted,
        }
    }

    fn link(&self) -> &Link {
        match self {
            Event::Downloaded { link, .. }
            | Event::Uploaded { link, .. }
            | Event::Expired { link }
            | Event::Exhausted { link } => link,
        }
    }
}

/// What staff call a link: its name, else its title, else its id.
pub fn label(link: &Link) -> &str {
    [&link.name, &link.title, &link.public_id]
        .into_iter()
        .find(|s| !s.is_empty())
        .map(String::as_str)
        .unwrap_or_default()
}

/// Whether a kind goes by mail for a user who has not chosen.
pub fn mail_default(kind: NoticeKind, config: &LinksConfig) -> bool {
    match kind {
        NoticeKind::Downloaded => config.notify_downloads,
        NoticeKind::Uploaded => config.notify_uploads,
        NoticeKind::Expired | NoticeKind::Exhausted => false,
    }
}

#[derive(Clone)]
pub struct Notifier {
    db: Db,
    mailer: Mailer,
    config: LinksConfig,
}

impl Notifier {
    pub fn new(db: Db, mailer: Mailer, config: &LinksConfig) -> Notifier {
        Notifier {
            db,
            mailer,
            config: config.clone(),
        }
    }

    /// The link's staff page, for the mail's button.
    fn page(&self, link: &Link) -> String {
        format!(
            "{}/app/links/{}",
            self.config.base_url.trim_end_matches('/'),
            link.public_id
        )
    }

    /// Stores the notification and mails it if the owner wants that. Never
    /// fails the caller: a failure is logged.
    pub async fn emit(&self, event: Event<'_>) {
        let link = event.link();
        let kind = event.kind();
        let (file, who, bytes) = match &event {
            Event::Downloaded {
                file, who, bytes, ..
            } => (file.to_string(), who.to_string(), Some(*bytes)),
            Event::Uploaded { file, who, .. } => {
                (file.name.clone(), who.to_string(), Some(file.size))
            }
            _ => (String::new(), String::new(), None),
        };
        let new = NewNotification {
            user: link.owner.clone(),
            kind,
            link_public_id: link.public_id.clone(),
            link_label: label(link).to_string(),
            file,
            who,
            bytes,
        };
        let owner = link.owner.clone();
        let stored = self
            .db
            .run(move |s| {
                let Some(_) = s.notification_add(&new, now_ms())? else {
                    return Ok(None);
                };
                let user = s.user_get(&owner)?;
                let prefs = s.notification_prefs(&owner)?;
                Ok(Some((user, prefs)))
            })
            .await;
        let (user, prefs) = match stored {
            Ok(Some(x)) => x,
            Ok(None) => return, // already noticed, or the owner is gone
            Err(e) => {
                tracing::error!(link = %link.public_id, kind = kind.as_str(), error = %e, "storing a notification");
                return;
            }
        };
        let Some(to) = user.and_then(|u| u.email) else {
            return;
        };
        let chosen = prefs.iter().find(|(k, _)| *k == kind).map(|(_, on)| *on);
        let wanted = match kind {
            // The link's own choice (`--no-notify`) still holds; the user can
            // only turn upload mails off.
            NoticeKind::Uploaded => {
                link.inbound.as_ref().is_some_and(|i| i.notify) && chosen != Some(false)
            }
            _ => chosen.unwrap_or_else(|| mail_default(kind, &self.config)),
        };
        if !wanted {
            return;
        }
        let page = self.page(link);
        let mail = match event {
            Event::Downloaded {
                link,
                file,
                bytes,
                who,
            } => messages::downloaded(&to, link, file, bytes, who, &page),
            Event::Uploaded { link, file, who } => messages::uploaded(&to, link, file, who, &page),
            Event::Expired { link } => messages::ended(&to, link, true, &page),
            Event::Exhausted { link } => messages::ended(&to, link, false, &page),
        };
        self.mailer.send_later(mail);
    }

    /// Notices a link whose last use is taken (`link` as it is now).
    pub async fn if_exhausted(&self, link: &Link) {
        if link.max_uses.is_some_and(|m| link.uses >= m) {
            self.emit(Event::Exhausted { link }).await;
        }
    }

    /// Notices the links (of `owner`, or everyone's) that expired lately and
    /// were not noticed yet; returns how many. Run by the hourly sweep, and
    /// when a user opens their feed (so it is current to the second).
    pub async fn expired(&self, owner: Option<String>, now: Millis) -> usize {
        let found = self
            .db
            .run(move |s| s.links_newly_expired(owner.as_deref(), now - EXPIRY_LOOKBACK, now))
            .await;
        let links = match found {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "looking for expired links");
                return 0;
            }
        };
        for link in &links {
            self.emit(Event::Expired { link }).await;
        }
        links.len()
    }
}

/// How often `serve` looks for links that expired.
pub const EXPIRY_SWEEP: std::time::Duration = std::time::Duration::from_secs(3600);

/// Notices expired links at start and then every [`EXPIRY_SWEEP`], until
/// shutdown.
pub async fn expiry_sweep(
    notifier: Notifier,
    cluster: crate::cluster::Cluster,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        // One node at a time (job lease): notices are stored once per link
        // anyway, but two nodes would race to mail them.
        if cluster.turn("expiry", EXPIRY_SWEEP).await {
            let n = notifier.expired(None, now_ms()).await;
            if n > 0 {
                tracing::info!(links = n, "noticed expired links");
            }
        }
        tokio::select! {
            _ = crate::shutdown::stopped(&mut stop) => return,
            _ = tokio::time::sleep(EXPIRY_SWEEP) => {}
        }
    }
}
