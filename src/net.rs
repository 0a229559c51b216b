//! The accept loop every listener shares: who may connect, one task per
//! connection, and a graceful end — stop accepting, let sessions finish for a
//! while, ask the rest to close, then cut what is left.
//!
//! Who may connect is the [`Gate`]'s call, as OpenSSH's `MaxStartups` and
//! vsftpd's `max_per_ip` do it: a cap on sessions, a cap per address, a tighter
//! one per address on connections that have not logged in yet, and a quarter of
//! the sessions kept for addresses that have logged in before ([`KnownAddresses`]).
//! A connection still not logged in after the login grace time is closed. So
//! silent sockets from one address can hold neither the listener nor a login
//! slot of anyone else for long.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long running sessions may take to finish after shutdown begins.
pub const DRAIN: Duration = Duration::from_secs(10);
/// How long sessions asked to close get before they are cut.
const FORCE: Duration = Duration::from_secs(5);
/// How long a successful login makes its address "known".
const KNOWN_FOR: Duration = Duration::from_secs(7 * 86_400);
/// Connections whose PROXY header is pending, at least (else `max_sessions`).
const MIN_ARRIVING: usize = 64;
/// Most known addresses remembered (the oldest are forgotten first).
const MAX_KNOWN: usize = 100_000;

/// Who may connect to a listener (or to both FTPS listeners together).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_sessions: usize,
    pub max_per_address: usize,
    /// Connections of one address that have not logged in yet.
    pub max_unauthenticated_per_address: usize,
    /// Connections not logged in by then are closed; `None`: the protocol keeps
    /// its own deadline (HTTP's request head timeout).
    pub login_grace: Option<Duration>,
}

/// Addresses that logged in successfully lately (in memory only). Shared by
/// every listener: a partner known from SFTP is known to FTPS too.
#[derive(Default)]
pub struct KnownAddresses {
    seen: Mutex<HashMap<IpAddr, Instant>>,
}

impl KnownAddresses {
    pub fn remember(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut seen = self.seen.lock().expect("known addresses lock");
        if seen.len() >= MAX_KNOWN && !seen.contains_key(&ip) {
            // Rare (only at the cap): drop what expired, else the oldest.
            seen.retain(|_, at| now.duration_since(*at) < KNOWN_FOR);
            if seen.len() >= MAX_KNOWN {
                if let Some(oldest) = seen.iter().min_by_key(|(_, at)| **at).map(|(a, _)| *a) {
                    seen.remove(&oldest);
                }
            }
        }
        seen.insert(ip, now);
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let seen = self.seen.lock().expect("known addresses lock");
        seen.get(&ip).is_some_and(|at| at.elapsed() < KNOWN_FOR)
    }
}

#[derive(Default)]
struct Counts {
    open: usize,
    unauthenticated: usize,
}

#[derive(Default)]
struct GateState {
    open: usize,
    per_address: HashMap<IpAddr, Counts>,
}

/// Admits connections within [`Limits`]; see the module documentation.
pub struct Gate {
    limits: Limits,
    known: Arc<KnownAddresses>,
    state: Mutex<GateState>,
    /// Proxies whose connections start with a PROXY protocol header; empty: off.
    proxy_protocol: Arc<[crate::proxy::Cidr]>,
    /// Trusted reverse proxies: every visitor arrives from them, so the
    /// per-address caps would cap all visitors together; only `max_sessions`
    /// applies to them (the application keys its throttles on the forwarded
    /// address).
    uncapped: Vec<crate::proxy::Cidr>,
}

impl Gate {
    pub fn new(limits: Limits, known: Arc<KnownAddresses>) -> Arc<Gate> {
        Gate::proxied(limits, known, Vec::new())
    }

