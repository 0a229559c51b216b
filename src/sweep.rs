//! Clean-up of what a crash leaves behind, run at start and then periodically by
//! `serve`: staged upload files nobody will finish (fs `.wharf-partial`, browser
//! upload staging) and download reservations that never settled.
//!
//! Each sweep keys on age, never on "this process did not write it", so it is
//! safe beside the CLI and, later, beside other nodes: a staged file is removed
//! only when nothing has written to it for [`STAGED_IDLE`], a reservation only
//! when its download has not been seen alive for the configured timeout.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::store::{now_ms, Db};

/// A staged file untouched this long is left over from a crash: a live upload
/// writes at least every storage chunk timeout, or fails.
pub const STAGED_IDLE: Duration = Duration::from_secs(3600);

/// Removes regular files in `dirs` not modified for `idle` (sub-folders are left
/// alone). Returns how many were removed.
pub async fn staged_leftovers(dirs: Vec<PathBuf>, idle: Duration) -> Result<usize> {
    tokio::task::spawn_blocking(move || {
        let cutoff = SystemTime::now()
            .checked_sub(idle)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut removed = 0;
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue; // not created yet
            };
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                let old = meta.modified().is_ok_and(|m| m < cutoff);
                if meta.is_file() && old && std::fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    })
    .await
    .map_err(|e| Error::internal("the staging sweep task failed").with_source(e))
}

/// Gives back the uses of link downloads not seen alive for `timeout`.
pub async fn stale_reservations(db: &Db, timeout: Duration) -> Result<u64> {
    let before = now_ms() - i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
    db.run(move |s| s.link_refund_stale(before)).await
}

/// How often [`stale_reservations`] runs for a given timeout: often enough that
/// a use comes back soon after the timeout, never busier than once a second.
pub fn reservation_period(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(300))
}

/// How often a download in flight marks itself alive: well inside the timeout.
pub fn alive_period(timeout: Duration) -> Duration {
    (timeout / 3).clamp(Duration::from_millis(200), Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_idle_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.part");
        let new = dir.path().join("new.part");
        std::fs::write(&old, b"x").unwrap();
        std::fs::write(&new, b"y").unwrap();
        let past = SystemTime::now() - Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(past)
            .unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let n = staged_leftovers(vec![dir.path().to_path_buf()], STAGED_IDLE)
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert!(!old.exists() && new.exists() && dir.path().join("sub").exists());
    }
}
