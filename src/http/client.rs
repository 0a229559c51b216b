//! Who a request comes from when the link server stands behind reverse proxies.
//!
//! `X-Forwarded-For`, `Forwarded` (RFC 7239 `for=`/`proto=`) and
//! `X-Forwarded-Proto` are believed only when the TCP peer is in
//! `[http] trusted_proxies`; anyone else could write them. The client is the
//! right-most forwarded address that is not itself a trusted proxy (each proxy
//! appends the address it saw, so what lies left of the first untrusted hop is
//! the client's own claim). This is the only place that reads these headers.

use std::net::{IpAddr, SocketAddr};

use hyper::HeaderMap;

use crate::proxy::{trusted, Cidr};

/// The request's client as the rest of the link server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub addr: SocketAddr,
    /// A trusted proxy says the visitor came over HTTPS.
    pub https: bool,
}

/// Derives the client of a request that arrived from `peer`.
pub fn derive(proxies: &[Cidr], peer: SocketAddr, headers: &HeaderMap) -> Client {
    let plain = Client {
        addr: peer,
        https: false,
    };
    if proxies.is_empty() || !trusted(proxies, peer.ip()) {
        return plain;
    }
    let xff = joined(headers, "x-forwarded-for");
    let forwarded = joined(headers, "forwarded");
    let chain: Vec<Option<SocketAddr>> = if !xff.is_empty() {
        xff.split(',').map(|s| node(s.trim())).collect()
    } else {
        forwarded
            .split(',')
            .map(|element| param(element, "for").and_then(|v| node(&v)))
            .collect()
    };
    let mut addr = peer;
    for hop in chain.iter().rev() {
        match hop {
            Some(a) if trusted(proxies, a.ip()) => continue,
            Some(a) => {
                addr = *a;
                break;
            }
            // Garbage or an obfuscated name: nothing to the left can be believed.
            None => break,
        }
    }
    let xfp = joined(headers, "x-forwarded-proto");
    let proto = if !xfp.is_empty() {
        xfp.rsplit(',').next().map(|s| s.trim().to_string())
    } else {
        forwarded.rsplit(',').next().and_then(|e| param(e, "proto"))
    };
    Client {
        addr,
        https: proto.is_some_and(|p| p.eq_ignore_ascii_case("https")),
    }
}

/// Every value of header `name`, in order, joined as one list.
fn joined(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
}

/// The value of `key` in one `Forwarded` element (`for=1.2.3.4;proto=https`).
fn param(element: &str, key: &str) -> Option<String> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// One hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
/// A hop without a port gets port 0.
fn node(s: &str) -> Option<SocketAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 0));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    inner
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, 0))
}

tokio::task_local! {
    /// Whether the request being answered came over HTTPS through a trusted
    /// proxy; read by [`super::HttpContext::secure`] when it builds cookies.
    static FORWARDED_HTTPS: bool;
}

/// Runs `f` (a request's handling) knowing whether its client came over HTTPS.
pub async fn scope<F: std::future::Future>(client: Client, f: F) -> F::Output {
    FORWARDED_HTTPS.scope(client.https, f).await
}

/// Whether the current request came over HTTPS through a trusted proxy.
pub fn forwarded_https() -> bool {
    FORWARDED_HTTPS.try_with(|h| *h).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<Cidr> {
        items.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_peers() {
        let proxies = list(&["10.0.0.0/8", "127.0.0.1/32"]);
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let stranger: SocketAddr = "192.0.2.5:5000".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.1.1.1")]);
        assert_eq!(
            derive(&proxies, peer, &h).addr.ip().to_string(),
            "203.0.113.7"
        );
        assert_eq!(derive(&proxies, stranger, &h).addr, stranger);
        assert_eq!(derive(&[], peer, &h).addr, peer);
        let all_proxies = headers(&[("x-forwarded-for", "10.2.2.2")]);
        assert_eq!(derive(&proxies, peer, &all_proxies).addr, peer);
        let garbage = headers(&[("x-forwarded-for", "203.0.113.7, nonsense, 10.1.1.1")]);
        assert_eq!(derive(&proxies, peer, &garbage).addr, peer);
        let fwd = headers(&[(
            "forwarded",
            "for=198.51.100.1, for=\"[2001:db8::17]:4711\";proto=https",
        )]);
        let c = derive(&proxies, peer, &fwd);
        assert_eq!(c.addr.to_string(), "[2001:db8::17]:4711");
        assert!(c.https);
    }

    #[test]
    fn the_scheme_counts_only_from_trusted_peers() {
        let proxies = list(&["127.0.0.1"]);
        let h = headers(&[("x-forwarded-proto", "https")]);
        assert!(derive(&proxies, "127.0.0.1:1".parse().unwrap(), &h).https);
        assert!(!derive(&proxies, "127.0.0.2:1".parse().unwrap(), &h).https);
    }
}
