//! The audit log: every access and every administrative change, as one row each.
//!
//! Events go through a bounded channel to one writer task that stores them in
//! batches (one transaction per batch). A full channel makes the producer wait
//! (back-pressure); only when waiting is impossible ([`AuditLog::record_now`]) or the
//! database keeps failing is an event dropped, and then it is counted and logged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::policy::Protocol;
use crate::store::{now_ms, Db, Millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Refused by a rule: permissions, wrong password, lock-out.
    Denied,
    /// Tried and failed: storage error, aborted transfer.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(Outcome::Ok),
            "denied" => Some(Outcome::Denied),
            "failed" => Some(Outcome::Failed),
            _ => None,
        }
    }
}

/// One audited event. Built with [`AuditEvent::new`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub ts: Millis,
    pub protocol: String,
    pub remote: Option<String>,
    pub actor: Option<String>,
    pub action: String,
    pub path: Option<String>,
    pub bytes: Option<u64>,
    pub outcome: Outcome,
    pub detail: Option<String>,
    /// How long a transfer took: for the log stream and metrics, not stored.
    pub duration_ms: Option<u64>,
}

impl AuditEvent {
    pub fn new(protocol: Protocol, action: &str) -> Self {
        AuditEvent {
            ts: now_ms(),
            protocol: protocol.name().into(),
            remote: None,
            actor: None,
            action: action.into(),
            path: None,
            bytes: None,
            outcome: Outcome::Ok,
            detail: None,
            duration_ms: None,
        }
    }

    /// How long the transfer this event ends took.
    pub fn took(mut self, since: std::time::Instant) -> Self {
        self.duration_ms = Some(since.elapsed().as_millis().try_into().unwrap_or(u64::MAX));
        self
    }

    pub fn remote(mut self, remote: impl ToString) -> Self {
        self.remote = Some(remote.to_string());
        self
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn path(mut self, path: impl ToString) -> Self {
        self.path = Some(path.to_string());
        self
    }

    pub fn bytes(mut self, bytes: u64) -> Self {
        self.bytes = Some(bytes);
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// A lower bound for reading the log, as people write it: a duration back from
/// `now` (`1h`, `7days`) or an RFC 3339 time.
pub fn parse_since(s: &str, now: Millis) -> Result<Millis, String> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now - d.as_millis() as i64);
    }
    humantime::parse_rfc3339_weak(s)
        .map(crate::store::to_ms)
        .map_err(|_| format!("{s:?}: expected a duration such as 1h or 2days, or a time such as 2026-11-01T00:00:00Z"))
}

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

/// Sizing of the audit pipeline.
#[derive(Debug, Clone, Copy)]
pub struct AuditTuning {
    /// Events that may wait in the channel before producers wait too.
    pub queue: usize,
    /// Most events written in one transaction.
    pub batch: usize,
}

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
