//! Outgoing mail: SMTP through lettre (STARTTLS, implicit TLS or plain, with
//! optional authentication), or — the embedded default — `.eml` files written to
//! an outbox folder, so a fresh install works without a mail server and staff
//! can still read what would have been sent.
//!
//! Callers that must not reveal anything through timing (the e-mail code form)
//! hand messages to [`Mailer::send_later`], which sends from a task.

mod html;
pub mod messages;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailConfig, MailSecurity};
use crate::error::{Error, Result};

/// One message: its plain text, and (built from it when sent) an HTML part in
/// the white-label look with the call to action as a button.
#[derive(Debug, Clone)]
pub struct Mail {
    /// What the mail is ("link", "code", ...): what the log says of it. Subjects
    /// and bodies can hold codes and URLs, so they are never logged.
    pub kind: &'static str,
    pub to: Vec<String>,
    pub reply_to: Option<String>,
    pub subject: String,
    pub body: String,
    /// The one thing to do (label, URL): a button in the HTML part.
    pub button: Option<(String, String)>,
}

/// The white label mails wear (`[http] product_name`, `accent`, `logo`).
#[derive(Debug, Clone)]
pub struct MailBrand {
    pub product: String,
    /// A CSS colour (`#0b6e4f`).
    pub accent: String,
    /// Where the logo is served (`<base_url>/static/logo`), if there is one.
    pub logo_url: Option<String>,
}

impl Default for MailBrand {
    fn default() -> Self {
        MailBrand {
            product: "wharf".into(),
            accent: "#0b6e4f".into(),
            logo_url: None,
        }
    }
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// Cheap to clone; shared by the link service and the link server.
#[derive(Clone)]
pub struct Mailer {
    transport: Arc<Transport>,
    from: Mailbox,
    brand: Arc<MailBrand>,
    /// Mails handed to [`Mailer::send_later`]; shutdown waits for them.
    pending: tokio_util::task::TaskTracker,
}

impl Mailer {
    pub fn new(config: &MailConfig) -> Result<Mailer> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| Error::invalid(format!("[mail] from {:?}: {e}", config.from)))?;
        let transport = match &config.smtp {
            None => Transport::Outbox(config.outbox.clone()),
            Some(s) => {
                let builder = match s.security {
                    MailSecurity::StartTls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
                    }
                    MailSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host),
                    MailSecurity::None => Ok(
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
                    ),
                }
                .map_err(|e| Error::invalid(format!("[mail] smtp_host {:?}: {e}", s.host)))?;
                let mut builder = builder.port(s.port).timeout(Some(config.timeout));
                if !s.username.is_empty() {
                    builder = builder
                        .credentials(Credentials::new(s.username.clone(), s.password.clone()));
                }
                Transport::Smtp(builder.build())
            }
        };
        Ok(Mailer {
            transport: Arc::new(transport),
            from,
            brand: Arc::new(MailBrand::default()),
            pending: tokio_util::task::TaskTracker::new(),
        })
    }

    /// The mailer of `[mail]`, wearing the white label of `[http]`
    /// (product name, accent colour, the logo as served under `[links] base_url`).
    pub fn for_config(config: &crate::config::Config) -> Result<Mailer> {
        let brand = MailBrand {
            product: config.http.product_name.clone(),
            accent: config.http.accent.clone(),
            logo_url: config.http.logo.as_ref().map(|_| {
                format!(
                    "{}/static/logo",
                    config.links.base_url.trim_end_matches('/')
                )
            }),
        };
        Ok(Mailer::new(&config.mail)?.branded(brand))
    }

    /// The same mailer wearing `brand` in its HTML parts.
    pub fn branded(mut self, brand: MailBrand) -> Mailer {
        self.brand = Arc::new(brand);
        self
    }

    pub fn brand(&self) -> &MailBrand {
        &self.brand
    }

    /// Where mail goes, for the start-up banner.
    pub fn describe(&self) -> String {
        match self.transport.as_ref() {
            Transport::Smtp(_) => "SMTP".into(),
            Transport::Outbox(dir) => format!("outbox {}", dir.display()),
        }
    }

    fn build(&self, mail: &Mail) -> Result<Message> {
        // Message-ID: random (the relay may not add one, and some spam filters
        // mark mails without it), under the sender's domain.
        let id = format!(
            "<{}@{}>",
            hex::encode(crate::secret::random_bytes::<16>()),
            self.from.email.domain()
        );
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject.clone())
            .date_now()
            .message_id(Some(id));
        for to in &mail.to {
            let mbox: Mailbox = to
                .parse()
                .map_err(|e| Error::invalid(format!("recipient {to:?}: {e}")))?;
            b = b.to(mbox);
        }
        if let Some(r) = &mail.reply_to {
            if let Ok(mbox) = r.parse() {
                b = b.reply_to(mbox);
            }
        }
        let html = html::render(&self.brand, mail);
        b.multipart(MultiPart::alternative_plain_html(mail.body.clone(), html))
            .map_err(|e| Error::invalid(format!("composing mail: {e}")))
    }

    /// Sends now; an error says why (the CLI reports it).
    pub async fn send(&self, mail: Mail) -> Result<()> {
        if mail.to.is_empty() {
            return Ok(());
        }
        let message = self.build(&mail)?;
        match self.transport.as_ref() {
            Transport::Smtp(t) => {
                t.send(message).await.map_err(|e| {
                    Error::new(
                        crate::error::ErrorKind::Unavailable,
                        format!("sending mail: {e}"),
                    )
                })?;
                tracing::info!(to = %mail.to.join(","), kind = mail.kind, "mail sent");
            }
            Transport::Outbox(dir) => {
                let dir = dir.clone();
                let bytes = message.formatted();
                let path = tokio::task::spawn_blocking(move || write_eml(&dir, &bytes))
                    .await
                    .map_err(|e| Error::internal("outbox task failed").with_source(e))??;
                tracing::info!(to = %mail.to.join(","), kind = mail.kind, file = %path.display(), "mail written to the outbox");
            }
        }
        Ok(())
    }

    /// Sends from a task; failures are logged. The caller's response time does
    /// not depend on the mail server (or on whether a mail was sent at all).
    pub fn send_later(&self, mail: Mail) {
        let me = self.clone();
        self.pending.spawn(async move {
            let kind = mail.kind;
            if let Err(e) = me.send(mail).await {
                tracing::warn!(kind, error = %e, "mail not sent");
            }
        });
    }
}

impl Mailer {
    /// Waits (at most `grace`) for mails handed to [`Mailer::send_later`].
    pub async fn drain(&self, grace: std::time::Duration) {
        self.pending.close();
        if tokio::time::timeout(grace, self.pending.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.pending.len(),
                "mails still being sent at shutdown"
            );
        }
    }
}

/// Writes one message as `<millis>-<random>.eml`, complete or not at all.
fn write_eml(dir: &std::path::Path, bytes: &[u8]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::from(e).context(format!("creating {}", dir.display())))?;
    let name = format!(
        "{}-{}.eml",
        crate::store::now_ms(),
        hex::encode(crate::secret::random_bytes::<4>())
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(&name);
    // Mails hold link URLs and codes: owner-only, like the rest of the data directory.
    let mut f = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?
    };
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}
