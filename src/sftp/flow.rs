//! Flow control of one SFTP channel: what keeps its memory bounded without ever
//! stopping the channel for a client that behaves.
//!
//! russh widens the client's SSH window as soon as data arrives, not when it is
//! consumed, and hands the data to the channel through a small bounded queue: when
//! wharf stops reading its channel, russh's whole connection loop waits, and with
//! it every reply wharf sends. So the request reader must never wait for the
//! network. It waits only for work that finishes on its own:
//!
//! - **requests**: every request read and not yet answered is charged to a byte
//!   budget (WRITE data to `writes`, the rest to `requests`, at least
//!   [`MIN_COST`] each). A pending WRITE finishes with storage alone, so a full
//!   write budget empties by itself. A pending READ needs the network, but costs
//!   only [`MIN_COST`]: paramiko's `get()` asks for a whole file at once, one
//!   request per 32 KiB, and the budget holds ~1 M of them (a 32 GiB file);
//! - **replies**: READ data is read from storage only once it fits in a budget of
//!   bytes waiting for the network (`data`), so a slow reader of replies slows the
//!   storage reads, not the request reader. Other replies (status, attributes,
//!   names) never wait; the reader stops reading when more than
//!   [`REPLY_BACKLOG`] of them are unsent, i.e. when the client stopped reading.
//!   READ data also reserves its bytes in the process-wide memory budget
//!   ([`crate::budget`]), so many downloading sessions together wait for room
//!   rather than each filling its own share. WRITE data does not (see there why):
//!   its channel cap bounds it.
//!
//! A reader that waits with no progress at all for [`STALL`] (no reply sent, no
//! request finished) ends the channel: the client is not reading its replies.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh_sftp::protocol::Packet;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};

use super::wire;
use crate::budget::{Budget, Reservation};

/// Bytes of unanswered requests other than WRITE data (each costs at least
/// [`MIN_COST`]): ~1 M outstanding reads.
const REQUEST_BUDGET: usize = 64 << 20;
/// Bytes of WRITE data read from the channel and not yet in storage. OpenSSH
/// keeps 64 writes of 32 KiB in flight (2 MiB); a client that pipelines without
/// limit (paramiko's `put`) waits here for storage, not in memory. It was 16 MiB:
/// 100 such sessions held 500 MB (docs/benchmarks.md, "Memory").
const WRITE_BUDGET: usize = 2 << 20;
/// Bytes of READ replies waiting for the network (also reserved from the shared
/// budget). 2 MiB is OpenSSH's 64 reads of 32 KiB in flight.
const DATA_BUDGET: usize = 2 << 20;
/// Bytes of other replies waiting for the network before the reader waits.
pub const REPLY_BACKLOG: usize = 8 << 20;
/// The smallest charge of a request: about what it takes in memory while it
/// waits (the request, its charge and its queue slot).
pub const MIN_COST: usize = 64;
/// How long the reader waits without any progress before ending the channel.
pub const STALL: Duration = Duration::from_secs(120);

/// One encoded reply; a READ reply carries its share of the data budget.
pub struct Outgoing {
    pub bytes: Bytes,
    /// A DATA reply's data, sent after `bytes` (its header) rather than copied
    /// behind it: the channel takes both as they are (`ReplySink`).
    pub body: Bytes,
    data: Option<Room>,
}

/// Room for one READ reply: in the channel's data budget and in the shared
/// memory budget, both given back once the reply is written.
pub struct Room {
    _channel: OwnedSemaphorePermit,
    _shared: Reservation,
}

pub struct Flow {
    requests: Arc<Semaphore>,
    writes: Arc<Semaphore>,
    data: Arc<Semaphore>,
    /// The process-wide memory budget READ data also reserves from.
    budget: Budget,
    /// Closed (never given permits) when the channel closes: ends waits on
    /// `budget`, which outlives the channel.
    closing: Semaphore,
    /// Bytes of replies without a data permit, queued and not yet written.
    backlog: AtomicUsize,
    /// Counts replies written and requests finished: "something moves".
    progress: AtomicU64,
    moved: Notify,
}

/// The charge of one request, given back when its reply is queued.
pub struct Charge {
    _permit: OwnedSemaphorePermit,
    flow: Arc<Flow>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.flow.moved();
    }
}

