//! What every request of the link server shares (stores, settings, throttles,
//! services), and the body type of its responses. A leaf under the router.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;

use super::{client, tls};
use crate::audit::AuditLog;
use crate::config::{HttpConfig, LinksConfig};
use crate::defender::Defender;
use crate::links::grant::GrantKeys;
use crate::links::LinkService;
use crate::login::Authenticator;
use crate::mail::Mailer;
use crate::store::Db;
use crate::vfs::Vfs;

/// Response bodies: small pages or streamed files.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// What every request shares.
pub struct HttpContext {
    pub db: Db,
    pub vfs: Arc<Vfs>,
    pub transfers: Arc<Vfs>,
    pub audit: AuditLog,
    pub config: HttpConfig,
    pub keys: GrantKeys,
    pub mailer: Mailer,
    /// Per address: the login lock-out shared with SFTP, FTPS and staff logins
    /// (bad API keys count too; link guesses do not).
    pub defender: Arc<Defender>,
    /// Per (link, address): wrong passwords and codes.
    pub guesses: Defender<(i64, std::net::IpAddr)>,
    /// Per (link, address): codes asked for (no mail flood).
    pub code_requests: Defender<(i64, std::net::IpAddr)>,
    /// Creating and managing links (staff pages and the admin API).
    pub service: Arc<LinkService>,
    /// Staff logins (same checks and lock-out as SFTP and FTPS).
    pub auth: Authenticator,
    /// HTTPS (`[http] tls_cert`); `None`: plain HTTP.
    pub tls: Option<tls::Https>,
}

impl HttpContext {
    /// The `[links]` settings now in force (SIGHUP can change them).
    pub fn links(&self) -> Arc<LinksConfig> {
        self.service.config()
    }

    /// Cookies get `Secure` when visitors come over HTTPS: this server's TLS, or a
    /// proxy's in front of it.
    pub fn secure(&self) -> bool {
        self.tls.is_some()
            || self.links().base_url.starts_with("https://")
            || client::forwarded_https()
    }
}