    /// A gate whose connections from `proxy_protocol` addresses start with a
    /// PROXY header naming the client (see [`crate::proxy`]).
    pub fn proxied(
        limits: Limits,
        known: Arc<KnownAddresses>,
        proxy_protocol: Vec<crate::proxy::Cidr>,
    ) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            known,
            state: Mutex::new(GateState::default()),
            proxy_protocol: proxy_protocol.into(),
            uncapped: Vec::new(),
        })
    }

    /// A gate for a listener behind the reverse proxies `trusted`, whose
    /// connections are not capped per address (see the `uncapped` field).
    pub fn behind(
        limits: Limits,
        known: Arc<KnownAddresses>,
        trusted: Vec<crate::proxy::Cidr>,
    ) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            known,
            state: Mutex::new(GateState::default()),
            proxy_protocol: Vec::new().into(),
            uncapped: trusted,
        })
    }

    /// A gate for a small service listener without logins (metrics, the HTTPS
    /// redirect): `max` connections, a quarter of them from one address.
    pub fn service(max: usize) -> Arc<Gate> {
        Gate::new(
            Limits {
                max_sessions: max,
                max_per_address: (max / 4).max(1),
                max_unauthenticated_per_address: (max / 4).max(1),
                login_grace: None,
            },
            Arc::new(KnownAddresses::default()),
        )
    }

    /// Sessions an address that never logged in may take: the rest is kept for
    /// known ones.
    fn open_to_strangers(&self) -> usize {
        self.limits.max_sessions - self.limits.max_sessions / 4
    }

    /// A ticket for a new connection from `ip`, or why not.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, &'static str> {
        let mut state = self.state.lock().expect("gate lock");
        let open = state.open;
        let counts = state.per_address.get(&ip);
        let (mine, waiting) = counts.map_or((0, 0), |c| (c.open, c.unauthenticated));
        if open >= self.limits.max_sessions {
            return Err("session limit reached");
        }
        let capped = !crate::proxy::trusted(&self.uncapped, ip);
        if capped && mine >= self.limits.max_per_address {
            return Err("per-address limit reached");
        }
        if capped && waiting >= self.limits.max_unauthenticated_per_address {
            return Err("too many connections from this address not logged in");
        }
        if capped && open >= self.open_to_strangers() && !self.known.contains(ip) {
            return Err("the remaining sessions are kept for known addresses");
        }
        state.open += 1;
        let c = state.per_address.entry(ip).or_default();
        c.open += 1;
        c.unauthenticated += 1;
        drop(state);
        let (authenticated, _) = watch::channel(false);
        Ok(Ticket(Arc::new(TicketInner {
            gate: self.clone(),
            ip,
            authenticated,
        })))
    }
}

/// A connection's place at the [`Gate`]; its counts are given back when the last
/// clone is dropped. Front-ends call [`Ticket::authenticated`] after a login.
#[derive(Clone)]
pub struct Ticket(Arc<TicketInner>);

struct TicketInner {
    gate: Arc<Gate>,
    ip: IpAddr,
    authenticated: watch::Sender<bool>,
}

impl Ticket {
    /// The connection has logged in (or, for HTTP, sent a whole request): it no
    /// longer counts as unauthenticated and its login grace time stops.
    pub fn authenticated(&self) {
        let changed = self.0.authenticated.send_if_modified(|done| {
            let first = !*done;
            *done = true;
            first
        });
        if changed {
            let mut state = self.0.gate.state.lock().expect("gate lock");
            if let Some(c) = state.per_address.get_mut(&self.0.ip) {
                c.unauthenticated = c.unauthenticated.saturating_sub(1);
            }
        }
    }

    /// Resolves once [`Ticket::authenticated`] was called.
    async fn logged_in(&self) {
        let mut rx = self.0.authenticated.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }
}

impl Drop for TicketInner {
    fn drop(&mut self) {
        let authenticated = *self.authenticated.borrow();
        let mut state = self.gate.state.lock().expect("gate lock");
        state.open = state.open.saturating_sub(1);
        if let Some(c) = state.per_address.get_mut(&self.ip) {
            c.open = c.open.saturating_sub(1);
            if !authenticated {
                c.unauthenticated = c.unauthenticated.saturating_sub(1);
            }
            if c.open == 0 {
                state.per_address.remove(&self.ip);
            }
        }
    }
}

/// Resolves when `ticket` has not logged in within `grace` (never otherwise).
async fn grace_over(ticket: &Ticket, grace: Duration) {
    if tokio::time::timeout(grace, ticket.logged_in())
        .await
        .is_ok()
    {
        std::future::pending::<()>().await;
    }
}

