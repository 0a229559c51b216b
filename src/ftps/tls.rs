//! TLS for FTPS: the certificate (configured PEM files, or a self-signed one
//! generated into the data directory on first start) and the rustls server
//! configuration shared by control and data connections.
//!
//! TLS 1.2 and 1.3 only. The pair is re-read on SIGHUP (`crate::certs`).
//!
//! Data connections resume the control connection's TLS session (lftp, curl,
//! FileZilla, WinSCP, rclone do; `[ftps] require_ssl_reuse` makes it a rule, as
//! vsftpd's option of that name). For TLS 1.3 that needs:
//! - stateless tickets (a rustls `Ticketer`): a client such as Python's `ssl`, Go or
//!   OpenSSL-based ones present the control connection's one ticket again on every
//!   data connection, which a stateful store would honour only once;
//! - several tickets from the control connection, and fresh ones from download
//!   data connections, for clients that use each ticket once (rustls);
//! - no tickets on upload data connections for clients that only write (Go's TLS
//!   in rclone, Java): they never read them, and closing a socket with unread
//!   bytes makes the client's kernel reset the connection and drop the upload's
//!   unsent tail;
//! - but tickets on upload data connections for OpenSSL clients (curl): OpenSSL
//!   uses a TLS 1.3 session once, so curl needs a fresh ticket from each data
//!   connection for the next one, and it reads them at close (one `SSL_read`
//!   before its close_notify, "to avoid an RST"). Without them curl's second
//!   upload in one run is refused (vsftpd fails the same run at the third).
//!   OpenSSL is recognised by its default TLS 1.3 suite order
//!   ([`reads_tickets_at_close`]); anything else gets none.
//!
//! Every session carries its control connection's random id as resumption data
//! (integrity-protected by rustls), so a data connection can be checked to have
//! resumed a session of this user's control connections ([`SessionOwners`]), not
//! any session of the gateway (which anyone gets with AUTH TLS, before a login).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::server::{ClientHello, ServerSessionMemoryCache};
use rustls::{CipherSuite, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::certs::ReloadableCert;
use crate::error::{Error, Result};

pub const CERT_FILE: &str = "ftps_cert.pem";
pub const KEY_FILE: &str = "ftps_key.pem";

/// Loads `cert` and `key` (PEM), generating a self-signed pair there if both are
/// missing and `generate` is set. The certificate is served through a
/// [`ReloadableCert`], returned too, so SIGHUP can replace it for new sessions.
pub fn server_config(
    cert: &Path,
    key: &Path,
    generate: bool,
) -> Result<(Arc<ServerConfig>, Arc<ReloadableCert>)> {
    if generate && !cert.exists() && !key.exists() {
        self_signed(cert, key)?;
    }
    let certs = ReloadableCert::load("FTPS", cert, key)?;
    let mut config = ServerConfig::builder_with_provider(crate::certs::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::internal("TLS versions").with_source(e))?
        .with_no_client_auth()
        .with_cert_resolver(certs.clone());
    // TLS 1.2 session ids; TLS 1.2 and 1.3 tickets come from the ticketer.
    config.session_storage = ServerSessionMemoryCache::new(4096);
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
        .map_err(|e| Error::internal("TLS session tickets").with_source(e))?;
    config.send_tls13_tickets = CONTROL_TICKETS;
    Ok((Arc::new(config), certs))
}

/// TLS 1.3 tickets sent on a control connection (rustls clients keep up to 8).
const CONTROL_TICKETS: usize = 8;
/// TLS 1.3 tickets sent on a download or listing data connection.
const DOWNLOAD_TICKETS: usize = 2;

/// The same configuration (certificate, session cache, ticket keys) with the
/// number of TLS 1.3 tickets each kind of connection sends.
#[derive(Clone)]
pub struct Acceptors {
    pub control: TlsAcceptor,
    /// Data connections the server writes to (RETR, LIST, NLST, MLSD).
    download: Arc<ServerConfig>,
    /// Data connections the client writes to (STOR, APPE, STOU): no tickets...
    upload: Arc<ServerConfig>,
    /// ...unless the client reads them at close.
    upload_tickets: Arc<ServerConfig>,
}

/// Which way a data connection's bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Download,
    Upload,
}

impl Acceptors {
    pub fn new(control: Arc<ServerConfig>) -> Acceptors {
        let with_tickets = |n: usize| {
            let mut c = (*control).clone();
            c.send_tls13_tickets = n;
            Arc::new(c)
        };
        Acceptors {
            download: with_tickets(DOWNLOAD_TICKETS),
            upload: with_tickets(0),
            upload_tickets: with_tickets(DOWNLOAD_TICKETS),
            control: TlsAcceptor::from(control),
        }
    }

