//! What several wharf nodes on one database share, decided in the database:
//! each node's random id, the leases that let one node at a time run a periodic
//! job, and lock leases (one holder across nodes, renewed while held).
//!
//! A job's lease is taken at each turn for a few periods, so the node that holds
//! it keeps it from turn to turn and the others skip theirs; a node that dies
//! stops renewing, its lease runs out, and the next turn of another node takes
//! it. A node that stops cleanly gives its leases back at once.
//!
//! Login tries are counted in the database too ([`tries`]).

pub mod check;
pub mod tries;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::now_ms;
use crate::error::Result;
use crate::store::{Db, Millis};

/// This node's view of the cluster; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    db: Db,
    node: Arc<str>,
    /// Turns of each job this node ran (tests and logs read it).
    runs: Arc<Mutex<BTreeMap<String, u64>>>,
}

fn ms(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

/// How long a job's lease lasts past a turn: past the next turn, with room
/// for a slow job, so the holder renews it before anyone else may take it.
fn job_ttl(period: Duration) -> Duration {
    period * 2 + Duration::from_secs(1)
}

impl Cluster {
    /// A node with a new random id.
    pub fn new(db: Db) -> Cluster {
        Cluster {
            db,
            node: hex::encode(crate::secret::random_bytes::<8>()).into(),
            runs: Default::default(),
        }
    }

    pub fn node_id(&self) -> &str {
        &self.node
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Whether this node runs this turn of job `name`, which runs every
    /// `period`: true when it holds (or just took) lease `job:<name>`.
    pub async fn turn(&self, name: &str, period: Duration) -> bool {
        let lease = format!("job:{name}");
        let node = self.node.to_string();
        let ttl = ms(job_ttl(period));
        match self
            .db
            .run(move |s| s.lease_take(&lease, &node, ttl, now_ms()))
            .await
        {
            Ok(true) => {
                *self
                    .runs
                    .lock()
                    .expect("runs lock")
                    .entry(name.to_string())
                    .or_default() += 1;
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(job = name, error = %e, "could not take the job's lease; skipping this turn");
                false
            }
        }
    }

    /// Renews job `name`'s lease after a turn (a long job must not lose it).
    pub async fn renew(&self, name: &str, period: Duration) {
        let lease = format!("job:{name}");
        let node = self.node.to_string();
        let ttl = ms(job_ttl(period));
        let _ = self
            .db
            .run(move |s| s.lease_take(&lease, &node, ttl, now_ms()))
            .await;
    }

    /// Gives back the lease of every job this node ran (a clean stop), so
    /// another node runs the next turn without waiting for it to run out.
    pub async fn release_jobs(&self) {
        let names: Vec<String> = self
            .runs
            .lock()
            .expect("runs lock")
            .keys()
            .cloned()
            .collect();
        let node = self.node.to_string();
        let res = self
            .db
            .run(move |s| {
                for n in names {
                    s.lease_release(&format!("job:{n}"), &node)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not give back the job leases; they run out by themselves");
        }
    }

    /// How many turns of job `name` this node ran.
    pub fn runs(&self, name: &str) -> u64 {
        self.runs
            .lock()
            .expect("runs lock")
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Takes lock `lock:<key>` for one use, across nodes ([`lock`]).
    pub async fn lock(&self, key: &str) -> Result<Option<LockGuard>> {
        lock(&self.db, &self.node, key).await
    }
}

/// Takes lock `lock:<key>` for one use across every node on the database;
/// `None` while another use (here or on another node) holds it. The holder is
/// `node` and a random per-use id; the lease is renewed while the guard lives
/// and given back by [`LockGuard::release`] or, dropped, by a spawned task (a
/// drop never blocks the runtime). A node that dies holding it loses it after
/// [`LOCK_TTL`].
pub async fn lock(db: &Db, node: &str, key: &str) -> Result<Option<LockGuard>> {
    let name = format!("lock:{key}");
    let holder = format!("{node}:{}", hex::encode(crate::secret::random_bytes::<8>()));
    let ttl = ms(LOCK_TTL);
    let (n, h) = (name.clone(), holder.clone());
    let taken = db.run(move |s| s.lease_take(&n, &h, ttl, now_ms())).await?;
    if !taken {
        return Ok(None);
    }
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<bool>();
    let renewer = {
        let (db, name, holder) = (db.clone(), name.clone(), holder.clone());
        tokio::spawn(async move {
            let release = loop {
                tokio::select! {
                    r = &mut stopped => break r.is_err(), // dropped: release here
                    _ = tokio::time::sleep(LOCK_TTL / 3) => {
                        let (n, h) = (name.clone(), holder.clone());
                        let _ = db.run(move |s| s.lease_take(&n, &h, ttl, now_ms())).await;
                    }
                }
            };
            if release {
                let _ = db.run(move |s| s.lease_release(&name, &holder)).await;
            }
        })
    };
    Ok(Some(LockGuard {
        db: db.clone(),
        name,
        holder,
        stop: Some(stop),
        renewer: Some(renewer),
    }))
}

/// How long a lock outlives a node that died holding it.
pub const LOCK_TTL: Duration = Duration::from_secs(30);

/// A held lock; dropping it gives the lock back (asynchronously).
pub struct LockGuard {
    db: Db,
    name: String,
    holder: String,
    stop: Option<tokio::sync::oneshot::Sender<bool>>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl LockGuard {
    /// Gives the lock back now: the next use (a client's next request, maybe
    /// on this node) finds it free.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(false);
        }
        if let Some(r) = self.renewer.take() {
            let _ = r.await; // no renewal may land after the release
        }
        let (name, holder) = (self.name.clone(), self.holder.clone());
        if let Err(e) = self.db.run(move |s| s.lease_release(&name, &holder)).await {
            tracing::warn!(lock = %self.name, error = %e, "could not give a lock back; it runs out by itself");
        }
    }
}
