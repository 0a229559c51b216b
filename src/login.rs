//! Logins for every protocol: password and public-key checks, the defender, and the
//! audit records of successes and failures, in one place.
//!
//! A failure always answers the same way (whatever the reason) and takes the same
//! time: unknown users and users without a password still cost one argon2
//! verification. The real reason goes to the audit log only.

use std::net::SocketAddr;
use std::sync::Arc;

use russh::keys::PublicKey;

use crate::audit::{AuditEvent, AuditLog, Outcome};
use crate::cluster::tries;
use crate::defender::{Attempt, Defender, Refused, Verdict};
use crate::error::{Error, ErrorKind, Result};
use crate::net::KnownAddresses;
use crate::policy::Protocol;
use crate::secret;
use crate::store::{Db, User};

#[derive(Clone)]
pub struct Authenticator {
    db: Db,
    defender: Arc<Defender>,
    audit: AuditLog,
    /// Addresses that logged in; the listeners keep slots for them.
    known: Arc<KnownAddresses>,
}

/// How long a try waits for a slot that other nodes' tries hold.
const SHARED_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A try reserved on this node and, for every node, in the store.
struct Try<'a> {
    attempt: Attempt<'a>,
    shared: Option<tries::SharedTry>,
}

fn refused() -> Error {
    Error::new(ErrorKind::AuthFailed, "authentication failed")
}

impl Authenticator {
    pub fn new(db: Db, defender: Arc<Defender>, audit: AuditLog) -> Self {
        Authenticator {
            db,
            defender,
            audit,
            known: Arc::new(KnownAddresses::default()),
        }
    }

    /// Addresses with a successful login lately.
    pub fn known(&self) -> Arc<KnownAddresses> {
        self.known.clone()
    }

    pub fn defender(&self) -> &Defender {
        &self.defender
    }

    fn event(protocol: Protocol, remote: SocketAddr, name: &str, action: &str) -> AuditEvent {
        AuditEvent::new(protocol, action)
            .remote(remote)
            .actor(name.to_string())
    }

    /// Refuses a banned address before any credential is looked at.
    pub async fn check_address(
        &self,
        protocol: Protocol,
        remote: SocketAddr,
        name: &str,
    ) -> Result<()> {
        if let Some(left) = self.defender.banned(remote.ip()) {
            self.audit
                .record(
                    Self::event(protocol, remote, name, "login_failed")
                        .outcome(Outcome::Denied)
                        .detail(format!("address locked out for {}s more", left.as_secs())),
                )
                .await;
            return Err(refused());
        }
        Ok(())
    }

