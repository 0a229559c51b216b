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

    /// Takes lock `lock:<key>` for one use, across nodes; `None` while another
    /// use (here or on another node) holds it. The lease is renewed while the
    /// guard lives and given back when it is dropped.
    pub async fn lock(&self, key: &str) -> Result<Option<LockGuard>> {
        let name = format!("lock:{key}");
        let holder = format!(
            "{}:{}",
            self.node,
            hex::encode(crate::secret::random_bytes::<8>())
        );
        let ttl = ms(LOCK_TTL);
        let (n, h) = (name.clone(), holder.clone());
        let taken = self
            .db
            .run(move |s| s.lease_take(&n, &h, ttl, now_ms()))
            .await?;
        if !taken {
            return Ok(None);
        }
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let db = self.db.clone();
        // Renews while held; gives the lock back when the guard is dropped
        // (the channel closes), off the dropping thread.
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(LOCK_TTL / 3) => {
                        let (n, h) = (name.clone(), holder.clone());
                        let _ = db.run(move |s| s.lease_take(&n, &h, ttl, now_ms())).await;
                    }
                }
            }
            let _ = db.run(move |s| s.lease_release(&name, &holder)).await;
        });
        Ok(Some(LockGuard { _stop: stop }))
    }
}

/// How long a lock outlives a node that died holding it.
pub const LOCK_TTL: Duration = Duration::from_secs(30);

/// A held lock; dropping it gives the lock back (asynchronously).
pub struct LockGuard {
    _stop: tokio::sync::oneshot::Sender<()>,
}
