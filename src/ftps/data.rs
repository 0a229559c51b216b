//! FTP data connections: passive listeners (PASV/EPSV) in the configured port range,
//! active connections (PORT/EPRT) back to the client, and TLS on top (PROT P).
//!
//! Both directions only ever connect wharf with the address of the control
//! connection's client: a passive port accepts no one else (no data theft), and an
//! active connection goes nowhere else (no FTP bounce). Behind a PROXY-protocol
//! balancer that is the address in the header (the session's peer): data
//! connections bypass the balancer and come straight from the client.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::error::{Error, ErrorKind, Result};

/// How long a client has to open the data connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A byte stream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type DataStream = Box<dyn Io>;

/// What the next transfer connects with.
pub enum Plan {
    None,
    Passive(TcpListener),
    Active(SocketAddr),
    /// A passive connection already accepted (see [`early`]).
    Connected(TcpStream),
}

/// Takes the passive connection of `plan` if the client has opened it already,
/// without waiting, and tells whether the client has also sent bytes on it: a
/// TLS ClientHello sent before the transfer command, as curl does. Such a
/// client drives its handshake without waiting for the 150 reply, so the
/// handshake can finish before it: then the tickets of an upload connection
/// reach the client before it writes, and it reads them at its close (see
/// `tls::reads_tickets_at_close`) however small the file. A client that waits
/// for the 150 before its ClientHello (Python's ftplib) has sent nothing, and
/// gets the 150 at once.
pub fn early(plan: Plan, client: IpAddr) -> (Plan, bool) {
    let Plan::Passive(listener) = plan else {
        return (plan, false);
    };
    // A std accept does not wait, and does not depend on the reactor having
    // seen the connection yet.
    let std_listener = match listener.into_std() {
        Ok(l) => l,
        Err(_) => return (Plan::None, false),
    };
    let taken = match std_listener.accept() {
        Ok((tcp, from)) if same_host(from.ip(), client) => Some(tcp),
        _ => None,
    };
    let Ok(listener) = TcpListener::from_std(std_listener) else {
        return (Plan::None, false);
    };
    let Some(tcp) = taken else {
        return (Plan::Passive(listener), false);
    };
    let spoke =
        tcp.set_nonblocking(true).is_ok() && matches!(tcp.peek(&mut [0u8; 1]), Ok(n) if n > 0);
    match TcpStream::from_std(tcp) {
        Ok(tcp) => (Plan::Connected(tcp), spoke),
        Err(_) => (Plan::Passive(listener), false),
    }
}

/// Binds a passive listener on `ip`, in `ports` (or any free port when `None`).
pub async fn listen(ip: IpAddr, ports: Option<&RangeInclusive<u16>>) -> Result<TcpListener> {
    let Some(range) = ports else {
        return Ok(TcpListener::bind((ip, 0)).await?);
    };
    // Start at a random port so concurrent sessions do not all probe the same ones.
    let span = u32::from(*range.end() - *range.start()) + 1;
    let offset = u16::from_be_bytes(crate::secret::random_bytes::<2>()) as u32 % span;
    for i in 0..span {
        let port = *range.start() + ((offset + i) % span) as u16;
        if let Ok(l) = TcpListener::bind((ip, port)).await {
            return Ok(l);
        }
    }
    Err(Error::new(
        ErrorKind::Unavailable,
        format!("no free passive port in {}-{}", range.start(), range.end()),
    ))
}

/// TLS on a data connection (PROT P).
pub struct DataTls {
    pub acceptors: super::tls::Acceptors,
    pub direction: super::tls::Direction,
    /// The control connection's session id (see [`super::tls`]).
    pub id: super::tls::SessionId,
    /// Refuse a connection that does not resume a session of the control
    /// connection's user.
    pub require_reuse: bool,
    pub user: String,
    pub owners: std::sync::Arc<super::tls::SessionOwners>,
}