    /// Reserves a try for the address before any credential is checked (see
    /// [`Defender::attempt`]), on this node and then in the store for every
    /// node (`cluster::tries`); a banned address is refused and audited.
    async fn reserve(&self, protocol: Protocol, remote: SocketAddr, name: &str) -> Result<Try<'_>> {
        let attempt = match self.defender.attempt(remote.ip()).await {
            Ok(attempt) => attempt,
            Err(why) => return Err(self.deny(protocol, remote, name, why).await),
        };
        let config = self.defender.config();
        if config.max_failures == 0 || config.ban.is_zero() {
            return Ok(Try {
                attempt,
                shared: None,
            });
        }
        // Another node's tries fill the slots: wait for one, or for its ban.
        let deadline = tokio::time::Instant::now() + SHARED_WAIT;
        loop {
            match tries::reserve(&self.db, remote.ip(), config).await? {
                tries::Reserved::Try(shared) => {
                    return Ok(Try {
                        attempt,
                        shared: Some(shared),
                    })
                }
                tries::Reserved::Banned(left) => {
                    self.defender.restore_ban(remote.ip(), left);
                    drop(attempt);
                    return Err(self
                        .deny(protocol, remote, name, Refused::Banned(left))
                        .await);
                }
                tries::Reserved::Full => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.deny(protocol, remote, name, Refused::Busy).await);
            }
            tokio::time::sleep(crate::defender::BAN_POLL / 2).await;
        }
    }

    /// Audits a try refused before its credentials were looked at.
    async fn deny(
        &self,
        protocol: Protocol,
        remote: SocketAddr,
        name: &str,
        why: Refused,
    ) -> Error {
        let detail = match why {
            Refused::Banned(left) => {
                format!("address locked out for {}s more", left.as_secs())
            }
            Refused::Busy => "too many logins at once from this address".to_string(),
        };
        self.audit
            .record(
                Self::event(protocol, remote, name, "login_failed")
                    .outcome(Outcome::Denied)
                    .detail(detail),
            )
            .await;
        refused()
    }

    /// Counts a failed try on every node; bans the address (in the store,
    /// and here at once) when the failures of all nodes reach the limit.
    async fn fail_shared(&self, shared: tries::SharedTry, ip: std::net::IpAddr) -> Verdict {
        let config = self.defender.config();
        match shared.failed().await {
            Ok(n) if config.max_failures > 0 && n >= config.max_failures => {
                if let Err(e) = tries::ban(&self.db, ip, config.ban).await {
                    tracing::warn!(remote = %ip, error = %e, "could not store a ban for the other nodes");
                }
                self.defender.restore_ban(ip, config.ban);
                Verdict::Banned(config.ban)
            }
            Ok(_) => Verdict::Allowed,
            Err(e) => {
                tracing::warn!(remote = %ip, error = %e, "could not count a failed login in the store");
                Verdict::Allowed
            }
        }
    }

    async fn load(&self, name: &str) -> Result<Option<User>> {
        let n = name.to_string();
        self.db.run(move |s| s.user_get(&n)).await
    }

    /// Checks a password login; the user must be enabled and allowed `protocol`.
    pub async fn password(
        &self,
        protocol: Protocol,
        remote: SocketAddr,
        name: &str,
        password: &str,
    ) -> Result<User> {
        let attempt = self.reserve(protocol, remote, name).await?;
        let user = self.load(name).await?;
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let pw = password.to_string();
        let matched = tokio::task::spawn_blocking(move || match hash {
            Some(h) => secret::verify_password(&pw, &h),
            None => {
                secret::verify_dummy(&pw);
                false
            }
        })
        .await
        .map_err(|e| Error::internal("password check failed").with_source(e))?;
        let why = match &user {
            None => Some("unknown user"),
            Some(u) if u.password_hash.is_none() => Some("no password set"),
            Some(_) if !matched => Some("wrong password"),
            Some(u) => refusal(u, protocol),
        };
        self.conclude(attempt, protocol, remote, name, user, why, "password")
            .await
    }

    /// Records a completed login (for two-factor accounts, after the second factor).
    pub async fn record_login(
        &self,
        protocol: Protocol,
        remote: SocketAddr,
        name: &str,
        method: &str,
    ) {
        self.known.remember(remote.ip());
        self.audit
            .record(Self::event(protocol, remote, name, "login").detail(method.to_string()))
            .await;
    }

    /// Whether `name` may log in with `key` (an offer, before any signature): no
    /// audit and no defender count, since clients offer several keys in turn.
    pub async fn accepts_key(&self, name: &str, key: &PublicKey) -> bool {
        let n = name.to_string();
        match self.db.run(move |s| s.keys_of(&n)).await {
            Ok(keys) => keys.iter().any(|k| same_key(&k.openssh, key)),
            Err(_) => false,
        }
    }

    /// Completes a public-key login whose signature the SSH layer has verified.
    pub async fn public_key(
        &self,
        protocol: Protocol,
        remote: SocketAddr,
        name: &str,
        key: &PublicKey,
    ) -> Result<User> {
        let attempt = self.reserve(protocol, remote, name).await?;
        let user = self.load(name).await?;
        let why = match &user {
            None => Some("unknown user"),
            Some(_) if !self.accepts_key(name, key).await => Some("key not allowed"),
            Some(u) => refusal(u, protocol),
        };
        self.conclude(attempt, protocol, remote, name, user, why, "publickey")
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn conclude(
        &self,
        attempt: Try<'_>,
        protocol: Protocol,
        remote: SocketAddr,
        name: &str,
        user: Option<User>,
        why: Option<&str>,
        method: &str,
    ) -> Result<User> {
        match (user, why) {
            (Some(user), None) => {
                // The store's slot first: a try waiting on this node for the
                // local slot then finds the store's free too.
                if let Some(shared) = attempt.shared {
                    shared.succeeded().await;
                }
                attempt.attempt.succeeded();
                // A two-factor account is logged in only once both factors passed;
                // the front-end records it with `record_login`.
                if !user.key_and_password {
                    self.record_login(protocol, remote, name, method).await;
                }
                Ok(user)
            }
            (_, why) => {
                let why = why.unwrap_or("refused");
                let shared = match attempt.shared {
                    Some(t) => self.fail_shared(t, remote.ip()).await,
                    None => Verdict::Allowed,
                };
                let local = attempt.attempt.failed();
                let verdict = match shared {
                    Verdict::Banned(_) => shared,
                    Verdict::Allowed => local,
                };
                self.audit
                    .record(
                        Self::event(protocol, remote, name, "login_failed")
                            .outcome(Outcome::Denied)
                            .detail(format!("{method}: {why}")),
                    )
                    .await;
                if let Verdict::Banned(for_) = verdict {
                    tracing::warn!(remote = %remote.ip(), ban_secs = for_.as_secs(), "address locked out after repeated login failures");
                    self.audit
                        .record(
                            AuditEvent::new(protocol, "address_banned")
                                .remote(remote)
                                .outcome(Outcome::Denied)
                                .detail(format!("locked out for {}s", for_.as_secs())),
                        )
                        .await;
                }
                Err(refused())
            }
        }
    }
}

/// Why an account that proved its identity still may not log in (also asked
/// again at every request of a staff web session).
pub fn refusal(user: &User, protocol: Protocol) -> Option<&'static str> {
    if !user.enabled {
        Some("account disabled")
    } else if !user.protocols.has(protocol) {
        Some("protocol not allowed for this account")
    } else if user.key_and_password && protocol != Protocol::Sftp {
        Some("this account needs a key and a password, which only SFTP can check")
    } else {
        None
    }
}

fn same_key(stored: &str, offered: &PublicKey) -> bool {
    PublicKey::from_openssh(stored)
        .map(|k| k.key_data() == offered.key_data())
        .unwrap_or(false)
}
