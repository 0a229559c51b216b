//! The defender: per-address lock-out against password guessing, shared by SFTP,
//! FTPS, the staff pages and the admin API.
//!
//! `max_failures` failed logins from one address within `window` ban that address
//! for `ban`. A banned address is refused before its credentials are even checked.
//! The link server keys its own defenders by (link, address) to throttle guesses
//! at one link's password or codes; those never touch the address lock-out.
//!
//! A try is counted *before* it is verified: [`Defender::attempt`] reserves a
//! slot, and the caller then reports the outcome ([`Attempt::failed`] or
//! [`Attempt::succeeded`]; dropping it gives the slot back). Past failures plus
//! tries in flight never exceed `max_failures`, so parallel guesses cannot get more
//! passwords checked than the limit: the rest wait for a slot and are refused as
//! soon as the ban falls.
//! Memory is bounded: at most [`MAX_TRACKED`] keys are remembered, the oldest
//! forgotten first.
//!
//! The login defender keeps its bans in the store ([`with_stored_bans`]): checks
//! stay in memory, each new ban is written through by a small writer task, and the
//! bans still running are loaded at start, so a restart lifts none. The same task
//! picks up the bans other nodes on the database gave, every [`BAN_POLL`], so a
//! ban holds on every node within that time. (Login tries are also counted in the
//! store across nodes: `cluster::tries`, driven by `login.rs`.)

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Notify};

use crate::clock::{now_ms, Millis};
use crate::config::DefenderConfig;
use crate::error::Result;
use crate::store::Db;

pub const MAX_TRACKED: usize = 100_000;

/// How long a try may wait for a slot while others from its key are checked.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// New bans queued for the store; beyond this (a flood) they stay in memory only.
const BAN_QUEUE: usize = 1024;
/// How often the bans other nodes gave are looked for.
pub const BAN_POLL: Duration = Duration::from_millis(500);
/// Clocks of nodes may differ by this much (a ban's change time is its node's).
const CLOCK_SLACK: Millis = 5_000;

#[derive(Default)]
struct Record {
    failures: VecDeque<Instant>,
    /// Tries reserved and being verified.
    pending: u32,
    banned_until: Option<Instant>,
    last_seen: Option<Instant>,
}

/// Called with the key and the ban's length whenever a key gets banned (the
/// login defender writes bans through to the store with it).
pub type OnBan<K> = Box<dyn Fn(K, Duration) + Send + Sync>;

pub struct Defender<K = IpAddr> {
    /// SIGHUP can replace it (`reload.rs`); records already kept stay.
    config: std::sync::RwLock<DefenderConfig>,
    records: Mutex<HashMap<K, Record>>,
    /// Woken whenever a reserved try ends, so waiting tries look again.
    released: Notify,
    on_ban: Option<OnBan<K>>,
}

/// What a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The address is now banned until this long from now.
    Banned(Duration),
}

/// Why a try was not even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Banned for this long more.
    Banned(Duration),
    /// Every slot stayed taken by tries in flight for [`MAX_WAIT`].
    Busy,
}

impl Refused {
    /// How long the client should wait before trying again.
    pub fn wait(self) -> Duration {
        match self {
            Refused::Banned(d) => d,
            Refused::Busy => Duration::from_secs(1),
        }
    }
}

enum Reserve {
    Granted,
    Refused(Duration),
    Full,
}

/// A reserved try; report how it went with [`Attempt::failed`] or
/// [`Attempt::succeeded`]. Dropped unreported (the client went away), it frees
/// its slot without counting.
pub struct Attempt<'a, K: Hash + Eq + Copy = IpAddr> {
    defender: &'a Defender<K>,
    key: K,
    /// False when the defender is disabled: nothing was reserved.
    tracked: bool,
}

impl<K: Hash + Eq + Copy> Defender<K> {
    pub fn new(config: DefenderConfig) -> Self {
        Defender {
            config: std::sync::RwLock::new(config),
            records: Mutex::new(HashMap::new()),
            released: Notify::new(),
            on_ban: None,
        }
    }

    /// Calls `on_ban` whenever a key gets banned.
    pub fn with_on_ban(mut self, on_ban: OnBan<K>) -> Self {
        self.on_ban = Some(on_ban);
        self
    }

