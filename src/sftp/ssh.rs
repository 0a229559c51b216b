//! The SSH side of the SFTP front-end: one russh handler per connection, which
//! authenticates through [`Authenticator`](crate::login::Authenticator) and starts
//! the SFTP subsystem. Exec runs scp and checksum commands only ([`crate::scp`]);
//! shell and port forwarding are refused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use russh::keys::PublicKey;
use russh::server::{
    Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, MethodKind};
use tokio::sync::{mpsc, watch};

use super::SftpContext;
use crate::net::Ticket;
use crate::policy::Protocol;
use crate::store::User;

const ONLY_SFTP: &str =
    "This server provides SFTP only (wharf). Use sftp, scp or an SFTP client.\r\n";

pub struct SshHandler {
    ctx: Arc<SftpContext>,
    remote: SocketAddr,
    user: Option<User>,
    /// For accounts that need a key and a password: who passed which factor so far.
    key_passed: Option<String>,
    password_passed: Option<String>,
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Turns true when the connection ended.
    gone: watch::Receiver<bool>,
    /// Held by every SFTP task of the connection (see `sftp::serve`).
    alive: mpsc::Sender<()>,
    /// This connection at the listener's gate: told when the login completes.
    ticket: Ticket,
}

/// One proof of identity.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Factor {
    Key,
    Password,
}

impl SshHandler {
    pub fn new(
        ctx: Arc<SftpContext>,
        remote: SocketAddr,
        ticket: Ticket,
        gone: watch::Receiver<bool>,
        alive: mpsc::Sender<()>,
    ) -> Self {
        SshHandler {
            ticket,
            ctx,
            remote,
            user: None,
            key_passed: None,
            password_passed: None,
            channels: HashMap::new(),
            gone,
            alive,
        }
    }

    /// A factor passed. Most accounts are in; a two-factor account is in once the
    /// other factor passed too, and is told (partial success) what is still needed.
    async fn passed(&mut self, user: User, factor: Factor) -> Auth {
        if user.key_and_password {
            let name = Some(user.name.clone());
            let (this, other) = match factor {
                Factor::Key => (&mut self.key_passed, &self.password_passed),
                Factor::Password => (&mut self.password_passed, &self.key_passed),
            };
            if *other != name {
                *this = name;
                let next: &[MethodKind] = match factor {
                    Factor::Key => &[MethodKind::Password, MethodKind::KeyboardInteractive],
                    Factor::Password => &[MethodKind::PublicKey],
                };
                return Auth::Reject {
                    proceed_with_methods: Some(next.into()),
                    partial_success: true,
                };
            }
            self.ctx
                .auth
                .record_login(
                    Protocol::Sftp,
                    self.remote,
                    &user.name,
                    "publickey+password",
                )
                .await;
        }
        self.user = Some(user);
        self.ticket.authenticated();
        Auth::Accept
    }

    async fn password_login(&mut self, user: &str, password: &str) -> Auth {
        match self
            .ctx
            .auth
            .password(Protocol::Sftp, self.remote, user, password)
            .await
        {
            Ok(u) => self.passed(u, Factor::Password).await,
            Err(_) => Auth::reject(),
        }
    }

    /// Answers a shell, exec or other subsystem request: the request is taken so
    /// the client shows our message (on stderr) and exit status 1, instead of an
    /// anonymous "request failed".
    fn refuse_channel(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        self.channels.remove(&channel);
        session.channel_success(channel)?;
        session.extended_data(channel, 1, ONLY_SFTP.as_bytes().to_vec())?;
        session.exit_status_request(channel, 1)?;
        session.eof(channel)?;
        session.close(channel)
    }
}