/// Serves `listener` until `shutdown` turns true. `handle` runs each connection
/// with its [`Ticket`] and a flag that turns true when the session should close
/// now; `refuse` answers a connection the `gate` turns away (protocols that can,
/// say why).
pub async fn serve<H, F, R, RF>(
    name: &'static str,
    listener: TcpListener,
    gate: Arc<Gate>,
    mut shutdown: watch::Receiver<bool>,
    handle: H,
    refuse: R,
) where
    H: Fn(TcpStream, SocketAddr, Ticket, watch::Receiver<bool>) -> F,
    F: Future<Output = ()> + Send + 'static,
    R: Fn(TcpStream) -> RF,
    RF: Future<Output = ()> + Send + 'static,
{
    let (force_tx, force_rx) = watch::channel(false);
    let mut sessions = JoinSet::new();
    // Connections whose PROXY header is still being read: before the gate, so
    // the gate counts the client's address; the header's deadline bounds them.
    let mut arriving: JoinSet<Option<(TcpStream, SocketAddr)>> = JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = crate::shutdown::stopped(&mut shutdown) => break,
            Some(arrived) = arriving.join_next(), if !arriving.is_empty() => match arrived {
                Ok(Some(a)) => a,
                _ => continue,
            },
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) if !gate.proxy_protocol.is_empty() => {
                    // Headers come from trusted balancers only (others are
                    // refused on their first bytes) and end by the deadline;
                    // the bound is a backstop against a flood.
                    if arriving.len() >= gate.limits.max_sessions.max(MIN_ARRIVING) {
                        tracing::warn!(listener = name, %peer, "too many PROXY headers pending; connection refused");
                        continue;
                    }
                    let trusted = gate.proxy_protocol.clone();
                    arriving.spawn(async move { crate::proxy::arrive(tcp, peer, &trusted).await });
                    continue;
                }
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let ticket = match gate.admit(peer.ip()) {
            Ok(t) => t,
            Err(why) => {
                tracing::warn!(listener = name, %peer, reason = why, "connection refused");
                tokio::spawn(refuse(tcp));
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let session = handle(tcp, peer, ticket.clone(), force_rx.clone());
        let grace = gate.limits.login_grace;
        let counted = crate::metrics::session(name);
        sessions.spawn(async move {
            let _counted = counted;
            match grace {
                Some(grace) => tokio::select! {
                    _ = session => {}
                    _ = grace_over(&ticket, grace) => {
                        tracing::info!(listener = name, %peer, "not logged in within the login grace time; connection closed");
                    }
                },
                None => session.await,
            }
            drop(ticket);
            crate::allocator::session_ended();
        });
        // Reap finished sessions so the set does not grow.
        while sessions.try_join_next().is_some() {}
    }
    drop(listener);
    arriving.abort_all();
    if sessions.is_empty() {
        return;
    }
    tracing::info!(
        listener = name,
        open = sessions.len(),
        "waiting for sessions to finish"
    );
    if tokio::time::timeout(DRAIN, all_done(&mut sessions))
        .await
        .is_ok()
    {
        return;
    }
    let _ = force_tx.send(true);
    if tokio::time::timeout(FORCE, all_done(&mut sessions))
        .await
        .is_err()
    {
        sessions.abort_all();
        while sessions.join_next().await.is_some() {}
    }
}

async fn all_done(sessions: &mut JoinSet<()>) {
    while sessions.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(max: usize, per: usize, unauth: usize) -> (Arc<Gate>, Arc<KnownAddresses>) {
        let known = Arc::new(KnownAddresses::default());
        let limits = Limits {
            max_sessions: max,
            max_per_address: per,
            max_unauthenticated_per_address: unauth,
            login_grace: None,
        };
        (Gate::new(limits, known.clone()), known)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn logins_free_the_unauthenticated_count_and_drops_free_everything() {
        let (g, _) = gate(100, 3, 2);
        let a = ip("192.0.2.1");
        let first = g.admit(a).unwrap();
        let second = g.admit(a).unwrap();
        assert!(g.admit(a).is_err(), "two waiting for login is the cap");
        assert!(g.admit(ip("192.0.2.2")).is_ok(), "other addresses go on");
        first.authenticated();
        first.clone().authenticated(); // once only
        let third = g.admit(a).unwrap();
        assert!(g.admit(a).is_err(), "three per address is the cap");
        drop((second, third));
        assert!(g.admit(a).is_ok());
        drop(first);
        assert!(g.state.lock().unwrap().per_address.is_empty());
        assert_eq!(g.state.lock().unwrap().open, 0);
    }

    #[test]
    fn trusted_reverse_proxies_are_not_capped_per_address() {
        let limits = Limits {
            max_sessions: 8,
            max_per_address: 1,
            max_unauthenticated_per_address: 1,
            login_grace: None,
        };
        let known = Arc::new(KnownAddresses::default());
        let g = Gate::behind(limits, known, vec!["10.0.0.0/8".parse().unwrap()]);
        let proxy = ip("10.0.0.5");
        let other = g.admit(ip("192.0.2.1")).unwrap();
        assert!(g.admit(ip("192.0.2.1")).is_err(), "others keep their cap");
        let held: Vec<Ticket> = (0..7).map(|_| g.admit(proxy).unwrap()).collect();
        assert!(g.admit(proxy).is_err(), "max_sessions still holds");
        drop((held, other));
    }

    #[test]
    fn a_quarter_of_the_sessions_is_kept_for_known_addresses() {
        let (g, known) = gate(8, 8, 8);
        let stranger = ip("192.0.2.1");
        let held: Vec<Ticket> = (0..6).map(|_| g.admit(stranger).unwrap()).collect();
        assert!(
            g.admit(ip("192.0.2.9")).is_err(),
            "strangers get six of eight"
        );
        known.remember(ip("198.51.100.7"));
        let a = g.admit(ip("198.51.100.7")).unwrap();
        let b = g.admit(ip("198.51.100.7")).unwrap();
        assert!(g.admit(ip("198.51.100.7")).is_err(), "eight is the cap");
        drop((held, a, b));
    }
}