    /// The configuration for a data connection going `direction`, whose client
    /// said `hello`.
    pub fn data(&self, direction: Direction, hello: &ClientHello<'_>) -> Arc<ServerConfig> {
        match direction {
            Direction::Download => self.download.clone(),
            Direction::Upload if reads_tickets_at_close(hello.cipher_suites()) => {
                self.upload_tickets.clone()
            }
            Direction::Upload => self.upload.clone(),
        }
    }
}

/// OpenSSL's default TLS 1.3 suites, in its order. Go offers AES-128-GCM first,
/// Java ChaCha20 last, GnuTLS adds AES-128-CCM, rustls puts AES-128-GCM second.
const OPENSSL_TLS13: [CipherSuite; 3] = [
    CipherSuite::TLS13_AES_256_GCM_SHA384,
    CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    CipherSuite::TLS13_AES_128_GCM_SHA256,
];

/// Whether a client offering `suites` is OpenSSL with its defaults (curl,
/// Python's `ssl`, PHP), which reads what the server sent before closing a
/// data connection it wrote to, so tickets there are safe and curl needs them.
pub fn reads_tickets_at_close(suites: &[CipherSuite]) -> bool {
    let tls13: Vec<CipherSuite> = suites
        .iter()
        .copied()
        .filter(|s| u16::from(*s) >> 8 == 0x13)
        .collect();
    tls13 == OPENSSL_TLS13
}

/// A control connection's id, embedded in every session ticket it and its data
/// connections hand out.
pub type SessionId = [u8; 16];

/// Which user each control connection's TLS sessions belong to, so a data
/// connection is accepted when it resumes a session of a control connection
/// logged in as the same user. Not only its own control connection's: a client
/// with parallel connections and one session cache (rclone, Go's TLS) presents
/// whichever connection's ticket it stored last, possibly one of a connection
/// still logging in.
#[derive(Default)]
pub struct SessionOwners {
    map: std::sync::Mutex<HashMap<SessionId, Owner>>,
}

struct Owner {
    /// `None` until its control connection logs in.
    user: Option<String>,
    /// When its control connection ended; its tickets stay valid a while.
    ended: Option<Instant>,
}

/// How long the sessions of an ended control connection still count (a client's
/// cache may hold them; rustls' ticket keys rotate every 6 hours).
const ENDED_SESSIONS_KEPT: Duration = Duration::from_secs(6 * 3600);
/// Most control connections remembered (live ones are never forgotten).
const MAX_OWNERS: usize = 20_000;
/// How long a data connection waits for the login of the control connection whose
/// session it resumed (parallel connections of one client log in together: a
/// Go client's one cached ticket may be that of a connection still logging in).
/// The wait ends when that login ends; a login takes at most the login grace
/// time (30 s by default), and a slow password hash on a busy machine took
/// longer than the 5 s this was (rclone's matrix case got 522 twice under load).
const LOGIN_WAIT: Duration = Duration::from_secs(30);

impl SessionOwners {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Owner>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The control connection `id` finished its TLS handshake.
    pub fn started(&self, id: SessionId) {
        let mut map = self.lock();
        if map.len() >= MAX_OWNERS {
            // Pruned only when full (at most about 2 MB): the expired, then, with
            // many short sessions, the longest-ended first.
            map.retain(|_, o| o.ended.is_none_or(|t| t.elapsed() < ENDED_SESSIONS_KEPT));
            let mut ended: Vec<(Instant, SessionId)> = map
                .iter()
                .filter_map(|(id, o)| o.ended.map(|t| (t, *id)))
                .collect();
            ended.sort_unstable();
            let excess = (map.len() + 1).saturating_sub(MAX_OWNERS);
            for (_, old) in ended.into_iter().take(excess.max(MAX_OWNERS / 10)) {
                map.remove(&old);
            }
        }
        map.insert(
            id,
            Owner {
                user: None,
                ended: None,
            },
        );
    }

    /// The control connection `id` logged in as `user`.
    pub fn logged_in(&self, id: &SessionId, user: &str) {
        if let Some(o) = self.lock().get_mut(id) {
            o.user = Some(user.to_string());
        }
    }

    /// The control connection `id` ended.
    pub fn ended(&self, id: &SessionId) {
        let mut map = self.lock();
        match map.get(id).map(|o| o.user.is_some()) {
            Some(true) => map.get_mut(id).unwrap().ended = Some(Instant::now()),
            Some(false) => {
                map.remove(id);
            }
            None => {}
        }
    }