impl russh::server::Handler for SshHandler {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(self.password_login(user, password).await)
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        let Some(mut response) = response else {
            return Ok(Auth::Partial {
                name: "".into(),
                instructions: "".into(),
                prompts: vec![("Password: ".into(), false)].into(),
            });
        };
        let answer = response.next().unwrap_or_default();
        let password = String::from_utf8_lossy(&answer).into_owned();
        Ok(self.password_login(user, &password).await)
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Only a query: no failure is counted, clients offer their keys in turn.
        if self.ctx.auth.defender().banned(self.remote.ip()).is_some() {
            return Ok(Auth::reject());
        }
        Ok(if self.ctx.auth.accepts_key(user, offer.public_key).await {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let key: &PublicKey = key.public_key;
        match self
            .ctx
            .auth
            .public_key(Protocol::Sftp, self.remote, user, key)
            .await
        {
            Ok(u) => Ok(self.passed(u, Factor::Key).await),
            Err(_) => Ok(Auth::reject()),
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.user.is_some() {
            self.channels.insert(channel.id(), channel);
            reply.accept().await;
        }
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(user), true) = (self.user.clone(), name == "sftp") else {
            return self.refuse_channel(id, session);
        };
        let Some(channel) = self.channels.remove(&id) else {
            return session.channel_failure(id);
        };
        session.channel_success(id)?;
        let handle = session.handle();
        let files = Arc::new(crate::session::Session::new(
            user,
            Protocol::Sftp,
            Some(self.remote),
            self.ctx.vfs.clone(),
            self.ctx.audit.clone(),
        ));
        let max_handles = self.ctx.config.max_handles;
        let symlinks = self.ctx.config.symlinks;
        let budget = self.ctx.vfs.budget().clone();
        let (gone, alive) = (self.gone.clone(), self.alive.clone());
        tokio::spawn(async move {
            let _alive = alive;
            if let Err(e) = files.ensure_home().await {
                tracing::error!(user = %files.user().name, error = %e, "cannot prepare the home directory");
            }
            let (mut read_half, write_half) = channel.split();
            super::dispatch::run(
                (read_half.make_reader(), write_half),
                files,
                (max_handles, symlinks),
                gone,
                budget,
            )
            .await;
            // russh-sftp's loop never closes the channel and some clients (JSch,
            // Cyberduck) wait for it: end it explicitly, in sshd's order. The exit
            // status must come before EOF: OpenSSH may close on EOF, and scp then
            // reports a failure for want of an exit status.
            let _ = handle.exit_status_request(id, 0).await;
            let _ = handle.eof(id).await;
            // CLOSE last, queued after the two messages above.
            let _ = handle.close(id).await;
        });
        Ok(())
    }

    async fn shell_request(
        &mut self,
        id: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_channel(id, session)
    }

    /// `scp -t`/`scp -f` and the checksum commands run (see [`crate::scp`]); any
    /// other command is refused as before.
    async fn exec_request(
        &mut self,
        id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(user), Some(request)) = (self.user.clone(), crate::scp::parse(data)) else {
            return self.refuse_channel(id, session);
        };
        let Some(channel) = self.channels.remove(&id) else {
            return session.channel_failure(id);
        };
        session.channel_success(id)?;
        let handle = session.handle();
        let files = crate::session::Session::new(
            user,
            Protocol::Sftp,
            Some(self.remote),
            self.ctx.vfs.clone(),
            self.ctx.audit.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = files.ensure_home().await {
                tracing::error!(user = %files.user().name, error = %e, "cannot prepare the home directory");
            }
            let stderr = channel.make_writer_ext(Some(1));
            let mut stream = channel.into_stream();
            let status = crate::scp::run(request, &files, &mut stream, stderr).await;
            // As for SFTP: exit status, EOF, then CLOSE when the stream drops.
            let _ = handle.exit_status_request(id, status).await;
            let _ = handle.eof(id).await;
            drop(stream);
        });
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        id: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // An SFTP channel is closed by its own task once the replies are out.
        if self.channels.remove(&id).is_some() {
            session.close(id)?;
        }
        Ok(())
    }
}

/// SFTP replies go to the channel as owned bytes: russh slices them into
/// packets without copying them first.
impl super::dispatch::ReplySink for russh::ChannelWriteHalf<russh::server::Msg> {
    async fn send(&mut self, bytes: bytes::Bytes) -> std::io::Result<()> {
        self.data_bytes(bytes)
            .await
            .map_err(|_| std::io::ErrorKind::BrokenPipe.into())
    }
}
