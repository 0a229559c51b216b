//! Time as wharf stores and shows it: milliseconds since the Unix epoch, and
//! RFC 3339 for people and JSON. A leaf, so rules (`policy`), events and the store
//! share one clock without depending on each other.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: how every time is stored.
pub type Millis = i64;

pub fn now_ms() -> Millis {
    to_ms(SystemTime::now())
}

pub fn to_ms(t: SystemTime) -> Millis {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn from_ms(ms: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// The last instant RFC 3339 can write (9999-12-31T23:59:59Z).
const LAST_WRITABLE: Millis = 253_402_300_799_000;

/// RFC 3339 in UTC with seconds, for people and JSON. Total: a time past year
/// 9999 (which no input check lets in any more, but an old row may hold) is
/// written as the last second of 9999 instead of panicking.
pub fn format_ms(ms: Millis) -> String {
    humantime::format_rfc3339_seconds(from_ms(ms.min(LAST_WRITABLE))).to_string()
}