    /// `Some(whether user owns id)`, or `None` while its owner is logging in.
    fn owner_is(&self, id: &SessionId, user: &str) -> Option<bool> {
        match self.lock().get(id) {
            None => Some(false),
            Some(Owner { user: None, .. }) => None,
            Some(Owner { user: Some(u), .. }) => Some(u == user),
        }
    }

    /// Whether a finished data-connection handshake resumed a session of the
    /// control connection `id` or of another one logged in as `user`. Under TLS
    /// 1.2 rustls does not hand back a resumed session's data, so there any
    /// session this gateway issued counts (vsftpd's rule).
    pub async fn resumed(
        &self,
        conn: &rustls::ServerConnection,
        id: &SessionId,
        user: &str,
    ) -> bool {
        if conn.handshake_kind() != Some(rustls::HandshakeKind::Resumed) {
            return false;
        }
        if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            return true;
        }
        let Some(Ok(theirs)) = conn.received_resumption_data().map(SessionId::try_from) else {
            return false;
        };
        if &theirs == id {
            return true;
        }
        let deadline = Instant::now() + LOGIN_WAIT;
        loop {
            match self.owner_is(&theirs, user) {
                Some(known) => return known,
                None if Instant::now() >= deadline => return false,
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

fn self_signed(cert: &Path, key: &Path) -> Result<()> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| Error::internal("generating the FTPS certificate").with_source(e))?;
    write_new(key, generated.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_new(cert, generated.cert.pem().as_bytes(), 0o600)?;
    tracing::info!(cert = %cert.display(), "generated a self-signed FTPS certificate");
    Ok(())
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::from(e).context(format!("writing {}", path.display())))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_owners_follow_logins_and_forget_old_ends() {
        let owners = SessionOwners::default();
        let (a, b) = ([1u8; 16], [2u8; 16]);
        owners.started(a);
        assert_eq!(owners.owner_is(&a, "acme"), None, "still logging in");
        owners.logged_in(&a, "acme");
        assert_eq!(owners.owner_is(&a, "acme"), Some(true));
        assert_eq!(owners.owner_is(&a, "bob"), Some(false));
        assert_eq!(owners.owner_is(&b, "acme"), Some(false), "unknown");
        owners.started(b);
        owners.ended(&b);
        assert_eq!(owners.owner_is(&b, "acme"), Some(false), "never logged in");
        owners.ended(&a);
        assert_eq!(
            owners.owner_is(&a, "acme"),
            Some(true),
            "kept after its end"
        );
        for i in 0..MAX_OWNERS as u32 + 5 {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            id[15] = 9;
            owners.started(id);
            owners.logged_in(&id, "acme");
            owners.ended(&id);
        }
        assert!(owners.lock().len() <= MAX_OWNERS);
        assert_eq!(
            owners.owner_is(&a, "acme"),
            Some(false),
            "the oldest end is forgotten"
        );
    }

    #[test]
    fn only_openssl_defaults_get_tickets_on_uploads() {
        // TLS 1.3 suites as each client offered them here (Debian 12), with a
        // TLS 1.2 suite mixed in as clients send them.
        let c = |v: &[u16]| v.iter().map(|&x| CipherSuite::from(x)).collect::<Vec<_>>();
        let curl = c(&[0x1302, 0x1303, 0x1301, 0xc02c]);
        let rclone = c(&[0x1301, 0x1302, 0x1303, 0xc02b]);
        let lftp = c(&[0x1302, 0x1303, 0x1301, 0x1304, 0xc02c]);
        let java = c(&[0x1302, 0x1301, 0x1303, 0xc02c]);
        assert!(reads_tickets_at_close(&curl));
        assert!(!reads_tickets_at_close(&rclone));
        assert!(!reads_tickets_at_close(&lftp));
        assert!(!reads_tickets_at_close(&java));
        assert!(!reads_tickets_at_close(&c(&[0xc02c])), "TLS 1.2 only");
    }

    #[test]
    fn generates_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join(CERT_FILE), dir.path().join(KEY_FILE));
        server_config(&c, &k, true).unwrap();
        let first = std::fs::read(&c).unwrap();
        server_config(&c, &k, true).unwrap();
        assert_eq!(std::fs::read(&c).unwrap(), first, "not regenerated");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::write(&c, "garbage").unwrap();
        assert!(server_config(&c, &k, false).is_err());
    }
}
