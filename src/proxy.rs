//! Addresses behind proxies: CIDR lists of trusted proxies, and the PROXY
//! protocol (HAProxy's v1 text line and v2 binary header) that a TCP load
//! balancer puts in front of an SFTP or FTPS connection to say who the client is.
//!
//! A listener with `proxy_protocol` set reads the header before the connection
//! meets the gate, so the per-address caps, the defender and the audit see the
//! real client. The header must arrive within [`HEADER_DEADLINE`], so a slow
//! proxy cannot hold a session slot.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How long a trusted proxy gets to send the whole PROXY header.
pub const HEADER_DEADLINE: Duration = Duration::from_secs(5);
/// How long a connection from an untrusted address is watched for a PROXY
/// header before it is handed over as is (SSH clients speak first at once).
const UNTRUSTED_LOOK: Duration = Duration::from_millis(150);

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// The longest v1 line the spec allows, CRLF included.
const V1_MAX: usize = 107;

/// An address range, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a /32
/// (or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen over an IPv6 socket is still that IPv4 client.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let whole = bits / 8;
    if a[..whole] != b[..whole] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an address or CIDR range"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Cidr { net, bits })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.bits)
    }
}

/// Whether `ip` is in any of `list`.
pub fn trusted(list: &[Cidr], ip: IpAddr) -> bool {
    list.iter().any(|c| c.contains(ip))
}

/// Parses config strings into ranges; the error names the bad entry.
pub fn parse_list(items: &[String]) -> Result<Vec<Cidr>, String> {
    items.iter().map(|s| s.parse()).collect()
}

/// A new connection on a PROXY-protocol listener: from a trusted proxy, its
/// header is read and the client's address returned; from anyone else, a
/// connection that starts with a PROXY header is refused (`None`), others pass
/// with their own address.
pub async fn arrive(
    mut tcp: TcpStream,
    peer: SocketAddr,
    trusted_list: &[Cidr],
) -> Option<(TcpStream, SocketAddr)> {
    if trusted(trusted_list, peer.ip()) {
        match tokio::time::timeout(HEADER_DEADLINE, read_header(&mut tcp)).await {
            Ok(Ok(source)) => Some((tcp, source.unwrap_or(peer))),
            Ok(Err(why)) => {
                tracing::warn!(%peer, reason = why, "PROXY header missing or invalid; connection closed");
                None
            }
            Err(_) => {
                tracing::warn!(%peer, "no PROXY header within the deadline; connection closed");
                None
            }
        }
    } else {
        let mut first = [0u8; 12];
        let n = match tokio::time::timeout(UNTRUSTED_LOOK, tcp.peek(&mut first)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => return None,
            Err(_) => 0,
        };
        if n > 0 && looks_like_proxy(&first[..n]) {
            tracing::warn!(%peer, "PROXY header from an address not trusted to send one; connection closed");
            return None;
        }
        Some((tcp, peer))
    }
}

fn looks_like_proxy(first: &[u8]) -> bool {
    let starts = |sig: &[u8]| {
        let n = first.len().min(sig.len());
        first[..n] == sig[..n]
    };
    !first.is_empty() && (starts(V1_PREFIX) || starts(V2_SIGNATURE))
}

/// Reads one PROXY header (v1 or v2) and nothing more. `Ok(None)`: a header
/// that names no client (v1 `UNKNOWN`, v2 `LOCAL` health checks).
pub async fn read_header(tcp: &mut TcpStream) -> Result<Option<SocketAddr>, &'static str> {
    let mut head = [0u8; 6];
    tcp.read_exact(&mut head)
        .await
        .map_err(|_| "closed early")?;
    if &head == V1_PREFIX {
        let mut line = Vec::with_capacity(V1_MAX);
        line.extend_from_slice(&head);
        // Byte by byte: what follows the line belongs to the protocol.
        while !line.ends_with(b"\r\n") {
            if line.len() >= V1_MAX {
                return Err("v1 line too long");
            }
            let b = tcp.read_u8().await.map_err(|_| "closed early")?;
            line.push(b);
        }
        let text = std::str::from_utf8(&line[..line.len() - 2]).map_err(|_| "v1 not text")?;
        return parse_v1(text);
    }
    if head[..] != V2_SIGNATURE[..6] {
        return Err("no PROXY header");
    }
    let mut fixed = [0u8; 10];
    tcp.read_exact(&mut fixed)
        .await
        .map_err(|_| "closed early")?;
    if fixed[..6] != V2_SIGNATURE[6..] {
        return Err("bad v2 signature");
    }
    let (ver_cmd, family) = (fixed[6], fixed[7]);
    let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let mut body = vec![0u8; len];
    tcp.read_exact(&mut body)
        .await
        .map_err(|_| "closed early")?;
    parse_v2(ver_cmd, family, &body)
}