/// Opens the data connection of `plan` for a client at `client`, with TLS if
/// `tls` is given.
pub async fn open(plan: Plan, client: IpAddr, tls: Option<DataTls>) -> Result<DataStream> {
    let tcp = match plan {
        Plan::None => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "use PASV, EPSV, PORT or EPRT first",
            ))
        }
        Plan::Passive(listener) => {
            tokio::time::timeout(CONNECT_TIMEOUT, accept_from(&listener, client))
                .await
                .map_err(|_| {
                    Error::new(ErrorKind::Unavailable, "no data connection within 30 s")
                })??
        }
        Plan::Connected(tcp) => tcp,
        Plan::Active(addr) => {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(addr))
                .await
                .map_err(|_| Error::new(ErrorKind::Unavailable, "data connection timed out"))??
        }
    };
    let _ = tcp.set_nodelay(true);
    match tls {
        None => Ok(Box::new(tcp)),
        Some(DataTls {
            acceptors,
            direction,
            id,
            require_reuse,
            user,
            owners,
        }) => {
            // Tickets handed out here carry the control connection's id too, so a
            // client that resumes with them next time still proves the same session.
            // The ClientHello is read first: how many tickets to send depends on
            // the client (`tls::reads_tickets_at_close`).
            let accept = async {
                let start =
                    tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
                        .await?;
                let config = acceptors.data(direction, &start.client_hello());
                start
                    .into_stream_with(config, |c| c.set_resumption_data(&id))
                    .await
            };
            let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, accept)
                .await
                .map_err(|_| {
                    Error::new(
                        ErrorKind::Unavailable,
                        "TLS on the data connection timed out",
                    )
                })?
                .map_err(|e| {
                    Error::new(
                        ErrorKind::PermissionDenied,
                        "TLS on the data connection failed",
                    )
                    .with_source(e)
                })?;
            if require_reuse && !owners.resumed(stream.get_ref().1, &id, &user).await {
                // Close the TLS session cleanly: the client learns why on the
                // control connection.
                use tokio::io::AsyncWriteExt;
                let _ = stream.shutdown().await;
                linger(Box::new(stream));
                return Err(crate::reply::ftp_session_reuse_required());
            }
            Ok(Box::new(stream))
        }
    }
}

/// How long a data connection the server has finished writing (and closed with
/// close_notify) is kept open for the client's own close.
const LINGER: Duration = Duration::from_secs(10);

/// Most bytes read from a data connection being closed: a refused upload's client
/// may still be sending; reading (and dropping) what it sends lets it finish its
/// write and read the reply on the control connection instead of failing on a
/// reset.
const LINGER_BYTES: usize = 16 << 20;

/// Keeps a data connection the server is done with (after its close_notify) until
/// the client closes it too (its close_notify, or the end of the stream), at most
/// [`LINGER`] and [`LINGER_BYTES`], in its own task so the reply is not held up.
/// Closing the socket first would let the client's close_notify or last writes
/// meet a closed socket, answered with a reset that can discard what the client
/// has not read yet.
pub fn linger(mut stream: DataStream) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let drain = async {
            let mut total = 0;
            while total < LINGER_BYTES {
                match tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => total += n,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    });
}

/// Accepts the first connection from `client`; others are dropped.
async fn accept_from(listener: &TcpListener, client: IpAddr) -> Result<TcpStream> {
    loop {
        let (tcp, from) = listener.accept().await?;
        if same_host(from.ip(), client) {
            return Ok(tcp);
        }
        tracing::warn!(%from, expected = %client, "data connection from another address refused");
    }
}

/// Compares addresses, seeing IPv4-mapped IPv6 addresses as IPv4.
pub fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// Whether an active-mode target is acceptable: the client's own address, and not a
/// privileged port (which a bounce attack would aim at).
pub fn active_allowed(target: SocketAddr, client: IpAddr) -> bool {
    same_host(target.ip(), client) && target.port() >= 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_targets_must_be_the_client() {
        let client: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(active_allowed("127.0.0.1:40000".parse().unwrap(), client));
        assert!(!active_allowed("127.0.0.2:40000".parse().unwrap(), client));
        assert!(!active_allowed("127.0.0.1:25".parse().unwrap(), client));
        assert!(active_allowed(
            "[::ffff:127.0.0.1]:40000".parse().unwrap(),
            client
        ));
    }

    #[tokio::test]
    async fn passive_ports_come_from_the_range() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let base = crate::secret::random_bytes::<1>()[0] as u16 * 50 + 40_000;
        let range = base..=base + 3;
        let l = listen(ip, Some(&range)).await.unwrap();
        assert!(range.contains(&l.local_addr().unwrap().port()));
    }
}