    /// The settings now in force.
    pub fn config(&self) -> DefenderConfig {
        match self.config.read() {
            Ok(c) => *c,
            Err(p) => *p.into_inner(),
        }
    }

    /// New limits for the tries to come (SIGHUP); bans already given keep their end.
    pub fn reconfigure(&self, config: DefenderConfig) {
        match self.config.write() {
            Ok(mut c) => *c = config,
            Err(p) => *p.into_inner() = config,
        }
    }

    fn enabled(&self) -> bool {
        let c = self.config();
        c.max_failures > 0 && !c.ban.is_zero()
    }

    /// `Some(remaining)` while `addr` is banned.
    pub fn banned(&self, addr: K) -> Option<Duration> {
        self.banned_at(addr, Instant::now())
    }

    pub fn banned_at(&self, addr: K, now: Instant) -> Option<Duration> {
        let records = self.records.lock().expect("defender lock");
        let until = records.get(&addr)?.banned_until?;
        (until > now).then(|| until - now)
    }

    /// Bans `key` for `remaining` (a ban kept from before a restart).
    pub fn restore_ban(&self, key: K, remaining: Duration) {
        let now = Instant::now();
        let mut records = self.records.lock().expect("defender lock");
        let r = record(&mut records, key, now);
        let until = now + remaining;
        r.banned_until = Some(r.banned_until.map_or(until, |u| u.max(until)));
    }

    /// Reserves a try for `key`, waiting (at most [`MAX_WAIT`]) while the slots
    /// left before a ban are all taken by tries being checked.
    pub async fn attempt(&self, key: K) -> Result<Attempt<'_, K>, Refused> {
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            // Registered before looking, so a release in between is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            match self.reserve_at(key, Instant::now()) {
                Reserve::Granted => {
                    return Ok(Attempt {
                        defender: self,
                        key,
                        tracked: self.enabled(),
                    })
                }
                Reserve::Refused(left) => return Err(Refused::Banned(left)),
                Reserve::Full => {
                    if tokio::time::timeout_at(deadline, released).await.is_err() {
                        return Err(Refused::Busy);
                    }
                }
            }
        }
    }

    fn reserve_at(&self, key: K, now: Instant) -> Reserve {
        if !self.enabled() {
            return Reserve::Granted;
        }
        let config = self.config();
        let mut records = self.records.lock().expect("defender lock");
        let r = record(&mut records, key, now);
        if let Some(until) = r.banned_until.filter(|u| *u > now) {
            return Reserve::Refused(until - now);
        }
        prune(r, now, config.window);
        if r.failures.len() >= config.max_failures as usize {
            // Only after the limit was lowered (SIGHUP): failures already reach
            // it, so this key is banned now rather than left waiting for slots
            // that no try in flight will ever free.
            r.failures.clear();
            r.banned_until = Some(now + config.ban);
            drop(records);
            if let Some(on_ban) = &self.on_ban {
                on_ban(key, config.ban);
            }
            return Reserve::Refused(config.ban);
        }
        if r.failures.len() + r.pending as usize >= config.max_failures as usize {
            return Reserve::Full;
        }
        r.pending += 1;
        Reserve::Granted
    }

    /// Counts a failed login from `addr` that was not reserved with
    /// [`Defender::attempt`] (a check too cheap to race, such as an API key).
    pub fn failure(&self, addr: K) -> Verdict {
        self.failure_at(addr, Instant::now())
    }

    pub fn failure_at(&self, addr: K, now: Instant) -> Verdict {
        if !self.enabled() {
            return Verdict::Allowed;
        }
        let config = self.config();
        let verdict = {
            let mut records = self.records.lock().expect("defender lock");
            let r = record(&mut records, addr, now);
            prune(r, now, config.window);
            r.failures.push_back(now);
            if r.failures.len() >= config.max_failures as usize {
                r.failures.clear();
                r.banned_until = Some(now + config.ban);
                Verdict::Banned(config.ban)
            } else {
                Verdict::Allowed
            }
        };
        if let (Verdict::Banned(d), Some(on_ban)) = (verdict, &self.on_ban) {
            on_ban(addr, d);
        }
        verdict
    }

    /// Ends a reserved try; `failed` counts it.
    fn settle(&self, key: K, failed: bool) -> Verdict {
        let now = Instant::now();
        {
            let mut records = self.records.lock().expect("defender lock");
            if let Some(r) = records.get_mut(&key) {
                r.pending = r.pending.saturating_sub(1);
            }
        }
        let verdict = if failed {
            self.failure_at(key, now)
        } else {
            Verdict::Allowed
        };
        self.released.notify_waiters();
        verdict
    }
}

