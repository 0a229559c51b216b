//! One memory budget for transfer buffers across all sessions (`[storage]
//! buffer_budget`): the bytes a transfer holds besides its socket and its
//! bookkeeping are reserved here first, so a flood of sessions waits for room
//! instead of growing the process without bound.
//!
//! Who reserves:
//! - every upload to storage, for as long as it is open (`vfs::Vfs::create`): one
//!   chunk on local disk; on an object store its part buffer and the parts in
//!   flight (S3: 5 MiB each), fewer in flight when the budget is tight, and
//!   more as its parts grow (`vfs::parts`, only with `try_reserve`). An SFTP
//!   upload that receives nothing for 5 s gives a local-disk chunk back (what it
//!   gathered is written out first) and takes it again at its next write
//!   (`vfs::FileWriter::idle`), so idle uploads keep no one else waiting. An
//!   object store's writer keeps the part it has filled so far in memory, so
//!   its reservation stays while it is open;
//! - SFTP READ replies waiting for the network (`sftp::flow`), on top of the
//!   channel's own cap;
//! - the read-back that checks a direct browser upload's SHA-256 (one chunk,
//!   `vfs::DirectPlace::hash_staged`), waiting for room like an upload;
//! - an upload to a service that takes a file in one request (WebDAV), as the
//!   file it holds in memory grows (`vfs::FileWriter::write`), waiting a
//!   bounded time for room (it holds a reservation while it waits, so the wait
//!   must end on its own).
//!
//! Why waiting cannot deadlock: a reservation is released by work that finishes
//! on its own (an upload by its storage writes, a reply by the network), and
//! nothing holding a reservation waits for another one. SFTP WRITE data in flight
//! is deliberately *not* drawn from here: it is released only once its upload
//! exists, and an upload waiting for room must not wait behind it. It is bounded
//! per channel instead (`sftp::flow`). A single reservation larger than the whole
//! budget is cut to the budget, so it waits for an empty budget rather than
//! forever.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// `[storage] buffer_budget` when the config does not set it.
pub const DEFAULT_BUDGET: usize = 128 << 20;

/// The shared budget; cloning shares it.
#[derive(Clone, Debug)]
pub struct Budget {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// Bytes reserved from a [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

impl Reservation {
    /// Bytes this reservation holds.
    pub fn bytes(&self) -> usize {
        self._permit.num_permits()
    }

    /// Adds `other`'s bytes to this reservation (both from the same budget).
    pub fn merge(&mut self, other: Reservation) {
        self._permit.merge(other._permit);
    }
}

impl Budget {
    pub fn new(total: usize) -> Budget {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Budget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes not reserved at the moment.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    fn cut(&self, bytes: usize) -> u32 {
        bytes.clamp(1, self.total).min(u32::MAX as usize) as u32
    }

    /// Reserves `bytes` (at most the whole budget), waiting for room.
    pub async fn reserve(&self, bytes: usize) -> Reservation {
        let permit = self
            .bytes
            .clone()
            .acquire_many_owned(self.cut(bytes))
            .await
            .expect("the budget's semaphore is never closed");
        Reservation { _permit: permit }
    }

    /// Reserves `bytes` if there is room now.
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        self.bytes
            .clone()
            .try_acquire_many_owned(self.cut(bytes))
            .ok()
            .map(|permit| Reservation { _permit: permit })
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(DEFAULT_BUDGET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn reservations_wait_for_room_and_give_it_back() {
        let b = Budget::new(10);
        let r = b.reserve(6).await;
        assert_eq!((r.bytes(), b.available()), (6, 4));
        assert!(b.try_reserve(5).is_none());
        let waiting = b.reserve(5);
        tokio::pin!(waiting);
        assert!(waiting.as_mut().now_or_never().is_none());
        drop(r);
        let r2 = waiting.await;
        assert_eq!(b.available(), 5);
        drop(r2);
        assert_eq!(b.available(), 10);
    }

    #[tokio::test]
    async fn a_reservation_larger_than_the_budget_takes_all_of_it() {
        let b = Budget::new(10);
        let r = b.reserve(1 << 30).await;
        assert_eq!((r.bytes(), b.available()), (10, 0));
    }
}
