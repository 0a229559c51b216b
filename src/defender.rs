//! The defender: per-address lock-out against password guessing, shared by SFTP,
//! FTPS and the link server.
//!
//! `max_failures` failed logins from one address within `window` ban that address
//! for `ban`. A banned address is refused before its credentials are even checked.
//! The link server also keys it by (link, address) to throttle guesses at one
//! link's password or codes.
//! Memory is bounded: at most [`MAX_TRACKED`] addresses are remembered, the oldest
//! forgotten first.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::DefenderConfig;

pub const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
struct Record {
    failures: VecDeque<Instant>,
    banned_until: Option<Instant>,
    last_seen: Option<Instant>,
}

pub struct Defender<K = IpAddr> {
    config: DefenderConfig,
    records: Mutex<HashMap<K, Record>>,
}

/// What a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The address is now banned until this long from now.
    Banned(Duration),
}

impl<K: Hash + Eq + Copy> Defender<K> {
    pub fn new(config: DefenderConfig) -> Self {
        Defender {
            config,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        self.config.max_failures > 0 && !self.config.ban.is_zero()
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

    /// Counts a failed login from `addr`.
    pub fn failure(&self, addr: K) -> Verdict {
        self.failure_at(addr, Instant::now())
    }

    pub fn failure_at(&self, addr: K, now: Instant) -> Verdict {
        if !self.enabled() {
            return Verdict::Allowed;
        }
        let mut records = self.records.lock().expect("defender lock");
        if records.len() >= MAX_TRACKED && !records.contains_key(&addr) {
            forget_oldest(&mut records);
        }
        let r = records.entry(addr).or_default();
        r.last_seen = Some(now);
        while r
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.config.window)
        {
            r.failures.pop_front();
        }
        r.failures.push_back(now);
        if r.failures.len() >= self.config.max_failures as usize {
            r.failures.clear();
            r.banned_until = Some(now + self.config.ban);
            return Verdict::Banned(self.config.ban);
        }
        Verdict::Allowed
    }
}

fn forget_oldest<K: Hash + Eq + Copy>(records: &mut HashMap<K, Record>) {
    // Rare (only at the cap): a linear scan keeps the common path simple.
    if let Some(oldest) = records
        .iter()
        .min_by_key(|(_, r)| r.last_seen)
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
