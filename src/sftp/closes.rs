//! Ordering between upload closes and the path requests behind them: a path
//! request (STAT, OPEN, RENAME...) waits until every upload CLOSE that arrived
//! before it has published (sshfs stats a file right behind the CLOSE that
//! makes it). A leaf both the dispatcher and the handle tasks use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The fencing requests (upload opens and closes) a channel has in progress
/// (see `Channel::closes`).
#[derive(Default)]
pub struct Closes {
    next: AtomicU64,
    running: std::sync::Mutex<std::collections::BTreeSet<u64>>,
    done: tokio::sync::Notify,
}

impl Closes {
    /// Registers a close; the returned guard ends it when dropped.
    pub(super) fn begin(self: &Arc<Self>) -> CloseGuard {
        let seq = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        lock(&self.running).insert(seq);
        CloseGuard {
            closes: self.clone(),
            seq,
        }
    }

    /// The sequence number of the last close registered so far.
    pub(super) fn seen(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    /// Waits until every close up to `seen` has ended.
    pub(super) async fn wait(&self, seen: u64) {
        loop {
            let done = self.done.notified();
            if lock(&self.running)
                .first()
                .is_none_or(|&first| first > seen)
            {
                return;
            }
            done.await;
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Held while an upload's close runs; dropping it lets later path requests go.
pub struct CloseGuard {
    closes: Arc<Closes>,
    seq: u64,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        lock(&self.closes.running).remove(&self.seq);
        self.closes.done.notify_waiters();
    }
}
