//! The FTPS front-end: explicit (AUTH TLS on the control port) and implicit (TLS
//! from the first byte) listeners, TLS 1.2/1.3 on control and data connections.
//!
//! libunftp, the maintained Rust FTP server library, has no implicit FTPS and cannot
//! take a TLS stream, so wharf owns its control loop:
//! - `command.rs`: parsing (pure, unit-tested);
//! - `control.rs`: the control connection over the Session layer;
//! - `data.rs`: passive and active data connections;
//! - `tls.rs`: certificate and rustls configuration.

mod command;
mod control;
mod data;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::audit::AuditLog;
use crate::config::FtpsConfig;
use crate::login::Authenticator;
use crate::vfs::Vfs;

/// How long running sessions may take to finish after shutdown begins.
pub const DRAIN: Duration = Duration::from_secs(10);

/// What every FTPS connection shares.
pub struct FtpsContext {
    pub vfs: Arc<Vfs>,
    pub audit: AuditLog,
    pub auth: Authenticator,
    pub config: FtpsConfig,
    pub acceptor: TlsAcceptor,
    /// TLS before login and on data connections (the default; `allow_plain` lifts it
    /// on the explicit listener).
    pub require_tls: bool,
}

/// Serves one listener until `shutdown` turns true; then lets sessions finish for
/// up to [`DRAIN`] and cuts the rest.
pub async fn serve(
    listener: TcpListener,
    implicit: bool,
    ctx: Arc<FtpsContext>,
    slots: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sessions = JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = crate::app::stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "FTPS accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "FTPS session limit reached; connection refused");
            if !implicit {
                use tokio::io::AsyncWriteExt;
                let mut tcp = tcp;
                let _ = tcp
                    .write_all(b"421 Too many connections; try again later\r\n")
                    .await;
            }
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let ctx = ctx.clone();
        sessions.spawn(async move {
            let _slot = slot;
            control::Control::new(ctx, tcp, peer).run(implicit).await;
        });
        while sessions.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        sessions.abort_all();
        while sessions.join_next().await.is_some() {}
    }
}

/// Binds a listener; callers learn the real address (port 0 in tests) from it.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
