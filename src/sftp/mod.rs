//! The SFTP front-end: an SSH server (russh) whose main service is the SFTP
//! subsystem, served by wharf's own request loop over the Session layer.
//!
//! - `ssh.rs`: authentication and channels (no shell, no forwarding; exec runs
//!   only scp and checksums, see [`crate::scp`]);
//! - `dispatch.rs`: the request loop (many requests in flight per channel);
//! - `flow.rs`: its flow control (bounded by bytes, never stalling a client);
//! - `handles.rs`: open files and directories;
//! - `wire.rs`: framing, status codes, attributes;
//! - `hostkey.rs`: the host keys (Ed25519, ECDSA, RSA).

mod closes;
mod dispatch;
mod flow;
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
use tokio::sync::{mpsc, watch};

use crate::audit::AuditLog;
use crate::config::SftpConfig;
use crate::login::Authenticator;
use crate::vfs::Vfs;

pub use crate::config::Symlinks;

/// What every SFTP connection shares.
pub struct SftpContext {
    pub vfs: Arc<Vfs>,
    pub audit: AuditLog,
    pub auth: Authenticator,
    pub config: SftpConfig,
}

fn ssh_config(keys: Vec<PrivateKey>, c: &SftpConfig) -> Config {
    Config {
        keys,
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
        // Messages russh queues for a channel before it stops reading the socket
        // (default 100, up to 6 MiB of data per channel with 64 KiB packets): the
        // SFTP reader takes them at once, so 16 keeps throughput.
        channel_buffer_size: CHANNEL_QUEUE,
        nodelay: true,
        preferred: russh::Preferred {
            cipher: std::borrow::Cow::Borrowed(CIPHERS),
            key: std::borrow::Cow::Borrowed(HOST_KEY_ALGORITHMS),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Messages (up to `maximum_packet_size` each) russh holds for one channel.
const CHANNEL_QUEUE: usize = 16;

/// How long a closed connection waits for its SFTP tasks to end.
const WIND_DOWN: Duration = Duration::from_secs(3);

/// russh's default list without aes128-gcm, which OpenSSH offers second and many
/// clients are configured to ask for; AEAD ciphers first, CTR for old clients.
const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_GCM,
    russh::cipher::AES_128_GCM,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_192_CTR,
    russh::cipher::AES_128_CTR,
];

/// russh's default host key list without `ssh-rsa` (SHA-1 signatures), which
/// OpenSSH's sshd no longer offers either: RSA keys sign with SHA-2 only.
const HOST_KEY_ALGORITHMS: &[russh::keys::Algorithm] = &[
    russh::keys::Algorithm::Ed25519,
    russh::keys::Algorithm::Ecdsa {
        curve: russh::keys::EcdsaCurve::NistP256,
    },
    russh::keys::Algorithm::Ecdsa {
        curve: russh::keys::EcdsaCurve::NistP384,
    },
    russh::keys::Algorithm::Ecdsa {
        curve: russh::keys::EcdsaCurve::NistP521,
    },
    russh::keys::Algorithm::Rsa {
        hash: Some(russh::keys::HashAlg::Sha512),
    },
    russh::keys::Algorithm::Rsa {
        hash: Some(russh::keys::HashAlg::Sha256),
    },
];

/// Serves SFTP on `listener` until `shutdown` turns true (see [`crate::net::serve`]);
/// sessions still open after the drain are disconnected with a reason.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<SftpContext>,
    keys: Vec<PrivateKey>,
    shutdown: watch::Receiver<bool>,
) {
    let config = Arc::new(ssh_config(keys, &ctx.config));
    let c = &ctx.config;
    let gate = crate::net::Gate::proxied(
        crate::net::Limits {
            max_sessions: c.max_sessions,
            max_per_address: c.max_per_address,
            max_unauthenticated_per_address: c.max_unauthenticated_per_address,
            login_grace: Some(c.login_grace_time),
        },
        ctx.auth.known(),
        c.proxy_protocol.clone(),
    );
    let handle = |socket, remote, ticket, mut force: watch::Receiver<bool>| {
        // `gone` tells the connection's SFTP tasks that the connection ended; they
        // each hold a clone of `alive`, so `running` ends when they all have.
        let (gone_tx, gone) = watch::channel(false);
        let (alive, mut running) = mpsc::channel::<()>(1);
        let handler = ssh::SshHandler::new(ctx.clone(), remote, ticket, gone, alive);
        let config = config.clone();
        async move {
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
                _ = crate::shutdown::stopped(&mut force) => {
                    let _ = handle
                        .disconnect(russh::Disconnect::ByApplication, "server shutting down".into(), "".into())
                        .await;
                }
            }
            // The connection counts as open (for the shutdown drain) until its SFTP
            // tasks have ended and audited what they left unfinished.
            let _ = gone_tx.send(true);
            let _ = tokio::time::timeout(WIND_DOWN, running.recv()).await;
        }
    };
    // SSH has no way to explain a refusal before its handshake: just close.
    let refuse = |_socket| async {};
    crate::net::serve("sftp", listener, gate, shutdown, handle, refuse).await;
}

/// Binds the configured address. Separate from [`serve`] so callers (and tests,
/// with port 0) learn the real address before serving starts.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