impl Flow {
    pub fn new(budget: Budget) -> Arc<Flow> {
        Arc::new(Flow {
            requests: Arc::new(Semaphore::new(REQUEST_BUDGET)),
            writes: Arc::new(Semaphore::new(WRITE_BUDGET)),
            data: Arc::new(Semaphore::new(DATA_BUDGET)),
            budget,
            closing: Semaphore::new(0),
            backlog: AtomicUsize::new(0),
            progress: AtomicU64::new(0),
            moved: Notify::new(),
        })
    }

    fn moved(&self) {
        self.progress.fetch_add(1, Ordering::Relaxed);
        self.moved.notify_waiters();
    }

    /// Charges a request of `len` bytes (WRITE data if `write`). Waits while the
    /// budgets are spent; `None` when nothing moved for [`STALL`] or the channel
    /// is closing.
    pub async fn admit(self: &Arc<Self>, len: usize, write: bool) -> Option<Charge> {
        let (budget, cost) = if write {
            (&self.writes, len.min(WRITE_BUDGET))
        } else {
            (&self.requests, len.max(MIN_COST))
        };
        let mut seen = self.progress.load(Ordering::Relaxed);
        loop {
            let moved = self.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            if self.backlog.load(Ordering::Relaxed) <= REPLY_BACKLOG {
                let permit = budget.clone().acquire_many_owned(cost as u32);
                match tokio::time::timeout(STALL, permit).await {
                    Ok(Ok(permit)) => {
                        return Some(Charge {
                            _permit: permit,
                            flow: self.clone(),
                        })
                    }
                    Ok(Err(_)) => return None,
                    Err(_) => {}
                }
            } else if tokio::time::timeout(STALL, moved).await.is_ok() {
                continue;
            }
            let now = self.progress.load(Ordering::Relaxed);
            if now == seen {
                return None;
            }
            seen = now;
        }
    }

    /// Room for `len` bytes of READ data in the reply queue; `None` once the
    /// channel is closing.
    pub async fn data_room(&self, len: usize) -> Option<Room> {
        let n = (len + 64).min(DATA_BUDGET);
        let channel = self.data.clone().acquire_many_owned(n as u32).await.ok()?;
        let shared = tokio::select! {
            r = self.budget.reserve(n) => r,
            _ = self.closing.acquire() => return None,
        };
        Some(Room {
            _channel: channel,
            _shared: shared,
        })
    }

    /// Ends every wait: a closing channel serves nothing more.
    pub fn close(&self) {
        self.requests.close();
        self.writes.close();
        self.data.close();
        self.closing.close();
        self.moved.notify_waiters();
    }

    /// Bookkeeping of the writer after it sent `out`.
    pub fn sent(&self, out: Outgoing) {
        if out.data.is_none() {
            self.backlog.fetch_sub(out.bytes.len(), Ordering::Relaxed);
        }
        drop(out);
        self.moved();
    }
}

/// Where replies go: to the channel's one writer, in the order they are queued.
#[derive(Clone)]
pub struct Replies {
    tx: mpsc::UnboundedSender<Outgoing>,
    flow: Arc<Flow>,
}

impl Replies {
    pub fn new(flow: Arc<Flow>) -> (Replies, mpsc::UnboundedReceiver<Outgoing>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Replies { tx, flow }, rx)
    }

    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }

    /// Queues a reply; `false` once the writer is gone (the session ended).
    pub fn send(&self, packet: Packet) -> bool {
        let Some(bytes) = wire::encode(packet) else {
            return true;
        };
        self.flow.backlog.fetch_add(bytes.len(), Ordering::Relaxed);
        let len = bytes.len();
        if self
            .tx
            .send(Outgoing {
                bytes,
                body: Bytes::new(),
                data: None,
            })
            .is_err()
        {
            self.flow.backlog.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Queues a READ reply holding its room in the data budget.
    pub fn send_data(&self, packet: Packet, room: Room) -> bool {
        let Some(bytes) = wire::encode(packet) else {
            return true;
        };
        self.send_encoded((bytes, Bytes::new()), room)
    }

    /// Queues a READ reply already serialised: `head` and then `body`
    /// ([`wire::data_parts`]).
    pub fn send_encoded(&self, (head, body): (Bytes, Bytes), room: Room) -> bool {
        self.tx
            .send(Outgoing {
                bytes: head,
                body,
                data: Some(room),
            })
            .is_ok()
    }
}