fn parse_v1(text: &str) -> Result<Option<SocketAddr>, &'static str> {
    let mut parts = text.split(' ');
    let (_proxy, proto) = (parts.next(), parts.next());
    match proto {
        Some("UNKNOWN") => Ok(None),
        Some("TCP4") | Some("TCP6") => {
            let src: IpAddr = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("bad v1 source")?;
            let _dst: IpAddr = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("bad v1 destination")?;
            let sport: u16 = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("bad v1 port")?;
            let _dport: u16 = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("bad v1 port")?;
            if parts.next().is_some() || (proto == Some("TCP4")) != src.is_ipv4() {
                return Err("bad v1 line");
            }
            Ok(Some(SocketAddr::new(src, sport)))
        }
        _ => Err("bad v1 protocol"),
    }
}

fn parse_v2(ver_cmd: u8, family: u8, body: &[u8]) -> Result<Option<SocketAddr>, &'static str> {
    if ver_cmd >> 4 != 2 {
        return Err("bad v2 version");
    }
    match ver_cmd & 0x0f {
        0 => return Ok(None), // LOCAL: the proxy's own health check
        1 => {}
        _ => return Err("bad v2 command"),
    }
    match family >> 4 {
        1 if body.len() >= 12 => {
            let src = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let port = u16::from_be_bytes([body[8], body[9]]);
            Ok(Some(SocketAddr::new(IpAddr::V4(src), port)))
        }
        2 if body.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&body[..16]);
            let port = u16::from_be_bytes([body[32], body[33]]);
            Ok(Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                port,
            )))
        }
        // UNSPEC or UNIX: no client address to take.
        0 | 3 => Ok(None),
        _ => Err("bad v2 address block"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_by_prefix() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.200.1.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let odd: Cidr = "192.168.4.0/22".parse().unwrap();
        assert!(odd.contains("192.168.7.255".parse().unwrap()));
        assert!(!odd.contains("192.168.8.0".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[test]
    fn v1_lines_and_v2_blocks_parse() {
        assert_eq!(
            parse_v1("PROXY TCP4 198.51.100.9 10.0.0.1 40000 22").unwrap(),
            Some("198.51.100.9:40000".parse().unwrap())
        );
        assert_eq!(parse_v1("PROXY UNKNOWN").unwrap(), None);
        assert!(parse_v1("PROXY TCP4 ::1 10.0.0.1 1 2").is_err());
        let mut body = vec![198, 51, 100, 9, 10, 0, 0, 1];
        body.extend_from_slice(&40000u16.to_be_bytes());
        body.extend_from_slice(&22u16.to_be_bytes());
        assert_eq!(
            parse_v2(0x21, 0x11, &body).unwrap(),
            Some("198.51.100.9:40000".parse().unwrap())
        );
        assert_eq!(parse_v2(0x20, 0x00, &[]).unwrap(), None);
        assert!(parse_v2(0x11, 0x11, &body).is_err());
    }

    #[test]
    fn proxy_starts_are_recognised() {
        assert!(looks_like_proxy(b"PROXY TCP4 "));
        assert!(looks_like_proxy(b"PRO"));
        assert!(looks_like_proxy(&V2_SIGNATURE[..]));
        assert!(looks_like_proxy(&V2_SIGNATURE[..3]));
        assert!(!looks_like_proxy(b"SSH-2.0-OpenSSH"));
    }
}