impl<K: Hash + Eq + Copy> Attempt<'_, K> {
    /// The credentials were wrong: counts the failure (which may ban the key).
    pub fn failed(mut self) -> Verdict {
        let tracked = std::mem::replace(&mut self.tracked, false);
        if tracked {
            self.defender.settle(self.key, true)
        } else {
            Verdict::Allowed
        }
    }

    /// The credentials were right: the slot is freed, nothing is counted.
    pub fn succeeded(self) {}
}

impl<K: Hash + Eq + Copy> Drop for Attempt<'_, K> {
    fn drop(&mut self) {
        if self.tracked {
            self.defender.settle(self.key, false);
        }
    }
}

/// The login defender with its bans kept in `db`: the running ones are loaded
/// now, and new ones are written by the returned task, which runs until `stop`
/// turns true and then writes what is still queued.
pub async fn with_stored_bans(
    config: DefenderConfig,
    db: Db,
    mut stop: watch::Receiver<bool>,
) -> Result<(
    std::sync::Arc<Defender>,
    impl std::future::Future<Output = ()> + Send + 'static,
)> {
    let now = now_ms();
    let bans = db.run(move |s| s.bans_active(now)).await?;
    let (tx, mut rx) = mpsc::channel::<(IpAddr, Millis)>(BAN_QUEUE);
    let defender = Defender::new(config).with_on_ban(Box::new(move |ip, ban| {
        let until = now_ms().saturating_add(ban.as_millis() as Millis);
        if tx.try_send((ip, until)).is_err() {
            tracing::warn!(remote = %ip, "ban queue full; this ban is kept in memory only");
        }
    }));
    restore_bans(&defender, bans, now);
    let defender = std::sync::Arc::new(defender);
    let polled = defender.clone();
    let mut since = now;
    let writer = async move {
        // An interval, not a sleep in the select: a flood of local bans must
        // not keep postponing the look at other nodes' bans.
        let mut poll = tokio::time::interval(BAN_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let save = |(ip, until): (IpAddr, Millis)| {
            let db = db.clone();
            async move {
                let address = ip.to_string();
                if let Err(e) = db.run(move |s| s.ban_put(&address, until, now_ms())).await {
                    tracing::warn!(remote = %ip, error = %e, "could not store a ban; it holds until restart only");
                }
            }
        };
        loop {
            tokio::select! {
                ban = rx.recv() => match ban {
                    Some(ban) => save(ban).await,
                    None => return,
                },
                _ = poll.tick() => {
                    let now = now_ms();
                    let from = since - CLOCK_SLACK;
                    match db.run(move |s| s.bans_changed(from, now)).await {
                        Ok(bans) => {
                            restore_bans(&polled, bans, now);
                            since = now;
                        }
                        Err(e) => tracing::warn!(error = %e, "could not read the bans of other nodes"),
                    }
                }
                _ = crate::shutdown::stopped(&mut stop) => break,
            }
        }
        while let Ok(ban) = rx.try_recv() {
            save(ban).await;
        }
    };
    Ok((defender, writer))
}

/// Puts stored bans (loaded at start, or given by other nodes) in force.
fn restore_bans(defender: &Defender, bans: Vec<crate::store::Ban>, now: Millis) {
    for ban in bans {
        match ban.address.parse::<IpAddr>() {
            Ok(ip) => {
                defender.restore_ban(ip, Duration::from_millis((ban.until - now).max(0) as u64))
            }
            Err(_) => {
                tracing::warn!(address = %ban.address, "ignoring a stored ban of a malformed address")
            }
        }
    }
}

/// The record of `key`, made room for if new.
fn record<K: Hash + Eq + Copy>(
    records: &mut HashMap<K, Record>,
    key: K,
    now: Instant,
) -> &mut Record {
    if records.len() >= MAX_TRACKED && !records.contains_key(&key) {
        forget_oldest(records);
    }
    let r = records.entry(key).or_default();
    r.last_seen = Some(now);
    r
}

fn prune(r: &mut Record, now: Instant, window: Duration) {
    while r
        .failures
        .front()
        .is_some_and(|t| now.duration_since(*t) > window)
    {
        r.failures.pop_front();
    }
}

fn forget_oldest<K: Hash + Eq + Copy>(records: &mut HashMap<K, Record>) {
    // Rare (only at the cap): a linear scan keeps the common path simple. Keys
    // with tries in flight are kept, or their slots would be lost.
    if let Some(oldest) = records
        .iter()
        .min_by_key(|(_, r)| (r.pending > 0, r.last_seen))
        .map(|(a, _)| *a)
    {
        records.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defender(max: u32) -> Defender {
        Defender::new(DefenderConfig {
            max_failures: max,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(600),
        })
    }

    #[test]
    fn a_lowered_limit_bans_a_key_whose_failures_already_reach_it() {
        let d = defender(5);
        let ip = |n: u8| IpAddr::from([192, 0, 2, n]);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(d.failure_at(ip(1), now), Verdict::Allowed);
        }
        d.reconfigure(DefenderConfig {
            max_failures: 2,
            ..d.config()
        });
        assert!(matches!(d.reserve_at(ip(1), now), Reserve::Refused(_)));
        assert!(d.banned_at(ip(1), now).is_some());
        assert!(matches!(d.reserve_at(ip(2), now), Reserve::Granted));
    }

    #[test]
    fn bans_after_max_failures_within_the_window() {
        let d = defender(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t = Instant::now();
        assert_eq!(d.failure_at(a, t), Verdict::Allowed);
        assert_eq!(
            d.failure_at(a, t + Duration::from_secs(1)),
            Verdict::Allowed
        );
        assert_eq!(d.banned_at(a, t), None);
        assert_eq!(
            d.failure_at(a, t + Duration::from_secs(2)),
            Verdict::Banned(Duration::from_secs(600))
        );
        assert!(d.banned_at(a, t + Duration::from_secs(3)).is_some());
        assert_eq!(d.banned_at(b, t), None, "other addresses are not affected");
        assert_eq!(
            d.banned_at(a, t + Duration::from_secs(603)),
            None,
            "bans end"
        );
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let d = defender(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        d.failure_at(a, t);
        d.failure_at(a, t + Duration::from_secs(30));
        assert_eq!(
            d.failure_at(a, t + Duration::from_secs(120)),
            Verdict::Allowed
        );
    }

    #[tokio::test]
    async fn tries_in_flight_count_against_the_limit() {
        let d = defender(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let tries = [
            d.attempt(a).await.unwrap(),
            d.attempt(a).await.unwrap(),
            d.attempt(a).await.unwrap(),
        ];
        let short = Duration::from_millis(50);
        assert!(
            tokio::time::timeout(short, d.attempt(a)).await.is_err(),
            "a fourth try waits while three are checked"
        );
        let verdicts: Vec<Verdict> = tries.into_iter().map(Attempt::failed).collect();
        assert_eq!(verdicts[2], Verdict::Banned(Duration::from_secs(600)));
        assert!(matches!(d.attempt(a).await, Err(Refused::Banned(_))));
    }

    #[tokio::test]
    async fn a_waiting_try_goes_on_when_a_slot_frees() {
        let d = std::sync::Arc::new(defender(2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let first = d.attempt(a).await.unwrap();
        let second = d.attempt(a).await.unwrap();
        let waiting = {
            let d = d.clone();
            tokio::spawn(async move { d.attempt(a).await.map(|t| t.succeeded()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        first.succeeded();
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert_eq!(second.failed(), Verdict::Allowed);
        drop(d.attempt(a).await.unwrap()); // dropped unreported: not counted
        assert_eq!(
            d.attempt(a).await.unwrap().failed(),
            Verdict::Banned(Duration::from_secs(600))
        );
    }

    #[test]
    fn zero_disables_it() {
        let d = defender(0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..100 {
            assert_eq!(d.failure(a), Verdict::Allowed);
        }
        assert_eq!(d.banned(a), None);
    }
}
