//! One in-test SSH client (russh + russh-sftp's raw session) for the tests that
//! drive the protocol below what OpenSSH's tools expose: password logins raced
//! in parallel, sessions held open, raw SFTP packets. The host key is accepted
//! unseen: the tests check host keys with ssh-keyscan where they matter.

use std::net::SocketAddr;
use std::sync::Arc;

use russh::keys::PublicKeyOrCertificate;
use russh_sftp::client::RawSftpSession;

pub struct Client;

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

pub type Handle = russh::client::Handle<Client>;

/// An SSH connection with no authentication yet.
pub async fn connect(addr: SocketAddr) -> Result<Handle, String> {
    let config = Arc::new(russh::client::Config::default());
    russh::client::connect(config, addr, Client)
        .await
        .map_err(|e| e.to_string())
}

/// Whether a password login to `addr` succeeds (no channel is opened).
pub async fn password_login(addr: SocketAddr, user: &str, password: &str) -> bool {
    let Ok(mut ssh) = connect(addr).await else {
        return false;
    };
    ssh.authenticate_password(user, password)
        .await
        .is_ok_and(|a| a.success())
}

/// A password login and an SFTP session on it; `Err` when refused or cut. The
/// handle must be kept: dropping it disconnects.
pub async fn sftp_login(
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> Result<(Handle, RawSftpSession), String> {
    let mut ssh = connect(addr).await?;
    let auth = ssh
        .authenticate_password(user, password)
        .await
        .map_err(|e| e.to_string())?;
    if !auth.success() {
        return Err("authentication refused".into());
    }
    let sftp = open_sftp(&ssh).await?;
    Ok((ssh, sftp))
}

/// An SFTP session on an authenticated connection.
pub async fn open_sftp(ssh: &Handle) -> Result<RawSftpSession, String> {
    let channel = ssh
        .channel_open_session()
        .await
        .map_err(|e| e.to_string())?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| e.to_string())?;
    let sftp = RawSftpSession::new(channel.into_stream());
    sftp.init().await.map_err(|e| e.to_string())?;
    Ok(sftp)
}
