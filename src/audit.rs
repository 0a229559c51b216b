//! The audit log: every access and every administrative change, as one row each.
//!
//! Events go through a bounded channel to one writer task that stores them in
//! batches (one transaction per batch). A full channel makes the producer wait
//! (back-pressure); only when waiting is impossible ([`AuditLog::record_now`]) or the
//! database keeps failing is an event dropped, and then it is counted and logged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Mutex};

use crate::store::Db;

pub use crate::config::AuditTuning;
pub use crate::event::{parse_since, AuditEvent, Outcome};

/// Every audited event (logins, transfers with bytes and SHA-256, link visits,
/// changes) also goes to the log stream as a structured event under the target
/// `wharf::event`, so log collectors see them without reading the database
/// (JSON with `--log-format json`). Audit rows hold no secrets, so neither do
/// these lines.
fn to_log(ev: &AuditEvent) {
    tracing::info!(
        target: "wharf::event",
        protocol = %ev.protocol,
        action = %ev.action,
        outcome = ev.outcome.as_str(),
        actor = ev.actor.as_deref().unwrap_or(""),
        remote = ev.remote.as_deref().unwrap_or(""),
        path = ev.path.as_deref().unwrap_or(""),
        bytes = ev.bytes,
        duration_ms = ev.duration_ms,
        detail = ev.detail.as_deref().unwrap_or(""),
        "event"
    );
}

/// How long shutdown waits for tracked background tasks.
const TASKS_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// The producer side, cheap to clone into every session.
///
/// It also tracks the background tasks that finish work whose outcome it
/// records (download settlement, zip writers, clean-up of abandoned uploads):
/// shutdown waits for them before it closes the queue, so their events are
/// written, not dropped.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<AuditEvent>,
    tasks: tokio_util::task::TaskTracker,
    dropped: Arc<AtomicU64>,
    stop: Arc<Mutex<Option<oneshot::Sender<()>>>>,
    done: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl AuditLog {
    /// Starts the writer task on the current runtime.
    pub fn start(db: Db, tuning: AuditTuning) -> Self {
        let (tx, rx) = mpsc::channel(tuning.queue.max(1));
        let (stop_tx, stop_rx) = oneshot::channel();
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = tokio::spawn(write_loop(
            db,
            rx,
            stop_rx,
            tuning.batch.max(1),
            dropped.clone(),
        ));
        AuditLog {
            tx,
            tasks: tokio_util::task::TaskTracker::new(),
            dropped,
            stop: Arc::new(Mutex::new(Some(stop_tx))),
            done: Arc::new(Mutex::new(Some(writer))),
        }
    }

    /// Runs `work` on a task that shutdown waits for (see the type's doc).
    pub fn spawn<F>(&self, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        // A drop after the runtime is gone has nowhere to run the work.
        if tokio::runtime::Handle::try_current().is_ok() {
            self.tasks.spawn(work);
        }
    }

    /// Queues an event, waiting for room if the writer is behind.
    pub async fn record(&self, event: AuditEvent) {
        crate::metrics::observe(&event);
        to_log(&event);
        if let Err(e) = self.tx.send(event).await {
            self.count_drop(&e.0, "the audit log is closed");
        }
    }

    /// Queues an event without waiting (for synchronous callers such as `Drop`);
    /// a full queue drops the event, counted and logged.
    pub fn record_now(&self, event: AuditEvent) {
        crate::metrics::observe(&event);
        to_log(&event);
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => {
                self.count_drop(&ev, "the audit queue is full")
            }
            Err(mpsc::error::TrySendError::Closed(ev)) => {
                self.count_drop(&ev, "the audit log is closed")
            }
        }
    }

    fn count_drop(&self, ev: &AuditEvent, why: &str) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::error!(action = %ev.action, actor = ?ev.actor, dropped_total = n, "audit event dropped: {why}");
    }

    /// Events waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Events lost so far (queue full at a non-waiting call, or database failures).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stops accepting events, writes everything queued, and waits for the writer.
    pub async fn shutdown(&self) {
        self.tasks.close();
        if tokio::time::timeout(TASKS_GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tasks.len(),
                "background tasks still running at shutdown; their audit events may be lost"
            );
        }
        if let Some(stop) = self.stop.lock().await.take() {
            let _ = stop.send(());
        }
        if let Some(writer) = self.done.lock().await.take() {
            let _ = writer.await;
        }
    }
}

async fn write_loop(
    db: Db,
    mut rx: mpsc::Receiver<AuditEvent>,
    mut stop: oneshot::Receiver<()>,
    batch_max: usize,
    dropped: Arc<AtomicU64>,
) {
    let mut batch = Vec::with_capacity(batch_max);
    let mut stopping = false;
    loop {
        let first = if stopping {
            rx.recv().await
        } else {
            tokio::select! {
                ev = rx.recv() => ev,
                _ = &mut stop => {
                    // Refuse new events; what is queued is still received below.
                    rx.close();
                    stopping = true;
                    continue;
                }
            }
        };
        let Some(first) = first else { break };
        batch.push(first);
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(ev) => batch.push(ev),
                Err(_) => break,
            }
        }
        write_batch(&db, std::mem::take(&mut batch), &dropped).await;
    }
}

/// Writes one batch, retrying a busy or failing database a few times before the
/// batch is counted as dropped.
async fn write_batch(db: &Db, batch: Vec<AuditEvent>, dropped: &AtomicU64) {
    let batch = Arc::new(batch);
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=5 {
        let events = batch.clone();
        match db.run(move |s| s.audit_append(&events)).await {
            Ok(()) => return,
            Err(e) if attempt < 5 => {
                tracing::warn!(error = %e, attempt, "audit write failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                let n =
                    dropped.fetch_add(batch.len() as u64, Ordering::Relaxed) + batch.len() as u64;
                tracing::error!(error = %e, lost = batch.len(), dropped_total = n, "audit events lost");
            }
        }
    }
}
