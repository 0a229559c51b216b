//! The SFTP front-end: an SSH server (russh) whose only service is the SFTP
//! subsystem, served by wharf's own request loop over the Session layer.
//!
//! - `ssh.rs`: authentication and channels (no shell, no exec, no forwarding);
//! - `dispatch.rs`: the request loop (many requests in flight per channel);
//! - `handles.rs`: open files and directories;
//! - `wire.rs`: framing, status codes, attributes;
//! - `hostkey.rs`: the host key.

mod dispatch;
mod handles;
pub mod hostkey;
mod ssh;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::server::Config;
use russh::MethodKind;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::audit::AuditLog;
use crate::config::SftpConfig;
use crate::login::Authenticator;
use crate::vfs::Vfs;

/// How long running sessions may take to finish after shutdown begins.
pub const DRAIN: Duration = Duration::from_secs(10);

/// What every SFTP connection shares.
pub struct SftpContext {
    pub vfs: Arc<Vfs>,
    pub audit: AuditLog,
    pub auth: Authenticator,
    pub config: SftpConfig,
}

fn ssh_config(key: PrivateKey, c: &SftpConfig) -> Config {
    Config {
        keys: vec![key],
        methods: (&[
            MethodKind::PublicKey,
            MethodKind::Password,
            MethodKind::KeyboardInteractive,
        ][..])
            .into(),
        auth_rejection_time: c.auth_delay,
        // The first "none" probe every client sends is not a failure.
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(c.idle_timeout),
        // A larger window keeps bulk transfers from stalling on acknowledgements.
        window_size: 16 * 1024 * 1024,
        maximum_packet_size: 65535,
        nodelay: true,
        ..Default::default()
    }
}

/// Serves SFTP on `listener` until `shutdown` turns true, then stops accepting,
/// lets sessions finish for up to [`DRAIN`], and disconnects the rest.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<SftpContext>,
    key: PrivateKey,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = Arc::new(ssh_config(key, &ctx.config));
    let slots = Arc::new(Semaphore::new(ctx.config.max_sessions));
    let (force_tx, force_rx) = watch::channel(false);
    let mut sessions = JoinSet::new();
    loop {
        let (socket, remote) = tokio::select! {
            _ = crate::app::stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "SFTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%remote, limit = ctx.config.max_sessions, "SFTP session limit reached; connection refused");
            continue;
        };
        let handler = ssh::SshHandler::new(ctx.clone(), remote);
        let config = config.clone();
        let mut force = force_rx.clone();
        sessions.spawn(async move {
            let _slot = slot;
            let _ = socket.set_nodelay(true);
            let session = match russh::server::run_stream(config, socket, handler).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%remote, error = %e, "SSH handshake failed");
                    return;
                }
            };
            let handle = session.handle();
            tokio::select! {
                res = session => {
                    if let Err(e) = res {
                        tracing::debug!(%remote, error = %e, "SSH session ended with an error");
                    }
                }
                _ = crate::app::stopped(&mut force) => {
                    let _ = handle
                        .disconnect(russh::Disconnect::ByApplication, "server shutting down".into(), "".into())
                        .await;
                }
            }
        });
        // Reap finished sessions so the set does not grow.
        while sessions.try_join_next().is_some() {}
    }
    drop(listener);
    if !sessions.is_empty() {
        tracing::info!(open = sessions.len(), "waiting for SFTP sessions to finish");
        let drained = tokio::time::timeout(DRAIN, async {
            while sessions.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            let _ = force_tx.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while sessions.join_next().await.is_some() {}
            })
            .await;
        }
    }
}

/// Binds the configured address. Separate from [`serve`] so callers (and tests,
/// with port 0) learn the real address before serving starts.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
