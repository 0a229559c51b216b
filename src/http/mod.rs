//! The link server: what outside parties open in a browser. hyper (HTTP/1.1) on
//! the shared accept loop. Link rules come from `policy::links` only.
//!
//! - `routes.rs`: routing, protective headers, small responses;
//! - `visit.rs`: a request's link and grant, the landing page, the password,
//!   e-mail and code forms;
//! - `target.rs`: where an item's bytes live, with the share re-checks;
//! - `download.rs`: files (Range) and folder pages; `meter.rs`: bodies that
//!   settle the use and write the audit row when the bytes stop;
//! - `zip.rs`: "download all" as a streamed zip;
//! - `forms.rs`: cookies, form bodies, CSRF; `pages.rs`: the HTML;
//! - `assets.rs`: embedded scripts (`static/`) and the logo;
//! - `upload.rs`: the upload page of upload requests and their endpoints;
//!   `tus.rs`: the resumable upload protocol (tus 1.0) they speak;
//! - `staff/`: the staff pages under `/app` (login sessions, dashboard, link
//!   details and actions).

mod assets;
mod download;
pub(crate) mod forms;
mod meter;
pub mod pages;
mod routes;
mod staff;
mod target;
mod tus;
mod upload;
mod visit;
mod zip;

pub(crate) use routes::json;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

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
    pub links: LinksConfig,
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
}

impl HttpContext {
    /// Cookies get `Secure` when visitors come over HTTPS.
    pub fn secure(&self) -> bool {
        self.links.base_url.starts_with("https://")
    }
}

/// Serves the link server on `listener` until `shutdown` turns true.
pub async fn serve(listener: TcpListener, ctx: Arc<HttpContext>, shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(ctx.config.max_connections));
    let handle = |tcp, peer, mut force: watch::Receiver<bool>| {
        let ctx = ctx.clone();
        async move {
            let service = hyper::service::service_fn(move |req| {
                let ctx = ctx.clone();
                async move { Ok::<_, std::convert::Infallible>(routes::handle(&ctx, peer, req).await) }
            });
            let conn = http1::Builder::new()
                // A client must send its headers promptly (slow-loris).
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(20))
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(tcp), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = crate::app::stopped(&mut force) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        }
    };
    let refuse = |_tcp| async {};
    crate::net::serve("http", listener, slots, shutdown, handle, refuse).await;
}
