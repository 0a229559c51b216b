//! The FTPS front-end: explicit (AUTH TLS on the control port) and implicit (TLS
//! from the first byte) listeners, TLS 1.2/1.3 on control and data connections.
//!
//! libunftp, the maintained Rust FTP server library, has no implicit FTPS and cannot
//! take a TLS stream, so wharf owns its control loop:
//! - `command.rs`: parsing (pure, unit-tested);
//! - `control.rs`: the control connection over the Session layer;
//! - `data.rs`: passive and active data connections;
//! - `listing.rs`: which names a listing shows, and the MLST facts chosen;
//! - `stou.rs`: the names STOU handed out while their uploads run;
//! - `tls.rs`: certificate and rustls configuration.

mod command;
mod control;
mod data;
mod listing;
pub mod stou;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::config::FtpsConfig;
use crate::login::Authenticator;
use crate::vfs::Vfs;

/// What every FTPS connection shares.
pub struct FtpsContext {
    pub vfs: Arc<Vfs>,
    pub audit: AuditLog,
    pub auth: Authenticator,
    pub config: FtpsConfig,
    /// TLS for the control connection and each kind of data connection.
    pub tls: tls::Acceptors,
    /// Whose TLS sessions data connections may resume.
    pub session_owners: Arc<tls::SessionOwners>,
    /// TLS before login and on data connections (the default; `allow_plain` lifts it
    /// on the explicit listener).
    pub require_tls: bool,
    /// Names STOU chose whose uploads still run (two STOU never get one name).
    pub stou_claims: Arc<stou::StouClaims>,
}

/// The gate both listeners share, so the limits count them together.
pub fn gate(c: &FtpsConfig, known: Arc<crate::net::KnownAddresses>) -> Arc<crate::net::Gate> {
    crate::net::Gate::proxied(
        crate::net::Limits {
            max_sessions: c.max_sessions,
            max_per_address: c.max_per_address,
            max_unauthenticated_per_address: c.max_unauthenticated_per_address,
            login_grace: Some(c.login_grace_time),
        },
        known,
        c.proxy_protocol.clone(),
    )
}

/// Serves one listener until `shutdown` turns true (see [`crate::net::serve`]).
pub async fn serve(
    listener: TcpListener,
    implicit: bool,
    ctx: Arc<FtpsContext>,
    gate: Arc<crate::net::Gate>,
    shutdown: watch::Receiver<bool>,
) {
    let name = if implicit { "ftps-implicit" } else { "ftps" };
    let handle = |tcp, peer, ticket, _force| {
        control::Control::new(ctx.clone(), tcp, peer, ticket).run(implicit)
    };
    let refuse = move |mut tcp: tokio::net::TcpStream| async move {
        if !implicit {
            use tokio::io::AsyncWriteExt;
            let _ = tcp
                .write_all(b"421 Too many connections; try again later\r\n")
                .await;
        }
    };
    crate::net::serve(name, listener, gate, shutdown, handle, refuse).await;
}

/// Binds a listener; callers learn the real address (port 0 in tests) from it.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
